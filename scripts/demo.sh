#!/usr/bin/env bash
# Installs what is needed, builds srdpr in release and runs the demo job on the data shipped in demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release
bin=.build/release/srdpr
out=out/demo
mkdir -p "$out"
"$bin" create-dataset --input-jsonl-path demo/data/faq-train.jsonl --output-bytedataset-path "$out/faq-train.bytedataset"
echo "samples in $out/faq-train.bytedataset: $("$bin" inspect-dataset "$out/faq-train.bytedataset")"
echo "first sample, read back from the ByteDataset (truncated):"
"$bin" inspect-dataset "$out/faq-train.bytedataset" --index 0 | cut -c1-300

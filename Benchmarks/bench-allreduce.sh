#!/usr/bin/env bash
# All-reduce bus bandwidth side by side, in one run on this machine:
#   ours:  srdpr bench allreduce (ring over ZeroMQ, ranks as processes on this machine), twice:
#          as training links ranks on one host (Unix sockets, payloads through shared-memory
#          lanes: the default) and over loopback TCP (--transport tcp, as the anchors)
#   Gloo:  ../shared/bench/torch_allreduce_anchor.py (torch.distributed, gloo backend)
#   raw:   ../shared/bench/zmq_loopback_anchor.py (ZeroMQ PUSH/PULL loopback ceiling, memcpy/add)
#   ring:  Benchmarks/zmq_ring_ceiling.py (the same raw traffic with N processes in a ring, all at
#          once: the ceiling of a ring of N ranks when N processes share this machine's cores)
# for world sizes 2 and 4. Prints a table on stderr and one JSON line on stdout.
# Usage: Benchmarks/bench-allreduce.sh [--sizes-mb 1,16,64,256] [--iters 5] [--worlds "2 4"] [--rounds 3] [--venv DIR]
# Ours and Gloo alternate for --rounds rounds and the table shows the median over rounds (each
# round's number is already the median of --iters iterations), so a burst of load from other
# processes hits both sides alike. Absolute numbers depend on the machine and its load: compare
# ratios taken in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes="1,16,64,256"; iters=5; worlds="2 4"; rounds=3
venv="${SRDPR_BENCH_VENV:-}"
while [ $# -gt 0 ]; do
    case "$1" in
        --sizes-mb) sizes="$2"; shift 2 ;;
        --iters) iters="$2"; shift 2 ;;
        --worlds) worlds="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --venv) venv="$2"; shift 2 ;;
        *) echo "bench-allreduce: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ -z "$venv" ]; then
    for candidate in .venv-bench ../.venv-bench; do
        if [ -x "$candidate/bin/python" ]; then venv="$candidate"; break; fi
    done
fi
python="${venv:+$venv/bin/python}"
if [ -z "$python" ] || [ ! -x "$python" ]; then
    echo "bench-allreduce: no anchor venv (run Benchmarks/setup-anchors.sh or pass --venv DIR)" >&2; exit 1
fi
anchors="${SRDPR_SHARED:-../shared}/bench"
swift build -c release --product srdpr >&2
srdpr=.build/release/srdpr
out=$(mktemp -d)
echo "bench-allreduce: $(uptime)" >&2
for round in $(seq "$rounds"); do
    for world in $worlds; do
        echo "== round $round, world $world: srdpr, same-host links (Unix sockets + shared-memory lanes, the default)" >&2
        "$srdpr" bench allreduce --world "$world" --sizes-mb "$sizes" --iters "$iters" | tail -1 > "$out/srdpr-$world-$round.json"
        echo "== round $round, world $world: srdpr over loopback TCP" >&2
        "$srdpr" bench allreduce --world "$world" --sizes-mb "$sizes" --iters "$iters" --transport tcp | tail -1 > "$out/srdpr-tcp-$world-$round.json"
        echo "== round $round, world $world: gloo" >&2
        "$python" "$anchors/torch_allreduce_anchor.py" --world "$world" --sizes-mb "$sizes" --iters "$iters" \
            --gather-iters 50 | tail -1 > "$out/gloo-$world-$round.json"
    done
done
echo "== raw ZeroMQ loopback ceiling" >&2
"$python" "$anchors/zmq_loopback_anchor.py" --repeats 3 --memcpy-iters 5 | tail -1 > "$out/zmq.json"
echo "== raw ZeroMQ ring ceiling, world(s) $worlds" >&2
"$python" Benchmarks/zmq_ring_ceiling.py --worlds "$(echo $worlds | tr ' ' ,)" --repeats 3 | tail -1 > "$out/ring.json"
echo "bench-allreduce: $(uptime)" >&2
"$python" - "$out" "$worlds" "$rounds" <<'PY'
import json, sys, os, statistics
out, worlds, rounds = sys.argv[1], sys.argv[2].split(), int(sys.argv[3])
zmq = json.load(open(os.path.join(out, "zmq.json")))
rows = zmq.get("zmq") or []
unidir = max((r["per_direction_GBps"] for r in rows if r["mode"] == "unidir"), default=None)
bidir = max((r["per_direction_GBps"] for r in rows if r["mode"] == "bidir"), default=None)
# In a ring every rank sends and receives at once, and busbw counts the bytes each rank sends
# per second: the matching ceiling is the bidirectional per-direction throughput.
ring_rows = json.load(open(os.path.join(out, "ring.json"))).get("ring", [])
ring = {str(w): max((r["per_process_GBps"] for r in ring_rows if str(r["world"]) == str(w)), default=None) for w in worlds}
result = {"bench": "bench_allreduce_side_by_side", "rounds": rounds, "zmq_unidir_GBps": unidir, "zmq_bidir_per_direction_GBps": bidir,
          "zmq_ring_per_process_GBps": ring, "memcpy_GBps": (zmq.get("mem") or {}).get("memcpy", {}).get("GBps"), "worlds": {}}
print(f"raw ZeroMQ loopback: unidir {unidir} GB/s, bidir {bidir} GB/s per direction; ring of N: {ring} GB/s sent per process", file=sys.stderr)
print(f"busbw in GB/s, median over {rounds} round(s):", file=sys.stderr)
print("srdpr: same-host links (the default for ranks on one host); tcp: srdpr over loopback TCP", file=sys.stderr)
print(f"{'world':>5} {'MB':>6} {'srdpr':>7} {'tcp':>7} {'gloo':>7} {'srdpr/gloo':>10} {'srdpr/bidir':>11} {'tcp/gloo':>8} {'tcp/bidir':>9} {'tcp/ring':>8}", file=sys.stderr)
for w in worlds:
    ours_runs = [json.load(open(os.path.join(out, f"srdpr-{w}-{r}.json"))) for r in range(1, rounds + 1)]
    gloo_runs = [json.load(open(os.path.join(out, f"gloo-{w}-{r}.json"))) for r in range(1, rounds + 1)]
    def per_size(runs):
        table = {}
        for run in runs:
            for row in run.get("allreduce", []):
                table.setdefault(float(row["size_mb"]), []).append(row["busbw_GBps"])
        return table
    tcp_runs = [json.load(open(os.path.join(out, f"srdpr-tcp-{w}-{r}.json"))) for r in range(1, rounds + 1)]
    ours_by, gloo_by, tcp_by = per_size(ours_runs), per_size(gloo_runs), per_size(tcp_runs)
    entries = []
    for mb in sorted(ours_by):
        b = statistics.median(ours_by[mb]); g = statistics.median(gloo_by[mb]) if mb in gloo_by else None
        t = statistics.median(tcp_by[mb]) if mb in tcp_by else float("nan")
        ratio = lambda x, y: round(x / y, 3) if y else None
        e = {"size_mb": mb, "srdpr_busbw_GBps": round(b, 3), "gloo_busbw_GBps": round(g, 3) if g else None,
             "srdpr_busbw_rounds": ours_by[mb], "gloo_busbw_rounds": gloo_by.get(mb),
             "srdpr_tcp_busbw_GBps": round(t, 3), "srdpr_tcp_busbw_rounds": tcp_by.get(mb),
             "srdpr_over_gloo": ratio(b, g), "srdpr_over_zmq_bidir": ratio(b, bidir), "srdpr_over_zmq_unidir": ratio(b, unidir),
             "tcp_over_gloo": ratio(t, g), "tcp_over_zmq_bidir": ratio(t, bidir), "tcp_over_zmq_unidir": ratio(t, unidir),
             "tcp_over_zmq_ring": ratio(t, ring.get(w))}
        entries.append(e)
        nan = float("nan")
        print(f"{w:>5} {mb:>6g} {b:>7.3f} {t:>7.3f} {g if g is not None else nan:>7.3f} "
              f"{e['srdpr_over_gloo'] or nan:>10.2f} {e['srdpr_over_zmq_bidir'] or nan:>11.2f} "
              f"{e['tcp_over_gloo'] or nan:>8.2f} {e['tcp_over_zmq_bidir'] or nan:>9.2f} {e['tcp_over_zmq_ring'] or nan:>8.2f}", file=sys.stderr)
    ours_gather = statistics.median(r["allgather"]["median_us"] for r in ours_runs)
    tcp_gather = statistics.median(r["allgather"]["median_us"] for r in tcp_runs)
    gloo_gather = statistics.median(r["allgather"]["median_us"] for r in gloo_runs if r.get("allgather"))
    print(f"{w:>5} all-gather [64,768] fp32 per rank: srdpr {ours_gather} us, tcp {tcp_gather} us, gloo {gloo_gather} us (median over rounds)", file=sys.stderr)
    result["worlds"][w] = {"comparison": entries, "allgather_median_us": {"srdpr": ours_gather, "srdpr_tcp": tcp_gather, "gloo": gloo_gather},
                           "srdpr_runs": ours_runs, "srdpr_tcp_runs": tcp_runs, "gloo_runs": gloo_runs}
result["loadavg_end"] = list(os.getloadavg())
print(json.dumps(result))
PY
rm -rf "$out"

#!/usr/bin/env python3
"""Raw ZeroMQ ceiling of a ring of N processes on this machine (no reduction, no headers).

Every process PUSHes --total-mb of messages to its right neighbour while PULLing as much
from its left one, all N at once over tcp://127.0.0.1, zero-copy sends and receives, as
../shared/bench/zmq_loopback_anchor.py does for two processes ("bidir"). That is exactly the
traffic of a ring all-reduce, so "GB/s sent per process" is the busbw a ring all-reduce of N
ranks could reach if reducing cost nothing. With N = 2 it measures what the anchor's bidir
test measures; with N > cores the processes share the cores, which the two-process anchor
cannot show. Timed from a common start to the last process done; median of --repeats trials.
Prints one JSON line: {"ring": [{"world", "msg_mb", "per_process_GBps", ...}]}; GB = 1e9 bytes.
"""
import argparse
import json
import multiprocessing as mp
import os
import socket
import statistics
import sys
import threading
import time


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def rank_proc(rank, ports, sizes, count_of, trials, barrier, results):
    import numpy as np
    import zmq

    n = len(ports)
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.RCVHWM, 0)
    pull.bind(f"tcp://127.0.0.1:{ports[rank]}")
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.SNDHWM, 0)
    push.connect(f"tcp://127.0.0.1:{ports[(rank + 1) % n]}")
    # Connections up before timing: one small message around the ring.
    push.send(b"hello")
    pull.recv()
    for size in sizes:
        buf = memoryview(np.ones(size, dtype=np.uint8))
        count = count_of[size]
        for trial in range(trials):
            barrier.wait()
            t0 = time.clock_gettime(time.CLOCK_MONOTONIC)

            def send_all():
                for _ in range(count):
                    push.send(buf, copy=False)

            tx = threading.Thread(target=send_all)
            tx.start()
            for _ in range(count):
                pull.recv(copy=False)
            tx.join()
            t1 = time.clock_gettime(time.CLOCK_MONOTONIC)
            results.put((rank, size, trial, t0, t1))
            barrier.wait()  # nobody starts the next trial while a peer still receives
    push.close(linger=0)
    pull.close(linger=0)
    ctx.term()


def ring(world, sizes_mb, total_mb, repeats, warmup):
    sizes = [int(mb * (1 << 20)) for mb in sizes_mb]
    count_of = {s: max(1, -(-int(total_mb * (1 << 20)) // s)) for s in sizes}
    trials = warmup + repeats
    spawn = mp.get_context("spawn")
    barrier, results = spawn.Barrier(world), spawn.Queue()
    ports = free_ports(world)
    procs = [spawn.Process(target=rank_proc, args=(r, ports, sizes, count_of, trials, barrier, results)) for r in range(world)]
    for p in procs:
        p.start()
    rows = [results.get(timeout=600) for _ in range(world * len(sizes) * trials)]
    for p in procs:
        p.join(timeout=60)
    out = []
    for mb, size in zip(sizes_mb, sizes):
        times = []
        for trial in range(warmup, trials):
            mine = [r for r in rows if r[1] == size and r[2] == trial]
            times.append(max(r[4] for r in mine) - min(r[3] for r in mine))
        med = statistics.median(times)
        nbytes = size * count_of[size]
        out.append({"world": world, "msg_mb": mb, "count": count_of[size], "bytes_per_process": nbytes,
                    "median_s": round(med, 5), "times_s": [round(t, 5) for t in times],
                    "per_process_GBps": round(nbytes / med / 1e9, 3)})
        print(f"[ring] world {world} msg {mb:>5} MB x{count_of[size]}: median {med:.3f}s  "
              f"{nbytes / med / 1e9:.3f} GB/s sent per process", file=sys.stderr, flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worlds", default="2,4")
    ap.add_argument("--sizes-mb", default="1,16", help="message sizes, MB = 2**20 bytes")
    ap.add_argument("--total-mb", type=float, default=1024, help="bytes each process sends per trial (MB)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    args = ap.parse_args()
    sizes = [float(s) for s in args.sizes_mb.split(",") if s.strip()]
    load0 = list(os.getloadavg())
    rows = []
    for world in [int(w) for w in args.worlds.split(",") if w.strip()]:
        rows += ring(world, sizes, args.total_mb, args.repeats, args.warmup)
    print(json.dumps({"bench": "zmq_ring_ceiling", "cpu_count": os.cpu_count(), "ring": rows,
                      "loadavg_before": load0, "loadavg_after": list(os.getloadavg())}), flush=True)


if __name__ == "__main__":
    main()

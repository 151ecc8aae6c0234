#!/usr/bin/env python3
"""numpy anchor for `srdpr bench search`: top-k by q @ P.T and argpartition, one JSON line on stdout."""
import argparse, json, sys, time
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--passages", type=int, default=100_000)
ap.add_argument("--dimension", type=int, default=384)
ap.add_argument("--queries", type=int, default=256)
ap.add_argument("--k", type=int, default=100)
ap.add_argument("--repeats", type=int, default=5)
a = ap.parse_args()

rng = np.random.default_rng(0)
P = rng.standard_normal((a.passages, a.dimension), dtype=np.float32)
Q = rng.standard_normal((a.queries, a.dimension), dtype=np.float32)
times = []
for trial in range(a.repeats + 1):
    t = time.perf_counter()
    S = Q @ P.T
    top = np.argpartition(-S, a.k - 1, axis=1)[:, :a.k]
    part = np.take_along_axis(S, top, axis=1)
    order = np.argsort(-part, axis=1, kind="stable")
    hits = np.take_along_axis(top, order, axis=1)
    dt = time.perf_counter() - t
    print(f"trial {trial}: {dt:.3f} s", file=sys.stderr)
    if trial:
        times.append(dt)
times.sort()
med = times[len(times) // 2]
print(json.dumps({"bench": "numpy-search", "passages": a.passages, "dimension": a.dimension, "queries": a.queries,
                  "k": a.k, "median_s": med, "min_s": times[0], "max_s": times[-1], "queries_per_s": a.queries / med}))

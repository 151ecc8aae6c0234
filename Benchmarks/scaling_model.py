"""The scaling model of README "How far it scales", fitted to cluster/scaling/run.sh's measurements.

step time(N) = compute(N) + all-gather(N) + exposed all-reduce(N)

- compute(N): one training step's compute on this machine (`srdpr bench train-step`, the seed's
  batch: 8 questions x 32 tokens, 16 passages x 256) times the share of the busiest of N nodes.
  Rows are whole: a node holds ceil(8/N) questions and ceil(16/N) passages, so this is C/N for N
  dividing 16 and stops shrinking at 16 nodes (one passage each).
- every collective is a ring: a message of B bytes over N ranks costs
      2(N-1) alpha + 2(N-1)/N B tau      (all-reduce: reduce-scatter, then all-gather)
        (N-1) alpha_gather + (N-1)/N B tau   (all-gather of the embeddings)
  with alpha the time of one ring step of a bucket (its latency and the bucket's own work) and
  tau the time per byte a rank sends: the slowest of three limits (the ring pipelines its chunks,
  so they overlap rather than add up):
      tau = max(1 / link, kappa_rank, N / cores x kappa_cpu)
  * link: the TCP payload bytes/s one shaped link carries (measured: raw TCP through it);
  * kappa_cpu: the CPU seconds the ranks spend per byte they send (sockets, copies, the fp32
    sums, bf16 rounding), measured by the ranks' own getrusage with unlimited links: the cores
    push cores / kappa_cpu bytes/s in all, and on this machine the N namespace hosts share them
    (on separate nodes a rank has a core of its own: N / cores becomes 1);
  * kappa_rank: the fastest one rank's ring goes when neither link nor cores limit it (one chunk
    at a time through its sockets, the bridge and the sums).
  alpha, alpha_gather and kappa_rank (fp32, bf16) are fitted (least squares of the relative error)
  to the unlimited-link points only; the shaped-link points are then predicted, not fitted.
- the all-reduce of one update covers the trainer's buckets (GradientPlan: one per layer, per
  encoder; the word-embedding rows touched by the batch as a packed all-reduce after a flag
  all-reduce). They are reduced in order, each once backward has produced it and the previous one
  is done; backward (measured, / N) produces them question encoder first, top layer first, in
  proportion to parameters x tokens. Exposed = when the last reduction ends minus when backward
  ends (what `srdpr bench gradient-allreduce` measures with that backward emulated).
- the all-gather of the batch's embeddings (fp32, (8 + 16) x hidden floats per step, each rank
  sending its share, which global_loss_buf_sz bounds) comes between forward and loss: nothing
  overlaps it.

usage: scaling_model.py DIR [--plot PNG]   (DIR: points.jsonl, compute-*.json, touched-rows.json)
Writes DIR/model.json and DIR/table.md and prints the table.
"""
import argparse, json, math, os, statistics, sys

VOCAB, POSITIONS, TYPES = 30522, 512, 2
SHAPES = {"minilm": (384, 6, 1536), "base": (768, 12, 3072)}
LABEL = {"minilm": "MiniLM-L6 (22.6M per encoder)", "base": "BERT-base (109.5M per encoder)"}
Q_ROWS, CTX_ROWS, Q_LEN, CTX_LEN = 8, 16, 32, 256
GLOBAL_LOSS_BUF_SZ = 150000  # the trainer's default (TrainingConfig.globalLossBufferSize)
PREDICT = [1, 2, 3, 4, 8, 16, 32, 64]
CALIBRATION = "none"  # the rate name of the unlimited-link points
WIRE_BYTES = {"fp32": 4, "bf16": 2}
WITHIN = 0.20
TBF_BURST_S = 0.002  # cluster/scaling/run.sh gives each tbf a bucket of 2 ms of traffic at its rate


def collectives(shape, touched, wire):
    """(bytes, backward cost weight, ends a part) of every all-reduce of one update, in reduction order."""
    h, layers, inter = SHAPES[shape]
    wire_bytes = WIRE_BYTES[wire]
    layer = 4 * h * h + 9 * h + 2 * h * inter + inter
    rest = POSITIONS * h + TYPES * h + 2 * h
    out = []
    for rows, tokens in ((touched[0], Q_ROWS * Q_LEN), (touched[1], CTX_ROWS * CTX_LEN)):
        for _ in range(layers):
            out.append({"bytes": layer * wire_bytes, "cost": layer * tokens, "part_end": True})
        # The embeddings part: flags (fp32), packed touched rows, then the position/type/LayerNorm rest.
        out.append({"bytes": VOCAB * 4, "cost": 0, "part_end": False})
        out.append({"bytes": rows * h * wire_bytes, "cost": 0, "part_end": False})
        out.append({"bytes": rest * wire_bytes, "cost": rest * tokens, "part_end": True})
    return out


def allgather_bytes(shape):
    """Bytes of the batch's embeddings gathered per step (all ranks together)."""
    return (Q_ROWS + CTX_ROWS) * SHAPES[shape][0] * 4


def compute_share(n):
    busiest = math.ceil(Q_ROWS / n) * Q_LEN + math.ceil(CTX_ROWS / n) * CTX_LEN
    return busiest / (Q_ROWS * Q_LEN + CTX_ROWS * CTX_LEN)


class Ring:
    """The ring's costs: alpha / alpha_gather (s per ring step of an all-reduce bucket / of the
    all-gather), kappa_rank and kappa_cpu (s per byte, per element type), link (bytes/s; None = no
    limit) and the cores the ranks share (None = each rank on its own node)."""

    def __init__(self, alpha, alpha_gather, kappa_rank, kappa_cpu, link, cores, burst=None):
        self.alpha, self.alpha_gather, self.kappa_rank, self.kappa_cpu = alpha, alpha_gather, kappa_rank, kappa_cpu
        self.link, self.cores, self.burst = link, cores, burst

    def limits(self, n, wire, shaped=True):
        share = 1.0 if self.cores is None else n / self.cores
        return {"link": 1 / self.link if self.link and shaped else 0.0, "rank": self.kappa_rank[wire], "cores": share * self.kappa_cpu[wire]}

    def byte_time(self, n, wire, shaped=True):
        return max(self.limits(n, wire, shaped).values())

    def bound(self, n, wire):
        limits = self.limits(n, wire)
        return max(limits, key=limits.get)

    def allreduce(self, colls, n, wire):
        if n == 1:
            return 0.0
        return sum(2 * (n - 1) * self.alpha + 2 * (n - 1) / n * c["bytes"] * self.byte_time(n, wire) for c in colls)

    def allgather(self, total_bytes, n):
        """A tbf link lets a burst of up to `burst` bytes through unshaped (its token bucket), which
        the all-gather of one step fits in here; a real link of that rate would not."""
        if n == 1:
            return 0.0
        sent = (n - 1) / n * total_bytes
        return (n - 1) * self.alpha_gather + sent * self.byte_time(n, "fp32", shaped=not (self.burst and sent <= self.burst))

    def exposed(self, colls, n, wire, backward):
        """Buckets reduced in order as a backward of length `backward` produces them."""
        if n == 1:
            return 0.0
        total = sum(c["cost"] for c in colls) or 1
        per_byte = self.byte_time(n, wire)
        finish, produced, pending = 0.0, 0.0, []
        for c in colls:
            produced += c["cost"]
            pending.append(c)
            if not c["part_end"]:
                continue
            ready = produced / total * backward
            for p in pending:
                finish = max(finish, ready) + 2 * (n - 1) * self.alpha + 2 * (n - 1) / n * p["bytes"] * per_byte
            pending = []
        return max(0.0, finish - backward)


def summary(values):
    """median, min, max of a list (None when empty)."""
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "count": len(values)}


def aggregate(points):
    """One entry per (rate, shape, wire, N): every timed iteration of every repeat pooled."""
    groups = {}
    for p in points:
        groups.setdefault((p["rate"], p["shape"], p["wire"], p["world"]), []).append(p)
    out = []
    for (rate, shape, wire, n), rs in groups.items():
        def pooled(field):
            return [t for r in rs for t in r.get(field, [])]
        loads = [r[k][0] for r in rs for k in ("loadavg_before", "loadavg") if r.get(k)]
        out.append({"rate": rate, "shape": shape, "wire": wire, "N": n, "repeats": len(rs),
                    "backward_s": statistics.median(r["backward_s"] for r in rs),
                    "allreduce": summary(pooled("allreduce_times_s")), "exposed": summary(pooled("exposed_times_s")),
                    "allgather": summary(pooled("allgather_times_s")), "allreduce_cpu": summary(pooled("allreduce_cpu_times_s")),
                    "load": [min(loads), max(loads)] if loads else None})
    return out


def fit(calibration, touched, kappa_cpu, cores):
    """alpha, alpha_gather, kappa_rank[fp32, bf16] >= 0 minimising the relative error of the
    unlimited-link all-reduces (then of the all-gathers for alpha_gather)."""
    from scipy.optimize import least_squares
    wires = sorted({p["wire"] for p in calibration})

    def ring(x):
        return Ring(x[0], 0.0, dict(zip(wires, x[1:])), kappa_cpu, None, cores)

    def residuals(x):
        r = ring(x)
        return [r.allreduce(collectives(p["shape"], touched, p["wire"]), p["N"], p["wire"]) / p["allreduce"]["median"] - 1 for p in calibration]
    start = [1e-4] + [statistics.median(p["allreduce"]["median"] / (2 * (p["N"] - 1) / p["N"] * sum(c["bytes"] for c in collectives(p["shape"], touched, w)))
                                        for p in calibration if p["wire"] == w) for w in wires]
    x = least_squares(residuals, start, bounds=(0, 1), x_scale=[1e-4] + [1e-9] * len(wires)).x
    alpha, kappa_rank = float(x[0]), {w: float(k) for w, k in zip(wires, x[1:])}
    gathers = [p for p in calibration if p["allgather"]]
    alpha_gather = alpha
    if gathers:
        def gather_residuals(y):
            r = Ring(alpha, y[0], kappa_rank, kappa_cpu, None, cores)
            return [r.allgather(allgather_bytes(p["shape"]), p["N"]) / p["allgather"]["median"] - 1 for p in gathers]
        alpha_gather = float(least_squares(gather_residuals, [1e-4], bounds=(0, 1), x_scale=[1e-4]).x[0])
    return alpha, alpha_gather, kappa_rank


def rate_order(rate):
    return -1.0 if rate == CALIBRATION else float(rate.replace("gbit", "").replace("mbit", "e-3"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--plot")
    args = parser.parse_args()
    rows = [json.loads(line) for line in open(os.path.join(args.dir, "points.jsonl")) if line.strip()]
    machine = [r for r in rows if r["kind"] == "machine"]
    cores = machine[-1]["cores"] if machine else os.cpu_count()
    link_checks = {}
    for r in rows:
        if r["kind"] == "link":
            link_checks.setdefault(r["rate"], []).append(r)
    links = {rate: {"raw_tcp_gbps": summary([c["raw_tcp_gbps"] for c in cs]), "uptimes": [c["uptime"] for c in cs]}
             for rate, cs in link_checks.items()}
    points = aggregate([r for r in rows if r["kind"] == "allreduce"])
    touched_file = json.load(open(os.path.join(args.dir, "touched-rows.json")))
    touched = (touched_file["touched_rows_question"], touched_file["touched_rows_context"])
    compute = {}
    for shape in SHAPES:
        path = os.path.join(args.dir, f"compute-{shape}.json")
        if os.path.exists(path):
            c = json.load(open(path))
            compute[shape] = {"step_s": statistics.median(c["step_times_s"]), "backward_s": statistics.median(c["backward_times_s"]),
                              "step_times_s": c["step_times_s"], "load_before": c.get("loadavg_before"), "load_after": c.get("loadavg_after")}
    rates = sorted({p["rate"] for p in points}, key=rate_order)
    wires = [w for w in WIRE_BYTES if any(p["wire"] == w for p in points)]
    shapes = [s for s in SHAPES if any(p["shape"] == s for p in points)]

    # The CPU cost per byte (the ranks' getrusage, all threads) and the fit: unlimited-link points only.
    calibration = [p for p in points if p["rate"] == CALIBRATION]
    if not any(p["wire"] == "fp32" for p in calibration):
        sys.exit(f"scaling_model.py: no unlimited-link fp32 points (rate '{CALIBRATION}') in {args.dir}/points.jsonl: "
                 "run cluster/scaling/run.sh with --rates including none")
    kappa_cpu = {}
    for wire in wires:
        ratios = [p["allreduce_cpu"]["median"] / (2 * (p["N"] - 1) * sum(c["bytes"] for c in collectives(p["shape"], touched, wire)))
                  for p in calibration if p["wire"] == wire and p["allreduce_cpu"]]
        if not ratios:
            sys.exit(f"scaling_model.py: no CPU seconds (allreduce_cpu_times_s) of unlimited-link {wire} points: measure them again")
        kappa_cpu[wire] = statistics.median(ratios)
    alpha, alpha_gather, kappa_rank = fit(calibration, touched, kappa_cpu, cores)
    link_bytes = {rate: links[rate]["raw_tcp_gbps"]["median"] * 1e9 / 8 for rate in links if rate != CALIBRATION}
    missing = [rate for rate in rates if rate != CALIBRATION and rate not in link_bytes]
    if missing:
        sys.exit(f"scaling_model.py: no raw TCP measurement of the link for {missing} in points.jsonl")

    def ring_here(rate):
        burst = float(rate.replace("gbit", "e9").replace("mbit", "e6")) / 8 * TBF_BURST_S if rate != CALIBRATION else None
        return Ring(alpha, alpha_gather, kappa_rank, kappa_cpu, link_bytes.get(rate), cores, burst)

    def ring_nodes(rate):
        return Ring(alpha, alpha_gather, kappa_rank, kappa_cpu, link_bytes.get(rate), None)

    table, deviations = [], []
    for p in sorted(points, key=lambda p: (rate_order(p["rate"]), p["shape"], p["wire"], p["N"])):
        n, shape, wire = p["N"], p["shape"], p["wire"]
        ring = ring_here(p["rate"])
        colls = collectives(shape, touched, wire)
        row = {"rate": p["rate"], "shape": shape, "wire": wire, "N": n, "repeats": p["repeats"],
               "iterations": p["allreduce"]["count"], "fitted": p["rate"] == CALIBRATION, "load": p["load"],
               "bound": ring.bound(n, wire),
               "allreduce": p["allreduce"], "allreduce_predicted_s": ring.allreduce(colls, n, wire),
               "exposed": p["exposed"], "exposed_predicted_s": ring.exposed(colls, n, wire, p["backward_s"]),
               "allgather": p["allgather"], "allgather_predicted_s": ring.allgather(allgather_bytes(shape), n),
               "allreduce_cpu": p["allreduce_cpu"]}
        row["allreduce_dev"] = row["allreduce_predicted_s"] / p["allreduce"]["median"] - 1
        if p["allgather"]:
            row["allgather_dev"] = row["allgather_predicted_s"] / p["allgather"]["median"] - 1
        if shape in compute:
            comp = compute[shape]["step_s"] * compute_share(n)
            gathered = p["allgather"]["median"] if p["allgather"] else 0.0
            row["step_measured_s"] = comp + gathered + p["exposed"]["median"]
            row["step_predicted_s"] = comp + row["allgather_predicted_s"] + row["exposed_predicted_s"]
            row["step_dev"] = row["step_predicted_s"] / row["step_measured_s"] - 1
        table.append(row)
        if not row["fitted"]:
            for name in ("allreduce", "allgather", "step"):
                dev = row.get(f"{name}_dev")
                if dev is not None and abs(dev) > WITHIN:
                    deviations.append(f"{p['rate']} {shape} {wire} N={n}: {name} predicted {dev:+.0%} off the measured median")

    def predict(rate, shape, wire):
        ring, c = ring_nodes(rate), compute[shape]
        colls = collectives(shape, touched, wire)
        out = []
        for n in PREDICT:
            e = ring.exposed(colls, n, wire, c["backward_s"] * compute_share(n))
            g = ring.allgather(allgather_bytes(shape), n)
            step = c["step_s"] * compute_share(n) + g + e
            out.append({"rate": rate, "shape": shape, "wire": wire, "N": n, "step_s": step, "allgather_s": g, "exposed_s": e,
                        "allreduce_s": ring.allreduce(colls, n, wire), "speedup": c["step_s"] / step, "efficiency": c["step_s"] / step / n})
        return out

    predictions = [q for rate in rates if rate != CALIBRATION for shape in shapes if shape in compute for wire in wires
                   for q in predict(rate, shape, wire)]

    def spread(s, digits=3):
        if not s:
            return "–"
        f = f"{{:.{digits}f}}"
        return f"{f.format(s['median'])} [{f.format(s['min'])}–{f.format(s['max'])}]"

    def load_text(load):
        return "" if not load else (f"{load[0]:.1f}" if abs(load[1] - load[0]) < 0.05 else f"{load[0]:.1f}–{load[1]:.1f}")

    lines = [f"Fitted to the unlimited-link points: alpha = {alpha * 1e3:.3f} ms per ring step of a bucket, "
             f"alpha_gather = {alpha_gather * 1e3:.3f} ms per ring step of the all-gather, kappa_rank = "
             + ", ".join(f"{v * 1e9:.3f} ns/byte {w} ({1 / v / 1e6:.0f} MB/s)" for w, v in kappa_rank.items())
             + f". Measured: kappa_cpu (getrusage of the ranks) = "
             + ", ".join(f"{v * 1e9:.3f} ns/byte {w} ({cores} cores: {cores / v / 1e6:.0f} MB/s in all)" for w, v in kappa_cpu.items())
             + "; links (raw TCP, median of the checks): "
             + ", ".join(f"{rate} {links[rate]['raw_tcp_gbps']['median']:.3f} Gbit/s" for rate in sorted(link_bytes, key=rate_order)),
             "",
             "| link | model | all-reduce | N | runs × iters | bound | all-reduce measured median [min–max] / predicted (s) | dev | "
             "all-gather measured / predicted (ms) | exposed measured / predicted (s) | step measured / predicted (s) | step dev | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        gather = (f"{r['allgather']['median'] * 1e3:.1f} [{r['allgather']['min'] * 1e3:.1f}–{r['allgather']['max'] * 1e3:.1f}] / "
                  f"{r['allgather_predicted_s'] * 1e3:.1f}") if r["allgather"] else f"– / {r['allgather_predicted_s'] * 1e3:.1f}"
        dev = f"{r['allreduce_dev']:+.0%}" + (" (fit)" if r["fitted"] else ("" if abs(r["allreduce_dev"]) <= WITHIN else " ✗"))
        step = f"{r['step_measured_s']:.2f} / {r['step_predicted_s']:.2f}" if "step_dev" in r else "–"
        step_dev = f"{r['step_dev']:+.1%}" if "step_dev" in r else "–"
        lines.append(f"| {'no limit' if r['rate'] == CALIBRATION else r['rate']} | {r['shape']} | {r['wire']} | {r['N']} | "
                     f"{r['repeats']} × {r['iterations'] // max(1, r['repeats'])} | {r['bound']} | "
                     f"{spread(r['allreduce'])} / {r['allreduce_predicted_s']:.3f} | {dev} | {gather} | "
                     f"{spread(r['exposed'])} / {r['exposed_predicted_s']:.3f} | {step} | {step_dev} | {load_text(r['load'])} |")
    tested = [r for r in table if not r["fitted"]]
    good = [r for r in tested if abs(r["allreduce_dev"]) <= WITHIN]
    lines += ["", f"Predicted (not fitted) all-reduce times within {WITHIN:.0%} of the measured median: {len(good)} of {len(tested)}; "
              f"all-gathers: {sum(1 for r in tested if r.get('allgather_dev') is not None and abs(r['allgather_dev']) <= WITHIN)} of "
              f"{sum(1 for r in tested if r.get('allgather_dev') is not None)}; steps: "
              f"{sum(1 for r in tested if 'step_dev' in r and abs(r['step_dev']) <= WITHIN)} of {sum(1 for r in tested if 'step_dev' in r)}."]
    if predictions:
        big = [n for n in PREDICT if n >= 8]
        lines += ["", "Predicted for separate nodes (each rank its own cores) at the seed's batch, with the compute measured here "
                  + ", ".join(f"({s}: {compute[s]['step_s']:.2f} s per step, backward {compute[s]['backward_s']:.2f} s)" for s in shapes if s in compute)
                  + ": step time in s (speed-up over one node; all-gather + exposed all-reduce in s):", "",
                  "| link | model | all-reduce | " + " | ".join(f"N={n}" for n in big) + " |", "|---|---|---|" + "---|" * len(big)]
        for rate in rates:
            for shape in shapes:
                for wire in wires:
                    ps = [q for q in predictions if q["rate"] == rate and q["shape"] == shape and q["wire"] == wire and q["N"] >= 8]
                    if ps:
                        lines.append(f"| {rate} | {shape} | {wire} | " + " | ".join(
                            f"{q['step_s']:.2f} ({q['speedup']:.1f}×, {q['allgather_s'] + q['exposed_s']:.2f})" for q in ps) + " |")
    text = "\n".join(lines)
    print(text)
    if deviations:
        print("\nmore than 20% off:\n  " + "\n  ".join(deviations))
    with open(os.path.join(args.dir, "table.md"), "w") as fh:
        fh.write(text + "\n")
        if deviations:
            fh.write("\nMore than 20% off (predicted, not fitted):\n\n" + "\n".join(f"- {d}" for d in deviations) + "\n")
    model = {"alpha_s": alpha, "alpha_gather_s": alpha_gather, "kappa_rank_s_per_byte": kappa_rank, "kappa_cpu_s_per_byte": kappa_cpu, "cores": cores, "link_bytes_per_s": link_bytes, "links": links,
             "allgather_bytes": {s: allgather_bytes(s) for s in SHAPES}, "global_loss_buf_sz": GLOBAL_LOSS_BUF_SZ,
             "compute": compute, "touched_rows": touched, "measured_vs_predicted": table, "predictions": predictions,
             "deviations_over_20pct": deviations}
    with open(os.path.join(args.dir, "model.json"), "w") as fh:
        json.dump(model, fh, indent=1)

    if args.plot:
        plot(args.plot, table, predictions, shapes, rates, wires, compute, touched, ring_here)


def plot(path, table, predictions, shapes, rates, wires, compute, touched, ring_here):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter
    # Per model two rows (step time; communication), one column per link rate.
    fig, axes = plt.subplots(2 * len(shapes), len(rates), figsize=(4.3 * len(rates), 3.4 * 2 * len(shapes)), squeeze=False)
    colors = {"fp32": "tab:blue", "bf16": "tab:orange"}
    here = [n for n in PREDICT if 2 <= n <= 4]
    for row, shape in enumerate(shapes):
        for col, rate in enumerate(rates):
            top, bottom = axes[2 * row][col], axes[2 * row + 1][col]
            ring = ring_here(rate)
            for wire in wires:
                colls = collectives(shape, touched, wire)
                ms = [r for r in table if r["rate"] == rate and r["shape"] == shape and r["wire"] == wire]
                if not ms:
                    continue
                color = colors[wire]
                ps = [q for q in predictions if q["rate"] == rate and q["shape"] == shape and q["wire"] == wire]
                if ps:
                    top.plot([q["N"] for q in ps], [q["step_s"] for q in ps], "-", color=color, label=f"predicted, separate nodes, {wire}")
                ms_step = [r for r in ms if "step_dev" in r]
                top.plot([r["N"] for r in ms_step], [r["step_predicted_s"] for r in ms_step], "s", mfc="none", color=color,
                         label=f"predicted here, {wire}")
                top.plot([r["N"] for r in ms_step], [r["step_measured_s"] for r in ms_step], "o", ms=3.5, color=color, label=f"measured, {wire}")
                bottom.plot(here, [ring.allreduce(colls, n, wire) for n in here], "-", color=color, label=f"all-reduce predicted, {wire}")
                bottom.errorbar([r["N"] for r in ms], [r["allreduce"]["median"] for r in ms],
                                yerr=[[r["allreduce"]["median"] - r["allreduce"]["min"] for r in ms],
                                      [r["allreduce"]["max"] - r["allreduce"]["median"] for r in ms]],
                                fmt="o", ms=3.5, capsize=3, color=color, label=f"all-reduce measured, {wire} (median, min–max)")
                if wire == "fp32":
                    gs = [r for r in ms if r["allgather"]]
                    bottom.plot(here, [ring.allgather(allgather_bytes(shape), n) for n in here], ":", color="tab:green", label="all-gather predicted")
                    bottom.plot([r["N"] for r in gs], [r["allgather"]["median"] for r in gs], "^", ms=4, color="tab:green", label="all-gather measured")
            name = "no link limit (fitted)" if rate == CALIBRATION else f"{rate}/s"
            for ax, ticks in ((top, PREDICT), (bottom, here)):
                ax.set_xscale("log", base=2)
                ax.set_xticks(ticks)
                ax.set_yscale("log")
                ax.grid(alpha=0.3)
                for axis in (ax.xaxis, ax.yaxis):
                    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                    axis.set_minor_formatter(NullFormatter())
            top.set_title(f"{LABEL[shape]}, {name}: step", fontsize=9)
            bottom.set_title(f"{shape}, {name}: communication per step", fontsize=8)
            top.set_ylabel("step time (s)"); bottom.set_ylabel("seconds")
            bottom.set_xlabel("ranks")
            if col == 0:
                top.legend(fontsize=6); bottom.legend(fontsize=6)
    fig.suptitle("srdpr at the seed's batch, network-namespace hosts of one 2-core machine, tc tbf links: "
                 "prediction (lines, open squares) and measurement (points)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()

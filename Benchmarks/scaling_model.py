"""The scaling model of README "How far it scales", fitted to cluster/scaling/run.sh's measurements.

step time(N) = compute(N) + exposed communication(N)

- compute(N): one training step's compute on this machine (`srdpr bench train-step`, the seed's
  batch: 8 questions x 32 tokens, 16 passages x 256) times the share of the busiest of N nodes.
  Rows are whole: a node holds ceil(8/N) questions and ceil(16/N) passages, so this is C/N for N
  dividing 16 and stops shrinking at 16 nodes (one passage each).
- the all-reduce of one update, over the trainer's gradient buckets (GradientPlan: one per layer,
  per encoder, the word-embedding rows touched by the batch as a packed all-reduce after a
  flag all-reduce): T(N) = sum over collectives of [2(N-1) alpha + 2(N-1)/N bytes / beta],
  the ring's latency and bandwidth terms; alpha and beta are fitted per link rate and element
  type to the measured all-reduce times of both model sizes and N = 2, 3, 4.
- exposed(N): the buckets are reduced in order, each once backward has produced it and the
  previous one is done; backward (measured, / N) produces them question encoder first, top layer
  first, in proportion to parameters x tokens. Exposed = when the last reduction ends minus when
  backward ends (what `srdpr bench gradient-allreduce` measures with that backward emulated).

usage: scaling_model.py DIR [--plot PNG]   (DIR: points.jsonl, compute-*.json, touched-rows.json)
Writes DIR/model.json and DIR/table.md and prints the table.
"""
import argparse, json, math, os, statistics

VOCAB, POSITIONS, TYPES = 30522, 512, 2
SHAPES = {"minilm": (384, 6, 1536), "base": (768, 12, 3072)}
LABEL = {"minilm": "MiniLM-L6 (22.6M per encoder)", "base": "BERT-base (109.5M per encoder)"}
Q_ROWS, CTX_ROWS, Q_LEN, CTX_LEN = 8, 16, 32, 256
PREDICT = [1, 2, 3, 4, 8, 16, 32, 64]


def collectives(shape, touched, wire_bytes):
    """(bytes, dense-parameter cost weight, side) of every collective of one update, in reduction order."""
    h, layers, inter = SHAPES[shape]
    layer = 4 * h * h + 9 * h + 2 * h * inter + inter
    rest = POSITIONS * h + TYPES * h + 2 * h
    out = []
    for side, rows, tokens in (("q", touched[0], Q_ROWS * Q_LEN), ("ctx", touched[1], CTX_ROWS * CTX_LEN)):
        for _ in range(layers):
            out.append({"bytes": layer * wire_bytes, "cost": layer * tokens, "part_end": True})
        # The embeddings part: flags (fp32), packed touched rows, then the position/type/LayerNorm rest.
        out.append({"bytes": VOCAB * 4, "cost": 0, "part_end": False})
        out.append({"bytes": rows * h * wire_bytes, "cost": 0, "part_end": False})
        out.append({"bytes": rest * wire_bytes, "cost": (rest + 0) * tokens, "part_end": True})
    return out


def allreduce_time(colls, n, alpha, beta):
    if n == 1:
        return 0.0
    return sum(2 * (n - 1) * alpha + 2 * (n - 1) / n * c["bytes"] / beta for c in colls)


def exposed_time(colls, n, alpha, beta, backward):
    """Buckets reduced in order as backward (length `backward`) produces them."""
    if n == 1:
        return 0.0
    total = sum(c["cost"] for c in colls) or 1
    ready, finish, produced = 0.0, 0.0, 0.0
    pending = []
    for c in colls:
        produced += c["cost"]
        pending.append(c)
        if not c["part_end"]:
            continue
        ready = produced / total * backward
        for p in pending:
            finish = max(finish, ready) + 2 * (n - 1) * alpha + 2 * (n - 1) / n * p["bytes"] / beta
        pending = []
    return max(0.0, finish - backward)


def compute_share(n):
    busiest = math.ceil(Q_ROWS / n) * Q_LEN + math.ceil(CTX_ROWS / n) * CTX_LEN
    return busiest / (Q_ROWS * Q_LEN + CTX_ROWS * CTX_LEN)


def fit(samples, wires):
    """Least squares of T = alpha * x1 + x2[wire] / beta[wire] over one link rate: the ring's
    per-message latency alpha is shared by both element types, the bandwidth is fitted per type
    (bf16 payloads cost conversion work per byte). alpha is kept >= 0."""
    import numpy as np
    def solve(with_alpha):
        columns = ([[s["x1"] for s in samples]] if with_alpha else []) + [[s["x2"] if s["wire"] == w else 0.0 for s in samples] for w in wires]
        a = np.array(columns).T
        solution, *_ = np.linalg.lstsq(a, np.array([s["t"] for s in samples]), rcond=None)
        return solution
    solution = solve(True)
    alpha = float(solution[0])
    if alpha < 0:
        alpha, inverse = 0.0, solve(False)
    else:
        inverse = solution[1:]
    return alpha, {w: 1 / float(b) if b > 0 else float("inf") for w, b in zip(wires, inverse)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--plot")
    parser.add_argument("--step-seconds", help="also predict with these one-node step times, e.g. minilm=2.56,base=12.43 "
                        "(an idle machine's; backward keeps its measured share of the step)")
    args = parser.parse_args()
    rows = [json.loads(line) for line in open(os.path.join(args.dir, "points.jsonl")) if line.strip()]
    links = {r["rate"]: r for r in rows if r["kind"] == "link"}
    points = [r for r in rows if r["kind"] == "allreduce"]
    touched_file = json.load(open(os.path.join(args.dir, "touched-rows.json")))
    touched = (touched_file["touched_rows_question"], touched_file["touched_rows_context"])
    compute = {}
    for shape in SHAPES:
        path = os.path.join(args.dir, f"compute-{shape}.json")
        if os.path.exists(path):
            c = json.load(open(path))
            compute[shape] = {"step_s": statistics.median(c["step_times_s"]), "backward_s": statistics.median(c["backward_times_s"]),
                              "load_before": c.get("loadavg_before"), "load_after": c.get("loadavg_after")}
    rates = sorted({p["rate"] for p in points}, key=lambda r: float(r.rstrip("gbit") or 0))
    wires = [w for w in ("fp32", "bf16") if any(p["wire"] == w for p in points)]
    shapes = [s for s in SHAPES if any(p["shape"] == s for p in points)]

    fits = {}
    for rate in rates:
        samples = []
        for p in points:
            if p["rate"] != rate:
                continue
            colls = collectives(p["shape"], touched, 2 if p["wire"] == "bf16" else 4)
            n = p["world"]
            samples.append({"wire": p["wire"], "x1": 2 * (n - 1) * len(colls),
                            "x2": 2 * (n - 1) / n * sum(c["bytes"] for c in colls), "t": p["allreduce_s"]})
        present = [w for w in wires if any(s["wire"] == w for s in samples)]
        if len(samples) > len(present):
            alpha, betas = fit(samples, present)
            for wire in present:
                fits[(rate, wire)] = {"alpha_s": alpha, "beta_bytes_per_s": betas[wire]}

    table, deviations = [], []
    for p in sorted(points, key=lambda p: (p["rate"], p["shape"], p["wire"], p["world"])):
        key = (p["rate"], p["wire"])
        if key not in fits or p["shape"] not in compute:
            continue
        f = fits[key]; n = p["world"]
        colls = collectives(p["shape"], touched, 2 if p["wire"] == "bf16" else 4)
        c = compute[p["shape"]]
        t_pred = allreduce_time(colls, n, f["alpha_s"], f["beta_bytes_per_s"])
        e_pred = exposed_time(colls, n, f["alpha_s"], f["beta_bytes_per_s"], p["backward_s"])
        comp = c["step_s"] * compute_share(n)
        step_meas, step_pred = comp + p["exposed_s"], comp + e_pred
        row = {"rate": p["rate"], "shape": p["shape"], "wire": p["wire"], "N": n,
               "allreduce_measured_s": p["allreduce_s"], "allreduce_predicted_s": t_pred,
               "exposed_measured_s": p["exposed_s"], "exposed_predicted_s": e_pred,
               "step_measured_s": step_meas, "step_predicted_s": step_pred,
               "allreduce_dev": t_pred / p["allreduce_s"] - 1, "step_dev": step_pred / step_meas - 1,
               "load": p.get("loadavg")}
        table.append(row)
        for name in ("allreduce", "step"):
            if abs(row[f"{name}_dev"]) > 0.20:
                deviations.append(f"{p['rate']} {p['shape']} {p['wire']} N={n}: {name} predicted {row[f'{name}_predicted_s']:.3f} s, "
                                  f"measured {row[f'{name}_measured_s']:.3f} s ({row[f'{name}_dev']:+.0%})")

    def predict(compute_of):
        out = []
        for rate in rates:
            for shape in shapes:
                if shape not in compute_of:
                    continue
                for wire in wires:
                    if (rate, wire) not in fits:
                        continue
                    f = fits[(rate, wire)]; c = compute_of[shape]
                    colls = collectives(shape, touched, 2 if wire == "bf16" else 4)
                    for n in PREDICT:
                        e = exposed_time(colls, n, f["alpha_s"], f["beta_bytes_per_s"], c["backward_s"] * compute_share(n))
                        step = c["step_s"] * compute_share(n) + e
                        out.append({"rate": rate, "shape": shape, "wire": wire, "N": n, "step_s": step,
                                    "allreduce_s": allreduce_time(colls, n, f["alpha_s"], f["beta_bytes_per_s"]),
                                    "exposed_s": e, "speedup": c["step_s"] / step, "efficiency": c["step_s"] / step / n})
        return out

    def prediction_lines(preds, title):
        out = ["", title, "", "| link | model | all-reduce | " + " | ".join(f"N={n}" for n in PREDICT if n >= 8) + " |",
               "|---|---|---|" + "---|" * len([n for n in PREDICT if n >= 8])]
        for rate in rates:
            for shape in shapes:
                for wire in wires:
                    ps = [p for p in preds if p["rate"] == rate and p["shape"] == shape and p["wire"] == wire and p["N"] >= 8]
                    if ps:
                        out.append(f"| {rate} | {shape} | {wire} | " + " | ".join(f"{p['step_s']:.2f} ({p['speedup']:.1f}x, {p['exposed_s']:.2f})" for p in ps) + " |")
        return out

    predictions = predict(compute)
    idle_predictions = []
    if args.step_seconds:
        idle = {}
        for item in args.step_seconds.split(","):
            shape, seconds = item.split("=")
            if shape in compute:
                share = compute[shape]["backward_s"] / compute[shape]["step_s"]
                idle[shape] = {"step_s": float(seconds), "backward_s": float(seconds) * share}
        idle_predictions = predict(idle)

    lines = ["| link | model | all-reduce | N | all-reduce measured / predicted (s) | exposed measured / predicted (s) | step measured / predicted (s) | step deviation | load |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['rate']} | {r['shape']} | {r['wire']} | {r['N']} | {r['allreduce_measured_s']:.3f} / {r['allreduce_predicted_s']:.3f} "
                     f"({r['allreduce_dev']:+.0%}) | {r['exposed_measured_s']:.3f} / {r['exposed_predicted_s']:.3f} | "
                     f"{r['step_measured_s']:.2f} / {r['step_predicted_s']:.2f} | {r['step_dev']:+.1%} | {r['load'][0] if r['load'] else ''} |")
    lines += prediction_lines(predictions, "Predicted at the seed's batch with the compute measured here: step time in s "
                              "(speed-up over one node, exposed communication in s):")
    if idle_predictions:
        lines += prediction_lines(idle_predictions, f"The same with one-node step times {args.step_seconds} s (an idle machine's):")
    text = "\n".join(lines)
    print(text)
    if deviations:
        print("\nmore than 20% off:\n  " + "\n  ".join(deviations))
    with open(os.path.join(args.dir, "table.md"), "w") as fh:
        fh.write(text + "\n")
        if deviations:
            fh.write("\nMore than 20% off:\n\n" + "\n".join(f"- {d}" for d in deviations) + "\n")
    model = {"fits": {f"{r} {w}": v for (r, w), v in fits.items()}, "compute": compute, "touched_rows": touched,
             "links": links, "measured_vs_predicted": table, "predictions": predictions, "predictions_with_step_seconds": idle_predictions, "deviations_over_20pct": deviations}
    with open(os.path.join(args.dir, "model.json"), "w") as fh:
        json.dump(model, fh, indent=1)

    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        panels = [(s, r) for s in shapes for r in rates]
        fig, axes = plt.subplots(2, len(panels), figsize=(4.2 * len(panels), 7.5), squeeze=False)
        colors = {"fp32": "tab:blue", "bf16": "tab:orange"}
        for col, (shape, rate) in enumerate(panels):
            top, bottom = axes[0][col], axes[1][col]
            for wire in wires:
                ps = [p for p in predictions if p["rate"] == rate and p["shape"] == shape and p["wire"] == wire]
                if not ps:
                    continue
                top.plot([p["N"] for p in ps], [p["step_s"] for p in ps], "-", color=colors[wire], label=f"predicted {wire}")
                ms = [r for r in table if r["rate"] == rate and r["shape"] == shape and r["wire"] == wire]
                top.plot([r["N"] for r in ms], [r["step_measured_s"] for r in ms], "o", color=colors[wire], label=f"measured {wire}")
                ns = [n for n in PREDICT if n > 1]
                f = fits[(rate, wire)]
                colls = collectives(shape, touched, 2 if wire == "bf16" else 4)
                bottom.plot(ns, [allreduce_time(colls, n, f["alpha_s"], f["beta_bytes_per_s"]) for n in ns], "-", color=colors[wire],
                            label=f"all-reduce predicted {wire}")
                bottom.plot([r["N"] for r in ms], [r["allreduce_measured_s"] for r in ms], "o", color=colors[wire], label=f"all-reduce measured {wire}")
                bottom.plot(ns, [exposed_time(colls, n, f["alpha_s"], f["beta_bytes_per_s"], compute[shape]["backward_s"] * compute_share(n)) for n in ns],
                            "--", color=colors[wire], label=f"exposed predicted {wire}")
                bottom.plot([r["N"] for r in ms], [r["exposed_measured_s"] for r in ms], "x", color=colors[wire], label=f"exposed measured {wire}")
            for ax in (top, bottom):
                ax.set_xscale("log", base=2); ax.set_xticks(PREDICT); ax.set_xticklabels([str(n) for n in PREDICT]); ax.grid(alpha=0.3)
            top.set_yscale("log"); top.set_title(f"{LABEL[shape]}, {rate}/s", fontsize=9)
            top.set_ylabel("step time (s)"); bottom.set_ylabel("communication (s)"); bottom.set_xlabel("nodes")
            if col == 0:
                top.legend(fontsize=7); bottom.legend(fontsize=6)
        fig.suptitle("srdpr step time vs nodes at the seed's batch: prediction (lines) and measurements (points), tc tbf-limited links", fontsize=10)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)


if __name__ == "__main__":
    main()

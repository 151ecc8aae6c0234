#!/usr/bin/env python3
"""The README's table of the FAQ study from what scripts/faq-study.sh left in STUDY_OUT:
    faq-study-table.py STUDY_OUT UPDATES "SEED SEED..." [MATCHED_UPDATES]
(MATCHED_UPDATES: the updates of the inbatch-matched rows, as many encoded sequences as UPDATES of SR-DPR)
Rows whose runs are missing are left out; trained rows of several seeds also get their mean.
Writes STUDY_OUT/results.jsonl (one line per run)."""
import json
import os
import sys

out, updates, seeds = sys.argv[1], sys.argv[2], sys.argv[3].split()
matched = sys.argv[4] if len(sys.argv) > 4 else "?"
rows = [("zero-shot MiniLM-L6 ([CLS], dot product)", ["zeroshot-cls"]),
        (f"DPR-style, train_mode=inbatch, [CLS], dot product, {updates} updates", ["inbatch-cls"]),
        (f"SR-DPR, train_mode=pos+poshard+hard, [CLS], dot product, {updates} updates", ["srdpr-cls"]),
        ("zero-shot MiniLM-L6 (mean, cosine): srdpr evaluate", ["zeroshot-mean"]),
        ("zero-shot MiniLM-L6 (mean, cosine): SentenceTransformer", ["zeroshot-st"])]
trained = [("inbatch-mean", "DPR-style, inbatch", updates), ("srdpr-mean", "SR-DPR, pos+poshard+hard", updates),
           ("inbatch-matched", "DPR-style, inbatch, as many encoded sequences as SR-DPR", matched),
           ("srdpr-bm25", "SR-DPR on srdpr's BM25 negatives", updates),
           ("srdpr-dense-minilm", "SR-DPR on zero-shot MiniLM's dense negatives", updates),
           ("srdpr-dense-srdpr1", "SR-DPR on the first SR-DPR model's dense negatives", updates)]
for kind, label, steps in trained:
    names = [f"{kind}-{s}" for s in seeds]
    for s, n in zip(seeds, names):
        rows.append((f"{label}, mean, cosine, sim_scale 20, {steps} updates, seed {s}", [n]))
    if len(names) > 1:
        rows.append((f"{label}: mean of the {len(names)} seeds", names))


def metrics(name):
    path = f"{out}/{name}.metrics.json"
    return json.load(open(path)) if os.path.exists(path) else None


def train_seconds(name):
    path = f"{out}/{name}/train_seconds"
    return open(path).read().strip() if os.path.exists(path) else None


print("| model | top-1 | top-5 | top-20 | top-100 | MRR@10 | nDCG@10 | train s | eval s |")
print("|---|---|---|---|---|---|---|---|---|")
with open(f"{out}/results.jsonl", "w") as results:
    for label, names in rows:
        ms = [metrics(n) for n in names]
        if any(m is None for m in ms):
            continue

        def mean(f):
            return sum(f(m) for m in ms) / len(ms)

        def top(k):
            return mean(lambda m: m["top_k_accuracy"][k])

        seconds = [s for s in map(train_seconds, names) if s is not None]
        print(f"| {label} | {top('1'):.3f} | {top('5'):.3f} | {top('20'):.3f} | {top('100'):.3f} | "
              f"{mean(lambda m: m['mrr@10']):.3f} | {mean(lambda m: m['ndcg@10']):.3f} | "
              f"{' / '.join(seconds) if seconds else '-'} | {mean(lambda m: m['seconds']):.0f} |")
        if len(names) == 1:
            results.write(json.dumps({"name": names[0], "train_seconds": seconds[0] if seconds else None, **ms[0]}) + "\n")

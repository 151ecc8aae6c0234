"""Writes a synthetic SR-DPR JSON-lines dataset for the dataset benchmark (deterministic).

usage: make_bench_jsonl.py OUT.jsonl [N=100000]
Samples look like the real ones: 1-3 questions of ~10 words, 1-2 positive and 0-5 hard-negative
passages of ~100 words (about 3.5 KB per line).
"""
import json, random, sys

out_path = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
rnd = random.Random(2024)
words = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 10))) for _ in range(5000)]
words += ["café", "naïve", "straße", "東京", "Ωmega", "\"quoted\"", "back\\slash"]

def text(k):
    return " ".join(rnd.choice(words) for _ in range(k))

with open(out_path, "w", encoding="utf-8") as f:
    for i in range(n):
        sample = {
            "sample_id": i,
            "questions": [text(rnd.randint(5, 15)) + "?" for _ in range(rnd.randint(1, 3))],
            "positive_contexts": [{"title": text(3), "text": text(rnd.randint(80, 120))} for _ in range(rnd.randint(1, 2))],
            "hardneg_contexts": [{"title": text(3), "text": text(rnd.randint(80, 120))} for _ in range(rnd.randint(0, 5))],
        }
        f.write(json.dumps(sample) + "\n")

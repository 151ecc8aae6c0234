"""Writes a synthetic passage collection for the index benchmarks (deterministic).

usage: make_bench_corpus.py OUT.jsonl [N=1000000] [MIN_WORDS=20] [MAX_WORDS=60] [LONG_EVERY=0]
One {"id", "title", "text"} line per passage: ids "p0", "p1", ...; a title of 3 words and a
text of MIN..MAX words drawn from a 5,000-word vocabulary of random letters plus a few
non-ASCII words (short passages: about 250 bytes a line by default). LONG_EVERY > 0: every
LONG_EVERY-th passage has 400 words instead, past any max length, so that every stretch of the
corpus has batches at the full length (the encoder's largest buffers) however short the rest is.
"""
import json, random, sys

out_path = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
low = int(sys.argv[3]) if len(sys.argv) > 3 else 20
high = int(sys.argv[4]) if len(sys.argv) > 4 else 60
long_every = int(sys.argv[5]) if len(sys.argv) > 5 else 0
rnd = random.Random(2026)
words = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 10))) for _ in range(5000)]
words += ["café", "naïve", "straße", "東京", "Ωmega"]

with open(out_path, "w", encoding="utf-8") as f:
    for i in range(n):
        title = " ".join(rnd.choice(words) for _ in range(3))
        count = rnd.randint(low, high)
        if long_every > 0 and i % long_every == long_every - 1:
            count = 400
        text = " ".join(rnd.choice(words) for _ in range(count))
        f.write(json.dumps({"id": f"p{i}", "title": title, "text": text}, ensure_ascii=False) + "\n")

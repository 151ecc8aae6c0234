#!/usr/bin/env python3
"""Zero-shot retrieval metrics of a sentence-transformers model computed by SentenceTransformer
itself, on the same inputs `srdpr evaluate` encodes, for the README's FAQ study:

    faq-zeroshot-st.py MODEL_DIR CORPUS.jsonl QRELS.jsonl MAX_LENGTH OUT.json [--raw]

Questions get the original's normalisation (strip, drop one trailing '?', strip), as srdpr
encodes them; a passage is "title [SEP] text" (the BERT tokenizer reads [SEP] as the special
token), which tokenizes to srdpr's [CLS] title [SEP] text [SEP] with token_type_ids all 0 and the
same truncation (the first MAX_LENGTH ids, the last one [SEP]). --raw encodes the question as
given and the passage as "title text", as a user of sentence-transformers would. The model's own
modules run (Transformer, Pooling, Normalize); scores are cosine similarities, ties go to the
lower corpus row; metrics as srdpr's RetrievalMetrics (binary relevance, top-k accuracy, recall,
MRR@10, nDCG@10 with log2 discount). Writes the same JSON keys as `srdpr evaluate --output`.
"""
import json
import math
import sys
import time

import numpy as np
from sentence_transformers import SentenceTransformer


def normalize_question(q):
    q = q.strip()
    if q.endswith("?"):
        q = q[:-1]
    return q.strip()


def main():
    model_dir, corpus_path, qrels_path, max_length, out_path = sys.argv[1:6]
    raw = "--raw" in sys.argv[6:]
    started = time.time()
    ids, passages = [], []
    for line in open(corpus_path, encoding="utf-8"):
        if not line.strip():
            continue
        o = json.loads(line)
        ids.append(str(o["id"]))
        title, text = (o.get("title") or "").strip(), o["text"].strip()
        passages.append(f"{title} {text}" if raw else f"{title} [SEP] {text}")
    questions, positives = [], []
    for line in open(qrels_path, encoding="utf-8"):
        if not line.strip():
            continue
        o = json.loads(line)
        questions.append(o["question"] if raw else normalize_question(o["question"]))
        positives.append({str(i) for i in o["positive_ids"]})

    model = SentenceTransformer(model_dir, device="cpu")
    model.max_seq_length = int(max_length)
    p = model.encode(passages, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
    q = model.encode(questions, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
    scores = q.astype(np.float32) @ p.astype(np.float32).T

    ks = [1, 5, 20, 100]
    hits = {k: 0.0 for k in ks}
    recall = {k: 0.0 for k in ks}
    mrr = ndcg = 0.0
    known = set(ids)
    for row, relevant in zip(scores, positives):
        relevant = relevant & known
        if not relevant:
            continue
        order = np.argsort(-row, kind="stable")[: max(max(ks), 10)]
        ranks = [i + 1 for i, r in enumerate(order) if ids[r] in relevant]
        for k in ks:
            found = sum(1 for r in ranks if r <= k)
            hits[k] += found > 0
            recall[k] += found / len(relevant)
        if ranks and ranks[0] <= 10:
            mrr += 1 / ranks[0]
        dcg = sum(1 / math.log2(r + 1) for r in ranks if r <= 10)
        ideal = sum(1 / math.log2(r + 1) for r in range(1, min(len(relevant), 10) + 1))
        ndcg += dcg / ideal
    n = max(len(questions), 1)
    result = {
        "questions": len(questions),
        "top_k_accuracy": {str(k): hits[k] / n for k in ks},
        "recall": {str(k): recall[k] / n for k in ks},
        "mrr@10": mrr / n,
        "ndcg@10": ndcg / n,
        "seconds": time.time() - started,
        "model": model_dir,
        "computed_by": "sentence-transformers " + __import__("sentence_transformers").__version__ + (" (raw inputs)" if raw else ""),
    }
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""The Python anchor of `srdpr bench mine`: rank-bm25 (Okapi, Lucene's idf, srdpr's analyzer, see
Tests/reference/bm25_reference.py) on the first PASSAGES lines of the same generated corpus:
index build time, queries/s (top-k with numpy's argpartition) and peak RSS. One JSON line.

usage: bm25_anchor.py CORPUS QUERIES PASSAGES QUERIES_TO_RUN K
"""
import json
import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Tests", "reference"))
from bm25_reference import LUCENE_ENGLISH_STOP_WORDS, LuceneIdfBM25, analyze  # noqa: E402


def main():
    corpus_path, queries_path, limit, query_count, k = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    start = time.perf_counter()
    documents = []
    with open(corpus_path, encoding="utf-8") as f:
        for line in f:
            if len(documents) == limit:
                break
            passage = json.loads(line)
            documents.append(analyze(passage.get("title") or "", LUCENE_ENGLISH_STOP_WORDS) + analyze(passage["text"], LUCENE_ENGLISH_STOP_WORDS))
    bm25 = LuceneIdfBM25(documents, k1=1.2, b=0.75)
    build = time.perf_counter() - start
    queries = [analyze(json.loads(line)["question"], LUCENE_ENGLISH_STOP_WORDS) for line in open(queries_path, encoding="utf-8")][:query_count]
    start = time.perf_counter()
    for terms in queries:
        scores = bm25.get_scores(terms)
        top = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
        top[np.lexsort((top, -scores[top]))]
    search = time.perf_counter() - start
    print(json.dumps({
        "benchmark": "bm25", "implementation": "rank-bm25 " + "0.2.2", "passages": len(documents), "queries": len(queries),
        "k": k, "build_seconds": build, "search_seconds": search, "queries_per_second": len(queries) / search,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }, sort_keys=True))


if __name__ == "__main__":
    main()

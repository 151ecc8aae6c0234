"""Reference BM25 for BM25ParityTests: rank-bm25's Okapi scoring with Lucene's idf and the analyzer
srdpr documents (runs of Unicode letters/marks/digits, each character lower-cased, Lucene's English
stop words). Prints, per question, the top-k passages with a score > 0 as JSON lines
{"question", "hits": [{"id", "score"}]}, ties in corpus order.

usage: bm25_reference.py CORPUS SAMPLES K K1 B STOPWORDS(english|none)
"""
import json
import math
import sys
import unicodedata

from rank_bm25 import BM25Okapi

LUCENE_ENGLISH_STOP_WORDS = {
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
}


def analyze(text, stop):
    terms, token = [], []
    for ch in text + " ":
        if unicodedata.category(ch)[0] in "LMN":
            token.append(ch.lower())
        elif token:
            term = "".join(token)
            token = []
            if term not in stop:
                terms.append(term)
    return terms


class LuceneIdfBM25(BM25Okapi):
    """rank-bm25's Okapi BM25 with Lucene's idf, ln(1 + (N - df + 0.5) / (df + 0.5))."""

    def _calc_idf(self, nd):
        for word, freq in nd.items():
            self.idf[word] = math.log(1 + (self.corpus_size - freq + 0.5) / (freq + 0.5))


def main():
    corpus_path, samples_path, k, k1, b, stop_name = sys.argv[1:7]
    k, k1, b = int(k), float(k1), float(b)
    stop = LUCENE_ENGLISH_STOP_WORDS if stop_name == "english" else set()
    ids, documents = [], []
    for line in open(corpus_path, encoding="utf-8"):
        if not line.strip():
            continue
        passage = json.loads(line)
        ids.append(str(passage.get("id", passage.get("_id"))))
        documents.append(analyze(passage.get("title") or "", stop) + analyze(passage["text"], stop))
    bm25 = LuceneIdfBM25(documents, k1=k1, b=b)
    out = sys.stdout
    for line in open(samples_path, encoding="utf-8"):
        if not line.strip():
            continue
        sample = json.loads(line)
        question = sample["questions"][0] if "questions" in sample else sample["question"]
        scores = bm25.get_scores(analyze(question, stop))
        ranked = sorted((row for row in range(len(ids)) if scores[row] > 0), key=lambda row: (-scores[row], row))[:k]
        out.write(json.dumps({"question": question, "hits": [{"id": ids[r], "score": float(scores[r])} for r in ranked]},
                             ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()

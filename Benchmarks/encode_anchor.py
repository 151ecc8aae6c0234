"""The anchor of Benchmarks/bench-index.sh: SentenceTransformer.encode on the passages of a corpus
(JSON lines {"id", "title", "text"}), each passage as the (title, text) pair srdpr's context
encoder reads, batch 32, torch on THREADS threads. Prints one JSON line with the throughput."""
import json
import sys
import time

import torch
from sentence_transformers import SentenceTransformer

model_dir, corpus_path, max_length, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
model = SentenceTransformer(model_dir, device="cpu")
model.max_seq_length = max_length
pairs = []
with open(corpus_path, encoding="utf-8") as f:
    for line in f:
        if line.strip():
            record = json.loads(line)
            pairs.append((record.get("title", "").strip(), record["text"].strip()))
start = time.perf_counter()
with torch.inference_mode():
    embeddings = model.encode(pairs, batch_size=32, convert_to_numpy=True)
seconds = time.perf_counter() - start
print(json.dumps({"passages": len(pairs), "seconds": seconds, "passages_per_second": len(pairs) / seconds,
                  "dimension": int(embeddings.shape[1])}))

#!/usr/bin/env bash
# Tokenizer throughput, one thread: `srdpr bench tokenizer` against Hugging Face `tokenizers`
# BertWordPieceTokenizer (Rust) with the same vocab, on the same corpus, each document encoded as
# the pair (title, text). Prints machine load, then one JSON line per implementation.
# Usage: Benchmarks/bench-tokenizer.sh [VOCAB] [CORPUS] [REPEATS]
#   VOCAB  default ../shared/fixtures/tiny-bert/vocab.txt (BERT-base uncased)
#   CORPUS default ../shared/data/faq/corpus.jsonl
#   PYTHON default .venv-bench/bin/python, made by Benchmarks/setup-anchors.sh when missing
set -euo pipefail
cd "$(dirname "$0")/.."
vocab="${1:-../shared/fixtures/tiny-bert/vocab.txt}"
corpus="${2:-../shared/data/faq/corpus.jsonl}"
repeats="${3:-5}"
python="${PYTHON:-}"
if [ -z "$python" ]; then
    [ -x .venv-bench/bin/python ] || Benchmarks/setup-anchors.sh .venv-bench >/dev/null
    python=.venv-bench/bin/python
fi
[ -n "$python" ] || { echo "bench-tokenizer: no Python with tokenizers; run Benchmarks/setup-anchors.sh" >&2; exit 1; }
swift build -c release --product srdpr >&2
echo "load: $(uptime)" >&2

ours=$(.build/release/srdpr bench tokenizer --vocab "$vocab" --corpus "$corpus" --repeats "$repeats")
echo "$ours"

theirs=$(RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false "$python" - "$vocab" "$corpus" "$repeats" <<'PY'
import json, sys, time
from tokenizers import BertWordPieceTokenizer
vocab, corpus, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
tok = BertWordPieceTokenizer(vocab, lowercase=True)
docs = []
with open(corpus, encoding="utf-8") as f:
    for line in f:
        if line.strip():
            d = json.loads(line)
            docs.append((d.get("title", ""), d["text"]))
best, tokens, checksum = float("inf"), 0, 0
for _ in range(max(1, repeats)):
    t0 = time.perf_counter()
    encs = tok.encode_batch(docs)  # Rust loop; RAYON_NUM_THREADS=1 keeps it on one thread
    dt = time.perf_counter() - t0
    best = min(best, dt)
    tokens = sum(len(e.ids) for e in encs)
    checksum = sum(e.ids[-1] + e.ids[len(e.ids) // 2] for e in encs)
print(json.dumps({"bench": "tokenizer", "impl": "hf-tokenizers-BertWordPieceTokenizer", "threads": 1,
                  "documents": len(docs), "tokens": tokens, "seconds": best,
                  "tokens_per_s": tokens / best, "docs_per_s": len(docs) / best, "checksum": checksum}, sort_keys=True))
PY
)
echo "$theirs"
echo "load: $(uptime)" >&2
# Same token count and checksum = same ids; the ratio is the speed-up over HF tokenizers.
"$python" -c 'import json,sys; a,b=json.loads(sys.argv[1]),json.loads(sys.argv[2]); print(json.dumps({"bench":"tokenizer-summary","same_ids_checksum":a["checksum"]==b["checksum"] and a["tokens"]==b["tokens"],"speedup_vs_hf":a["tokens_per_s"]/b["tokens_per_s"]}))' "$ours" "$theirs"

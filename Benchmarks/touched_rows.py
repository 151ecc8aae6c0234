"""Distinct token ids in a global batch of the seed's shape (pos pipeline: 8 questions, 16
passages = 8 positives + 8 contrastive, max_length 256) drawn from the FAQ training data: the
word-embedding rows each encoder's gradient touches, which the trainer's sparse all-reduce sends.
usage: touched_rows.py TRAIN_JSONL MODEL_DIR [BATCHES=50]; prints one JSON line (medians)."""
import json, random, statistics, sys
from transformers import BertTokenizerFast

path, model = sys.argv[1], sys.argv[2]
batches = int(sys.argv[3]) if len(sys.argv) > 3 else 50
samples = [json.loads(line) for line in open(path)]
tok = BertTokenizerFast.from_pretrained(model)
rng = random.Random(12345)
q_rows, c_rows, q_tokens, c_tokens = [], [], [], []
for _ in range(batches):
    batch = rng.sample(samples, 16)
    questions = [s["questions"][0] for s in batch[:8]]
    passages = [c["title"] + " [SEP] " + c["text"] for c in (s["positive_contexts"][0] for s in batch)]
    q = tok(questions, truncation=True, max_length=256)["input_ids"]
    c = tok(passages, truncation=True, max_length=256)["input_ids"]
    q_rows.append(len({t for ids in q for t in ids})); c_rows.append(len({t for ids in c for t in ids}))
    q_tokens.append(sum(map(len, q))); c_tokens.append(sum(map(len, c)))
print(json.dumps({"batches": batches, "questions": 8, "passages": 16, "max_length": 256,
                  "touched_rows_question": int(statistics.median(q_rows)), "touched_rows_context": int(statistics.median(c_rows)),
                  "tokens_question": int(statistics.median(q_tokens)), "tokens_context": int(statistics.median(c_tokens))}))

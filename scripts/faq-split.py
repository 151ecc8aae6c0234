"""The FAQ study's split (scripts/faq-study.sh, scripts/mine-faq.sh): of every 20 consecutive samples
of FAQ_DIR/train.jsonl the first 3 are held out (15%, spread over all sources). Writes in OUT_DIR:
train.jsonl and train_qrels.jsonl (the training samples and their qrels, in order), train-hardneg.jsonl
(the training samples that have hard negatives) and dev_qrels.jsonl (the held-out questions).

usage: faq-split.py FAQ_DIR OUT_DIR
"""
import json
import sys

faq, out = sys.argv[1], sys.argv[2]
train = [l for l in open(f"{faq}/train.jsonl") if l.strip()]
qrels = [l for l in open(f"{faq}/train_qrels.jsonl") if l.strip()]
assert len(train) == len(qrels)


def line(text):
    return text if text.endswith("\n") else text + "\n"


with open(f"{out}/train.jsonl", "w") as t, open(f"{out}/train_qrels.jsonl", "w") as tq, \
        open(f"{out}/train-hardneg.jsonl", "w") as h, open(f"{out}/dev_qrels.jsonl", "w") as d:
    for i, (s, q) in enumerate(zip(train, qrels)):
        sample, qrel = json.loads(s), json.loads(q)
        assert sample["questions"][0] == qrel["question"]
        if i % 20 < 3:
            d.write(line(q))
        else:
            t.write(line(s))
            tq.write(line(q))
            if sample["hardneg_contexts"]:
                h.write(line(s))

"""Embeddings of an `srdpr export` directory computed by transformers and by sentence-transformers.

Usage: export-parity.py INPUTS_JSON MODEL_DIR...
MODEL_DIR: an export root (question_encoder/, ctx_encoder/), or one sentence-transformers
directory used for both sides.
INPUTS_JSON: {"questions": [str], "passages": [[title, text]]}. Prints one JSON object, by export
root: {"transformers": [[float]], "sentence_transformers": [[float]]}: questions (question
encoder) then passages (context encoder), in order. Used by the Swift tests; a missing package is an
error, never a skip.
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer
from transformers import BertModel, BertTokenizer


def normalize_question(q):
    # The original DPR's: strip, drop one trailing '?', strip again.
    q = q.strip()
    if q.endswith("?"):
        q = q[:-1]
    return q.strip()


def with_transformers(directory, settings, texts, pairs):
    """BertModel + the pooling, projection head and normalisation of srdpr_settings.json."""
    model = BertModel.from_pretrained(directory, add_pooling_layer=False).eval()
    tokenizer = BertTokenizer.from_pretrained(directory)
    weights = load_file(os.path.join(directory, "model.safetensors"))
    out = []
    for item in (pairs if pairs is not None else texts):
        if pairs is not None:
            # [CLS] title [SEP] text [SEP], cut at the end of the text as srdpr does; token types all 0.
            enc = tokenizer(item[0], item[1], max_length=settings["max_length"], truncation="only_second", return_tensors="pt")
        else:
            enc = tokenizer(item, max_length=settings["max_length"], truncation=True, return_tensors="pt")
        with torch.no_grad():
            hidden = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state[0]
        mask = enc["attention_mask"][0].unsqueeze(-1).to(hidden.dtype)
        pooled = hidden[0] if settings["pooling"] == "cls" else (hidden * mask).sum(0) / mask.sum(0).clamp(min=1e-9)
        if "encode_proj.weight" in weights:
            pooled = torch.nn.functional.linear(pooled, weights["encode_proj.weight"], weights["encode_proj.bias"])
        if settings["sim_func"] == "cosine":
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        out.append(pooled.tolist())
    return out


def read_settings(directory):
    """srdpr_settings.json, else what the sentence-transformers files say."""
    path = os.path.join(directory, "srdpr_settings.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    with open(os.path.join(directory, "modules.json")) as f:
        modules = json.load(f)
    with open(os.path.join(directory, "1_Pooling", "config.json")) as f:
        pooling = json.load(f)
    with open(os.path.join(directory, "sentence_bert_config.json")) as f:
        max_length = json.load(f)["max_seq_length"]
    normalize = any(m["type"].endswith("Normalize") for m in modules)
    mean = pooling.get("pooling_mode_mean_tokens") or pooling.get("pooling_mode") == "mean"
    return {"pooling": "mean" if mean else "cls", "sim_func": "cosine" if normalize else "dot_product", "max_length": max_length}


def embeddings(root, inputs):
    questions = [normalize_question(q) for q in inputs["questions"]]
    passages = inputs["passages"]
    result = {"transformers": [], "sentence_transformers": []}
    single = not os.path.isdir(os.path.join(root, "question_encoder"))
    for name, texts, pairs in (("question_encoder", questions, None), ("ctx_encoder", None, passages)):
        directory = root if single else os.path.join(root, name)
        settings = read_settings(directory)
        result["transformers"] += with_transformers(directory, settings, texts, pairs)
        st = SentenceTransformer(directory, device="cpu")
        # A titled passage is one text "title [SEP] text": the same ids as srdpr's pair, token types 0.
        st_texts = texts if pairs is None else [title + " [SEP] " + text for title, text in pairs]
        result["sentence_transformers"] += st.encode(st_texts, batch_size=8, convert_to_numpy=True).tolist()
    return result


def main():
    with open(sys.argv[1]) as f:
        inputs = json.load(f)
    print(json.dumps({root: embeddings(root, inputs) for root in sys.argv[2:]}))


if __name__ == "__main__":
    main()

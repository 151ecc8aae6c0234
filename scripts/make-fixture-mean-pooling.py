#!/usr/bin/env python3
"""Records the PyTorch reference values of mean pooling and of scaled similarity scores
(`pooling=mean`, `sim_scale`), for Tests/ModelTests/MeanPoolingParityTests.swift:

    make-fixture-mean-pooling.py FIXTURES_DIR OUT.safetensors

FIXTURES_DIR is ../shared/fixtures (tiny-bert/, losses.safetensors); nothing is written there.

1. `loss.<loss>.<sim>.scale<s>.*`: the three losses (pos_randneg, pos_hardneg, inbatch) x dot /
   cosine x sim_scale 20 and 0.5 on the inputs of losses.safetensors: loss and gradients. The
   reference losses are written here from the original's formulas; at sim_scale 1 they must
   reproduce losses.safetensors (checked before anything is written).
2. `model.<case>.*`: a tiny-bert bi-encoder (two BertModel copies, eval, token_type_ids 0) with
   sentence-transformers' own `Pooling(pooling_mode="mean")`, then an optional projection head,
   then a loss with sim_scale: the batches, the embeddings, the loss and d loss / d parameter for
   every parameter of both encoders (names question_model.* / ctx_model.*).
"""
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
try:
    from sentence_transformers.sentence_transformer.modules import Pooling
except ImportError:  # sentence-transformers before 5.x
    from sentence_transformers.models import Pooling
from transformers import BertModel

torch.manual_seed(16)
fixtures, out_path = sys.argv[1], sys.argv[2]
record = {}


def scores_pos(q, p, n):
    return torch.cat([(q * p).sum(-1, keepdim=True), q @ n.T], dim=1)


def scores_poshard(q, p, h):
    return torch.cat([(q * p).sum(-1, keepdim=True), torch.einsum("rd,rcd->rc", q, h)], dim=1)


def cross_entropy(s, mask, target, scale):
    s = (scale * s).masked_fill(mask == 0, -1e9)
    return F.cross_entropy(s, target)


def loss_of(kind, sim, scale, tensors, masks):
    x = {k: (F.normalize(v, dim=-1) if sim == "cosine" else v) for k, v in tensors.items()}
    if kind == "pos_randneg":
        s = scores_pos(x["q"], x["p"], x["n"])
        target = torch.zeros(s.shape[0], dtype=torch.long)
    elif kind == "pos_hardneg":
        s = scores_poshard(x["q"], x["p"], x["h"])
        target = torch.zeros(s.shape[0], dtype=torch.long)
    else:
        s = x["q"] @ x["c"].T
        target = torch.arange(s.shape[0])
    return cross_entropy(s, masks, target, scale)


# 1. Losses on the inputs of losses.safetensors.
losses = load_file(f"{fixtures}/losses.safetensors")
inputs = {"pos_randneg": (["q", "p", "n"], "dup", ["gq", "gp", "gn"]),
          "pos_hardneg": (["q", "p", "h"], "hm", ["gq", "gp", "gh"]),
          "inbatch": (["q", "c"], "mask", ["gq", "gc"])}
for kind, (names, mask_name, grad_names) in inputs.items():
    for sim in ("dot_product", "cosine"):
        prefix = f"{kind}.{sim}."
        mask = losses[prefix + mask_name]
        for scale in (1.0, 20.0, 0.5):
            tensors = {n: losses[prefix + n].clone().requires_grad_(True) for n in names}
            loss = loss_of(kind, sim, scale, tensors, mask)
            loss.backward()
            if scale == 1.0:  # our formulas reproduce the recorded ones
                assert torch.allclose(loss, losses[prefix + "loss"].reshape(()), atol=1e-5), (prefix, loss)
                for n, g in zip(names, grad_names):
                    assert torch.allclose(tensors[n].grad, losses[prefix + g], atol=1e-5), (prefix, n)
                continue
            key = f"loss.{kind}.{sim}.scale{scale:g}."
            record[key + "loss"] = loss.detach().reshape(1)
            for n, g in zip(names, grad_names):
                record[key + g] = tensors[n].grad.detach().clone()

# 2. Bi-encoders with mean pooling.
def batch(lengths, seq_len):
    ids = torch.zeros(len(lengths), seq_len, dtype=torch.long)
    mask = torch.zeros(len(lengths), seq_len, dtype=torch.long)
    for r, n in enumerate(lengths):
        ids[r, 0], ids[r, n - 1] = 101, 102
        ids[r, 1:n - 1] = torch.randint(1000, 30000, (n - 2,))
        mask[r, :n] = 1
    return ids, mask


cases = {
    # the study's setting: mean pooling, cosine, sim_scale 20, pos loss (one masked duplicate)
    "mean_cosine_pos": dict(projection=0, sim="cosine", scale=20.0, loss="pos_randneg"),
    # a projection head after the mean, dot product scaled down, poshard loss with a masked hard negative
    "mean_proj16_dot_poshard": dict(projection=16, sim="dot_product", scale=0.5, loss="pos_hardneg"),
}
pooling = Pooling(64, pooling_mode="mean")
for case, cfg in cases.items():
    encoders = {side: BertModel.from_pretrained(f"{fixtures}/tiny-bert", add_pooling_layer=False).eval()
                for side in ("question_model", "ctx_model")}
    heads = {}
    if cfg["projection"]:
        for side in encoders:
            heads[side] = torch.nn.Linear(64, cfg["projection"])
            record[f"model.{case}.{side}.encode_proj.weight"] = heads[side].weight.detach().clone()
            record[f"model.{case}.{side}.encode_proj.bias"] = heads[side].bias.detach().clone()

    def embed(side, ids, mask):
        hidden = encoders[side](input_ids=ids, attention_mask=mask).last_hidden_state
        features = pooling({"token_embeddings": hidden, "attention_mask": mask})
        v = features["sentence_embedding"]
        return heads[side](v) if side in heads else v

    q_ids, q_mask = batch([7, 12, 5, 9], 12)
    if cfg["loss"] == "pos_randneg":
        c_ids, c_mask = batch([16, 9, 11, 6, 14, 8, 10], 16)  # 4 positives, then 3 negatives
        loss_mask = torch.ones(4, 4, dtype=torch.long)
        loss_mask[1, 2] = 0
    else:
        c_ids, c_mask = batch([16, 9, 11, 6] + [14, 8, 10, 13, 7, 15, 12, 9], 16)  # 4 positives, then 2 hard negatives each
        loss_mask = torch.ones(4, 3, dtype=torch.long)
        loss_mask[2, 2] = 0
    q = embed("question_model", q_ids, q_mask)
    c = embed("ctx_model", c_ids, c_mask)
    q.retain_grad()
    c.retain_grad()
    if cfg["loss"] == "pos_randneg":
        tensors = {"q": q, "p": c[:4], "n": c[4:]}
    else:
        tensors = {"q": q, "p": c[:4], "h": c[4:].reshape(4, 2, -1)}
    loss = loss_of(cfg["loss"], cfg["sim"], cfg["scale"], tensors, loss_mask)
    loss.backward()
    key = f"model.{case}."
    record[key + "question/input_ids"], record[key + "question/attention_mask"] = q_ids, q_mask
    record[key + "context/input_ids"], record[key + "context/attention_mask"] = c_ids, c_mask
    record[key + "loss_mask"] = loss_mask
    record[key + "q"], record[key + "c"] = q.detach().clone(), c.detach().clone()
    record[key + "dq"], record[key + "dc"] = q.grad.detach().clone(), c.grad.detach().clone()
    record[key + "loss"] = loss.detach().reshape(1)
    for side, encoder in encoders.items():
        for name, parameter in encoder.named_parameters():
            record[f"{key}grad.{side}.{name}"] = parameter.grad.detach().clone()
        if side in heads:
            record[f"{key}grad.{side}.encode_proj.weight"] = heads[side].weight.grad.detach().clone()
            record[f"{key}grad.{side}.encode_proj.bias"] = heads[side].bias.grad.detach().clone()

save_file({k: v.contiguous() for k, v in record.items()}, out_path,
          metadata={"torch": torch.__version__, "cases": repr(cases)})
print(f"{out_path}: {len(record)} tensors")

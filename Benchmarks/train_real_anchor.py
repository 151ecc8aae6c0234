#!/usr/bin/env python3
"""PyTorch + transformers anchor of `srdpr bench train-real`: the original SR-DPR's training
updates on the batches `srdpr dump-batches` exported (JSON lines, one batch a line, in schedule order).

Per update (the lines of one "step"), as the original's trainer does without grad cache:
- every tensor of the batch goes through its encoder in one call, padded as dumped (each tensor to
  its own longest row; poshard's hard negatives viewed as [fb * cs, L], all-zero filler rows
  included): questions through the question BertModel, every context tensor through the context
  BertModel, dropout on (train mode);
- pooled output: [CLS] (pooling=cls, the original) or the masked mean (pooling=mean, as
  sentence-transformers trains MiniLM); scores dot product or cosine, times sim_scale;
- the pipeline's loss: pos / hard -log_softmax([q.p, q.n_1..n_C])[0] with duplicate_mask,
  poshard the same over the sample's own hard negatives with hardneg_mask, inbatch cross-entropy
  over Q.C^T with mask (masked scores -1e9), mean over rows;
- backward of loss / loss_scale (/ gradient_accumulate_steps), global-norm clipping, AdamW with
  weight decay on all but biases and LayerNorm weights, the linear warmup/decay schedule.

The clock times each update after the warm-up (the JSON is parsed into tensors beforehand).
Prints progress on stderr and ONE JSON line on stdout with the same fields as srdpr's.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# The tensors of each pipeline's batch dict, in the order the original encodes them.
TENSORS = {
    "pos": ["question", "positive_context", "negative_context"],
    "hard": ["question", "positive_context", "negative_context"],
    "poshard": ["question", "positive_context", "hardneg_context"],
    "inbatch": ["question", "context"],
}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def rows_of(value):
    """Rows of a dumped tensor: [rows][L], or [fb][cs][L] viewed as [fb * cs][L] ([fb][] has no rows)."""
    rows = []
    for item in value:
        if not item:
            continue
        if isinstance(item[0], list):
            rows.extend(item)
        else:
            rows.append(item)
    return rows


def token_counts(batch):
    """(real, padded) tokens of one batch: the attention masks' ones, and every cell of every tensor."""
    real = padded = 0
    for name in TENSORS[batch["pipeline"]]:
        for row in rows_of(batch[f"{name}/attn_mask"]):
            real += int(sum(row))
            padded += len(row)
    return real, padded


def read_updates(path):
    """The batches of the file grouped into updates (consecutive lines with the same step)."""
    updates = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                batch = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}:{number}: not a JSON line ({e})")
            for key in ("step", "pipeline"):
                if key not in batch:
                    raise SystemExit(f"{path}:{number}: no '{key}' key (is this `srdpr dump-batches` output?)")
            if batch["pipeline"] not in TENSORS:
                raise SystemExit(f"{path}:{number}: unknown pipeline {batch['pipeline']!r}")
            for name in TENSORS[batch["pipeline"]]:
                for suffix in ("input_ids", "attn_mask"):
                    if f"{name}/{suffix}" not in batch:
                        raise SystemExit(f"{path}:{number}: {batch['pipeline']} batch without '{name}/{suffix}'")
            if updates and updates[-1][0]["step"] == batch["step"]:
                updates[-1].append(batch)
            else:
                updates.append([batch])
    return updates


def default_warmup(updates):
    """Updates until every pipeline of the file has run once (srdpr's default)."""
    present, seen = {u[0]["pipeline"] for u in updates}, set()
    for i, update in enumerate(updates):
        seen.add(update[0]["pipeline"])
        if seen == present:
            return i + 1
    return len(updates)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", required=True, help="JSON lines of `srdpr dump-batches` (same parameters as ours)")
    ap.add_argument("--model", required=True, help="Hugging Face BERT directory (pretrained_model_cfg)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--warmup-steps", type=int, default=None,
                    help="untimed updates first (default: until every pipeline in the file has run once)")
    ap.add_argument("--pooling", choices=["cls", "mean"], default="cls")
    ap.add_argument("--sim-func", choices=["dot_product", "cosine"], default="dot_product")
    ap.add_argument("--sim-scale", type=float, default=1.0)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--learning-rate", type=float, default=1e-5)
    ap.add_argument("--warmup-updates", type=int, default=1000, help="the schedule's warmup_steps")
    ap.add_argument("--total-updates", type=int, default=10000)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--adam-eps", type=float, default=1e-8)
    ap.add_argument("--max-grad-norm", type=float, default=1.0)
    ap.add_argument("--loss-scale", type=float, default=8.0)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--attn-impl", default="sdpa", choices=["sdpa", "eager"])
    args = ap.parse_args()

    updates = read_updates(args.batches)
    warmup = default_warmup(updates) if args.warmup_steps is None else args.warmup_steps
    if len(updates) <= warmup:
        raise SystemExit(f"{args.batches}: {len(updates)} updates, none left to time after {warmup} warm-up updates")

    import torch
    import torch.nn.functional as F
    import transformers
    from transformers import BertModel

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    def build():
        m = BertModel.from_pretrained(args.model, add_pooling_layer=False, attn_implementation=args.attn_impl,
                                      hidden_dropout_prob=args.dropout, attention_probs_dropout_prob=args.dropout)
        return m.float().train()

    load_start = time.perf_counter()
    q_enc, c_enc = build(), build()
    params = [p for m in (q_enc, c_enc) for p in m.parameters()]
    named = [(n, p) for m in (q_enc, c_enc) for n, p in m.named_parameters()]
    no_decay = ("bias", "LayerNorm.weight")
    groups = [{"params": [p for n, p in named if not any(k in n for k in no_decay)], "weight_decay": args.weight_decay},
              {"params": [p for n, p in named if any(k in n for k in no_decay)], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=args.learning_rate, eps=args.adam_eps)

    def multiplier(step):  # transformers' get_linear_schedule_with_warmup, as srdpr's LinearWarmupSchedule
        if step < args.warmup_updates:
            return step / max(1, args.warmup_updates)
        return max(0.0, (args.total_updates - step) / max(1, args.total_updates - args.warmup_updates))

    schedule = torch.optim.lr_scheduler.LambdaLR(opt, multiplier)

    def tensors(batch, name):
        rows = rows_of(batch[f"{name}/input_ids"])
        if not rows:
            return None
        return (torch.tensor(rows, dtype=torch.long), torch.tensor(rows_of(batch[f"{name}/attn_mask"]), dtype=torch.long))

    # Parsed before the clock starts, as srdpr tokenizes its batches first.
    prepared = [[(b, {name: tensors(b, name) for name in TENSORS[b["pipeline"]]}) for b in u] for u in updates]
    load_s = time.perf_counter() - load_start

    def encode(encoder, pair):
        ids, mask = pair
        hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        if args.pooling == "cls":
            out = hidden[:, 0, :]
        else:
            m = mask.unsqueeze(-1).to(hidden.dtype)
            out = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return F.normalize(out, dim=-1) if args.sim_func == "cosine" else out

    def masked(scores, keep):
        return scores.masked_fill(~keep, -1e9)

    def loss_of(batch, t):
        pipeline = batch["pipeline"]
        q = encode(q_enc, t["question"])
        if pipeline in ("pos", "hard"):
            p, n = encode(c_enc, t["positive_context"]), encode(c_enc, t["negative_context"])
            scores = torch.cat([(q * p).sum(-1, keepdim=True), q @ n.t()], dim=1) * args.sim_scale
            if "duplicate_mask" in batch:
                scores = masked(scores, torch.tensor(batch["duplicate_mask"]) != 0)
            return -torch.log_softmax(scores, dim=1)[:, 0].mean()
        if pipeline == "poshard":
            p = encode(c_enc, t["positive_context"])
            pos = (q * p).sum(-1, keepdim=True)
            if t["hardneg_context"] is None:
                scores = pos
            else:
                h = encode(c_enc, t["hardneg_context"]).view(q.shape[0], -1, q.shape[1])
                scores = torch.cat([pos, torch.einsum("bd,bcd->bc", q, h)], dim=1)
            scores = scores * args.sim_scale
            if "hardneg_mask" in batch:
                scores = masked(scores, torch.tensor(batch["hardneg_mask"])[:, :scores.shape[1]] != 0)
            return -torch.log_softmax(scores, dim=1)[:, 0].mean()
        c = encode(c_enc, t["context"])
        scores = (q @ c.t()) * args.sim_scale
        if "mask" in batch:
            scores = masked(scores, torch.tensor(batch["mask"], dtype=torch.bool))
        return F.cross_entropy(scores, torch.arange(q.shape[0]))

    def step(update):
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for batch, t in update:
            loss = loss_of(batch, t)
            (loss / args.loss_scale / len(update)).backward()
            total += float(loss.detach())
        norm = torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm) if args.max_grad_norm > 0 else \
            torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))
        opt.step()
        schedule.step()
        return total / len(update), float(norm)

    counts = [tuple(map(sum, zip(*(token_counts(b) for b in u)))) for u in updates]
    log(f"[train-real-anchor] {len(updates)} updates ({warmup} warm-up), threads={torch.get_num_threads()} "
        f"pooling={args.pooling} sim={args.sim_func} attn={args.attn_impl} load_s={load_s:.1f}")
    la_before = list(os.getloadavg())
    times, user_cpu, losses, norms = [], [], [], []
    for i, update in enumerate(prepared):
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        loss, norm = step(update)
        seconds = time.perf_counter() - start
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        log(f"[train-real-anchor] step {i} {updates[i][0]['pipeline']}{' (warmup)' if i < warmup else ''} {seconds:.3f}s "
            f"real={counts[i][0]} padded={counts[i][1]} loss={loss:.5f} gnorm={norm:.4f}")
        losses.append(loss)
        norms.append(norm)
        if i >= warmup:
            times.append(seconds)
            user_cpu.append(round(r1.ru_utime - r0.ru_utime, 3))
    la_after = list(os.getloadavg())

    timed = list(range(warmup, len(updates)))
    kinds = [updates[i][0]["pipeline"] for i in timed]
    per_pipeline = {}
    for kind in dict.fromkeys(kinds):
        mine = [j for j, k in enumerate(kinds) if k == kind]
        seconds = sum(times[j] for j in mine)
        real, padded = sum(counts[timed[j]][0] for j in mine), sum(counts[timed[j]][1] for j in mine)
        per_pipeline[kind] = {
            "steps": len(mine), "real_tokens": real, "padded_tokens": padded,
            "median_step_s": round(statistics.median(times[j] for j in mine), 4),
            "real_tokens_per_s": round(real / seconds, 1) if seconds > 0 else 0,
            "padded_tokens_per_s": round(padded / seconds, 1) if seconds > 0 else 0,
        }
    total = sum(times)
    real = sum(counts[i][0] for i in timed)
    padded = sum(counts[i][1] for i in timed)
    print(json.dumps({
        "bench": "torch_train_real", "ok": True, "model": args.model,
        "hidden": q_enc.config.hidden_size, "layers": q_enc.config.num_hidden_layers,
        "pooling": args.pooling, "sim_func": args.sim_func, "dropout": args.dropout, "attn_impl": args.attn_impl,
        "threads": torch.get_num_threads(), "warmup_steps": warmup, "steps": len(timed),
        "steps_per_pipeline": {k: v["steps"] for k, v in per_pipeline.items()}, "pipelines": per_pipeline,
        "step_pipelines": kinds,
        "real_tokens_per_step": [counts[i][0] for i in timed], "padded_tokens_per_step": [counts[i][1] for i in timed],
        "real_tokens": real, "padded_tokens": padded,
        "padding_fraction": round(1 - real / padded, 4) if padded else 0,
        "real_tokens_per_s": round(real / total, 1) if total > 0 else 0,
        "padded_tokens_per_s": round(padded / total, 1) if total > 0 else 0,
        "median_step_s": round(statistics.median(times), 4), "total_s": round(total, 4),
        "step_times_s": [round(t, 4) for t in times], "step_user_cpu_s": user_cpu,
        "losses": losses, "grad_norms": norms,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "load_s": round(load_s, 2),
        "torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
        "loadavg_before": la_before, "loadavg_after": la_after,
    }), flush=True)


if __name__ == "__main__":
    sys.exit(main())

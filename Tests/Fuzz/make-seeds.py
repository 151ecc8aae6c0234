#!/usr/bin/env python3
"""Writes the seed inputs of every fuzz target into seeds/TARGET/ (committed; run once).

Seeds are small: a few real samples and files cut from ../shared/fixtures, plus hand-made
inputs that reach the less common branches (every pickle opcode family, every safetensors
dtype, strided torch tensors, each wire message kind, a checkpoint with every section kind).
Usage: python3 Tests/Fuzz/make-seeds.py [FIXTURES_DIR]
"""
import collections
import io
import json
import os
import pickle
import struct
import sys
import types
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(ROOT), "shared", "fixtures")


def put(target, name, data):
    folder = os.path.join(HERE, "seeds", target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def fixture(*parts):
    with open(os.path.join(FIXTURES, *parts), "rb") as f:
        return f.read()


def dataset_samples(folder, limit):
    """The first `limit` pickles of a ByteDataset, cut at the offsets of its idxs.pkl."""
    idxs = fixture(folder, "idxs.pkl")
    data = fixture(folder, "data.pkl")
    count = int.from_bytes(idxs[:4], "big")
    offsets = [int.from_bytes(idxs[4 + 6 * i:10 + 6 * i], "big") for i in range(count)] + [len(data)]
    return [data[offsets[i]:offsets[i + 1]] for i in range(min(limit, count))]


# --- pickle -----------------------------------------------------------------------------------
def pickle_seeds():
    for i, p in enumerate(dataset_samples("pipelines/all.bytedataset", 2)):
        put("pickle", f"sample-p4-{i}.pkl", p)
    for proto in (2, 3, 5):
        put("pickle", f"sample-p{proto}.pkl", dataset_samples(f"pickle_protocols/protocol{proto}.bytedataset", 1)[0])
    tokens = {"sample_id": 7, "questions": [[101, 2054, 102]],
              "positive_contexts": [{"title": [101], "text": [2023, 102]}], "hardneg_contexts": []}
    put("pickle", "pretokenized-p4.pkl", pickle.dumps(tokens, protocol=4))
    shared = ["shared list"]
    odd = {"sample_id": 2**70, "none": None, "flags": (True, False), "f": 1.5, "b": b"\x00\xff",
           "set": {1, 2}, "frozen": frozenset([3]), "tuple": (1, "two", [3]), "again": shared, "same": shared,
           "neg": -129, "big": -2**63, "questions": [], "positive_contexts": [], "hardneg_contexts": []}
    put("pickle", "many-opcodes-p2.pkl", pickle.dumps(odd, protocol=2))
    put("pickle", "many-opcodes-p5.pkl", pickle.dumps(odd, protocol=5))
    with zipfile.ZipFile(os.path.join(FIXTURES, "tiny-bert", "pytorch_model.bin")) as z:
        put("pickle", "torch-state-dict.pkl", z.read("pytorch_model/data.pkl"))


# --- jsonl ------------------------------------------------------------------------------------
def jsonl_seeds():
    lines = fixture("pipelines", "all.jsonl").decode("utf-8").splitlines()
    put("jsonl", "fixture-2-lines.jsonl", "\n".join(lines[:2]) + "\n")
    put("jsonl", "with-hardneg.jsonl", fixture("pipelines", "with_hardneg.jsonl").decode("utf-8").splitlines()[0] + "\n")
    put("jsonl", "pretokenized.jsonl", json.dumps(
        {"sample_id": 3, "questions": [[101, 7592, 102]], "positive_contexts": [{"title": [], "text": [1, 2, 3]}],
         "hardneg_contexts": [{"title": "t", "text": [4]}]}) + "\n")
    put("jsonl", "escapes-and-extras.jsonl",
        '{"sample_id": -12, "questions": ["caf\\u00e9 \\ud83d\\ude00 \\ud800 tab\\t\\"q\\"?"], "score": 1.5e3, '
        '"meta": {"x": [null, true, false, NaN, -Infinity]}, "positive_contexts": [{"title": "T\\/", "text": "\\u0000x"}], '
        '"hardneg_contexts": []}\r\n\n  \n'
        '{"sample_id": 123456789012345678901234567890, "questions": [], "positive_contexts": [], "hardneg_contexts": []}\n')
    put("jsonl", "not-a-sample.jsonl", '[1, 2.5, "x", {"a": {}}]\n{"sample_id": "1"}\n')


# --- hydra ------------------------------------------------------------------------------------
def hydra_seeds():
    put("hydra", "readme.args", "\n".join([
        "train_mode=pos+poshard+hard", "pretrained_model_cfg=/path/to/hf-bert",
        "bytedataset.pos=data/train", "bytedataset.poshard=data/train",
        "bytedataset.hard.hardneg=data/train-hardneg", "bytedataset.hard.randneg=data/train",
        "learning_rate=2e-5", "total_updates=1000", "save_checkpoint_freq=100",
        "output_dir=outputs/checkpoints", "log_dir=outputs/logs"]))
    put("hydra", "inbatch.args", "\n".join([
        "train_mode=inbatch+pos", "regulate_factor=4", "+pipeline.inbatch.use_hardneg=false",
        "++pipeline.inbatch.use_num_hardnegs=2", "adam_betas=(0.9,0.98)", "sim_func=cosine", "seed=1e4",
        "pipeline.poshard.constrastive_size=3", "pipeline.pos.logging_steps=5", "fp16=true", "train_file=x",
        "grad_cache=yes", "q_chunk_size=1_000", "dropout=0.0", "model_file=null", "log_dir=\"a b\"",
        "checkpoint_file_name='ck'", "max_length=512", "global_loss_buf_sz=1000000"]))
    put("hydra", "big-numbers.args", "\n".join([
        "train_mode=inbatch+pos+poshard+hard", "regulate_factor=99999", "seed=-9223372036854775808",
        "total_updates=9e15", "warmup_steps=1_000_000", "learning_rate=1e308", "max_grad_norm=-0.0",
        "global_loss_buf_sz=9223372036854775807", "adam_betas=[0.0, 0.99999999]"]))
    put("hydra", "mistakes.args", "\n".join(["learning_rat=1", "total_updates", "=3", "dropout=2"]))


# --- safetensors ------------------------------------------------------------------------------
def safetensors(tensors, metadata=None):
    header, data = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def safetensors_seeds():
    put("safetensors", "adamw.safetensors", fixture("adamw.safetensors"))
    put("safetensors", "every-dtype.safetensors", safetensors({
        "f32": ("F32", [2, 2], struct.pack("<4f", 1, -2, 3.5, 0)),
        "f16": ("F16", [3], struct.pack("<3e", 1, -0.5, 65504)),
        "bf16": ("BF16", [2], bytes.fromhex("803f00c0")),
        "f64": ("F64", [1], struct.pack("<d", 1e-300)),
        "i64": ("I64", [2], struct.pack("<2q", -1, 2**40)),
        "i32": ("I32", [1, 1], struct.pack("<i", 7)),
        "u8": ("U8", [2], b"\x00\xff"),
        "bool": ("BOOL", [1], b"\x01"),
        "empty": ("F32", [0, 4], b""),
        "scalar": ("F32", [], struct.pack("<f", 2)),
    }, metadata={"format": "pt"}))


# --- bert-config ------------------------------------------------------------------------------
def bert_config_seeds():
    put("bert-config", "tiny-bert.json", fixture("tiny-bert", "config.json"))
    put("bert-config", "demo.json", open(os.path.join(ROOT, "demo", "model", "config.json"), "rb").read())
    put("bert-config", "minimal.json", json.dumps({"model_type": "bert", "vocab_size": 10, "hidden_size": 8,
        "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16.0, "layer_norm_eps": 1e-5,
        "pad_token_id": None, "hidden_act": "gelu", "position_embedding_type": "absolute"}))


# --- torch ------------------------------------------------------------------------------------
class FakeStorage:
    def __init__(self, dtype_class, key, numel):
        self.dtype_class, self.key, self.numel = dtype_class, key, numel


class FakeTensor:
    def __init__(self, storage, offset, size, stride, parameter=False):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())
        self.parameter = parameter

    def __reduce_ex__(self, protocol):
        torch_utils = sys.modules["torch._utils"]
        inner = (torch_utils._rebuild_tensor_v2, self.args)
        if self.parameter:
            return (torch_utils._rebuild_parameter, (RebuildOnly(inner), False, collections.OrderedDict()))
        return inner


class RebuildOnly:
    def __init__(self, reduced):
        self.reduced = reduced

    def __reduce_ex__(self, protocol):
        return self.reduced


def install_fake_torch():
    """Just enough of `torch` for pickle to name its globals as torch.save does; nothing runs."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    for name in ("_rebuild_tensor_v2", "_rebuild_parameter"):
        fn = lambda *a: None
        fn.__module__, fn.__name__, fn.__qualname__ = "torch._utils", name, name
        setattr(utils, name, fn)
    for name in ("FloatStorage", "HalfStorage", "LongStorage"):
        cls = type(name, (), {})
        cls.__module__ = "torch"
        setattr(torch, name, cls)
    torch._utils = utils
    sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
    return torch


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            return ("storage", obj.dtype_class, obj.key, "cpu", obj.numel)
        return None


def stored(z, name, data):
    """Adds a stored entry with a fixed date, so that rerunning this script changes nothing."""
    z.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)


def torch_zip(state, storages, prefix="archive"):
    buffer = io.BytesIO()
    TorchPickler(buffer, protocol=2).dump(state)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        stored(z, f"{prefix}/data.pkl", buffer.getvalue())
        stored(z, f"{prefix}/byteorder", "little")
        for key, raw in storages.items():
            stored(z, f"{prefix}/data/{key}", raw)
        stored(z, f"{prefix}/version", "3\n")
    return out.getvalue()


def widen_ints(data):
    """The same pickle with every BININT1/BININT2 as a 4-byte BININT, so that in-place byte
    mutations of sizes, strides and offsets can reach negative and huge values."""
    import pickletools
    out = bytearray()
    ops = list(pickletools.genops(data))
    for i, (op, arg, pos) in enumerate(ops):
        end = ops[i + 1][2] if i + 1 < len(ops) else len(data)
        if op.name in ("BININT1", "BININT2"):
            out += b"J" + struct.pack("<i", arg)
        else:
            out += data[pos:end]
    return bytes(out)


def zip64(entries):
    """A stored zip whose sizes and offsets all go through zip64 records, as torch.save writes
    files over 4 GB (Python's zipfile only does this for files that large)."""
    out, central = bytearray(), bytearray()
    for name, raw in entries:
        name = name.encode()
        offset = len(out)
        extra = struct.pack("<HHQQ", 1, 16, len(raw), len(raw))
        crc = zlib.crc32(raw)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(name), len(extra))
        out += name + extra + raw
        cextra = struct.pack("<HHQQQ", 1, 24, len(raw), len(raw), offset)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                               len(name), len(cextra), 0, 0, 0, 0, 0xFFFFFFFF)
        central += name + cextra
    cd_offset = len(out)
    out += central
    record = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(entries), len(entries), len(central), cd_offset)
    out += struct.pack("<IIQI", 0x07064B50, 0, record, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return bytes(out)


def torch_seeds():
    torch = install_fake_torch()
    floats = FakeStorage(torch.FloatStorage, "0", 6)
    halves = FakeStorage(torch.HalfStorage, "1", 4)
    state = collections.OrderedDict([
        ("embeddings.weight", FakeTensor(floats, 0, (2, 3), (3, 1))),
        ("transposed", FakeTensor(floats, 0, (3, 2), (1, 3))),
        ("offset.bias", FakeTensor(floats, 4, (2,), (1,))),
        ("half", FakeTensor(halves, 0, (2, 2), (2, 1), parameter=True)),
    ])
    storages = {"0": struct.pack("<6f", 1, 2, 3, 4, 5, 6), "1": struct.pack("<4e", 1, 0.5, -2, 0)}
    put("torch", "strided.bin", torch_zip(state, storages))
    buffer = io.BytesIO()
    TorchPickler(buffer, protocol=2).dump(state)
    put("torch", "strided-zip64-wide-ints.bin", zip64(
        [("archive/data.pkl", widen_ints(buffer.getvalue()))] + [(f"archive/data/{k}", v) for k, v in storages.items()]))
    with zipfile.ZipFile(os.path.join(FIXTURES, "tiny-bert", "pytorch_model.bin")) as z:
        real = z.read("pytorch_model/data.pkl")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        stored(z, "pytorch_model/data.pkl", real)  # the real state dict, storages left out
    put("torch", "tiny-bert-no-storages.bin", out.getvalue())


# --- wire -------------------------------------------------------------------------------------
def fnv1a(text):
    h = 0xcbf29ce484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def header(kind, sender=1, segment=0, job="job", step=3, sequence=7, chunk=0, ring_step=0, length=0, total=0, flags=0):
    return (struct.pack("<IBBBB", 0x50445253, 1, kind, flags, 0) + struct.pack("<HH", sender, 0)
            + struct.pack("<I", segment) + struct.pack("<QQQ", fnv1a(job), step, sequence)
            + struct.pack("<II", chunk, ring_step) + struct.pack("<QQ", length, total))


def wire_seeds():
    put("wire", "all-gather.bin", b"\x01" + header(11, length=16, segment=2, ring_step=1) + bytes(range(16)))
    put("wire", "barrier.bin", b"\x00" + header(13))
    put("wire", "over-limit.bin", b"\x00" + header(11, length=1 << 20, flags=1))
    put("wire", "all-reduce-checked.bin", b"\x81" + header(10, length=8, total=1024, chunk=3) + struct.pack("<2f", 1, 2))
    put("wire", "hello.bin", b"\x01" + header(1, length=32, step=0, sequence=0) + bytes(32))
    put("wire", "truncated.bin", bytes([0x40 | 30]) + header(12)[:30])
    put("wire", "two-frames.bin", b"\x02" + header(12, length=4) + b"abcd")


# --- checkpoint -------------------------------------------------------------------------------
def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def training_config():
    """TrainingConfig's JSON with its defaults (SPEC section 8), as checkpoints store it."""
    def common(fb, extra):
        return dict(forward_batch_size=fb, gradient_accumulate_steps=1, logging_step=10, **extra)
    return {
        "pretrained_model_cfg": "/m", "encoder_model_type": "hf_bert", "projection_dim": 0, "seed": 12345,
        "adam_eps": 1e-8, "adam_betas": [0.9, 0.999], "max_grad_norm": 1.0, "weight_decay": 0.0,
        "learning_rate": 1e-5, "warmup_steps": 1000, "total_updates": 10000, "dropout": 0.1, "loss_scale": 8.0,
        "sim_func": "dot_product", "fix_ctx_encoder": False, "grad_cache": False, "q_chunk_size": 2,
        "ctx_chunk_size": 2, "do_lower_case": True, "max_length": 256, "train_mode": "poshard+hard",
        "regulate_factor": 1, "bytedataset": {"hard": {}},
        "pipeline": {
            "inbatch": common(16, {"use_hardneg": True, "use_num_hardnegs": 1}),
            "pos": common(16, {"contrastive_size": 16}),
            "poshard": common(2, {"contrastive_size": 2}),
            "hard": common(2, {"contrastive_size": 2, "use_randneg": True}),
        },
        "global_loss_buf_sz": 150000, "log_batch_step": 100, "log_dir": "logs",
        "checkpoint_file_name": "dpr_biencoder", "keep_checkpoint_max": 5, "save_checkpoint_freq": 1000,
    }


def checkpoint(sections):
    out = bytearray(b"SRDPRCK1")
    infos = []
    for name, kind, shape, raw in sections:
        info = {"name": name, "kind": kind, "offset": len(out), "length": len(raw), "crc32c": crc32c(raw)}
        if shape is not None:
            info["shape"] = shape
        infos.append(info)
        out += raw
    index = {"formatVersion": 1, "fileSize": 0, "sections": infos}
    for _ in range(4):  # the size is part of the index: iterate to the fixed point
        text = json.dumps(index, separators=(",", ":")).encode()
        size = len(out) + len(text) + 20
        if size == index["fileSize"]:
            break
        index["fileSize"] = size
    return bytes(out + text + struct.pack("<QI", len(text), crc32c(text)) + b"SRDPREND")


def checkpoint_seeds():
    put("checkpoint", "three-sections.ckpt", checkpoint([
        ("question_model.weight", "f32", [2, 3], struct.pack("<6f", *range(6))),
        ("config", "json", None, json.dumps(training_config(), sort_keys=True).encode()),
        ("vocab", "bytes", None, b"[PAD]\n[UNK]\n"),
    ]))


if __name__ == "__main__":
    pickle_seeds()
    jsonl_seeds()
    hydra_seeds()
    safetensors_seeds()
    bert_config_seeds()
    torch_seeds()
    wire_seeds()
    checkpoint_seeds()
    for target in sorted(os.listdir(os.path.join(HERE, "seeds"))):
        files = os.listdir(os.path.join(HERE, "seeds", target))
        print(f"{target}: {len(files)} seeds")

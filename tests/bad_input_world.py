"""The objects every bad-input case runs against (tests/test_bad_input.py), and the snapshot that
says, bit for bit, whether a failed call changed any of them.

A World holds one of each public object in a used state (gradients, touched rows, optimizer
moments, a bag's saved forward, a trained Word2Vec) plus a folder of files. ``snapshot(world)``
walks all of it: arrays by dtype, shape and bytes, Tables by weight, grad and touched, any other
object by its attributes (slots too), and the folder by names, modes and bytes, so a failed save
that leaves a temporary file behind counts as a change.
"""
import inspect
import json
import os
import threading

import numpy as np

import pyembed
from pyembed import optim

ROWS, DIM = 10, 4


def ones(*shape):
    return np.ones(shape, np.float32)


class World:
    def __init__(self, folder, inputs):
        rng = np.random.default_rng(0)
        self.t = pyembed.Table(ROWS, DIM)
        self.t.weight = rng.standard_normal((ROWS, DIM))
        self.t.backward([1, 2, 2], ones(3, DIM))
        self.emb = pyembed.Embedding(ROWS, DIM, padding_idx=0, seed=1)
        self.emb.backward([1, 3], ones(2, DIM))
        self.emb.freeze_rows([5])
        self.embn = pyembed.Embedding(ROWS, DIM, max_norm=0.5, seed=2)
        self.bag = pyembed.EmbeddingBag(ROWS, DIM, mode="sum", seed=3)
        self.bag([1, 2, 3], [0, 2], per_sample_weights=np.float32([1, 2, 3]))
        self.bagn = pyembed.EmbeddingBag(ROWS, DIM, mode="sum", max_norm=0.5, seed=4)
        self.bagm = pyembed.EmbeddingBag(ROWS, DIM, mode="mean", seed=5)
        self.inp = pyembed.InputEmbedding(ROWS, DIM, max_len=8, seed=6)
        self.inpl = pyembed.InputEmbedding(ROWS, DIM, max_len=8, positional="learned", seed=7)
        self.inpl.backward([[1, 2]], ones(1, 2, DIM))
        # BERT's stage: segments and LayerNorm, with gradients in every table and in gamma, beta
        self.inpb = pyembed.InputEmbedding(ROWS, DIM, max_len=8, positional="learned", scale=None,
                                           num_segments=2, norm="layernorm", seed=15)
        self.inpb.backward([[1, 2]], np.arange(2 * DIM, dtype=np.float32).reshape(1, 2, DIM),
                           segment_ids=[[0, 1]])
        self.pe = pyembed.PositionalEncoding(DIM, max_len=8)
        self.adam = optim.Adam(self.emb, lr=0.1)
        self.adam.step()
        self.e1, self.e2, self.e3 = (pyembed.Embedding(ROWS, DIM, seed=s) for s in (8, 9, 10))
        for e in (self.e1, self.e2, self.e3):
            e.backward([1, 4], ones(2, DIM))
        self.adam2 = optim.Adam([{"params": [self.e1]}, {"params": [self.e2], "lr": 0.2}],
                                lr=0.1, lazy=True)
        self.adam2.step()
        self.sgd = optim.SGD(self.e3, lr=0.1, momentum=0.9)
        self.sgd.step()
        self.pw, self.pg = np.zeros((3, DIM), np.float32), ones(3, DIM)
        self.pair_opt = optim.AdamW([(self.pw, self.pg)], lr=0.1)
        self.pair_opt.step()
        self.kv = pyembed.Vectors([f"w{i}" for i in range(ROWS)],
                                  rng.standard_normal((ROWS, 3)).astype(np.float32))
        self.kv.fill_norms()
        self.vocab = pyembed.Vocab([f"t{i}" for i in range(ROWS - 1)])  # with <unk>: 10 ids
        self.w2v = pyembed.Word2Vec([["a", "b", "c", "a"]] * 10, vector_size=DIM, min_count=1,
                                    epochs=1, workers=1, progress=False)
        self.kv.expandos["count"] = np.arange(ROWS, 0, -1)
        self.w2v.wv  # the cached Vectors exists: asking for it again changes nothing
        # options a user set to NaN between steps: the next step must refuse them untouched
        self.e4, self.e5, self.e6 = (pyembed.Embedding(ROWS, DIM, seed=s) for s in (12, 13, 14))
        for e in (self.e4, self.e5, self.e6):
            e.backward([2, 6], ones(2, DIM))
        self.adam_nan0 = optim.Adam([{"params": [self.e4]}, {"params": [self.e5]}], lr=0.1)
        self.adam_nan1 = optim.Adam([{"params": [self.e5]}, {"params": [self.e4]}], lr=0.1)
        self.sgd_nan = optim.SGD(self.e6, lr=0.1, momentum=0.9)
        for opt in (self.adam_nan0, self.adam_nan1, self.sgd_nan):
            opt.step()
        self.adam_prs = optim.Adam([{"params": [self.e6]}, {"params": [self.e4]}], lazy=True)
        self.adam_prs.step()
        self.adam_prs.param_groups[1]["per_row_step"] = True  # refused at the next step
        self.adam_nan0.param_groups[0]["lr"] = float("nan")
        self.adam_nan1.param_groups[1]["lr"] = float("nan")
        self.sgd_nan.param_groups[0]["momentum"] = float("nan")
        self.w2v_nan = pyembed.Word2Vec([["a", "b", "c", "a"]] * 10, vector_size=DIM, min_count=1,
                                        epochs=1, workers=1, progress=False)
        self.w2v_nan.ns_exponent = float("nan")
        self.enan = pyembed.Embedding(ROWS, DIM, seed=11)
        self.enan.backward([2], np.full((1, DIM), np.nan, np.float32))
        self.dir = str(folder)
        self.sub = os.path.join(self.dir, "a_folder")
        os.mkdir(self.sub)
        self.missing = os.path.join(self.dir, "missing", "x.txt")
        self.inputs = inputs
        for name, path in inputs.items():
            setattr(self, name.split(".")[0], path)


def make_inputs(folder):
    """The files the loaders read, written once per session (saving fsyncs: too slow per case).
    Returns {file name: path}."""
    folder = str(folder)
    rng = np.random.default_rng(0)
    kv = pyembed.Vectors([f"w{i}" for i in range(ROWS)], rng.standard_normal((ROWS, 3)))
    paths = {n: os.path.join(folder, n) for n in ("vec_txt.txt", "st.safetensors",
                                                   "vocab_txt.txt")}
    pyembed.save_vectors(kv, paths["vec_txt.txt"])
    pyembed.save_safetensors(paths["st.safetensors"], {"embed_tokens.weight": kv.vectors})
    pyembed.Vocab([f"t{i}" for i in range(ROWS - 1)]).save(paths["vocab_txt.txt"])
    files = {"empty.txt": b"", "repeated.txt": b"a\na\n", "bad_utf8.txt": b"a\n\xff\n",
             # issue 11: a header asking for 100000 x 200000 floats (74.5 GiB) in 200 KB
             "huge_header.txt": b"100000 200000\n" + b"a\n" * 100000,
             # and a GloVe file whose first row has 200000 values, then 100000 one-word lines
             "huge_glove.txt": b"a " + b"0 " * 200000 + b"\n" + b"b\n" * 100000,
             "bad_header.txt": b"2 x\na 1\n", "short_row.txt": b"2 3\na 1 2 3\nb 1 2\n",
             "truncated.bin": b"2 3\na \x00\x00\x80?",
             "garbage.safetensors": b"\xff" * 16, "pairs.txt": b"w1\tw2\tx\n"}
    for name, data in files.items():
        paths[name] = os.path.join(folder, name)
        with open(paths[name], "wb") as f:
            f.write(data)
    for p in paths.values():
        os.chmod(p, 0o444)
    paths.update(_hf_folders(folder))
    return paths


def _hf_folders(folder):
    """Model folders InputEmbedding.from_pretrained must refuse: an unknown model_type, a BERT
    checkpoint without its token-type table, no config.json, a config that is not JSON."""
    bert = {"model_type": "bert", "vocab_size": ROWS, "hidden_size": DIM,
            "max_position_embeddings": 8, "type_vocab_size": 2}
    tensors = {f"embeddings.{n}": np.ones(s, np.float32) for n, s in (
        ("word_embeddings.weight", (ROWS, DIM)), ("position_embeddings.weight", (8, DIM)),
        ("LayerNorm.weight", (DIM,)), ("LayerNorm.bias", (DIM,)))}
    out = {}
    for name, config in (("hf_t5", b'{"model_type": "t5"}'), ("hf_no_types", bert),
                         ("hf_no_config", None), ("hf_bad_json", b"{model_type")):
        out[name] = d = os.path.join(folder, name)
        os.mkdir(d)
        if config is not None:
            with open(os.path.join(d, "config.json"), "wb") as f:
                f.write(config if isinstance(config, bytes) else json.dumps(config).encode())
        pyembed.save_safetensors(os.path.join(d, "model.safetensors"), tensors)
    return out


def _walk(obj, seen):
    """A comparable picture of obj. `seen` maps id -> object: keeping the object alive keeps its
    id from being reused by a temporary (which would then be skipped as already seen)."""
    if isinstance(obj, np.ndarray):
        return ("ndarray", obj.dtype.str, obj.shape, obj.tobytes())
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, np.generic)):
        return repr(obj)
    if id(obj) in seen:
        return ("seen", type(obj).__name__)
    seen[id(obj)] = obj
    if isinstance(obj, pyembed.Table):
        return ("Table", _walk(obj.weight, seen), _walk(obj.grad, seen), _walk(obj.touched, seen))
    if isinstance(obj, dict):
        return ("dict", tuple((_walk(k, seen), _walk(v, seen)) for k, v in obj.items()))
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, tuple(_walk(v, seen) for v in obj))
    if isinstance(obj, type(threading.Lock())) or inspect.isroutine(obj):
        return type(obj).__name__
    attrs = dict(vars(obj)) if hasattr(obj, "__dict__") else {}
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if hasattr(obj, name):
                attrs[name] = getattr(obj, name)
    return (type(obj).__name__, _walk(attrs, seen))


def _files(root, contents=True):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            data = st.st_size, st.st_mtime_ns
            if contents and os.path.isfile(p):
                with open(p, "rb") as f:
                    data = f.read()
            out.append((os.path.relpath(p, root), st.st_mode, data))
    return out


def snapshot(world):
    """Everything a failed call must leave as it was: every object of the world (recursively,
    bit for bit), the folder's files, and the process-wide thread count."""
    objs = {k: v for k, v in vars(world).items() if not isinstance(v, (str, dict))}
    inputs = os.path.dirname(next(iter(world.inputs.values())))
    return {"objects": {k: _walk(v, {}) for k, v in objs.items()},
            "files": _files(world.dir) + _files(inputs, contents=False),
            "threads": pyembed.get_num_threads()}


def changed(before, after):
    """Names of what differs between two snapshots (for the failure message)."""
    out = [k for k in before["objects"] if before["objects"][k] != after["objects"].get(k)]
    if before["files"] != after["files"]:
        diff = set(after["files"]) ^ set(before["files"])
        out.append(f"files {sorted({name for name, _, _ in diff})}")
    if before["threads"] != after["threads"]:
        out.append("get_num_threads()")
    return out

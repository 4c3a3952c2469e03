"""Fuzz target for argument conversion (csrc/py/convert.c and the checks around it).

The fuzzer's bytes pick an operation (Table.lookup with and without max_norm, Table.backward,
Table.renorm, EmbeddingBag forward + backward, InputEmbedding forward + backward, an optimizer
step, rope and rope_backward, clip_grad_norm_) and build its array arguments: any dtype (every
integer width, bool, floats, complex, object, str, datetime), 0-3 dimensions, strides (reversed,
stepped, transposed), byte-swapped, misaligned, read-only, or a nested list, with small ids, raw
bit patterns or edge values.

Oracles (DESIGN.md "Errors"):
- only TypeError, ValueError, IndexError and OverflowError escape;
- a call that raises leaves the table (weights, grad, touched rows) and the optimizer's state
  unchanged, bit for bit;
- a lookup that succeeds returns W[ids] (NumPy's take of the same ids), bit for bit, and
  changes nothing without max_norm; rope leaves its input unchanged.
"""
import warnings

import numpy as np

import pyembed
from fuzz_targets import Finding

# OverflowError: a number that does not fit (DESIGN.md "Errors"; NumPy raises it too for a Python
# int past int64, and rope for a position past 2**52, where float64 angles stop being exact)
ALLOWED = (TypeError, ValueError, IndexError, OverflowError)
ROWS, DIM = 6, 3

_DTYPES = [np.dtype(t) for t in ("i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "?", "f2", "f4",
                                 "f8", "c8", "O", "U2", "M8[s]", "V4")]
_EDGE = [0, 1, ROWS - 1, ROWS, -1, 2**31 - 1, -2**31, 2**63 - 1, -2**63, 2**64 - 1, 2**70,
         0.5, float("nan"), float("inf"), -0.0, True]


class _Bytes:
    """atheris.FuzzedDataProvider's few calls we need, over plain bytes (so that replaying a
    kept input needs no atheris): every call consumes from the front; past the end, zeros."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def byte(self):
        b = self.data[self.pos] if self.pos < len(self.data) else 0
        self.pos += 1
        return b

    def pick(self, seq):
        return seq[self.byte() % len(seq)]

    def take(self, n):
        out = self.data[self.pos:self.pos + n].ljust(n, b"\0")
        self.pos += n
        return out


def _values(src, dtype, n):
    """n values of `dtype`: small ids (the common case), raw bits, or edge values."""
    how = src.byte() % 4
    if how == 3 and dtype.kind not in "OUMV":
        return np.frombuffer(src.take(n * dtype.itemsize), dtype)
    if how == 2:
        vals = [src.pick(_EDGE) for _ in range(n)]
    else:
        vals = [src.byte() % (ROWS + 2) - 1 for _ in range(n)]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.array(vals, dtype=object).astype(dtype)
    except (OverflowError, ValueError, TypeError):
        return np.array(vals, dtype=object)


def fuzz_array(src, dtype=None, shape=None):
    """An argument as a user could pass it (see the module docstring)."""
    dtype = src.pick(_DTYPES) if dtype is None else np.dtype(dtype)
    if shape is None:
        shape = tuple(src.byte() % 4 for _ in range(src.byte() % 4))
    layout = src.byte() % 9
    if layout == 1 and shape:  # a view with a step: the base holds twice the last axis
        base = _values(src, dtype, int(np.prod(shape)) * 2).reshape(shape[:-1] + (shape[-1] * 2,))
        return base[..., ::2]
    a = _values(src, dtype, int(np.prod(shape))).reshape(shape)
    if layout == 2:
        return a[::-1] if a.ndim else a
    if layout == 3:
        return np.ascontiguousarray(a.T).T
    if layout == 4 and a.dtype.kind not in "OUMV":
        return a.astype(a.dtype.newbyteorder())
    if layout == 5 and a.dtype.kind not in "OMV" and a.dtype.itemsize > 1:
        raw = np.zeros(a.nbytes + 1, np.uint8)
        mis = raw[1:].view(a.dtype).reshape(a.shape)  # misaligned by one byte
        mis[...] = a
        return mis
    if layout == 6:
        a.flags.writeable = False
        return a
    if layout == 7:
        return a.tolist()
    return a


def _snapshot(emb, opt=None):
    t = emb.table
    g = t.grad
    state = [] if opt is None else [
        (k, np.asarray(v).tobytes()) for st in opt.state.values() for k, v in sorted(st.items())]
    return (t.weight.tobytes(), None if g is None else g.tobytes(), t.touched.tobytes(), state)


def guarded(what, snap, fn, *args, **kwargs):
    """fn(*args, **kwargs); if it raises, `snap()` (what it may touch) must not have changed."""
    before = snap()
    try:
        return fn(*args, **kwargs)
    except ALLOWED as e:
        if snap() != before:
            raise Finding(f"{what}: a call that raised {e!r} changed the table or optimizer "
                          f"state") from None
        raise


def _op_lookup(src, emb, out_too):
    ids = fuzz_array(src)
    out = (fuzz_array(src, src.pick((np.float32, np.float64)), np.shape(ids) + (DIM,))
           if out_too else None)
    w = emb.table.weight.tobytes()
    res = guarded("Table.lookup", lambda: _snapshot(emb), emb.table.lookup, ids, out)
    ref = np.frombuffer(w, res.dtype).reshape(ROWS, DIM)[np.asarray(ids, np.int64)]
    if res.shape != ref.shape or res.tobytes() != ref.tobytes():
        raise Finding(f"lookup of {ids!r} returned {res!r}, W[ids] is {ref!r}")
    if emb.table.weight.tobytes() != w or (out is not None and res is not out):
        raise Finding("lookup without max_norm changed the table, or did not return out")


def _op_max_norm(src, emb):
    guarded("Table.lookup(max_norm=)", lambda: _snapshot(emb), emb.table.lookup, fuzz_array(src),
            None, max_norm=src.pick((1.0, 0.0, float("nan"), -1.0, 1e-30)),
            norm_type=src.pick((2.0, 1.0, float("inf"), 0.0, float("nan"), 3.5)))


def _op_backward(src, emb):
    ids = fuzz_array(src)
    g = fuzz_array(src, None, np.shape(ids) + (DIM,) if src.byte() % 4 else None)
    guarded("Table.backward", lambda: _snapshot(emb), emb.table.backward, ids, g,
            src.pick((None, 0, ROWS - 1, -1, ROWS)), bool(src.byte() & 1))


def _op_renorm(src, emb):
    guarded("Table.renorm", lambda: _snapshot(emb), emb.table.renorm, fuzz_array(src),
            src.pick((1.0, 0.5, 0.0, -1.0)), src.pick((2.0, 1.0, float("inf"), 0.0)))


def _op_bag(src, emb):
    bag = pyembed.EmbeddingBag(ROWS, DIM, src.pick(("mean", "sum", "max")), seed=1,
                               padding_idx=src.pick((None, 0, 2)),
                               max_norm=src.pick((None, None, 1.0)))
    ids = fuzz_array(src)
    offsets = fuzz_array(src) if src.byte() % 4 else None
    psw = (fuzz_array(src, src.pick((np.float32, np.float64, None)), np.shape(ids))
           if src.byte() % 3 == 0 else None)
    snap = lambda: _snapshot(bag)  # noqa: E731
    what = f"EmbeddingBag(max_norm={bag.max_norm})"
    out = guarded(what, snap, bag, ids, offsets, psw, bool(src.byte() & 1))
    grad = fuzz_array(src, None, np.shape(out) if src.byte() % 4 else None)
    guarded(what + ".backward", snap, bag.backward, grad)


def _op_input_embedding(src, emb):
    ie = pyembed.InputEmbedding(ROWS, DIM + 1, max_len=8, seed=1,
                                positional=src.pick(("sinusoidal", "learned", "none")))
    ids = fuzz_array(src)
    start = src.pick((0, 1, 7, -1, 2**63, True))
    out = fuzz_array(src, np.float32, np.shape(ids) + (DIM + 1,)) if src.byte() & 1 else None
    snap = lambda: (_snapshot(ie.token),  # noqa: E731
                    _snapshot(ie.position) if ie.positional == "learned" else None)
    guarded("InputEmbedding", snap, ie, ids, start, out)
    guarded("InputEmbedding.backward", snap, ie.backward, ids,
            fuzz_array(src, None, np.shape(ids) + (DIM + 1,)), start)


_HYPER = (1e-3, 0.0, float("nan"), float("inf"), -1.0, 0.9, 1.0, 2.0)


def _op_optimizer(src, emb):
    w = fuzz_array(src, src.pick((np.float32, np.float64, np.int64)), (2, DIM))
    g = fuzz_array(src, src.pick((np.float32, np.float64)), (2, DIM))
    params = [emb] if src.byte() % 2 else [emb, (w, g)]
    kind = src.pick((pyembed.optim.Adam, pyembed.optim.AdamW, pyembed.optim.SparseAdam,
                     pyembed.optim.SGD))
    opt = kind(params, lr=1e-3)
    opt.step()  # state exists before the fuzzed step
    emb.table.backward([1, 2, 1], np.ones((3, DIM), emb.table.dtype))
    group = opt.param_groups[0]
    for key in list(group):
        if key != "params" and src.byte() % 3 == 0:
            group[key] = src.pick(_HYPER) if not isinstance(group[key], tuple) else (
                src.pick(_HYPER), src.pick(_HYPER))
    guarded(f"{kind.__name__}.step", lambda: _snapshot(emb, opt), opt.step)


def _op_rope(src, emb):
    x = fuzz_array(src, src.pick((np.float32, np.float64, None)))
    positions = fuzz_array(src) if src.byte() % 2 else None
    out = (fuzz_array(src, src.pick((np.float32, np.float64)), np.shape(x))
           if src.byte() % 3 == 0 else None)
    fn = src.pick((pyembed.rope, pyembed.rope_backward))
    x_before = np.asarray(x).tobytes()
    guarded(fn.__name__, lambda: np.asarray(out).tobytes(), fn, x, positions,
            base=src.pick((10000.0, 1.0, 0.0, float("nan"), -1.0)),
            pairing=src.pick(("half", "interleaved", "half ")), out=out)
    if np.asarray(x).tobytes() != x_before:
        raise Finding(f"{fn.__name__} changed its input")


def _op_clip(src, emb):
    guarded("clip_grad_norm_", lambda: _snapshot(emb), pyembed.optim.clip_grad_norm_, emb,
            src.pick(_HYPER), src.pick((2.0, 1.0, float("inf"), 0.0, float("nan"), -1.0)),
            bool(src.byte() & 1))


# new operations go at the end: a kept input (crashes/convert) starts with its operation's index,
# which then keeps its meaning (up to 16 operations)
_OPS = (lambda s, e: _op_lookup(s, e, False), lambda s, e: _op_lookup(s, e, True), _op_max_norm,
        _op_backward, _op_renorm, _op_bag, _op_input_embedding, _op_optimizer, _op_rope, _op_clip)


def convert(data):
    src = _Bytes(data)
    op = _OPS[src.byte() % 16 % len(_OPS)]
    emb = pyembed.Embedding(ROWS, DIM, seed=0, dtype=src.pick((np.float32, np.float64)))
    emb.table.backward([3], np.ones((1, DIM), emb.table.dtype))  # a grad and a touched row
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            op(src, emb)
    except ALLOWED:
        pass

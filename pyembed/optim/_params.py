"""Parameters of the pyembed.optim optimizers (public names, private module): what ``params``
may be (Embeddings, Tables, ``(array, grad_array)`` pairs, pyembed.torch modules, objects with
``.parameters()``), one
checked :class:`Param` per parameter, and the aligned zeroed buffers that hold optimizer state."""
from __future__ import annotations

import numpy as np

from .._checks import check_float_dtype, is_half
from .._core import Table


def aligned_zeros(shape, dtype):
    """Zeros in 64-byte aligned memory (whole cache lines, full-width vector loads). np.zeros
    is calloc underneath, so the pages of a huge moment buffer cost nothing until a row is used."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buf = np.zeros(nbytes + 64, np.uint8)
    off = (-buf.ctypes.data) % 64
    return buf[off:off + nbytes].view(dtype).reshape(shape)


def densify(grad, rows, shape):
    """The (V, D) gradient of a sparse one (``grad[i]`` is row ``rows[i]``'s), for the updates
    that reach every row: the dense buffer a sparse table otherwise never holds."""
    dense = aligned_zeros(shape, grad.dtype)
    dense[rows] = grad
    return dense


def is_pair(obj):
    return (isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], np.ndarray)
            and isinstance(obj[1], np.ndarray))


def unwrap(obj):
    """A module that holds a pyembed Embedding in ``.pe`` (pyembed.torch's Embedding and
    EmbeddingBag) stands for that Embedding: its weight shares the table's memory."""
    pe = getattr(obj, "pe", None)
    return pe if isinstance(getattr(pe, "table", None), Table) else obj


def is_single(obj):
    obj = unwrap(obj)
    return isinstance(obj, Table) or isinstance(getattr(obj, "table", None), Table) or is_pair(obj)


def flatten_params(params):
    """One Embedding / Table / pair, an object with .parameters(), or an iterable of those."""
    if is_single(params):
        return [unwrap(params)]
    if isinstance(params, np.ndarray):
        raise TypeError("a bare array has no gradient: pass (array, grad_array) pairs")
    if hasattr(params, "parameters") and callable(params.parameters):
        return flatten_params(list(params.parameters()))
    try:
        items = list(params)
    except TypeError:
        raise TypeError(f"params must be an Embedding, a Table, an (array, grad) pair or an "
                        f"iterable of them, got {type(params).__name__}") from None
    out = []
    for obj in items:
        if is_single(obj):
            out.append(unwrap(obj))
        elif hasattr(obj, "parameters") and callable(obj.parameters):
            out.extend(flatten_params(list(obj.parameters())))
        else:
            raise TypeError(f"cannot optimize a {type(obj).__name__}: pass Embeddings, Tables or "
                            f"(array, grad_array) pairs")
    return out


class Param:
    """One parameter: a Table (maybe inside an Embedding) or an (array, grad_array) pair."""

    __slots__ = ("obj", "table", "emb", "array", "grad_array")

    def __init__(self, obj):
        obj = unwrap(obj)
        self.obj = obj
        self.table = self.emb = self.array = self.grad_array = None
        if isinstance(obj, Table):
            self.table = obj
        elif is_pair(obj):
            w, g = obj
            check_float_dtype(w.dtype, "parameter arrays")
            if not (w.flags.c_contiguous and w.flags.writeable and w.flags.aligned):
                raise ValueError("a parameter array must be C-contiguous, aligned and writeable "
                                 "(it is updated in place)")
            if g.dtype != w.dtype or g.shape != w.shape:
                raise ValueError(f"grad array has dtype {g.dtype} and shape {g.shape} but the "
                                 f"parameter has {w.dtype} and {w.shape}")
            if not (g.flags.c_contiguous and g.flags.aligned):
                raise ValueError("a grad array must be C-contiguous and aligned")
            if np.shares_memory(w, g):
                raise ValueError("a parameter array and its grad array share memory")
            self.array, self.grad_array = w, g
        else:
            self.emb = obj
            self.table = obj.table
        if self.table is not None and not self.table.weight.flags.writeable:
            raise ValueError("cannot optimize a read-only table (Embedding.from_memmap(..., "
                             "mode='r')?): map it with mode='r+' to train it")

    def __eq__(self, other):
        return isinstance(other, Param) and other.key() == self.key()

    def __hash__(self):
        return hash(self.key())

    @property
    def weight(self):
        return self.table.weight if self.table is not None else self.array

    @property
    def shape(self):
        return tuple(self.table.shape) if self.table is not None else self.array.shape

    @property
    def dtype(self):
        return self.table.dtype if self.table is not None else self.array.dtype

    @property
    def half(self):
        """True for a float16 / bfloat16 table (trained in float32, rounded back per row)."""
        return self.table is not None and is_half(self.table.dtype)

    @property
    def state_dtype(self):
        """The dtype of the gradient and of the optimizer state: float32 for a half table."""
        return np.dtype(np.float32) if self.half else self.dtype

    @property
    def trainable(self):
        return self.emb is None or bool(getattr(self.emb, "requires_grad", True))

    @property
    def frozen(self):
        """The uint8 mask of rows the update must leave alone (Embedding.freeze_rows), or None."""
        return getattr(self.emb, "frozen_mask", None) if self.emb is not None else None

    @property
    def compact(self):
        """True when :meth:`grad` gives a sparse gradient: ``grad[i]`` is row ``rows[i]``'s
        (an Embedding with ``sparse=True``)."""
        return bool(getattr(self.emb, "sparse", False))

    def grad(self):
        """(grad, touched rows) or (None, None) when there is nothing to apply."""
        if self.table is None:
            return self.grad_array, None
        if hasattr(self.emb, "step_grad"):
            # a table spread over processes (pyembed.distributed) knows whether any of them has
            # gradient, and steps even when its own part has none (one step counter for all)
            return self.emb.step_grad()
        if self.compact:
            sg = self.emb.sparse_grad_buffer()
            return (None, None) if sg is None or not sg[1].size else sg[:2]
        g = self.table.grad
        if g is None or self.table.num_touched == 0:
            return None, None
        return g, self.table.touched

    def zero_grad(self):
        if self.compact:
            self.emb.zero_grad()
        elif self.table is not None:
            self.table.zero_grad()
        else:
            self.grad_array.fill(0)

    def key(self):
        return id(self.table) if self.table is not None else id(self.array)

    def __repr__(self):
        return f"<param {self.obj!r}>" if self.table is not None else \
            f"<param array {self.array.shape} {self.array.dtype}>"


def check_rounding(stochastic_rounding, seed):
    """An optimizer's ``stochastic_rounding`` (how a half table's updated rows are rounded back:
    to nearest even, or stochastically with half.h's counter-based bits, the counter being the
    step) and ``seed`` (an int in [0, 2**64)), checked: (bool, int)."""
    if not isinstance(stochastic_rounding, (bool, np.bool_)):
        raise TypeError(f"stochastic_rounding must be a bool, got {stochastic_rounding!r}")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r}")
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must be within [0, 2**64), got {seed}")
    return bool(stochastic_rounding), int(seed)


def rounding_args(p, stochastic_rounding, seed, step):
    """The rounding keywords of a kernel call on ``p`` at ``step`` (none for a float table)."""
    if not p.half:
        return {}
    return dict(stochastic_rounding=stochastic_rounding, seed=seed, round_step=int(step))

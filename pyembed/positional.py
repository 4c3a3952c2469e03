"""Sinusoidal positional encodings (Vaswani et al. 2017, section 3.5), accurate at long range.

``PE[p, 2i] = sin(p / base^(2i/d))``, ``PE[p, 2i+1] = cos(p / base^(2i/d))``.

The usual float32 formula (``np.sin(pos * div)`` in NumPy or torch) rounds the angle ``p * w`` to
float32 before taking the sine, so near position 2^20 its entries are off by up to ~0.1. The C
kernel here works in double and rounds once: every entry is within 2e-7 of the float64 formula at
every position up to 2^20 (and to ~2^29, where the double rounding of ``p * w`` itself reaches
6e-8). It needs no sin/cos per element (an angle-addition walk re-anchored with libm every 256
positions, csrc/kernels/positional.c), so it is also several times faster than that formula.
"""
from __future__ import annotations

import threading

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _core
from ._checks import check_float_dtype, check_int

__all__ = ["sinusoidal", "PositionalEncoding"]

#: Where the two members of each pair sit along the last axis (a sin/cos pair here, the two
#: features rotated together in pyembed.rope): "interleaved" (2j, 2j+1: the paper) or "halves"
#: (j, j + d/2: tensor2tensor, fairseq, GPT-NeoX, Hugging Face's rotate_half).
LAYOUTS = ("interleaved", "halves")
_EXPONENTS = {"2i/d": 0, "d/2-1": 1}


def check_layout(layout: str) -> bool:
    """True for ``"halves"``, False for ``"interleaved"``; ValueError for anything else."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    return layout == "halves"


def _check_layout(layout, exponent):
    halves = check_layout(layout)
    if exponent not in _EXPONENTS:
        raise ValueError(f"exponent must be one of {tuple(_EXPONENTS)}, got {exponent!r}")
    return halves, _EXPONENTS[exponent]


def _check_base(base):
    try:
        b = float(base)
    except (TypeError, ValueError):
        raise TypeError(f"base must be a number, got {type(base).__name__}") from None
    if not (np.isfinite(b) and b > 0):
        raise ValueError(f"base must be a finite number > 0, got {base!r}")
    return b


def sinusoidal(num_positions: int, dim: int, *, start: int = 0, base: float = 10000.0,
               layout: str = "interleaved", exponent: str = "2i/d",
               dtype: DTypeLike | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """The ``(num_positions, dim)`` sinusoidal table of positions ``start, start+1, ...``.

    Args:
        num_positions: rows.
        dim: columns (the model width). An odd ``dim`` works: with ``exponent="2i/d"`` its last
            column is the sine of one more frequency, ``sin(p / base^((dim-1)/dim))``.
        start: position of the first row (negative allowed; |positions| < 2^52).
        base: the 10000 of the paper.
        layout: ``"interleaved"`` (the paper, and PyTorch tutorials: sin, cos, sin, cos, ...)
            or ``"halves"`` (all sines then all cosines: tensor2tensor, fairseq, Marian).
        exponent: ``"2i/d"``: ``w_i = base^(-2i/dim)`` (the paper). ``"d/2-1"``: ``w_i =
            base^(-i/(dim/2 - 1))``, the frequencies of tensor2tensor's ``get_timing_signal_1d``
            and fairseq's ``SinusoidalPositionalEmbedding`` (their lowest frequency is exactly
            1/base); with an odd ``dim`` the last column is zero, as both pad it. fairseq's table
            for ``padding_idx=1`` is ``sinusoidal(n, d, start=2, layout="halves",
            exponent="d/2-1")`` (its row 0 is zeros; its positions start at padding_idx + 1).
        dtype: float32 (default, or ``out``'s dtype) or float64.
        out: an exact C-contiguous array of shape (num_positions, dim) to write into.

    Every float32 entry is within 2e-7 of the float64 formula (float32 rounding is 3e-8) at
    every position up to 2^20; an entry's bits depend only on its position and column, not on
    ``start``, ``num_positions`` or the thread count.

    Example:
        >>> import numpy as np, pyembed
        >>> pe = pyembed.sinusoidal(4, 6)
        >>> pe.shape, pe.dtype
        ((4, 6), dtype('float32'))
        >>> bool(np.allclose(pe[1, 0::2], np.sin(1 / 10000 ** (np.arange(0, 6, 2) / 6))))
        True
    """
    num_positions = check_int("num_positions", num_positions, 0)
    dim = check_int("dim", dim, 0)
    start = check_int("start", start)
    for name, v in (("num_positions", num_positions), ("start", start)):
        if not -2 ** 63 <= v < 2 ** 63:  # the C call's message would name neither
            raise OverflowError(f"{name} {v} does not fit in int64")
    halves, exp = _check_layout(layout, exponent)
    b = _check_base(base)
    if dtype is None and out is None:
        dtype = np.float32
    return _core.sinusoidal(num_positions, dim, start, b, not halves, exp, dtype, out)


class PositionalEncoding:
    """Adds the sinusoidal encoding to a sequence, like the ``PositionalEncoding`` module of the
    PyTorch transformer tutorial (without its dropout), caching the table and growing it when a
    longer sequence (or a later ``start``) arrives.

    Args:
        dim: model width (the last axis of the inputs).
        max_len: rows computed up front (the cache doubles on demand beyond it).
        base, layout, exponent: as :func:`sinusoidal`.
        dtype: the table's dtype (float32 default). The sum follows NumPy's promotion.

    ``pe(x, start=0)`` returns ``x + table[start:start+seq]`` for x of shape (seq, dim) or
    (batch, seq, dim). The encoding has no parameters, so ``pe.backward(grad)`` is the identity:
    it returns ``grad`` itself.

    Example:
        >>> import numpy as np, pyembed
        >>> pe = pyembed.PositionalEncoding(8, max_len=16)
        >>> y = pe(np.zeros((2, 5, 8), np.float32), start=3)
        >>> bool(np.array_equal(y[1], pyembed.sinusoidal(5, 8, start=3)))
        True
    """

    def __init__(self, dim: int, max_len: int = 4096, base: float = 10000.0,
                 layout: str = "interleaved", *, exponent: str = "2i/d",
                 dtype: DTypeLike = np.float32) -> None:
        self.dim = check_int("dim", dim, 0)
        max_len = check_int("max_len", max_len, 0)
        self.base = _check_base(base)
        self._halves, self._exp = _check_layout(layout, exponent)
        self.layout = layout
        self.exponent = exponent
        self.dtype = check_float_dtype(dtype)
        self._lock = threading.Lock()
        table = self._compute(0, max_len, None)
        table.flags.writeable = False
        self._table = table

    def _compute(self, start, n, out):
        return _core.sinusoidal(n, self.dim, start, self.base, not self._halves, self._exp,
                                self.dtype, out)

    def _ensure(self, length):
        table = self._table
        if length <= table.shape[0]:
            return table
        with self._lock:
            table = self._table
            if length > table.shape[0]:
                old = table.shape[0]
                new = np.empty((max(length, 2 * old), self.dim), self.dtype)
                new[:old] = table
                # rows are a function of their position alone: the new rows match a full call
                self._compute(old, new.shape[0] - old, new[old:])
                new.flags.writeable = False
                self._table = table = new
        return table

    def __getstate__(self):
        # the lock cannot be pickled, and the table is cheaper to recompute than to store
        state = self.__dict__.copy()
        del state["_lock"]
        state["_table"] = self._table.shape[0]
        return state

    def __setstate__(self, state):
        n = state.pop("_table")
        self.__dict__.update(state)
        self._lock = threading.Lock()
        table = self._compute(0, n, None)
        table.flags.writeable = False
        self._table = table

    @property
    def max_len(self) -> int:
        """Rows currently cached."""
        return self._table.shape[0]

    @property
    def table(self) -> np.ndarray:
        """The cached (max_len, dim) table (read-only)."""
        return self._table

    def encoding(self, seq_len: int, start: int = 0) -> np.ndarray:
        """Rows ``start .. start+seq_len`` of the table (a read-only view; grows the cache)."""
        seq_len = check_int("seq_len", seq_len, 0)
        start = check_int("start", start, 0)
        return self._ensure(start + seq_len)[start:start + seq_len]

    def __call__(self, x: ArrayLike, start: int = 0) -> np.ndarray:
        return self.forward(x, start)

    def forward(self, x: ArrayLike, start: int = 0) -> np.ndarray:
        """``x + encoding(seq, start)`` for x of shape (seq, dim) or (batch, seq, dim)."""
        x = np.asarray(x)
        if x.ndim not in (2, 3) or x.shape[-1] != self.dim:
            raise ValueError(f"x has shape {x.shape} but PositionalEncoding needs (seq, {self.dim}) "
                             f"or (batch, seq, {self.dim})")
        return x + self.encoding(x.shape[-2], start)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """The identity: d(x + PE)/dx = 1 and the encoding has no parameters. Returns ``grad``."""
        return grad

    def parameters(self) -> list:
        """No trainable parameters: ``[]``."""
        return []

    def __repr__(self):
        return (f"PositionalEncoding({self.dim}, max_len={self.max_len}, base={self.base:g}, "
                f"layout={self.layout!r}, exponent={self.exponent!r}, dtype={self.dtype})")

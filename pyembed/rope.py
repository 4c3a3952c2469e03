"""Rotary position embeddings (Su et al. 2021, "RoFormer: Enhanced Transformer with Rotary
Position Embedding"), as used by GPT-NeoX, Llama and most current decoders.

Each pair of features of a query/key row at position p is rotated by ``p * base^(-2j/head_dim)``,
so that ``<rope(q, m), rope(k, n)>`` depends only on ``m - n``. Two layouts of the pairs exist in
the wild, named as :func:`pyembed.sinusoidal` names its sin/cos pairs: ``"halves"`` pairs feature
j with j + head_dim/2 (GPT-NeoX, Hugging Face ``rotate_half``) and ``"interleaved"`` pairs 2j with
2j+1 (the paper, Meta's original Llama code). (``pairing="half"`` is the deprecated spelling.)
:func:`rope_permute` converts q/k projection weights between the two, as Hugging Face's Llama
conversion script does.

The cos/sin come from the same double-precision walk as :func:`pyembed.sinusoidal` (no libm call
per element) and the rotation is done in double, so float32 outputs are within 2e-7 * max|x| of
the float64 formula at every position up to 2^20 — the usual float32 formula (angles rounded to
float32) is not.
"""
from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike

from . import _core
from ._checks import is_int
from .positional import check_layout

__all__ = ["rope", "rope_backward", "rope_permute"]


def _layout(layout, pairing):
    """The layout, from ``pairing`` (the old keyword: "half" or "interleaved") when given."""
    if pairing is None:
        return layout
    warnings.warn("rope's pairing= is deprecated: use layout='halves' (for pairing='half') or "
                  "layout='interleaved'", DeprecationWarning, stacklevel=3)
    old = "halves" if pairing == "half" else pairing
    if layout != "halves" and layout != old:
        raise TypeError(f"layout={layout!r} and pairing={pairing!r} disagree; give layout only")
    return old


def _prepare(x, positions, base, layout):
    interleaved = not check_layout(layout)
    try:
        b = float(base)
    except (TypeError, ValueError):
        raise TypeError(f"base must be a number, got {type(base).__name__}") from None
    if positions is not None:
        xs = np.shape(x)
        positions = np.asarray(positions)
        if len(xs) >= 2 and positions.shape not in ((xs[-2],), tuple(xs[:-1])):
            try:
                positions = np.broadcast_to(positions, xs[:-1])
            except ValueError:
                raise ValueError(f"positions has shape {positions.shape}, which does not "
                                 f"broadcast to x.shape[:-1] = {tuple(xs[:-1])}") from None
    return positions, b, interleaved


def rope(x: ArrayLike, positions: ArrayLike | None = None, *, base: float = 10000.0,
         layout: str = "halves", out: np.ndarray | None = None,
         pairing: str | None = None) -> np.ndarray:
    """Rotate the last axis of ``x`` (..., seq, head_dim) by the rotary angles of its positions.

    Args:
        x: queries or keys, shape (..., seq, head_dim) with an even head_dim; float64 stays
            float64, anything else is computed as float32.
        positions: integer positions; ``None`` means ``0 .. seq-1``. Shape ``(seq,)`` (shared by
            every head and batch element, e.g. ``arange(start, start + seq)`` in a KV-cache
            decode step) or anything that broadcasts to ``x.shape[:-1]`` (e.g. HF's
            ``position_ids`` of shape (batch, 1, seq) for x (batch, heads, seq, head_dim)).
        base: the 10000 of the paper (Llama 3 uses 500000).
        layout: ``"halves"`` (HF / GPT-NeoX) or ``"interleaved"`` (the paper / Meta Llama).
        out: an exact array to write into; may be ``x`` itself (in place).
        pairing: deprecated spelling of ``layout`` (``"half"`` is ``layout="halves"``).

    Example:
        >>> import numpy as np, pyembed
        >>> q = np.ones((2, 4, 8), np.float32)           # (heads, seq, head_dim)
        >>> r = pyembed.rope(q)
        >>> bool(np.array_equal(r[:, 0], q[:, 0]))       # position 0 is not rotated
        True
        >>> bool(np.allclose(pyembed.rope_backward(r), q, atol=1e-6))
        True
    """
    positions, b, inter = _prepare(x, positions, base, _layout(layout, pairing))
    return _core.rope(x, positions, b, inter, False, out)


def rope_backward(grad_output: ArrayLike, positions: ArrayLike | None = None, *,
                  base: float = 10000.0, layout: str = "halves", out: np.ndarray | None = None,
                  pairing: str | None = None) -> np.ndarray:
    """Backward of :func:`rope`: the rotation is orthogonal, so the gradient with respect to x is
    ``grad_output`` rotated by the negative angles (the same arguments as the forward)."""
    positions, b, inter = _prepare(grad_output, positions, base, _layout(layout, pairing))
    return _core.rope(grad_output, positions, b, inter, True, out)


def rope_permute(w: ArrayLike, n_heads: int, *, inverse: bool = False) -> np.ndarray:
    """Permute q/k projection weights from the interleaved layout to the halves layout.

    ``w`` has shape (n_heads * head_dim, ...) (a weight (out, in) or a bias (out,)). Within each
    head the output features ``(0, 1, 2, 3, ...)`` are reordered to ``(0, 2, 4, ..., 1, 3,
    ...)``: Hugging Face's ``convert_llama_weights_to_hf.permute``, so that
    ``rope(x @ rope_permute(Wq, h).T, layout="halves")`` equals the interleaved rotation of
    ``x @ Wq.T`` up to that reordering of the features. ``inverse=True`` undoes it (HF to Meta).

    Example:
        >>> import numpy as np, pyembed
        >>> w = np.arange(8)                                   # 2 heads of head_dim 4
        >>> pyembed.rope_permute(w, 2)
        array([0, 2, 1, 3, 4, 6, 5, 7])
        >>> pyembed.rope_permute(pyembed.rope_permute(w, 2), 2, inverse=True)
        array([0, 1, 2, 3, 4, 5, 6, 7])
    """
    w = np.asarray(w)
    if not is_int(n_heads):
        raise TypeError(f"n_heads must be an int, got {type(n_heads).__name__}")
    if w.ndim < 1:
        raise ValueError("w must have at least one dimension")
    if n_heads < 1 or w.shape[0] % (2 * n_heads):
        raise ValueError(f"w.shape[0] = {w.shape[0]} must be n_heads ({n_heads}) times an even "
                         "head_dim")
    half = w.shape[0] // n_heads // 2
    rest = w.shape[1:]
    if inverse:
        v = w.reshape((n_heads, 2, half) + rest)
    else:
        v = w.reshape((n_heads, half, 2) + rest)
    return np.ascontiguousarray(v.swapaxes(1, 2)).reshape(w.shape)

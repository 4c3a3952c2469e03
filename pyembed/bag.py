"""EmbeddingBag: sums, means or maxima of bags of rows without materialising the rows, like
``torch.nn.EmbeddingBag`` (csrc/kernels/bag.c)."""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _core
from ._checks import (DtypeMismatchError, UnsupportedModeError, as_ids, check_ids,
                      check_padding_idx, compute_dtype, is_int, pretrained_matrix)
from .embedding import Embedding

__all__ = ["EmbeddingBag"]

_MODES = {"sum": 0, "mean": 1, "max": 2}


class EmbeddingBag(Embedding):
    """Reduce bags of rows of a table: ``torch.nn.EmbeddingBag`` with its names and semantics.

    An ``Embedding`` (same table, ``weight``, ``grad``, ``touched``, ``zero_grad``,
    ``parameters``, init options) whose forward is :meth:`bag`.

    Args:
        num_embeddings, embedding_dim: the table's shape.
        mode: ``"mean"`` (default, as torch), ``"sum"`` or ``"max"``.
        padding_idx: ids equal to it are left out of every bag (and of the mean's count); the
            row starts at zero and gets no gradient.
        scale_grad_by_freq: scale each position's gradient by 1 / (how often its id occurs in
            the batch), as torch documents it; not with ``mode="max"`` (ValueError, as torch).
            (torch 2.13's CPU kernel divides some rows by another id's count, pytorch#190063.)
        include_last_offset: the default for :meth:`bag` (torch's constructor argument).
        max_norm, norm_type, dtype, init, std, bound, seed: as :class:`Embedding`.

    Example:
        >>> import numpy as np, pyembed
        >>> bag = pyembed.EmbeddingBag(10, 3, mode="sum", seed=0)
        >>> ids = np.array([1, 2, 4, 5, 4, 3, 2, 9])
        >>> out = bag(ids, offsets=[0, 4])                   # two bags: ids[0:4], ids[4:8]
        >>> bool(np.allclose(out[0], bag.weight[[1, 2, 4, 5]].sum(0)))
        True
        >>> bag.backward(np.ones((2, 3), np.float32))        # into the table's grad
        >>> bag.touched
        array([1, 2, 3, 4, 5, 9])
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, mode: str = "mean", *,
                 padding_idx: int | None = None, include_last_offset: bool = False,
                 max_norm: float | None = None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, dtype: DTypeLike = np.float32,
                 init: str | ArrayLike = "normal", std: float = 1.0, bound: float | None = None,
                 seed: int | None = None, sparse: bool = False) -> None:
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {tuple(_MODES)}, got {mode!r}")
        if scale_grad_by_freq and mode == "max":
            raise ValueError("mode 'max' does not support scale_grad_by_freq (as in torch)")
        super().__init__(num_embeddings, embedding_dim, padding_idx=padding_idx,
                         max_norm=max_norm, norm_type=norm_type,
                         scale_grad_by_freq=scale_grad_by_freq, dtype=dtype, init=init,
                         std=std, bound=bound, seed=seed, sparse=sparse)
        self.mode = mode
        self.include_last_offset = bool(include_last_offset)
        self._ctx = None

    @classmethod
    def from_pretrained(cls, embeddings: ArrayLike, freeze: bool = True,
                        max_norm: float | None = None, norm_type: float = 2.0,
                        scale_grad_by_freq: bool = False, mode: str = "mean",
                        sparse: bool = False, include_last_offset: bool = False,
                        padding_idx: int | None = None,
                        dtype: DTypeLike | None = None) -> EmbeddingBag:
        """An EmbeddingBag holding a copy of ``embeddings``, like
        ``torch.nn.EmbeddingBag.from_pretrained``."""
        arr, dtype = pretrained_matrix(embeddings, dtype)
        obj = cls(arr.shape[0], arr.shape[1], mode, include_last_offset=include_last_offset,
                  max_norm=max_norm, norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq,
                  dtype=dtype, init="zeros", sparse=sparse)
        obj.table.weight = arr
        obj.padding_idx = check_padding_idx(padding_idx, arr.shape[0])
        obj.requires_grad = not freeze
        return obj

    # -- forward / backward -------------------------------------------------------------------
    def _flatten(self, ids, offsets, per_sample_weights, include_last_offset):
        n = self.num_embeddings
        ids = as_ids(ids, n, f"an embedding of {n} rows")
        if ids.size == 0 and ids.dtype.kind == "f":
            ids = ids.astype(np.int64)
        if ids.ndim == 2:
            if offsets is not None:
                raise ValueError("offsets must be None when ids is 2-D (each row is a bag)")
            # checked here, not in the flat C call, so that a bad id's position is ids[i, j]
            ids = check_ids(ids, n, f"an embedding of {n} rows")
            B, L = ids.shape
            off = np.arange(B + 1, dtype=np.int64) * L
            flat = ids.reshape(-1)
            if per_sample_weights is not None:
                psw = np.asarray(per_sample_weights)
                if psw.shape != ids.shape:
                    raise ValueError(f"per_sample_weights has shape {psw.shape} but ids has "
                                     f"shape {ids.shape}")
                per_sample_weights = psw.reshape(-1)
        elif ids.ndim == 1:
            if offsets is None:
                raise ValueError("1-D ids need offsets (the start of each bag)")
            off = np.asarray(offsets)
            if off.ndim != 1:
                raise ValueError(f"offsets must be 1-D, got shape {off.shape}")
            if off.dtype.kind in "Of" and not isinstance(offsets, np.ndarray):
                for i, v in enumerate(np.asarray(offsets, dtype=object)):  # [0, 2**63]: float64
                    if is_int(v) and not -2 ** 63 <= v < 2 ** 63:
                        raise ValueError(f"offsets[{i}] = {v} does not fit in int64")
            if off.size and not np.issubdtype(off.dtype, np.integer):
                raise TypeError(f"offsets must be integers, got dtype {off.dtype}")
            off = off.astype(np.int64)
            if include_last_offset:
                if off.size == 0:
                    raise ValueError("include_last_offset=True needs at least one offset")
            else:
                off = np.append(off, np.int64(len(ids)))
            flat = ids
        else:
            raise ValueError(f"ids must be 1-D (with offsets) or 2-D, got shape {ids.shape}")
        pad = self.padding_idx  # None: no padding row (the _core convention)
        return flat, off, per_sample_weights, pad

    def __call__(self, ids: ArrayLike, offsets: ArrayLike | None = None,
                 per_sample_weights: ArrayLike | None = None,
                 include_last_offset: bool | None = None) -> np.ndarray:
        return self.bag(ids, offsets, per_sample_weights, include_last_offset)

    def forward(self, ids: ArrayLike, offsets: ArrayLike | None = None,
                per_sample_weights: ArrayLike | None = None,
                include_last_offset: bool | None = None) -> np.ndarray:
        return self.bag(ids, offsets, per_sample_weights, include_last_offset)

    def bag(self, ids: ArrayLike, offsets: ArrayLike | None = None,
            per_sample_weights: ArrayLike | None = None,
            include_last_offset: bool | None = None) -> np.ndarray:
        """The (number of bags, embedding_dim) reductions, as ``F.embedding_bag``.

        ``ids`` 2-D (B, L): each row is a bag. ``ids`` 1-D with ``offsets``: bag b is
        ``ids[offsets[b]:offsets[b+1]]`` (the last runs to the end, or with
        ``include_last_offset`` offsets has B + 1 entries and the last ends the last bag).
        Empty bags give zeros. ``per_sample_weights`` (the shape of ids; an array must have the
        table's dtype, as torch) weights each row, only with mode "sum" (otherwise
        NotImplementedError, as torch). Remembers what :meth:`backward` needs.
        """
        if include_last_offset is None:
            include_last_offset = self.include_last_offset
        if per_sample_weights is not None and self.mode != "sum":
            raise UnsupportedModeError(f"per_sample_weights is only supported for mode='sum' "
                                       f"(got mode={self.mode!r}), as torch")
        flat, off, psw, pad = self._flatten(ids, offsets, per_sample_weights, include_last_offset)
        # backward reads these later: private copies, so that a caller refilling its batch
        # buffer (or another thread writing it) cannot redirect the gradient
        flat, psw = np.array(flat), None if psw is None else np.array(psw)
        if psw is not None:
            self._check_psw(flat, psw, getattr(per_sample_weights, "dtype", None))
        if self.max_norm is not None:
            # renorm writes the table: everything else must be known good before it runs
            self._check_bags(flat, off)
            self.table.renorm(flat, self.max_norm, self.norm_type)
        out, argmax = _core.bag_forward(self.table, flat, off, psw, _MODES[self.mode], pad)
        self._ctx = (flat, off, psw, argmax, pad, np.shape(ids))
        return out

    def _check_psw(self, flat, psw, given_dtype):
        """per_sample_weights: real numbers in the shape of the ids; an array (one with a
        dtype) of the table's dtype (float32 for a float16 / bfloat16 table), as torch requires (a
        list is converted)."""
        if psw.dtype.kind not in "iuf":
            raise TypeError(f"per_sample_weights must be real numbers, got an array of "
                            f"dtype {psw.dtype}")
        if psw.shape != flat.shape:
            raise ValueError(f"per_sample_weights has shape {psw.shape} but ids has shape "
                             f"{flat.shape}")
        dt = compute_dtype(self.dtype)  # float32 for a float16 / bfloat16 table
        if given_dtype is not None and np.dtype(given_dtype) != dt:
            raise DtypeMismatchError(f"per_sample_weights has dtype {np.dtype(given_dtype)} but "
                                     f"the table's is {dt}: they must be the same (as torch)")

    def _check_bags(self, flat, off):
        """The checks bag_forward makes on offsets (ids are renorm's), for a call that must not
        renormalise rows and then fail."""
        if off.size == 0:
            raise ValueError("offsets must be 1-D with at least one entry")
        if off[0] != 0:
            raise ValueError(f"offsets[0] must be 0, got {off[0]}")
        down = np.flatnonzero(np.diff(off) < 0)
        if down.size:
            i = int(down[0]) + 1
            raise ValueError(f"offsets must be nondecreasing, but offsets[{i}] = {off[i]} < "
                             f"offsets[{i - 1}] = {off[i - 1]}")
        if off[-1] > flat.size:
            raise ValueError(f"offsets[{off.size - 1}] = {off[-1]} is beyond the {flat.size} ids")

    def backward(self, grad_output: ArrayLike) -> np.ndarray | None:
        """Accumulate the gradient of the last :meth:`bag` call into :attr:`grad` (sum: each
        id gets its bag's gradient, times its per-sample weight; mean: divided by the bag's
        count; max: each element goes to the id that won it). Bitwise identical for every
        thread count. With ``scale_grad_by_freq`` each position's factor (1, its weight, or
        1 / the bag's count) is first multiplied by 1 / (its id's count in the batch), the
        product rounded to the table's dtype. Returns the gradient with respect to
        ``per_sample_weights`` (in the shape of the ids) when weights were given, else None."""
        if self._ctx is None:
            raise RuntimeError("backward() needs a forward call (bag) first")
        flat, off, psw, argmax, pad, ids_shape = self._ctx
        gpsw = None
        if psw is not None:
            gpsw = _core.bag_psw_grad(self.table, flat, off, grad_output, pad).reshape(ids_shape)
        if self.requires_grad:
            mode = _MODES[self.mode]
            if self.scale_grad_by_freq and self.mode != "max":
                psw, mode = self._freq_scales(flat, off, psw, pad), _MODES["sum"]
            if self.sparse or self.in_backward_hook is not None:
                # the same kernel on a small table of the batch's rows (sparse.: Embedding)
                def run(t, local, lpad):
                    am = None if argmax is None else np.where(argmax < 0, -1, local(argmax))
                    _core.bag_backward(t, local(flat), off, grad_output, psw, am, mode, lpad)
                if self.in_backward_hook is None:
                    self.compact_backward(flat, run)
                else:
                    rows, t = self.compact_backward(flat, run, keep=False)
                    self.in_backward_hook.compact(rows, t.grad[:rows.size])
            else:
                _core.bag_backward(self.table, flat, off, grad_output, psw, argmax, mode, pad)
        return gpsw

    def _freq_scales(self, flat, off, psw, pad):
        """Per-position factors for scale_grad_by_freq, in the table's dtype: the position's own
        factor (its weight, 1 / its bag's count for "mean", else 1) times 1 / (its id's count in
        the whole input, as torch counts). The kernel then runs as a weighted sum."""
        T = compute_dtype(self.dtype).type
        all_ids = np.asarray(flat, dtype=np.int64)
        _, inv, counts = np.unique(all_ids, return_inverse=True, return_counts=True)
        n_in = int(off[-1])  # positions past the last offset belong to no bag
        ids = all_ids[:n_in]
        freq = (1.0 / counts)[inv.reshape(-1)[:n_in]].astype(T)
        if self.mode == "mean":
            bag_of = np.repeat(np.arange(len(off) - 1), np.diff(off))
            n_valid = np.bincount(bag_of[ids != pad], minlength=len(off) - 1)
            own = (1.0 / np.maximum(n_valid, 1)).astype(T)[bag_of]
        elif psw is not None:
            own = np.asarray(psw)[:n_in].astype(T)
        else:
            own = np.ones(n_in, T)
        out = np.zeros(len(flat), T)
        np.multiply(own, freq, out=out[:n_in])
        return out

    def extra_repr(self):
        return super().extra_repr() + f", mode={self.mode!r}"

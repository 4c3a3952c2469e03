"""pyembed.Embedding: torch.nn.Embedding's names and defaults over a C Table.

Embedding is a thin wrapper (composition, not a subclass): it holds a pyembed.Table in
``.table`` and adds the options torch puts on the module (padding_idx, max_norm, norm_type,
scale_grad_by_freq) and initialisation. All compute is in the Table's C kernels. A table
whose weight is a file mapped into memory (``from_memmap`` and its kin) is embedding_memmap.py's.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ._checks import (as_float, check_ids, check_int, check_padding_idx, check_seed,
                      check_table_dtype, compute_dtype, is_half, pretrained_matrix)
from ._core import Table, fill_normal, fill_uniform, narrow_rows
from .embedding_memmap import MemmapMixin

__all__ = ["Embedding"]

_INITS = ("normal", "uniform", "zeros")


def _seed_or_random(seed):
    seed = check_seed(seed)
    return int.from_bytes(os.urandom(8), "little") if seed is None else seed


# A half table's random init is made in float32 and rounded this many bytes of rows at a time:
# a float32 copy of the whole table would cost twice the half table's bytes at its peak.
_FILL_BLOCK_BYTES = 1 << 20


def _fill(table, fill, seed, a, b):
    """``fill(weight, seed, a, b)`` (fill_normal / fill_uniform, values a function of the seed and
    the element's index); a half table gets the float32 table's values, rounded to nearest."""
    if not is_half(table.dtype):
        fill(table.weight, seed, a, b)
        return
    rows, dim = table.shape
    block = max(1, _FILL_BLOCK_BYTES // (4 * dim) if dim else rows)
    buf = np.empty((min(block, rows), dim), np.float32)
    for r0 in range(0, rows, block):
        w = buf[:min(block, rows - r0)]
        fill(w, seed, a, b, r0, 1)
        narrow_rows(table, w, np.arange(r0, r0 + len(w)))


class Embedding(MemmapMixin):
    """A lookup table of ``num_embeddings`` rows of size ``embedding_dim``, like
    ``torch.nn.Embedding``.

    Args:
        num_embeddings: number of rows (vocabulary size).
        embedding_dim: size of each row.
        padding_idx: a row that starts at zero and never receives gradient (negative values
            count from the end, as in torch).
        max_norm: if given, every row looked up whose ``norm_type``-norm exceeds it is
            renormalised **in place in the table** before the lookup, exactly as
            ``torch.nn.Embedding(max_norm=...)`` does (``torch.embedding_renorm_``: scale by
            ``max_norm / (norm + 1e-7)``). The weights change even when no backward follows.
        norm_type: the p of the p-norm for max_norm (default 2; ``float('inf')`` allowed).
        scale_grad_by_freq: scale each id's gradient by 1 / (its count in the batch), as torch.
        dtype: float32 (default), float64, or a 16-bit storage type: ``numpy.float16`` or
            bfloat16 (``"bfloat16"`` or ``ml_dtypes.bfloat16``; needs the ml_dtypes package,
            ``pip install 'pyembed[half]'``). A float16 / bfloat16 table holds half the bytes;
            its rows are widened to float32 as they are read, so lookups return float32 (the
            table's own dtype with ``out=`` of that dtype) and the gradient is float32; values
            written in (``init``, ``weight = ...``) are rounded to nearest even, as NumPy's
            ``astype`` (max_norm's renormalisation too: the row times a float32 scale, rounded).
        init: ``"normal"`` (N(0, std^2), torch's default), ``"uniform"`` (U(-bound, bound),
            bound defaults to sqrt(3) * std), ``"zeros"``, or an array of shape
            (num_embeddings, embedding_dim) copied in.
        std, bound: parameters of the initialisation.
        seed: with a seed the table is the same on every machine and for every thread count
            (a counter-based generator in C, see csrc/kernels/rng.c).
        sparse: keep the gradient as the coalesced ``(rows, values)`` of the touched rows
            (torch's name): O(batch) memory instead of a (num_embeddings, embedding_dim)
            buffer, the same sums in the same order, accumulated over backward calls until
            zero_grad; :meth:`sparse_grad` returns it, :attr:`grad` is None.

    An optimizer built with ``in_backward=True`` on this table applies its update inside
    :meth:`backward` (see pyembed.optim): no gradient is kept at all.

    Example:
        >>> import numpy as np, pyembed
        >>> emb = pyembed.Embedding(10, 3, padding_idx=0, seed=1)
        >>> x = emb([[0, 2], [4, 2]])          # (2, 2, 3); row 0 is zeros
        >>> emb.backward([[0, 2], [4, 2]], np.ones((2, 2, 3), np.float32))
        >>> emb.touched                         # the padding row got no gradient
        array([2, 4])
        >>> emb.grad[2]
        array([2., 2., 2.], dtype=float32)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, *, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, dtype: DTypeLike = np.float32,
                 init: str | ArrayLike = "normal", std: float = 1.0, bound: float | None = None,
                 seed: int | None = None, sparse: bool = False) -> None:
        if not isinstance(sparse, (bool, np.bool_)):
            raise TypeError(f"sparse must be a bool, got {sparse!r}")
        num_embeddings = check_int("num_embeddings", num_embeddings, 0)
        embedding_dim = check_int("embedding_dim", embedding_dim, 0)
        dt = check_table_dtype(dtype)
        padding_idx = check_padding_idx(padding_idx, num_embeddings)
        if max_norm is not None:
            max_norm = as_float("max_norm", max_norm)
            if not max_norm >= 0:
                raise ValueError(f"max_norm must be >= 0, got {max_norm}")
        norm_type = as_float("norm_type", norm_type)
        if not norm_type > 0:
            raise ValueError(f"norm_type must be > 0, got {norm_type}")
        std = as_float("std", std)
        if not std >= 0:
            raise ValueError(f"std must be >= 0, got {std}")
        if bound is not None:
            bound = as_float("bound", bound)
            if not 0 <= bound < np.inf:
                raise ValueError(f"bound must be finite and >= 0, got {bound}")
        if isinstance(init, str) and init not in _INITS:
            raise ValueError(f"init must be one of {_INITS} or an array, got {init!r}")
        self.table = Table(num_embeddings, embedding_dim, dt)
        self.padding_idx = padding_idx
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = bool(scale_grad_by_freq)
        self.requires_grad = True
        self.vocab = None
        self._frozen_rows = None
        self.sparse = bool(sparse)
        self._sgrad = None        # sparse: (rows, the small Table holding their gradient)
        self.in_backward_hook = None  # an optim.InBackward when an optimizer runs in the backward
        self._map = None  # (path, mmap) of a table from from_memmap
        self._state_maps = []  # the mmaps of state_memmaps
        if isinstance(init, str):
            s = _seed_or_random(seed)
            if init == "normal":
                _fill(self.table, fill_normal, s, 0.0, std)
            elif init == "uniform":
                b = bound if bound is not None else float(np.sqrt(3.0) * std)
                _fill(self.table, fill_uniform, s, -b, b)
        else:
            self.table.weight = init
        if padding_idx is not None:
            self.table.weight[padding_idx] = 0

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, embeddings: ArrayLike, freeze: bool = True,
                        padding_idx: int | str | None = None, max_norm: float | None = None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        dtype: DTypeLike | None = None, *, vocab=None,
                        sparse: bool = False) -> Embedding:
        """An Embedding holding a copy of ``embeddings``, like
        ``torch.nn.Embedding.from_pretrained``; ``freeze=True`` turns off its gradient.
        Unlike a fresh Embedding the padding row keeps its pretrained values (as torch).

        ``embeddings`` is a 2-D array, or an object holding one in ``.vectors`` (a
        :class:`pyembed.Vectors`, e.g. from :func:`pyembed.load_vectors`, or gensim's
        KeyedVectors). ``vocab``, kept as ``emb.vocab``, names the rows: an object with
        ``encode(words)`` and ``key_to_index`` such as a :class:`pyembed.Vocab`; by default the
        ``.vocab`` of ``embeddings`` when it has one (a Vectors' words as a Vocab: unknown words
        -> ``"<unk>"`` when the vectors have it, else KeyError), else None. With a vocabulary
        ``padding_idx`` may be a word.

        Example:
            >>> import numpy as np, pyembed
            >>> kv = pyembed.Vectors(["the", "cat", "sat"], np.eye(3, dtype=np.float32))
            >>> emb = pyembed.Embedding.from_pretrained(kv)
            >>> emb(emb.vocab.encode("the cat sat".split())).shape
            (3, 3)
        """
        if hasattr(embeddings, "vectors"):
            if vocab is None:
                vocab = getattr(embeddings, "vocab", None)
            embeddings = embeddings.vectors
        if isinstance(padding_idx, str):
            if vocab is None or padding_idx not in vocab.key_to_index:
                raise ValueError(f"padding_idx {padding_idx!r} is not a word of the vectors")
            padding_idx = vocab.key_to_index[padding_idx]
        arr, dtype = pretrained_matrix(embeddings, dtype)
        if vocab is not None:
            _check_vocab_rows(vocab, arr.shape[0])
        obj = cls.__new__(cls)
        Embedding.__init__(obj, arr.shape[0], arr.shape[1], padding_idx=None, max_norm=max_norm,
                           norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq,
                           dtype=dtype, init="zeros", sparse=sparse)
        obj.table.weight = arr
        obj.padding_idx = check_padding_idx(padding_idx, arr.shape[0])
        obj.requires_grad = not freeze
        obj.vocab = vocab
        return obj

    # -- forward / backward -------------------------------------------------------------------
    def __call__(self, ids: ArrayLike, out: np.ndarray | None = None) -> np.ndarray:
        """``W[ids]``, shape ``ids.shape + (embedding_dim,)``. See :meth:`forward`."""
        return self.forward(ids, out=out)

    def forward(self, ids: ArrayLike, out: np.ndarray | None = None) -> np.ndarray:
        """Look up ``ids`` (any integer dtype and shape, or nested lists).

        With ``max_norm`` set, the looked-up rows are first renormalised in place (torch's
        behaviour). ``out``: an exact C-contiguous array to write into. An id out of range
        raises IndexError naming it and its position, before anything is written.
        """
        if self.max_norm is not None:
            # one call, so that a bad `out` or id raises before the weights are renormalised
            return self.table.lookup(ids, out, max_norm=self.max_norm, norm_type=self.norm_type)
        return self.table.lookup(ids, out)

    def backward(self, ids: ArrayLike, grad_output: ArrayLike) -> None:
        """Accumulate the gradient of the lookup into :attr:`grad`: ``np.add.at(grad, ids,
        grad_output)``, except the padding row, scaled by 1/frequency when
        ``scale_grad_by_freq``. Bitwise identical for every thread count. A no-op when
        ``requires_grad`` is False."""
        if not self.requires_grad:
            return None
        if self.in_backward_hook is not None:
            self.in_backward_hook.lookup(self, ids, grad_output)
        elif self.sparse:
            ids = self._row_ids_shaped(ids)
            self.compact_backward(ids, lambda t, local, pad: t.backward(
                local(ids), grad_output, pad, self.scale_grad_by_freq))
        else:
            self.table.backward(ids, grad_output, self.padding_idx, self.scale_grad_by_freq)
        return None

    # -- sparse gradients -----------------------------------------------------------------------
    def compact_backward(self, ids: ArrayLike, run: Callable, keep: bool = True
                         ) -> tuple[np.ndarray, Table]:
        """Run a backward into a small Table holding only the rows of ``ids`` plus, with
        ``keep``, those of the sparse gradient so far (its values copied in first, so the sums
        continue in the same order): ``run(table, local, pad)`` with ``local(a)`` mapping row
        ids to the small table's rows and ``pad`` its padding row (the last). Keeps the result
        as the sparse gradient when ``keep``; returns ``(rows, table)``, ``rows`` the sorted ids
        that got a gradient (its ``table.grad[:len(rows)]``). What ``sparse=True`` and
        EmbeddingBag's in-backward optimizers run on."""
        ids = self._row_ids_shaped(ids)
        if not callable(run):
            raise TypeError(f"run must be callable, got {run!r}")
        pad = self.padding_idx
        old = self._sgrad if keep else None
        real = ids.ravel() if pad is None else ids[ids != pad]
        rows = np.unique(real) if old is None else np.union1d(old[0], real)
        k = rows.size

        def local(a):
            out = np.searchsorted(rows, a)
            out[a == pad] = k
            return out

        tab = self._small_table(rows, old)
        run(tab, local, k)
        got = tab.touched
        got = got[got < k]
        if got.size < k:  # rows of the batch that got nothing (ids past a bag's last offset,
            rows, tab = rows[got], self._small_table(rows[got], (rows, tab))  # max's losers)
        if keep:
            self._sgrad = (rows, tab)
        return rows, tab

    def _small_table(self, rows, old):
        """A Table of len(rows) + 1 rows (the last one for padding) whose grad holds the
        gradient ``old = (old_rows, old_table)`` has for ``rows``, those rows touched. Written
        by a backward into zeros: ``0 + v`` is ``v`` bit for bit, since the dense path's rows
        start at +0.0 and a sum from there is never -0.0."""
        tab = Table(rows.size + 1, self.embedding_dim, self.dtype)
        if old is not None and old[0].size:
            at = np.searchsorted(rows, old[0])
            ok = at < rows.size
            ok[ok] = rows[at[ok]] == old[0][ok]
            tab.backward(at[ok], old[1].grad[:old[0].size][ok])
        return tab

    def sparse_grad_buffer(self) -> tuple[np.ndarray, np.ndarray, Table] | None:
        """With ``sparse=True``: ``(values, rows, table)``, ``values`` (read-only, shape
        (len(rows), embedding_dim)) the first rows of the small ``table``'s grad; None before a
        backward. What the optimizers and clip_grad_norm_ work on."""
        if self._sgrad is None:
            return None
        rows, tab = self._sgrad
        return tab.grad[:rows.size], rows, tab

    # -- tied output head (Press & Wolf 2017; Flax Embed.attend) -------------------------------
    def _check_h(self, h):
        h = np.asarray(h)
        if h.dtype.kind not in "biuf":
            raise TypeError(f"h must be an array of real numbers, got dtype {h.dtype}")
        if h.ndim < 1 or h.shape[-1] != self.embedding_dim:
            raise ValueError(f"h has shape {h.shape} but attend needs (..., {self.embedding_dim})")
        return h

    def attend(self, h: ArrayLike) -> np.ndarray:
        """Logits of a tied output head: ``h @ W.T``, shape ``h.shape[:-1] + (num_embeddings,)``
        (one BLAS call through NumPy), as Flax's ``Embed.attend``."""
        h = self._check_h(h)
        return np.matmul(h, self._weight_for_matmul().T)

    def _weight_for_matmul(self):
        """The weight as BLAS takes it: a float16 / bfloat16 table widened to a float32 copy."""
        w = self.table.weight
        return w.astype(np.float32) if is_half(w.dtype) else w

    def attend_backward(self, h: ArrayLike, grad_logits: ArrayLike) -> np.ndarray:
        """Backward of :meth:`attend`: returns ``grad_h = grad_logits @ W`` and accumulates
        ``grad_logits.T @ h`` (summed over the leading axes) into :attr:`grad`, marking every
        row touched (the gradient is dense). It adds to what the lookup's backward put there, so
        a loss using both the lookup and the tied head gets the sum of both gradients. Unlike
        the lookup, the padding row is not exempt (as a tied ``nn.Linear`` in torch). With
        ``requires_grad`` False only ``grad_h`` is computed."""
        h = self._check_h(h)
        if self.requires_grad and (self.in_backward_hook is not None or self.sparse):
            raise RuntimeError(
                "attend_backward: a tied head's gradient reaches every row, which "
                + ("an optimizer applied in the backward cannot take: build it without "
                   "in_backward (the dense mode)" if self.in_backward_hook is not None else
                   "a sparse=True table does not keep: use the dense mode (sparse=False)"))
        g = np.asarray(grad_logits)
        want = h.shape[:-1] + (self.num_embeddings,)
        if g.shape != want:
            raise ValueError(f"grad_logits has shape {g.shape} but h of shape {h.shape} needs "
                             f"{want}")
        W = self._weight_for_matmul()
        grad_h = np.matmul(g, W)
        if self.requires_grad:
            dt = compute_dtype(self.dtype)
            g2 = g.reshape(-1, self.num_embeddings).astype(dt, copy=False)
            h2 = h.reshape(-1, self.embedding_dim).astype(dt, copy=False)
            dW = np.matmul(g2.T, h2)
            self.table.add_dense_grad(dW)
        return grad_h

    def zero_grad(self) -> None:
        """Clear the gradient of the touched rows only (cost grows with the batch)."""
        self._sgrad = None
        self.table.zero_grad()

    def sparse_grad(self) -> tuple[np.ndarray, np.ndarray]:
        """The coalesced gradient: ``(rows, values)`` with ``rows = touched`` (sorted, unique)
        and ``values = grad[rows]`` (a copy)."""
        if self.in_backward_hook is not None:
            raise RuntimeError(f"sparse_grad: the optimizer ({self.in_backward_hook.name}) is "
                               f"applied in the backward, so no gradient is kept; "
                               f"build it without in_backward, or use sparse=True, to read it")
        if self.sparse:
            sg = self.sparse_grad_buffer()
            if sg is None:
                return np.zeros(0, np.int64), np.zeros((0, self.embedding_dim), self.dtype)
            return sg[1].copy(), sg[0].copy()
        rows = self.table.touched
        g = self.table.grad
        if g is None:
            return rows, np.zeros((0, self.embedding_dim), compute_dtype(self.dtype))
        return rows, np.take(g, rows, axis=0)

    def parameters(self) -> list[Embedding]:
        """The tables an optimizer should update: ``[self]``."""
        return [self]

    # -- frozen rows ----------------------------------------------------------------------------
    def _row_ids_shaped(self, ids):
        n = self.num_embeddings
        return check_ids(ids, n, f"an embedding of {n} rows")

    def _row_ids(self, ids):
        return self._row_ids_shaped(ids).ravel()

    def freeze_rows(self, ids: ArrayLike) -> None:
        """Keep rows ``ids`` fixed: every pyembed.optim optimizer leaves their weights (and their
        optimizer state) bit-for-bit unchanged, like gensim's ``lockf = 0``. Gradients are still
        accumulated (clip_grad_norm_ sees them). The mask is ``_frozen_rows`` (uint8, one per
        row), None when no row is frozen."""
        ids = self._row_ids(ids)
        if ids.size == 0:
            return
        if getattr(self, "_frozen_rows", None) is None:
            mask = np.zeros(self.num_embeddings, np.uint8)
        else:
            mask = self._frozen_rows.copy()
        mask[ids] = 1
        self._frozen_rows = mask

    def unfreeze_rows(self, ids: ArrayLike | None = None) -> None:
        """Undo :meth:`freeze_rows` for ``ids`` (all rows when None)."""
        if getattr(self, "_frozen_rows", None) is None:
            return
        if ids is None:
            self._frozen_rows = None
            return
        ids = self._row_ids(ids)
        mask = self._frozen_rows.copy()
        mask[ids] = 0
        self._frozen_rows = mask if mask.any() else None

    @property
    def frozen_mask(self) -> np.ndarray | None:
        """The frozen rows as a uint8 mask (one per row, 1 = frozen), or None when no row is
        frozen: what the optimizers hand their kernels. Change it with :meth:`freeze_rows` and
        :meth:`unfreeze_rows`, never in place."""
        return self._frozen_rows

    @property
    def frozen_rows(self) -> np.ndarray:
        """Sorted int64 ids of the frozen rows."""
        if getattr(self, "_frozen_rows", None) is None:
            return np.zeros(0, np.int64)
        return np.flatnonzero(self._frozen_rows).astype(np.int64)

    # -- attributes ---------------------------------------------------------------------------
    @property
    def weight(self) -> np.ndarray:
        """The (num_embeddings, embedding_dim) weights, a NumPy array sharing the table's memory.
        Assign an array of that shape to copy it in."""
        return self.table.weight

    @weight.setter
    def weight(self, value: ArrayLike) -> None:
        self.table.weight = value

    @property
    def grad(self) -> np.ndarray | None:
        """The accumulated gradient (a read-only view of the table's memory), or None before the
        first backward.

        Rows outside :attr:`touched` are zero, and the kernels rely on it (``zero_grad`` clears
        just those, and a backward may write an untouched row instead of adding to it), so the
        view is read-only. To add a gradient of your own, use :meth:`backward` (or
        ``table.add_dense_grad`` for one that reaches every row)."""
        return self.table.grad

    @property
    def touched(self) -> np.ndarray:
        """Sorted int64 ids of the rows with gradient since the last zero_grad()."""
        if self._sgrad is not None:
            return self._sgrad[0].copy()
        return self.table.touched

    @property
    def num_embeddings(self) -> int:
        return self.table.num_embeddings

    @property
    def embedding_dim(self) -> int:
        return self.table.embedding_dim

    @property
    def dtype(self) -> np.dtype:
        return self.table.dtype

    @property
    def shape(self) -> tuple[int, int]:
        return self.table.shape

    @property
    def num_parameters(self) -> int:
        """num_embeddings * embedding_dim (a 128000 x 4096 table has 524,288,000)."""
        return self.num_embeddings * self.embedding_dim

    @property
    def nbytes(self) -> int:
        """Bytes of the weights (a float32 128000 x 4096 table: 2 GiB)."""
        return self.num_parameters * self.dtype.itemsize

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2.0:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += ", scale_grad_by_freq=True"
        if self.dtype != np.float32:
            s += f", dtype={self.dtype}"
        if self.sparse:
            s += ", sparse=True"
        return s

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"


def _check_vocab_rows(vocab, rows):
    """A vocabulary naming a row past the table is an error; one that names fewer rows than
    the table has (a checkpoint padded past its tokenizer, as T5's 32128 rows for 32100 tokens)
    is said, since those rows are then unreachable by name."""
    ids = vocab.key_to_index.values()
    top = max(ids, default=-1) + 1
    if top > rows:
        raise ValueError(f"the vocabulary has ids up to {top - 1} but embeddings has {rows} rows")
    if top < rows:
        warnings.warn(f"the vocabulary names {top} of the {rows} rows of embeddings: rows "
                      f"{top}..{rows - 1} have no token (Vocab.from_tokenizer(tokenizer, "
                      f"num_embeddings={rows}) names them)", stacklevel=3)

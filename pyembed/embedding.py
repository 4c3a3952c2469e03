"""pyembed.Embedding: torch.nn.Embedding's names and defaults over a C Table.

Embedding is a thin wrapper (composition, not a subclass): it holds a pyembed.Table in
``.table`` and adds the options torch puts on the module (padding_idx, max_norm, norm_type,
scale_grad_by_freq) and initialisation. All compute is in the Table's C kernels.
"""
from __future__ import annotations

import os
import warnings

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ._checks import (as_float, check_float_dtype, check_ids, check_int, check_padding_idx,
                      is_int, pretrained_matrix)
from ._core import Table, fill_normal, fill_uniform

__all__ = ["Embedding"]

_INITS = ("normal", "uniform", "zeros")


def _seed_or_random(seed):
    if seed is None:
        return int.from_bytes(os.urandom(8), "little")
    if not is_int(seed):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return int(seed) & 0xFFFFFFFFFFFFFFFF


class Embedding:
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
        dtype: float32 (default) or float64.
        init: ``"normal"`` (N(0, std^2), torch's default), ``"uniform"`` (U(-bound, bound),
            bound defaults to sqrt(3) * std), ``"zeros"``, or an array of shape
            (num_embeddings, embedding_dim) copied in.
        std, bound: parameters of the initialisation.
        seed: with a seed the table is the same on every machine and for every thread count
            (a counter-based generator in C, see csrc/kernels/rng.c).

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
                 seed: int | None = None) -> None:
        num_embeddings = check_int("num_embeddings", num_embeddings, 0)
        embedding_dim = check_int("embedding_dim", embedding_dim, 0)
        dt = check_float_dtype(dtype)
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
        if isinstance(init, str):
            s = _seed_or_random(seed)
            if init == "normal":
                fill_normal(self.table.weight, s, 0.0, std)
            elif init == "uniform":
                b = bound if bound is not None else float(np.sqrt(3.0) * std)
                fill_uniform(self.table.weight, s, -b, b)
        else:
            self.table.weight = init
        if padding_idx is not None:
            self.table.weight[padding_idx] = 0

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, embeddings: ArrayLike, freeze: bool = True,
                        padding_idx: int | str | None = None, max_norm: float | None = None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        dtype: DTypeLike | None = None, *, vocab=None) -> Embedding:
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
                           dtype=dtype, init="zeros")
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
        self.table.backward(ids, grad_output, self.padding_idx, self.scale_grad_by_freq)
        return None

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
        return np.matmul(h, self.table.weight.T)

    def attend_backward(self, h: ArrayLike, grad_logits: ArrayLike) -> np.ndarray:
        """Backward of :meth:`attend`: returns ``grad_h = grad_logits @ W`` and accumulates
        ``grad_logits.T @ h`` (summed over the leading axes) into :attr:`grad`, marking every
        row touched (the gradient is dense). It adds to what the lookup's backward put there, so
        a loss using both the lookup and the tied head gets the sum of both gradients. Unlike
        the lookup, the padding row is not exempt (as a tied ``nn.Linear`` in torch). With
        ``requires_grad`` False only ``grad_h`` is computed."""
        h = self._check_h(h)
        g = np.asarray(grad_logits)
        want = h.shape[:-1] + (self.num_embeddings,)
        if g.shape != want:
            raise ValueError(f"grad_logits has shape {g.shape} but h of shape {h.shape} needs "
                             f"{want}")
        W = self.table.weight
        grad_h = np.matmul(g, W)
        if self.requires_grad:
            dt = self.dtype
            g2 = g.reshape(-1, self.num_embeddings).astype(dt, copy=False)
            h2 = h.reshape(-1, self.embedding_dim).astype(dt, copy=False)
            dW = np.matmul(g2.T, h2)
            self.table.add_dense_grad(dW)
        return grad_h

    def zero_grad(self) -> None:
        """Clear the gradient of the touched rows only (cost grows with the batch)."""
        self.table.zero_grad()

    def sparse_grad(self) -> tuple[np.ndarray, np.ndarray]:
        """The coalesced gradient: ``(rows, values)`` with ``rows = touched`` (sorted, unique)
        and ``values = grad[rows]`` (a copy)."""
        rows = self.table.touched
        g = self.table.grad
        if g is None:
            return rows, np.zeros((0, self.embedding_dim), self.dtype)
        return rows, np.take(g, rows, axis=0)

    def parameters(self) -> list[Embedding]:
        """The tables an optimizer should update: ``[self]``."""
        return [self]

    # -- frozen rows ----------------------------------------------------------------------------
    def _row_ids(self, ids):
        n = self.num_embeddings
        return check_ids(ids, n, f"an embedding of {n} rows").ravel()

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

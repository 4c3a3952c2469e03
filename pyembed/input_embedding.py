"""InputEmbedding: token lookup, scaling, segments, positions and LayerNorm in one fused C pass.

``out = E[ids] * scale + P[start : start + seq]`` (Vaswani et al. 2017, section 3.4: the token
embedding is multiplied by sqrt(d_model) before the sinusoidal encoding is added; BERT instead
adds a learned position table and a segment (token-type) table, does not scale, and normalises
the sum with LayerNorm; Devlin et al. 2019, section 3).
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _core
from ._checks import (as_ids, check_ids, check_int, check_table_dtype, compute_dtype, is_half,
                      is_int)
from .checkpoint import read_input_stage
from .embedding import Embedding
from .positional import PositionalEncoding

__all__ = ["InputEmbedding", "one_hot"]

_POSITIONAL = ("sinusoidal", "learned", None)
_NORMS = ("layernorm", None)


class InputEmbedding:
    """The input stage of a transformer: ``E[ids] * scale + P[start : start + seq]``, with
    optional segment rows and LayerNorm: ``LayerNorm((E[ids] * scale + S[segment_ids]) + P)``.
    ``positions=`` (Hugging Face's ``position_ids``) picks the position rows per token instead:
    ``P[positions]``, for packed rows whose positions restart at 0 for each text
    (:meth:`pyembed.Tokenizer.pack`).

    Args:
        vocab_size: rows of the token table.
        d_model: model width.
        max_len: rows of the learned position table (a hard limit for ``"learned"``; the
            sinusoidal cache grows beyond it on demand).
        positional: ``"sinusoidal"`` (Vaswani et al., a :class:`PositionalEncoding`, no
            parameters), ``"learned"`` (BERT/GPT-2: a second :class:`Embedding` of ``max_len``
            rows indexed by position) or ``None`` (no position term; e.g. with RoPE).
        scale: ``"sqrt"`` (sqrt(d_model), the paper), a number, or ``None`` (1).
        padding_idx: the token table's padding row (zeros, no gradient), as ``Embedding``.
        dtype: float32 (default) or float64; float16 or bfloat16 tables (:class:`Embedding`)
            compute and return float32, with float32 LayerNorm parameters and gradients.
        std: token init std (default ``d_model ** -0.5``, fairseq's choice for scaled
            embeddings; 1.0, torch's default, when ``scale`` is not ``"sqrt"``).
        pos_std: learned position init std (0.02, as BERT / GPT-2).
        seed: seeds both tables (the position table uses ``seed + 1``).
        base, layout, exponent: the sinusoidal table's options (see :func:`sinusoidal`).
        num_segments: rows of a segment (token-type) table added to each token (BERT's
            ``type_vocab_size``, 2: sentence A or B), or None (no segment term). Initialised as
            the learned positions (``pos_std``, seed ``seed + 2``).
        norm: ``"layernorm"``: LayerNorm over the sum with learnable ``gamma`` (ones) and
            ``beta`` (zeros), fused into the same pass; None (default): no normalisation.
        eps: LayerNorm's epsilon (1e-5, torch's default; BERT checkpoints use 1e-12, which
            :meth:`from_pretrained` takes from config.json).

    The forward is one C pass (each output row read from the tables once, written once), with
    the bits of NumPy's ``W[ids] * dtype(scale) + P[start:start+seq]`` (``(W[ids] * scale +
    S[segment_ids]) + P`` with segments, the order of Hugging Face's ``BertEmbeddings``). With
    LayerNorm each row's mean and variance are two-pass sums in float64 (32 fixed lanes, so the
    bits never depend on the vector level or the thread count) and the normalisation is computed
    in the table's dtype (float32 for a half table), as torch's ``layer_norm``.

    Example:
        >>> import numpy as np, pyembed
        >>> inp = pyembed.InputEmbedding(100, 8, max_len=32, seed=0)
        >>> ids = np.array([[1, 2, 3], [4, 5, 6]])
        >>> x = inp(ids)                      # (2, 3, 8)
        >>> W, P = inp.token.weight, pyembed.sinusoidal(3, 8)
        >>> bool(np.array_equal(x, W[ids] * np.float32(np.sqrt(8)) + P))
        True
        >>> inp.backward(ids, np.ones_like(x))
        >>> [type(p).__name__ for p in inp.parameters()]
        ['Embedding']
    """

    def __init__(self, vocab_size: int, d_model: int, *, max_len: int = 4096,
                 positional: str | None = "sinusoidal", scale: str | float | None = "sqrt",
                 padding_idx: int | None = None, dtype: DTypeLike = np.float32,
                 std: float | None = None, pos_std: float = 0.02, seed: int | None = None,
                 base: float = 10000.0, layout: str = "interleaved",
                 exponent: str = "2i/d", num_segments: int | None = None,
                 norm: str | None = None, eps: float = 1e-5) -> None:
        if positional not in _POSITIONAL:
            raise ValueError(f"positional must be one of {_POSITIONAL}, got {positional!r}")
        check_int("d_model", d_model, 0)
        check_int("max_len", max_len, 0)
        dt = check_table_dtype(dtype)
        if isinstance(scale, str):
            if scale != "sqrt":
                raise ValueError(f"scale must be 'sqrt', a number or None, got {scale!r}")
            s = float(np.sqrt(d_model))
        elif scale is None:
            s = 1.0
        elif isinstance(scale, (bool, np.bool_)) or not isinstance(scale, (int, float, np.number)):
            raise TypeError(f"scale must be 'sqrt', a number or None, got {type(scale).__name__}")
        else:
            s = float(scale)
            if not np.isfinite(s):
                raise ValueError(f"scale must be finite, got {scale!r}")
        if std is None:
            std = d_model ** -0.5 if (isinstance(scale, str) and d_model > 0) else 1.0
        self.token = Embedding(vocab_size, d_model, padding_idx=padding_idx, dtype=dt, std=std,
                               seed=seed)
        self.positional = positional
        self.max_len = int(max_len)
        self.scale = s
        if positional == "learned":
            self.position = Embedding(max_len, d_model, dtype=dt, std=pos_std,
                                      seed=None if seed is None else seed + 1)
        elif positional == "sinusoidal":
            self.position = PositionalEncoding(d_model, max_len, base=base, layout=layout,
                                               exponent=exponent, dtype=compute_dtype(dt))
        else:
            self.position = None
        self.segment = None
        if num_segments is not None:
            check_int("num_segments", num_segments, 1)
            self.segment = Embedding(num_segments, d_model, dtype=dt, std=pos_std,
                                     seed=None if seed is None else seed + 2)
        if norm not in _NORMS:
            raise ValueError(f"norm must be one of {_NORMS}, got {norm!r}")
        self.norm = norm
        if isinstance(eps, (bool, np.bool_)) or not isinstance(eps, (int, float, np.number)):
            raise TypeError(f"eps must be a number, got {type(eps).__name__}")
        self.eps = float(eps)
        if not (np.isfinite(self.eps) and self.eps >= 0):
            raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
        # LayerNorm's parameters are plain arrays with their gradients beside them: the
        # (array, grad) pairs every pyembed.optim optimizer takes
        self.gamma = self.beta = self.gamma_grad = self.beta_grad = None
        if norm == "layernorm":
            # float32 beside a half table: they are few, and the kernel computes in float32
            ct = compute_dtype(dt)
            self.gamma, self.beta = np.ones(d_model, ct), np.zeros(d_model, ct)
            self.gamma_grad, self.beta_grad = np.zeros(d_model, ct), np.zeros(d_model, ct)

    @classmethod
    def from_pretrained(cls, path, *, dtype: DTypeLike | None = np.float32) -> InputEmbedding:
        """The input stage of a local Hugging Face model folder (``config.json`` +
        ``model.safetensors``; nothing is downloaded and torch is not needed), read with
        pyembed's safetensors reader. BERT (``model_type`` ``"bert"``): word + learned position
        + token-type tables and LayerNorm with the config's ``layer_norm_eps`` and
        ``pad_token_id`` as ``padding_idx``; GPT-2 (``"gpt2"``): ``wte`` + ``wpe``, and
        :meth:`attend` is its tied output head. An unknown model_type or a missing tensor raises
        an error naming it (see :func:`pyembed.checkpoint.read_input_stage`). ``dtype``: the
        tables' dtype, float32 (default), float64, float16 or ``"bfloat16"`` (half tables compute
        in float32, with float32 LayerNorm parameters), or None to keep the checkpoint's (an F16
        or BF16 checkpoint gives a half stage, as :meth:`Embedding.from_pretrained` keeps an
        array's dtype).

        Example (with a folder written by ``BertModel(...).save_pretrained(path)``)::

            inp = pyembed.InputEmbedding.from_pretrained(path)
            x = inp(ids, segment_ids=token_type_ids)   # == BertEmbeddings(...) in eval mode
        """
        stage = read_input_stage(path, dtype=None if dtype is None else check_table_dtype(dtype))
        inp = cls(**stage.kwargs, seed=0)
        inp.token.weight = stage.tensors["token"]
        inp.position.weight = stage.tensors["position"]
        if inp.segment is not None:
            inp.segment.weight = stage.tensors["segment"]
        if inp.norm is not None:
            inp.gamma[...] = stage.tensors["gamma"]
            inp.beta[...] = stage.tensors["beta"]
        return inp

    # -- forward / backward -------------------------------------------------------------------
    def _check_ids(self, ids):
        n = self.vocab_size
        ids = as_ids(ids, n, f"an embedding of {n} rows")
        if ids.ndim not in (1, 2):
            raise ValueError(f"ids must have shape (seq,) or (batch, seq), got shape {ids.shape}")
        return ids

    def _check_start(self, start, seq):
        start = 0 if start is None else check_int("start", start, 0)
        if self.positional == "learned" and start + seq > self.max_len:
            raise ValueError(f"positions {start} .. {start + seq - 1} exceed the learned table's "
                             f"max_len {self.max_len}")
        return int(start)

    def _check_segment_ids(self, segment_ids, ids):
        """int64 segment ids shaped as ``ids`` (zeros when not given, as BERT's token_type_ids),
        or None without a segment table."""
        if self.segment is None:
            if segment_ids is not None:
                raise ValueError("segment_ids given but this InputEmbedding has no segment table "
                                 "(build it with num_segments=)")
            return None
        if segment_ids is None:
            return np.zeros(ids.shape, np.int64)
        n = self.segment.num_embeddings
        seg = np.asarray(segment_ids)
        if seg.shape != ids.shape:
            raise ValueError(f"segment_ids has shape {seg.shape} but ids have shape {ids.shape}")
        try:
            return check_ids(as_ids(segment_ids, n, f"{n} segments"), n, f"{n} segments")
        except TypeError:
            raise TypeError(f"segment_ids must be integers, got an array of dtype "
                            f"{seg.dtype}") from None
        except IndexError as e:
            raise IndexError(f"segment_ids: {e}") from None

    def _check_positions(self, positions, start, ids):
        """``positions`` as a private int64 copy (so that the forward of a LayerNorm backward
        and the position table's scatter see the same values whatever another thread writes),
        of ids' shape or (seq,), each in [0, max_len); or None when not given."""
        if positions is None:
            return None
        if start is not None:
            raise ValueError("start and positions are two ways to say where the positions are: "
                             "pass one (positions = start + np.arange(seq) is start=)")
        if self.positional is None:
            raise ValueError("positions given but this InputEmbedding has no position term "
                             "(positional=None)")
        pos = np.asarray(positions)
        if pos.dtype == np.bool_ or not (pos.dtype.kind in "iu" or pos.size == 0):
            raise TypeError(f"positions must be integers, got an array of dtype {pos.dtype}")
        if pos.shape != ids.shape and pos.shape != ids.shape[-1:]:
            raise ValueError(f"positions has shape {pos.shape} but ids have shape {ids.shape} "
                             f"(positions must have the ids' shape, or (seq,) = "
                             f"{ids.shape[-1:]} for every row)")
        bad = (pos < 0) | (pos >= self.max_len)
        if bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            raise IndexError(f"positions[{', '.join(map(str, at))}] = {pos[at]} is out of range "
                             f"[0, max_len={self.max_len})")
        return pos.astype(np.int64)

    def _positions(self, start, seq, positions=None):
        """The position rows the kernels add: rows start .. start + seq, or with ``positions``
        the whole table (max_len rows) that they index."""
        if positions is not None:
            start, seq = 0, self.max_len
        if self.positional == "learned":
            p = self.position.weight[start:start + seq]
            return p.astype(np.float32) if is_half(p.dtype) else p
        if self.positional == "sinusoidal":
            return self.position.encoding(seq, start)
        return None

    def __call__(self, ids: ArrayLike, start: int | None = None, out: np.ndarray | None = None,
                 *, segment_ids: ArrayLike | None = None,
                 positions: ArrayLike | None = None) -> np.ndarray:
        return self.forward(ids, start, out, segment_ids=segment_ids, positions=positions)

    def forward(self, ids: ArrayLike, start: int | None = None, out: np.ndarray | None = None,
                *, segment_ids: ArrayLike | None = None,
                positions: ArrayLike | None = None) -> np.ndarray:
        """``E[ids] * scale + P[start:start+seq]`` for ids of shape (seq,) or (batch, seq),
        giving ``ids.shape + (d_model,)``; plus ``S[segment_ids]`` (ids' shape; all zeros when
        not given) with a segment table, and LayerNorm'd with ``norm="layernorm"``. ``start``
        (default 0) offsets the positions (a KV-cache decode step). ``positions`` (Hugging
        Face's ``position_ids``: integers of ids' shape, or (seq,) for every row, each in
        ``[0, max_len)``) adds ``P[positions]`` instead, e.g. the positions of
        :meth:`pyembed.Tokenizer.pack`'s packed rows; it and ``start`` are refused together. An
        id or position out of range raises IndexError naming it; nothing is written then."""
        ids = self._check_ids(ids)
        seg = self._check_segment_ids(segment_ids, ids)
        pid = self._check_positions(positions, start, ids)
        start = 0 if pid is not None else self._check_start(start, ids.shape[-1])
        pos = self._positions(start, ids.shape[-1], pid)
        if seg is None and self.norm is None:
            return _core.embed_positions(self.token.table, ids, pos, self.scale, out,
                                         position_ids=pid)
        return _core.embed_layernorm(self.token.table, ids, pos,
                                     None if seg is None else self.segment.table, seg,
                                     self.gamma, self.beta, self.scale, self.eps, out,
                                     position_ids=pid)

    def backward(self, ids: ArrayLike, grad_output: ArrayLike, start: int | None = None, *,
                 segment_ids: ArrayLike | None = None,
                 positions: ArrayLike | None = None) -> None:
        """Accumulate the gradient: ``scale * grad_output`` into the token table (padding row
        excluded, rows summed in order of appearance as ``Embedding.backward``), for learned
        positions ``grad_output`` summed over the batch into rows ``start .. start + seq`` (or
        into the rows of ``positions``, in order of appearance as ``Embedding.backward``: the
        same bits for any thread count), and into the segment rows of ``segment_ids``. With LayerNorm, ``grad_output`` is first taken
        back through it in C (each row rebuilt from the tables: call this before the optimizer
        step changes them) and the gamma and beta gradients are added into :attr:`gamma_grad`
        and :attr:`beta_grad` (float64 sums over fixed chunks of rows: any thread count, the
        same bits)."""
        ids = self._check_ids(ids)
        seg = self._check_segment_ids(segment_ids, ids)
        pid = self._check_positions(positions, start, ids)
        start = 0 if pid is not None else self._check_start(start, ids.shape[-1])
        g = np.asarray(grad_output)
        want = ids.shape + (self.d_model,)
        if g.shape != want:
            raise ValueError(f"grad_output has shape {g.shape} but ids {ids.shape} need {want}")
        if g.dtype.kind not in "fiu":
            raise TypeError(f"grad_output must be real numbers, got dtype {g.dtype}")
        dt = compute_dtype(self.dtype)
        g = g.astype(dt, copy=False)
        if self.norm is not None:
            g = _core.embed_layernorm_backward(
                self.token.table, ids, self._positions(start, ids.shape[-1], pid),
                None if seg is None else self.segment.table, seg, self.gamma, g, self.gamma_grad,
                self.beta_grad, self.scale, self.eps, position_ids=pid)
        # the token table validates ids and the gradient before it writes anything, so it goes
        # first: a bad call leaves the tables unchanged
        self.token.backward(ids, np.multiply(g, dt.type(self.scale)) if self.scale != 1.0 else g)
        if self.positional == "learned":
            if pid is None:
                pid = np.arange(start, start + ids.shape[-1])
            self.position.backward(np.broadcast_to(pid, ids.shape), g)
        if seg is not None:
            self.segment.backward(seg, g)

    def zero_grad(self) -> None:
        for p in self.parameters():
            if isinstance(p, tuple):
                p[1].fill(0)
            else:
                p.zero_grad()

    def parameters(self) -> list[Embedding | tuple[np.ndarray, np.ndarray]]:
        """The trainable parameters, in this order: the token table, the learned position table,
        the segment table (each when present), then LayerNorm's ``(gamma, gamma_grad)`` and
        ``(beta, beta_grad)`` pairs. Every pyembed.optim optimizer takes this list."""
        params: list = [self.token]
        if self.positional == "learned":
            params.append(self.position)
        if self.segment is not None:
            params.append(self.segment)
        if self.norm is not None:
            params += [(self.gamma, self.gamma_grad), (self.beta, self.beta_grad)]
        return params

    # -- tied output head (GPT-2: the logits are h @ wte.T) -----------------------------------
    def attend(self, h: ArrayLike) -> np.ndarray:
        """Logits of the tied output head, ``h @ E.T`` (:meth:`Embedding.attend` of the token
        table): GPT-2's ``lm_head``, which shares ``wte``."""
        return self.token.attend(h)

    def attend_backward(self, h: ArrayLike, grad_logits: ArrayLike) -> np.ndarray:
        """Backward of :meth:`attend` (:meth:`Embedding.attend_backward`): returns the gradient
        of ``h`` and adds the head's (dense) gradient into the token table's."""
        return self.token.attend_backward(h, grad_logits)

    # -- attributes ---------------------------------------------------------------------------
    @property
    def d_model(self) -> int:
        return self.token.embedding_dim

    @property
    def vocab_size(self) -> int:
        return self.token.num_embeddings

    @property
    def dtype(self) -> np.dtype:
        return self.token.dtype

    @property
    def padding_idx(self) -> int | None:
        return self.token.padding_idx

    @property
    def num_segments(self) -> int | None:
        return None if self.segment is None else self.segment.num_embeddings

    def __repr__(self):
        extra = "" if self.segment is None else f", num_segments={self.num_segments}"
        if self.norm is not None:
            extra += f", norm={self.norm!r}, eps={self.eps:g}"
        return (f"InputEmbedding({self.vocab_size}, {self.d_model}, positional={self.positional!r},"
                f" scale={self.scale:g}, max_len={self.max_len}{extra})")



def one_hot(ids: ArrayLike, num_classes: int = -1, *, dtype: DTypeLike = np.int64) -> np.ndarray:
    """``torch.nn.functional.one_hot``: an array of shape ``ids.shape + (num_classes,)`` with a 1
    at each id (``num_classes=-1``: ``ids.max() + 1``). ``dtype`` defaults to int64 as torch.

    A lookup is a one-hot matrix product, which is why the table's gradient is a scatter-add —
    and why nobody computes it this way: the product reads the whole table and does
    ``len(ids) * num_embeddings * dim`` multiply-adds where the lookup copies ``len(ids)`` rows
    (see the ``one_hot @ W`` row of ``python -m pyembed.bench``).

    Example:
        >>> import numpy as np, pyembed
        >>> W = np.arange(12, dtype=np.float32).reshape(4, 3)
        >>> ids = np.array([3, 0, 3])
        >>> pyembed.one_hot(ids, 4)
        array([[0, 0, 0, 1],
               [1, 0, 0, 0],
               [0, 0, 0, 1]])
        >>> bool(np.array_equal(pyembed.one_hot(ids, 4, dtype=W.dtype) @ W, W[ids]))
        True
    """
    if not is_int(num_classes):
        raise TypeError(f"num_classes must be an int, got {type(num_classes).__name__}")
    ids = as_ids(ids, num_classes if num_classes >= 0 else 2 ** 63, f"{num_classes} classes")
    if num_classes == -1:
        # only integer ids have a meaningful max; check_ids rejects the others
        num_classes = int(ids.max()) + 1 if ids.size and ids.dtype.kind in "iu" else 0
    if num_classes < 0:
        raise ValueError(f"num_classes must be -1 or >= 0, got {num_classes}")
    ids = check_ids(ids, num_classes, f"{num_classes} classes")
    out = np.zeros(ids.shape + (int(num_classes),), dtype)
    np.put_along_axis(out, ids[..., None], 1, axis=-1)
    return out

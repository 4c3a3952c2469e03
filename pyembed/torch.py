"""pyembed.torch: ``torch.nn.Embedding`` and ``torch.nn.EmbeddingBag`` whose kernels are pyembed's.

Drop-in modules for a torch model: the same constructor arguments, ``from_pretrained`` and
``forward``; ``weight`` is a ``torch.nn.Parameter`` that shares memory with a pyembed table (zero
copy, writes either way are seen), and forward and backward run pyembed's C kernels (with the GIL
released) inside a ``torch.autograd.Function``. torch optimizers, ``state_dict``,
``clip_grad_norm_`` and hooks see an ordinary parameter.

The gradient is what torch's module gives:

- default: a dense ``(num_embeddings, embedding_dim)`` tensor. pyembed's scatter kernel writes it
  in O(batch) into the table's own gradient buffer, reused from call to call (only the rows the
  last batch touched are cleared). The module keeps a reference to that buffer, so torch's
  gradient accumulation copies it into ``.grad`` (the first backward) or adds it (the next
  ones): ``.grad`` never aliases the buffer, and two backward calls before a step add up as
  with torch. While the buffer handed out last is still referenced elsewhere (the module used
  twice in one graph, a hook that keeps it) the next backward writes into a scratch table.
- ``sparse=True``: a coalesced sparse COO tensor (sorted unique rows), for
  ``torch.optim.SparseAdam``, ``SGD`` and ``Adagrad``.
- none, with a pyembed optimizer applied in the backward (issue 12):
  ``pyembed.optim.Adam(module, lr=..., lazy=True, in_backward=True)`` (or SGD, SparseAdam)
  updates the table inside ``loss.backward()``; torch gets no gradient for ``weight`` and the
  optimizer's ``step()`` is a no-op.

Differences from torch: float32 and float64 on the CPU only; ``_weight`` is copied into the
pyembed table (torch adopts the tensor); ``max_norm`` computes the norms in double (the rows agree
with torch's to float32 rounding) and its in-place renormalisation does not bump the weight's
autograd version counter; ``scale_grad_by_freq`` with ``sparse=True`` works (torch refuses it);
an EmbeddingBag's ``scale_grad_by_freq`` follows torch's documentation, where torch 2.13's CPU
kernel divides some rows by another id's count (pytorch#190063). Replacing ``weight`` (``module.double()``,
``load_state_dict(..., assign=True)``) is noticed at the next forward, which moves the new values
into a fresh table (one copy) and shares it again.

Importing ``pyembed`` does not import torch; importing ``pyembed.torch`` does.

Example (a bag-of-words classifier trained with SparseAdam)::

    >>> import torch, pyembed.torch
    >>> _ = torch.manual_seed(0)
    >>> emb = pyembed.torch.EmbeddingBag(1000, 16, mode="mean", sparse=True)
    >>> head = torch.nn.Linear(16, 2)
    >>> opt_emb = torch.optim.SparseAdam(emb.parameters(), lr=1e-2)
    >>> opt_head = torch.optim.Adam(head.parameters(), lr=1e-2)
    >>> ids = torch.randint(0, 1000, (32, 5))
    >>> labels = torch.randint(0, 2, (32,))
    >>> for step in range(3):
    ...     loss = torch.nn.functional.cross_entropy(head(emb(ids)), labels)
    ...     opt_emb.zero_grad(); opt_head.zero_grad()
    ...     loss.backward()
    ...     opt_emb.step(); opt_head.step()
    >>> emb.weight.grad.is_sparse
    True
    >>> bool((emb.weight.detach().numpy() == emb.pe.weight).all())   # one memory
    True
"""
import copy
import threading
import warnings

import numpy as np

try:
    import torch
except ImportError as exc:  # an optional dependency
    raise ImportError("pyembed.torch needs PyTorch: pip install torch") from exc

from ._core import Table
from .bag import EmbeddingBag as _PeBag
from .embedding import Embedding as _PeEmbedding

__all__ = ["Embedding", "EmbeddingBag"]

_NP_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def _np_dtype(dtype):
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if dtype not in _NP_DTYPES:
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    return _NP_DTYPES[dtype]


def _check_device(device):
    if device is not None and torch.device(device).type != "cpu":
        raise ValueError(f"pyembed.torch runs on the CPU only, got device={device!r}")


def _as_numpy(x, name, keep):
    """A CPU tensor (or array-like) as a NumPy array; a copy of its own when ``keep`` (it is
    saved for the backward, and a data loader may reuse its batch buffer before then)."""
    if isinstance(x, torch.Tensor):
        if x.device.type != "cpu":
            raise ValueError(f"{name} must be on the CPU, got device {x.device}")
        x = x.detach().numpy()
    return np.array(x) if keep else np.asarray(x)


def _saving(ctx, grad_mode):
    # forward itself runs with grad mode off: the caller's mode comes in as an argument
    return grad_mode and any(ctx.needs_input_grad)


def _gradient(module, source, grad_output, need_weight):
    """(weight's gradient or None, per-sample weights' gradient or None) by pyembed's kernels.
    ``source``: the saved ids (Embedding) or the per-call pyembed.EmbeddingBag.

    The weight's gradient is scattered into the table's own gradient, cleared first in
    O(rows touched last time). Dense, that buffer itself is handed to torch (and kept here, so
    torch copies or adds it, never adopts it as ``.grad``); sparse, its touched rows are copied
    out. While the buffer handed out last is still referenced (pending in the engine when the
    module is used twice in one graph, or kept by a hook), a scratch table takes the call; when a
    hook wrote into it in place (its version moved) it is cleared whole first.
    """
    pe = module.pe
    g = grad_output.detach().contiguous().numpy()
    is_bag = isinstance(source, _PeBag)
    if not need_weight:
        source.requires_grad = False  # the per-call copy: only the per-sample weights' gradient
        return None, _tensor(source.backward(g))
    if pe.in_backward_hook is not None:  # the update happens here; torch gets no gradient
        if is_bag:  # the per-call copy shares the table and the optimizer
            return None, _tensor(source.backward(g))
        pe.backward(source, g)
        return None, None
    with module._lock:
        held = module._held
        # Still referenced by torch (pending in the engine, kept by a hook), or handed out by
        # another thread: torch takes its reference only after this function returns, so a
        # buffer another thread handed out may not be counted yet (one lost batch in 6 runs of
        # the two-thread test). A thread's own earlier backward has always finished.
        busy = held is not None and (held._use_count() > 1
                                     or module._held_thread != threading.get_ident())
        if busy:
            target = copy.copy(pe)
            target.table = Table(*pe.shape, pe.dtype)
            target.table.weight = pe.weight  # the per-sample weights' gradient reads the rows
        else:
            target = pe
            if held is not None and held._version != module._held_version:
                pe.table.mark_all_touched()
            pe.zero_grad()
        if is_bag:
            source.table = target.table
            gpsw = source.backward(g)
        else:
            target.backward(source, g)
            gpsw = None
        if module.sparse:
            touched = target.touched
            rows = torch.from_numpy(touched).unsqueeze(0)
            values = torch.from_numpy(np.take(target.grad, touched, axis=0))
            grad = torch.sparse_coo_tensor(rows, values, tuple(pe.shape), is_coalesced=True,
                                           check_invariants=False)  # sorted unique by building
        elif busy:
            grad = _grad_tensor(target.grad)  # the scratch's: torch may adopt it
        else:
            if held is None or held.data_ptr() != pe.grad.ctypes.data:
                held = module._held = _grad_tensor(pe.grad)
            module._held_version = held._version
            module._held_thread = threading.get_ident()
            grad = held
    return grad, _tensor(gpsw)


def _grad_tensor(a):
    """A tensor over a table's gradient buffer, which NumPy shows read-only (the kernels rely on
    rows outside ``touched`` being zero). torch only reads it: AccumulateGrad copies or adds it,
    and a hook that writes into it bumps ``_version``, which makes the next backward clear the
    whole buffer. So torch's warning about non-writable arrays is silenced here, and only here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(a)


def _tensor(a):
    return None if a is None else torch.from_numpy(np.ascontiguousarray(a))


class _EmbeddingFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, ids, module, grad_mode):
        keep = _saving(ctx, grad_mode)
        ids = _as_numpy(ids, "input", keep)
        out = module.pe.forward(ids)
        ctx.module, ctx.ids = module, (ids if keep else None)
        return torch.from_numpy(out)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        return _gradient(ctx.module, ctx.ids, grad_output, True)[0], None, None, None


class _BagFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, per_sample_weights, ids, offsets, module, grad_mode):
        keep = _saving(ctx, grad_mode)
        ids = _as_numpy(ids, "input", keep)
        offsets = None if offsets is None else _as_numpy(offsets, "offsets", keep)
        psw = None
        if per_sample_weights is not None:
            psw = _as_numpy(per_sample_weights, "per_sample_weights", keep)
        # a shallow copy per call: its own saved context (pyembed.EmbeddingBag keeps one),
        # the same table
        bag = copy.copy(module.pe)
        out = bag.bag(ids, offsets, psw, module.include_last_offset)
        ctx.module, ctx.bag = module, bag
        return torch.from_numpy(out)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        need_w, need_psw = ctx.needs_input_grad[:2]
        if not (need_w or need_psw):
            return None, None, None, None, None, None
        grad, gpsw = _gradient(ctx.module, ctx.bag, grad_output, need_w)
        return (grad if need_w else None), (gpsw if need_psw else None), None, None, None, None


class Embedding(torch.nn.Module):
    """``torch.nn.Embedding`` over a pyembed table: the same arguments, forward and gradient.

    ``weight`` shares memory with ``self.pe`` (a :class:`pyembed.Embedding`). ``device``:
    the CPU only; ``dtype``: float32 or float64. Initialisation is torch's (``N(0, 1)`` from
    torch's generator, padding row zeroed), so a seeded torch model starts the same.
    """

    _pe_class = _PeEmbedding

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, scale_grad_by_freq=False, sparse=False, _weight=None,
                 _freeze=False, device=None, dtype=None):
        super().__init__()
        _check_device(device)
        if dtype is None and _weight is not None:
            dtype = _weight.dtype
        self._build(self._new_pe(num_embeddings, embedding_dim, padding_idx, max_norm,
                                 norm_type, scale_grad_by_freq, _np_dtype(dtype)))
        self.num_embeddings, self.embedding_dim = self.pe.shape
        self.padding_idx = self.pe.padding_idx
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = bool(sparse)
        self._init_weight(_weight, _freeze)

    def _new_pe(self, num_embeddings, embedding_dim, padding_idx, max_norm, norm_type,
                scale_grad_by_freq, np_dtype):
        return _PeEmbedding(num_embeddings, embedding_dim, padding_idx=padding_idx,
                            max_norm=max_norm, norm_type=norm_type,
                            scale_grad_by_freq=scale_grad_by_freq, dtype=np_dtype, init="zeros")

    def _build(self, pe):
        self.pe = pe
        self._lock = threading.Lock()
        self._held = None  # the dense gradient buffer handed to torch last (see _gradient)
        self._held_version = None
        self._held_thread = None

    def _init_weight(self, _weight, _freeze):
        self.weight = torch.nn.Parameter(torch.from_numpy(self.pe.weight),
                                         requires_grad=not _freeze)
        self._ptr = self.weight.data_ptr()
        if _weight is None:
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != tuple(self.pe.shape):
                raise ValueError(f"Shape of weight {tuple(_weight.shape)} does not match "
                                 f"num_embeddings and embedding_dim {tuple(self.pe.shape)}")
            with torch.no_grad():
                self.weight.copy_(_weight)

    def reset_parameters(self):
        """N(0, 1) from torch's generator, padding row zeroed (torch's reset_parameters)."""
        torch.nn.init.normal_(self.weight)
        if self.padding_idx is not None:
            with torch.no_grad():
                self.weight[self.padding_idx].fill_(0)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None,
                        norm_type=2.0, scale_grad_by_freq=False, sparse=False):
        """As ``torch.nn.Embedding.from_pretrained``; the values are copied into the table."""
        embeddings = torch.as_tensor(embeddings)
        if embeddings.dim() != 2:
            raise ValueError(f"embeddings must be 2-D, got shape {tuple(embeddings.shape)}")
        return cls(*embeddings.shape, _weight=embeddings, _freeze=freeze,
                   padding_idx=padding_idx, max_norm=max_norm, norm_type=norm_type,
                   scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)

    def _sync(self):
        """Push torch-side attribute changes to the pyembed object; re-share a replaced weight."""
        w = self.weight
        if w.data_ptr() != self._ptr or tuple(w.shape) != tuple(self.pe.shape):
            if w.device.type != "cpu":
                raise ValueError(f"pyembed.torch runs on the CPU only, weight is on {w.device}")
            if w.dim() != 2:
                raise ValueError(f"weight must be 2-D, got shape {tuple(w.shape)}")
            pe = copy.copy(self.pe)
            pe.table = Table(w.shape[0], w.shape[1], _np_dtype(w.dtype))
            pe.table.weight = w.detach().numpy()
            self._build(pe)
            w.data = torch.from_numpy(pe.weight)
            self._ptr = w.data_ptr()
        pe = self.pe
        pe.padding_idx = (None if self.padding_idx is None
                          else int(self.padding_idx) % self.num_embeddings)
        pe.max_norm = None if self.max_norm is None else float(self.max_norm)
        pe.norm_type = float(self.norm_type)
        pe.scale_grad_by_freq = bool(self.scale_grad_by_freq)

    def forward(self, input):
        self._sync()
        return _EmbeddingFunction.apply(self.weight, input, self, torch.is_grad_enabled())

    def extra_repr(self):
        s = "{num_embeddings}, {embedding_dim}"
        if self.padding_idx is not None:
            s += ", padding_idx={padding_idx}"
        if self.max_norm is not None:
            s += ", max_norm={max_norm}"
        if self.norm_type != 2:
            s += ", norm_type={norm_type}"
        if self.scale_grad_by_freq is not False:
            s += ", scale_grad_by_freq={scale_grad_by_freq}"
        if self.sparse is not False:
            s += ", sparse=True"
        return s.format(**self.__dict__)

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["_lock"]
        state["_held"] = None
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._lock = threading.Lock()
        self._ptr = None  # the unpickled weight and table are separate copies: re-share


class EmbeddingBag(Embedding):
    """``torch.nn.EmbeddingBag`` over a pyembed table (``self.pe`` is a
    :class:`pyembed.EmbeddingBag`): modes ``"sum"``, ``"mean"``, ``"max"``, ``offsets``,
    ``include_last_offset``, ``per_sample_weights`` (mode sum, with its gradient) and
    ``padding_idx`` as torch's."""

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, mode="mean", sparse=False, _weight=None,
                 include_last_offset=False, padding_idx=None, device=None, dtype=None):
        self.mode = mode
        self.include_last_offset = bool(include_last_offset)
        super().__init__(num_embeddings, embedding_dim, padding_idx=padding_idx,
                         max_norm=max_norm, norm_type=norm_type,
                         scale_grad_by_freq=scale_grad_by_freq, sparse=sparse, _weight=_weight,
                         device=device, dtype=dtype)

    def _new_pe(self, num_embeddings, embedding_dim, padding_idx, max_norm, norm_type,
                scale_grad_by_freq, np_dtype):
        return _PeBag(num_embeddings, embedding_dim, self.mode, padding_idx=padding_idx,
                      include_last_offset=self.include_last_offset, max_norm=max_norm,
                      norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq,
                      dtype=np_dtype, init="zeros")

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, mode="mean", sparse=False,
                        include_last_offset=False, padding_idx=None):
        """As ``torch.nn.EmbeddingBag.from_pretrained``; the values are copied into the table."""
        embeddings = torch.as_tensor(embeddings)
        if embeddings.dim() != 2:
            raise ValueError(f"embeddings must be 2-D, got shape {tuple(embeddings.shape)}")
        obj = cls(*embeddings.shape, _weight=embeddings, max_norm=max_norm,
                  norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq, mode=mode,
                  sparse=sparse, include_last_offset=include_last_offset,
                  padding_idx=padding_idx)
        obj.weight.requires_grad = not freeze
        return obj

    def _sync(self):
        super()._sync()
        self.pe.mode = self.mode
        self.pe.include_last_offset = self.include_last_offset

    def forward(self, input, offsets=None, per_sample_weights=None):
        self._sync()
        if per_sample_weights is not None and self.mode != "sum":
            raise NotImplementedError(f"per_sample_weights is only supported for mode='sum' "
                                      f"(got mode={self.mode!r}), as in torch")
        return _BagFunction.apply(self.weight, per_sample_weights, input, offsets, self,
                                  torch.is_grad_enabled())

    def extra_repr(self):
        s = super().extra_repr() + f", mode={self.mode!r}"
        if self.include_last_offset:
            s += ", include_last_offset=True"
        return s

"""pyembed.optim: torch.optim's Adam, AdamW, SparseAdam and SGD for pyembed tables and NumPy arrays.

Every update is one C kernel call per parameter (csrc/kernels/adam.c, sgd.c): a single fused pass
over the parameter, its gradient and its state, with the GIL released, bitwise identical for every
thread count. Names, defaults, hyper-parameter checks and ``state_dict`` layout follow torch.

``params`` may be an :class:`~pyembed.Embedding` or :class:`~pyembed.Table`, a list of them, a list
of param-group dicts (``{"params": [...], "lr": ...}``), or ``(array, grad_array)`` pairs of
NumPy arrays (C-contiguous, float32/float64, same shape) so that a user's own layers can share
the optimizer: the optimizer reads ``grad_array`` and updates ``array`` in place.

What "has a gradient" means for a table: it received a backward since its last ``zero_grad``
(``table.touched`` is not empty). A table without one is skipped, step counter included, which is
what torch does for a parameter whose ``.grad`` is None after ``zero_grad(set_to_none=True)``.
An Embedding with ``requires_grad = False`` is skipped; rows frozen with
``Embedding.freeze_rows`` are left bit-for-bit unchanged (weights and optimizer state) by every
optimizer here, dense or lazy.

Example:
    >>> import numpy as np, pyembed
    >>> emb = pyembed.Embedding(100, 8, seed=0)
    >>> opt = pyembed.optim.Adam(emb, lr=1e-2)
    >>> ids = np.array([1, 5, 5])
    >>> out = emb(ids)
    >>> emb.backward(ids, np.ones_like(out))
    >>> opt.step(); opt.zero_grad()
    >>> np.savez("/tmp/opt.npz", **opt.state_dict())
    >>> opt.load_state_dict(np.load("/tmp/opt.npz"))
"""
import math

import numpy as np

from . import _core
# Optimizer is re-exported: pyembed.optim.Optimizer is the public name of the base class.
from .optimizer import Optimizer, _aligned_zeros, _flatten, _float, _Param
# Optimizers pickled before the base class moved to .optimizer name pyembed.optim._State (and
# _Param): keep both reachable here so that those pickles still load.
from .optimizer import _State  # noqa: F401

__all__ = ["Optimizer", "Adam", "AdamW", "SparseAdam", "SGD", "clip_grad_norm_"]


# ---- Adam ------------------------------------------------------------------------------------

class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with torch.optim.Adam's names, defaults and arithmetic.

    Args:
        params: see the module docstring.
        lr, betas, eps, weight_decay, amsgrad, maximize: as torch (weight decay is L2, added to
            the gradient).
        decoupled_weight_decay: AdamW's decay ``p *= 1 - lr * weight_decay`` (as torch).
        lazy: update only a table's touched rows (lazy Adam; untouched rows' weights and moments
            stay as they are, one step counter per table, Adam's arithmetic). Without ``lazy`` a
            table is updated densely like torch's dense Adam: every row's moments decay.
        per_row_step: with ``lazy``, one step counter per row, so that a rare row's bias
            correction uses the number of times *it* was updated.

    Deliberate deviations from torch, on the lazy path only: weight decay (L2 or decoupled)
    is applied to the touched rows only (untouched rows do not decay), and ``per_row_step``
    has no torch counterpart. For torch.optim.SparseAdam's exact arithmetic use
    :class:`SparseAdam`. ``foreach`` / ``fused`` are accepted for torch compatibility and
    ignored: every update is one fused C pass.

    Example:
        >>> opt = pyembed.optim.Adam(emb, lr=1e-3, lazy=True)     # doctest: +SKIP
    """

    _decoupled_default = False
    _sparse_form = False
    _required_state = ("step", "exp_avg", "exp_avg_sq")
    _optional_state = ("max_exp_avg_sq",)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, maximize=False, decoupled_weight_decay=None, lazy=False,
                 per_row_step=False, foreach=None, fused=None):
        if decoupled_weight_decay is None:
            decoupled_weight_decay = self._decoupled_default
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize,
                        decoupled_weight_decay=decoupled_weight_decay, lazy=lazy,
                        per_row_step=per_row_step)
        self._check_group(dict(defaults))
        super().__init__(params, defaults)

    def _check_group(self, group):
        lr = _float("lr", group["lr"])
        eps = _float("eps", group["eps"])
        betas = group["betas"]
        if not (isinstance(betas, (tuple, list, np.ndarray)) and len(betas) == 2):
            raise ValueError(f"betas must be a pair of floats, got {betas!r}")
        b1, b2 = _float("betas[0]", betas[0]), _float("betas[1]", betas[1])
        wd = _float("weight_decay", group["weight_decay"])
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= b1 < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {b1}")
        if not 0.0 <= b2 < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {b2}")
        if not 0.0 <= wd:
            raise ValueError(f"Invalid weight_decay value: {wd}")
        if group["per_row_step"] and not group["lazy"]:
            raise ValueError("per_row_step=True needs lazy=True (a dense step updates every row)")
        group["lr"], group["eps"], group["betas"], group["weight_decay"] = lr, eps, (b1, b2), wd
        for k in ("amsgrad", "maximize", "decoupled_weight_decay", "lazy", "per_row_step"):
            group[k] = bool(group[k])

    def _check_state(self, group, p, st, where):
        super()._check_state(group, p, st, where)
        # rows is None only for (array, grad) pairs: those never take the lazy path
        per_row = group["lazy"] and group["per_row_step"] and p.table is not None
        if isinstance(st["step"], np.ndarray) != per_row:
            raise ValueError(f"{where}per_row_step (and lazy) cannot change after a parameter's "
                             f"first step: its state has " + ("per-row" if not per_row else
                                                              "one") + " step counter(s)")

    def _update(self, group, p, grad, rows):
        lazy = group["lazy"] and rows is not None
        per_row = lazy and group["per_row_step"]
        st = self.state.get(p)
        if not st:
            st = {"step": np.zeros(p.shape[0], np.int64) if per_row else 0,
                  "exp_avg": _aligned_zeros(p.shape, p.dtype),
                  "exp_avg_sq": _aligned_zeros(p.shape, p.dtype)}
            self.state[p] = st
        if group["amsgrad"] and st.get("max_exp_avg_sq") is None:
            st["max_exp_avg_sq"] = _aligned_zeros(p.shape, p.dtype)
        step = st["step"]
        row_step = step if isinstance(step, np.ndarray) else None  # agrees: _check_state
        b1, b2 = group["betas"]
        _core.adam_step(
            p.weight, grad, st["exp_avg"], st["exp_avg_sq"],
            st["max_exp_avg_sq"] if group["amsgrad"] else None,
            step=0 if row_step is not None else step + 1, lr=group["lr"], beta1=b1, beta2=b2,
            eps=group["eps"], weight_decay=group["weight_decay"],
            decoupled=group["decoupled_weight_decay"], maximize=group["maximize"],
            sparse_form=self._sparse_form, rows=rows if lazy else None, row_step=row_step,
            frozen=p.frozen, table=p.table)
        if row_step is None:
            st["step"] = step + 1


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay
    ``p *= 1 - lr * weight_decay``, default ``weight_decay=1e-2``, as torch.optim.AdamW.
    ``lazy`` / ``per_row_step`` as in :class:`Adam` (on the lazy path only touched rows decay)."""

    _decoupled_default = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, lazy=False, per_row_step=False, foreach=None,
                 fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True,
                         lazy=lazy, per_row_step=per_row_step)


class SparseAdam(Adam):
    """Lazy Adam with torch.optim.SparseAdam's semantics and arithmetic: only a table's touched
    rows (duplicate ids already summed by the backward) have their moments and weights
    updated; one step counter per table; ``eps`` is added to ``sqrt(v)`` before the bias
    correction, as torch's SparseAdam does (unlike Adam).

    Beyond torch: ``per_row_step=True`` keeps one step counter per row (exact bias correction
    for rare tokens), and ``(array, grad)`` pairs are accepted and updated densely with the
    same arithmetic (torch's SparseAdam rejects dense gradients). These are deliberate
    deviations. A table whose touched list is empty is skipped without counting a step
    (torch counts one for a parameter with an empty sparse gradient)."""

    _sparse_form = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False, *,
                 per_row_step=False):
        if not 0.0 < _float("lr", lr):
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < _float("eps", eps):
            raise ValueError(f"Invalid epsilon value: {eps}")
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=0, amsgrad=False,
                         maximize=maximize, decoupled_weight_decay=False, lazy=True,
                         per_row_step=per_row_step)


# ---- SGD -------------------------------------------------------------------------------------

class SGD(Optimizer):
    """Stochastic gradient descent with torch.optim.SGD's names, defaults and arithmetic
    (momentum, dampening, Nesterov, L2 weight decay, maximize), one fused pass per parameter.

    Without momentum and weight decay a table's untouched rows cannot change, so only its
    touched rows are visited (same result as the dense step, cost grows with the batch).

    ``lazy=True`` (a deliberate deviation, for momentum / weight decay on big tables): only
    touched rows are updated and their momentum buffers advance only when touched. The first
    step sets the touched rows' buffers to their gradient (as torch); a row touched for the
    first time later starts from a zero buffer.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 *, maximize=False, lazy=False, foreach=None, fused=None):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                        lazy=lazy)
        self._check_group(dict(defaults))
        super().__init__(params, defaults)

    def _check_group(self, group):
        lr = _float("lr", group["lr"])
        mom = _float("momentum", group["momentum"])
        damp = _float("dampening", group["dampening"])
        wd = _float("weight_decay", group["weight_decay"])
        if lr < 0.0 or lr != lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if mom < 0.0 or mom != mom:
            raise ValueError(f"Invalid momentum value: {mom}")
        if wd < 0.0 or wd != wd:
            raise ValueError(f"Invalid weight_decay value: {wd}")
        if not math.isfinite(damp):
            raise ValueError(f"Invalid dampening value: {damp}")
        if group["nesterov"] and (mom <= 0 or damp != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        group["lr"], group["momentum"], group["dampening"], group["weight_decay"] = lr, mom, damp, wd
        for k in ("nesterov", "maximize", "lazy"):
            group[k] = bool(group[k])

    _optional_state = ("momentum_buffer",)

    def _update(self, group, p, grad, rows):
        mom = group["momentum"]
        exact_sparse = mom == 0 and group["weight_decay"] == 0
        use_rows = rows if rows is not None and (group["lazy"] or exact_sparse) else None
        st = self.state.setdefault(p, {})
        buf, first = None, False
        if mom != 0:
            buf = st.get("momentum_buffer")
            if buf is None:
                buf = _aligned_zeros(p.shape, p.dtype)
                first = True
        _core.sgd_step(p.weight, grad, buf, lr=group["lr"], momentum=mom,
                       dampening=group["dampening"], weight_decay=group["weight_decay"],
                       nesterov=group["nesterov"], maximize=group["maximize"], first=first,
                       rows=use_rows, frozen=p.frozen, table=p.table)
        if buf is not None:
            st["momentum_buffer"] = buf


# ---- clip_grad_norm_ -------------------------------------------------------------------------

def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale the gradients so that their joint ``norm_type``-norm is at most ``max_norm``, as
    ``torch.nn.utils.clip_grad_norm_``; returns the total norm before clipping (a float).

    A table's gradient is its touched rows (untouched rows are zero, so the norm is the same
    as over the whole table; cost grows with the batch). Tables without a gradient and
    Embeddings with ``requires_grad=False`` are skipped. Norms are accumulated in double in a
    fixed order: the same bits for every thread count. ``foreach`` is accepted and ignored.
    """
    max_norm = _float("max_norm", max_norm)
    norm_type = _float("norm_type", norm_type)
    if not norm_type > 0:
        raise ValueError(f"norm_type must be > 0, got {norm_type}")
    items, parts = [], []
    for obj in _flatten(parameters):
        p = _Param(obj)
        if not p.trainable:
            continue
        grad, rows = p.grad()
        if grad is None:
            continue
        parts.append(_core.grad_norm(grad, rows, norm_type, table=p.table))
        items.append((grad, rows, p.table))
    if not items:
        return 0.0
    if math.isinf(norm_type):
        total = max(parts)
    else:
        total = math.fsum(parts) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                           "`parameters` is non-finite, so it cannot be clipped. To disable this "
                           "error and scale the gradients by the non-finite norm anyway, set "
                           "`error_if_nonfinite=False`")
    coef = max_norm / (total + 1e-6)
    if coef < 1.0 or coef != coef:
        for grad, rows, table in items:
            _core.scale_grad(grad, coef, rows, table=table)
    return total

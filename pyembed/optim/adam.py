"""Adam and AdamW (torch.optim.Adam / AdamW): one fused C pass per parameter
(csrc/kernels/adam.c), dense or lazy (touched rows only)."""
from __future__ import annotations

import numpy as np

from .. import _core
from .._checks import as_float
from ._params import aligned_zeros, check_rounding, densify, rounding_args
from .optimizer import Optimizer

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with torch.optim.Adam's names, defaults and arithmetic.

    Args:
        params: see :mod:`pyembed.optim`.
        lr, betas, eps, weight_decay, amsgrad, maximize: as torch (weight decay is L2, added to
            the gradient).
        decoupled_weight_decay: AdamW's decay ``p *= 1 - lr * weight_decay`` (as torch).
        lazy: update only a table's touched rows (lazy Adam; untouched rows' weights and moments
            stay as they are, one step counter per table, Adam's arithmetic). Without ``lazy`` a
            table is updated densely like torch's dense Adam: every row's moments decay.
        per_row_step: with ``lazy``, one step counter per row, so that a rare row's bias
            correction uses the number of times *it* was updated.
        in_backward: apply the update inside each table's backward (needs ``lazy``; the tables
            must be Embeddings): no gradient buffer, ``step()`` and ``zero_grad()`` are no-ops,
            the same bits as backward-then-step (see :class:`~pyembed.optim.optimizer.InBackward`).

    A float16 / bfloat16 table is trained in float32 (gradient and moments float32): each
    updated row is widened, updated and rounded back to nearest even, or with
    ``stochastic_rounding=True`` stochastically (unbiased), with random bits that depend only
    on ``seed``, the row, the column and the step being taken (with ``per_row_step``, the
    row's): the same bits for any thread count.

    Deliberate deviations from torch, on the lazy path only: weight decay (L2 or decoupled)
    is applied to the touched rows only (untouched rows do not decay), and ``per_row_step``
    has no torch counterpart. For torch.optim.SparseAdam's exact arithmetic use
    :class:`SparseAdam`. ``foreach`` / ``fused`` are accepted for torch compatibility and
    ignored: every update is one fused C pass.

    Example:
        >>> opt = pyembed.optim.Adam(emb, lr=1e-3, lazy=True)     # doctest: +SKIP
    """

    _decoupled_default = False
    _ignored_options = ("foreach", "fused")
    _sparse_form = False
    _required_state = ("step", "exp_avg", "exp_avg_sq")
    _optional_state = ("max_exp_avg_sq",)

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *,
                 maximize: bool = False, decoupled_weight_decay: bool | None = None,
                 lazy: bool = False, per_row_step: bool = False, foreach: bool | None = None,
                 fused: bool | None = None, in_backward: bool = False,
                 stochastic_rounding: bool = False, seed: int = 0) -> None:
        self._stochastic_rounding, self._seed = check_rounding(stochastic_rounding, seed)
        if decoupled_weight_decay is None:
            decoupled_weight_decay = self._decoupled_default
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize,
                        decoupled_weight_decay=decoupled_weight_decay, lazy=lazy,
                        per_row_step=per_row_step)
        super().__init__(params, defaults, in_backward)

    def _check_in_backward(self, group):
        if not group["lazy"]:
            raise ValueError(f"{type(self).__name__}(in_backward=True) needs lazy=True: a dense "
                             f"step updates rows the batch does not touch")

    def _check_group(self, group):
        lr = as_float("lr", group["lr"])
        eps = as_float("eps", group["eps"])
        betas = group["betas"]
        if not (isinstance(betas, (tuple, list, np.ndarray)) and len(betas) == 2):
            raise ValueError(f"betas must be a pair of floats, got {betas!r}")
        b1, b2 = as_float("betas[0]", betas[0]), as_float("betas[1]", betas[1])
        wd = as_float("weight_decay", group["weight_decay"])
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= b1 < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {b1}")
        if not 0.0 <= b2 < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {b2}")
        if not 0.0 <= wd < np.inf:
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

    def _update(self, group, p, grad, rows, **form):
        lazy = group["lazy"] and (rows is not None or "ids" in form)
        if form.get("compact") and not lazy:
            grad, form = densify(grad, rows, p.shape), {}
        per_row = lazy and group["per_row_step"]
        st = self.state.get(p)
        if not st:
            st = {"step": np.zeros(p.shape[0], np.int64) if per_row else 0,
                  "exp_avg": aligned_zeros(p.shape, p.state_dtype),
                  "exp_avg_sq": aligned_zeros(p.shape, p.state_dtype)}
            self.state[p] = st
        if group["amsgrad"] and st.get("max_exp_avg_sq") is None:
            st["max_exp_avg_sq"] = aligned_zeros(p.shape, p.state_dtype)
        step = st["step"]
        row_step = step if isinstance(step, np.ndarray) else None  # agrees: _check_state
        b1, b2 = group["betas"]
        n = _core.adam_step(
            p.weight, grad, st["exp_avg"], st["exp_avg_sq"],
            st["max_exp_avg_sq"] if group["amsgrad"] else None,
            step=0 if row_step is not None else step + 1, lr=group["lr"], beta1=b1, beta2=b2,
            eps=group["eps"], weight_decay=group["weight_decay"],
            decoupled=group["decoupled_weight_decay"], maximize=group["maximize"],
            sparse_form=self._sparse_form, rows=rows if lazy else None, row_step=row_step,
            frozen=p.frozen, table=p.table, **form,
            **rounding_args(p, self._stochastic_rounding, self._seed,
                            0 if row_step is not None else step + 1))
        if row_step is None and n != 0:  # a backward of padding alone is no step
            st["step"] = step + 1


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay
    ``p *= 1 - lr * weight_decay``, default ``weight_decay=1e-2``, as torch.optim.AdamW.
    ``lazy`` / ``per_row_step`` as in :class:`Adam` (on the lazy path only touched rows decay)."""

    _decoupled_default = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, lazy: bool = False, per_row_step: bool = False,
                 foreach: bool | None = None, fused: bool | None = None,
                 in_backward: bool = False, stochastic_rounding: bool = False,
                 seed: int = 0) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True,
                         lazy=lazy, per_row_step=per_row_step, in_backward=in_backward,
                         stochastic_rounding=stochastic_rounding, seed=seed)

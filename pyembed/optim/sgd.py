"""SGD (torch.optim.SGD): momentum, dampening, Nesterov, weight decay, one fused C pass per
parameter (csrc/kernels/sgd.c)."""
from __future__ import annotations

import math

import numpy as np

from .. import _core
from .._checks import as_float
from ._params import aligned_zeros, check_rounding, densify, rounding_args
from .optimizer import Optimizer

__all__ = ["SGD"]


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

    ``in_backward=True`` applies the update inside each table's backward (Embeddings only;
    needs ``lazy`` or no momentum and no weight decay, the updates that reach only touched rows):
    no gradient buffer, ``step()`` and ``zero_grad()`` are no-ops, the same bits as
    backward-then-step.

    A float16 / bfloat16 table is trained in float32 (gradient and momentum buffer float32):
    each updated row is widened, updated and rounded back to nearest even, or with
    ``stochastic_rounding=True`` stochastically (unbiased), with random bits that depend only
    on ``seed``, the row, the column and the step (this optimizer's count of updates of the
    table, from 1: the state's ``step``, which only a half table has, saved and loaded with
    the state dict): the same bits for any thread count.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 lazy: bool = False, foreach: bool | None = None,
                 fused: bool | None = None, in_backward: bool = False,
                 stochastic_rounding: bool = False, seed: int = 0) -> None:
        self._stochastic_rounding, self._seed = check_rounding(stochastic_rounding, seed)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                        lazy=lazy)
        super().__init__(params, defaults, in_backward)

    def _check_in_backward(self, group):
        if not (group["lazy"] or group["momentum"] == 0 and group["weight_decay"] == 0):
            raise ValueError("SGD(in_backward=True) needs lazy=True, or momentum=0 and "
                             "weight_decay=0: otherwise a step updates rows the batch does not "
                             "touch")

    def _check_group(self, group):
        lr = as_float("lr", group["lr"])
        mom = as_float("momentum", group["momentum"])
        damp = as_float("dampening", group["dampening"])
        wd = as_float("weight_decay", group["weight_decay"])
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

    _optional_state = ("momentum_buffer", "step")
    _ignored_options = ("foreach", "fused")

    def _update(self, group, p, grad, rows, **form):
        mom = group["momentum"]
        exact_sparse = mom == 0 and group["weight_decay"] == 0
        use_rows = rows if rows is not None and (group["lazy"] or exact_sparse) else None
        if form.get("compact") and use_rows is None:
            grad, form = densify(grad, rows, p.shape), {}
        # without momentum no state entry at all, as torch, unless a half table's rounding
        # counts steps
        st = self.state.setdefault(p, {}) if mom != 0 or p.half else {}
        step = st.get("step", 0) + 1 if p.half else 0
        buf, first = None, False
        if mom != 0:
            buf = st.get("momentum_buffer")
            if buf is None:
                buf = aligned_zeros(p.shape, p.state_dtype)
                first = True
        n = _core.sgd_step(p.weight, grad, buf, lr=group["lr"], momentum=mom,
                           dampening=group["dampening"], weight_decay=group["weight_decay"],
                           nesterov=group["nesterov"], maximize=group["maximize"], first=first,
                           rows=use_rows, frozen=p.frozen, table=p.table, **form,
                           **rounding_args(p, self._stochastic_rounding, self._seed, step))
        if buf is not None:
            st["momentum_buffer"] = buf
        if p.half and n != 0:  # a backward of padding alone is no step
            st["step"] = step

    def _check_state(self, group, p, st, where):
        super()._check_state(group, p, st, where)
        if "step" in st and not isinstance(st["step"], (int, np.integer)):
            raise ValueError(f"{where}SGD's step is one counter (a half table's stochastic "
                             f"rounding), got an array of shape {np.shape(st['step'])}")

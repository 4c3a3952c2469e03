"""Adagrad (torch.optim.Adagrad) and RowWiseAdagrad (FBGEMM's exact row-wise Adagrad): one fused
C pass per parameter (csrc/kernels/adagrad.c), dense or on a table's touched rows."""
from __future__ import annotations

import numpy as np

from .. import _core
from .._checks import as_float
from ._params import aligned_zeros, check_rounding, densify, rounding_args
from .optimizer import Optimizer

__all__ = ["Adagrad", "RowWiseAdagrad"]


def _nonnegative(group, names):
    """Each option a float >= 0 (NaN refused), with torch's messages."""
    for key, what in names:
        v = as_float(key, group[key])
        if not 0.0 <= v:
            raise ValueError(f"Invalid {what}: {v}")
        group[key] = v


def _check_ignored(**options):
    """foreach / fused: accepted for torch's signature and ignored, but only as None or a bool
    (the message add_param_group gives for them in a group)."""
    for k, v in options.items():
        if v is not None and not isinstance(v, bool):
            raise TypeError(f"{k} must be None or a bool, got {v!r}")


class _AdagradBase(Optimizer):
    """What Adagrad and RowWiseAdagrad share: options, state (``step``, ``sum``), the step."""

    _ignored_options = ("foreach", "fused")
    _required_state = ("step", "sum")
    _rowwise = False

    def _check_group(self, group):
        _nonnegative(group, (("lr", "learning rate"), ("lr_decay", "lr_decay value"),
                             ("weight_decay", "weight_decay value"),
                             ("initial_accumulator_value", "initial_accumulator_value value"),
                             ("eps", "epsilon value")))
        if group["weight_decay"] == np.inf:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")
        for k in self._flags:
            group[k] = bool(group[k])

    def _sum_shape(self, p):
        return p.shape

    def _restore_state(self, p, st, prefix):
        s = st.get("sum")
        shape = self._sum_shape(p)
        if s is not None and s.shape != shape:
            raise ValueError(f"{prefix}sum has shape {s.shape} but {type(self).__name__} keeps "
                             f"shape {shape} for a parameter of shape {p.shape}")
        if s is not None and shape != p.shape:
            if s.dtype.kind != "f":
                raise ValueError(f"{prefix}sum must be floating point, got dtype {s.dtype}")
            out = super()._restore_state(p, {k: v for k, v in st.items() if k != "sum"}, prefix)
            out["sum"] = aligned_zeros(shape, p.state_dtype)
            out["sum"][...] = s
            return out
        return super()._restore_state(p, st, prefix)

    def _update(self, group, p, grad, rows, **form):
        st = self.state.get(p)
        if not st:
            s = aligned_zeros(self._sum_shape(p), p.state_dtype)
            if group["initial_accumulator_value"]:
                s.fill(group["initial_accumulator_value"])
            st = self.state[p] = {"step": 0, "sum": s}
        step = st["step"] + 1
        # torch: clr = lr / (1 + (step - 1) * lr_decay), in double
        clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        use_rows, sparse_form = self._rows(group, rows, "ids" in form)
        if form.get("compact") and use_rows is None:
            grad, form = densify(grad, rows, p.shape), {}
        n = _core.adagrad_step(p.weight, grad, st["sum"], lr=clr, eps=group["eps"],
                               weight_decay=group["weight_decay"],
                               decoupled=group.get("decoupled_weight_decay", False),
                               maximize=group["maximize"], sparse_form=sparse_form,
                               rowwise=self._rowwise, rows=use_rows, frozen=p.frozen,
                               table=p.table, **form,
                               **rounding_args(p, self._stochastic_rounding, self._seed, step))
        if n != 0:  # a backward of padding alone is no step (n is None outside the backward)
            st["step"] = step


class Adagrad(_AdagradBase):
    """Adagrad (Duchi, Hazan & Singer 2011) with torch.optim.Adagrad's names, defaults and
    arithmetic: ``sum += g*g; p -= clr * g / (sqrt(sum) + eps)`` per element, with
    ``clr = lr / (1 + (step - 1) * lr_decay)`` and L2 ``weight_decay`` added to the gradient.
    State per parameter: ``step`` (an int) and ``sum`` (the parameter's shape and dtype).

    Args:
        params: see :mod:`pyembed.optim`.
        lr, lr_decay, weight_decay, initial_accumulator_value, eps, maximize: as torch.
        lazy: update only a table's touched rows with the arithmetic of torch's sparse-gradient
            Adagrad, ``p += -clr * (g / std)`` (torch's dense step rounds ``(-clr * g) / std``;
            torch adds that product with a fused multiply-add, which our kernels never use, so
            the two agree to a rounding per step).
            With ``weight_decay`` the decay reaches the touched rows only (torch refuses weight
            decay with sparse gradients: a deliberate extension).
        in_backward: apply the update inside each table's backward (needs ``lazy``; the tables
            must be Embeddings): no gradient buffer, ``step()`` and ``zero_grad()`` are no-ops,
            the same bits as backward-then-step (:class:`~pyembed.optim.in_backward.InBackward`).
        stochastic_rounding, seed: how a float16 / bfloat16 table's updated rows are rounded
            back (below).

    A float16 / bfloat16 table is trained in float32 (gradient and ``sum`` float32): each
    updated row is widened, updated and rounded back to nearest even, or with
    ``stochastic_rounding=True`` stochastically (unbiased), with random bits that depend only
    on ``seed``, the row, the column and the step being taken: the same bits for any thread
    count.

    Without ``lazy``, a table is updated like torch's dense Adagrad. A row with no gradient
    cannot change then unless there is weight decay (or ``eps == 0``, where torch's dense step
    turns an untouched row whose sum is 0 into NaN), so otherwise only the touched rows are
    visited: the same bits as the dense step, at the cost of the batch. ``foreach`` / ``fused``
    are accepted for torch compatibility and ignored. State is created at a parameter's first
    step (torch creates it in the constructor).

    Example:
        >>> opt = pyembed.optim.Adagrad(emb, lr=1e-2)            # doctest: +SKIP
    """

    _flags = ("maximize", "lazy")

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, foreach: bool | None = None, *, maximize: bool = False,
                 lazy: bool = False, fused: bool | None = None,
                 in_backward: bool = False, stochastic_rounding: bool = False,
                 seed: int = 0) -> None:
        _check_ignored(foreach=foreach, fused=fused)
        self._stochastic_rounding, self._seed = check_rounding(stochastic_rounding, seed)
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps,
                        maximize=maximize, lazy=lazy)
        super().__init__(params, defaults, in_backward)

    def _check_in_backward(self, group):
        if not group["lazy"]:
            raise ValueError("Adagrad(in_backward=True) needs lazy=True: without it a step has "
                             "torch's dense arithmetic and, with weight_decay or eps == 0, "
                             "updates rows the batch does not touch; use lazy=True, or "
                             "in_backward=False (the table with sparse=True keeps no dense "
                             "gradient either)")

    def _rows(self, group, rows, in_bwd=False):
        if group["lazy"] and (rows is not None or in_bwd):
            return rows, True
        if rows is None:
            return None, False
        exact = group["weight_decay"] == 0 and group["eps"] > 0
        return (rows if exact else None), False


class RowWiseAdagrad(_AdagradBase):
    """Row-wise Adagrad exactly as FBGEMM defines it (``EXACT_ROWWISE_ADAGRAD`` of fbgemm_gpu's
    table-batched embeddings; TorchRec's default for embedding tables): one accumulator per row,
    the running sum of the mean of the row's squared gradient, so the state costs one float a
    row instead of a second table. Per touched row::

        g2 = mean((g + wd*p)**2) (L2) or mean(g**2);   sum += g2
        mult = clr / (sqrt(sum) + eps)
        p = corr * p - mult * g,   corr = 1 - mult*wd (L2) | 1 - clr*wd (decoupled) | 1

    Args:
        params: see :mod:`pyembed.optim`. A 2-D parameter (a table, or a 2-D array pair) has one
            accumulator per row; any other array is one row (one accumulator).
        lr, eps: FBGEMM's ``learning_rate`` and ``eps`` (defaults 0.01 and 1e-8, FBGEMM's).
        weight_decay, decoupled_weight_decay: FBGEMM's ``weight_decay`` with
            ``weight_decay_mode`` L2 (the default here) or DECOUPLED.
        lr_decay, initial_accumulator_value, maximize: as torch's Adagrad / TorchRec's
            RowWiseAdagrad (FBGEMM has no lr_decay or maximize; with their defaults the step is
            FBGEMM's).
        in_backward: apply the update inside each table's backward (Embeddings only), as
            :class:`Adagrad`'s ``in_backward``: the same bits as backward-then-step.
        stochastic_rounding, seed: a float16 / bfloat16 table is trained as :class:`Adagrad`
            trains one (the whole row widened to float32, since its mean square comes first).

    A table is always updated on its touched rows only, as FBGEMM's backward does (with weight
    decay, only touched rows decay); an ``(array, grad)`` pair densely. State: ``step`` (an int)
    and ``sum`` of shape ``(rows,)``. The sum of squares is accumulated in double (FBGEMM's CPU
    kernel sums in float, one element after another; its GPU kernel in a warp's order), the rest
    in the table's dtype as FBGEMM writes it.

    Example:
        >>> opt = pyembed.optim.RowWiseAdagrad(emb, lr=0.05)     # doctest: +SKIP
    """

    _flags = ("maximize", "decoupled_weight_decay")
    _rowwise = True

    def __init__(self, params, lr: float = 1e-2, eps: float = 1e-8, weight_decay: float = 0,
                 *, decoupled_weight_decay: bool = False, lr_decay: float = 0,
                 initial_accumulator_value: float = 0, maximize: bool = False,
                 in_backward: bool = False, stochastic_rounding: bool = False,
                 seed: int = 0) -> None:
        self._stochastic_rounding, self._seed = check_rounding(stochastic_rounding, seed)
        defaults = dict(lr=lr, eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, lr_decay=lr_decay,
                        initial_accumulator_value=initial_accumulator_value, maximize=maximize)
        super().__init__(params, defaults, in_backward)

    def _sum_shape(self, p):
        return (p.shape[0],) if len(p.shape) == 2 else (1,)

    def _check_in_backward(self, group):
        pass  # a table's update reaches its touched rows only

    def _rows(self, group, rows, in_bwd=False):
        return rows, False

"""SparseAdam (torch.optim.SparseAdam): lazy Adam with torch's sparse arithmetic."""
from __future__ import annotations

from .._checks import as_float
from .adam import Adam

__all__ = ["SparseAdam"]


class SparseAdam(Adam):
    """Lazy Adam with torch.optim.SparseAdam's semantics and arithmetic: only a table's touched
    rows (duplicate ids already summed by the backward) have their moments and weights
    updated; one step counter per table; ``eps`` is added to ``sqrt(v)`` before the bias
    correction, as torch's SparseAdam does (unlike Adam).

    Beyond torch: ``per_row_step=True`` keeps one step counter per row (exact bias correction
    for rare tokens), and ``(array, grad)`` pairs are accepted and updated densely with the
    same arithmetic (torch's SparseAdam rejects dense gradients). These are deliberate
    deviations. ``in_backward=True``: applied inside each table's backward, as
    :class:`Adam`'s. A table whose touched list is empty is skipped without counting a step
    (torch counts one for a parameter with an empty sparse gradient)."""

    _sparse_form = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, maximize: bool = False, *,
                 per_row_step: bool = False, in_backward: bool = False,
                 stochastic_rounding: bool = False, seed: int = 0) -> None:
        if not 0.0 < as_float("lr", lr):
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < as_float("eps", eps):
            raise ValueError(f"Invalid epsilon value: {eps}")
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=0, amsgrad=False,
                         maximize=maximize, decoupled_weight_decay=False, lazy=True,
                         per_row_step=per_row_step, in_backward=in_backward,
                         stochastic_rounding=stochastic_rounding, seed=seed)

"""clip_grad_norm_ (torch.nn.utils.clip_grad_norm_), over the tables and pairs the optimizers
take; a table's norm is over its touched rows."""
from __future__ import annotations

import math

import numpy as np

from .. import _core
from .._checks import as_float
from ._params import Param, flatten_params

__all__ = ["clip_grad_norm_"]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> float:
    """Scale the gradients so that their joint ``norm_type``-norm is at most ``max_norm``, as
    ``torch.nn.utils.clip_grad_norm_``; returns the total norm before clipping (a float).

    A table's gradient is its touched rows (untouched rows are zero, so the norm is the same
    as over the whole table; cost grows with the batch). Tables without a gradient and
    Embeddings with ``requires_grad=False`` are skipped. Norms are accumulated in double in a
    fixed order: the same bits for every thread count. ``foreach`` is accepted and ignored.
    """
    max_norm = as_float("max_norm", max_norm)
    norm_type = as_float("norm_type", norm_type)
    if not max_norm >= 0:  # NaN would turn every gradient into NaN, -1 flip its sign
        raise ValueError(f"max_norm must be >= 0, got {max_norm}")
    if not norm_type > 0:
        raise ValueError(f"norm_type must be > 0, got {norm_type}")
    items, parts = [], []
    for obj in flatten_params(parameters):
        p = Param(obj)
        if hasattr(p.emb, "step_grad"):
            # its norm is over every rank's rows, and one process's bits would need its order
            raise NotImplementedError(f"clip_grad_norm_ of a {type(p.emb).__name__} (rows on "
                                      f"several processes) is not supported yet")
        if not p.trainable:
            continue
        if getattr(p.emb, "in_backward_hook", None) is not None:
            raise RuntimeError(f"clip_grad_norm_: {p.emb!r} has its optimizer applied in the "
                               f"backward, so there is no gradient to clip; build the optimizer "
                               f"without in_backward (the dense mode) or the table with "
                               f"sparse=True")
        grad, rows = p.grad()
        if grad is None:
            continue
        if p.compact:  # the small table's whole grad, so that scale_grad may write it
            values, rows, table = p.emb.sparse_grad_buffer()
            grad, rows = table.grad, np.arange(rows.size)
            p.table = table
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

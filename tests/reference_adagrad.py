"""NumPy float64 references of Adagrad and row-wise Adagrad, written from the formulas (the tests'
oracle), in reference_optim.py's style: each function takes the state as a dict of float64 arrays
and updates it and p in place.

Adagrad: torch.optim.Adagrad's documented algorithm (Duchi, Hazan & Singer 2011). Row-wise
Adagrad: FBGEMM's EXACT_ROWWISE_ADAGRAD (fbgemm_gpu/codegen/genscript/optimizers.py,
rowwise_adagrad(), split_weight_update_cpu), weight_decay_mode L2 or DECOUPLED.
"""
import numpy as np


def adagrad_state(shape, initial_accumulator_value=0.0):
    return {"step": 0, "sum": np.full(shape, float(initial_accumulator_value))}


def adagrad_step(p, g, st, lr=1e-2, lr_decay=0.0, weight_decay=0.0, eps=1e-10, maximize=False,
                 rows=None):
    """One step on float64 p; rows: update only those rows (lazy)."""
    sel = slice(None) if rows is None else np.asarray(rows)
    g = -g[sel] if maximize else g[sel].copy()
    q = p[sel]
    st["step"] += 1
    clr = lr / (1 + (st["step"] - 1) * lr_decay)
    if weight_decay:
        g = g + weight_decay * q
    s = st["sum"][sel] + g * g
    st["sum"][sel] = s
    p[sel] = q - clr * g / (np.sqrt(s) + eps)


def rowwise_adagrad_step(p, g, st, lr=1e-2, eps=1e-8, weight_decay=0.0, decoupled=False,
                         lr_decay=0.0, maximize=False, rows=None):
    """One step on a float64 (nrows, dim) p; st["sum"] is (nrows,); rows: only those rows."""
    sel = slice(None) if rows is None else np.asarray(rows)
    g = -g[sel] if maximize else g[sel].copy()
    q = p[sel]
    st["step"] += 1
    clr = lr / (1 + (st["step"] - 1) * lr_decay)
    l2 = weight_decay and not decoupled
    gw = g + weight_decay * q if l2 else g
    s = st["sum"][sel] + (gw * gw).mean(axis=1)
    st["sum"][sel] = s
    mult = clr / (np.sqrt(s) + eps)
    if l2:
        corr = 1 - mult * weight_decay
    elif weight_decay:
        corr = np.full_like(mult, 1 - clr * weight_decay)
    else:
        corr = np.ones_like(mult)
    p[sel] = corr[:, None] * q - mult[:, None] * g

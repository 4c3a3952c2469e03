"""NumPy float64 references of the optimizers, written from the formulas (the tests' oracle).

Adam: Kingma & Ba 2015 Algorithm 1 in torch.optim.Adam's arrangement; AdamW: Loshchilov &
Hutter 2019; SparseAdam: torch.optim.SparseAdam; SGD: torch.optim.SGD's documented algorithm.
Each function takes the state as a dict of float64 arrays and updates it in place.
"""
import numpy as np


def adam_state(shape):
    return {"step": 0, "m": np.zeros(shape), "v": np.zeros(shape), "vmax": np.zeros(shape)}


def adam_step(p, g, st, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
              amsgrad=False, maximize=False, decoupled=False, sparse_form=False, rows=None,
              row_step=None):
    """One step on float64 p (in place). rows: update only those rows (lazy); row_step: an
    int array of per-row counters (lazy with per_row_step)."""
    b1, b2 = betas
    sel = slice(None) if rows is None else np.asarray(rows)
    g = -g[sel] if maximize else g[sel].copy()
    q = p[sel]
    if row_step is None:
        st["step"] += 1
        t = np.float64(st["step"])
    else:
        row_step[sel] += 1
        t = row_step[sel].astype(np.float64)[:, None]
    if weight_decay:
        if decoupled:
            q = q * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * q
    m = b1 * st["m"][sel] + (1 - b1) * g
    v = b2 * st["v"][sel] + (1 - b2) * g * g
    st["m"][sel], st["v"][sel] = m, v
    if amsgrad:
        v = np.maximum(st["vmax"][sel], v)
        st["vmax"][sel] = v
    bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
    if sparse_form:
        q = q - lr * np.sqrt(bc2) / bc1 * m / (np.sqrt(v) + eps)
    else:
        q = q - lr / bc1 * m / (np.sqrt(v) / np.sqrt(bc2) + eps)
    p[sel] = q


def sgd_step(p, g, st, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
             maximize=False, rows=None):
    """torch.optim.SGD's algorithm on float64 p (in place); rows: the lazy variant."""
    sel = slice(None) if rows is None else np.asarray(rows)
    g = -g[sel] if maximize else g[sel].copy()
    q = p[sel]
    if weight_decay:
        g = g + weight_decay * q
    if momentum:
        if "buf" not in st:
            st["buf"] = np.zeros(p.shape)
            st["buf"][sel] = g
        else:
            st["buf"][sel] = momentum * st["buf"][sel] + (1 - dampening) * g
        b = st["buf"][sel]
        g = g + momentum * b if nesterov else b
    p[sel] = q - lr * g

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
from ._core import Table

__all__ = ["Optimizer", "Adam", "AdamW", "SparseAdam", "SGD", "clip_grad_norm_"]


def _aligned_zeros(shape, dtype):
    """Zeros in 64-byte aligned memory (whole cache lines, full-width vector loads). np.zeros
    is calloc underneath, so the pages of a huge moment buffer cost nothing until a row is used."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buf = np.zeros(nbytes + 64, np.uint8)
    off = (-buf.ctypes.data) % 64
    return buf[off:off + nbytes].view(dtype).reshape(shape)


def _is_pair(obj):
    return (isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], np.ndarray)
            and isinstance(obj[1], np.ndarray))


def _is_single(obj):
    return isinstance(obj, Table) or isinstance(getattr(obj, "table", None), Table) or _is_pair(obj)


def _flatten(params):
    """One Embedding / Table / pair, an object with .parameters(), or an iterable of those."""
    if _is_single(params):
        return [params]
    if isinstance(params, np.ndarray):
        raise TypeError("a bare array has no gradient: pass (array, grad_array) pairs")
    if hasattr(params, "parameters") and callable(params.parameters):
        return _flatten(list(params.parameters()))
    try:
        items = list(params)
    except TypeError:
        raise TypeError(f"params must be an Embedding, a Table, an (array, grad) pair or an "
                        f"iterable of them, got {type(params).__name__}") from None
    out = []
    for obj in items:
        if _is_single(obj):
            out.append(obj)
        elif hasattr(obj, "parameters") and callable(obj.parameters):
            out.extend(_flatten(list(obj.parameters())))
        else:
            raise TypeError(f"cannot optimize a {type(obj).__name__}: pass Embeddings, Tables or "
                            f"(array, grad_array) pairs")
    return out


class _Param:
    """One parameter: a Table (maybe inside an Embedding) or an (array, grad_array) pair."""

    __slots__ = ("obj", "table", "emb", "array", "grad_array")

    def __init__(self, obj):
        self.obj = obj
        self.table = self.emb = self.array = self.grad_array = None
        if isinstance(obj, Table):
            self.table = obj
        elif _is_pair(obj):
            w, g = obj
            if w.dtype not in (np.float32, np.float64):
                raise ValueError(f"parameter arrays must be float32 or float64, got {w.dtype}")
            if not (w.flags.c_contiguous and w.flags.writeable and w.flags.aligned):
                raise ValueError("a parameter array must be C-contiguous, aligned and writeable "
                                 "(it is updated in place)")
            if g.dtype != w.dtype or g.shape != w.shape:
                raise ValueError(f"grad array has dtype {g.dtype} and shape {g.shape} but the "
                                 f"parameter has {w.dtype} and {w.shape}")
            if not (g.flags.c_contiguous and g.flags.aligned):
                raise ValueError("a grad array must be C-contiguous and aligned")
            if np.shares_memory(w, g):
                raise ValueError("a parameter array and its grad array share memory")
            self.array, self.grad_array = w, g
        else:
            self.emb = obj
            self.table = obj.table

    @property
    def weight(self):
        return self.table.weight if self.table is not None else self.array

    @property
    def shape(self):
        return tuple(self.table.shape) if self.table is not None else self.array.shape

    @property
    def dtype(self):
        return self.table.dtype if self.table is not None else self.array.dtype

    @property
    def trainable(self):
        return self.emb is None or bool(getattr(self.emb, "requires_grad", True))

    @property
    def frozen(self):
        return getattr(self.emb, "_frozen_rows", None) if self.emb is not None else None

    def grad(self):
        """(grad, touched rows) or (None, None) when there is nothing to apply."""
        if self.table is None:
            return self.grad_array, None
        g = self.table.grad
        if g is None or self.table.num_touched == 0:
            return None, None
        return g, self.table.touched

    def zero_grad(self):
        if self.table is not None:
            self.table.zero_grad()
        else:
            self.grad_array.fill(0)

    def key(self):
        return id(self.table) if self.table is not None else id(self.array)

    def __repr__(self):
        return f"<param {self.obj!r}>" if self.table is not None else \
            f"<param array {self.array.shape} {self.array.dtype}>"


class _State(dict):
    """``opt.state``: per-parameter state dicts, indexable by the Embedding / Table / pair itself
    (``opt.state[emb]["exp_avg"]``) as in torch."""

    def __missing__(self, key):
        if not isinstance(key, _Param) and _is_single(key):
            k = _Param(key).key()
            for p, v in self.items():
                if p.key() == k:
                    return v
        raise KeyError(key)


def _float(name, v):
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be a number, got a bool")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {type(v).__name__}") from None


class Optimizer:
    """Base class with torch.optim.Optimizer's interface: ``param_groups`` (list of dicts, options
    changeable between steps, e.g. ``opt.param_groups[0]["lr"] = 1e-4`` for a schedule),
    ``state``, ``step()``, ``zero_grad()``, ``state_dict()``, ``load_state_dict()``,
    ``add_param_group()``."""

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = _State()
        self.param_groups = []
        if isinstance(params, dict):
            groups = [params]
        elif _is_single(params) or isinstance(params, np.ndarray):
            groups = [{"params": params}]
        else:
            items = list(params) if not hasattr(params, "parameters") else [params]
            if not items:
                raise ValueError("optimizer got an empty parameter list")
            if all(isinstance(g, dict) for g in items):
                groups = items
            elif any(isinstance(g, dict) for g in items):
                raise TypeError("params must be all param-group dicts or no dicts")
            else:
                groups = [{"params": items}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, param_group):
        """Add a group: a dict with ``"params"`` and any options (the rest from the defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        if "params" not in group:
            raise ValueError("param_group must have a 'params' entry")
        params = [_Param(o) for o in _flatten(group["params"])]
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        seen = {p.key() for g in self.param_groups for p in g["params"]}
        keys = [p.key() for p in params]
        if len(set(keys)) != len(keys) or seen.intersection(keys):
            raise ValueError("some parameters appear more than once (in one or several groups)")
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise TypeError(f"unknown option(s) {sorted(unknown)} for {type(self).__name__}")
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self._check_group(group)
        group["params"] = params
        self.param_groups.append(group)

    def _check_group(self, group):
        raise NotImplementedError

    def zero_grad(self, set_to_none=True):
        """Clear the gradients: a table's touched rows (cost grows with the batch), or fill a grad
        array with zeros (``set_to_none`` is accepted for torch's signature; an array pair
        cannot be set to None)."""
        for g in self.param_groups:
            for p in g["params"]:
                p.zero_grad()

    def step(self, closure=None):
        """One update of every parameter that has a gradient. ``closure``, if given, is called
        first and its result returned (torch's signature)."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            self._check_group(group)  # options may have been changed since the last step
            for p in group["params"]:
                if not p.trainable:
                    continue
                grad, rows = p.grad()
                if grad is None:
                    continue
                self._update(group, p, grad, rows)
        return loss

    def _update(self, group, p, grad, rows):
        raise NotImplementedError

    # -- state_dict ----------------------------------------------------------------------------
    def state_dict(self):
        """A flat dict of NumPy arrays, ready for ``np.savez(path, **opt.state_dict())``:

        - ``"param_groups.<g>.params"``: int64 indices of the group's parameters (in order);
        - ``"param_groups.<g>.<option>"``: each option (``lr``, ``betas``, ...) as an array;
        - ``"state.<i>.<name>"``: the i-th parameter's state (``step``, ``exp_avg``, ...).

        As in torch, the state arrays are the optimizer's own buffers, not copies: copy them
        (or save them) before stepping again if you keep them.
        """
        out = {"optimizer": np.array(type(self).__name__)}
        index = {}
        for gi, group in enumerate(self.param_groups):
            ids = []
            for p in group["params"]:
                index[p] = len(index)
                ids.append(index[p])
            out[f"param_groups.{gi}.params"] = np.array(ids, np.int64)
            for k, v in group.items():
                if k != "params":
                    out[f"param_groups.{gi}.{k}"] = np.asarray(v)
        for p, st in self.state.items():
            for k, v in st.items():
                if v is not None:
                    out[f"state.{index[p]}.{k}"] = np.asarray(v)
        return out

    def load_state_dict(self, state_dict):
        """Load what :meth:`state_dict` returned (a dict, or the ``np.load`` of a saved ``.npz``).
        Everything is checked first (group count and sizes, each state array's shape); on error
        a ValueError is raised and the optimizer is unchanged. Arrays are copied in."""
        sd = {k: state_dict[k] for k in state_dict.keys()}
        ng = sum(1 for k in sd if k.startswith("param_groups.") and k.endswith(".params"))
        if ng != len(self.param_groups):
            raise ValueError(f"loaded state dict has {ng} parameter groups but the optimizer "
                             f"has {len(self.param_groups)}")
        new_groups, params = [], []
        for gi, group in enumerate(self.param_groups):
            ids = np.asarray(sd[f"param_groups.{gi}.params"]).ravel()
            if len(ids) != len(group["params"]):
                raise ValueError(f"loaded parameter group {gi} has {len(ids)} parameters but the "
                                 f"optimizer's has {len(group['params'])}")
            ng_ = dict(group)
            for k, cur in group.items():
                name = f"param_groups.{gi}.{k}"
                if k == "params" or name not in sd:
                    continue
                ng_[k] = _restore(np.asarray(sd[name]), cur, name)
            self._check_group(ng_)
            new_groups.append(ng_)
            params.extend(zip(ids.tolist(), group["params"]))
        new_state = {}
        for i, p in params:
            prefix = f"state.{i}."
            st = {k[len(prefix):]: np.asarray(v) for k, v in sd.items() if k.startswith(prefix)}
            if st:
                new_state[p] = self._restore_state(p, st, prefix)
        self.param_groups[:] = new_groups
        self.state = _State(new_state)

    def _restore_state(self, p, st, prefix):
        out = {}
        for k, v in st.items():
            if k == "step":
                if v.ndim == 0:
                    out[k] = int(v)
                elif v.shape == (p.shape[0],):
                    s = np.zeros(p.shape[0], np.int64)
                    s[...] = v
                    out[k] = s
                else:
                    raise ValueError(f"{prefix}step has shape {v.shape}; expected () or "
                                     f"({p.shape[0]},)")
            elif k == "first":
                out[k] = bool(v)
            else:
                if v.shape != p.shape:
                    raise ValueError(f"{prefix}{k} has shape {v.shape} but the parameter has "
                                     f"shape {p.shape}")
                a = _aligned_zeros(p.shape, p.dtype)
                a[...] = v
                out[k] = a
        return out

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        lines.append(")")
        return "\n".join(lines)


def _restore(arr, cur, name):
    if isinstance(cur, bool):
        return bool(arr)
    if isinstance(cur, tuple):
        return tuple(float(x) for x in arr.ravel())
    if isinstance(cur, int):
        return int(arr)
    if isinstance(cur, float):
        return float(arr)
    raise ValueError(f"cannot restore option {name}")


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
        row_step = step if isinstance(step, np.ndarray) else None
        if (row_step is not None) != per_row:
            raise ValueError("per_row_step (and lazy) cannot change after a parameter's first "
                             "step: its state has " + ("per-row" if row_step is not None else
                                                        "one") + " step counter(s)")
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

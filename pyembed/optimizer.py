"""pyembed.optimizer: the Optimizer base class that every algorithm in pyembed.optim builds on.

With torch.optim.Optimizer's interface, it turns ``params`` (Embeddings, Tables,
``(array, grad_array)`` pairs, objects with ``.parameters()``, param-group dicts) into checked
parameters, keeps ``param_groups`` and ``state``, runs the step loop (skipping what has no
gradient), and saves and restores ``state_dict``. An algorithm (pyembed.optim) subclasses
:class:`Optimizer` and supplies ``_check_group`` (validate and normalise a group's options) and
``_update`` (one parameter's step).
"""
import numpy as np

from ._core import Table

__all__ = ["Optimizer"]


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
        raise TypeError(f"{name} must be a number, got a bool ({v!r})")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {str(repr(v))[:80]} "
                        f"({type(v).__name__})") from None


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
        # options may have been changed since the last step: check every group (and every
        # state it will use) before the first update, so that a bad one changes nothing
        checked = []
        for gi, group in enumerate(self.param_groups):
            g = dict(group)
            self._check_group(g)
            for p in g["params"]:
                if self.state.get(p):
                    self._check_state(g, p, self.state[p], f"state of param_groups[{gi}]: ")
            checked.append(g)
        for group, g in zip(self.param_groups, checked):
            group.update(g)
        for group in self.param_groups:
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

    # the state keys an algorithm's step needs (all present, or the parameter has no state)
    # and those it creates when missing
    _required_state = ()
    _optional_state = ()

    def _check_state(self, group, p, st, where):
        """Raise ValueError if the next step with ``group`` cannot use ``p``'s state ``st``;
        ``where`` starts the message. The base checks the keys."""
        missing = [k for k in self._required_state if k not in st]
        unknown = sorted(set(st) - set(self._required_state) - set(self._optional_state))
        if missing or unknown:
            raise ValueError(f"{where}{type(self).__name__} state needs "
                             f"{list(self._required_state)} (optional "
                             f"{list(self._optional_state)}), got {sorted(st)}")

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
        Everything the next :meth:`step` will use is checked first: the optimizer's name, the
        group count and sizes, each group's options, parameter indices (distinct, in range),
        state keys, each state array's shape and dtype, step counters (integers >= 0). On error
        a ValueError naming the entry is raised and the optimizer is unchanged. Arrays are
        copied in."""
        try:
            sd = {k: state_dict[k] for k in state_dict.keys()}
        except (AttributeError, TypeError, KeyError) as e:
            raise ValueError(f"state_dict must be a mapping (what state_dict() returned), got "
                             f"{type(state_dict).__name__}: {e}") from None
        name = sd.get("optimizer")
        if name is not None and str(np.asarray(name)) != type(self).__name__:
            raise ValueError(f"state_dict['optimizer'] is {str(np.asarray(name))!r}: the state of "
                             f"another optimizer cannot be loaded into {type(self).__name__}")
        ng = sum(1 for k in sd if k.startswith("param_groups.") and k.endswith(".params"))
        if ng != len(self.param_groups):
            raise ValueError(f"loaded state dict has {ng} parameter groups but the optimizer "
                             f"has {len(self.param_groups)}")
        new_groups, params, known = [], [], {"optimizer"}
        n_params = sum(len(g["params"]) for g in self.param_groups)
        for gi, group in enumerate(self.param_groups):
            key = f"param_groups.{gi}.params"
            ids = np.asarray(sd.get(key, np.zeros(0, np.int64))).ravel()
            if key not in sd or ids.dtype.kind not in "iu" and ids.size:
                raise ValueError(f"{key} must be integer parameter indices (one entry per "
                                 f"group), got {sd.get(key)!r}")
            if len(ids) != len(group["params"]):
                raise ValueError(f"loaded parameter group {gi} has {len(ids)} parameters but the "
                                 f"optimizer's has {len(group['params'])}")
            bad = [int(i) for i in ids if not 0 <= int(i) < n_params]
            if bad:
                raise ValueError(f"{key} has index {bad[0]}, beyond the optimizer's {n_params} "
                                 f"parameters")
            ng_ = dict(group)
            for k, cur in group.items():
                name = f"param_groups.{gi}.{k}"
                known.add(name)
                if k == "params" or name not in sd:
                    continue
                try:
                    ng_[k] = _restore(np.asarray(sd[name]), cur, name)
                except (TypeError, ValueError, OverflowError) as e:
                    raise ValueError(f"{name} = {sd[name]!r} cannot be loaded: {e}") from None
            try:
                self._check_group(ng_)
            except TypeError as e:
                raise ValueError(f"param_groups.{gi}: {e}") from None
            new_groups.append(ng_)
            params.extend((int(i), p, ng_) for i, p in zip(ids, group["params"]))
        index = [i for i, _, _ in params]
        if len(set(index)) != len(index):
            raise ValueError(f"the parameter indices of the loaded groups repeat: {index}")
        prefixes = tuple(f"state.{i}." for i in index)
        unknown = sorted(k for k in sd if k not in known and not k.startswith(prefixes))
        if unknown:
            raise ValueError(f"state_dict has entries this optimizer does not know (an unknown "
                             f"parameter index or option?): {unknown[:5]}")
        new_state = {}
        for i, p, g in params:
            prefix = f"state.{i}."
            st = {k[len(prefix):]: np.asarray(v) for k, v in sd.items() if k.startswith(prefix)}
            if st:
                new_state[p] = self._restore_state(p, st, prefix)
                self._check_state(g, p, new_state[p], prefix)
        self.param_groups[:] = new_groups
        self.state = _State(new_state)

    def _restore_state(self, p, st, prefix):
        out = {}
        for k, v in st.items():
            if k == "step":
                # the kernels count in int64 and take step + 1
                if v.dtype.kind not in "iu" or v.size and not (
                        int(v.min()) >= 0 and int(v.max()) < 2**63 - 1):
                    raise ValueError(f"{prefix}step must be integers in [0, 2**63 - 1), got "
                                     f"{v!r}")
                if v.ndim == 0:
                    out[k] = int(v)
                elif v.shape == (p.shape[0],):
                    s = np.zeros(p.shape[0], np.int64)
                    s[...] = v
                    out[k] = s
                else:
                    raise ValueError(f"{prefix}step has shape {v.shape}; expected () or "
                                     f"({p.shape[0]},)")
            else:
                if v.shape != p.shape:
                    raise ValueError(f"{prefix}{k} has shape {v.shape} but the parameter has "
                                     f"shape {p.shape}")
                if v.dtype.kind != "f":
                    raise ValueError(f"{prefix}{k} must be floating point, got dtype {v.dtype}")
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

"""pyembed.optim.optimizer: the Optimizer base class every algorithm in pyembed.optim builds on.

With torch.optim.Optimizer's interface, it turns ``params`` (Embeddings, Tables,
``(array, grad_array)`` pairs, objects with ``.parameters()``, param-group dicts) into checked
parameters, keeps ``param_groups`` and ``state``, runs the step loop (skipping what has no
gradient), and saves and restores ``state_dict``. An algorithm (pyembed.optim) subclasses
:class:`Optimizer` and supplies ``_check_group`` (validate and normalise a group's options) and
``_update`` (one parameter's step).
"""
from __future__ import annotations

import functools
import itertools
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._params import Param, aligned_zeros, flatten_params, is_single
from .in_backward import InBackward

__all__ = ["Optimizer", "RemovableHandle"]

class RemovableHandle:
    """What the ``register_*_hook`` methods return (torch.utils.hooks.RemovableHandle's
    interface): ``remove()`` unregisters the hook; usable as a context manager."""

    _next_id = itertools.count()

    def __init__(self, hooks: OrderedDict) -> None:
        self.hooks = hooks
        self.id = next(RemovableHandle._next_id)

    def remove(self) -> None:
        self.hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _register(hooks, hook, prepend=False):
    if not callable(hook):
        raise TypeError(f"hook must be callable, got {hook!r} ({type(hook).__name__})")
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    if prepend:
        hooks.move_to_end(handle.id, last=False)
    return handle


def _with_step_hooks(step):
    """Run the step pre- and post-hooks around ``step`` as torch's Optimizer does: each hook
    gets (optimizer, args, kwargs), ``args`` starting with the optimizer itself; a pre-hook may
    return new ``(args, kwargs)`` for the step."""
    @functools.wraps(step)
    def wrapper(*args, **kwargs):
        self = args[0]
        for hook in list(self._step_pre_hooks.values()):
            result = hook(self, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(f"{step} must return None or a tuple of (new_args, "
                                       f"new_kwargs), but got {result}.")
                args, kwargs = result
        out = step(*args, **kwargs)
        for hook in list(self._step_post_hooks.values()):
            hook(self, args, kwargs)
        return out
    return wrapper


class _State(dict):
    """``opt.state``: per-parameter state dicts, indexable by the Embedding / Table / pair itself
    (``opt.state[emb]["exp_avg"]``) as in torch."""

    def __setitem__(self, key, value):
        # ``opt.state[emb] = {...}`` (e.g. moments in memmaps: Embedding.from_memmap) is the
        # state of the parameter the optimizer holds for emb (Params compare by their table)
        super().__setitem__(key if isinstance(key, Param) or not is_single(key) else Param(key),
                            value)

    def __missing__(self, key):
        if not isinstance(key, Param) and is_single(key):
            k = Param(key).key()
            for p, v in self.items():
                if p.key() == k:
                    return v
        raise KeyError(key)

    def get(self, key, default=None):
        # dict.get skips __missing__: opt.state.get(emb) would never find emb's state
        try:
            return self[key]
        except KeyError:
            return default


class Optimizer:
    """Base class with torch.optim.Optimizer's interface: ``param_groups`` (list of dicts, options
    changeable between steps, e.g. ``opt.param_groups[0]["lr"] = 1e-4`` for a schedule),
    ``state``, ``step()``, ``zero_grad()``, ``state_dict()``, ``load_state_dict()``,
    ``add_param_group()``."""

    # True once in_backward=True attached it to its tables (the constructor's in_backward)
    in_backward = False

    def __init__(self, params, defaults: dict, in_backward: bool = False) -> None:
        # the options first: a bad one is reported even when params are bad too
        self._check_group(dict(defaults))
        self.defaults = dict(defaults)
        self.state = _State()
        self._step_pre_hooks = OrderedDict()
        self._step_post_hooks = OrderedDict()
        self._state_dict_pre_hooks = OrderedDict()
        self._state_dict_post_hooks = OrderedDict()
        self._load_state_dict_pre_hooks = OrderedDict()
        self._load_state_dict_post_hooks = OrderedDict()
        self.param_groups = []
        if isinstance(params, dict):
            groups = [params]
        elif is_single(params) or isinstance(params, np.ndarray):
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
        self._attach_in_backward(in_backward)

    def add_param_group(self, param_group: dict) -> None:
        """Add a group: a dict with ``"params"`` and any options (the rest from the defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        if "params" not in group:
            raise ValueError("param_group must have a 'params' entry")
        params = [Param(o) for o in flatten_params(group["params"])]
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        seen = {p.key() for g in self.param_groups for p in g["params"]}
        keys = [p.key() for p in params]
        if len(set(keys)) != len(keys) or seen.intersection(keys):
            raise ValueError("some parameters appear more than once (in one or several groups)")
        for k in self._ignored_options:
            v = group.pop(k, None)
            if v is not None and not isinstance(v, bool):
                raise TypeError(f"{k} must be None or a bool, got {v!r}")
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise TypeError(f"unknown option(s) {sorted(unknown)} for {type(self).__name__}")
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self._check_group(group)
        group["params"] = params
        if self.in_backward:
            self._attach(group)
        self.param_groups.append(group)

    # -- in the backward ---------------------------------------------------------------------
    def _check_in_backward(self, group):
        """Raise ValueError when ``group``'s update cannot run in the backward (it reaches rows
        the batch does not touch)."""
        raise ValueError(f"{type(self).__name__} cannot run in the backward")

    def _attach(self, group, dry=False):
        """Make each table of ``group`` apply this optimizer in its backward (with ``dry``,
        only check that it can); everything is checked before the first table changes."""
        self._check_in_backward(group)
        for p in group["params"]:
            if p.emb is None or not hasattr(p.emb, "in_backward_hook"):
                raise TypeError(f"in_backward=True needs Embeddings (Embedding, EmbeddingBag, the "
                                f"tables of an InputEmbedding), got {p!r}: a Table or an (array, "
                                f"grad) pair has no backward to run in")
            if p.emb.in_backward_hook is not None:
                raise ValueError(f"{p.emb!r} already has an optimizer applied in its backward")
            if p.table.num_touched or p.emb.sparse_grad_buffer() is not None:
                raise ValueError(f"{p.emb!r} holds a gradient: zero_grad() it before attaching "
                                 f"an optimizer that runs in the backward")
        for p in group["params"] if not dry else ():
            p.emb.in_backward_hook = InBackward(type(self).__name__, group,
                                                functools.partial(self._step_in_backward, p))

    def _step_in_backward(self, p, group, grad, rows, **form):
        """One table's step from inside its backward (InBackward's ``run``): the group (and the
        state it will use) checked first, as :meth:`step` does, then :meth:`_update`."""
        g = dict(group)
        self._check_group(g)
        st = self.state.get(p)
        if st:
            self._check_state(g, p, st, "state: ")
        group.update(g)
        self._update(group, p, grad, rows, **form)

    def _attach_in_backward(self, in_backward):
        """``in_backward=True`` (an algorithm that supports it passes its constructor's
        argument on and defines ``_check_in_backward``): from now on each table's backward
        applies the update (:class:`InBackward`); step() and zero_grad() are no-ops."""
        if not isinstance(in_backward, (bool, np.bool_)):
            raise TypeError(f"in_backward must be a bool, got {in_backward!r}")
        if not in_backward:
            return
        for group in self.param_groups:  # all checked before any table is attached
            self._attach(group, dry=True)
        self.in_backward = True
        for group in self.param_groups:
            self._attach(group)

    # constructor options accepted (in a group too) for torch's signature and then dropped:
    # every update is one fused C pass whatever they say
    _ignored_options = ()

    def _check_group(self, group):
        raise NotImplementedError

    def _check_distinct(self):
        """torch refuses a parameter in two groups; a group appended to ``param_groups`` by hand
        (not through :meth:`add_param_group`) can still repeat one."""
        keys = [p.key() for g in self.param_groups for p in g["params"]]
        if len(set(keys)) != len(keys):
            raise ValueError("some parameters appear in more than one parameter group (a group "
                             "was added to param_groups twice?)")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients: a table's touched rows (cost grows with the batch), or fill a grad
        array with zeros (``set_to_none`` is accepted for torch's signature; an array pair
        cannot be set to None). A no-op with ``in_backward``: there is no gradient."""
        if self.in_backward:
            return
        for g in self.param_groups:
            for p in g["params"]:
                p.zero_grad()

    # -- hooks (torch.optim.Optimizer's) ----------------------------------------------------------
    def register_step_pre_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(optimizer, args, kwargs) -> None or (new_args, new_kwargs)``, called before
        each :meth:`step` (``args`` starts with the optimizer)."""
        return _register(self._step_pre_hooks, hook)

    def register_step_post_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(optimizer, args, kwargs) -> None``, called after each :meth:`step`."""
        return _register(self._step_post_hooks, hook)

    def register_state_dict_pre_hook(self, hook: Callable,
                                     prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer) -> None``, called before :meth:`state_dict` builds the dict;
        ``prepend`` runs it before the hooks already registered."""
        return _register(self._state_dict_pre_hooks, hook, prepend)

    def register_state_dict_post_hook(self, hook: Callable,
                                      prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer, state_dict) -> state_dict or None``, called on the dict
        :meth:`state_dict` built; a returned dict replaces it."""
        return _register(self._state_dict_post_hooks, hook, prepend)

    def register_load_state_dict_pre_hook(self, hook: Callable,
                                          prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer, state_dict) -> state_dict or None``, called on a shallow copy of
        the dict given to :meth:`load_state_dict` before it is checked; a returned dict is
        loaded instead."""
        return _register(self._load_state_dict_pre_hooks, hook, prepend)

    def register_load_state_dict_post_hook(self, hook: Callable,
                                           prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer) -> None``, called after :meth:`load_state_dict` loaded."""
        return _register(self._load_state_dict_post_hooks, hook, prepend)

    @_with_step_hooks
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient. ``closure``, if given, is called
        first and its result returned (torch's signature)."""
        loss = closure() if closure is not None else None
        if self.in_backward:  # the backward did the update; the next backward may come
            for group in self.param_groups:
                for p in group["params"]:
                    p.emb.in_backward_hook.pending = False
            return loss
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
                if p.compact:
                    self._update(group, p, grad, rows, compact=True)
                else:
                    self._update(group, p, grad, rows)
        return loss

    def _update(self, group, p, grad, rows, **form):
        """One parameter's step. ``form``: nothing (``grad`` as the parameter), ``compact=True``
        (``grad[i]`` is ``rows[i]``'s, an Embedding(sparse=True)'s gradient) or the in-backward
        form (``ids``, ``padding_idx``, ``scale_grad_by_freq``; ``grad`` is the lookup's
        grad_output), all passed on to the kernel."""
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
    def state_dict(self) -> dict[str, np.ndarray]:
        """A flat dict of NumPy arrays, ready for ``np.savez(path, **opt.state_dict())``:

        - ``"param_groups.<g>.params"``: int64 indices of the group's parameters (in order);
        - ``"param_groups.<g>.<option>"``: each option (``lr``, ``betas``, ...) as an array;
        - ``"state.<i>.<name>"``: the i-th parameter's state (``step``, ``exp_avg``, ...).

        As in torch, the state arrays are the optimizer's own buffers, not copies: copy them
        (or save them) before stepping again if you keep them.
        """
        for hook in list(self._state_dict_pre_hooks.values()):
            hook(self)
        self._check_distinct()
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
        for hook in list(self._state_dict_post_hooks.values()):
            result = hook(self, out)
            if result is not None:
                out = result
        return out

    def load_state_dict(self, state_dict: Mapping[str, ArrayLike]) -> None:
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
        for hook in list(self._load_state_dict_pre_hooks.values()):
            result = hook(self, sd)
            if result is not None:
                sd = dict(result)
        self._check_distinct()
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
            # what a scheduler wrote into the saved groups (initial_lr, OneCycleLR's max_lr,
            # ...) is loaded as torch loads it, even before the scheduler is created again
            for name in sorted(k for k in sd if k.startswith(f"param_groups.{gi}.")):
                v = np.asarray(sd[name])
                k = name[len(f"param_groups.{gi}."):]
                if name not in known and k in _SCHEDULER_KEYS and v.ndim == 0 and \
                        v.dtype.kind in "iuf":
                    ng_[k] = float(v)
                    known.add(name)
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
        for g in self.param_groups if self.in_backward else ():
            for p in g["params"]:  # the tables' links follow the new group dicts
                p.emb.in_backward_hook.group = g
        for hook in list(self._load_state_dict_post_hooks.values()):
            hook(self)

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
                a = aligned_zeros(p.shape, p.state_dtype)
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


# the group entries pyembed.optim.lr_scheduler adds
_SCHEDULER_KEYS = ("initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum")


def _restore(arr, cur, name):
    if isinstance(cur, bool):
        # bool of any non-empty str is True: only a saved bool (or 0 / 1) is one
        if np.ndim(arr) or np.asarray(arr).dtype.kind not in "bui" or int(arr) not in (0, 1):
            raise TypeError(f"{name} must be a bool, got {str(repr(arr))[:80]}")
        return bool(arr)
    if isinstance(cur, tuple):
        return tuple(float(x) for x in arr.ravel())
    if isinstance(cur, int):
        return int(arr)
    if isinstance(cur, float):
        return float(arr)
    raise ValueError(f"cannot restore option {name}")

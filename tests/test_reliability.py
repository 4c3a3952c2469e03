"""Issue 11, Python side: state saved for a backward is private, and a call that raises has
changed nothing (tables and optimizer state compared bit for bit before and after)."""
import re

import numpy as np
import pytest

import pyembed


def _snapshot(*objs):
    """Bytes of every table weight and gradient in objs, to compare bit for bit."""
    out = []
    for o in objs:
        out.append(o.weight.tobytes())
        out.append(None if o.grad is None else o.grad.tobytes())
    return out


# -- 1. forward state is a private copy ----------------------------------------------------------
@pytest.mark.parametrize("two_d", [False, True])
def test_bag_backward_ignores_ids_changed_after_forward(two_d):
    ids = np.array([1, 2, 4, 5, 4, 3, 2, 9])
    offsets = None if two_d else [0, 4]
    if two_d:
        ids = ids.reshape(2, 4)
    # the table's dtype (float32): another dtype is refused, as torch refuses it
    psw = np.linspace(0.5, 2.0, ids.size, dtype=np.float32).reshape(ids.shape)
    a = pyembed.EmbeddingBag(10, 3, "sum", seed=0)
    b = pyembed.EmbeddingBag(10, 3, "sum", seed=0)
    g = np.arange(6, dtype=np.float32).reshape(2, 3)
    a(ids.copy(), offsets, per_sample_weights=psw.copy())
    want = a.backward(g)
    mine, mine_w = ids.copy(), psw.copy()
    b(mine, offsets, per_sample_weights=mine_w)
    mine[...] = 7          # a data loader refilling its batch buffer
    mine_w[...] = 100.0
    got = b.backward(g)
    assert np.array_equal(b.grad, a.grad) and np.array_equal(b.touched, a.touched)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_bag_backward_ignores_ids_changed_after_forward_modes(mode):
    ids = np.array([1, 2, 4, 5, 4, 3, 2, 9])
    a = pyembed.EmbeddingBag(10, 3, mode, seed=0, scale_grad_by_freq=mode != "max")
    b = pyembed.EmbeddingBag(10, 3, mode, seed=0, scale_grad_by_freq=mode != "max")
    g = np.ones((2, 3), np.float32)
    a(ids.copy(), [0, 4])
    a.backward(g)
    mine = ids.copy()
    b(mine, [0, 4])
    mine[:] = 7
    b.backward(g)
    assert np.array_equal(b.grad, a.grad)


# -- 2. max_norm renormalises only after every argument is checked -------------------------------
BAD_BAGS = [
    ("offsets[0]", dict(ids=[1, 2, 3], offsets=[1, 2])),
    ("nondecreasing", dict(ids=[1, 2, 3], offsets=[0, 2, 1])),
    ("beyond", dict(ids=[1, 2, 3], offsets=[0, 5], include_last_offset=True)),
    ("mode='sum'", dict(ids=[1, 2, 3], offsets=[0], per_sample_weights=[1.0, 2.0, 3.0],
                        mode="mean")),
    ("shape", dict(ids=[1, 2, 3], offsets=[0], per_sample_weights=[1.0, 2.0])),
    ("real numbers", dict(ids=[1, 2, 3], offsets=[0], per_sample_weights=[1j, 2j, 3j])),
    ("out of range", dict(ids=[1, 2, 30], offsets=[0])),
    ("integers", dict(ids=[1.0, 2.0], offsets=[0])),
]


@pytest.mark.parametrize("match,case", BAD_BAGS, ids=[c[0] for c in BAD_BAGS])
def test_bag_max_norm_bad_call_changes_nothing(match, case):
    case = dict(case)
    bag = pyembed.EmbeddingBag(10, 4, case.pop("mode", "sum"), max_norm=0.1, seed=0)
    before = _snapshot(bag)
    with pytest.raises((ValueError, TypeError, IndexError), match=re.escape(match)):
        bag(case.pop("ids"), **case)
    assert _snapshot(bag) == before


def test_embedding_max_norm_bad_out_changes_nothing():
    emb = pyembed.Embedding(10, 4, max_norm=0.1, seed=0)
    before = _snapshot(emb)
    with pytest.raises(ValueError):
        emb([1, 2], out=np.empty((3, 4), np.float32))
    with pytest.raises(IndexError):
        emb([1, 2, 10])
    assert _snapshot(emb) == before


# -- 3. optimizers: every group and every loaded entry is checked before anything changes ----------
def _opt_snapshot(opt):
    sd = opt.state_dict()
    tables = [p.weight.tobytes() for g in opt.param_groups for p in g["params"]]
    return ({k: (v.dtype.str, v.shape, v.tobytes()) for k, v in sd.items()}, tables,
            repr(opt))


def _trained(cls, n=2, steps=2, **kw):
    embs = [pyembed.Embedding(6, 3, seed=i) for i in range(n)]
    opt = cls([{"params": [e]} for e in embs], lr=0.1, **kw)
    for _ in range(steps):
        for e in embs:
            e.backward([1, 4, 4], np.ones((3, 3), np.float32))
        opt.step()
    for e in embs:  # a pending gradient for the failing step
        e.backward([2, 4], np.ones((2, 3), np.float32))
    return embs, opt


OPTS = [(pyembed.optim.Adam, {}), (pyembed.optim.AdamW, {}), (pyembed.optim.SparseAdam, {}),
        (pyembed.optim.SGD, dict(momentum=0.9)), (pyembed.optim.SGD, {}),
        (pyembed.optim.Adam, dict(lazy=True, per_row_step=True))]


@pytest.mark.parametrize("cls,kw", OPTS)
@pytest.mark.parametrize("option,value", [("lr", float("nan")), ("lr", -1.0), ("lr", "x"),
                                          ("weight_decay", float("nan"))])
def test_step_with_a_bad_second_group_changes_nothing(cls, kw, option, value):
    embs, opt = _trained(cls, **kw)
    if option not in opt.param_groups[1]:
        pytest.skip(f"{cls.__name__} has no {option}")
    opt.param_groups[1][option] = value
    before = _snapshot(*embs), _opt_snapshot(opt)
    with pytest.raises((ValueError, TypeError), match=option.replace("_", "[_ ]") + "|learning"):
        opt.step()
    assert (_snapshot(*embs), _opt_snapshot(opt)) == before


def test_step_with_per_row_step_changed_in_second_group_changes_nothing():
    embs, opt = _trained(pyembed.optim.Adam, lazy=True)
    opt.param_groups[1]["per_row_step"] = True
    before = _snapshot(*embs), _opt_snapshot(opt)
    with pytest.raises(ValueError, match="per_row_step"):
        opt.step()
    assert (_snapshot(*embs), _opt_snapshot(opt)) == before


def _sd_cases():
    """(name, change to a good Adam state_dict, text the error must contain)."""
    big = np.array(2**63 - 1, np.int64)
    return [
        ("other optimizer", lambda sd: sd.update(optimizer=np.array("SGD")), "SGD"),
        ("negative step", lambda sd: sd.update({"state.0.step": np.array(-1)}), "step"),
        ("float step", lambda sd: sd.update({"state.0.step": np.array(1.5)}), "step"),
        ("bool step", lambda sd: sd.update({"state.0.step": np.array(True)}), "step"),
        ("overflowing step", lambda sd: sd.update({"state.0.step": big}), "step"),
        ("uint64 step", lambda sd: sd.update({"state.0.step": np.array(2**64 - 1, np.uint64)}),
         "step"),
        ("row steps for one counter", lambda sd: sd.update({"state.0.step": np.ones(6, np.int64)}),
         "per_row_step"),
        ("unknown index", lambda sd: sd.update({"state.7.exp_avg": np.zeros((6, 3))}), "state.7"),
        ("index beyond", lambda sd: sd.update({"param_groups.1.params": np.array([5])}), "5"),
        ("repeated index", lambda sd: sd.update({"param_groups.1.params": np.array([0])}), "repeat"),
        ("float index", lambda sd: sd.update({"param_groups.1.params": np.array([1.0])}), "params"),
        ("moment shape", lambda sd: sd.update({"state.1.exp_avg": np.zeros((6, 2))}), "shape"),
        ("moment dtype", lambda sd: sd.update({"state.1.exp_avg": np.zeros((6, 3), complex)}),
         "dtype"),
        ("string moment", lambda sd: sd.update({"state.1.exp_avg": np.full((6, 3), "a")}),
         "dtype"),
        ("missing moment", lambda sd: sd.pop("state.1.exp_avg_sq"), "exp_avg_sq"),
        ("unknown state key", lambda sd: sd.update({"state.1.momentum_buffer": np.zeros((6, 3))}),
         "momentum_buffer"),
        ("nan lr", lambda sd: sd.update({"param_groups.1.lr": np.array(np.nan)}), "learning"),
        ("string lr", lambda sd: sd.update({"param_groups.1.lr": np.array("fast")}), "lr"),
        ("huge int option", lambda sd: sd.update({"param_groups.1.amsgrad": np.ones(3)}),
         "amsgrad"),
        ("three betas", lambda sd: sd.update({"param_groups.0.betas": np.array([.9, .9, .9])}),
         "betas"),
        ("missing group params", lambda sd: sd.pop("param_groups.1.params"), "groups"),
    ]


@pytest.mark.parametrize("name,change,match", _sd_cases(), ids=[c[0] for c in _sd_cases()])
def test_load_state_dict_refuses_what_step_cannot_use(name, change, match):
    _, src = _trained(pyembed.optim.Adam)
    sd = {k: np.array(v) for k, v in src.state_dict().items()}
    change(sd)
    embs, opt = _trained(pyembed.optim.Adam, steps=1)
    before = _snapshot(*embs), _opt_snapshot(opt)
    with pytest.raises(ValueError, match=re.escape(match)):
        opt.load_state_dict(sd)
    assert (_snapshot(*embs), _opt_snapshot(opt)) == before
    opt.step()  # still usable


def test_load_state_dict_of_sgd_into_adam_is_refused_even_without_its_name():
    _, sgd = _trained(pyembed.optim.SGD, momentum=0.9)
    sd = dict(sgd.state_dict())
    del sd["optimizer"]
    embs, opt = _trained(pyembed.optim.Adam)
    before = _snapshot(*embs), _opt_snapshot(opt)
    with pytest.raises(ValueError):
        opt.load_state_dict(sd)
    assert (_snapshot(*embs), _opt_snapshot(opt)) == before


def test_load_state_dict_round_trip_still_works():
    _, src = _trained(pyembed.optim.Adam, lazy=True, per_row_step=True)
    embs, opt = _trained(pyembed.optim.Adam, steps=1, lazy=True, per_row_step=True)
    opt.load_state_dict(src.state_dict())
    assert _opt_snapshot(opt)[0] == _opt_snapshot(src)[0]
    opt.step()

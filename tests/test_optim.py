"""pyembed.optim against NumPy float64 references (tests/reference_optim.py) and torch.optim."""
import copy
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pyembed
from pyembed import _core, optim

import reference_optim as ref

N, D = 13, 37  # odd sizes: vector bodies and scalar tails on every SIMD level
STEPS = 20
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-6, atol=1e-12)}

ADAM_VARIANTS = [
    dict(),
    dict(weight_decay=0.1),
    dict(weight_decay=0.1, decoupled=True),
    dict(amsgrad=True),
    dict(maximize=True),
    dict(amsgrad=True, maximize=True, weight_decay=0.05),
    dict(amsgrad=True, weight_decay=0.05, decoupled=True),
]
SGD_VARIANTS = [
    dict(),
    dict(momentum=0.9),
    dict(momentum=0.9, dampening=0.3),
    dict(momentum=0.9, nesterov=True),
    dict(momentum=0.9, nesterov=True, weight_decay=0.01, maximize=True),
    dict(weight_decay=0.1),
]


def data(seed=0, n=N, d=D, steps=STEPS):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), [rng.standard_normal((n, d)) for _ in range(steps)]


def make_adam(params, v, lr=1e-2, **extra):
    kw = dict(v)
    decoupled = kw.pop("decoupled", False)
    cls = optim.AdamW if decoupled else optim.Adam
    kw.setdefault("weight_decay", 0.0)
    return cls(params, lr=lr, **kw, **extra)


def run_pair(opt_factory, p0, grads, dtype):
    p = p0.astype(dtype)
    g = np.zeros_like(p)
    opt = opt_factory([(p, g)])
    for gr in grads:
        g[...] = gr.astype(dtype)
        opt.step()
    return p


def emb_from(p0, dtype):
    return pyembed.Embedding(p0.shape[0], p0.shape[1], dtype=dtype, init=p0.astype(dtype))


def backward_rows(emb, rows, gr):
    """Give rows exactly the gradient gr[rows] (one contribution each: 0 + g = g)."""
    rows = np.asarray(rows)
    emb.backward(rows, gr[rows].astype(emb.dtype))


# ---- against the float64 references ----------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("v", ADAM_VARIANTS, ids=str)
def test_adam_dense_matches_reference(dtype, v):
    p0, grads = data(1)
    got = run_pair(lambda ps: make_adam(ps, v), p0, grads, dtype)
    want = p0.astype(dtype).astype(np.float64)
    s = ref.adam_state(p0.shape)
    for gr in grads:
        ref.adam_step(want, gr.astype(dtype).astype(np.float64), s, lr=1e-2, **v)
    np.testing.assert_allclose(got, want, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("v", SGD_VARIANTS, ids=str)
def test_sgd_dense_matches_reference(dtype, v):
    p0, grads = data(2)
    got = run_pair(lambda ps: optim.SGD(ps, lr=0.05, **v), p0, grads, dtype)
    want = p0.astype(dtype).astype(np.float64)
    s = {}
    for gr in grads:
        ref.sgd_step(want, gr.astype(dtype).astype(np.float64), s, lr=0.05, **v)
    np.testing.assert_allclose(got, want, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["adam", "adamw", "sparse", "adam_ams_per_row"])
@pytest.mark.parametrize("per_row_step", [False, True])
def test_lazy_adam_matches_reference(dtype, kind, per_row_step):
    p0, grads = data(3)
    rng = np.random.default_rng(4)
    emb = emb_from(p0, dtype)
    kw = dict(lr=1e-2, per_row_step=per_row_step)
    rkw = dict(lr=1e-2)
    if kind == "adam":
        opt = optim.Adam(emb, lazy=True, weight_decay=0.1, **kw)
        rkw.update(weight_decay=0.1)
    elif kind == "adamw":
        opt = optim.AdamW(emb, lazy=True, weight_decay=0.1, **kw)
        rkw.update(weight_decay=0.1, decoupled=True)
    elif kind == "sparse":
        opt = optim.SparseAdam(emb, maximize=True, **kw)
        rkw.update(sparse_form=True, maximize=True)
    else:
        opt = optim.Adam(emb, lazy=True, amsgrad=True, **kw)
        rkw.update(amsgrad=True)
    want = p0.astype(dtype).astype(np.float64)
    s = ref.adam_state(p0.shape)
    row_step = np.zeros(N, np.int64) if per_row_step else None
    for gr in grads:
        rows = np.unique(rng.integers(0, N, 5))
        backward_rows(emb, rows, gr)
        opt.step()
        opt.zero_grad()
        ref.adam_step(want, gr.astype(dtype).astype(np.float64), s, rows=rows, row_step=row_step,
                      **rkw)
    np.testing.assert_allclose(emb.weight, want, **TOL[dtype])
    if per_row_step:
        np.testing.assert_array_equal(opt.state_dict()["state.0.step"], row_step)


def test_lazy_adam_leaves_untouched_rows_alone():
    p0, grads = data(5)
    emb = emb_from(p0, np.float32)
    opt = optim.AdamW(emb, lazy=True, weight_decay=0.5)
    backward_rows(emb, [2, 7], grads[0])
    opt.step()
    untouched = np.setdiff1d(np.arange(N), [2, 7])
    np.testing.assert_array_equal(emb.weight[untouched], p0.astype(np.float32)[untouched])
    assert not np.array_equal(emb.weight[[2, 7]], p0.astype(np.float32)[[2, 7]])
    sd = opt.state_dict()
    assert not sd["state.0.exp_avg"][untouched].any()
    assert int(sd["state.0.step"]) == 1
    assert opt.state[emb] is opt.state[emb.table]
    np.testing.assert_array_equal(opt.state[emb]["exp_avg"], sd["state.0.exp_avg"])


def test_dense_adam_on_table_updates_every_row_like_torch_dense():
    # dense Adam: an untouched row's moments decay and (once it has moments) its weight moves
    p0, grads = data(6)
    emb = emb_from(p0, np.float64)
    opt = optim.Adam(emb, lr=1e-2)
    want = p0.copy()
    s = ref.adam_state(p0.shape)
    for k, gr in enumerate(grads[:5]):
        rows = [0, 1, 2] if k == 0 else [3]
        backward_rows(emb, rows, gr)
        opt.step()
        opt.zero_grad()
        full = np.zeros_like(gr)
        full[rows] = gr[rows]
        ref.adam_step(want, full, s, lr=1e-2)
    np.testing.assert_allclose(emb.weight, want, rtol=1e-12, atol=1e-14)


def test_sgd_on_table_without_momentum_visits_only_touched_rows_and_equals_dense():
    p0, grads = data(7)
    emb = emb_from(p0, np.float64)
    opt = optim.SGD(emb, lr=0.1)
    want = p0.copy()
    for gr in grads[:4]:
        backward_rows(emb, [1, 4], gr)
        opt.step()
        opt.zero_grad()
        full = np.zeros_like(gr)
        full[[1, 4]] = gr[[1, 4]]
        ref.sgd_step(want, full, {}, lr=0.1)
    np.testing.assert_array_equal(emb.weight, want)


def test_lazy_sgd_momentum_matches_reference():
    p0, grads = data(8)
    rng = np.random.default_rng(9)
    emb = emb_from(p0, np.float64)
    opt = optim.SGD(emb, lr=0.1, momentum=0.9, dampening=0.2, lazy=True)
    want = p0.copy()
    s = {}
    for gr in grads:
        rows = np.unique(rng.integers(0, N, 4))
        backward_rows(emb, rows, gr)
        opt.step()
        opt.zero_grad()
        ref.sgd_step(want, gr, s, lr=0.1, momentum=0.9, dampening=0.2, rows=rows)
    np.testing.assert_allclose(emb.weight, want, rtol=1e-12, atol=1e-14)


def test_lr_schedule_and_param_groups():
    p0, grads = data(10)
    a, b = p0[:6].copy(), p0[6:].copy()
    ga, gb = np.zeros_like(a), np.zeros_like(b)
    opt = optim.Adam([{"params": [(a, ga)]}, {"params": (b, gb), "lr": 0.1, "amsgrad": True}],
                     lr=1e-2)
    wa, wb = a.copy(), b.copy()
    sa, sb = ref.adam_state(a.shape), ref.adam_state(b.shape)
    for k, gr in enumerate(grads):
        opt.param_groups[0]["lr"] = 1e-2 * 0.9 ** k
        ga[...], gb[...] = gr[:6], gr[6:]
        opt.step()
        ref.adam_step(wa, gr[:6], sa, lr=1e-2 * 0.9 ** k)
        ref.adam_step(wb, gr[6:], sb, lr=0.1, amsgrad=True)
    np.testing.assert_allclose(a, wa, rtol=1e-10)
    np.testing.assert_allclose(b, wb, rtol=1e-10)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 9), d=st.integers(0, 70), f64=st.booleans(), mode=st.integers(0, 6),
       sparse=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_adam_one_step_any_shape(n, d, f64, mode, sparse, seed):
    dtype = np.float64 if f64 else np.float32
    rng = np.random.default_rng(seed)
    p = rng.standard_normal((n, d)).astype(dtype)
    g = rng.standard_normal((n, d)).astype(dtype)
    m = rng.standard_normal((n, d)).astype(dtype)
    v = np.abs(rng.standard_normal((n, d))).astype(dtype)
    vmax = np.abs(rng.standard_normal((n, d))).astype(dtype)
    var = dict(ADAM_VARIANTS[mode])
    want = p.astype(np.float64)
    s = {"step": 2, "m": m.astype(np.float64), "v": v.astype(np.float64),
         "vmax": vmax.astype(np.float64)}
    ref.adam_step(want, g.astype(np.float64), s, lr=0.01, sparse_form=sparse, **var)
    _core.adam_step(p, g, m, v, vmax if var.get("amsgrad") else None, step=3, lr=0.01,
                    weight_decay=var.get("weight_decay", 0.0),
                    decoupled=var.get("decoupled", False), maximize=var.get("maximize", False),
                    sparse_form=sparse)
    np.testing.assert_allclose(p, want, **TOL[dtype])
    np.testing.assert_allclose(m, s["m"], **TOL[dtype])
    np.testing.assert_allclose(v, s["v"], **TOL[dtype])


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 12), d=st.integers(0, 40), f64=st.booleans(), seed=st.integers(0, 2 ** 16),
       mom=st.sampled_from([0.0, 0.9]), first=st.booleans(), use_frozen=st.booleans())
def test_rows_variants_touch_only_listed_unfrozen_rows(n, d, f64, seed, mom, first, use_frozen):
    dtype = np.float64 if f64 else np.float32
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(rng.random(n) < 0.5)
    frozen = (rng.random(n) < 0.3).astype(np.uint8) if use_frozen else None
    upd = np.setdiff1d(rows, np.flatnonzero(frozen)) if use_frozen else rows
    p = rng.standard_normal((n, d)).astype(dtype)
    g = rng.standard_normal((n, d)).astype(dtype)
    b = rng.standard_normal((n, d)).astype(dtype)
    want, s = p.astype(np.float64), {} if first else {"buf": b.astype(np.float64)}
    ref.sgd_step(want, g.astype(np.float64), s, lr=0.1, momentum=mom, rows=upd)
    p0 = p.copy()
    _core.sgd_step(p, g, b if mom else None, lr=0.1, momentum=mom, first=first, rows=rows,
                   frozen=frozen)
    np.testing.assert_allclose(p, want, **TOL[dtype])
    other = np.setdiff1d(np.arange(n), upd)
    np.testing.assert_array_equal(p[other], p0[other])
    m, v = np.zeros_like(p), np.zeros_like(p)
    rs = np.zeros(n, np.int64)
    _core.adam_step(p, g, m, v, rows=rows, row_step=rs, frozen=frozen)
    np.testing.assert_array_equal(rs, np.isin(np.arange(n), upd))
    assert not m[other].any() and not v[other].any()
    np.testing.assert_array_equal(p[other], p0[other])


# ---- torch parity ------------------------------------------------------------------------------

def torch_run(torch, make, p0, grads, dtype, sparse_rows=None):
    t = torch.tensor(p0.astype(dtype), requires_grad=True)
    opt = make([t])
    for k, gr in enumerate(grads):
        g = torch.tensor(gr.astype(dtype))
        if sparse_rows is not None:
            rows = torch.tensor(sparse_rows[k])
            g = torch.sparse_coo_tensor(rows[None], g[rows], g.shape,
                                        check_invariants=True).coalesce()
        t.grad = g
        opt.step()
    return t.detach().numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("v", ADAM_VARIANTS, ids=str)
def test_adam_matches_torch(dtype, v):
    torch = pytest.importorskip("torch")
    p0, grads = data(11)
    got = run_pair(lambda ps: make_adam(ps, v), p0, grads, dtype)
    kw = dict(v)
    cls = torch.optim.AdamW if kw.pop("decoupled", False) else torch.optim.Adam
    kw.setdefault("weight_decay", 0.0)
    want = torch_run(torch, lambda ps: cls(ps, lr=1e-2, foreach=False, **kw), p0, grads, dtype)
    np.testing.assert_allclose(got, want, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("v", SGD_VARIANTS, ids=str)
def test_sgd_matches_torch(dtype, v):
    torch = pytest.importorskip("torch")
    p0, grads = data(12)
    got = run_pair(lambda ps: optim.SGD(ps, lr=0.05, **v), p0, grads, dtype)
    want = torch_run(torch, lambda ps: torch.optim.SGD(ps, lr=0.05, **v), p0, grads, dtype)
    np.testing.assert_allclose(got, want, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("maximize", [False, True])
def test_sparse_adam_matches_torch(dtype, maximize):
    torch = pytest.importorskip("torch")
    p0, grads = data(13)
    rng = np.random.default_rng(14)
    rows = [np.unique(rng.integers(0, N, 6)) for _ in grads]
    emb = emb_from(p0, dtype)
    opt = optim.SparseAdam(emb.parameters(), lr=1e-2, maximize=maximize)
    for r, gr in zip(rows, grads):
        backward_rows(emb, r, gr)
        opt.step()
        opt.zero_grad()
    want = torch_run(torch, lambda ps: torch.optim.SparseAdam(ps, lr=1e-2, maximize=maximize),
                     p0, grads, dtype, sparse_rows=rows)
    np.testing.assert_allclose(emb.weight, want, **TOL[dtype])


def test_clip_grad_norm_matches_torch():
    torch = pytest.importorskip("torch")
    p0, grads = data(15)
    for norm_type in (2.0, 1.0, 3.0, float("inf")):
        emb = emb_from(p0, np.float64)
        rows = [0, 3, 4, 9]
        backward_rows(emb, rows, grads[0])
        a, ga = p0[:2].copy(), grads[1][:2].copy()
        total = optim.clip_grad_norm_([emb, (a, ga)], 0.5, norm_type)
        ta = torch.zeros(N, D, dtype=torch.float64, requires_grad=True)
        full = np.zeros((N, D))
        full[rows] = grads[0][rows]
        ta.grad = torch.tensor(full)
        tb = torch.zeros(2, D, dtype=torch.float64, requires_grad=True)
        tb.grad = torch.tensor(grads[1][:2])
        want = torch.nn.utils.clip_grad_norm_([ta, tb], 0.5, norm_type)
        assert total == pytest.approx(float(want), rel=1e-12)
        np.testing.assert_allclose(emb.grad, ta.grad.numpy(), rtol=1e-12)
        np.testing.assert_allclose(ga, tb.grad.numpy(), rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 20), d=st.integers(0, 30), f64=st.booleans(), seed=st.integers(0, 2 ** 16),
       p=st.sampled_from([1.0, 2.0, 2.5, float("inf")]), use_rows=st.booleans())
def test_grad_norm_and_scale_match_numpy(n, d, f64, seed, p, use_rows):
    dtype = np.float64 if f64 else np.float32
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n, d)).astype(dtype)
    rows = np.flatnonzero(rng.random(n) < 0.5) if use_rows else None
    sel = g[rows] if use_rows else g.copy()
    x = np.abs(sel.astype(np.float64)).ravel()
    want = (x.max() if x.size else 0.0) if np.isinf(p) else (x ** p).sum()
    assert _core.grad_norm(g, rows, p) == pytest.approx(want, rel=1e-12, abs=1e-300)
    g0 = g.copy()
    _core.scale_grad(g, 0.5, rows)
    np.testing.assert_array_equal(g[rows] if use_rows else g, sel * dtype(0.5))
    if use_rows:
        other = np.setdiff1d(np.arange(n), rows)
        np.testing.assert_array_equal(g[other], g0[other])


def test_clip_grad_norm_no_clip_and_skips():
    emb = pyembed.Embedding(5, 3, seed=0)
    assert optim.clip_grad_norm_(emb, 1.0) == 0.0  # no gradient yet
    emb.backward([1], np.full((1, 3), 0.1, np.float32))
    before = emb.grad.copy()
    total = optim.clip_grad_norm_(emb, 10.0)
    assert total == pytest.approx(np.sqrt(3) * 0.1, rel=1e-6)
    np.testing.assert_array_equal(emb.grad, before)
    emb.requires_grad = False
    assert optim.clip_grad_norm_(emb, 1e-3) == 0.0
    with pytest.raises(RuntimeError):
        emb.requires_grad = True
        emb.backward([2], np.full((1, 3), np.inf, np.float32))
        optim.clip_grad_norm_(emb, 1.0, error_if_nonfinite=True)


# ---- freezing ----------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda e: optim.Adam(e, lr=0.1, weight_decay=0.1),
    lambda e: optim.Adam(e, lr=0.1, lazy=True, amsgrad=True),
    lambda e: optim.Adam(e, lr=0.1, lazy=True, per_row_step=True),
    lambda e: optim.AdamW(e, lr=0.1),
    lambda e: optim.SparseAdam(e, lr=0.1),
    lambda e: optim.SGD(e, lr=0.1),
    lambda e: optim.SGD(e, lr=0.1, momentum=0.9, weight_decay=0.1),
    lambda e: optim.SGD(e, lr=0.1, momentum=0.9, lazy=True),
], ids=["adam", "lazy_ams", "per_row", "adamw", "sparse", "sgd", "sgd_mom", "sgd_lazy"])
def test_frozen_rows_unchanged_after_100_steps(make):
    rng = np.random.default_rng(16)
    emb = pyembed.Embedding(40, 9, seed=3)
    frozen = [0, 5, 6, 7, 39]
    emb.freeze_rows(frozen)
    emb.freeze_rows([20])
    emb.unfreeze_rows([20])
    np.testing.assert_array_equal(emb.frozen_rows, frozen)
    w0 = emb.weight.copy()
    opt = make(emb)
    for _ in range(100):
        ids = rng.integers(0, 40, 30)
        emb.backward(ids, rng.standard_normal((30, 9)).astype(np.float32))
        opt.step()
        opt.zero_grad()
    assert np.array_equal(emb.weight[frozen].view(np.uint32), w0[frozen].view(np.uint32))
    free = np.setdiff1d(np.arange(40), frozen)
    assert (emb.weight[free] != w0[free]).all(axis=1).any()
    emb.unfreeze_rows()
    assert emb._frozen_rows is None


def test_requires_grad_false_and_from_pretrained_freeze():
    w = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    frozen = pyembed.Embedding.from_pretrained(w, freeze=True)
    opt = optim.Adam(frozen, lr=1.0)
    frozen.backward([1, 2], np.ones((2, 4), np.float32))
    assert frozen.grad is None
    opt.step()
    np.testing.assert_array_equal(frozen.weight, w)
    emb = pyembed.Embedding.from_pretrained(w, freeze=False)
    opt = optim.SGD(emb, lr=1.0)
    emb.backward([1], np.ones((1, 4), np.float32))
    emb.requires_grad = False
    opt.step()
    np.testing.assert_array_equal(emb.weight, w)
    emb.requires_grad = True
    opt.step()
    np.testing.assert_array_equal(emb.weight[1], w[1] - 1)


def test_freeze_rows_bad_ids():
    emb = pyembed.Embedding(4, 2, seed=0)
    with pytest.raises(IndexError, match="5"):
        emb.freeze_rows([1, 5])
    with pytest.raises(TypeError):
        emb.freeze_rows([0.5])
    assert emb._frozen_rows is None


# ---- state_dict ----------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True),
    lambda ps: optim.Adam(ps, lr=0.01, lazy=True, per_row_step=True),
    lambda ps: optim.SparseAdam(ps, lr=0.01),
    lambda ps: optim.SGD(ps, lr=0.01, momentum=0.9, nesterov=True),
], ids=["adam", "per_row", "sparse", "sgd"])
def test_state_dict_round_trip_through_npz(make, tmp_path):
    p0, grads = data(17)
    rng = np.random.default_rng(18)
    rows = [np.unique(rng.integers(0, N, 5)) for _ in grads]

    def build():
        emb = emb_from(p0, np.float32)
        a = p0[:3].astype(np.float32)
        ga = np.zeros_like(a)
        return emb, a, ga, make([emb, (a, ga)])

    def one(emb, a, ga, opt, k):
        backward_rows(emb, rows[k], grads[k])
        ga[...] = grads[k][:3]
        opt.step()
        opt.zero_grad()

    emb, a, ga, opt = build()
    for k in range(10):
        one(emb, a, ga, opt, k)
    path = tmp_path / "opt.npz"
    np.savez(path, **opt.state_dict())
    emb2, a2, ga2, opt2 = build()
    emb2.weight = emb.weight
    a2[...] = a
    opt2.param_groups[0]["lr"] = 123.0  # restored from the file
    with np.load(path) as f:
        opt2.load_state_dict(f)
    assert opt2.param_groups[0]["lr"] == 0.01
    for k in range(10, 20):
        one(emb, a, ga, opt, k)
        one(emb2, a2, ga2, opt2, k)
    np.testing.assert_array_equal(emb2.weight, emb.weight)
    np.testing.assert_array_equal(a2, a)


def test_load_state_dict_rejects_mismatch_and_changes_nothing():
    p0, grads = data(19)
    emb = emb_from(p0, np.float32)
    opt = optim.Adam(emb)
    backward_rows(emb, [1], grads[0])
    opt.step()
    sd = copy.deepcopy(opt.state_dict())
    other = optim.Adam(pyembed.Embedding(3, 2, seed=0))
    other_emb = other.param_groups[0]["params"][0].obj
    other_emb.backward([0], np.ones((1, 2), np.float32))
    other.step()
    before = copy.deepcopy(other.state_dict())
    with pytest.raises(ValueError, match="shape"):
        other.load_state_dict(sd)
    after = other.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])
    sd["param_groups.1.params"] = np.array([0])
    with pytest.raises(ValueError, match="groups"):
        opt.load_state_dict(sd)


# ---- hyper-parameters and errors -----------------------------------------------------------------

@pytest.mark.parametrize("cls,kw", [
    (optim.Adam, dict(lr=-1.0)),
    (optim.Adam, dict(betas=(1.0, 0.999))),
    (optim.Adam, dict(betas=(0.9, -0.1))),
    (optim.Adam, dict(eps=-1e-8)),
    (optim.Adam, dict(weight_decay=-1.0)),
    (optim.Adam, dict(lr=float("nan"))),
    (optim.Adam, dict(per_row_step=True)),
    (optim.AdamW, dict(betas=(0.9, 1.0))),
    (optim.SparseAdam, dict(lr=0.0)),
    (optim.SparseAdam, dict(eps=0.0)),
    (optim.SGD, dict(lr=-0.1)),
    (optim.SGD, dict(momentum=-0.1)),
    (optim.SGD, dict(weight_decay=-0.1)),
    (optim.SGD, dict(nesterov=True)),
    (optim.SGD, dict(nesterov=True, momentum=0.9, dampening=0.1)),
])
def test_bad_hyperparameters_raise_value_error(cls, kw):
    with pytest.raises(ValueError):
        cls(pyembed.Embedding(3, 2, seed=0), **kw)


@pytest.mark.parametrize("cls,kw", [
    ("Adam", dict(lr=-1.0)), ("Adam", dict(betas=(1.0, 0.999))), ("Adam", dict(eps=-1e-8)),
    ("Adam", dict(weight_decay=-1.0)), ("SGD", dict(lr=-0.1)), ("SGD", dict(momentum=-0.1)),
    ("SGD", dict(nesterov=True)),
])
def test_bad_hyperparameters_like_torch(cls, kw):
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError):
        getattr(torch.optim, cls)([torch.zeros(2, requires_grad=True)], **kw)
    with pytest.raises(ValueError):
        getattr(optim, cls)(pyembed.Embedding(3, 2, seed=0), **kw)


def test_bad_lr_set_between_steps_raises_and_changes_nothing():
    emb = pyembed.Embedding(5, 3, seed=0)
    opt = optim.Adam(emb)
    emb.backward([1], np.ones((1, 3), np.float32))
    w = emb.weight.copy()
    opt.param_groups[0]["lr"] = -1.0
    with pytest.raises(ValueError, match="learning rate"):
        opt.step()
    np.testing.assert_array_equal(emb.weight, w)
    assert opt.state == {}


def test_params_forms_and_errors():
    emb = pyembed.Embedding(4, 2, seed=0)
    a = np.zeros((3, 2), np.float32)
    ga = np.ones_like(a)
    for params in (emb, emb.table, [emb], [(a, ga)], (a, ga), {"params": emb}):
        optim.SGD(params, lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([emb, emb], lr=0.1)
    with pytest.raises(TypeError):
        optim.SGD(a, lr=0.1)
    with pytest.raises(TypeError):
        optim.SGD([1, 2], lr=0.1)
    with pytest.raises(ValueError, match="grad"):
        optim.SGD([(a, np.ones((2, 2), np.float32))], lr=0.1)
    with pytest.raises(ValueError, match="grad"):
        optim.SGD([(a, ga.astype(np.float64))], lr=0.1)
    with pytest.raises(ValueError, match="contiguous"):
        optim.SGD([(np.zeros((4, 4), np.float32)[:, :2], ga)], lr=0.1)
    with pytest.raises(TypeError, match="unknown"):
        optim.SGD({"params": emb, "momentom": 0.9}, lr=0.1)


def test_zero_grad_and_closure():
    emb = pyembed.Embedding(4, 2, seed=0)
    a = np.zeros((3, 2), np.float32)
    ga = np.ones_like(a)
    opt = optim.SGD([emb, (a, ga)], lr=0.5)
    emb.backward([1], np.ones((1, 2), np.float32))
    assert opt.step(lambda: 3.0) == 3.0
    np.testing.assert_array_equal(a, -0.5)
    opt.zero_grad()
    assert emb.table.num_touched == 0 and not ga.any()


def _arrays(dtype=np.float32, shape=(6, 5)):
    p = np.ones(shape, dtype)
    return p, np.ones(shape, dtype), np.zeros(shape, dtype), np.zeros(shape, dtype)


@pytest.mark.parametrize("mutate,exc,match", [
    (lambda a: a.update(g=a["g"].astype(np.float64)), ValueError, "grad has dtype"),
    (lambda a: a.update(m=np.zeros((6, 4), np.float32)), ValueError, "exp_avg has shape"),
    (lambda a: a.update(v=np.zeros((5, 6), np.float32).T), ValueError, "contiguous"),
    (lambda a: a["m"].setflags(write=False), ValueError, "read-only"),
    (lambda a: a.update(p=a["p"].astype(np.int32)), ValueError, "float32 or float64"),
    (lambda a: a.update(g=[1, 2]), TypeError, "ndarray"),
    (lambda a: a.update(m=a["p"]), ValueError, "share memory"),
    (lambda a: a.update(rows=[3, 1]), ValueError, "increasing"),
    (lambda a: a.update(rows=[1, 1]), ValueError, "increasing"),
    (lambda a: a.update(rows=[0, 6]), IndexError, "6"),
    (lambda a: a.update(rows=[0.5]), TypeError, "integers"),
    (lambda a: a.update(row_step=np.zeros(6, np.int64)), ValueError, "needs rows"),
    (lambda a: a.update(rows=[1], row_step=np.zeros(5, np.int64)), ValueError, "row_step"),
    (lambda a: a.update(rows=[1], row_step=np.zeros(6, np.int32)), ValueError, "row_step"),
    (lambda a: a.update(frozen=np.zeros(5, np.uint8)), ValueError, "frozen"),
    (lambda a: a.update(frozen=np.zeros(6, np.float32)), ValueError, "frozen"),
    (lambda a: a.update(step=0), ValueError, "step"),
    (lambda a: a.update(table=object()), TypeError, "Table"),
])
def test_adam_step_errors_change_nothing(mutate, exc, match):
    p, g, m, v = _arrays()
    args = dict(p=p, g=g, m=m, v=v, step=1, lr=0.1, beta2=0.999, rows=None, row_step=None,
                frozen=None, table=None)
    mutate(args)
    snap = [np.array(x, copy=True) for x in (p, g, m, v)]
    with pytest.raises(exc, match=match):
        _core.adam_step(args["p"], args["g"], args["m"], args["v"], step=args["step"],
                        lr=args["lr"], beta2=args["beta2"], rows=args["rows"],
                        row_step=args["row_step"], frozen=args["frozen"], table=args["table"])
    for before, now in zip(snap, (p, g, m, v)):
        np.testing.assert_array_equal(before, now)


@pytest.mark.parametrize("kw,exc,match", [
    (dict(momentum=0.9), ValueError, "momentum_buffer"),
    (dict(rows=[2, 2]), ValueError, "increasing"),
])
def test_sgd_step_errors_change_nothing(kw, exc, match):
    p, g, _, _ = _arrays()
    with pytest.raises(exc, match=match):
        _core.sgd_step(p, g, lr=0.1, **kw)
    np.testing.assert_array_equal(p, 1)


@pytest.mark.parametrize("kw", [dict(lr=float("nan")), dict(lr=-1.0), dict(beta1=1.0),
                                dict(beta2=float("inf")), dict(eps=-1.0),
                                dict(weight_decay=float("nan"))])
def test_kernels_compute_with_any_hyper_parameter(kw):
    # pyembed.optim owns the hyper-parameter checks (torch's messages); the C functions only
    # promise not to crash: a NaN lr gives NaN weights
    p, g, m, v = _arrays()
    _core.adam_step(p, g, m, v, step=1, **kw)
    _core.adam_step(p, g, m, v, step=2, rows=[0, 2], **kw)
    _core.sgd_step(p, g, np.zeros_like(p), lr=kw.get("lr", 0.1), momentum=0.9,
                   dampening=kw.get("eps", float("inf")), nesterov=True)
    if kw == dict(lr=float("nan")):
        assert np.isnan(p).all()


def test_refcounts_and_inputs_unmodified():
    p, g, m, v = _arrays(np.float64)
    rows = np.array([1, 3])
    g0 = g.copy()
    before = [sys.getrefcount(x) for x in (p, g, m, v, rows)]
    for k in range(1000):
        _core.adam_step(p, g, m, v, step=k + 1, rows=rows)
        _core.grad_norm(g, rows)
    assert [sys.getrefcount(x) for x in (p, g, m, v, rows)] == before
    np.testing.assert_array_equal(g, g0)


# ---- determinism ---------------------------------------------------------------------------------

def _big_run(kind):
    rng = np.random.default_rng(20)
    emb = pyembed.Embedding(3000, 96, seed=1)  # ~1.1 MB per array: above the parallel threshold
    emb.freeze_rows([5, 6, 2999])
    if kind == "adam":
        opt = optim.Adam(emb, lr=0.01, amsgrad=True, weight_decay=0.01)
    elif kind == "lazy":
        opt = optim.Adam(emb, lr=0.01, lazy=True, per_row_step=True)
    else:
        opt = optim.SGD(emb, lr=0.01, momentum=0.9, nesterov=True)
    norms = []
    for _ in range(3):
        ids = rng.integers(0, 3000, 2500)
        emb.backward(ids, rng.standard_normal((2500, 96)).astype(np.float32))
        norms.append(optim.clip_grad_norm_(emb, 50.0))
        opt.step()
        opt.zero_grad()
    return emb.weight.copy(), norms


@pytest.mark.parametrize("kind", ["adam", "lazy", "sgd"])
def test_bitwise_identical_for_any_thread_count(kind):
    if not _core.have_openmp():
        pytest.skip("built without OpenMP")
    old = pyembed.get_num_threads()
    try:
        runs = []
        for nt in (1, 2, 4):
            pyembed.set_num_threads(nt)
            runs.append(_big_run(kind))
    finally:
        pyembed.set_num_threads(old)
    for w, norms in runs[1:]:
        assert np.array_equal(w.view(np.uint32), runs[0][0].view(np.uint32))
        assert norms == runs[0][1]


def test_bitwise_identical_for_every_simd_level():
    best = _core._set_simd_level(-1)
    try:
        runs = []
        for level in range(best + 1):
            assert _core._set_simd_level(level) == level
            runs.append(_big_run("adam")[0])
            runs.append(_big_run("sgd")[0])
    finally:
        _core._set_simd_level(-1)
    for k in range(2, len(runs)):
        assert np.array_equal(runs[k].view(np.uint32), runs[k % 2].view(np.uint32))

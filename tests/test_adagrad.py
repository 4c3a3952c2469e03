"""pyembed.optim.Adagrad and RowWiseAdagrad against float64 references (tests/reference_adagrad.py)
and Adagrad against torch.optim.Adagrad.

Tolerances: float32 runs of 20 steps agree with the float64 reference to rtol 1e-5 / atol 1e-6
(a few float32 roundings per step, accumulated), float64 runs to rtol 1e-12 / atol 1e-14."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pyembed
from pyembed import _core, optim

import reference_adagrad as ref

TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}
N, D, STEPS = 13, 37, 20  # odd sizes: vector bodies and scalar tails on every SIMD level

ADAGRAD_VARIANTS = [dict(), dict(weight_decay=0.1), dict(lr_decay=0.05),
                    dict(initial_accumulator_value=0.3, eps=1e-6),
                    dict(maximize=True, weight_decay=0.05, lr_decay=0.01)]
ROWWISE_VARIANTS = [dict(), dict(weight_decay=0.1),
                    dict(weight_decay=0.1, decoupled_weight_decay=True),
                    dict(maximize=True, lr_decay=0.02),
                    dict(initial_accumulator_value=0.5, eps=1e-4, weight_decay=0.02)]


def data(seed=0, n=N, d=D, steps=STEPS):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), [rng.standard_normal((n, d)) for _ in range(steps)]


def touched_rows(seed, steps=STEPS, n=N, k=5):
    rng = np.random.default_rng(seed)
    # the last three rows are never touched
    return [np.unique(rng.integers(0, n - 3, k)) for _ in range(steps)]


def ref_run(kind, v, p0, grads, dtype, rows=None, lr=0.05):
    """The float64 reference run from the dtype-rounded start and gradients."""
    kw = dict(v)
    init = kw.pop("initial_accumulator_value", 0.0)
    want = p0.astype(dtype).astype(np.float64)
    if kind == "adagrad":
        s = ref.adagrad_state(want.shape, init)
        step = ref.adagrad_step
    else:
        s = ref.adagrad_state(want.shape[0], init)
        kw["decoupled"] = kw.pop("decoupled_weight_decay", False)
        step = ref.rowwise_adagrad_step
    for k, gr in enumerate(grads):
        step(want, gr.astype(dtype).astype(np.float64), s, lr=lr, rows=None if rows is None
             else rows[k], **kw)
    return want, s


def make(kind, params, v, lr=0.05, **extra):
    cls = optim.Adagrad if kind == "adagrad" else optim.RowWiseAdagrad
    return cls(params, lr=lr, **v, **extra)


def run_pair(kind, v, p0, grads, dtype):
    p = p0.astype(dtype)
    g = np.zeros_like(p)
    opt = make(kind, [(p, g)], v)
    for gr in grads:
        g[...] = gr.astype(dtype)
        opt.step()
    return p, opt


def run_table(kind, v, p0, grads, rows, dtype, **extra):
    emb = pyembed.Embedding(p0.shape[0], p0.shape[1], dtype=dtype, init=p0.astype(dtype))
    opt = make(kind, emb, v, **extra)
    for r, gr in zip(rows, grads):
        emb.backward(r, gr[r].astype(dtype))  # one contribution a row: 0 + g = g
        opt.step()
        opt.zero_grad()
    return emb, opt


def same_bits(a, b):
    return a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8))


# ---- against the float64 references ------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind,v", [("adagrad", v) for v in ADAGRAD_VARIANTS]
                         + [("rowwise", v) for v in ROWWISE_VARIANTS], ids=str)
def test_dense_matches_reference(dtype, kind, v):
    p0, grads = data(1)
    got, opt = run_pair(kind, v, p0, grads, dtype)
    want, s = ref_run(kind, v, p0, grads, dtype)
    np.testing.assert_allclose(got, want, **TOL[dtype])
    st_ = opt.state[opt.param_groups[0]["params"][0]]
    assert st_["step"] == STEPS and st_["sum"].dtype == dtype
    np.testing.assert_allclose(st_["sum"], s["sum"], **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind,v", [("adagrad", v) for v in ADAGRAD_VARIANTS]
                         + [("rowwise", v) for v in ROWWISE_VARIANTS], ids=str)
def test_lazy_table_matches_reference_on_touched_rows(dtype, kind, v):
    p0, grads = data(2)
    rows = touched_rows(3)
    extra = dict(lazy=True) if kind == "adagrad" else {}
    emb, opt = run_table(kind, v, p0, grads, rows, dtype, **extra)
    want, s = ref_run(kind, v, p0, grads, dtype, rows=rows)
    np.testing.assert_allclose(emb.weight, want, **TOL[dtype])
    np.testing.assert_allclose(opt.state[emb]["sum"], s["sum"], **TOL[dtype])
    never = np.setdiff1d(np.arange(N), np.concatenate(rows))
    assert never.size and same_bits(emb.weight[never], p0[never].astype(dtype))


def test_adagrad_table_without_lazy_is_the_dense_step():
    # without weight decay only the touched rows are visited: the same bits as the dense step
    # over the whole table; with it every row decays, as torch's dense Adagrad
    p0, grads = data(4)
    rows = touched_rows(5)
    full = [np.where(np.isin(np.arange(N), r)[:, None], g, 0.0) for r, g in zip(rows, grads)]
    for v in (dict(), dict(weight_decay=0.1), dict(eps=0.0, initial_accumulator_value=1.0)):
        emb, _ = run_table("adagrad", v, p0, grads, rows, np.float32)
        dense, _ = run_pair("adagrad", v, p0, full, np.float32)
        assert same_bits(emb.weight, dense)


# ---- against torch -------------------------------------------------------------------------------

def torch_run(torch, kw, p0, grads, dtype, sparse_rows=None, lr=0.05):
    t = torch.tensor(p0.astype(dtype), requires_grad=True)
    opt = torch.optim.Adagrad([t], lr=lr, **kw)
    for k, gr in enumerate(grads):
        g = torch.tensor(gr.astype(dtype))
        if sparse_rows is not None:
            r = torch.tensor(sparse_rows[k])
            g = torch.sparse_coo_tensor(r[None], g[r], g.shape, check_invariants=True)
        t.grad = g
        with torch.sparse.check_sparse_tensor_invariants(True):  # torch warns when unset
            opt.step()
    return t.detach().numpy(), opt.state[t]["sum"].numpy()


# torch rounds some of its steps with a fused multiply-add where the vector unit has one
# (param.add_(sparse, alpha) and grad.add(param, alpha=weight_decay)); our kernels never fuse
# (one FMA policy, DESIGN.md), so the comparison is to within a few float32 roundings
TORCH_TOL = {np.float32: dict(rtol=2e-6, atol=1e-7), np.float64: dict(rtol=1e-14, atol=1e-15)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("v", ADAGRAD_VARIANTS, ids=str)
def test_adagrad_dense_matches_torch(dtype, v):
    torch = pytest.importorskip("torch")
    p0, grads = data(6, steps=40)
    got, opt = run_pair("adagrad", v, p0, grads, dtype)
    want, want_sum = torch_run(torch, v, p0, grads, dtype)
    np.testing.assert_allclose(got, want, **TORCH_TOL[dtype])
    np.testing.assert_allclose(opt.state[opt.param_groups[0]["params"][0]]["sum"], want_sum,
                               **TORCH_TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("v", [v for v in ADAGRAD_VARIANTS if not v.get("weight_decay")], ids=str)
def test_lazy_adagrad_matches_torch_sparse_adagrad(dtype, v):
    # torch's Adagrad with a sparse gradient changes only the rows in it (sum and weight) and
    # rounds p + (-clr) * (g / std) where the dense step rounds p + (-clr * g) / std; it refuses
    # weight decay. lazy=True is that step: compared to it, not to the dense one
    torch = pytest.importorskip("torch")
    p0, grads = data(7, steps=40)
    rows = touched_rows(8, steps=40)
    emb, opt = run_table("adagrad", v, p0, grads, rows, dtype, lazy=True)
    want, want_sum = torch_run(torch, v, p0, grads, dtype, sparse_rows=rows)
    np.testing.assert_allclose(emb.weight, want, **TORCH_TOL[dtype])
    np.testing.assert_array_equal(opt.state[emb]["sum"], want_sum)  # s + g*g: no FMA to differ


# ---- one step of the C function, any shape -------------------------------------------------------

@settings(max_examples=25)
@given(n=st.integers(1, 9), d=st.integers(1, 40), f64=st.booleans(), rowwise=st.booleans(),
       wd=st.sampled_from([0.0, 0.1]), decoupled=st.booleans(), maximize=st.booleans(),
       sparse_form=st.booleans(), seed=st.integers(0, 2**16))
def test_one_step_any_shape_rows_compact_and_frozen(n, d, f64, rowwise, wd, decoupled, maximize,
                                                    sparse_form, seed):
    dtype = np.float64 if f64 else np.float32
    rng = np.random.default_rng(seed)
    p = rng.standard_normal((n, d)).astype(dtype)
    g = rng.standard_normal((n, d)).astype(dtype)
    s0 = rng.random(n if rowwise else (n, d)).astype(dtype)
    rows = np.flatnonzero(rng.random(n) < 0.6)
    frozen = (rng.random(n) < 0.3).astype(np.uint8)
    kw = dict(lr=0.1, eps=1e-3, weight_decay=wd, maximize=maximize, rowwise=rowwise,
              decoupled=decoupled and rowwise, sparse_form=sparse_form and not rowwise)
    a, sa = p.copy(), s0.copy()
    _core.adagrad_step(a, g, sa, rows=rows, frozen=frozen, **kw)
    b, sb = p.copy(), s0.copy()
    _core.adagrad_step(b, np.ascontiguousarray(g[rows]), sb, rows=rows, compact=True,
                       frozen=frozen, **kw)
    assert same_bits(a, b) and same_bits(sa, sb)
    upd = rows[frozen[rows] == 0]
    want, st_ = p.astype(np.float64), {"step": 0, "sum": s0.astype(np.float64)}
    rkw = dict(lr=0.1, eps=1e-3, weight_decay=wd, maximize=maximize, rows=upd)
    if rowwise:
        ref.rowwise_adagrad_step(want, g.astype(np.float64), st_, decoupled=decoupled, **rkw)
    else:
        ref.adagrad_step(want, g.astype(np.float64), st_, **rkw)
    tol = dict(rtol=1e-5, atol=1e-6) if not f64 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(a, want, **tol)
    np.testing.assert_allclose(sa, st_["sum"], **tol)
    other = np.setdiff1d(np.arange(n), upd)
    assert same_bits(a[other], p[other]) and same_bits(sa[other], s0[other])


def emulate_f32(p, g, s, lr, eps, wd, maximize, rowwise, decoupled, sparse_form):
    """The kernels' float32 arithmetic, operation by operation in NumPy (no fused multiply-add
    anywhere), the row-wise sum of squares in the kernel's order: 16 lanes of float64 partial
    sums (axis-0 reductions add rows one after another), then a fixed tree."""
    f = np.float32
    g = g * f(-1 if maximize else 1)
    if not rowwise:
        if wd:
            g = g + f(wd) * p
        s = s + g * g
        std = np.sqrt(s) + f(eps)
        p = p + f(-lr) * (g / std) if sparse_form else p + (f(-lr) * g) / std
        return p, s
    l2 = wd and not decoupled
    gw = g + f(wd) * p if l2 else g
    n, d = p.shape
    sq = np.zeros((n, -(-d // 16) * 16))
    sq[:, :d] = gw.astype(np.float64) ** 2
    acc = sq.reshape(n, -1, 16).sum(axis=1)
    for w in (8, 4, 2, 1):
        acc[:, :w] += acc[:, w:2 * w]
    s = s + (acc[:, 0] / d).astype(f)
    mult = f(lr) / (np.sqrt(s) + f(eps))
    if l2:
        corr = (1.0 - (mult * f(wd)).astype(np.float64)).astype(f)
    elif wd:
        corr = np.full(n, f(1.0 - float(f(lr) * f(wd))), f)
    else:
        corr = np.ones(n, f)
    return corr[:, None] * p - g * mult[:, None], s


@settings(max_examples=20)
@given(n=st.integers(1, 5), d=st.integers(1, 70), rowwise=st.booleans(),
       wd=st.sampled_from([0.0, 0.3]), decoupled=st.booleans(), maximize=st.booleans(),
       sparse_form=st.booleans(), seed=st.integers(0, 2**16))
def test_float32_arithmetic_is_exactly_the_documented_order(n, d, rowwise, wd, decoupled,
                                                            maximize, sparse_form, seed):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal((n, d)).astype(np.float32)
    g = rng.standard_normal((n, d)).astype(np.float32)
    s = rng.random(n if rowwise else (n, d)).astype(np.float32)
    decoupled, sparse_form = decoupled and rowwise, sparse_form and not rowwise
    want_p, want_s = emulate_f32(p, g, s, 0.07, 1e-3, wd, maximize, rowwise, decoupled,
                                 sparse_form)
    _core.adagrad_step(p, g, s, lr=0.07, eps=1e-3, weight_decay=wd, maximize=maximize,
                       rowwise=rowwise, decoupled=decoupled, sparse_form=sparse_form)
    assert same_bits(p, want_p.astype(np.float32)) and same_bits(s, want_s.astype(np.float32))


# ---- threads, vector levels, frozen rows -----------------------------------------------------------

def train(emb, opt, rng, steps, n_ids, pair=None):
    """`steps` steps: a backward of random ids (and a random gradient for an (array, grad) pair),
    then the optimizer's step and zero_grad."""
    for _ in range(steps):
        ids = rng.integers(0, emb.num_embeddings, n_ids)
        emb.backward(ids, rng.standard_normal((n_ids, emb.embedding_dim)).astype(emb.dtype))
        if pair is not None:
            pair[1][...] = rng.standard_normal(pair[1].shape)
        opt.step()
        opt.zero_grad()


BIG = {"adagrad": lambda ps: optim.Adagrad(ps, lr=0.05, weight_decay=0.01),
       "lazy": lambda ps: optim.Adagrad(ps, lr=0.05, lazy=True, lr_decay=0.1),
       "rowwise": lambda ps: optim.RowWiseAdagrad(ps, lr=0.05, weight_decay=0.01)}


def _big_run(kind):
    """A table of ~1.1 MB per array (above the parallel threshold) with frozen rows, and a pair."""
    rng = np.random.default_rng(20)
    emb = pyembed.Embedding(3000, 96, seed=1)
    emb.freeze_rows([5, 6, 2999])
    pair = (rng.standard_normal((2000, 67)).astype(np.float32), np.zeros((2000, 67), np.float32))
    train(emb, BIG[kind]([emb, pair]), rng, 3, 2500, pair)
    return emb.weight.copy(), pair[0]


@pytest.mark.skipif(not _core.have_openmp(), reason="built without OpenMP")
@pytest.mark.parametrize("kind", sorted(BIG))
def test_bitwise_identical_for_1_2_3_threads(kind):
    runs = {}
    for nt in (1, 2, 3):
        pyembed.set_num_threads(nt)
        runs[nt] = _big_run(kind)
    assert all(same_bits(runs[nt][i], runs[1][i]) for nt in (2, 3) for i in (0, 1))


@pytest.mark.parametrize("rowwise", [False, True])
def test_compact_gradient_is_the_row_indexed_one_for_1_2_3_threads(rowwise):
    # the form an optimizer applied in the backward passes: grad[i] is rows[i]'s
    rng = np.random.default_rng(21)
    p0 = rng.standard_normal((4000, 80)).astype(np.float32)
    g = rng.standard_normal(p0.shape).astype(np.float32)
    rows = np.flatnonzero(rng.random(4000) < 0.7)
    frozen = (rng.random(4000) < 0.05).astype(np.uint8)
    results = []
    for nt, compact in ((1, False), (1, True), (2, True), (3, True)):
        pyembed.set_num_threads(nt)
        p, s = p0.copy(), np.full(4000 if rowwise else p0.shape, 0.5, np.float32)
        _core.adagrad_step(p, np.ascontiguousarray(g[rows]) if compact else g, s, lr=0.1,
                           weight_decay=0.01, rowwise=rowwise, rows=rows, compact=compact,
                           frozen=frozen)
        results.append((p, s))
    assert all(same_bits(a, b) for r in results[1:] for a, b in zip(r, results[0]))


def test_bitwise_identical_for_every_simd_level():
    levels = {}
    try:
        for level in range(_core._set_simd_level(-1) + 1):
            _core._set_simd_level(level)
            levels[level] = [a for kind in sorted(BIG) for a in _big_run(kind)]
    finally:
        _core._set_simd_level(-1)
    assert all(same_bits(a, b) for lv in levels for a, b in zip(levels[lv], levels[0]))


@pytest.mark.parametrize("make_opt", [
    lambda e: optim.Adagrad(e, lr=0.1, weight_decay=0.1),
    lambda e: optim.Adagrad(e, lr=0.1),
    lambda e: optim.Adagrad(e, lr=0.1, lazy=True),
    lambda e: optim.RowWiseAdagrad(e, lr=0.1, weight_decay=0.1, decoupled_weight_decay=True),
], ids=["dense", "touched", "lazy", "rowwise"])
def test_frozen_rows_unchanged_after_50_steps(make_opt):
    emb = pyembed.Embedding(40, 9, seed=3)
    frozen = [0, 5, 6, 7, 39]
    emb.freeze_rows(frozen)
    w0 = emb.weight.copy()
    opt = make_opt(emb)
    train(emb, opt, np.random.default_rng(16), 50, 30)
    assert same_bits(emb.weight[frozen], w0[frozen])
    assert not opt.state[emb]["sum"][frozen].any()
    free = np.setdiff1d(np.arange(40), frozen)
    assert (emb.weight[free] != w0[free]).all()


# ---- state_dict, param groups --------------------------------------------------------------------

@pytest.mark.parametrize("cls", [optim.Adagrad, optim.RowWiseAdagrad])
def test_state_dict_round_trip_through_npz(cls, tmp_path):
    # two groups (a table, an array pair with its own lr); 10 steps, save, 10 more steps, and the
    # same 10 more steps from the saved state in a new optimizer: the same bits
    def build(w, a):
        emb = pyembed.Embedding(N, D, init=w.copy())
        pair = (a.copy(), np.zeros_like(a))
        groups = [{"params": [emb]}, {"params": [pair], "lr": 0.02}]
        return emb, pair, cls(groups, lr=0.05, weight_decay=0.01, lr_decay=0.1)

    p0 = np.random.default_rng(17).standard_normal((N, D)).astype(np.float32)
    emb, pair, opt = build(p0, p0[:3])
    train(emb, opt, np.random.default_rng(18), 10, 7, pair)
    np.savez(tmp_path / "opt.npz", **opt.state_dict())
    emb2, pair2, opt2 = build(emb.weight, pair[0])
    opt2.load_state_dict(np.load(tmp_path / "opt.npz"))
    sd = opt2.state_dict()
    assert sd["state.0.sum"].shape == ((N,) if cls is optim.RowWiseAdagrad else (N, D))
    assert int(sd["state.0.step"]) == 10 and int(sd["state.1.step"]) == 10
    train(emb, opt, np.random.default_rng(19), 10, 7, pair)
    train(emb2, opt2, np.random.default_rng(19), 10, 7, pair2)
    assert same_bits(emb.weight, emb2.weight) and same_bits(pair[0], pair2[0])
    # a sum of the other optimizer's shape is refused and changes nothing
    bad = dict(sd, **{"state.0.sum": np.zeros((N,) if sd["state.0.sum"].ndim == 2 else (N, D))})
    before = opt2.state_dict()["state.0.sum"].copy()
    with pytest.raises(ValueError, match="state.0.sum"):
        opt2.load_state_dict(bad)
    assert same_bits(opt2.state_dict()["state.0.sum"], before)


def test_rowwise_state_is_one_value_per_row_and_other_shapes_are_one_row():
    emb = pyembed.Embedding(50, 16, seed=0)
    emb.backward([3, 4], np.ones((2, 16), np.float32))
    b, gb = np.zeros(7, np.float32), np.ones(7, np.float32)
    opt = optim.RowWiseAdagrad([emb, (b, gb)], lr=0.1)
    opt.step()
    pair = opt.param_groups[0]["params"][1]
    assert opt.state[emb]["sum"].shape == (50,) and opt.state[pair]["sum"].shape == (1,)
    np.testing.assert_array_equal(opt.state[emb]["sum"][[2, 3, 4]], [0, 1, 1])
    np.testing.assert_allclose(b, -0.1 / (1 + 1e-8), rtol=1e-7)


# ---- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [optim.Adagrad, optim.RowWiseAdagrad])
@pytest.mark.parametrize("kw,match", [
    (dict(lr=-1), "learning rate"), (dict(lr=float("nan")), "learning rate"),
    (dict(eps=-1e-3), "epsilon"), (dict(weight_decay=-0.1), "weight_decay"),
    (dict(weight_decay=float("inf")), "weight_decay"), (dict(lr_decay=-1), "lr_decay"),
    (dict(initial_accumulator_value=-1), "initial_accumulator_value"),
])
def test_bad_hyperparameters_like_torch(cls, kw, match):
    emb = pyembed.Embedding(4, 3, seed=0)
    with pytest.raises(ValueError, match=match):
        cls(emb, **kw)
    opt = cls(emb)
    emb.backward([1], np.ones((1, 3), np.float32))
    opt.step()
    w, s = emb.weight.copy(), opt.state[emb]["sum"].copy()
    opt.param_groups[0].update(kw)
    with pytest.raises(ValueError, match=match):
        opt.step()
    assert same_bits(emb.weight, w) and same_bits(opt.state[emb]["sum"], s)
    with pytest.raises(TypeError, match="lr"):
        cls(emb, lr="a")


def test_adagrad_step_errors_change_nothing():
    # every argument refused with its name, before anything is written
    f32, ones = np.float32, np.ones((6, 5), np.float32)
    bad = [
        (dict(grad=ones.astype(np.float64)), ValueError, "grad has dtype"),
        (dict(state_sum=np.zeros((6, 4), f32)), ValueError, "state_sum has shape"),
        (dict(state_sum=np.zeros(6, f32)), ValueError, "state_sum"),
        (dict(rowwise=True), ValueError, "state_sum"),
        (dict(rowwise=True, state_sum=np.zeros(6)), ValueError, "state_sum"),
        (dict(state_sum=np.zeros((5, 6), f32).T), ValueError, "contiguous"),
        (dict(state_sum=np.zeros((6, 5), f32)[::-1]), ValueError, "contiguous"),
        (dict(param=ones.astype(np.int32)), ValueError, "float32 or float64"),
        (dict(grad=[1, 2]), TypeError, "ndarray"),
        (dict(rows=[3, 1]), ValueError, "increasing"),
        (dict(rows=[0, 6]), IndexError, "6"),
        (dict(rows=[0.5]), TypeError, "integers"),
        (dict(compact=True), ValueError, "compact"),
        (dict(compact=True, rows=[1, 2]), ValueError, "grad has shape"),
        (dict(frozen=np.zeros(5, np.uint8)), ValueError, "frozen"),
        (dict(table=object()), TypeError, "Table"),
        ("read-only state_sum", ValueError, "read-only"),
        ("state_sum is param", ValueError, "share memory"),
    ]
    for change, exc, match in bad:
        arrays = dict(param=ones.copy(), grad=ones.copy(), state_sum=np.zeros((6, 5), f32))
        kw = dict(arrays, lr=0.1)
        if change == "read-only state_sum":
            arrays["state_sum"].setflags(write=False)
        elif change == "state_sum is param":
            kw["state_sum"] = arrays["param"]
        else:
            kw.update(change)
        with pytest.raises(exc, match=match):
            _core.adagrad_step(**kw)
        assert same_bits(arrays["param"], ones) and not arrays["state_sum"].any(), change

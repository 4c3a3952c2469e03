"""Optimizers applied in the backward (issue 12, ``in_backward=True``): the same bits as
backward-then-step of the same optimizer, for every optimizer x module x thread count x dtype,
no gradient buffer, and the errors for what cannot run in the backward."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pyembed
from pyembed import optim
from child import PKG_PARENT
from reference import same_bits

OPTS = {
    "adam": lambda p, f: optim.Adam(p, lr=0.05, lazy=True, in_backward=f),
    "adam_wd_per_row": lambda p, f: optim.Adam(p, lr=0.05, weight_decay=0.1, lazy=True,
                                               per_row_step=True, in_backward=f),
    "adamw_ams_max": lambda p, f: optim.AdamW(p, lr=0.05, amsgrad=True, maximize=True,
                                              lazy=True, in_backward=f),
    "sparse_adam": lambda p, f: optim.SparseAdam(p, lr=0.05, in_backward=f),
    "sgd": lambda p, f: optim.SGD(p, lr=0.05, in_backward=f),
    "sgd_nesterov_lazy": lambda p, f: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True,
                                                lazy=True, in_backward=f),
    "sgd_wd_damp_lazy": lambda p, f: optim.SGD(p, lr=0.05, momentum=0.5, dampening=0.3,
                                               weight_decay=0.01, lazy=True, in_backward=f),
    "adagrad_lazy_wd_decay_max": lambda p, f: optim.Adagrad(
        p, lr=0.05, lr_decay=0.1, weight_decay=0.01, initial_accumulator_value=0.1,
        maximize=True, lazy=True, in_backward=f),
    "rowwise_adagrad_l2_decay": lambda p, f: optim.RowWiseAdagrad(
        p, lr=0.05, weight_decay=0.01, lr_decay=0.1, in_backward=f),
    "rowwise_adagrad_decoupled": lambda p, f: optim.RowWiseAdagrad(
        p, lr=0.05, weight_decay=0.01, decoupled_weight_decay=True,
        initial_accumulator_value=0.1, in_backward=f),
}
MODULES = ["emb", "emb_pad_freq_frozen", "emb_max_norm", "bag_sum_psw", "bag_mean_freq", "bag_max", "input"]
ROWS, DIM = 300, 48  # 1536 ids x 48: past the size at which the kernels use threads


def zipf(rng, shape, rows):
    return np.minimum(rng.zipf(1.3, shape) - 1, rows - 1)


def make(kind, dtype):
    if kind.startswith("emb"):
        extra = dict(padding_idx=3, scale_grad_by_freq=True) if "pad" in kind else {}
        if "max_norm" in kind:
            extra = dict(max_norm=1.0)
        m = pyembed.Embedding(ROWS, DIM, seed=1, dtype=dtype, **extra)
        if "frozen" in kind:
            m.freeze_rows([0, 5, 7])
    elif kind.startswith("bag"):
        mode = kind.split("_")[1]
        m = pyembed.EmbeddingBag(ROWS, DIM, mode, seed=1, dtype=dtype, padding_idx=1,
                                 scale_grad_by_freq="freq" in kind)
    else:
        m = pyembed.InputEmbedding(ROWS, DIM, max_len=64, positional="learned", seed=1,
                                   dtype=dtype)
    return m


def train(kind, dtype, opt_name, fused, steps=3, seed=0):
    m = make(kind, dtype)
    opt = OPTS[opt_name](m, fused)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        ids = zipf(rng, (24, 64), ROWS)
        g = rng.standard_normal((24, 64, DIM)).astype(dtype)
        if kind.startswith("bag"):
            psw = rng.standard_normal((24, 64)).astype(dtype) if "psw" in kind else None
            m.bag(ids, per_sample_weights=psw)
            m.backward(g[:, 0])
        elif kind == "input":
            m(ids)
            m.backward(ids, g)
        else:
            m(ids)
            m.backward(ids, g)
        opt.step()
        opt.zero_grad()
    tables = m.parameters()
    return [t.weight.copy() for t in tables], [
        {k: np.array(v, copy=True) for k, v in opt.state[t].items()} if t in opt.state else {}
        for t in tables], tables


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nt", [1, 2, 3])
@pytest.mark.parametrize("kind", MODULES)
@pytest.mark.parametrize("opt_name", sorted(OPTS))
def test_in_backward_equals_backward_then_step(opt_name, kind, nt, dtype, threads):
    threads(1)
    w_ref, st_ref, _ = train(kind, dtype, opt_name, False)
    threads(nt)
    w, st, tables = train(kind, dtype, opt_name, True)
    for a, b in zip(w, w_ref):
        assert same_bits(a, b)
    for a, b in zip(st, st_ref):
        assert sorted(a) == sorted(b)
        for k in a:
            assert same_bits(a[k], b[k]), k
    for t in tables:  # no gradient was ever kept
        assert t.table.grad is None and t.touched.size == 0


def snapshot(e, opt):
    """The table's weight and its optimizer state after a run, copied."""
    return e.weight.copy(), {k: np.array(v) for k, v in opt.state.get(e, {}).items()}


def assert_same_run(a, b):
    """Two snapshots hold the same bits: the weight and every state entry of the first."""
    assert same_bits(a[0], b[0])
    for k in a[1]:
        assert same_bits(a[1][k], b[1][k]), k


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, "bfloat16"])
@pytest.mark.parametrize("nt", [1, 3])
@pytest.mark.parametrize("dim", [300, 1029])
@pytest.mark.parametrize("opt_name", ["adam_wd_per_row", "sgd_nesterov_lazy",
                                      "adagrad_lazy_wd_decay_max", "rowwise_adagrad_l2_decay"])
def test_in_backward_long_rows(opt_name, dim, nt, dtype, threads):
    """Rows longer than one part of the update (inbwd.h's PE_BWD_CHUNK, 512 bytes), with a short
    last part, and segments long and short: each update sums the next row in parts while it
    works, which must give the same bits as summing whole rows (half tables: a part is a
    widening chunk)."""
    if dtype == "bfloat16":
        pytest.importorskip("ml_dtypes", reason="bfloat16 tables need ml_dtypes")
    half = dtype in (np.float16, "bfloat16")
    gdtype = np.float32 if half else dtype
    out = []
    for fused, n_threads in ((False, 1), (True, nt)):
        threads(n_threads)
        e = pyembed.Embedding(40, dim, padding_idx=2, scale_grad_by_freq=True, seed=3,
                              dtype=dtype)
        e.freeze_rows([5])
        opt = OPTS[opt_name](e, fused)
        r = np.random.default_rng(7)
        for _ in range(2):
            ids = zipf(r, 300, 40)  # row 0 ~ 100 times, most rows once or twice
            g = r.standard_normal((300, dim)).astype(gdtype)
            e.backward(ids, g)
            opt.step()
            opt.zero_grad()
        out.append(snapshot(e, opt))
    assert_same_run(*out)


@settings(max_examples=20, deadline=None)
@given(rows=st.integers(1, 12), dim=st.integers(1, 9), n=st.integers(0, 30),
       pad=st.one_of(st.none(), st.integers(-1, 0)), freq=st.booleans(),
       frozen=st.lists(st.integers(0, 11), max_size=3), seed=st.integers(0, 2**16),
       f64=st.booleans(), opt_name=st.sampled_from(sorted(OPTS)))
def test_in_backward_hypothesis(rows, dim, n, pad, freq, frozen, seed, f64, opt_name):
    dtype = np.float64 if f64 else np.float32
    out = []
    for fused in (False, True):
        e = pyembed.Embedding(rows, dim, padding_idx=pad, scale_grad_by_freq=freq, seed=seed,
                              dtype=dtype)
        if frozen:
            e.freeze_rows([f % rows for f in frozen])
        opt = OPTS[opt_name](e, fused)
        r = np.random.default_rng(seed)
        for _ in range(3):
            ids = r.integers(0, rows, n)  # few rows: repeats
            g = r.standard_normal((n, dim)).astype(dtype)
            g[r.random((n, dim)) < 0.2] = -0.0  # the dense path adds -0.0 into +0.0
            e.backward(ids, g)
            opt.step()
            opt.zero_grad()
        out.append(snapshot(e, opt))
    assert_same_run(*out)


def fused_emb(**kw):
    e = pyembed.Embedding(20, 4, seed=0, **kw)
    return e, optim.Adam(e, lr=0.1, lazy=True, in_backward=True)


def test_step_and_zero_grad_are_no_ops_and_no_gradient_is_kept():
    e, opt = fused_emb()
    before = e.weight.copy()
    e.backward([1, 2, 2], np.ones((3, 4), np.float32))
    changed = e.weight.copy()
    assert not same_bits(before, changed)
    assert e.grad is None and e.table.grad is None
    opt.step()
    opt.zero_grad()
    assert same_bits(e.weight, changed)
    assert opt.state[e]["step"] == 1
    e.backward([3], np.ones((1, 4), np.float32))
    assert opt.state[e]["step"] == 2


def test_a_backward_of_padding_alone_is_no_step():
    e, opt = fused_emb(padding_idx=0)
    e.backward([0, 0], np.ones((2, 4), np.float32))
    opt.step()
    assert not opt.state.get(e)


def test_what_cannot_run_in_the_backward_raises():
    e, opt = fused_emb()
    e.backward([1], np.ones((1, 4), np.float32))
    with pytest.raises(RuntimeError, match="opt.step"):
        e.backward([1], np.ones((1, 4), np.float32))
    with pytest.raises(RuntimeError, match="sparse=True"):
        e.sparse_grad()
    with pytest.raises(RuntimeError, match="dense mode"):
        e.attend_backward(np.ones((1, 4)), np.ones((1, 20)))
    with pytest.raises(RuntimeError, match="sparse=True"):
        optim.clip_grad_norm_(e, 1.0)
    with pytest.raises(ValueError, match="already"):
        optim.SGD(e, in_backward=True)
    for kw in ({}, {"weight_decay": 0.1}, {"eps": 0.0}):  # torch's dense Adagrad: refused
        with pytest.raises(ValueError, match="lazy=True"):
            optim.Adagrad(pyembed.Embedding(4, 2), in_backward=True, **kw)


def test_a_group_added_later_runs_in_the_backward_too():
    e, opt = fused_emb()
    e2 = pyembed.Embedding(20, 4, seed=1)
    opt.add_param_group({"params": [e2], "lr": 0.5})
    assert e2.in_backward_hook is not None and e2.in_backward_hook.group["lr"] == 0.5


def test_lr_changes_between_backwards_are_used():
    ref, opt_ref = pyembed.Embedding(20, 4, seed=0), None
    opt_ref = optim.Adam(ref, lr=0.1, lazy=True)
    e, opt = fused_emb()
    for lr in (0.1, 0.01):
        for o, m in ((opt_ref, ref), (opt, e)):
            o.param_groups[0]["lr"] = lr
            m.backward([1, 4], np.ones((2, 4), np.float32))
            o.step()
            o.zero_grad()
    assert same_bits(ref.weight, e.weight)


def test_load_state_dict_keeps_the_backward_on_the_loaded_options():
    ref = pyembed.Embedding(20, 4, seed=0)
    opt_ref = optim.Adam(ref, lr=0.1, lazy=True)
    e, opt = fused_emb()
    for o, m in ((opt_ref, ref), (opt, e)):
        m.backward([1, 4], np.ones((2, 4), np.float32))
        o.step()
        o.zero_grad()
        sd = {k: np.array(v) for k, v in o.state_dict().items()}
        sd["param_groups.0.lr"] = np.array(0.5)
        o.load_state_dict(sd)
        m.backward([1, 5], np.ones((2, 4), np.float32))
        o.step()
    assert opt.param_groups[0]["lr"] == 0.5
    assert same_bits(ref.weight, e.weight)


PEAK = textwrap.dedent("""
    import resource, sys
    import numpy as np, pyembed
    from pyembed import optim
    fused = sys.argv[1] == "1"
    rows, dim = 16000, 512
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    e = pyembed.Embedding(rows, dim, seed=0)
    opt = optim.Adam(e, lr=1e-3, lazy=True, in_backward=fused)
    rng = np.random.default_rng(0)
    g = np.ones((4096, dim), np.float32)
    for _ in range(5):
        ids = rng.integers(0, rows, 4096)
        e.backward(ids, g)
        opt.step()
        opt.zero_grad()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((peak - base) * 1024 / e.nbytes)
""")


def peak_ratio(fused):
    r = subprocess.run([sys.executable, "-c", PEAK, "1" if fused else "0"], cwd=PKG_PARENT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return float(r.stdout)


def test_peak_memory_in_the_backward():
    """5 steps of lazy Adam on a 32 MB table, in a child: weight + m + v + the batch's
    gradient (8 MB) and nothing of the table's size more (backward-then-step also holds a
    dense gradient: about one table more)."""
    fused = peak_ratio(True)
    assert fused < 3.6, fused


def test_pyembed_torch_module_with_an_optimizer_in_the_backward():
    torch = pytest.importorskip("torch", reason="pyembed.torch needs torch")
    import pyembed.torch as pt
    rng = np.random.default_rng(0)
    for cls in (pt.Embedding, pt.EmbeddingBag):
        m = cls(50, 8, padding_idx=1) if cls is pt.Embedding else cls(50, 8, mode="sum")
        ref = pyembed.Embedding(50, 8, padding_idx=1, init=m.weight.detach().numpy().copy())
        if cls is pt.EmbeddingBag:
            ref = pyembed.EmbeddingBag(50, 8, "sum", init=m.weight.detach().numpy().copy())
        opt = optim.Adam(m, lr=0.1, lazy=True, in_backward=True)
        ref_opt = optim.Adam(ref, lr=0.1, lazy=True)
        for _ in range(3):
            ids = rng.integers(0, 50, (4, 6))
            g = rng.standard_normal((4, 6, 8)).astype(np.float32)
            if cls is pt.Embedding:
                m(torch.from_numpy(ids)).backward(torch.from_numpy(g))
                ref.backward(ids, g)
            else:
                m(torch.from_numpy(ids)).backward(torch.from_numpy(g[:, 0]))
                ref.bag(ids)
                ref.backward(g[:, 0])
            assert m.weight.grad is None  # torch got no gradient: the step ran in the backward
            opt.step()
            ref_opt.step()
            ref_opt.zero_grad()
        assert same_bits(m.weight.detach().numpy(), ref.weight)
        assert same_bits(opt.state[m]["exp_avg"], ref_opt.state[ref]["exp_avg"])

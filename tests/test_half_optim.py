"""Optimizer updates on float16 / bfloat16 tables (issue 12, item 4): the gradient and the state
are float32, each updated row is widened, updated by the float32 arithmetic and rounded back.
Exactness: the half table's update is, bit for bit, the float32 optimizer's on the widened table
(same gradient, same state) rounded back to nearest even, or rounded by
``_core.narrow_rows(..., stochastic=True, seed, step)``; for SGD / Adam / AdamW / SparseAdam /
Adagrad / RowWiseAdagrad, lazy, dense and in the backward, for 1, 2 and 3 threads."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pyembed
from pyembed import _core, optim
from child import PKG_PARENT
from reference import same_bits

ml_dtypes = pytest.importorskip("ml_dtypes", reason="bfloat16 tables need ml_dtypes")

ROWS, DIM = 64, 300  # DIM > 256: a row spans several of the kernels' float32 chunks
SEED = 12345

OPTS = {  # name: (factory(params, in_backward, **rounding), the stochastic-rounding counter)
    "sgd": (lambda p, f, **r: optim.SGD(p, lr=0.05, in_backward=f, **r), "updates"),
    "sgd_mom_lazy": (lambda p, f, **r: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True,
                                                 lazy=True, in_backward=f, **r), "updates"),
    "sgd_wd_dense": (lambda p, f, **r: optim.SGD(p, lr=0.05, momentum=0.5, weight_decay=0.01,
                                                 **r), "updates"),
    "adam_lazy": (lambda p, f, **r: optim.Adam(p, lr=0.01, lazy=True, in_backward=f, **r),
                  "step"),
    "adamw_ams_lazy": (lambda p, f, **r: optim.AdamW(p, lr=0.01, amsgrad=True, lazy=True,
                                                     in_backward=f, **r), "step"),
    "adam_dense_wd": (lambda p, f, **r: optim.Adam(p, lr=0.01, weight_decay=0.1, **r), "step"),
    "sparse_adam": (lambda p, f, **r: optim.SparseAdam(p, lr=0.01, in_backward=f, **r), "step"),
    "adam_per_row": (lambda p, f, **r: optim.Adam(p, lr=0.01, lazy=True, per_row_step=True,
                                                  in_backward=f, **r), "row"),
    "adagrad_lazy": (lambda p, f, **r: optim.Adagrad(p, lr=0.05, lazy=True, in_backward=f, **r),
                     "step"),
    "adagrad_dense_wd": (lambda p, f, **r: optim.Adagrad(p, lr=0.05, weight_decay=0.1,
                                                         initial_accumulator_value=0.1, **r),
                         "step"),
    "rowwise": (lambda p, f, **r: optim.RowWiseAdagrad(p, lr=0.05, in_backward=f, **r), "step"),
    "rowwise_l2": (lambda p, f, **r: optim.RowWiseAdagrad(p, lr=0.05, weight_decay=0.1,
                                                          in_backward=f, **r), "step"),
    "rowwise_decoupled": (lambda p, f, **r: optim.RowWiseAdagrad(
        p, lr=0.05, weight_decay=0.1, decoupled_weight_decay=True, maximize=True,
        in_backward=f, **r), "step"),
}
DENSE = {"sgd_wd_dense", "adam_dense_wd", "adagrad_dense_wd"}  # no in-backward form


def half_dtype(name):
    return np.dtype(np.float16) if name == "float16" else np.dtype(ml_dtypes.bfloat16)


def make(dtype, pad):
    extra = dict(padding_idx=3, scale_grad_by_freq=True) if pad else {}
    e = pyembed.Embedding(ROWS, DIM, seed=1, dtype=dtype, **extra)
    if pad:
        e.freeze_rows([0, 5, 7])
    return e


def backward(e, rng):
    ids = np.minimum(rng.zipf(1.3, (8, 64)) - 1, ROWS - 1)
    g = rng.standard_normal((8, 64, DIM)).astype(np.float32)
    e(ids)
    e.backward(ids, g)
    return ids


@pytest.mark.parametrize("nt", [1, 2, 3])
@pytest.mark.parametrize("sr", [False, True])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
# a dense update cannot run in the backward: those pairs are not generated
@pytest.mark.parametrize("opt_name, fused", [(o, f) for o in sorted(OPTS) for f in (False, True)
                                             if not (f and o in DENSE)])
def test_half_update_is_float32_update_rounded(opt_name, dtype, sr, fused, nt, threads):
    threads(nt)
    factory, counter = OPTS[opt_name]
    hd = half_dtype(dtype)
    pad = opt_name in ("sgd", "adam_lazy", "adagrad_lazy", "rowwise_l2")
    half, ref, expect = make(hd, pad), make(np.float32, pad), make(hd, pad)
    ref.table.weight[...] = half.table.weight.astype(np.float32)
    opt = factory(half, fused, stochastic_rounding=sr, seed=SEED)
    opt_ref = factory(ref, False)
    rng_h, rng_r = np.random.default_rng(7), np.random.default_rng(7)
    for step in range(1, 4):
        before = half.table.weight.copy()
        ref.table.weight[...] = before.astype(np.float32)
        backward(half, rng_h)
        backward(ref, rng_r)
        opt.step()
        opt.zero_grad()
        opt_ref.step()
        opt_ref.zero_grad()
        new32 = ref.table.weight
        if not sr:
            want = new32.astype(hd)
        elif counter == "row":
            # each row rounded with its own step counter (after this step's increment)
            expect.table.weight[...] = before
            rs = opt.state[half.table]["step"]
            for r in range(ROWS):
                _core.narrow_rows(expect.table, np.ascontiguousarray(new32[r:r + 1]), [r],
                                  stochastic=True, seed=SEED, step=int(rs[r]))
            want = expect.table.weight
        else:
            expect.table.weight[...] = before
            _core.narrow_rows(expect.table, np.ascontiguousarray(new32), stochastic=True,
                              seed=SEED, step=step)
            want = expect.table.weight
        assert same_bits(half.table.weight, want), step
        st, st_ref = dict(opt.state.get(half.table, {})), opt_ref.state.get(ref.table, {})
        if counter == "updates":  # SGD counts a half table's updates (its rounding's step)
            assert st.pop("step") == step
        assert sorted(st) == sorted(st_ref)
        for k in st:
            assert same_bits(st[k], st_ref[k]), k
        assert not np.array_equal(half.table.weight, before)
    if fused:
        assert half.table.grad is None


def test_stochastic_rounding_depends_on_seed_only(threads):
    out = []
    for seed, nt in ((1, 1), (1, 3), (2, 2)):
        threads(nt)
        e = make(np.float16, False)
        opt = optim.Adam(e, lr=0.01, lazy=True, stochastic_rounding=True, seed=seed)
        backward(e, np.random.default_rng(0))
        opt.step()
        out.append(e.table.weight.copy())
    assert same_bits(out[0], out[1])
    assert not same_bits(out[0], out[2])


def test_stochastic_rounding_keeps_small_updates():
    # updates far below a bfloat16 ulp: lost by round to nearest, kept on average by SR
    w = {}
    for sr in (False, True):
        e = pyembed.Embedding(4, 512, dtype=half_dtype("bfloat16"))
        e.table.weight[...] = 1.0
        opt = optim.SGD(e, lr=1e-4, stochastic_rounding=sr, seed=3)
        for _ in range(20):
            ids = np.arange(4)
            e(ids)
            e.backward(ids, np.ones((4, 512), np.float32))
            opt.step()
            opt.zero_grad()
        w[sr] = e.table.weight.astype(np.float64)
    assert np.all(w[False] == 1.0)
    assert abs(w[True].mean() - (1.0 - 20 * 1e-4)) < 2e-4


def test_bad_rounding_options():
    e = make(np.float16, False)
    with pytest.raises(TypeError, match="stochastic_rounding"):
        optim.SGD(e, stochastic_rounding=1)
    with pytest.raises(TypeError, match="seed"):
        optim.Adam(e, seed=1.5)
    with pytest.raises(ValueError, match="seed"):
        optim.AdamW(e, seed=-1)
    with pytest.raises(TypeError, match="stochastic_rounding"):
        optim.Adagrad(e, stochastic_rounding="yes")
    with pytest.raises(ValueError, match="seed"):
        optim.RowWiseAdagrad(e, seed=2**64)


@pytest.mark.parametrize("opt_name", ["adam_lazy", "sparse_adam", "sgd", "adagrad_lazy",
                                      "rowwise_l2"])
def test_sparse_table_gives_the_dense_bits(opt_name):
    """Embedding(sparse=True): the compact gradient (grad[i] of rows[i]) updates a half table to
    the bits of the row-indexed one, stochastic rounding included."""
    factory = OPTS[opt_name][0]
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 50, (4, 30))
    g = rng.standard_normal((4, 30, DIM)).astype(np.float32)
    out = []
    for sparse in (False, True):
        e = pyembed.Embedding(50, DIM, dtype=np.dtype(ml_dtypes.bfloat16), sparse=sparse, seed=2)
        opt = factory(e, False, stochastic_rounding=True, seed=9)
        for _ in range(2):
            e(ids)
            e.backward(ids, g)
            opt.step()
            opt.zero_grad()
        out.append(e.table.weight.copy())
    assert same_bits(out[0], out[1])


def test_half_param_must_be_the_weight_of_table():
    # the rounding format and the lock come from table=: a bfloat16 weight given with a float16
    # table= was rounded as float16 (silently wrong bits); now refused, nothing written
    t16 = _core.Table(4, 4, np.float16)
    tb = _core.Table(4, 4, ml_dtypes.bfloat16)
    tb.weight = np.ones((4, 4))
    before = tb.weight.tobytes()
    with pytest.raises(ValueError, match="must be the weight of the half table"):
        _core.sgd_step(tb.weight, np.ones((4, 4), np.float32), lr=0.5, table=t16)
    assert tb.weight.tobytes() == before


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("opt_name", ["rowwise_l2", "adagrad_lazy"])
def test_many_rows_split_over_threads(opt_name, fused, threads):
    """Enough touched rows that the rows kernel too splits them over threads (the table above is
    too small for that): each thread widens into its own row buffer; 1, 2 and 3 threads give
    the float32 update rounded stochastically."""
    factory = OPTS[opt_name][0]
    rows, dim = 1200, 300
    rng = np.random.default_rng(5)
    ids = rng.permutation(rows)[:1000]
    g = rng.standard_normal((1000, dim)).astype(np.float32)
    ref = pyembed.Embedding(rows, dim, seed=3)
    opt_ref = factory(ref, False)
    start = pyembed.Embedding(rows, dim, seed=3, dtype=np.dtype(ml_dtypes.bfloat16))
    ref.table.weight[...] = start.table.weight.astype(np.float32)
    ref(ids)
    ref.backward(ids, g)
    opt_ref.step()
    _core.narrow_rows(start.table, np.ascontiguousarray(ref.table.weight), stochastic=True,
                      seed=SEED, step=1)
    for nt in (1, 2, 3):
        threads(nt)
        e = pyembed.Embedding(rows, dim, seed=3, dtype=np.dtype(ml_dtypes.bfloat16))
        opt = factory(e, fused, stochastic_rounding=True, seed=SEED)
        e(ids)
        e.backward(ids, g)
        opt.step()
        assert same_bits(e.table.weight, start.table.weight), nt
        assert same_bits(opt.state[e]["sum"], opt_ref.state[ref]["sum"]), nt


def test_sgd_rounding_step_is_saved_with_the_state():
    """SGD counts a half table's updates for its stochastic rounding: the count is the state's
    ``step`` and goes through state_dict, so a reloaded run rounds as the uninterrupted one (it
    used to start again from 1 and reuse the first steps' random bits)."""
    hd = np.dtype(ml_dtypes.bfloat16)
    a, b = make(hd, False), make(hd, False)
    opt_a = optim.SGD(a, lr=0.05, stochastic_rounding=True, seed=SEED)
    rng = np.random.default_rng(1)
    for _ in range(2):
        backward(a, rng)
        opt_a.step()
        opt_a.zero_grad()
    assert opt_a.state[a]["step"] == 2
    b.table.weight[...] = a.table.weight
    opt_b = optim.SGD(b, lr=0.05, stochastic_rounding=True, seed=SEED)
    opt_b.load_state_dict(opt_a.state_dict())
    for e, opt in ((a, opt_a), (b, opt_b)):
        backward(e, np.random.default_rng(2))
        opt.step()
    assert same_bits(a.table.weight, b.table.weight)
    sd = opt_a.state_dict()
    sd["state.0.step"] = np.arange(ROWS)
    with pytest.raises(ValueError, match="one counter"):
        opt_b.load_state_dict(sd)


ROW_BUFFERS = textwrap.dedent("""
    import resource
    import numpy as np, pyembed
    from pyembed import optim
    pyembed.set_num_threads(4096)
    e = pyembed.Embedding(8, 8192, dtype="bfloat16", seed=0)
    opt = optim.RowWiseAdagrad(e, lr=0.1, in_backward=True)
    ids, g = np.array([1, 2]), np.ones((2, 8192), np.float32)
    e.backward(ids, g)  # the state exists and every library is loaded before the limit
    opt.step()
    with open("/proc/self/status") as f:
        vm = next(int(x.split()[1]) for x in f if x.startswith("VmSize")) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + (64 << 20), resource.RLIM_INFINITY))
    before = e.weight.copy()
    e.backward(ids, g)
    assert not np.array_equal(before.view(np.uint16), e.weight.view(np.uint16))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc: Linux")
def test_rowwise_row_buffers_are_the_teams():
    """The half row-wise Adagrad in the backward widens each row into a buffer of the thread:
    as many as the driver's team, not as set_num_threads says (4097 row buffers of 32 KiB, for
    a batch of two rows that one thread updates, were a MemoryError under 64 MiB to spare)."""
    r = subprocess.run([sys.executable, "-c", ROW_BUFFERS], cwd=PKG_PARENT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr

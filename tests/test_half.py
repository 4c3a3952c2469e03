"""float16 and bfloat16 tables (issue 12, item 4): storage in 16 bits, lookups and gradients in
float32, rounding back to nearest even (exactly NumPy's / ml_dtypes' astype) or stochastically
(unbiased, and a function of (seed, step, row, column) only)."""
import contextlib
import pickle
import sys

import numpy as np
import pytest

import pyembed
from pyembed import _core
from pyembed.safetensors import safetensors_names

ml_dtypes = pytest.importorskip("ml_dtypes", reason="bfloat16 tables need ml_dtypes")


@contextlib.contextmanager
def simd_level(level):
    """The block runs at vector level `level` (0 baseline, 1 AVX2, 2 AVX-512, -1 the best; a
    level above the CPU's runs its best); the level in use before is restored after."""
    prev = _core._set_simd_level(level)
    try:
        yield
    finally:
        _core._set_simd_level(prev)
BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)
HALF = [F16, BF16]


def bits(a):
    a = np.ascontiguousarray(a)
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def table_of(values, dt):
    """A half table holding `values` (already of dtype dt) bit for bit."""
    t = _core.Table(values.shape[0], values.shape[1], dt)
    t.weight = values
    return t


def narrow(x, dt, **kw):
    """float32 values x (1-D) through narrow_rows into a (len(x), 1) table of dtype dt."""
    x = np.ascontiguousarray(x, np.float32).reshape(-1, 1)
    t = _core.Table(len(x), 1, dt)
    _core.narrow_rows(t, x, **kw)
    return t.weight.reshape(-1).copy()


def boundary_floats():
    """float32 values around every rounding boundary of both half types: all float16 values and
    the midpoints between neighbours (ties) with one float32 ulp either side, the bfloat16 ties
    of a range of exponents (normal and subnormal), zeros, infinities, NaNs (quiet, signalling,
    with payloads), overflow thresholds, and random bit patterns."""
    h = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    h = np.sort(h[np.isfinite(h)].astype(np.float64))
    mids = ((h[1:] + h[:-1]) / 2).astype(np.float32)  # exact: a float16 tie fits a float32
    f16 = np.concatenate([h.astype(np.float32), mids, np.nextafter(mids, np.float32(np.inf)),
                          np.nextafter(mids, np.float32(-np.inf))])
    hi = np.arange(0, 1 << 16, 7, dtype=np.uint32) << 16  # bfloat16 values, every sign
    bf = np.concatenate([hi, hi | 0x8000, hi | 0x7fff, hi | 0x8001]).view(np.float32)
    special = np.array([0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000,
                        0x7f800001, 0x7fa00000, 0x7fffffff, 0xff800001, 0x7f7fffff, 0x7f7f8000,
                        0x477fe000, 0x477fefff, 0x477ff000, 0x477ff001, 0x47800000, 0x00000001,
                        0x33000000, 0x33000001, 0x32ffffff, 0x38800000, 0x387fffff],
                       np.uint32).view(np.float32)
    rnd = np.random.default_rng(0).integers(0, 1 << 32, 200_000, dtype=np.uint64)
    return np.concatenate([f16, bf, special, rnd.astype(np.uint32).view(np.float32)])


# ---- rounding to nearest ---------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning",
                            "ignore:invalid value encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("dt", HALF, ids=str)
def test_nearest_equals_numpy_and_ml_dtypes_bit_for_bit(dt):
    x = boundary_floats()
    np.testing.assert_array_equal(bits(narrow(x, dt)), bits(x.astype(dt)))


@pytest.mark.parametrize("dt", HALF, ids=str)
def test_nearest_against_a_float64_reference(dt):
    """The result is a nearest representable value (ties: the one with an even last bit), found
    from the neighbours' distances in float64."""
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal(20_000) * 10.0 ** rng.integers(-9, 5, 20_000),
                        rng.uniform(-6.5e4, 6.5e4, 2000)]).astype(np.float32)
    r = narrow(x, dt)
    rb = bits(r).astype(np.int64)
    ok = np.isfinite(r.astype(np.float64))
    up, down = (rb + 1).astype(np.uint16).view(dt), (rb - 1).astype(np.uint16).view(dt)
    d = np.abs(r.astype(np.float64) - x)
    for nb in (up, down):
        nd = np.abs(nb.astype(np.float64) - x)
        valid = np.isfinite(nb.astype(np.float64)) & (np.sign(nb.astype(np.float64)) *
                                                     np.sign(r.astype(np.float64)) >= 0)
        assert np.all(~(valid & ok) | (d < nd) | ((d == nd) & (rb % 2 == 0)))
    assert ok.all()


@pytest.mark.parametrize("level", [0, 1, 2])
@pytest.mark.parametrize("dt", HALF, ids=str)
def test_every_value_widens_exactly_and_round_trips(dt, level, stores):
    """All 65536 bit patterns: a lookup widens each exactly (as NumPy / ml_dtypes do, NaN
    payloads kept: float16's hardware conversion at the AVX2 and AVX-512 levels quiets signaling
    NaNs, which the kernel undoes), through the cache and streamed (into an output on 64-byte
    lines, so every row is whole lines), and narrowing the float32 back gives the same bits
    (NaNs the same NaN-ness). A level above the CPU's runs its best."""
    allv = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(dt).reshape(-1, 16)
    t = table_of(allv, dt)
    np.testing.assert_array_equal(bits(t.weight), bits(allv))
    buf = np.empty(allv.size + 16, np.float32)
    base = (-buf.ctypes.data % 64) // 4
    lined = buf[base:base + allv.size].reshape(allv.shape)
    with simd_level(level):
        wide = t.lookup(np.arange(allv.shape[0]))
        t.lookup(np.arange(allv.shape[0]), lined)
    np.testing.assert_array_equal(bits(lined), bits(wide))
    assert wide.dtype == np.float32
    with np.errstate(invalid="ignore"):
        ref = allv.astype(np.float32)
    np.testing.assert_array_equal(bits(wide), bits(ref))
    back = _core.Table(*allv.shape, dt)
    _core.narrow_rows(back, wide)
    nan = np.isnan(allv.astype(np.float32))
    np.testing.assert_array_equal(bits(back.weight)[~nan], bits(allv)[~nan])
    assert np.isnan(back.weight.astype(np.float32)[nan]).all()


@pytest.mark.parametrize("dt", HALF, ids=str)
def test_weight_assignment_rounds_once(dt):
    """A float64 source is cast as NumPy casts it: to float16 directly, not through float32
    (where 1 + 2^-11 + 2^-40 would become the tie 1 + 2^-11 and round down to 1); to bfloat16
    as ml_dtypes does (which goes through float32)."""
    step = 2.0 ** (-10 if dt == F16 else -7)
    x = np.array([[1 + step / 2 + 2.0 ** -40, 1 + step / 2, 1 + 1.5 * step]])
    e = pyembed.Embedding(1, 3, dtype=dt, init="zeros")
    e.weight = x
    np.testing.assert_array_equal(bits(e.weight), bits(x.astype(dt)))
    if dt == F16:
        assert e.weight[0, 0] == 1 + step
    e.weight = x.astype(np.float32)
    np.testing.assert_array_equal(bits(e.weight), bits(x.astype(np.float32).astype(dt)))


# ---- stochastic rounding ---------------------------------------------------------------------

def _draws(x, dt, n_rows, seed=7, step=3):
    t = _core.Table(n_rows, 8, dt)
    _core.narrow_rows(t, np.full((n_rows, 8), x, np.float32), stochastic=True, seed=seed,
                      step=step)
    return t.weight.astype(np.float64).reshape(-1)


@pytest.mark.parametrize("dt", HALF, ids=str)
@pytest.mark.parametrize("base,frac", [(1.0, 0.5), (1.0, 0.1), (-3.0, 0.9), (1.0, 1 / 1024),
                                       (2.0 ** -20, 0.3), (2.0 ** -24, 0.7), (60000.0, 0.25),
                                       (2.0 ** -130, 0.3)])
def test_stochastic_rounding_is_unbiased(dt, base, frac):
    """x between two neighbours a < b rounds to b with probability (x - a) / (b - a): over 32768
    draws (rows x columns, a fixed seed, so the test cannot flake) the count of b is within 6
    standard deviations of its mean, and every draw is a or b."""
    a = np.float64(np.array(base, dt))
    b = np.float64(np.nextafter(np.array(base, dt), np.array(np.inf, dt)))
    x = np.float32(a + frac * (b - a))
    p = (np.float64(x) - a) / (b - a)
    r = _draws(x, dt, 4096)
    assert np.isin(r, [a, b]).all()
    n, k = r.size, int(np.count_nonzero(r == b))
    assert abs(k - n * p) <= 6 * np.sqrt(n * p * (1 - p)) + 1, (k, n * p)
    assert abs(r.mean() - np.float64(x)) <= 6 * (b - a) * np.sqrt(p * (1 - p) / n) + (b - a) / n


@pytest.mark.parametrize("dt", HALF, ids=str)
def test_stochastic_rounding_keeps_representable_values_and_specials(dt):
    vals = np.array([0.0, -0.0, 1.0, -2.5, np.inf, -np.inf, 2.0 ** -24], np.float32)
    if dt == BF16:
        vals[-1] = 2.0 ** -130  # a bfloat16 subnormal
    r = narrow(np.repeat(vals, 500), dt, stochastic=True, seed=3)
    np.testing.assert_array_equal(bits(r), bits(np.repeat(vals.astype(dt), 500)))
    assert np.isnan(narrow(np.full(10, np.nan, np.float32), dt, stochastic=True).astype(
        np.float32)).all()


@pytest.mark.parametrize("dt", HALF, ids=str)
def test_stochastic_rounding_depends_only_on_seed_step_row_column(dt):
    """The same bits for any thread count and row order; other seeds or steps draw others."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4096, 16)).astype(np.float32)
    before = pyembed.get_num_threads()
    out = []
    try:
        for nt in (1, 2, 3):
            pyembed.set_num_threads(nt)
            t = _core.Table(*x.shape, dt)
            _core.narrow_rows(t, x, stochastic=True, seed=11, step=2)
            out.append(bits(t.weight).copy())
    finally:
        pyembed.set_num_threads(before)
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[0], out[2])
    perm = rng.permutation(len(x))
    t = _core.Table(*x.shape, dt)
    _core.narrow_rows(t, x[perm], rows=perm, stochastic=True, seed=11, step=2)
    np.testing.assert_array_equal(bits(t.weight), out[0])
    for kw in (dict(seed=12, step=2), dict(seed=11, step=3)):
        _core.narrow_rows(t, x, stochastic=True, **kw)
        assert (bits(t.weight) != out[0]).mean() > 0.3


# ---- lookups, bags, token + position: the float32 kernels on the widened table ----------------

def _pair(dt, rows=40, dim=37, **kw):
    """A half Embedding and a float32 one holding its widened values."""
    e = pyembed.Embedding(rows, dim, dtype=dt, seed=4, **kw)
    f = pyembed.Embedding(rows, dim, init=e.weight.astype(np.float32), **kw)
    return e, f


@pytest.mark.parametrize("level", [0, -1])
@pytest.mark.parametrize("dt", HALF, ids=str)
def test_lookup_equals_the_widened_float32_table(dt, level):
    e, f = _pair(dt, padding_idx=3)
    ids = np.random.default_rng(2).integers(0, 40, (5, 9))
    with simd_level(level):
        y = e(ids)
        assert y.dtype == np.float32
        np.testing.assert_array_equal(bits(y), bits(f(ids)))
        out = np.empty(ids.shape + (37,), dt)  # out= of the table's dtype: the stored bits
        assert e(ids, out=out) is out
        np.testing.assert_array_equal(bits(out), bits(e.weight[ids]))
        big = np.random.default_rng(3).integers(0, 40, 50_000)  # parallel, non-temporal sizes
        np.testing.assert_array_equal(bits(e(big)), bits(f(big)))


@pytest.mark.parametrize("level", [0, 1, 2])
@pytest.mark.parametrize("dim", [20, 37, 64, 100])
@pytest.mark.parametrize("dt", HALF, ids=str)
def test_lookup_streamed_or_cached_gives_the_widened_bits(dt, dim, level, stores):
    """The widening lookup through the cache and, for outputs past twice the streaming threshold
    (`stores` streams every output), with streaming stores (bfloat16 at every level, float16's
    hardware conversion at AVX2 / AVX-512): the bits of the float32 lookup on the widened table,
    for outputs whose rows start at each 16-byte offset in a line (the partial head and tail
    lines go through the cache) and at 4 bytes (never streamed)."""
    e = pyembed.Embedding(50, dim, dtype=dt, seed=1)
    f = pyembed.Embedding(50, dim, init=e.weight.astype(np.float32))
    ids = np.random.default_rng(0).integers(0, 50, 300)
    want = bits(f(ids))
    buf = np.zeros(ids.size * dim + 32, np.float32)
    base = (-buf.ctypes.data % 64) // 4  # the first element on a 64-byte line
    with simd_level(level):
        np.testing.assert_array_equal(bits(e(ids)), want)
        for off in (0, 1, 4, 8, 12):
            out = buf[base + off:base + off + ids.size * dim].reshape(ids.size, dim)
            assert e(ids, out=out) is out
            np.testing.assert_array_equal(bits(out), want)
    assert not buf[:base].any() and not buf[base + 12 + ids.size * dim:].any()


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("dt", HALF, ids=str)
def test_bags_equal_the_widened_float32_table(dt, mode):
    rng = np.random.default_rng(6)
    e = pyembed.EmbeddingBag(50, 70, mode=mode, dtype=dt, seed=1, padding_idx=2)
    f = pyembed.EmbeddingBag(50, 70, mode=mode, init=e.weight.astype(np.float32), padding_idx=2)
    ids = rng.integers(0, 50, 60)
    off = np.array([0, 5, 5, 20, 41])
    psw = rng.standard_normal(60).astype(np.float32) if mode == "sum" else None
    for lvl in (0, -1):
        with simd_level(lvl):
            y = e(ids, off, per_sample_weights=psw)
            assert y.dtype == np.float32
            np.testing.assert_array_equal(bits(y), bits(f(ids, off, per_sample_weights=psw)))
    g = rng.standard_normal(y.shape).astype(np.float32)
    ge, gf = e.backward(g), f.backward(g)
    assert e.grad.dtype == np.float32
    np.testing.assert_array_equal(bits(e.grad), bits(f.grad))
    if psw is not None:
        np.testing.assert_array_equal(bits(ge), bits(gf))


@pytest.mark.parametrize("positional", ["sinusoidal", "learned", None])
@pytest.mark.parametrize("dt", HALF, ids=str)
def test_token_plus_position_equals_the_widened_float32_tables(dt, positional):
    h = pyembed.InputEmbedding(30, 16, max_len=12, positional=positional, dtype=dt, seed=2)
    f = pyembed.InputEmbedding(30, 16, max_len=12, positional=positional, seed=2)
    f.token.weight = h.token.weight.astype(np.float32)
    if positional == "learned":
        f.position.weight = h.position.weight.astype(np.float32)
    ids = np.random.default_rng(8).integers(0, 30, (3, 7))
    y = h(ids, start=2)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(bits(y), bits(f(ids, start=2)))
    g = np.random.default_rng(9).standard_normal(y.shape).astype(np.float32)
    h.backward(ids, g, start=2)
    f.backward(ids, g, start=2)
    for a, b in zip(h.parameters(), f.parameters()):
        np.testing.assert_array_equal(bits(a.grad), bits(b.grad))


@pytest.mark.parametrize("dt", HALF, ids=str)
def test_backward_equals_float32(dt):
    e, f = _pair(dt, padding_idx=0, scale_grad_by_freq=True)
    rng = np.random.default_rng(10)
    for _ in range(2):  # accumulates across calls
        ids = rng.integers(0, 40, (6, 5))
        g = rng.standard_normal((6, 5, 37)).astype(np.float32)
        e.backward(ids, g)
        f.backward(ids, g)
    assert e.grad.dtype == np.float32 and e.weight.dtype == dt
    np.testing.assert_array_equal(bits(e.grad), bits(f.grad))
    rows, vals = e.sparse_grad()
    assert vals.dtype == np.float32
    np.testing.assert_array_equal(rows, f.sparse_grad()[0])
    h = rng.standard_normal((4, 37)).astype(np.float32)
    gl = rng.standard_normal((4, 40)).astype(np.float32)
    np.testing.assert_array_equal(e.attend(h), f.attend(h))
    np.testing.assert_array_equal(e.attend_backward(h, gl), f.attend_backward(h, gl))
    np.testing.assert_array_equal(bits(e.grad), bits(f.grad))
    e.zero_grad()
    assert not e.grad.any() and e.touched.size == 0


@pytest.mark.parametrize("norm_type", [2.0, 1.0, np.inf, 3.0])
@pytest.mark.parametrize("dt", HALF, ids=str)
def test_max_norm_renormalises_half_rows_as_float32_then_rounds(dt, norm_type):
    """torch.embedding_renorm_ on a half table: the norm of the widened row (in double, as the
    float32 path), the row times the float32 scale, rounded to nearest even."""
    e = pyembed.Embedding(12, 9, dtype=dt, seed=5, max_norm=1.5, norm_type=norm_type)
    W = e.weight.astype(np.float32)
    ids = np.array([[3, 3, 7], [0, 11, 7]])
    y = e(ids)
    want = W.copy()
    for r in np.unique(ids):
        norm = np.linalg.norm(W[r].astype(np.float64), ord=norm_type)
        if norm > 1.5:
            want[r] = (W[r] * np.float32(1.5 / (norm + 1e-7))).astype(dt).astype(np.float32)
    np.testing.assert_array_equal(bits(e.weight.astype(np.float32)), bits(want))
    np.testing.assert_array_equal(bits(y), bits(want[ids]))


# ---- construction, pickling, files -----------------------------------------------------------

@pytest.mark.parametrize("spec", [np.float16, "float16", "bfloat16", ml_dtypes.bfloat16, BF16])
def test_dtype_spellings_and_seeded_init(spec):
    assert _core.Table(2, 3, spec).dtype in HALF
    e = pyembed.Embedding(20, 6, dtype=spec, seed=3)
    f = pyembed.Embedding(20, 6, seed=3)
    assert e.dtype in HALF and e.weight.dtype == e.dtype and e.nbytes == 20 * 6 * 2
    np.testing.assert_array_equal(bits(e.weight), bits(f.weight.astype(e.dtype)))
    assert str(e.dtype) in repr(e)
    z = pyembed.Embedding(3, 2, dtype=spec, init="zeros", padding_idx=1)
    assert not z.weight.astype(np.float32).any()


@pytest.mark.parametrize("init", ["normal", "uniform"])
@pytest.mark.parametrize("dt", HALF, ids=str)
def test_seeded_init_over_several_blocks(dt, init, monkeypatch):
    """A half table's random init is made a block of rows at a time (no float32 copy of the
    whole table): the blocks, the last one partial, give the float32 table's values rounded."""
    monkeypatch.setattr(pyembed.embedding, "_FILL_BLOCK_BYTES", 7 * 37 * 4)
    e = pyembed.Embedding(50, 37, dtype=dt, seed=5, init=init, std=0.5, padding_idx=49)
    f = pyembed.Embedding(50, 37, seed=5, init=init, std=0.5, padding_idx=49)
    np.testing.assert_array_equal(bits(e.weight), bits(f.weight.astype(dt)))


@pytest.mark.parametrize("dt", HALF, ids=str)
def test_pickle_round_trip(dt):
    e, _ = _pair(dt)
    e.backward([1, 2, 2], np.ones((3, 37), np.float32))
    t = pickle.loads(pickle.dumps(e.table))
    assert t.dtype == dt
    np.testing.assert_array_equal(bits(t.weight), bits(e.weight))
    np.testing.assert_array_equal(bits(t.grad), bits(e.grad))
    np.testing.assert_array_equal(t.touched, [1, 2])


@pytest.mark.parametrize("dt", HALF, ids=str)
def test_safetensors_half_against_the_package(tmp_path, dt):
    st_np = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(12)
    w = rng.standard_normal((7, 5)).astype(dt)
    p = tmp_path / "m.safetensors"
    pyembed.save_safetensors(p, {"model.embed_tokens.weight": w, "x": np.ones(3, np.float32)})
    name = "F16" if dt == F16 else "BF16"
    assert safetensors_names(p)["model.embed_tokens.weight"] == (name, (7, 5))
    # the package's own reading of our bytes (it has no NumPy bfloat16: the raw bits then)
    from safetensors import deserialize
    theirs = {k: v for k, v in deserialize(p.read_bytes())}["model.embed_tokens.weight"]
    assert theirs["dtype"] == name and bytes(theirs["data"]) == w.tobytes()
    back = pyembed.load_safetensors(p, dtype=None)
    assert back.dtype == dt
    np.testing.assert_array_equal(bits(back), bits(w))
    np.testing.assert_array_equal(pyembed.load_safetensors(p), w.astype(np.float32))
    if dt == F16:
        np.testing.assert_array_equal(bits(st_np.load_file(p)["model.embed_tokens.weight"]),
                                      bits(w))
    e = pyembed.Embedding.from_pretrained(back)
    assert e.dtype == dt
    np.testing.assert_array_equal(bits(e.weight), bits(w))
    for other in (np.float32, np.float64, F16, BF16):  # and to any other table dtype, as astype
        o = pyembed.EmbeddingBag.from_pretrained(back, dtype=other)
        assert o.dtype == other
        np.testing.assert_array_equal(bits(o.weight), bits(w.astype(np.float32).astype(other)))
    np.testing.assert_array_equal(bits(e([3, 1])), bits(w[[3, 1]].astype(np.float32)))


def test_safetensors_bf16_written_by_torch_loads_as_bfloat16(tmp_path):
    """torch's bfloat16 bits, through the package's file, are ml_dtypes' bfloat16 bits here."""
    torch, st_torch = pytest.importorskip("torch"), pytest.importorskip("safetensors.torch")
    t = (torch.arange(20, dtype=torch.float32).reshape(5, 4) / 7 - 1).to(torch.bfloat16)
    p = str(tmp_path / "bf.safetensors")
    st_torch.save_file({"embeddings.word_embeddings.weight": t}, p)
    back = pyembed.load_safetensors(p, dtype="bfloat16")
    assert back.dtype == BF16
    np.testing.assert_array_equal(bits(back), t.view(torch.int16).numpy().view(np.uint16))
    q = str(tmp_path / "again.safetensors")
    pyembed.save_safetensors(q, {"w": back})
    assert torch.equal(st_torch.load_file(q)["w"], t)


# ---- bad input -------------------------------------------------------------------------------

def test_bfloat16_without_ml_dtypes_names_the_package(monkeypatch, tmp_path):
    p = tmp_path / "b.safetensors"
    pyembed.save_safetensors(p, {"w": np.ones((2, 2), BF16)})
    monkeypatch.setitem(sys.modules, "ml_dtypes", None)  # import ml_dtypes now fails
    with pytest.raises(ImportError, match="ml_dtypes"):
        pyembed.Embedding(3, 2, dtype="bfloat16")
    with pytest.raises(ImportError, match="ml_dtypes"):
        _core.Table(3, 2, "bfloat16")
    with pytest.raises(ImportError, match="ml_dtypes"):
        pyembed.load_safetensors(p, dtype=None)
    assert pyembed.load_safetensors(p).dtype == np.float32  # widening needs no ml_dtypes
    assert pyembed.Embedding(3, 2, dtype=np.float16).dtype == F16


@pytest.mark.parametrize("dt", HALF, ids=str)
def test_bad_calls_change_nothing(dt):
    e, _ = _pair(dt)
    t = e.table
    snap = bits(t.weight).copy()
    x = np.ones((40, 37), np.float32)
    sq = _core.Table(8, 8, dt)
    bad = [
        (lambda: _core.narrow_rows(t, x.astype(np.float64)), ValueError, "float64"),
        (lambda: _core.narrow_rows(t, x[:3]), ValueError, r"\(3, 37\)"),
        (lambda: _core.narrow_rows(t, x[:2], rows=[1, 1]), ValueError, r"rows\[1\] = 1"),
        (lambda: _core.narrow_rows(t, x[:2], rows=[1, 40]), IndexError, "40"),
        (lambda: _core.narrow_rows(t, x[:2], rows=[[1, 2]]), ValueError, "1-D"),
        (lambda: _core.narrow_rows(t, x, seed=-1), ValueError, "seed"),
        (lambda: _core.narrow_rows(t, x, step=1.5), TypeError, "step"),
        (lambda: _core.narrow_rows(_core.Table(40, 37), x), ValueError, "float16 or bfloat16"),
        (lambda: _core.narrow_rows(sq, sq.weight.view(np.float32).reshape(4, 8), rows=range(4)),
         ValueError, "overlaps"),
        (lambda: e(np.zeros(3, int), out=np.empty((3, 37), np.float64)), ValueError, "float64"),
        (lambda: setattr(e, "weight", np.ones((40, 37), complex)), ValueError, "complex128"),
        (lambda: setattr(e, "weight", np.ones((4, 37))), ValueError, r"\(4, 37\)"),
        # every optimizer trains half tables (test_half_optim.py): its state is float32
        (lambda: _core.adagrad_step(t.weight, x, np.zeros(40), rowwise=True, rows=[1], table=t),
         ValueError, "float32"),
        (lambda: _core.adagrad_step(t.weight, x, x.astype(np.float16), rows=[1], table=t),
         ValueError, "float32"),
        (lambda: _core.adagrad_step(t.weight, x, np.zeros(40, np.float32), rowwise=True,
                                    ids=[1, 40], table=t), IndexError, "40"),
    ]
    for call, exc, needle in bad:
        with pytest.raises(exc, match=needle):
            call()
        np.testing.assert_array_equal(bits(t.weight), snap)
    for spec in (np.int8, np.complex64, "bfloat15", np.longdouble):
        with pytest.raises((TypeError, ValueError), match="float32 or float64"):
            pyembed.Embedding(3, 2, dtype=spec)
        with pytest.raises((TypeError, ValueError), match="float32 or float64"):
            _core.Table(3, 2, spec)
    with pytest.raises(ValueError, match="native byte order"):
        _core.Table(3, 2, np.dtype(">f2"))

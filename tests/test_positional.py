"""pyembed.sinusoidal and PositionalEncoding against the float64 formula."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pyembed
from reference_positional import fairseq_sinusoidal, numpy_float32_formula, sinusoidal as ref

LAYOUTS = ("interleaved", "halves")
BOUND = 2e-7


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("exponent", ("2i/d", "d/2-1"))
@pytest.mark.parametrize("dim", (1, 2, 7, 64, 513))
def test_accuracy_at_named_positions(layout, exponent, dim):
    for p in (0, 1, 2**10, 2**16, 2**20 - 1):
        # a few rows around p: anchored and walked rows both
        start = max(p - 3, 0)
        got = pyembed.sinusoidal(7, dim, start=start, layout=layout, exponent=exponent)
        want = ref(7, dim, start, layout=layout, exponent=exponent)
        assert got.dtype == np.float32
        assert np.abs(got - want).max() <= BOUND, (p, dim)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_accuracy_at_every_position_up_to_2_20(layout):
    n, dim = 2**20, 7
    got = pyembed.sinusoidal(n, dim, layout=layout)
    err = np.abs(got - ref(n, dim, layout=layout)).max()
    assert err <= BOUND
    # ...which the float32 formula does not reach (the reason this kernel exists)
    if layout == "interleaved":
        f32 = numpy_float32_formula(2**20, 8)[-256:]
        assert np.abs(f32 - ref(2**20, 8)[-256:]).max() > 1e-5


def test_float64_output():
    got = pyembed.sinusoidal(300, 33, start=2**20 - 150, dtype=np.float64)
    assert got.dtype == np.float64
    assert np.abs(got - ref(300, 33, 2**20 - 150)).max() <= 1e-9


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 600), dim=st.integers(0, 40), start=st.integers(-3000, 3000),
       layout=st.sampled_from(LAYOUTS), exponent=st.sampled_from(("2i/d", "d/2-1")),
       base=st.sampled_from((10000.0, 500000.0, 2.0, 1.0)))
def test_matches_reference_property(n, dim, start, layout, exponent, base):
    got = pyembed.sinusoidal(n, dim, start=start, base=base, layout=layout, exponent=exponent)
    assert got.shape == (n, dim)
    if n and dim:
        want = ref(n, dim, start, base=base, layout=layout, exponent=exponent)
        assert np.abs(got - want).max() <= BOUND


def test_rows_depend_only_on_position():
    full = pyembed.sinusoidal(1500, 24)
    for s, n in ((0, 1), (300, 100), (255, 2), (256, 700), (1499, 1)):
        assert np.array_equal(pyembed.sinusoidal(n, 24, start=s), full[s:s + n])


def test_relative_position_is_a_fixed_rotation():
    # Vaswani et al.: PE[p + k] is a linear function of PE[p]; per frequency, a rotation by k w_i
    dim, k = 16, 37
    w = 10000.0 ** (-np.arange(0, dim, 2) / dim)
    c, s = np.cos(k * w), np.sin(k * w)
    for p in (0, 5, 1000, 2**19):
        a = pyembed.sinusoidal(1, dim, start=p, dtype=np.float64)[0]
        b = pyembed.sinusoidal(1, dim, start=p + k, dtype=np.float64)[0]
        sin_p, cos_p = a[0::2], a[1::2]
        assert np.allclose(b[0::2], sin_p * c + cos_p * s, atol=1e-9)
        assert np.allclose(b[1::2], cos_p * c - sin_p * s, atol=1e-9)


def test_fairseq_table_reproduced():
    for dim in (8, 9, 64):
        want = fairseq_sinusoidal(50, dim, padding_idx=1)
        got = pyembed.sinusoidal(48, dim, start=2, layout="halves", exponent="d/2-1")
        assert np.abs(got - want[2:]).max() <= BOUND


def test_thread_count_does_not_change_bits(threads, stores):
    threads(1)
    one = pyembed.sinusoidal(5000, 96, start=123)
    odd = pyembed.sinusoidal(5000, 95, start=123, layout="halves")
    assert np.abs(one - ref(5000, 96, start=123)).max() <= BOUND
    assert np.abs(odd - ref(5000, 95, start=123, layout="halves")).max() <= BOUND
    for t in (2, 3, 8):
        threads(t)
        assert np.array_equal(pyembed.sinusoidal(5000, 96, start=123), one)
        assert np.array_equal(pyembed.sinusoidal(5000, 95, start=123, layout="halves"), odd)


def test_out_argument():
    out = np.full((10, 6), 7, np.float32)
    res = pyembed.sinusoidal(10, 6, out=out)
    assert res is out
    assert np.array_equal(out, pyembed.sinusoidal(10, 6))
    out64 = np.empty((10, 6))
    assert pyembed.sinusoidal(10, 6, out=out64).dtype == np.float64


@pytest.mark.parametrize("bad", [np.full((10, 5), 7, np.float32), np.full((6, 10), 7, np.float32).T,
                                 np.full((10, 6), 7, np.int32)])
def test_out_rejected_and_untouched(bad):
    with pytest.raises(ValueError):
        pyembed.sinusoidal(10, 6, out=bad)
    assert (bad == 7).all()


def test_out_read_only_rejected():
    out = np.zeros((3, 4), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        pyembed.sinusoidal(3, 4, out=out)


def test_out_dtype_conflict():
    with pytest.raises(ValueError, match="dtype"):
        pyembed.sinusoidal(3, 4, dtype=np.float32, out=np.empty((3, 4)))


@pytest.mark.parametrize("kwargs,exc,msg", [
    (dict(num_positions=-1, dim=4), ValueError, "num_positions"),
    (dict(num_positions=3, dim=-4), ValueError, "dim"),
    (dict(num_positions=3.0, dim=4), TypeError, "num_positions"),
    (dict(num_positions=3, dim=4, layout="rows"), ValueError, "layout"),
    (dict(num_positions=3, dim=4, exponent="2i"), ValueError, "exponent"),
    (dict(num_positions=3, dim=4, base=0.0), ValueError, "base"),
    (dict(num_positions=3, dim=4, base=float("nan")), ValueError, "base"),
    (dict(num_positions=3, dim=4, base="x"), TypeError, "base"),
    (dict(num_positions=3, dim=4, start=2**60), OverflowError, "2\\^52"),
    (dict(num_positions=3, dim=4, dtype=np.int32), ValueError, "dtype"),
])
def test_errors(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        pyembed.sinusoidal(**kwargs)


# ---- PositionalEncoding ------------------------------------------------------------------------

def test_positional_encoding_adds_the_table():
    pe = pyembed.PositionalEncoding(12, max_len=32)
    x = np.random.default_rng(0).standard_normal((3, 10, 12)).astype(np.float32)
    y = pe(x, start=4)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.array_equal(y, x + pyembed.sinusoidal(10, 12, start=4))
    assert np.array_equal(pe(x[0]), x[0] + pyembed.sinusoidal(10, 12))


def test_positional_encoding_grows_on_demand():
    pe = pyembed.PositionalEncoding(8, max_len=16, layout="halves")
    x = np.zeros((40, 8), np.float32)
    y = pe(x, start=100)
    assert pe.max_len >= 140
    assert np.array_equal(y, pyembed.sinusoidal(40, 8, start=100, layout="halves"))
    assert np.array_equal(pe.table, pyembed.sinusoidal(pe.max_len, 8, layout="halves"))
    assert not pe.table.flags.writeable


def test_positional_encoding_backward_is_identity():
    pe = pyembed.PositionalEncoding(4)
    g = np.ones((2, 3, 4), np.float32)
    assert pe.backward(g) is g
    assert pe.parameters() == []


def test_positional_encoding_float64_input_promotes():
    pe = pyembed.PositionalEncoding(6, max_len=8)
    y = pe(np.zeros((5, 6)))
    assert y.dtype == np.float64


@pytest.mark.parametrize("shape", [(5,), (5, 7), (1, 2, 5, 6)])
def test_positional_encoding_shape_errors(shape):
    pe = pyembed.PositionalEncoding(6)
    with pytest.raises(ValueError, match="shape"):
        pe(np.zeros(shape, np.float32))


def test_positional_encoding_argument_errors():
    with pytest.raises(ValueError, match="start"):
        pyembed.PositionalEncoding(6)(np.zeros((2, 6)), start=-1)
    with pytest.raises(ValueError, match="dtype"):
        pyembed.PositionalEncoding(6, dtype=np.float16)
    with pytest.raises(ValueError, match="layout"):
        pyembed.PositionalEncoding(6, layout="x")


# ---- references and memory: the area's C entry points, success and error paths ------------------

def test_no_reference_leaks_and_inputs_unchanged():
    import gc
    import sys

    core = pyembed._core
    t = pyembed.Table(16, 8)
    t.weight = np.random.default_rng(0).standard_normal((16, 8))
    ids = np.array([[1, 2, 3], [4, 5, 6]])
    ids_bad = np.array([1, 16])
    P = np.ones((3, 8), np.float32)
    x = np.random.default_rng(1).standard_normal((2, 3, 8)).astype(np.float32)
    x0 = x.copy()
    pos = np.array([5, 9, 2])
    out = np.empty((2, 3, 8), np.float32)
    flat = ids.reshape(-1)
    off = np.array([0, 2, 6])
    g = np.ones((2, 8), np.float32)
    psw = np.ones(6, np.float32)
    inputs = [t, ids, ids_bad, P, x, pos, out, flat, off, g, psw]

    def one_round():
        core.sinusoidal(4, 6)
        core.sinusoidal(4, 6, 0, 10000.0, False, 1, np.float64)
        core.embed_positions(t, ids, P, 2.0)
        core.embed_positions(t, ids, None, 2.0, out)
        core.rope(x, pos)
        core.rope(x, None, 10000.0, True, True, out)
        o, am = core.bag_forward(t, flat, off, None, 2, None)
        core.bag_backward(t, flat, off, g, None, am, 2, None)
        core.bag_forward(t, flat, off, psw, 0, 3)
        core.bag_backward(t, flat, off, g, psw, None, 0, 3)
        core.bag_psw_grad(t, flat, off, g, None)
        for fn, args in ((core.sinusoidal, (-1, 4)), (core.embed_positions, (t, ids_bad, None, 1.0)),
                         (core.embed_positions, (t, ids, P[:2], 1.0)), (core.rope, (x, pos[:2])),
                         (core.rope, (x, pos, -1.0)), (core.bag_forward, (t, flat, off[::-1], None, 0, None)),
                         (core.bag_forward, (t, flat, off, psw, 1, None)),
                         (core.bag_backward, (t, flat, off, g[:1], None, None, 0, None)),
                         (core.bag_backward, (t, flat, off, g, None, None, 2, None))):
            try:
                fn(*args)
            except (ValueError, IndexError, OverflowError, TypeError):
                pass
            else:
                raise AssertionError(f"{fn.__name__}{args!r} did not raise")

    one_round()
    gc.collect()
    before = [sys.getrefcount(a) for a in inputs]
    for _ in range(1000):
        one_round()
    gc.collect()
    assert [sys.getrefcount(a) for a in inputs] == before
    assert np.array_equal(x, x0)

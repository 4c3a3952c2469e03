"""pyembed.rope / rope_backward / rope_permute against the float64 formula."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pyembed
from reference import numeric_grad
from reference_positional import rope as ref

rng = np.random.default_rng(0)
LAYOUTS = ("halves", "interleaved")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("hd", (2, 8, 128))
def test_accuracy_at_named_positions(layout, hd):
    x = rng.uniform(-1, 1, (3, 5, hd)).astype(np.float32)
    for p in (0, 1, 2**10, 2**16, 2**20 - 1):
        pos = np.arange(p - 2, p + 3).clip(0)
        got = pyembed.rope(x, pos, layout=layout)
        assert got.dtype == np.float32
        assert np.abs(got - ref(x, pos, layout=layout)).max() <= 2e-7, p


@pytest.mark.parametrize("layout", LAYOUTS)
def test_float32_formula_is_worse_at_long_range(layout):
    # the reason for the double walk: float32 angles are off at 2^20
    hd = 64
    x = np.ones((1, 4, hd), np.float32)
    pos = np.arange(2**20 - 4, 2**20)
    inv = (1.0 / (10000.0 ** (np.arange(0, hd, 2, dtype=np.float32) / hd))).astype(np.float32)
    ang = pos.astype(np.float32)[:, None] * inv
    naive = np.concatenate([np.cos(ang) - np.sin(ang), np.cos(ang) + np.sin(ang)], -1)
    want = ref(x, pos)
    assert np.abs(naive - want[0]).max() > 1e-5
    assert np.abs(pyembed.rope(x, pos) - want).max() <= 2e-7


@settings(max_examples=30, deadline=None)
@given(shape=st.sampled_from([(1, 2), (7, 4), (3, 9, 6), (2, 2, 33, 10), (0, 4), (4, 0, 6)]),
       layout=st.sampled_from(LAYOUTS), start=st.integers(0, 2**20),
       base=st.sampled_from((10000.0, 500000.0, 10.0)), dtype=st.sampled_from((np.float32, np.float64)))
def test_matches_reference_property(shape, layout, start, base, dtype):
    x = rng.uniform(-1, 1, shape).astype(dtype)
    pos = np.arange(start, start + shape[-2])
    got = pyembed.rope(x, pos, base=base, layout=layout)
    assert got.shape == x.shape and got.dtype == dtype
    if x.size:
        tol = 2e-7 if dtype == np.float32 else 1e-9
        assert np.abs(got - ref(x, pos, base=base, layout=layout)).max() <= tol


@pytest.mark.parametrize("pshape", [(6,), (2, 1, 6), (2, 3, 6), (1, 6), (3, 1)])
def test_position_shapes(pshape):
    x = rng.standard_normal((2, 3, 6, 8)).astype(np.float32)
    pos = rng.integers(0, 5000, pshape)
    got = pyembed.rope(x, pos)
    assert np.abs(got - ref(x, pos)).max() <= 1e-6


def test_default_positions_and_values_depend_only_on_position():
    x = rng.standard_normal((4, 300, 16)).astype(np.float32)
    a = pyembed.rope(x)
    assert np.array_equal(a, pyembed.rope(x, np.arange(300)))
    # a single decode step at position 257 equals that row of the full call
    assert np.array_equal(pyembed.rope(x[:, 257:258], [257]), a[:, 257:258])
    shuffled = rng.permutation(300)
    assert np.array_equal(pyembed.rope(x[:, shuffled], shuffled), a[:, shuffled])


def test_relative_position_property():
    # <rope(q, m), rope(k, n)> depends only on m - n (Su et al. 2021, eq. 16)
    q = rng.standard_normal((1, 1, 32))
    k = rng.standard_normal((1, 1, 32))
    for layout in LAYOUTS:
        dots = [float((pyembed.rope(q, [m], layout=layout) *
                       pyembed.rope(k, [m - 7], layout=layout)).sum())
                for m in (7, 100, 5000, 2**20)]
        assert np.allclose(dots, dots[0], rtol=0, atol=1e-9)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_backward_by_finite_differences(layout):
    x = rng.standard_normal((2, 5, 6))
    R = rng.standard_normal((2, 5, 6))
    pos = np.array([3, 4, 5, 900, 2])
    grad = pyembed.rope_backward(R, pos, layout=layout)
    num = numeric_grad(lambda: float((pyembed.rope(x, pos, layout=layout) * R).sum()), x)
    assert np.allclose(grad, num, atol=1e-7)
    assert np.allclose(pyembed.rope_backward(pyembed.rope(x, pos, layout=layout), pos,
                                             layout=layout), x, atol=1e-12)


def test_in_place_and_out():
    x = rng.standard_normal((3, 40, 8)).astype(np.float32)
    want = pyembed.rope(x)
    y = x.copy()
    assert pyembed.rope(y, out=y) is y
    assert np.array_equal(y, want)
    out = np.empty_like(x)
    assert pyembed.rope(x, out=out) is out and np.array_equal(out, want)


def test_thread_count_does_not_change_bits(threads):
    x = rng.standard_normal((8, 512, 64)).astype(np.float32)
    threads(1)
    one = pyembed.rope(x, layout="interleaved")
    for t in (2, 3, 7):
        threads(t)
        assert np.array_equal(pyembed.rope(x, layout="interleaved"), one)


def test_matches_torch_implementations():
    torch = pytest.importorskip("torch")
    hd, seq = 16, 50
    x = rng.standard_normal((2, 3, seq, hd))
    pos = torch.arange(seq, dtype=torch.float64)
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    freqs = torch.outer(pos, inv_freq)
    # Hugging Face (rotate_half)
    emb = torch.cat((freqs, freqs), dim=-1)
    t = torch.from_numpy(x)
    rot = torch.cat((-t[..., hd // 2:], t[..., : hd // 2]), dim=-1)
    hf = (t * emb.cos() + rot * emb.sin()).numpy()
    assert np.allclose(pyembed.rope(x), hf, atol=1e-12)
    # Meta Llama (complex multiply on interleaved pairs)
    xc = torch.view_as_complex(t.reshape(*t.shape[:-1], -1, 2).contiguous())
    meta = torch.view_as_real(xc * torch.polar(torch.ones_like(freqs), freqs)).flatten(-2).numpy()
    assert np.allclose(pyembed.rope(x, layout="interleaved"), meta, atol=1e-12)


def test_rope_permute_links_the_two_layouts():
    n_heads, hd, d_in = 3, 8, 5
    Wq = rng.standard_normal((n_heads * hd, d_in))
    x = rng.standard_normal((7, d_in))
    Wp = pyembed.rope_permute(Wq, n_heads)
    assert np.array_equal(pyembed.rope_permute(Wp, n_heads, inverse=True), Wq)
    q_meta = (x @ Wq.T).reshape(7, n_heads, hd).transpose(1, 0, 2)   # (heads, seq, hd)
    q_hf = (x @ Wp.T).reshape(7, n_heads, hd).transpose(1, 0, 2)
    r_meta = pyembed.rope(q_meta, layout="interleaved")
    r_hf = pyembed.rope(q_hf, layout="halves")
    perm = np.concatenate([np.arange(0, hd, 2), np.arange(1, hd, 2)])
    assert np.allclose(r_hf, r_meta[..., perm], atol=1e-12)
    b = np.arange(n_heads * hd)
    assert np.array_equal(pyembed.rope_permute(b, n_heads)[:hd], perm)


def test_errors():
    x = np.zeros((2, 4, 6), np.float32)
    with pytest.raises(ValueError, match="even"):
        pyembed.rope(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="dimension"):
        pyembed.rope(np.zeros(6))
    with pytest.raises(ValueError, match="layout"):
        pyembed.rope(x, layout="complex")
    with pytest.raises(ValueError, match="broadcast"):
        pyembed.rope(x, np.arange(5))
    with pytest.raises(TypeError):
        pyembed.rope(x, np.arange(4) + 0.5)
    with pytest.raises(OverflowError, match="2\\^52"):
        pyembed.rope(x, [0, 1, 2**60, 3])
    with pytest.raises(ValueError, match="base"):
        pyembed.rope(x, base=-1.0)
    with pytest.raises(TypeError):
        pyembed.rope(x.astype(np.complex64))
    y = np.zeros((2, 4, 7), np.float32)
    with pytest.raises(ValueError, match="contiguous"):
        pyembed.rope(x, out=y[..., 1:])
    buf = np.zeros(2 * 4 * 6 + 6, np.float32)
    xin = buf[:48].reshape(2, 4, 6)
    with pytest.raises(ValueError, match="overlaps"):
        pyembed.rope(xin, out=buf[6:].reshape(2, 4, 6))
    assert not buf.any()
    with pytest.raises(ValueError, match="n_heads"):
        pyembed.rope_permute(np.zeros((12, 3)), 4)
    with pytest.raises(TypeError):
        pyembed.rope_permute(np.zeros((12, 3)), 2.0)


def test_the_old_pairing_keyword_warns_and_still_works():
    x = np.random.default_rng(5).standard_normal((2, 4, 8))
    for old, new in (("half", "halves"), ("interleaved", "interleaved")):
        with pytest.warns(DeprecationWarning, match="layout="):
            r = pyembed.rope(x, pairing=old)
        assert np.array_equal(r, pyembed.rope(x, layout=new))
        with pytest.warns(DeprecationWarning, match="layout="):
            g = pyembed.rope_backward(r, pairing=old)
        assert np.array_equal(g, pyembed.rope_backward(r, layout=new))
    with pytest.warns(DeprecationWarning), pytest.raises(TypeError, match="disagree"):
        pyembed.rope(x, layout="interleaved", pairing="half")

"""InputEmbedding with segment (token-type) rows and LayerNorm fused in (issue 14, item 2),
against the NumPy float64 references in reference_positional.py: forward and backward for both
dtypes and every combination of terms, finite differences in float64, hypothesis over shapes,
the same bits for every thread count, and the optimizers taking gamma and beta."""
import gc
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyembed
import reference_positional as ref
from pyembed import _core
from reference import bits as ref_bits
from reference import same_bits
from reference import numeric_grad

TOL = {np.float32: 2e-6, np.float64: 1e-13}


stage = ref.random_stage  # an InputEmbedding whose every parameter is random


def tables(inp, start, seq):
    P = None
    if inp.positional == "learned":
        P = inp.position.weight[start:start + seq]
    elif inp.positional == "sinusoidal":
        P = inp.position.encoding(seq, start)
    S = None if inp.segment is None else inp.segment.weight
    return P, S


def grad_of(emb):
    return np.zeros(emb.shape) if emb.grad is None else emb.grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("positional", ["learned", "sinusoidal", None])
@pytest.mark.parametrize("num_segments, norm", [(2, "layernorm"), (None, "layernorm"),
                                                (3, None)])
@pytest.mark.parametrize("scale", [None, "sqrt"])
def test_forward_and_backward_match_the_float64_reference(dtype, positional, num_segments, norm,
                                                          scale):
    inp = stage(dtype, positional, num_segments, norm, scale)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, inp.vocab_size, (3, 5))
    seg = rng.integers(0, num_segments, ids.shape) if num_segments else None
    start = 2
    P, S = tables(inp, start, 5)
    out = inp(ids, start, segment_ids=seg)
    want = ref.embed_layernorm(inp.token.weight, ids, inp.scale, P, S, seg, inp.gamma, inp.beta,
                               inp.eps)
    assert out.dtype == dtype and out.shape == (3, 5, inp.d_model)
    np.testing.assert_allclose(out, want, rtol=TOL[dtype], atol=4 * TOL[dtype])
    dout = rng.standard_normal(out.shape).astype(dtype)
    inp.backward(ids, dout, start, segment_ids=seg)
    if norm:
        dW, dP, dS, dg, db = ref.embed_layernorm_backward(inp.token.weight, ids, inp.scale, P, S,
                                                          seg, inp.gamma, dout, inp.eps)
        np.testing.assert_allclose(inp.gamma_grad, dg, rtol=TOL[dtype] * 10, atol=TOL[dtype] * 10)
        np.testing.assert_allclose(inp.beta_grad, db, rtol=TOL[dtype] * 10, atol=TOL[dtype] * 10)
    else:
        dW = np.zeros(inp.token.shape)
        np.add.at(dW, ids, dout * inp.scale)
        dS = np.zeros(inp.segment.shape)
        np.add.at(dS, seg, dout.astype(np.float64))
        dP = dout.sum(0)
    tol = dict(rtol=TOL[dtype] * 10, atol=TOL[dtype] * 10)
    np.testing.assert_allclose(grad_of(inp.token), dW, **tol)
    if positional == "learned":
        np.testing.assert_allclose(grad_of(inp.position)[start:start + 5], dP, **tol)
        assert not grad_of(inp.position)[:start].any()
    if num_segments:
        np.testing.assert_allclose(grad_of(inp.segment), dS, **tol)


def test_backward_matches_finite_differences_in_float64():
    """d sum(out * dout) / d(parameter) by central differences, for a few entries of every
    parameter: the analytic gradient the kernel gives is the derivative of its own forward."""
    inp = stage(np.float64, D=7)
    rng = np.random.default_rng(2)
    ids, seg = rng.integers(0, inp.vocab_size, (2, 4)), rng.integers(0, 2, (2, 4))
    dout = rng.standard_normal((2, 4, 7))
    inp.backward(ids, dout, segment_ids=seg)
    loss = lambda: float((inp(ids, segment_ids=seg) * dout).sum())  # noqa: E731
    for arr, grad in ((inp.token.weight, inp.token.grad), (inp.position.weight,
                                                           inp.position.grad),
                      (inp.segment.weight, inp.segment.grad), (inp.gamma, inp.gamma_grad),
                      (inp.beta, inp.beta_grad)):
        np.testing.assert_allclose(grad, numeric_grad(loss, arr), rtol=1e-6, atol=1e-8)


@settings(max_examples=25, deadline=None)
@given(nb=st.integers(0, 3), seq=st.integers(0, 6), dim=st.integers(1, 19),
       nseg=st.integers(1, 3), one_d=st.booleans(), dtype=st.sampled_from([np.float32,
                                                                          np.float64]))
def test_shapes(nb, seq, dim, nseg, one_d, dtype):
    inp = stage(dtype, num_segments=nseg, D=dim, seed=nb + seq)
    rng = np.random.default_rng(dim)
    shape = (seq,) if one_d else (nb, seq)
    ids = rng.integers(0, inp.vocab_size, shape)
    seg = rng.integers(0, nseg, shape)
    P, S = tables(inp, 0, seq)
    out = inp(ids, segment_ids=seg)
    want = ref.embed_layernorm(inp.token.weight, ids, 1.0, P, S, seg, inp.gamma, inp.beta,
                               inp.eps)
    np.testing.assert_allclose(out, want, rtol=TOL[dtype], atol=4 * TOL[dtype])
    dout = rng.standard_normal(out.shape).astype(dtype)
    inp.backward(ids, dout, segment_ids=seg)
    dW, _, dS, dg, db = ref.embed_layernorm_backward(inp.token.weight, ids, 1.0, P, S, seg,
                                                     inp.gamma, dout, inp.eps)
    tol = dict(rtol=TOL[dtype] * 10, atol=TOL[dtype] * 10)
    np.testing.assert_allclose(grad_of(inp.token), dW, **tol)
    np.testing.assert_allclose(grad_of(inp.segment), dS, **tol)
    np.testing.assert_allclose(inp.gamma_grad, dg, **tol)
    np.testing.assert_allclose(inp.beta_grad, db, **tol)


def test_segment_ids_default_to_zeros_as_bert():
    inp = stage()
    ids = np.array([[3, 4, 5]])
    np.testing.assert_array_equal(inp(ids), inp(ids, segment_ids=np.zeros((1, 3), np.int8)))
    inp.backward(ids, np.ones((1, 3, inp.d_model), np.float32))
    np.testing.assert_array_equal(inp.segment.touched, [0])


def test_segments_without_norm_have_the_bits_of_numpy():
    inp = stage(norm=None, num_segments=2, scale=2.0)
    ids, seg = np.array([[1, 2, 3], [4, 5, 6]]), np.array([[0, 0, 1], [1, 1, 0]])
    W, S, P = inp.token.weight, inp.segment.weight, inp.position.weight[:3]
    np.testing.assert_array_equal(inp(ids, segment_ids=seg),
                                  (W[ids] * np.float32(2.0) + S[seg]) + P)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_bits_for_every_thread_count(dtype):
    """Row statistics in fixed lanes and dgamma / dbeta over fixed chunks: the thread count never
    changes a bit (sizes large enough for the parallel paths). float64 is the sharp case: a float32
    dgamma is a double sum rounded to float, which hides a change of grouping."""
    inp = stage(dtype, D=96, V=500)
    rng = np.random.default_rng(4)
    ids, seg = rng.integers(0, 500, (64, 16)), rng.integers(0, 2, (64, 16))
    dout = rng.standard_normal((64, 16, 96)).astype(dtype)
    before = pyembed.get_num_threads()
    results = []
    try:
        for nt in (1, 2, 3):
            pyembed.set_num_threads(nt)
            inp.zero_grad()
            out = inp(ids, segment_ids=seg)
            inp.backward(ids, dout, segment_ids=seg)
            results.append([out, inp.gamma_grad.copy(), inp.beta_grad.copy(),
                            inp.token.grad.copy(), inp.segment.grad.copy()])
    finally:
        pyembed.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(ref_bits(a), ref_bits(b))


def test_parameters_zero_grad_and_an_optimizer_step():
    inp = stage()
    params = inp.parameters()
    assert params[:3] == [inp.token, inp.position, inp.segment]
    assert params[3][0] is inp.gamma and params[3][1] is inp.gamma_grad
    assert params[4][0] is inp.beta and params[4][1] is inp.beta_grad
    ids = np.array([[1, 2, 3]])
    opt = pyembed.optim.Adam(inp, lr=0.1)
    gamma0, beta0 = inp.gamma.copy(), inp.beta.copy()
    inp.backward(ids, np.random.default_rng(5).standard_normal((1, 3, inp.d_model)))
    opt.step()
    assert (inp.gamma != gamma0).all() and (inp.beta != beta0).all()
    inp.zero_grad()
    assert not inp.gamma_grad.any() and not inp.beta_grad.any()


def test_layernorm_of_a_constant_row_is_beta():
    """var = 0: (x - mean) is exactly 0, so out = beta (torch gives the same)."""
    inp = pyembed.InputEmbedding(4, 8, positional=None, scale=None, norm="layernorm")
    inp.token.weight = np.full((4, 8), 3.0, np.float32)
    inp.beta[...] = np.arange(8)
    np.testing.assert_array_equal(inp([0, 1]), np.tile(np.arange(8, dtype=np.float32), (2, 1)))


def test_repr_names_the_new_options():
    assert "num_segments=2, norm='layernorm', eps=1e-05" in repr(stage())


def test_no_reference_leaks_in_the_glue():
    """2000 rounds of both entry points and their error paths leave every input's refcount as
    it was (one reference lost per call would show as 2000)."""
    t, s = pyembed.Table(9, 4), pyembed.Table(2, 4)
    ids, seg = np.array([[1, 2, 8]], np.int32), np.array([[0, 1, 1]])
    P, gam, bet = np.ones((3, 4), np.float32), np.ones(4, np.float32), np.zeros(4, np.float32)
    go, dg, db = np.ones((1, 3, 4), np.float32), np.zeros(4, np.float32), np.zeros(4, np.float32)
    bad_seg, bad_g = np.array([[0, 2, 1]]), np.ones((1, 3, 5), np.float32)
    inputs = [t, s, ids, seg, P, gam, bet, go, dg, db, bad_seg, bad_g]

    def one_round():
        _core.embed_layernorm(t, ids, P, s, seg, gam, bet, 1.0, 1e-5)
        _core.embed_layernorm(t, ids, None, None, None, None, None, 1.0, 1e-5)
        _core.embed_layernorm_backward(t, ids, P, s, seg, gam, go, dg, db, 1.0, 1e-5)
        for call in (lambda: _core.embed_layernorm(t, ids, P, s, bad_seg, gam, bet, 1.0, 1e-5),
                     lambda: _core.embed_layernorm_backward(t, ids, P, s, seg, gam, bad_g, dg, db,
                                                            1.0, 1e-5),
                     lambda: _core.embed_layernorm(t, ids, P, s, seg, gam, None, 1.0, 1e-5)):
            with pytest.raises((IndexError, ValueError, TypeError)):
                call()

    for _ in range(50):
        one_round()
    gc.collect()
    refs = [sys.getrefcount(x) for x in inputs]
    for _ in range(2000):
        one_round()
    gc.collect()
    assert [sys.getrefcount(x) for x in inputs] == refs


# ---- float16 / bfloat16 tables (issue 12, item 4): the float32 stage on the widened tables ------

try:
    import ml_dtypes
except ImportError:  # bfloat16 tables need ml_dtypes (extra "half"); float16 ones do not
    ml_dtypes = None
HALF = ["float16", pytest.param("bfloat16", marks=pytest.mark.skipif(
    ml_dtypes is None, reason="bfloat16 tables need ml_dtypes"))]


def half_and_float32(dt, positional, num_segments, norm, V=61, D=131):
    """A half stage (random gamma, beta) and a float32 one holding its widened tables and the same
    gamma and beta."""
    h = stage(dt, positional, num_segments, norm, scale="sqrt", V=V, D=D, seed=3)
    f = stage(np.float32, positional, num_segments, norm, scale="sqrt", V=V, D=D, seed=3)
    for name in ("token", "position", "segment"):
        if isinstance(getattr(h, name), pyembed.Embedding):
            getattr(f, name).weight = getattr(h, name).weight.astype(np.float32)
    if norm:
        assert h.gamma.dtype == h.gamma_grad.dtype == np.float32
        f.gamma[...], f.beta[...] = h.gamma, h.beta
    return h, f


@pytest.mark.parametrize("nt", [1, 3])
@pytest.mark.parametrize("positional", ["learned", "sinusoidal"])
@pytest.mark.parametrize("num_segments, norm", [(2, "layernorm"), (None, "layernorm"),
                                                (3, None)])
@pytest.mark.parametrize("dt", HALF)
def test_half_tables_give_the_bits_of_the_widened_float32_stage(dt, num_segments, norm,
                                                                positional, nt, threads):
    """Forward, and every gradient of the backward (tables, gamma, beta), bit for bit those of the
    float32 stage built from the widened tables; 64 x 12 ids x 131 columns run the kernels on 3
    threads when given them (and on 1: the bits never depend on it), with tails of the 32 lanes."""
    threads(nt)
    h, f = half_and_float32(dt, positional, num_segments, norm)
    rng = np.random.default_rng(11)
    ids = rng.integers(0, h.vocab_size, (64, 12))
    seg = rng.integers(0, num_segments, ids.shape) if num_segments else None
    y = h(ids, 3, segment_ids=seg)
    assert y.dtype == np.float32
    assert ref_bits(y).tobytes() == ref_bits(f(ids, 3, segment_ids=seg)).tobytes()
    out = np.empty_like(y)
    assert h(ids, 3, out, segment_ids=seg) is out and (ref_bits(out) == ref_bits(y)).all()
    g = rng.standard_normal(y.shape).astype(np.float32)
    for _ in range(2):  # gradients accumulate across calls
        h.backward(ids, g, 3, segment_ids=seg)
        f.backward(ids, g, 3, segment_ids=seg)
    for a, b in zip(h.parameters(), f.parameters()):
        ga, gb = (a[1], b[1]) if isinstance(a, tuple) else (a.grad, b.grad)
        assert ga.dtype == np.float32 and ref_bits(ga).tobytes() == ref_bits(gb).tobytes()
    assert h.token.weight.dtype == np.dtype(dt)


@pytest.mark.parametrize("packed", [False, True], ids=["start", "packed"])
@pytest.mark.parametrize("dt", HALF + ["float32"])
def test_half_stage_in_backward_equals_backward_then_step(dt, packed, threads):
    """Adam(lazy=True) on the three tables (half, and float32), applied in the backward (3 threads)
    or after it (1 thread), with gamma and beta stepped by a second Adam: the same bits in every
    table, moment and LayerNorm parameter after three steps; also with the positions of packed
    rows (positions=)."""
    results = []
    for fused, nt in ((False, 1), (True, 3)):
        threads(nt)
        inp, _ = half_and_float32(dt, "learned", 2, "layernorm", V=300, D=48)
        tabs = [p for p in inp.parameters() if not isinstance(p, tuple)]
        opts = [pyembed.optim.Adam(tabs, lr=0.05, lazy=True, in_backward=fused),
                pyembed.optim.Adam([p for p in inp.parameters() if isinstance(p, tuple)],
                                   lr=0.05)]
        rng = np.random.default_rng(12)
        for _ in range(3):
            ids = np.minimum(rng.zipf(1.3, (24, 16)) - 1, 299)
            seg = rng.integers(0, 2, ids.shape)
            kw = dict(positions=ref.packed_positions(rng, 24, 16, 16)) if packed else {}
            inp(ids, segment_ids=seg, **kw)
            inp.backward(ids, rng.standard_normal((24, 16, 48)).astype(np.float32),
                         segment_ids=seg, **kw)
            for opt in opts:
                opt.step()
                opt.zero_grad()
        results.append([t.weight.copy() for t in tabs] + [inp.gamma.copy(), inp.beta.copy()]
                       + [np.array(v) for t in tabs for _, v in sorted(opts[0].state[t].items())])
        assert all(t.table.grad is None for t in tabs) == fused
    assert len(results[0]) == len(results[1]) == 3 + 2 + 3 * 3
    for a, b in zip(*results):
        assert same_bits(a, b)


@pytest.mark.parametrize("dt", HALF)
def test_half_stage_refuses_a_segment_table_of_another_dtype(dt):
    """The kernel reads token and segment rows through one stored type: a segment table of
    another dtype (16-bit or not: float32 shares a half table's compute dtype) is refused,
    naming both dtypes, before anything is written."""
    other = "bfloat16" if dt == "float16" else "float16"
    for seg_dt in (np.float32, other):
        if seg_dt == "bfloat16" and ml_dtypes is None:
            continue
        inp = stage(dt, D=8)
        inp.segment = pyembed.Embedding(2, 8, dtype=seg_dt, seed=0)
        ids, seg = np.array([[1, 2]]), np.array([[0, 1]])
        out = np.full((1, 2, 8), 7, np.float32)
        before = [inp.gamma_grad.copy(), inp.beta_grad.copy(), inp.segment.weight.copy()]
        want = rf"segment table \(dtype {np.dtype(seg_dt)}\).*token table's dtype {np.dtype(dt)}"
        with pytest.raises(ValueError, match=want):
            inp(ids, out=out, segment_ids=seg)
        with pytest.raises(ValueError, match=want):
            inp.backward(ids, np.ones((1, 2, 8), np.float32), segment_ids=seg)
        assert (out == 7).all() and inp.token.grad is None and inp.segment.grad is None
        for a, b in zip(before, [inp.gamma_grad, inp.beta_grad, inp.segment.weight]):
            assert same_bits(a, b)

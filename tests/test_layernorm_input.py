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
from reference import numeric_grad

TOL = {np.float32: 2e-6, np.float64: 1e-13}


def stage(dtype=np.float32, positional="learned", num_segments=2, norm="layernorm", scale=None,
          V=23, D=13, seed=0):
    """An InputEmbedding whose every parameter is random (gamma and beta too)."""
    inp = pyembed.InputEmbedding(V, D, max_len=16, positional=positional, scale=scale,
                                 num_segments=num_segments, norm=norm, dtype=dtype, seed=seed,
                                 pos_std=1.0)
    if norm:
        rng = np.random.default_rng(seed)
        inp.gamma[...] = rng.standard_normal(D)
        inp.beta[...] = rng.standard_normal(D)
    return inp


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

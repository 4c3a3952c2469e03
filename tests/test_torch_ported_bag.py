"""torch's test/nn/test_embedding.py, ported (continued): the EmbeddingBag per_sample_weights
cases and test_embedding_bag_device; the list and the count are in tests/test_torch_ported.py's
docstring."""
import itertools

import numpy as np
import pytest

import pyembed

torch = pytest.importorskip("torch")
F = torch.nn.functional
nn = torch.nn


def T(a):
    return torch.from_numpy(np.ascontiguousarray(a))


ARANGE_5x2 = np.arange(1, 11, dtype=np.float64).reshape(5, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_EmbeddingBag_empty_per_sample_weights_and_offsets(dtype):
    b = pyembed.EmbeddingBag.from_pretrained(ARANGE_5x2.astype(dtype), freeze=False, mode="sum")
    out = b(np.array([], np.int64), np.zeros(5, np.int64), np.array([], dtype))
    assert out.shape == (5, 2) and not out.any()
    gpsw = b.backward(np.random.default_rng(0).standard_normal((5, 2)).astype(dtype))
    assert not b.grad.any() if b.grad is not None else True
    assert gpsw.shape == (0,)


def _torch_bag_case(mode, dtype, ids, off, psw, include_last_offset, grad):
    tw = T(ARANGE_5x2.astype(dtype)).requires_grad_()
    tp = None if psw is None else T(psw).requires_grad_()
    tout = F.embedding_bag(T(ids), tw, T(off), mode=mode, per_sample_weights=tp,
                           include_last_offset=include_last_offset)
    tout.backward(T(grad))
    return tout.detach().numpy(), tw.grad.numpy(), None if tp is None else tp.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode, weighted, include_last_offset",
                         [("sum", True, False), ("sum", True, True), ("sum", False, False),
                          ("sum", False, True), ("max", False, False), ("max", False, True),
                          ("mean", False, False), ("mean", False, True)])
def test_EmbeddingBag_per_sample_weights_and_new_offsets(dtype, mode, weighted,
                                                         include_last_offset):
    """Also test_EmbeddingBag_per_sample_weights_and_offsets (its weighted "sum" rows)."""
    rng = np.random.default_rng(2)
    ids = np.array([3, 1, 1, 1, 4, 0])
    off = np.array([0, 0, 3, 3, 6] + ([6] if include_last_offset else []))
    psw = rng.standard_normal(6).astype(dtype) if weighted else None
    b = pyembed.EmbeddingBag.from_pretrained(ARANGE_5x2.astype(dtype), freeze=False, mode=mode,
                                             include_last_offset=include_last_offset)
    out = b(ids, off, psw)
    grad = rng.standard_normal(out.shape).astype(dtype)
    gpsw = b.backward(grad)
    tout, tgrad, tgpsw = _torch_bag_case(mode, dtype, ids, off, psw, include_last_offset, grad)
    tol = dict(rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-6 if dtype == np.float32
               else 1e-14)
    np.testing.assert_allclose(out, tout, **tol)
    np.testing.assert_allclose(b.grad, tgrad, **tol)
    if weighted:
        np.testing.assert_allclose(gpsw, tgpsw, **tol)


def _vs_embedding(N, D, B, L, mode, dtype=np.float64, max_norm=None, weighted=False, seed=0):
    """torch's _test_EmbeddingBag_vs_Embedding: a bag of constant length L is an Embedding
    lookup then a reduction, forward and backward (torch's modules as the reference)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((N, D)).astype(dtype)
    ids = rng.integers(0, N, (B, L))
    offsets = np.arange(B) * L
    b = pyembed.EmbeddingBag.from_pretrained(w.copy(), freeze=False, mode=mode,
                                             max_norm=max_norm)
    te = nn.Embedding.from_pretrained(T(w.copy()), freeze=False, max_norm=max_norm)
    psw = None
    if weighted:
        psw = np.exp(rng.standard_normal((B, L))).astype(dtype)
        psw /= psw.sum(1, keepdims=True)
    out = b(ids.ravel(), offsets, None if psw is None else psw.ravel())
    emb = te(T(ids))
    ref = {"sum": lambda x: x.sum(1), "mean": lambda x: x.mean(1),
           "max": lambda x: x.max(1)[0]}[mode](emb if psw is None else emb * T(psw)[..., None])
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out, ref.detach().numpy(), **tol)
    g = rng.random((B, D)).astype(dtype)
    b.backward(g)
    ref.backward(T(g))
    np.testing.assert_allclose(b.grad, te.weight.grad.numpy(), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_EmbeddingBag_per_sample_weights_and_no_offsets(dtype):
    for shape in ((2, 3, 5, 7), (2, 5, 53, 23), (101, 5, 3, 7), (2, 101, 3, 7)):
        _vs_embedding(*shape, mode="sum", dtype=dtype, weighted=True)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("dtype, id_dtype", [(np.float32, np.int32), (np.float64, np.int64)])
def test_embedding_bag_device(mode, dtype, id_dtype):
    w = ARANGE_5x2.astype(dtype)
    b = pyembed.EmbeddingBag.from_pretrained(w, freeze=False, mode=mode)
    ids = np.array([3, 1, 1, 1, 4, 0], id_dtype)
    off = np.array([0, 0, 3, 3, 6], id_dtype)
    g2 = np.array([[1, 2], [3, 4]], dtype)
    g5 = np.array([[99, 99], [1, 2], [99, 99], [3, 4], [99, 99]], dtype)
    d = 3 if mode == "mean" else 1
    if mode == "max":
        expect2 = np.array([[7, 8], [9, 10]])
        expect_grad = np.array([[0, 0], [0, 0], [0, 0], [1, 2], [3, 4]])
    else:
        expect2 = np.array([[13, 16], [13, 16]]) / d
        expect_grad = np.array([[3, 4], [5, 8], [0, 0], [1, 2], [3, 4]]) / d
    expect5 = np.zeros((5, 2))
    expect5[[1, 3]] = expect2
    np.testing.assert_allclose(b(ids, off), expect5, rtol=1e-6)
    b.backward(g5)
    np.testing.assert_allclose(b.grad, expect_grad, rtol=1e-6)
    b.zero_grad()
    np.testing.assert_allclose(b(ids.reshape(2, 3)), expect2, rtol=1e-6)
    b.backward(g2)
    np.testing.assert_allclose(b.grad, expect_grad, rtol=1e-6)
    b.zero_grad()
    out = b(np.array([], id_dtype), np.zeros(4, id_dtype))
    b.backward(np.ones_like(out))
    assert not b.grad.any()
    # EmbeddingBag against Embedding + reduction (torch's random sizes, one draw; then every
    # size in {1, 2}^4 with and without max_norm)
    _vs_embedding(37, 11, 9, 5, mode, dtype)
    for p in itertools.product([1, 2], repeat=4):
        for max_norm in (None, 3):
            _vs_embedding(*p, mode=mode, dtype=dtype, max_norm=max_norm)
    # illegal combinations
    b = pyembed.EmbeddingBag(10, 20, mode=mode, seed=0)
    ids = np.ones((3, 4), id_dtype)
    with pytest.raises(ValueError):
        b(ids, np.arange(3))
    with pytest.raises(ValueError):
        b(ids.ravel())
    with pytest.raises(ValueError):
        b(ids.ravel(), np.array([1, 1, 2]))
    with pytest.raises(ValueError):
        b(ids.ravel(), np.array([0, 1, 100]))


def test_embedding_bag_non_contiguous_weight():
    w = np.random.default_rng(0).standard_normal((3, 4))
    ids, off = np.array([0, 1, 2]), np.array([0, 2])
    for mode in ("sum", "mean", "max"):
        a = pyembed.EmbeddingBag.from_pretrained(w[:, :3], mode=mode)(ids, off)
        c = pyembed.EmbeddingBag.from_pretrained(np.ascontiguousarray(w[:, :3]), mode=mode)(ids,
                                                                                          off)
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("bag_grad, psw_grad", list(itertools.product([True, False], repeat=2)))
def test_embedding_bag_per_sample_weights_grad(bag_grad, psw_grad):
    b = pyembed.EmbeddingBag(256, 256, mode="sum", seed=0)
    b.requires_grad = bag_grad
    x = np.broadcast_to(np.arange(1, 5), (3, 4))
    w = np.random.default_rng(0).random((3, 4)).astype(np.float32)
    psw = np.exp(w) / np.exp(w).sum(-1, keepdims=True)
    out = b(x, per_sample_weights=psw)
    gpsw = b.backward(np.ones_like(out))
    assert gpsw.shape == (3, 4) and (b.grad is not None) == bag_grad

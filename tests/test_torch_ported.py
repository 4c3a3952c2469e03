"""torch's own tests, ported: the cases of test/nn/test_embedding.py and test/test_optim.py that
apply to pyembed.Embedding, EmbeddingBag and pyembed.optim (CPU; float32/float64 tables),
written in our own words with torch computing the expected values in the same process.

test/nn/test_embedding.py (TestEmbeddingNN, TestEmbeddingNNDeviceType), 32 ported: 31 pass, and
test_embeddingbag_include_last_offset passes for one of its two offset arrays (the other, a last
offset short of the ids, is a strict xfail: torch's padding_idx path disagrees with torch itself):
  test_embedding_sparse_basic, test_embedding_sparse_empty_tensor, test_embedding_max_norm,
  test_embedding_from_pretrained, test_embedding_bag_from_pretrained,
  test_embedding_from_pretrained_padding_idx, test_embedding_bag_from_pretrained_padding_idx,
  test_embedding_from_pretrained_options, test_embedding_functional,
  test_embedding_bag_functional, test_embedding_bag_padding_idx_error,
  test_embeddingbag_from_pretrained, test_embeddingbag_from_pretrained_options,
  test_embeddingbag_include_last_offset, test_embedding_dense_grad,
  test_embedding_scalar_weight_error, test_embedding_backward,
  test_embedding_max_norm_backward, test_embedding_padding_idx,
  test_embedding_bag_1D_padding_idx, test_embedding_bag_2D_padding_idx,
  test_embedding_bag_empty_input, test_embedding_bag_out_of_bounds_idx,
  test_embedding_bag_dimension_errors, test_EmbeddingBag_per_sample_weights_failures,
  test_EmbeddingBag_empty_per_sample_weights_and_offsets,
  test_EmbeddingBag_per_sample_weights_and_offsets,
  test_EmbeddingBag_per_sample_weights_and_new_offsets,
  test_EmbeddingBag_per_sample_weights_and_no_offsets, test_embedding_bag_device (its known
  example, the 2-D form, all-empty bags, EmbeddingBag against Embedding + reduction with and
  without max_norm, and the illegal input combinations), test_embedding_bag_non_contiguous_weight,
  test_embedding_bag_per_sample_weights_grad.
  Where torch raises AssertionError/RuntimeError pyembed raises ValueError/IndexError (its rule
  for bad input, README "Differences"); the tests check pyembed's type and that torch refuses too.
  Not ported: the CUDA/half/bfloat16/meta/forward-AD/double-backward cases, test_move_sparse_half_
  embedding (no .to()), test_large_tensors (40 GB).

test/test_optim.py (torch 1.13's layout, TestOptim), ported below the embedding cases:
  test_sgd, test_sgd_sparse, test_adam, test_adamw, test_sparse_adam, test_invalid_param_type,
  test_duplicate_params_in_param_group: 7 ported, all pass (each against torch step by step).
"""
import itertools

import numpy as np
import pytest

import pyembed
from pyembed import optim

torch = pytest.importorskip("torch")
F = torch.nn.functional
nn = torch.nn


def T(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def _bag_like(torch_bag, np_dtype=np.float64, **kw):
    """A pyembed EmbeddingBag holding torch_bag's weights."""
    return pyembed.EmbeddingBag.from_pretrained(torch_bag.weight.detach().numpy().astype(np_dtype),
                                                freeze=False, **kw)


# -- test/nn/test_embedding.py --------------------------------------------------------------------


def test_embedding_sparse_basic():
    e = pyembed.Embedding(10, 20, seed=0)
    ids = np.array([[0, 2, 4, 5], [4, 3, 0, 9]])
    e.backward(ids, np.ones((2, 4, 20), np.float32))
    rows, values = e.sparse_grad()
    te = nn.Embedding(10, 20, sparse=True)
    te(T(ids)).sum().backward()
    g = te.weight.grad.coalesce()
    np.testing.assert_array_equal(rows, g.indices()[0].numpy())
    np.testing.assert_array_equal(values, g.values().numpy())
    assert e.grad.shape == tuple(te.weight.shape)


@pytest.mark.parametrize("n", [0, 10])
def test_embedding_sparse_empty_tensor(n):
    e = pyembed.Embedding(n, 0)
    ids = np.zeros((0,), np.int64) if n == 0 else np.array([[0, 2, 4, 5], [4, 3, 0, 9]])
    e.backward(ids, np.zeros(ids.shape + (0,), np.float32))
    te = nn.Embedding(n, 0, sparse=True)
    te(T(ids)).sum().backward()
    assert e.grad.shape == tuple(te.weight.grad.shape) == (n, 0)


def test_embedding_max_norm():
    e = pyembed.Embedding(22, 5, max_norm=1.0, seed=0)
    te = nn.Embedding(22, 5, max_norm=1.0)
    with torch.no_grad():
        te.weight.copy_(T(e.weight))
    ids = np.array([2, 8, 8, 6])
    out = e(ids)
    np.testing.assert_array_equal(out[1], out[2])
    assert (np.linalg.norm(out, axis=1) <= 1 + 1e-6).all()
    np.testing.assert_allclose(out, te(T(ids)).detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.int64, np.float32,
                                   np.float64])
def test_embedding_from_pretrained(dtype):
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).astype(dtype)
    e = pyembed.Embedding.from_pretrained(a)
    te = nn.Embedding.from_pretrained(T(a))
    # pyembed tables are float (integers become float32); the values are torch's
    np.testing.assert_array_equal(e.weight, te.weight.numpy())
    np.testing.assert_array_equal(e([0, 1]), te(torch.tensor([0, 1])).numpy())


def test_embedding_bag_from_pretrained():
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
    b = pyembed.EmbeddingBag.from_pretrained(a)
    np.testing.assert_array_equal(b.weight, a)
    np.testing.assert_array_equal(b(np.array([0, 1]), np.arange(2)), a)


def test_embedding_from_pretrained_padding_idx():
    w = np.random.default_rng(0).random((4, 3))
    w[2] = 7
    e = pyembed.Embedding.from_pretrained(w, padding_idx=2)
    te = nn.Embedding.from_pretrained(T(w), padding_idx=2)
    np.testing.assert_array_equal(e.weight[2], np.full(3, 7.0))
    np.testing.assert_array_equal(e.weight, te.weight.numpy())


def test_embedding_bag_from_pretrained_padding_idx():
    w = np.random.default_rng(0).random((4, 3))
    b = pyembed.EmbeddingBag.from_pretrained(w, padding_idx=2)
    np.testing.assert_array_equal(b.weight, w)


def test_embedding_from_pretrained_options():
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    opts = dict(max_norm=2.0, norm_type=0.5, scale_grad_by_freq=False)
    e = pyembed.Embedding.from_pretrained(a, **opts)
    ta = T(a.copy())
    te = nn.Embedding.from_pretrained(ta, sparse=True, **opts)
    out, tout = e([0, 1]), te(torch.tensor([0, 1]))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(e.weight, ta.numpy(), rtol=1e-12)  # renormalised in place
    assert (e.weight != np.arange(1, 7).reshape(2, 3)).all()
    assert ((np.abs(out) ** 0.5).sum(1) ** 2 <= 2.0 + 1e-12).all()


def test_embedding_functional():
    ids = np.array([[1, 3, 2], [0, 2, 1]])
    w = np.random.default_rng(1).random((4, 3))
    np.testing.assert_array_equal(pyembed.Embedding.from_pretrained(w)(ids),
                                  F.embedding(T(ids), T(w)).numpy())
    np.testing.assert_array_equal(pyembed.Embedding.from_pretrained(w, padding_idx=2)(ids),
                                  F.embedding(T(ids), T(w), padding_idx=2).numpy())


def test_embedding_bag_functional():
    ids = np.array([[1, 3, 2], [0, 2, 1]])
    w = np.random.default_rng(1).random((4, 3))
    np.testing.assert_allclose(pyembed.EmbeddingBag.from_pretrained(w)(ids),
                               F.embedding_bag(T(ids), T(w)).numpy(), rtol=1e-15)
    np.testing.assert_allclose(pyembed.EmbeddingBag.from_pretrained(w, padding_idx=2)(ids),
                               F.embedding_bag(T(ids), T(w), padding_idx=2).numpy(), rtol=1e-15)


@pytest.mark.parametrize("padding_idx", range(-6, 6))
def test_embedding_bag_padding_idx_error(padding_idx):
    ids = np.array([[1, 3, 2], [0, 2, 1]])
    w = np.random.default_rng(1).random((4, 3))
    if not -4 <= padding_idx < 4:
        with pytest.raises(RuntimeError, match="padding_idx must be within"):
            F.embedding_bag(T(ids), T(w), padding_idx=padding_idx)
        with pytest.raises(ValueError, match="padding_idx .* must be within num_embeddings"):
            pyembed.EmbeddingBag(4, 3, padding_idx=padding_idx)
    else:
        expect = F.embedding_bag(T(ids), T(w), padding_idx=padding_idx).numpy()
        got = pyembed.EmbeddingBag.from_pretrained(w, padding_idx=padding_idx)(ids)
        np.testing.assert_allclose(got, expect, rtol=1e-15)


def test_embeddingbag_from_pretrained():
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
    np.testing.assert_array_equal(pyembed.EmbeddingBag.from_pretrained(a)(np.array([[0, 1]])),
                                  a.mean(0, keepdims=True))


def test_embeddingbag_from_pretrained_options():
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    opts = dict(max_norm=2.0, norm_type=0.5, scale_grad_by_freq=False, mode="max")
    b = pyembed.EmbeddingBag.from_pretrained(a, **opts)
    ta = T(a.copy())
    tb = nn.EmbeddingBag.from_pretrained(ta, sparse=False, **opts)
    out, tout = b(np.array([[0, 1]])), tb(torch.tensor([[0, 1]]))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(out, b.weight.max(0, keepdims=True), rtol=0)
    assert ((np.abs(b.weight) ** 0.5).sum(1) ** 2 <= 2.0 + 1e-12).all()


def _include_last_offset_case(offsets):
    b = pyembed.EmbeddingBag(100, 3, include_last_offset=True, padding_idx=61, seed=0,
                             dtype=np.float64)
    ids = np.array([0, 1, 2, 3])
    expect = np.stack([b.weight[0:3].mean(0), b.weight[3]])
    np.testing.assert_allclose(b(ids, np.array(offsets)), expect, rtol=1e-15)


def test_embeddingbag_include_last_offset():
    _include_last_offset_case([0, 3, 4])


@pytest.mark.xfail(strict=True, reason=(
    "torch's case also passes offsets [0, 3, 3] (the last offset short of the 4 ids) and expects "
    "the last bag to run to the end of the ids, which torch's padding_idx path does; torch "
    "without padding_idx, its documentation and pyembed end the bag at the offset (an empty "
    "bag): a deliberate difference, README"))
def test_embeddingbag_include_last_offset_short_last_offset():
    _include_last_offset_case([0, 3, 3])


def test_embedding_dense_grad():
    """torch checks F.embedding with gradcheck; here the analytic gradient of a random linear
    function of the lookup against central differences, in float64."""
    rng = np.random.default_rng(0)
    e = pyembed.Embedding(20, 20, dtype=np.float64, seed=1)
    ids = np.array([[0, 1, 1, 2], [3, 5, 7, 11]])
    c = rng.standard_normal((2, 4, 20))
    e.backward(ids, c)
    numeric = np.zeros((20, 20))
    for r, k in itertools.product((0, 1, 2, 5, 11, 13), range(0, 20, 3)):
        w = e.weight.copy()
        for s in (1, -1):
            w2 = w.copy()
            w2[r, k] += s * 1e-6
            numeric[r, k] += s * (pyembed.Embedding.from_pretrained(w2)(ids) * c).sum() / 2e-6
    sel = np.ix_([0, 1, 2, 5, 11, 13], range(0, 20, 3))
    np.testing.assert_allclose(e.grad[sel], numeric[sel], atol=1e-6)


@pytest.mark.parametrize("w", [np.float32(1.0), np.ones((1, 1, 1), np.float32)])
def test_embedding_scalar_weight_error(w):
    with pytest.raises(RuntimeError, match="'weight' must be 2-D"):
        F.embedding(torch.zeros(2, 2, dtype=torch.long), T(np.asarray(w)))
    with pytest.raises(ValueError, match="2-D"):
        pyembed.Embedding.from_pretrained(w)


def test_embedding_backward():
    e = pyembed.Embedding(10, 3, dtype=np.float64, seed=0)
    te = nn.Embedding(10, 3, sparse=True, dtype=torch.float64)
    ids = np.array([7, 1, 3])
    for repeat in (1, 2):
        e.zero_grad()
        te.zero_grad()
        for _ in range(repeat):
            e.backward(ids, np.ones((3, 3)))
            te(T(ids)).sum().backward()
        g = te.weight.grad.coalesce()
        rows, values = e.sparse_grad()
        np.testing.assert_array_equal(rows, g.indices()[0].numpy())
        np.testing.assert_array_equal(values, g.values().numpy())
    ids2 = ids.copy()
    ids2[0] = 8  # a batch buffer changed between two backwards: each counts as it was
    e.zero_grad()
    e.backward(ids, np.ones((3, 3)))
    e.backward(ids2, np.ones((3, 3)))
    assert e.sparse_grad()[0].tolist() == [1, 3, 7, 8]
    assert e.grad[1].tolist() == [2.0] * 3 and e.grad[7].tolist() == [1.0] * 3


def test_embedding_max_norm_backward():
    w = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32) * 2
    e = pyembed.Embedding.from_pretrained(w, freeze=False, max_norm=1.0)
    ids = np.array([0, 1, 2, 2])
    out = e(ids)
    e.backward(ids, np.ones_like(out))
    np.testing.assert_array_equal(e.grad, np.repeat([[1.0], [1.0], [2.0], [0.0]], 4, axis=1))


def test_embedding_padding_idx():
    e = pyembed.Embedding(10, 20, padding_idx=0, seed=0)
    out = e(np.array([[0, 2, 4, 5], [4, 3, 0, 9]]))
    assert out[0][0].sum() == 0 and out[1][2].sum() == 0
    e = pyembed.Embedding(10, 20, padding_idx=-2, seed=0)  # row 8
    out = e(np.array([[0, 2, 8, 5], [4, 8, 0, 9]]))
    assert out[0][2].sum() == 0 and out[1][1].sum() == 0
    e = pyembed.Embedding(10, 20, padding_idx=2, seed=0)
    e.weight[2] = 1.0  # a padding vector set by hand is what is looked up
    np.testing.assert_array_equal(e(np.array([0, 2]))[1], np.ones(20, np.float32))
    for bad in (25, -25):
        with pytest.raises(AssertionError):
            nn.Embedding(10, 20, padding_idx=bad)
        with pytest.raises(ValueError, match="padding_idx"):
            pyembed.Embedding(10, 20, padding_idx=bad)
    e = pyembed.Embedding(5, 2, padding_idx=0, seed=0)
    for n, others in itertools.product((1, 2, 1000), ([], [1, 3], [2])):
        ids = np.array(others + [0] * n)
        e.backward(ids, np.ones((ids.size, 2), np.float32))
        assert not e.grad[0].any()  # the padding row gets no gradient
        e.zero_grad()


def _bag_pair(rng, num_words, dtype, padding_idx):
    w = rng.standard_normal((num_words, 3)).astype(dtype)
    return w, pyembed.EmbeddingBag.from_pretrained(w, freeze=False, padding_idx=padding_idx)


@pytest.mark.parametrize("mode, include_last_offset, allpad",
                         list(itertools.product(["max", "mean", "sum"], [False, True],
                                                [False, True])))
def test_embedding_bag_1D_padding_idx(mode, include_last_offset, allpad):
    """Bags given as ids + offsets (one empty, one full) against the same bags as a 2-D batch
    padded with padding_idx, both against torch's F.embedding_bag, forward and backward."""
    rng = np.random.default_rng(5)
    sizes = rng.integers(1, 10, 10)
    sizes[3], sizes[7] = 0, 10
    ids = np.ones(sizes.sum(), np.int64) if allpad else rng.integers(0, 100, sizes.sum())
    offsets = np.concatenate(([0], np.cumsum(sizes)[:-1] if not include_last_offset
                              else np.cumsum(sizes)))
    for pad in sorted(set(ids.tolist()))[:3] + [None]:
        w = rng.standard_normal((100 if pad is not None else 101, 3))
        b = pyembed.EmbeddingBag.from_pretrained(w, freeze=False, mode=mode, padding_idx=pad,
                                                 include_last_offset=include_last_offset)
        out = b(ids, offsets)
        tw = T(w).requires_grad_()
        tout = F.embedding_bag(T(ids), tw, T(offsets), mode=mode, padding_idx=pad,
                               include_last_offset=include_last_offset)
        np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12, atol=1e-15)
        b.backward(np.ones_like(out))
        tout.sum().backward()
        np.testing.assert_allclose(b.grad, tw.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("mode, allpad, rows", list(itertools.product(["max", "mean", "sum"],
                                                                   [False, True], [1, 10])))
def test_embedding_bag_2D_padding_idx(mode, allpad, rows):
    rng = np.random.default_rng(6)
    ids = np.ones((rows, 10), np.int64) if allpad else rng.integers(0, 10, (rows, 10))
    if rows > 1 and not allpad:
        ids[2] = ids[2][0]  # a row of one id: all padding when that id is padding_idx
    for pad in sorted(set(ids.ravel().tolist())):
        w = rng.standard_normal((10, 3))
        b = pyembed.EmbeddingBag.from_pretrained(w, freeze=False, mode=mode, padding_idx=pad)
        out = b(ids)
        tw = T(w).requires_grad_()
        tout = F.embedding_bag(T(ids), tw, mode=mode, padding_idx=pad)
        np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12, atol=1e-15)
        b.backward(np.ones_like(out))
        tout.sum().backward()
        np.testing.assert_allclose(b.grad, tw.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("id_dtype, off_dtype", list(itertools.product((np.int32, np.int64),
                                                                  repeat=2)))
def test_embedding_bag_empty_input(id_dtype, off_dtype):
    b = pyembed.EmbeddingBag(4, 3, seed=0)
    for off in ([0], [0, 0]):
        out = b(np.array([], id_dtype), np.array(off, off_dtype))
        assert out.shape == (len(off), 3) and not out.any()


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("ids", [[[-1, 1]], [[11, 8]]])
def test_embedding_bag_out_of_bounds_idx(mode, ids):
    w = np.random.default_rng(0).standard_normal((10, 2))
    with pytest.raises(RuntimeError, match="Expected idx >= 0 && idx < num_embeddings"):
        F.embedding_bag(torch.tensor(ids), T(w), mode=mode, padding_idx=0)
    b = pyembed.EmbeddingBag.from_pretrained(w, mode=mode, padding_idx=0)
    psws = (None, np.ones(2)) if mode == "sum" else (None,)
    for psw in psws:
        with pytest.raises(IndexError, match=str(ids[0][0])):
            b(np.array(ids), per_sample_weights=None if psw is None else psw.reshape(1, 2))


def test_embedding_bag_dimension_errors():
    w = np.zeros((2, 6))
    ids5 = np.full((2, 0, 0, 6, 6), 1, np.int64)
    with pytest.raises((ValueError, RuntimeError), match="input has to be 1D or 2D Tensor"):
        F.embedding_bag(T(ids5), T(w), T(np.zeros((2, 0, 0, 6, 6), np.int64)))
    b = pyembed.EmbeddingBag.from_pretrained(w)
    with pytest.raises(ValueError, match="1-D .* or 2-D"):
        b(ids5, np.zeros((2, 0, 0, 6, 6), np.int64))
    with pytest.raises(ValueError, match="offsets"):
        b(np.ones(2, np.int64), np.zeros((2, 2), np.int64))
    with pytest.raises(ValueError, match="2-D"):
        pyembed.EmbeddingBag.from_pretrained(np.zeros((2, 2, 2)))


def test_EmbeddingBag_per_sample_weights_failures():
    b = pyembed.EmbeddingBag(5, 2, mode="sum", seed=0)
    tb = nn.EmbeddingBag(5, 2, mode="sum")
    ids, off = np.array([3, 1, 1, 1, 4, 0]), np.array([0, 0, 3, 3, 6])
    psw64 = np.random.default_rng(0).standard_normal(6)
    with pytest.raises(RuntimeError, match="have the same type as"):
        tb(T(ids), T(off), T(psw64))
    with pytest.raises(RuntimeError, match="same"):  # also a TypeError
        b(ids, off, psw64)
    with pytest.raises(ValueError, match="same shape as the input"):
        tb(T(ids), T(off), torch.randn(5))
    with pytest.raises(ValueError, match="shape"):
        b(ids, off, np.ones(5, np.float32))
    ids2 = np.random.default_rng(1).integers(0, 5, (7, 3))
    with pytest.raises(ValueError, match="shape"):
        b(ids2, None, np.ones(21, np.float32))
    for mode in ("max", "mean"):
        with pytest.raises(NotImplementedError, match="only supported for mode='sum'"):
            nn.EmbeddingBag(5, 2, mode=mode)(T(ids2), None, torch.randn(7, 3))
        with pytest.raises(NotImplementedError, match="only supported for mode='sum'"):
            pyembed.EmbeddingBag(5, 2, mode=mode)(ids2, None, np.ones((7, 3), np.float32))


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


# -- test/test_optim.py ---------------------------------------------------------------------------
# torch 1.13's TestOptim, the cases for the optimizers pyembed has (SGD, Adam, AdamW, SparseAdam),
# 7 ported, all pass. Their "basic cases" train a linear model, loss = sum((W x + b)^2), and check
# the loss falls (rises with maximize) and that a state_dict round trip continues the same run;
# here torch runs the same steps on the same numbers and every step must agree. Schedulers torch
# uses there that pyembed does not have (ConstantLR, PolynomialLR, ReduceLROnPlateau) and the
# multi-tensor/fused/complex/CUDA variants are not ported.
from pyembed.optim import lr_scheduler as pe_sched  # noqa: E402

SCHEDULERS = {"none": [], "step": [("StepLR", dict(gamma=0.9, step_size=10))],
              "exp": [("ExponentialLR", dict(gamma=0.9))],
              "linear": [("LinearLR", dict(start_factor=0.4, end_factor=0.8, total_iters=4))],
              "step+linear": [("StepLR", dict(gamma=0.9, step_size=10)),
                              ("LinearLR", dict(start_factor=0.4, end_factor=0.6, total_iters=4))]}


class _Linear:
    """W (10, 5), b (10,) and their gradients for loss = sum((W x + b)^2), in NumPy and torch."""

    def __init__(self, seed, contiguous=True):
        rng = np.random.default_rng(seed)
        self.x = rng.standard_normal(5)
        if contiguous:
            self.W, self.b = rng.standard_normal((10, 5)), rng.standard_normal(10)
        else:  # torch's non-contiguous case: strided views of bigger arrays
            self.W, self.b = rng.standard_normal((10, 5, 2))[..., 0], rng.standard_normal((10, 2))[:, 0]
        self.W, self.b = np.ascontiguousarray(self.W), np.ascontiguousarray(self.b)
        self.gW, self.gb = np.zeros_like(self.W), np.zeros_like(self.b)
        self.tW = T(self.W.copy()).requires_grad_()
        self.tb = T(self.b.copy()).requires_grad_()
        self.tx = T(self.x)

    def loss(self):
        r = self.W @ self.x + self.b
        self.gW[...] = 2 * np.outer(r, self.x)
        self.gb[...] = 2 * r
        return float((r ** 2).sum())

    def tloss(self, opt):
        opt.zero_grad()
        loss = ((self.tW.mv(self.tx) + self.tb) ** 2).sum()
        loss.backward()
        return loss

    def params(self, groups):
        pairs = [(self.W, self.gW), (self.b, self.gb)]
        tparams = [self.tW, self.tb]
        if groups:  # torch's _build_params_dict: the bias in a group of its own with lr=1e-2
            return ([{"params": [pairs[0]]}, {"params": [pairs[1]], "lr": 1e-2}],
                    [{"params": [tparams[0]]}, {"params": [tparams[1]], "lr": 1e-2}])
        return pairs, tparams


def _run_basic_case(name, kw, groups=False, sched="none", contiguous=True, steps=60):
    for maximize in (False, True):
        m = _Linear(1, contiguous)
        ours, theirs = m.params(groups)
        opt = getattr(optim, name)(ours, maximize=maximize, **kw)
        topt = getattr(torch.optim, name)(theirs, maximize=maximize, **kw)
        scheds = [(getattr(pe_sched, s)(opt, **a), getattr(torch.optim.lr_scheduler, s)(topt, **a))
                  for s, a in SCHEDULERS[sched]]
        repr(opt)  # torch checks the optimizer prints
        first = m.loss()
        for _ in range(steps):
            opt.step(m.loss)
            topt.step(lambda: m.tloss(topt))
            for s, ts in scheds:  # after the step (torch 2's order; 1.13's test had it before)
                s.step()
                ts.step()
            np.testing.assert_allclose(m.W, m.tW.detach().numpy(), rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(m.b, m.tb.detach().numpy(), rtol=1e-9, atol=1e-12)
        assert (m.loss() > first) if maximize else (m.loss() < first)


def _run_state_dict_case(name, kw):
    """torch's _test_state_dict: prime 20 steps, load the state into a fresh optimizer of cloned
    parameters, run both 20 more steps: equal; the loaded dict unchanged; equal dicts."""
    a = _Linear(2)
    opt = getattr(optim, name)(a.params(False)[0], **kw)
    for _ in range(20):
        opt.step(a.loss)
    b = _Linear(2)
    b.W[...], b.b[...] = a.W, a.b
    opt_b = getattr(optim, name)(b.params(False)[0], **kw)
    saved = {k: np.array(v, copy=True) for k, v in opt.state_dict().items()}
    sd = {k: np.array(v, copy=True) for k, v in saved.items()}
    opt_b.load_state_dict(sd)  # must copy: stepping opt_b may not change the dict it was given
    for _ in range(20):
        opt.step(a.loss)
        opt_b.step(b.loss)
        np.testing.assert_array_equal(a.W, b.W)
        np.testing.assert_array_equal(a.b, b.b)
    assert all(np.array_equal(saved[k], sd[k]) for k in saved)
    sd_a, sd_b = opt.state_dict(), opt_b.state_dict()
    assert sd_a.keys() == sd_b.keys() and all(np.array_equal(sd_a[k], sd_b[k]) for k in sd_a)


SGD_CASES = [(dict(lr=1e-3), False, "none", True), (dict(lr=1e-3), True, "none", True),
             (dict(lr=1e-3), False, "none", False), (dict(lr=1e-3), False, "step", True),
             (dict(lr=1e-3), False, "linear", True), (dict(lr=1e-3), False, "step+linear", True),
             (dict(lr=1e-3, momentum=0.5), False, "none", True),
             (dict(lr=1e-3, momentum=0.5, weight_decay=1), False, "none", True),
             (dict(lr=1e-3, momentum=0.5, weight_decay=1, nesterov=True), False, "none", True)]


@pytest.mark.parametrize("kw, groups, sched, contiguous", SGD_CASES)
def test_sgd(kw, groups, sched, contiguous):
    _run_basic_case("SGD", kw, groups, sched, contiguous)
    _run_state_dict_case("SGD", kw)
    for mod in (torch.optim, optim):
        with pytest.raises(ValueError, match="Invalid momentum value: -0.5"):
            mod.SGD(None, lr=1e-2, momentum=-0.5)


ADAM_CASES = [(dict(lr=1e-3), False, "none"), (dict(lr=1e-3), True, "none"),
              (dict(lr=1e-3, amsgrad=True), False, "none"),
              (dict(lr=1e-3, weight_decay=0.1), False, "none"),
              (dict(lr=1e-3, amsgrad=True), True, "none"), (dict(lr=1e-3), True, "exp"),
              (dict(lr=1e-3), True, "linear"), (dict(lr=1e-3, amsgrad=True), False, "exp"),
              (dict(lr=1e-3, amsgrad=True), True, "step")]


@pytest.mark.parametrize("kw, groups, sched", ADAM_CASES)
def test_adam(kw, groups, sched):
    _run_basic_case("Adam", kw, groups, sched)
    _run_state_dict_case("Adam", kw)
    for mod in (torch.optim, optim):
        with pytest.raises(ValueError, match="Invalid beta parameter at index 0: 1.0"):
            mod.Adam(None, lr=1e-2, betas=(1.0, 0.0))
        with pytest.raises(ValueError, match="Invalid weight_decay value: -1"):
            mod.Adam(None, lr=1e-2, weight_decay=-1)


@pytest.mark.parametrize("kw, groups", [(dict(lr=1e-3), False), (dict(lr=1e-3), True),
                                        (dict(lr=1e-3, weight_decay=1), False),
                                        (dict(lr=1e-3, weight_decay=1, amsgrad=True), False)])
def test_adamw(kw, groups):
    _run_basic_case("AdamW", kw, groups)
    _run_state_dict_case("AdamW", kw)
    for mod in (torch.optim, optim):
        with pytest.raises(ValueError, match="Invalid weight_decay value: -1"):
            mod.AdamW(None, lr=1e-2, weight_decay=-1)


def _rosenbrock_grad(p):
    x, y = p
    return np.array([-400 * x * (y - x * x) - 2 * (1 - x), 200 * (y - x * x)])


def _run_rosenbrock_sparse(make_ours, make_theirs, steps=2000, dense_too=True, maximize=False):
    """torch's _test_rosenbrock_sparse: cyclic coordinate descent on Rosenbrock's function, the
    gradient of one coordinate given per step as an uncoalesced sparse gradient (two entries for
    the same row). pyembed's table gets it through backward (duplicates summed); torch's through
    a sparse COO tensor; a dense copy of the problem (pyembed only) must follow the same path."""
    start = np.array([[1.5], [1.5]])
    e = pyembed.Embedding.from_pretrained(start, freeze=False)
    opt = make_ours(e)
    if dense_too:
        p, g = start.copy(), np.zeros_like(start)
        opt_dense = make_ours([(p, g)])
    tp = T(start[:, 0].copy()).requires_grad_()
    topt = make_theirs([tp])
    for i in range(steps):
        w = i % 2
        grad = _rosenbrock_grad(e.weight[:, 0])
        v = grad[0] if w else grad[1]
        part = np.array([v / 4.0, v - v / 4.0]) if w else np.array([v - v / 4.0, v / 4.0])
        row = 0 if w else 1
        e.zero_grad()
        e.backward(np.array([row, row]), part[:, None])
        opt.step()
        tgrad = _rosenbrock_grad(tp.detach().numpy())
        tv = tgrad[0] if w else tgrad[1]
        tpart = [tv / 4.0, tv - tv / 4.0] if w else [tv - tv / 4.0, tv / 4.0]
        tp.grad = torch.sparse_coo_tensor([[row, row]], tpart, (2,), dtype=torch.float64,
                                          check_invariants=True)
        topt.step()
        np.testing.assert_allclose(e.weight[:, 0], tp.detach().numpy(), rtol=1e-9, atol=1e-12)
        if dense_too:
            g[...] = 0
            g[row, 0] = part.sum()
            opt_dense.step()
            np.testing.assert_allclose(p, e.weight, rtol=1e-9, atol=1e-12)
    dist = np.linalg.norm(e.weight[:, 0] - 1)
    f = lambda q: (1 - q[0]) ** 2 + 100 * (q[1] - q[0] ** 2) ** 2  # noqa: E731
    if maximize:
        assert f(e.weight[:, 0]) >= f(start[:, 0])
    else:
        assert dist <= np.linalg.norm(start[:, 0] - 1)


def test_sgd_sparse():
    _run_rosenbrock_sparse(lambda p: optim.SGD(p, lr=4.8e-3),
                           lambda p: torch.optim.SGD(p, lr=4.8e-3), steps=600)


def test_sparse_adam():
    _run_rosenbrock_sparse(lambda p: optim.SparseAdam(p, lr=4e-2),
                           lambda p: torch.optim.SparseAdam(p, lr=4e-2), steps=600,
                           dense_too=False)
    _run_rosenbrock_sparse(lambda p: optim.SparseAdam(p, lr=4e-2, maximize=True),
                           lambda p: torch.optim.SparseAdam(p, lr=4e-2, maximize=True),
                           steps=600, dense_too=False, maximize=True)
    for mod in (torch.optim, optim):
        with pytest.raises(ValueError, match="Invalid beta parameter at index 0: 1.0"):
            mod.SparseAdam(None, lr=1e-2, betas=(1.0, 0.0))


def test_invalid_param_type():
    with pytest.raises(TypeError):
        torch.optim.SGD(torch.randn(5, 5), lr=3)
    with pytest.raises(TypeError, match="pairs"):  # a bare array: no gradient to read
        optim.SGD(np.ones((5, 5)), lr=3)


def test_duplicate_params_in_param_group():
    p = torch.randn(5)
    with pytest.warns(UserWarning, match="duplicate parameters"):
        torch.optim.SGD([p, p], lr=0.1)
    pair = (np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match="more than once"):  # refused: README "Differences"
        optim.SGD([pair, pair], lr=0.1)

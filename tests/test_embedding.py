"""pyembed.Embedding: construction and init, forward / backward / zero_grad / sparse_grad through
the wrapper, max_norm against torch's renorm formula, sizes, pickle, repr, and error paths."""
import math
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyembed
import reference as ref
from pyembed import Embedding

FLOATS = (np.float32, np.float64)


snapshot = ref.snapshot
assert_unchanged = ref.assert_unchanged


# ---- construction and init ---------------------------------------------------------------------

def test_defaults():
    e = Embedding(10, 4, seed=0)
    assert e.shape == (10, 4) and e.num_embeddings == 10 and e.embedding_dim == 4
    assert e.dtype == np.float32 and e.padding_idx is None and e.max_norm is None
    assert e.norm_type == 2.0 and e.scale_grad_by_freq is False and e.requires_grad
    assert isinstance(e.table, pyembed.Table) and e.parameters() == [e]
    assert e.grad is None and e.touched.size == 0


@pytest.mark.parametrize("init", ["normal", "uniform"])
@pytest.mark.parametrize("fdtype", FLOATS)
def test_seed_reproducible(init, fdtype):
    a = Embedding(300, 17, init=init, seed=42, dtype=fdtype)
    b = Embedding(300, 17, init=init, seed=42, dtype=fdtype)
    c = Embedding(300, 17, init=init, seed=43, dtype=fdtype)
    np.testing.assert_array_equal(ref.bits(a.weight), ref.bits(b.weight))
    assert not np.array_equal(a.weight, c.weight)
    assert not np.array_equal(Embedding(300, 17, init=init).weight,
                              Embedding(300, 17, init=init).weight)  # seed=None: fresh entropy


@pytest.mark.parametrize("init", ["normal", "uniform"])
def test_init_same_for_every_thread_count_and_dtype(init):
    """Each value is a function of (seed, index) only, computed in double and rounded: so the
    float32 table is the float64 table rounded, whatever the thread count."""
    tables = []
    for nt in (1, 4):
        pyembed.set_num_threads(nt)
        tables.append(Embedding(20000, 64, init=init, seed=7).weight)  # parallel-sized
    np.testing.assert_array_equal(ref.bits(tables[0]), ref.bits(tables[1]))
    w64 = Embedding(20000, 64, init=init, seed=7, dtype=np.float64).weight
    np.testing.assert_array_equal(ref.bits(tables[0]), ref.bits(w64.astype(np.float32)))


def test_normal_statistics():
    w = Embedding(1000, 200, seed=1, dtype=np.float64).weight.ravel()  # 200k samples
    assert abs(w.mean()) < 0.012 and abs(w.std() - 1.0) < 0.012
    # tails of a normal: P(|x| > 2) = 4.55%, P(|x| > 3) = 0.27%
    assert abs(np.mean(np.abs(w) > 2) - 0.0455) < 0.003
    assert abs(np.mean(np.abs(w) > 3) - 0.0027) < 0.0008
    w2 = Embedding(1000, 200, seed=1, std=0.02).weight
    assert abs(w2.std() - 0.02) < 0.0003
    assert not Embedding(10, 3, std=0.0, seed=1).weight.any()


def test_uniform_bounds():
    w = Embedding(1000, 200, init="uniform", bound=0.5, seed=2).weight
    assert w.min() >= -0.5 and w.max() < 0.5
    assert w.min() < -0.499 and w.max() > 0.499
    assert abs(w.mean()) < 0.005 and abs(w.std() - 0.5 / math.sqrt(3)) < 0.003
    # bound defaults to sqrt(3) * std: unit variance like the normal default
    w = Embedding(1000, 200, init="uniform", std=2.0, seed=3, dtype=np.float64).weight
    b = math.sqrt(3.0) * 2.0
    assert w.min() >= -b and w.max() < b and abs(w.std() - 2.0) < 0.02


def test_zeros_and_array_init():
    assert not Embedding(50, 3, init="zeros").weight.any()
    src = np.arange(12, dtype=np.float64).reshape(4, 3) / 7
    e = Embedding(4, 3, init=src)
    np.testing.assert_array_equal(e.weight, src.astype(np.float32))
    src[:] = 0
    assert e.weight.any()  # a copy
    e64 = Embedding(4, 3, init=[[1, 2, 3]] * 4, dtype=np.float64)
    assert e64.dtype == np.float64 and (e64.weight == [1, 2, 3]).all()
    with pytest.raises(ValueError, match=r"\(3, 3\).*\(4, 3\)"):
        Embedding(4, 3, init=np.zeros((3, 3)))


@pytest.mark.parametrize("init", ["normal", "uniform", "array"])
@pytest.mark.parametrize("pad", [0, 3, -1])
def test_padding_row_starts_at_zero(init, pad):
    i = np.ones((5, 2)) if init == "array" else init
    e = Embedding(5, 2, padding_idx=pad, init=i, seed=0)
    assert e.padding_idx == pad % 5
    assert not e.weight[pad].any()
    assert np.delete(e.weight, pad % 5, axis=0).all()


@pytest.mark.parametrize("kwargs,exc", [
    (dict(num_embeddings=2.0), TypeError), (dict(num_embeddings=-1), ValueError),
    (dict(embedding_dim=True), TypeError), (dict(dtype=np.int32), ValueError),
    (dict(dtype=np.longdouble), ValueError), (dict(padding_idx=10), ValueError),
    (dict(padding_idx=-11), ValueError), (dict(padding_idx=1.0), TypeError),
    (dict(max_norm=-1.0), ValueError), (dict(max_norm=float("nan")), ValueError),
    (dict(norm_type=0.0), ValueError), (dict(init="xavier"), ValueError),
    (dict(std=-1.0), ValueError), (dict(bound=-0.1), ValueError),
    (dict(seed=-1), ValueError), (dict(seed=1.5), TypeError),
])
def test_constructor_errors(kwargs, exc):
    args = dict(num_embeddings=10, embedding_dim=4)
    args.update(kwargs)
    with pytest.raises(exc):
        Embedding(args.pop("num_embeddings"), args.pop("embedding_dim"), **args)


def test_num_parameters_and_nbytes():
    e = Embedding(10, 3, dtype=np.float64, init="zeros")
    assert e.num_parameters == 30 and e.nbytes == 240
    # "2 GiB" in the issue is 2.1e9 bytes = 2000 MiB; calloc-backed, so these untouched zero pages
    # cost nothing
    big = Embedding(128000, 4096, init="zeros")
    assert big.num_parameters == 524_288_000
    assert big.nbytes == 2000 * 2**20 == 2_097_152_000 == big.weight.nbytes
    assert "parameters=524288000" in repr(big.table)
    del big


# ---- forward / backward through the wrapper ------------------------------------------------------

def test_forward_and_out():
    e = Embedding(20, 5, seed=0, padding_idx=2)
    ids = np.array([[2, 19], [0, 2]], np.uint8)
    out = e(ids)
    np.testing.assert_array_equal(out, ref.gather(e.weight, ids))
    assert not out[0, 0].any()
    buf = np.empty((2, 2, 5), np.float32)
    assert e.forward(ids, out=buf) is buf
    np.testing.assert_array_equal(buf, out)


@pytest.mark.parametrize("fdtype", FLOATS)
def test_backward_options_and_sparse_grad(fdtype):
    e = Embedding(30, 4, padding_idx=-2, scale_grad_by_freq=True, dtype=fdtype, seed=0)
    rows, vals = e.sparse_grad()
    assert rows.size == 0 and vals.shape == (0, 4) and vals.dtype == fdtype
    rng = np.random.default_rng(0)
    grad = np.zeros((30, 4), fdtype)
    for _ in range(3):
        ids = rng.integers(0, 30, (5, 7))
        g = rng.standard_normal((5, 7, 4))
        assert e.backward(ids, g) is None
        grad = ref.backward(grad, ids, g, 28, True)
    np.testing.assert_array_equal(ref.bits(e.grad), ref.bits(grad))
    rows, vals = e.sparse_grad()
    np.testing.assert_array_equal(rows, e.touched)
    assert 28 not in rows
    np.testing.assert_array_equal(vals, grad[rows])
    vals[:] = 0
    assert e.grad[rows].any()  # values are a copy
    np.testing.assert_array_equal(np.nonzero(grad.any(axis=1))[0], rows)
    e.zero_grad()
    assert not e.grad.any() and e.touched.size == 0 and e.sparse_grad()[0].size == 0


def test_requires_grad_false_and_from_pretrained():
    src = np.arange(15, dtype=np.float64).reshape(5, 3)
    e = Embedding.from_pretrained(src, padding_idx=1)
    assert e.dtype == np.float64 and not e.requires_grad and e.padding_idx == 1
    np.testing.assert_array_equal(e.weight, src)  # the padding row keeps its pretrained values
    e.backward([1, 2], np.ones((2, 3)))
    assert e.grad is None
    e2 = Embedding.from_pretrained(src.astype(np.float32), freeze=False, padding_idx=-1)
    e2.backward([4, 2], np.ones((2, 3)))
    np.testing.assert_array_equal(e2.touched, [2])
    with pytest.raises(ValueError):
        Embedding.from_pretrained(np.zeros(3))


def test_vocab_is_none_without_one():
    assert Embedding(10, 3).vocab is None
    assert pyembed.EmbeddingBag(10, 3).vocab is None
    assert Embedding.from_pretrained(np.eye(3)).vocab is None
    with pytest.raises(ValueError, match="not a word"):
        Embedding.from_pretrained(np.eye(3), padding_idx="the")


def test_from_pretrained_takes_any_object_with_vectors_and_a_vocab():
    class KeyedVectors:  # gensim's shape: .vectors, .index_to_key, no pyembed types
        vectors = np.arange(6, dtype=np.float32).reshape(3, 2)
        index_to_key = ["a", "b", "c"]

    kv = KeyedVectors()
    e = Embedding.from_pretrained(kv, freeze=False)
    np.testing.assert_array_equal(e.weight, kv.vectors)
    assert e.vocab is None and e.requires_grad
    vocab = pyembed.Vocab(kv.index_to_key, specials=())
    e = Embedding.from_pretrained(kv, padding_idx="b", vocab=vocab)
    assert e.vocab is vocab and e.padding_idx == 1
    np.testing.assert_array_equal(e(vocab.encode(["c", "a"])), kv.vectors[[2, 0]])
    with pytest.raises(TypeError, match="padding_idx"):
        Embedding.from_pretrained(kv, padding_idx=1.5)


def test_weight_setter_through_wrapper():
    e = Embedding(3, 2, seed=0)
    e.weight = np.ones((3, 2))
    assert (e.weight == 1).all() and (e.table.weight == 1).all()
    with pytest.raises(ValueError):
        e.weight = np.ones((2, 3))


# ---- max_norm ---------------------------------------------------------------------------------------

@given(norm_type=st.sampled_from([1.0, 2.0, 3.0, float("inf"), 0.5]),
       fdtype=st.sampled_from(FLOATS), max_norm=st.floats(0.0, 4.0),
       n=st.integers(0, 40), dim=st.integers(0, 20), seed=st.integers(0, 2**32 - 1))
def test_max_norm_matches_torch_formula(norm_type, fdtype, max_norm, n, dim, seed):
    rng = np.random.default_rng(seed)
    e = Embedding(25, dim, max_norm=max_norm, norm_type=norm_type, dtype=fdtype, seed=seed)
    ids = rng.integers(0, 25, n).reshape(n, 1) if n % 2 else rng.integers(0, 25, n)
    expect = ref.renorm(e.weight, ids, max_norm, norm_type)
    out = e(ids)
    if norm_type in (1.0, 2.0, float("inf")):  # same summation order: the same bits
        np.testing.assert_array_equal(ref.bits(e.weight), ref.bits(expect))
    else:  # pow() may differ from NumPy's power in the last bit
        np.testing.assert_allclose(e.weight, expect, rtol=2e-6 if fdtype == np.float32 else 1e-12)
    np.testing.assert_array_equal(out, e.weight[ids])
    if n:
        norms = ref.row_norms(e.weight[np.unique(ids)], norm_type)
        assert np.all(norms <= max_norm * (1 + 1e-5) + 1e-6)


def test_max_norm_renormalises_in_place_only_the_looked_up_rows():
    e = Embedding(6, 4, max_norm=1.0, init=np.full((6, 4), 3.0))
    w0 = e.weight.copy()
    out = e([1, 1, 4])
    np.testing.assert_allclose(np.linalg.norm(e.weight[[1, 4]], axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(e.weight[[0, 2, 3, 5]], w0[[0, 2, 3, 5]])
    np.testing.assert_array_equal(out[0], out[1])  # a duplicate id is renormalised once
    before = e.weight.copy()
    e([1, 4])  # already within max_norm (norm = 1 - 1e-7): unchanged
    np.testing.assert_array_equal(e.weight, before)


@pytest.mark.parametrize("bad", ["id", "out_dtype", "out_shape", "out_readonly", "float_ids"])
def test_max_norm_errors_leave_table_unchanged(bad):
    e = Embedding(10, 4, max_norm=0.1, seed=0)
    e.backward([3], np.ones((1, 4)))
    snap = snapshot(e)
    ids, out = [1, 2], None
    if bad == "id":
        ids = [1, 10]
    elif bad == "float_ids":
        ids = [1.0, 2.0]
    elif bad == "out_dtype":
        out = np.empty((2, 4), np.float64)
    elif bad == "out_shape":
        out = np.empty((2, 5), np.float32)
    else:
        out = np.empty((2, 4), np.float32)
        out.flags.writeable = False
    with pytest.raises((IndexError, ValueError, TypeError)):
        e(ids, out=out)
    assert_unchanged(e, snap)


def test_backward_errors_leave_embedding_unchanged():
    e = Embedding(10, 4, seed=0, padding_idx=0, scale_grad_by_freq=True)
    e.backward([3, 3], np.ones((2, 4)))
    snap = snapshot(e)
    with pytest.raises(IndexError, match=r"index 12 .*ids\[1\]"):
        e.backward([3, 12], np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"\(2, 5\).*\(2, 4\)"):
        e.backward([3, 1], np.ones((2, 5)))
    with pytest.raises(TypeError):
        e.backward([3, 1], np.ones((2, 4), complex))
    assert_unchanged(e, snap)


# ---- pickle and repr --------------------------------------------------------------------------------

def test_pickle_round_trip():
    e = Embedding(40, 6, padding_idx=3, max_norm=2.0, norm_type=1.0, scale_grad_by_freq=True,
                  dtype=np.float64, seed=5)
    e2 = pickle.loads(pickle.dumps(e))
    assert e2.grad is None and repr(e2) == repr(e)
    e.backward([[3, 7, 7, 39]], np.ones((1, 4, 6)))
    e3 = pickle.loads(pickle.dumps(e))
    assert type(e3) is Embedding and repr(e3) == repr(e)
    np.testing.assert_array_equal(ref.bits(e3.weight), ref.bits(e.weight))
    np.testing.assert_array_equal(ref.bits(e3.grad), ref.bits(e.grad))
    np.testing.assert_array_equal(e3.touched, [7, 39])
    assert not np.shares_memory(e3.weight, e.weight)
    assert (e3.padding_idx, e3.max_norm, e3.norm_type, e3.scale_grad_by_freq) == (3, 2.0, 1.0, True)


def test_repr():
    assert repr(Embedding(10, 3, seed=0)) == "Embedding(10, 3)"
    assert repr(Embedding(10, 3, padding_idx=-1, max_norm=1.5, norm_type=1.0,
                          scale_grad_by_freq=True, dtype=np.float64, seed=0)) == \
        ("Embedding(10, 3, padding_idx=9, max_norm=1.5, norm_type=1.0, "
         "scale_grad_by_freq=True, dtype=float64)")

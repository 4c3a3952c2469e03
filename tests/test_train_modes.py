"""word2vec's other modes: CBOW (sg=0, cbow_mean 0/1) and hierarchical softmax (hs=1, alone or
beside negative sampling). The kernel against tests/reference_train.py's w2v_reference (float32 in
the kernel's order: the same bits), the Huffman tree against gensim's, the glue's checks."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyembed import _core
from pyembed.huffman import huffman_tree

from reference_train import w2v_reference


def _problem(seed, V=7, D=11, n_tokens=40, n_sent=4):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, V, n_tokens).astype(np.int32)
    cuts = np.sort(rng.integers(0, n_tokens, n_sent - 1))
    bounds = np.concatenate(([0], cuts, [n_tokens])).astype(np.int64)
    syn0 = rng.normal(0, 0.5, (V, D)).astype(np.float32)
    syn1 = rng.normal(0, 0.5, (V, D)).astype(np.float32)
    keep = rng.uniform(0.5, 1.0, V)
    alias = _core.alias_table(rng.uniform(0.1, 2.0, V))
    counts = np.sort(rng.integers(1, 50, V))[::-1]
    hs1 = rng.normal(0, 0.5, (V, D)).astype(np.float32)
    return (syn0, syn1, tokens, bounds, keep, alias), (hs1, *huffman_tree(counts))


def _tree_kw(tree):
    hs1, points, codes, offsets = tree
    return dict(hs_syn1=hs1, points=points, codes=codes, code_offsets=offsets)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), D=st.sampled_from([1, 7, 8, 16, 19, 33]),
       window=st.integers(1, 4), negative=st.integers(0, 5), sg=st.booleans(),
       cbow_mean=st.booleans(), hs=st.booleans())
def test_kernel_matches_reference_in_every_mode(seed, D, window, negative, sg, cbow_mean, hs):
    args, tree = _problem(seed, D=D)
    kw = dict(window=window, negative=negative, alpha_begin=0.5, alpha_end=0.1, seed=seed,
              counter_base=77)
    ref = w2v_reference(*args, **kw, sg=sg, cbow_mean=cbow_mean, tree=tree if hs else None)
    loss, pairs, words = _core.sgns_train(*args, threads=1, sg=sg, cbow_mean=cbow_mean, **kw,
                                          **(_tree_kw(tree) if hs else {}))
    assert (pairs, words) == (ref[4], ref[5])
    np.testing.assert_array_equal(args[0], ref[0])
    np.testing.assert_array_equal(args[1], ref[1])
    if hs:
        np.testing.assert_array_equal(tree[0], ref[2])
    np.testing.assert_allclose(loss, ref[3], rtol=1e-12)


@pytest.mark.parametrize("sg, hs, negative", [(0, 0, 5), (0, 1, 0), (1, 1, 0), (0, 1, 3)])
def test_kernel_modes_simd_paths_give_the_same_bits(sg, hs, negative):
    a, ta = _problem(11, D=37)
    b, tb = _problem(11, D=37)
    kw = dict(window=3, negative=negative, alpha_begin=0.3, alpha_end=0.1, seed=2, sg=sg)
    ra = _core.sgns_train(*a, **kw, **(_tree_kw(ta) if hs else {}))
    _core._set_simd_level(0)
    try:
        rb = _core.sgns_train(*b, **kw, **(_tree_kw(tb) if hs else {}))
    finally:
        _core._set_simd_level(-1)
    assert ra == rb
    assert all(np.array_equal(x, y) for x, y in zip(a[:2] + ta[:1], b[:2] + tb[:1]))


def test_hs_without_negatives_leaves_syn1neg_alone():
    args, tree = _problem(3)
    before = args[1].copy()
    _core.sgns_train(*args, negative=0, **_tree_kw(tree))
    np.testing.assert_array_equal(args[1], before)
    args2, _ = _problem(3)
    _core.sgns_train(*args2, negative=0)  # no tree: negative=0 trains the positive target alone
    assert not np.array_equal(args2[1], before)


def test_huffman_tree_shape():
    points, codes, offsets = huffman_tree([5, 3, 2, 1])
    # 1 (left, code 0) and 2 (right) merge into node 0 (count 3); then the word of count 3, first
    # in the heap, with node 0 into node 1; then 5 with node 1 into the root, node 2
    paths = [(points[offsets[w]:offsets[w + 1]].tolist(), codes[offsets[w]:offsets[w + 1]].tolist())
             for w in range(4)]
    assert paths == [([2], [0]), ([2, 1], [1, 0]), ([2, 1, 0], [1, 1, 1]), ([2, 1, 0], [1, 1, 0])]
    p1, c1, o1 = huffman_tree([7])
    assert p1.size == 0 and o1.tolist() == [0, 0]


@pytest.mark.parametrize("V", [2, 3, 17, 400])
def test_huffman_tree_equals_gensims(V):
    gensim = pytest.importorskip("gensim")
    from gensim.models.word2vec import _assign_binary_codes

    rng = np.random.default_rng(V)
    counts = np.sort(rng.zipf(1.6, V).clip(max=500))[::-1]  # many ties: the heap order decides
    kv = gensim.models.KeyedVectors(4, count=V)
    for w in range(V):
        kv.add_vector(str(w), np.zeros(4, np.float32))
        kv.set_vecattr(str(w), "count", int(counts[w]))
    _assign_binary_codes(kv)
    points, codes, offsets = huffman_tree(counts)
    for w in range(V):
        np.testing.assert_array_equal(points[offsets[w]:offsets[w + 1]], kv.get_vecattr(str(w), "point"))
        np.testing.assert_array_equal(codes[offsets[w]:offsets[w + 1]], kv.get_vecattr(str(w), "code"))


@pytest.mark.parametrize("change, match", [
    (dict(points=None), "go together"),
    (dict(hs_syn1=lambda h: h[:, :3].copy()), "hs_syn1 has shape"),
    (dict(hs_syn1=lambda h: None), "go together"),
    (dict(points=lambda p: np.where(np.arange(p.size) == 1, 6, p).astype(np.int32)), r"points\[1\] = 6"),
    (dict(codes=lambda c: np.where(np.arange(c.size) == 2, 2, c).astype(np.uint8)), r"codes\[2\] = 2"),
    (dict(code_offsets=lambda o: o[::-1].copy()), "code_offsets"),
    (dict(code_offsets=lambda o: o[:-1].copy()), "code_offsets has shape"),
    (dict(codes=lambda c: c[:-1].copy()), "codes has shape"),
    (dict(points=lambda p: p.astype(np.int64)), "points has dtype"),
])
def test_tree_errors_change_nothing(change, match):
    args, tree = _problem(5)
    kw = _tree_kw(tree)
    for k, v in change.items():
        kw[k] = v(kw[k]) if callable(v) else v
    before = [a.copy() for a in args[:2]] + [tree[0].copy()]
    with pytest.raises(ValueError, match=match):
        _core.sgns_train(*args, sg=0, **kw)
    for a, b in zip(list(args[:2]) + [tree[0]], before):
        np.testing.assert_array_equal(a, b)


def test_tree_table_must_not_share_memory():
    args, tree = _problem(6)
    kw = _tree_kw(tree)
    kw["hs_syn1"] = args[0]
    with pytest.raises(ValueError, match="share memory"):
        _core.sgns_train(*args, **kw)

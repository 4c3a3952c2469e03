"""word2vec's other modes: CBOW (sg=0, cbow_mean 0/1) and hierarchical softmax (hs=1, alone or
beside negative sampling). The kernel against tests/reference_train.py's w2v_reference (float32 in
the kernel's order: the same bits), the Huffman tree against gensim's, the glue's checks."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyembed
from pyembed import _core
from pyembed.huffman import huffman_tree
from pyembed.train import Word2Vec

from reference_train import sgns_problem, w2v_reference


def _problem(seed, V=7, D=11):
    """test_train's SGNS problem plus a tree: hierarchical softmax rows and the Huffman paths of
    random counts."""
    rng = np.random.default_rng(seed + 1)
    counts = np.sort(rng.integers(1, 50, V))[::-1]
    hs1 = rng.normal(0, 0.5, (V, D)).astype(np.float32)
    return sgns_problem(seed, V=V, D=D), (hs1, *huffman_tree(counts))


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
        path = slice(offsets[w], offsets[w + 1])
        np.testing.assert_array_equal(points[path], kv.get_vecattr(str(w), "point"))
        np.testing.assert_array_equal(codes[path], kv.get_vecattr(str(w), "code"))


@pytest.mark.parametrize("change, match", [
    (dict(points=None), "go together"),
    (dict(hs_syn1=lambda h: h[:, :3].copy()), "hs_syn1 has shape"),
    (dict(hs_syn1=lambda h: None), "go together"),
    (dict(points=lambda p: np.where(np.arange(p.size) == 1, 6, p).astype(np.int32)),
     r"points\[1\] = 6"),
    (dict(codes=lambda c: np.where(np.arange(c.size) == 2, 2, c).astype(np.uint8)),
     r"codes\[2\] = 2"),
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


# -- Word2Vec in every mode ---------------------------------------------------------------------

MODES = {"sg_ns": dict(sg=1), "cbow_mean_ns": dict(sg=0), "cbow_sum_ns": dict(sg=0, cbow_mean=0),
         "sg_hs": dict(sg=1, hs=1, negative=0), "cbow_hs": dict(sg=0, hs=1, negative=0),
         "cbow_sum_hs_ns": dict(sg=0, cbow_mean=0, hs=1, negative=3)}


def _planted(seed=0, n=1500, length=8):
    """Three groups of 8 words; a sentence draws its words from one group (70%) or from four
    filler words: a word's neighbours should be its group."""
    rng = np.random.default_rng(seed)
    groups = [[f"{g}{i}" for i in range(8)] for g in "abc"]
    fill = ["the", "of", "and", "to"]
    sents = []
    for _ in range(n):
        g = groups[rng.integers(3)]
        sents.append([g[rng.integers(8)] if rng.random() < 0.7 else fill[rng.integers(4)]
                      for _ in range(length)])
    return sents, groups


def _group_precision(model, groups):
    """Share of the 5 nearest neighbours of each group word that are in its group (chance:
    7 of 27 words, about 0.26)."""
    hits = [n[0] == w[0] for g in groups for w in g
            for n, _ in model.wv.most_similar(w, topn=5)]
    return float(np.mean(hits))


def _model(sents, **kw):
    args = dict(vector_size=16, window=3, min_count=1, epochs=5, workers=1, seed=1,
                progress=False)
    args.update(kw)
    return Word2Vec(sents, **args)


@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_learns_the_planted_groups(mode):
    sents, groups = _planted()
    m = _model(sents, **MODES[mode])
    assert _group_precision(m, groups) >= 0.9
    assert m.loss_history[-1] < m.loss_history[0]
    untrained = _model(sents, **MODES[mode], alpha=0.0, min_alpha=0.0)  # the check can fail
    assert _group_precision(untrained, groups) < 0.6


@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_is_deterministic_with_one_worker(mode):
    a, b = _model(TINY_SENTS, **MODES[mode]), _model(TINY_SENTS, **MODES[mode])
    np.testing.assert_array_equal(a.syn0, b.syn0)
    np.testing.assert_array_equal(a.syn1neg, b.syn1neg)
    if a.hs:
        np.testing.assert_array_equal(a.syn1, b.syn1)
        assert a.syn1.any() and a.syn1.shape == a.syn0.shape
    assert a.loss_history == b.loss_history
    assert not np.array_equal(a.syn0, _model(TINY_SENTS, **MODES[mode], seed=2).syn0)


@pytest.mark.parametrize("mode", ["cbow_sum_hs_ns", "sg_hs"])
def test_every_mode_trains_with_threads(mode):
    m = _model(TINY_SENTS * 5, **MODES[mode], workers=2, batch_words=100)  # Hogwild
    assert np.isfinite(m.syn0).all() and np.isfinite(m.syn1).all() and m.pairs_trained > 0


TINY_SENTS = [["the", "cat", "sat", "on", "the", "mat"], ["the", "dog", "sat", "on", "the", "log"],
              ["a", "cat", "and", "a", "dog"]] * 20


# -- continuing training ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sg_ns", "cbow_hs"])
def test_training_split_in_calls_equals_one_go(mode):
    """A constant learning rate: two calls of 2 epochs give the bits of one call of 4 (the random
    draws go on where the last call stopped)."""
    kw = dict(MODES[mode], alpha=0.02, min_alpha=0.02)
    one = _model(TINY_SENTS, **kw, epochs=4)
    split = Word2Vec(vector_size=16, window=3, min_count=1, workers=1, seed=1, progress=False,
                     **kw).build_vocab(TINY_SENTS)
    split.train(epochs=2).train(epochs=2)
    np.testing.assert_array_equal(split.syn0, one.syn0)
    np.testing.assert_array_equal(split.syn1neg, one.syn1neg)
    # a falling rate split with start_alpha/end_alpha: the same run up to float rounding of alpha
    one = _model(TINY_SENTS, **MODES[mode], epochs=4)
    split = Word2Vec(vector_size=16, window=3, min_count=1, workers=1, seed=1, progress=False,
                     **MODES[mode]).build_vocab(TINY_SENTS)
    mid = split.alpha - (split.alpha - split.min_alpha) / 2
    split.train(epochs=2, end_alpha=mid).train(epochs=2, start_alpha=mid)
    np.testing.assert_allclose(split.syn0, one.syn0, rtol=1e-4, atol=1e-6)
    # without the split rates each call falls from alpha again (gensim's rule): different
    again = Word2Vec(vector_size=16, window=3, min_count=1, workers=1, seed=1, progress=False,
                     **MODES[mode]).build_vocab(TINY_SENTS)
    again.train(epochs=2).train(epochs=2)
    assert not np.allclose(again.syn0, one.syn0, rtol=1e-4, atol=1e-6)


def test_build_vocab_update_keeps_rows_and_adds_words():
    m = _model(TINY_SENTS, sg=0, hs=1, negative=2)
    old = [m.syn0.copy(), m.syn1neg.copy(), m.syn1.copy()]
    V = len(m.index_to_key)
    m.build_vocab([["the", "bird", "sat"], ["a", "bird", "flew"]] * 3, update=True)
    assert m.index_to_key[V:] == ["bird", "flew"]
    assert m.counts[m.key_to_index["the"]] == 80 + 3 and m.counts[V:].tolist() == [6, 3]
    for new, before in zip((m.syn0, m.syn1neg, m.syn1), old):
        np.testing.assert_array_equal(new[:V], before)
    assert m.syn1neg[V:].any() == False and m.syn0[V:].any()  # noqa: E712
    assert m._tree[2].size == V + 3  # the tree is rebuilt over every word
    m.train()
    assert m.syn1neg[V:].any()  # the new words trained


def test_from_vectors_continues_from_loaded_vectors(tmp_path):
    base = _model(TINY_SENTS)
    path = tmp_path / "v.txt"
    base.save(path, fvocab=tmp_path / "vocab.txt")
    m = Word2Vec.from_vectors(pyembed.load_vectors(path, fvocab=tmp_path / "vocab.txt"),
                              min_count=1, workers=1, seed=1, progress=False, window=3,
                              sample=0)
    assert m.index_to_key == base.index_to_key and m.counts.tolist() == base.counts.tolist()
    np.testing.assert_allclose(m.syn0, base.syn0, rtol=1e-6, atol=1e-7)
    assert not m.syn1neg.any()
    with pytest.raises(ValueError, match="no corpus"):
        m.train()
    m.build_vocab([["the", "bird", "sat"]] * 4, update=True)
    assert m.index_to_key[-1] == "bird"
    before = m.syn0.copy()
    m.train(epochs=2)
    assert not np.array_equal(m.syn0, before)
    # a path works as well (read without fvocab: gensim's made-up falling counts); a Vectors
    # without counts: every word counts 1
    m2 = Word2Vec.from_vectors(path, workers=1, progress=False)
    assert m2.counts.tolist() == list(range(len(base.index_to_key), 0, -1))
    m3 = Word2Vec.from_vectors(pyembed.Vectors(["x", "y"], np.ones((2, 3))), progress=False)
    assert m3.counts.tolist() == [1, 1] and m3.vector_size == 3


def test_intersect_vectors_copies_the_known_words():
    m = _model(TINY_SENTS)
    kv = pyembed.Vectors(["cat", "zebra", "dog"], np.arange(48, dtype=np.float32).reshape(3, 16))
    assert m.intersect_vectors(kv) == 2
    np.testing.assert_array_equal(m.syn0[m.key_to_index["cat"]], kv["cat"])
    np.testing.assert_array_equal(m.wv["dog"], kv["dog"])
    assert "zebra" not in m.key_to_index

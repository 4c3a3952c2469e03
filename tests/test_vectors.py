"""Vectors queries: a float64 NumPy reference, and parity with gensim's KeyedVectors."""
import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyembed import Vectors
from pyembed import evaluation

logging.getLogger("gensim").setLevel(logging.ERROR)
# gensim's most_similar_cosmul calls its own deprecated init_sims
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated:DeprecationWarning")


def _random(n=500, d=16, seed=0):
    rng = np.random.default_rng(seed)
    return [f"w{i}" for i in range(n)], rng.standard_normal((n, d)).astype(np.float32)


@pytest.fixture(scope="module")
def pair():
    gensim = pytest.importorskip("gensim")
    words, v = _random()
    g = gensim.models.KeyedVectors(v.shape[1])
    g.add_vectors(words, v)
    return Vectors(words, v), g


@pytest.fixture(scope="module")
def trained():
    """Vectors trained by gensim's Word2Vec on its Lee corpus (~0.5 s)."""
    pytest.importorskip("gensim")
    from gensim.models import Word2Vec
    from gensim.models.word2vec import LineSentence
    from gensim.test.utils import datapath

    m = Word2Vec(LineSentence(datapath("lee_background.cor")), vector_size=32, min_count=3,
                 epochs=5, workers=1, seed=1)
    return Vectors(m.wv.index_to_key, m.wv.vectors), m.wv


def same_results(a, b, tol=1e-5):
    assert [w for w, _ in a] == [w for w, _ in b]
    np.testing.assert_allclose([s for _, s in a], [s for _, s in b], rtol=0, atol=tol)


# -- reference ----------------------------------------------------------------------------------------

def reference_most_similar(words, V, positive, negative, topn):
    """cos(row, unit(sum_pos unit(v) - sum_neg unit(v))) in float64, query words left out."""
    V64 = V.astype(np.float64)
    U = V64 / np.linalg.norm(V64, axis=1, keepdims=True)
    idx = {w: i for i, w in enumerate(words)}
    mean = sum(U[idx[w]] for w in positive) - sum((U[idx[w]] for w in negative), np.zeros(V.shape[1]))
    mean /= np.linalg.norm(mean)
    sims = U @ mean
    order = [i for i in np.argsort(-sims, kind="stable") if words[i] not in set(positive) | set(negative)]
    return [(words[i], sims[i]) for i in order[:topn]]


@pytest.mark.parametrize("pos,neg", [(["w1"], []), (["w1", "w2"], ["w3"]), (["w4", "w5", "w6"], ["w7", "w8"])])
def test_most_similar_matches_float64_reference(pos, neg):
    words, v = _random()
    kv = Vectors(words, v)
    same_results(kv.most_similar(positive=pos, negative=neg, topn=15),
                 reference_most_similar(words, v, pos, neg, 15))


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 60), st.integers(1, 9), st.integers(1, 12), st.integers(0, 2**31))
def test_most_similar_any_shape(n, d, topn, seed):
    words, v = _random(n, d, seed)
    v += np.float32(0.01)  # no zero rows
    kv = Vectors(words, v)
    got = kv.most_similar("w0", topn=topn)
    ref = reference_most_similar(words, v, ["w0"], [], topn)
    np.testing.assert_allclose([s for _, s in got], [s for _, s in ref], atol=1e-5)
    assert len(got) == min(topn, n - 1)
    batch = kv.most_similar_batch(["w0"], topn=topn)[0]
    np.testing.assert_allclose([s for _, s in batch], [s for _, s in got], atol=1e-5)


def test_basics():
    words, v = _random(5, 3)
    orig = v.copy()
    kv = Vectors(words, v)
    v[0] = 99  # copied
    np.testing.assert_array_equal(kv["w0"], orig[0])
    assert len(kv) == 5 and "w2" in kv and "zz" not in kv and kv.vector_size == 3
    np.testing.assert_array_equal(kv[["w3", "w1"]], orig[[3, 1]])
    np.testing.assert_array_equal(kv[[4, "w0"]], orig[[4, 0]])
    assert kv.get_index("w4") == 4 and kv.get_index(2) == 2 and kv.get_index("zz", -1) == -1
    assert not kv["w1"].flags.writeable
    np.testing.assert_allclose(np.linalg.norm(kv.get_vector("w1", norm=True)), 1, rtol=1e-6)
    np.testing.assert_allclose(kv.get_normed_vectors(), orig / np.linalg.norm(orig, axis=1, keepdims=True))
    assert "5 keys" in repr(kv)


def test_constructor_errors():
    with pytest.raises(ValueError, match="duplicate key 'a'"):
        Vectors(["a", "b", "a"], np.zeros((3, 2)))
    with pytest.raises(ValueError, match="2 keys but 3 vectors"):
        Vectors(["a", "b"], np.zeros((3, 2)))
    with pytest.raises(ValueError, match="2-D"):
        Vectors(["a"], np.zeros(3))
    with pytest.raises(TypeError, match="numeric"):
        Vectors(["a"], np.array([["x"]]))
    assert Vectors(["a"], np.ones((1, 2), np.int64)).vectors.dtype == np.float32


def test_query_errors():
    words, v = _random(20, 4)
    kv = Vectors(words, v)
    with pytest.raises(KeyError, match="nope"):
        kv.most_similar("nope")
    with pytest.raises(KeyError, match="nope"):
        kv["nope"]
    with pytest.raises(KeyError):
        kv[["w1", "nope"]]
    with pytest.raises(KeyError):
        kv.most_similar_batch(["w1", "nope"])
    with pytest.raises(ValueError, match="no input"):
        kv.most_similar_cosmul(negative=["w1"])
    with pytest.raises(ValueError, match="no input"):
        kv.get_mean_vector([])
    with pytest.warns(UserWarning, match="not present"):
        with pytest.raises(ValueError, match="empty"):
            kv.doesnt_match(["nope"])
    assert kv.most_similar("w1", topn=0) == []


# -- gensim parity ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [
    dict(positive=["w1"]),
    dict(positive="w1", topn=3),
    dict(positive=["w1", "w2"], negative=["w3"], topn=20),
    dict(positive=[("w1", 0.5), ("w9", 2.0)], negative=[("w4", -0.3)]),
    dict(positive=[7, "w8"], restrict_vocab=100),
    dict(positive=["w10"], clip_start=50, clip_end=300),
    dict(negative=["w11"]),
])
def test_most_similar_matches_gensim(pair, kw):
    kv, g = pair
    same_results(kv.most_similar(**kw), g.most_similar(**kw))


def test_most_similar_with_vectors_matches_gensim(pair):
    kv, g = pair
    q = kv.vectors[3] * 2 + kv.vectors[5]
    same_results(kv.most_similar(positive=[q]), g.most_similar(positive=[q]))
    same_results(kv.most_similar(positive=["w2", (q, 0.5)], negative=[kv.vectors[6]]),
                 g.most_similar(positive=["w2", (q, 0.5)], negative=[kv.vectors[6]]))
    same_results(kv.similar_by_vector(q), g.similar_by_vector(q))
    same_results(kv.similar_by_word("w3"), g.similar_by_word("w3"))


def test_topn_none_gives_every_similarity(pair):
    kv, g = pair
    np.testing.assert_array_equal(kv.most_similar("w1", topn=None), g.most_similar("w1", topn=None))
    np.testing.assert_array_equal(kv.most_similar_cosmul(["w1", "w2"], ["w5"], topn=None),
                                  g.most_similar_cosmul(["w1", "w2"], ["w5"], topn=None))


@pytest.mark.parametrize("kw", [dict(positive=["w1"]), dict(positive=["w1", "w2"], negative=["w3"]),
                                dict(positive="w4", negative="w5", topn=4)])
def test_cosmul_matches_gensim(pair, kw):
    kv, g = pair
    same_results(kv.most_similar_cosmul(**kw), g.most_similar_cosmul(**kw))


def test_batch_matches_gensim(pair):
    kv, g = pair
    qs = ["w1", "w50", 77, kv.vectors[9] + 1]
    for got, q in zip(kv.most_similar_batch(qs, topn=12), qs):
        same_results(got, g.most_similar(positive=[q], topn=12))
    m = kv.vectors[[3, 4]]
    for got, q in zip(kv.most_similar_batch(m, topn=5, restrict_vocab=200), m):
        same_results(got, g.most_similar(positive=[q], topn=5, restrict_vocab=200))


def test_batch_on_trained_vectors(trained):
    kv, g = trained
    words = kv.index_to_key[:40]
    for got, w in zip(kv.most_similar_batch(words), words):
        same_results(got, g.most_similar(w))


def test_pairs_and_sets_match_gensim(pair):
    kv, g = pair
    assert abs(kv.similarity("w1", "w2") - g.similarity("w1", "w2")) < 1e-6
    assert abs(kv.distance("w1", "w2") - g.distance("w1", "w2")) < 1e-6
    assert abs(kv.n_similarity(["w1", "w3"], ["w2"]) - g.n_similarity(["w1", "w3"], ["w2"])) < 1e-6
    np.testing.assert_allclose(kv.distances("w1", ["w2", "w3"]), g.distances("w1", ["w2", "w3"]), atol=1e-6)
    np.testing.assert_allclose(kv.distances("w1"), g.distances("w1"), atol=1e-6)
    np.testing.assert_allclose(kv.distances(kv.vectors[4]), g.distances(kv.vectors[4]), atol=1e-6)
    ws = ["w1", "w2", "w3", "w4", "w5", "w6"]
    assert kv.doesnt_match(ws) == g.doesnt_match(ws)
    got, ref = kv.rank_by_centrality(ws), g.rank_by_centrality(ws)
    assert [w for _, w in got] == [w for _, w in ref]
    np.testing.assert_allclose([s for s, _ in got], [s for s, _ in ref], atol=1e-6)


def test_queries_on_trained_vectors_match_gensim(trained):
    kv, g = trained
    for w in kv.index_to_key[:60]:
        same_results(kv.most_similar(w), g.most_similar(w))
    a, b, c = kv.index_to_key[10:13]
    same_results(kv.analogy(a, b, c, topn=5), g.most_similar(positive=[b, c], negative=[a], topn=5))
    same_results(kv.most_similar_cosmul([b, c], [a]), g.most_similar_cosmul([b, c], [a]))


def _analogy_file(tmp_path):
    """Countries and capitals sharing an offset plus noise: about half the questions right."""
    rng = np.random.default_rng(3)
    n, d = 60, 20
    countries = [f"Country{i}" for i in range(n)]
    caps = [f"cap{i}" for i in range(n)]
    base = rng.standard_normal((n, d))
    K = base + rng.standard_normal(d) * 2 + rng.standard_normal((n, d)) * 1.2
    words = countries + caps + [f"x{i}" for i in range(300)] + ["COUNTRY3"]
    V = np.vstack([base, K, rng.standard_normal((300, d)), base[3:4] + 0.01]).astype(np.float32)
    lines = [": capital"] + [f"{countries[i]} {caps[i]} {countries[(i * 7 + 3) % n]} {caps[(i * 7 + 3) % n]}"
                             for i in range(40)]
    lines += [": other", "x1 x2 x3 x4", "bad line", "x1 x2 zz x4", ": empty"]
    p = tmp_path / "questions.txt"
    p.write_text("\n".join(lines) + "\n")
    return words, V, p


@pytest.mark.parametrize("kw", [dict(), dict(dummy4unknown=True), dict(case_insensitive=False),
                                dict(restrict_vocab=150)])
def test_evaluate_word_analogies_matches_gensim(tmp_path, kw):
    gensim = pytest.importorskip("gensim")
    words, V, p = _analogy_file(tmp_path)
    g = gensim.models.KeyedVectors(V.shape[1])
    g.add_vectors(words, V)
    score, sections = Vectors(words, V).evaluate_word_analogies(p, **kw)
    gscore, gsections = g.evaluate_word_analogies(str(p), **kw)
    assert 0.3 < score < 0.7 and score == gscore
    assert sections == gsections


def test_evaluate_word_analogies_on_questions_words(trained):
    from gensim.test.utils import datapath

    kv, g = trained
    path = datapath("questions-words.txt")
    score, sections = kv.evaluate_word_analogies(path, restrict_vocab=2000)
    gscore, gsections = g.evaluate_word_analogies(path, restrict_vocab=2000)
    assert score == gscore and sections == gsections


def test_evaluate_word_analogies_needs_a_section(tmp_path):
    p = tmp_path / "q.txt"
    p.write_text("a b c d\n")
    with pytest.raises(ValueError, match="Missing section header"):
        Vectors(["a"], np.ones((1, 2))).evaluate_word_analogies(p)


@pytest.mark.parametrize("kw", [dict(), dict(dummy4unknown=True), dict(case_insensitive=False)])
def test_evaluate_word_pairs_matches_gensim(trained, kw):
    from gensim.test.utils import datapath

    kv, g = trained
    path = datapath("wordsim353.tsv")
    (r, pr), (rho, prho), oov = kv.evaluate_word_pairs(path, **kw)
    gp, gs, goov = g.evaluate_word_pairs(path, **kw)
    assert abs(r - gp[0]) < 1e-5 and abs(pr - gp[1]) < 1e-5
    assert abs(rho - gs[0]) < 1e-5 and abs(prho - gs[1]) < 1e-5
    assert oov == goov


def test_evaluate_word_pairs_errors(tmp_path):
    p = tmp_path / "pairs.tsv"
    p.write_text("# comment\nzz\tyy\t1.0\nbad line\n")
    with pytest.raises(ValueError, match="No valid similarity judgements"):
        Vectors(["a"], np.ones((1, 2))).evaluate_word_pairs(p)


def test_statistics_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(7)
    for n in (3, 10, 200):
        x = rng.integers(0, 5, n).astype(float)  # ties
        y = x + rng.standard_normal(n)
        np.testing.assert_allclose(evaluation._rankdata(x), stats.rankdata(x))
        r, p = evaluation._pearson(x, y)
        ref = stats.pearsonr(x, y)
        assert abs(r - ref[0]) < 1e-12 and abs(p - ref[1]) < 1e-9
        rho, p = evaluation._pearson(evaluation._rankdata(x), evaluation._rankdata(y))
        ref = stats.spearmanr(x, y)
        assert abs(rho - ref[0]) < 1e-12 and abs(p - ref[1]) < 1e-9


def test_save_and_load_methods(tmp_path):
    words, v = _random(10, 3)
    kv = Vectors(words, v)
    kv.save(tmp_path / "v.bin", binary=True)
    back = Vectors.load(tmp_path / "v.bin")
    np.testing.assert_array_equal(back.vectors, v)
    assert back.index_to_key == words


# -- per-key attributes ---------------------------------------------------------------------------------

def test_vecattr_set_and_get():
    words, v = _random(4, 3)
    kv = Vectors(words, v)
    assert kv.expandos == {}
    kv.set_vecattr("w1", "count", 7)
    assert kv.expandos["count"].dtype == np.int64
    assert kv.get_vecattr("w1", "count") == 7 and kv.get_vecattr("w0", "count") == 0
    kv.set_vecattr(2, "count", np.int32(5))  # a row number, and a narrower int
    assert kv.expandos["count"].tolist() == [0, 7, 5, 0]
    kv.set_vecattr("w0", "weight", 0.5)
    kv.set_vecattr("w3", "weight", 2)  # an int fits a float64 array
    assert kv.expandos["weight"].tolist() == [0.5, 0.0, 0.0, 2.0]
    kv.set_vecattr("w0", "tag", "noun")
    assert kv.expandos["tag"].dtype == object and kv.get_vecattr("w0", "tag") == "noun"


def test_vecattr_errors_change_nothing():
    words, v = _random(3, 2)
    kv = Vectors(words, v)
    kv.set_vecattr("w0", "count", 3)
    with pytest.raises(KeyError, match="'nope' not present"):
        kv.set_vecattr("nope", "count", 1)
    with pytest.raises(KeyError, match="'nope' not present"):
        kv.get_vecattr("nope", "count")
    with pytest.raises(KeyError, match=r"no per-key attribute 'freq' \(the attributes: \['count'\]\)"):
        kv.get_vecattr("w0", "freq")
    with pytest.raises(TypeError, match="'count' holds int64; cannot store 1.5"):
        kv.set_vecattr("w1", "count", 1.5)
    with pytest.raises(TypeError, match="cannot store None"):
        kv.set_vecattr("w1", "count", None)
    assert kv.expandos["count"].tolist() == [3, 0, 0] and list(kv.expandos) == ["count"]
    kv.expandos["count"] = np.zeros(2, np.int64)  # a user's array of the wrong length
    with pytest.raises(ValueError, match=r"'count' has shape \(2,\), not \(3,\) for 3 keys"):
        kv.get_vecattr("w0", "count")


# -- the top-k kernel ---------------------------------------------------------------------------------

def reference_topk(x, k):
    """Best first, ties by smaller index, NaN last: a stable sort on (-x) with NaN as +inf."""
    key = np.where(np.isnan(x), np.inf, -x)
    idx = np.argsort(key, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(x, idx, axis=1)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(1, 40), st.data(), st.sampled_from([np.float32, np.float64]))
def test_topk_matches_reference(rows, n, data, dtype):
    from pyembed import _core

    k = data.draw(st.integers(0, n))
    seed = data.draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, (rows, n)).astype(dtype)  # many ties
    x[rng.random((rows, n)) < 0.1] = np.nan
    scale = (rng.integers(1, 3, n)).astype(dtype)
    for sc in (None, scale):
        ref_in = x if sc is None else x / sc
        idx, val = _core.topk(x, k, scale=sc)
        ridx, rval = reference_topk(ref_in, k)
        np.testing.assert_array_equal(idx, ridx)
        np.testing.assert_array_equal(val, rval)
        assert val.dtype == dtype


def test_topk_threads_and_errors():
    import pyembed
    from pyembed import _core

    x = np.random.default_rng(0).standard_normal((64, 5000)).astype(np.float32)
    old = pyembed.get_num_threads()
    try:
        pyembed.set_num_threads(1)
        a = _core.topk(x, 10)
        pyembed.set_num_threads(4)
        b = _core.topk(x, 10)
    finally:
        pyembed.set_num_threads(old)
    np.testing.assert_array_equal(a[0], b[0])
    with pytest.raises(ValueError, match="k must be in"):
        _core.topk(x, 5001)
    with pytest.raises(ValueError, match="scale"):
        _core.topk(x, 3, scale=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="2-D"):
        _core.topk(x[0], 3)


def test_gensim_style_word2vec_format_methods(tmp_path):
    kv = Vectors(["a", "b", "c"], np.arange(6, dtype=np.float32).reshape(3, 2))
    kv.set_vecattr("a", "count", 3)
    kv.set_vecattr("b", "count", 7)
    kv.set_vecattr("c", "count", 5)
    kv.save_word2vec_format(str(tmp_path / "v.bin"), str(tmp_path / "vocab.txt"), True)
    assert (tmp_path / "vocab.txt").read_text() == "b 7\nc 5\na 3\n"  # most frequent first
    back = Vectors.load_word2vec_format(str(tmp_path / "v.bin"), str(tmp_path / "vocab.txt"),
                                        binary=True)
    assert back.index_to_key == ["b", "c", "a"] and back.get_vecattr("a", "count") == 3
    assert np.array_equal(back["c"], kv["c"])


def test_set_vecattr_refuses_what_the_column_cannot_hold():
    kv = Vectors(["a", "b"], np.eye(2, dtype=np.float32))
    kv.set_vecattr("a", "count", 3)
    for bad in (2**70, 2.5, "x"):
        with pytest.raises(TypeError, match="count"):
            kv.set_vecattr("b", "count", bad)
    assert kv.get_vecattr("b", "count") == 0 and kv.get_vecattr("a", "count") == 3

"""gensim's tests/test_word2vec.py, the cases that apply to pyembed.Word2Vec, in our own words
(their corpora: gensim.test.utils' common_texts and the Lee corpus; their settings, with
workers=1 and a fixed seed so that each result is one deterministic run).

Ported (gensim name -> here), 23 cases, all pass:
  test_online_learning -> test_online_learning[hs|neg]              (2)
  test_online_learning_from_file -> test_online_learning_from_file   (1)
  test_sg_hs_online, test_sg_neg_online, test_cbow_hs_online,
  test_cbow_neg_online -> test_online_sanity[...]                    (4)
  test_vocab -> test_vocab_of_the_lee_corpus                         (1; the Huffman tree is
                           compared with gensim's own in tests/test_train_modes.py)
  test_training, test_training_cbow, test_training_sg_negative,
  test_training_cbow_negative -> test_training_in_steps_equals_one_go[...]  (4)
  test_sg_hs, test_sg_neg, test_cbow_hs, test_cbow_neg -> test_model_sanity[...]  (4)
  test_sg_neg_fromfile (and the other *_fromfile) -> test_model_sanity_from_file  (1)
  test_r_n_g -> test_same_seed_same_model                            (1)
  test_train_hs_and_neg -> test_hs_and_negative                      (1)
  test_compute_training_loss -> test_training_loss                   (1)
  test_negative_ns_exp -> test_negative_ns_exponent                  (1)
  test_similar_by -> test_similar_by                                 (1)
  test_sentences_should_not_be_a_generator -> test_a_generator_sentence  (1)
Not ported: test_train_with_explicit_param (pyembed needs no total_examples/epochs: a
difference listed in the README); test_parallel (10x the Lee corpus with 4 threads: minutes
here); persistence, old-model loading, build_vocab_from_freq, trim rules, max_final_vocab,
scoring, predict_output_word, locking (vectors_lockf), reset_from, shrink_windows=False (not
built); the KeyedVectors cases are in tests/test_gensim_parity.py.
"""
import numpy as np
import pytest

from pyembed.train import NoVocabularyError, Word2Vec

gensim_utils = pytest.importorskip("gensim.test.utils")
SENTENCES = gensim_utils.common_texts
LEE = gensim_utils.lee_corpus_list
NEW_SENTENCES = [["computer", "artificial", "intelligence"], ["artificial", "trees"],
                 ["human", "intelligence"], ["artificial", "graph"], ["intelligence"],
                 ["artificial", "intelligence", "system"]]
ONE = dict(workers=1, progress=False)


@pytest.mark.parametrize("kw", [dict(hs=1, negative=0), dict(hs=0, negative=5)],
                         ids=["hs", "neg"])
def test_online_learning(kw):
    m = Word2Vec(SENTENCES, vector_size=10, min_count=1, seed=42, **kw, **ONE)
    assert len(m.wv) == 12 and m.wv.get_vecattr("graph", "count") == 3
    old = m.syn0.copy()
    m.build_vocab(NEW_SENTENCES, update=True)
    assert len(m.wv) == 14
    assert m.wv.get_vecattr("graph", "count") == 4
    assert m.wv.get_vecattr("artificial", "count") == 4
    assert m.index_to_key[12:] == ["artificial", "intelligence"]
    np.testing.assert_array_equal(m.syn0[:12], old)  # known rows kept
    m.train(corpus_iterable=NEW_SENTENCES)
    assert not np.array_equal(m.syn0[12:], m.wv.vectors[12:] * 0)


def test_online_learning_from_file(tmp_path):
    f1, f2 = tmp_path / "a.txt", tmp_path / "b.txt"
    f1.write_text("\n".join(map(" ".join, SENTENCES)))
    f2.write_text("\n".join(map(" ".join, NEW_SENTENCES)))
    m = Word2Vec(corpus_file=f1, vector_size=10, min_count=1, seed=42, hs=0, negative=5, **ONE)
    assert len(m.wv) == 12
    m.train(corpus_file=f1)
    m.build_vocab(corpus_file=f2, update=True)
    m.train(corpus_file=f2)
    assert len(m.wv) == 14


def _lee_split():
    terro = [s for s in LEE if "terrorism" in s]
    others = [s for s in LEE if "terrorism" not in s]
    return terro, others


@pytest.mark.parametrize("kw", [
    dict(sg=1, window=5, hs=1, negative=0, min_count=3, epochs=10),
    dict(sg=1, window=4, hs=0, negative=15, min_count=3, epochs=10),
    dict(sg=0, cbow_mean=1, alpha=0.05, window=5, hs=1, negative=0, min_count=3, epochs=20),
    dict(sg=0, cbow_mean=1, alpha=0.05, window=5, hs=0, negative=15, min_count=5, epochs=10,
         sample=0),
], ids=["sg_hs", "sg_neg", "cbow_hs", "cbow_neg"])
def test_online_sanity(kw):
    terro, others = _lee_split()
    m = Word2Vec(seed=42, **kw, **ONE)
    m.build_vocab(others)
    m.train(corpus_iterable=others)
    assert "terrorism" not in m.key_to_index
    m.build_vocab(terro, update=True)
    assert "terrorism" in m.key_to_index
    before = m.syn0.copy()
    m.train(corpus_iterable=terro)
    assert not np.allclose(m.syn0, before)
    assert m.wv.n_similarity(["war"], ["terrorism"]) > 0


def test_vocab_of_the_lee_corpus():
    from gensim.models.word2vec import Word2Vec as GensimWord2Vec

    total = sum(map(len, LEE))
    m = Word2Vec(min_count=1, hs=1, negative=0, **ONE).build_vocab(LEE)
    assert len(m.wv) == 6981 and m.counts.sum() == total
    g = GensimWord2Vec(min_count=1, hs=1, negative=0)
    g.build_vocab(LEE)
    # the same words and counts; words of equal count are in order of first appearance here,
    # the reverse in gensim 4.4 (README: differences), so the tree differs among those
    assert sorted(m.index_to_key) == sorted(g.wv.index_to_key)
    assert all(m.counts[i] == g.wv.get_vecattr(w, "count") for i, w in enumerate(m.index_to_key))
    points, codes, offsets = m._tree
    i = m.key_to_index["the"]
    assert codes[offsets[i]:offsets[i + 1]].tolist() == [1, 1, 0, 0] == \
        g.wv.get_vecattr("the", "code").tolist()
    assert len(Word2Vec(hs=1, negative=0, **ONE).build_vocab(LEE).wv) == 1750
    with pytest.raises(RuntimeError):  # gensim's type; also a ValueError (pyembed's)
        Word2Vec([], **ONE)
    with pytest.raises(NoVocabularyError):
        Word2Vec(LEE, min_count=total + 1, **ONE)


@pytest.mark.parametrize("kw", [dict(sg=1, hs=1, negative=0), dict(sg=0, hs=1, negative=0),
                                dict(sg=1, hs=0, negative=2), dict(sg=0, hs=0, negative=2)],
                         ids=["sg_hs", "cbow_hs", "sg_neg", "cbow_neg"])
def test_training_in_steps_equals_one_go(kw):
    m = Word2Vec(vector_size=2, min_count=1, **kw, **ONE)
    m.build_vocab(SENTENCES)
    assert m.syn0.shape == (12, 2)
    assert (m.syn1 if kw["hs"] else m.syn1neg).shape == (12, 2)
    m.train(corpus_iterable=SENTENCES)
    sims = m.wv.most_similar("graph", topn=10)
    by_vec = m.wv.most_similar(positive=[m.wv.get_vector("graph", norm=True)], topn=11)
    assert sims == [(w, s) for w, s in by_vec if w != "graph"]
    m2 = Word2Vec(SENTENCES, vector_size=2, min_count=1, **kw, **ONE)
    np.testing.assert_array_equal(m.syn0, m2.syn0)
    np.testing.assert_array_equal(m.syn1neg, m2.syn1neg)
    if kw["hs"]:
        np.testing.assert_array_equal(m.syn1, m2.syn1)


SANITY = {
    "sg_hs": dict(sg=1, window=4, hs=1, negative=0, min_count=5, epochs=10),
    "sg_neg": dict(sg=1, window=4, hs=0, negative=15, min_count=5, epochs=10),
    "cbow_hs": dict(sg=0, cbow_mean=1, alpha=0.1, window=2, hs=1, negative=0, min_count=5,
                    epochs=60, batch_words=1000),
    "cbow_neg": dict(sg=0, cbow_mean=1, alpha=0.05, window=5, hs=0, negative=15, min_count=5,
                     epochs=10, sample=0),
}


def _sanity(m):
    """gensim's model_sanity: 'bombings' among the 50 nearest of 'attacks'."""
    ranked = [w for w, _ in m.wv.most_similar("attacks", topn=len(m.wv))]
    assert ranked.index("bombings") < 50, ranked.index("bombings")
    near = [w for w, _ in m.wv.most_similar([m.wv["attacks"]], topn=51)]
    assert "attacks" in near and "bombings" in near


@pytest.mark.parametrize("name", list(SANITY))
def test_model_sanity(name):
    m = Word2Vec(seed=1, **SANITY[name], **ONE).build_vocab(LEE)
    first = m.syn0[0].copy()
    m.train(corpus_iterable=LEE)
    assert not np.array_equal(first, m.syn0[1])
    _sanity(m)


def test_model_sanity_from_file(tmp_path):
    f = tmp_path / "lee.txt"
    f.write_text("\n".join(map(" ".join, LEE)))
    m = Word2Vec(seed=1, **SANITY["sg_neg"], **ONE).build_vocab(LEE)
    m.train(corpus_file=f)
    _sanity(m)
    m2 = Word2Vec(seed=1, **SANITY["sg_neg"], **ONE).build_vocab(LEE)
    m2.train(corpus_iterable=LEE)
    np.testing.assert_array_equal(m.syn0, m2.syn0)  # the same corpus read from a file


def test_same_seed_same_model():
    a = Word2Vec(SENTENCES, min_count=2, seed=42, **ONE)
    b = Word2Vec(SENTENCES, min_count=2, seed=42, **ONE)
    np.testing.assert_array_equal(a.syn0, b.syn0)
    np.testing.assert_array_equal(a.syn1neg, b.syn1neg)


def test_hs_and_negative():
    with pytest.raises(ValueError):
        Word2Vec(SENTENCES, min_count=1, hs=0, negative=0, **ONE)
    m = Word2Vec(SENTENCES, min_count=1, hs=1, negative=5, **ONE)  # both objectives
    assert m.syn1.any() and m.syn1neg.any()


def test_training_loss():
    m = Word2Vec(min_count=1, sg=1, negative=5, hs=1, **ONE).build_vocab(SENTENCES)
    m.train(corpus_iterable=SENTENCES)
    assert m.loss_history[-1] > 0


def test_negative_ns_exponent():
    m = Word2Vec(SENTENCES, ns_exponent=-1, min_count=1, **ONE)
    m.train(corpus_iterable=SENTENCES, epochs=1)
    assert m.ns_exponent == -1 and np.isfinite(m.syn0).all()


def test_similar_by():
    m = Word2Vec(SENTENCES, vector_size=2, min_count=1, hs=1, negative=0, **ONE)
    assert m.wv.similar_by_key("graph", topn=10) == m.wv.most_similar(positive="graph", topn=10)
    assert m.wv.similar_by_vector(m.wv["graph"], topn=10) == \
        m.wv.most_similar([m.wv["graph"]], topn=10)


def test_a_generator_sentence():
    with pytest.raises(TypeError):
        Word2Vec(((s for s in SENTENCES),), min_count=1, **ONE)

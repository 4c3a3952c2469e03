"""The word2vec trainer: the SGNS kernel against tests/reference_train.py, its argument checks,
the alias table, determinism, the file it writes, and the functional test on the demo corpus."""
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyembed
from pyembed import _core
from pyembed.corpus import CATEGORIES, default_corpus, questions_words, stdlib_corpus, word_pairs
from pyembed.train import Word2Vec, read_corpus

from _demo_run import demo_run
from reference_train import alias_probabilities, sgns_problem, sgns_reference

# -- the kernel against the reference -------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32), D=st.sampled_from([1, 7, 8, 16, 19, 33]),
       window=st.integers(1, 4), negative=st.integers(0, 6))
def test_kernel_matches_reference(seed, D, window, negative):
    syn0, syn1, tokens, bounds, keep, alias = sgns_problem(seed, D=D)
    kw = dict(window=window, negative=negative, alpha_begin=0.5, alpha_end=0.1, seed=seed,
              counter_base=123)
    r0, r1, rloss, rpairs, rwords = sgns_reference(syn0, syn1, tokens, bounds, keep, alias, **kw)
    loss, pairs, words = _core.sgns_train(syn0, syn1, tokens, bounds, keep, alias, threads=1, **kw)
    assert (pairs, words) == (rpairs, rwords)
    # float32 in the kernel's order on both sides: the same bits
    np.testing.assert_array_equal(syn0, r0)
    np.testing.assert_array_equal(syn1, r1)
    np.testing.assert_allclose(loss, rloss, rtol=1e-12)


@pytest.mark.parametrize("D", [5, 16, 100])
def test_kernel_simd_paths_give_the_same_bits(D):
    a = sgns_problem(11, D=D)
    b = [x.copy() for x in a]
    kw = dict(window=3, negative=5, alpha_begin=0.3, alpha_end=0.1, seed=2)
    ra = _core.sgns_train(*a, **kw)
    _core._set_simd_level(0)  # baseline: pairs of 4-lane vectors
    try:
        rb = _core.sgns_train(*b, **kw)
    finally:
        _core._set_simd_level(-1)
    assert ra == rb
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_kernel_score_just_below_the_table_edge():
    """f = 8 - ulp: f + 8 rounds to 16 in float32; the table index must stay in range (it once
    read one entry past the sigmoid table, giving g = -7 alpha and a garbage loss)."""
    edge = np.nextafter(np.float32(8), np.float32(0))
    syn0 = np.ones((2, 1), np.float32)
    syn1 = np.full((2, 1), edge, np.float32)
    args = (np.array([0, 1], np.int32), np.array([0, 2], np.int64), np.ones(2),
            _core.alias_table(np.ones(2)))
    kw = dict(window=1, negative=0, alpha_begin=0.5, alpha_end=0.5, seed=1)
    r0, r1, rloss, _, _ = sgns_reference(syn0, syn1, *args, **kw)
    loss, pairs, _ = _core.sgns_train(syn0, syn1, *args, **kw)
    assert pairs == 2 and 0 < loss < 1e-3
    np.testing.assert_array_equal(syn0, r0)
    np.testing.assert_array_equal(syn1, r1)
    assert (syn1 > edge - 1e-3).all()  # a tiny step up, not a jump down


def test_kernel_nan_rows_do_not_index_out_of_the_table():
    syn0, syn1, tokens, bounds, keep, alias = sgns_problem(4)
    syn1[:] = np.nan
    loss, pairs, _ = _core.sgns_train(syn0, syn1, tokens, bounds, keep, alias, seed=1)
    assert pairs > 0 and np.isnan(loss)


def test_kernel_trains_only_the_given_sentences():
    syn0, syn1, tokens, bounds, keep, alias = sgns_problem(3)
    tokens[: bounds[1]] = 10**6  # out of range, but outside the sentences we pass: never read
    keep[:] = 1.0
    s0, s1 = syn0.copy(), syn1.copy()
    _, pairs, words = _core.sgns_train(syn0, syn1, tokens, bounds[1:], keep, alias, seed=1)
    assert words == bounds[-1] - bounds[1] and pairs > 0
    assert not np.array_equal(s0, syn0) and not np.array_equal(s1, syn1)


def test_kernel_deterministic_for_one_thread_and_any_split():
    """The draws are a function of (seed, position): one call or one call per sentence give the
    same pairs; two runs give the same bits."""
    a = sgns_problem(5)
    b = [x.copy() for x in a]
    kw = dict(window=3, negative=4, alpha_begin=0.1, alpha_end=0.1, seed=9)
    r1 = _core.sgns_train(*a, threads=1, **kw)
    r2 = _core.sgns_train(*b, threads=1, **kw)
    assert r1 == r2
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    c = sgns_problem(5)
    pairs = 0
    for s in range(len(c[3]) - 1):
        pairs += _core.sgns_train(c[0], c[1], c[2], c[3][s:s + 2], c[4], c[5], **kw)[1]
    assert pairs == r1[1]
    np.testing.assert_allclose(c[0], a[0], rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_kernel_threads_after_fork():
    """libgomp's pool does not survive fork: a child asking for 2 threads must still finish."""
    _core.sgns_train(*sgns_problem(6), threads=2)  # the parent's pool exists
    pid = os.fork()
    if pid == 0:  # child: exit status 0 only if training works
        try:
            _, pairs, _ = _core.sgns_train(*sgns_problem(7), threads=2)
            os._exit(0 if pairs > 0 else 1)
        except BaseException:
            os._exit(2)
    import time

    deadline = time.monotonic() + 60
    while True:  # a hang would be the bug: give up after a minute rather than block the suite
        done, status = os.waitpid(pid, os.WNOHANG)
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if not done:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("sgns_train hung in a forked child")
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_alias_table_distribution():
    w = np.array([0.0, 1.0, 2.0, 3.0, 10.0, 0.5, 0.0, 7.0])
    p = alias_probabilities(_core.alias_table(w))
    np.testing.assert_allclose(p, w / w.sum(), atol=1e-9)
    p = alias_probabilities(_core.alias_table(np.ones(5)))
    np.testing.assert_allclose(p, 0.2, atol=1e-9)


@pytest.mark.parametrize("w, err", [([], ValueError), ([1.0, -1.0], ValueError),
                                    ([0.0, 0.0], ValueError), ([1.0, np.nan], ValueError),
                                    ([[1.0, 2.0]], ValueError), (["a"], TypeError)])
def test_alias_table_errors(w, err):
    with pytest.raises(err):
        _core.alias_table(np.array(w) if w != ["a"] else w)


# -- the kernel's argument checks: a clear error, tables unchanged ---------------------------------


def _bad_call(**change):
    syn0, syn1, tokens, bounds, keep, alias = sgns_problem(1)
    args = dict(syn0=syn0, syn1=syn1, tokens=tokens, bounds=bounds, keep_prob=keep, alias=alias)
    kw = dict(window=2, negative=2, alpha_begin=0.1, alpha_end=0.1, seed=1)
    for k, v in change.items():
        (args if k in args else kw)[k] = v(args[k]) if callable(v) else v
    s0, s1 = args["syn0"].copy(), args["syn1"].copy()
    return args, kw, s0, s1


@pytest.mark.parametrize("change, err, match", [
    (dict(tokens=lambda t: t.astype(np.int64)), ValueError, "tokens has dtype int64"),
    (dict(tokens=lambda t: np.where(np.arange(t.size) == 5, 7, t).astype(np.int32)), IndexError,
     r"token 7 at tokens\[5\]"),
    (dict(tokens=lambda t: np.where(np.arange(t.size) == 2, -1, t).astype(np.int32)), IndexError,
     "token -1"),
    (dict(bounds=lambda b: b[::-1].copy()), ValueError, "non-decreasing"),
    (dict(bounds=lambda b: b + 100), ValueError, "bounds"),
    (dict(bounds=lambda b: b[:0]), ValueError, "at least one"),
    (dict(syn1=lambda s: s[:, :5].copy()), ValueError, "syn1 has shape"),
    (dict(syn0=lambda s: s.astype(np.float64)), ValueError, "syn0 has dtype"),
    (dict(syn0=lambda s: np.asfortranarray(s)), ValueError, "C-contiguous"),
    (dict(keep_prob=lambda k: k[:3].copy()), ValueError, "keep_prob has shape"),
    (dict(alias=lambda a: np.full_like(a, 99)), ValueError, "alias"),
    (dict(window=0), ValueError, "window"),
    (dict(negative=65), ValueError, "negative"),
    (dict(alpha_begin=float("nan")), ValueError, "alpha"),
    (dict(threads=0), ValueError, "threads"),
])
def test_kernel_errors_change_nothing(change, err, match):
    args, kw, s0, s1 = _bad_call(**change)
    with pytest.raises(err, match=match):
        _core.sgns_train(*args.values(), **kw)
    if args["syn0"].shape == s0.shape and args["syn0"].dtype == s0.dtype:
        assert np.array_equal(args["syn0"], s0)
    if args["syn1"].shape == s1.shape:
        assert np.array_equal(args["syn1"], s1)


def test_kernel_rejects_shared_and_readonly_tables():
    syn0, syn1, tokens, bounds, keep, alias = sgns_problem(2)
    with pytest.raises(ValueError, match="share memory"):
        _core.sgns_train(syn0, syn0, tokens, bounds, keep, alias)
    syn1.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _core.sgns_train(syn0, syn1, tokens, bounds, keep, alias)


# -- the Word2Vec class -----------------------------------------------------------------------------

TINY = [["the", "cat", "sat", "on", "the", "mat"], ["the", "dog", "sat", "on", "the", "log"],
        ["a", "cat", "and", "a", "dog"]] * 30


def _tiny(**kw):
    args = dict(vector_size=12, min_count=1, epochs=3, workers=1, seed=3, progress=False)
    args.update(kw)
    return Word2Vec(TINY, **args)


def test_deterministic_for_a_seed_with_one_thread():
    a, b = _tiny(), _tiny()
    assert a.index_to_key == b.index_to_key
    assert np.array_equal(a.syn0, b.syn0) and np.array_equal(a.syn1neg, b.syn1neg)
    assert a.loss_history == b.loss_history
    c = _tiny(seed=4)
    assert not np.array_equal(a.syn0, c.syn0)


def test_vocabulary_order_and_min_count():
    m = _tiny(min_count=31)
    # 'the' 120, 'cat'/'dog'/'sat'/'on'/'a' 60, the rest 30: most frequent first, ties in order
    assert m.index_to_key == ["the", "cat", "sat", "on", "dog", "a"]
    assert m.counts.tolist() == [120, 60, 60, 60, 60, 60]
    assert m.wv.vectors.shape == (6, 12)
    assert m._tokens.size == 120 + 5 * 60


def test_long_sentences_are_cut(monkeypatch):
    import pyembed.train as tr

    monkeypatch.setattr(tr, "MAX_SENTENCE", 4)
    m = Word2Vec([["a", "b"] * 5, [], ["c", "x", "c"]], vector_size=4, min_count=2, epochs=1,
                 progress=False)
    assert m.index_to_key == ["a", "b", "c"]
    assert m._bounds.tolist() == [0, 4, 8, 10, 12]


def test_loss_falls_and_threads_train():
    m = _tiny(epochs=6, vector_size=16)
    assert m.loss_history[-1] < m.loss_history[0]
    m2 = _tiny(workers=2, epochs=2)  # Hogwild: not bitwise, but it trains
    assert np.isfinite(m2.syn0).all() and m2.loss_history[-1] > 0


@pytest.mark.parametrize("kw, err", [(dict(vector_size=0), ValueError), (dict(negative=0), ValueError),
                                     (dict(negative=65), ValueError), (dict(window=1.5), TypeError),
                                     (dict(alpha=-1.0), ValueError), (dict(sample=float("nan")), ValueError),
                                     (dict(workers=0), ValueError), (dict(seed=-1), ValueError),
                                     (dict(workers=1, threads=2), ValueError),
                                     (dict(progress="yes"), ValueError), (dict(min_count=10**6), ValueError)])
def test_argument_errors(kw, err):
    with pytest.raises(err):
        _tiny(**kw)


def test_gensim_habits(tmp_path):
    # CBOW and hierarchical softmax exist now (tests/test_train_modes.py); other values refused
    for kw in (dict(sg=2), dict(hs=-1), dict(cbow_mean=2), dict(hs=0, negative=0)):
        with pytest.raises(ValueError, match=next(iter(kw))):
            Word2Vec(TINY, **kw)
    p = tmp_path / "c.txt"
    p.write_text("\n".join(" ".join(s) for s in TINY), encoding="utf-8")
    a = Word2Vec(corpus_file=str(p), vector_size=8, min_count=1, epochs=1, workers=1, sg=1,
                 progress=False)
    b = Word2Vec(TINY, vector_size=8, min_count=1, epochs=1, workers=1, progress=False)
    assert a.index_to_key == b.index_to_key and np.array_equal(a.syn0, b.syn0)
    with pytest.raises(ValueError, match="not both"):
        Word2Vec(TINY, corpus_file=str(p))


def test_sentences_must_not_be_a_string():
    with pytest.raises(TypeError, match="not a string"):
        Word2Vec("the cat sat", min_count=1)


def test_train_before_build_vocab():
    with pytest.raises(RuntimeError, match="build_vocab"):
        Word2Vec().train()


@pytest.mark.parametrize("binary", [False, True])
def test_save_is_read_by_gensim_and_pyembed(tmp_path, binary):
    m = _tiny()
    path = tmp_path / ("v.bin" if binary else "v.txt")
    m.save(str(path), binary=binary)
    back = pyembed.load_vectors(str(path))
    assert list(back.index_to_key) == m.index_to_key
    np.testing.assert_allclose(back.vectors, m.syn0, rtol=1e-6, atol=1e-7)
    gensim = pytest.importorskip("gensim")
    kv = gensim.models.KeyedVectors.load_word2vec_format(str(path), binary=binary)
    assert kv.index_to_key == m.index_to_key
    np.testing.assert_allclose(kv.vectors, m.syn0, rtol=1e-6, atol=1e-7)


def test_wv_carries_the_counts_and_saves_a_vocabulary_file(tmp_path):
    m = _tiny()
    np.testing.assert_array_equal(m.wv.expandos["count"], m.counts)
    assert m.wv.get_vecattr(m.index_to_key[0], "count") == m.counts[0]
    m.save(tmp_path / "v.txt", fvocab=tmp_path / "vocab.txt")
    lines = (tmp_path / "vocab.txt").read_text().splitlines()
    assert lines == [f"{w} {c}" for w, c in zip(m.index_to_key, m.counts.tolist())]
    back = pyembed.load_vectors(tmp_path / "v.txt", fvocab=tmp_path / "vocab.txt")
    assert back.index_to_key == m.index_to_key  # already most frequent first: nothing moves
    np.testing.assert_array_equal(back.expandos["count"], m.counts)


def test_read_corpus(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("The cat sat\n\n  a dog  \n", encoding="utf-8")
    assert read_corpus(str(p)) == [["The", "cat", "sat"], ["a", "dog"]]
    assert read_corpus(str(p), lowercase=True)[0] == ["the", "cat", "sat"]


# -- the corpora -------------------------------------------------------------------------------------


def test_default_corpus_is_seeded():
    a, b, c = default_corpus(500, seed=1), default_corpus(500, seed=1), default_corpus(500, seed=2)
    assert a == b and a != c and len(a) == 500
    words = {w for s in a for w in s}
    for cat in ("animals", "vehicles", "fruit", "people", "countries", "capitals"):
        assert words & set(CATEGORIES[cat])


def test_evaluation_files_name_grammar_words():
    vocab = set(w for ws in CATEGORIES.values() for w in ws) | {
        "french", "german", "italian", "spanish", "japanese", "chinese", "russian", "egyptian",
        "greek", "portuguese", "polish", "swedish", "norwegian", "austrian", "canadian", "peruvian"}
    lines = questions_words().splitlines()
    assert lines[0].startswith(": ")
    quads = [ln.split() for ln in lines if not ln.startswith(":")]
    assert len(quads) > 500 and all(len(q) == 4 and set(q) <= vocab for q in quads)
    pairs = word_pairs(100, seed=0)
    assert len(pairs) == 100 and {s for _, _, s in pairs} == {1.0, 5.0, 7.0, 10.0}


def test_stdlib_corpus_reads_docstrings():
    sents = stdlib_corpus(max_files=15)
    assert len(sents) > 20
    assert all(s and all(w.isascii() or w.isalpha() for w in s) for s in sents)
    assert any("the" in s for s in sents)


# -- the functional test: what the demo shows ------------------------------------------------------


def test_demo_training_learns_the_known_relations():
    model, report, _, _ = demo_run()
    animals = set(CATEGORIES["animals"])
    vehicles = set(CATEGORIES["vehicles"])
    cat5 = [w for w, _ in report["neighbours"]["cat"]]
    car5 = [w for w, _ in report["neighbours"]["car"]]
    assert len(animals & set(cat5)) >= 2, cat5
    assert len(vehicles & set(car5)) >= 2, car5
    top3 = [w for w, _ in report["analogy"]]
    assert "queen" in top3, top3
    assert model.loss_history[-1] < model.loss_history[0]


def test_progress_plain_lines_and_tqdm_bar(capsys, monkeypatch):
    import pyembed.progress as pr

    _tiny(progress=True, epochs=2, batch_words=10)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 10 and out[-1].split()[:3] == ["100%", "epoch", "2/2"]
    assert all("loss" in ln and "words/s" in ln for ln in out)
    pct = [float(ln.split("%")[0]) for ln in out]
    assert pct == sorted(pct) and pct[0] >= 10
    monkeypatch.setattr(pr, "_isatty", lambda: True)
    _tiny(progress="auto", epochs=2)
    cap = capsys.readouterr()
    assert "training" in cap.err and "loss=" in cap.err and "word/s" in cap.err
    _tiny(progress=False)
    assert capsys.readouterr() == ("", "")

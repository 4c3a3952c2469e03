"""gensim's own KeyedVectors tests (gensim/test/test_keyedvectors.py and the word2vec-format cases),
ported in our words: the same inputs, with the expected values computed by gensim in this process
on the same vectors, so parity with gensim cannot regress."""
import os

import numpy as np
import pytest

import pyembed

gensim = pytest.importorskip("gensim")
from gensim.models import KeyedVectors  # noqa: E402
from gensim.test.utils import datapath  # noqa: E402

EUCLID = datapath("euclidean_vectors.bin")
needs_data = pytest.mark.skipif(not os.path.exists(EUCLID), reason="gensim's test data missing")


@pytest.fixture
def pair():
    """(gensim's KeyedVectors, pyembed's Vectors) of gensim's euclidean_vectors.bin."""
    return (KeyedVectors.load_word2vec_format(EUCLID, binary=True),
            pyembed.load_vectors(EUCLID, binary=True))


def _same_table(g, p):
    assert p.index_to_key == g.index_to_key
    assert p.vectors.dtype == g.vectors.dtype
    np.testing.assert_array_equal(p.vectors, g.vectors)


def _rand_rows(n, d, seed):
    return [row for row in np.random.default_rng(seed).standard_normal((n, d))]


@needs_data
def test_vectors_for_all(pair):
    g, p = pair
    words = ["conflict", "administration", "terrorism", "war", "conflict", "not a word"]
    for copy, infer in ((False, True), (True, True), (False, False)):
        gs = g.vectors_for_all(words, allow_inference=infer, copy_vecattrs=copy)
        ps = p.vectors_for_all(words, allow_inference=infer, copy_vecattrs=copy)
        _same_table(gs, ps)
        assert [ps.get_vecattr(w, "count") for w in ps.index_to_key] == \
            [gs.get_vecattr(w, "count") for w in gs.index_to_key]
    # an int is a row number where allow_inference (gensim leaves a None key for it instead)
    assert p.vectors_for_all([3]).index_to_key == [3]
    assert len(p.vectors_for_all([3], allow_inference=False)) == 0


@needs_data
def test_relative_cosine_similarity(pair):
    g, p = pair
    for a, b, n in (("good", "nice", 10), ("good", "worst", 10), ("war", "conflict", 3)):
        assert p.relative_cosine_similarity(a, b, n) == pytest.approx(
            g.relative_cosine_similarity(a, b, n), rel=1e-6)
    assert p.relative_cosine_similarity("good", "worst", 10) < 0.10


@needs_data
def test_most_similar_to_given_closer_than_rank(pair):
    g, p = pair
    assert p.most_similar_to_given("war", ["terrorism", "call", "waging"]) == \
        g.most_similar_to_given("war", ["terrorism", "call", "waging"]) == "terrorism"
    for a, b in (("war", "war"), ("war", "terrorism"), ("good", "nice"), ("war", "israel")):
        assert p.closer_than(a, b) == g.closer_than(a, b)
        assert p.rank(a, b) == g.rank(a, b)
    assert p.rank("war", "war") == 1 and p.rank("war", "terrorism") == 3


@needs_data
def test_add_vectors_single_and_many(pair):
    g, p = pair
    ents = [f"___entity{i}___" for i in range(5)]
    rows = _rand_rows(5, g.vector_size, 0)
    for e, r in zip(ents, rows):
        g.add_vectors(e, r)
        p.add_vectors(e, r)
    _same_table(g, p)
    more = [f"___more{i}___" for i in range(3)] + ["war"]
    rows = _rand_rows(4, g.vector_size, 1)
    g.add_vectors(more, rows, replace=False)
    p.add_vectors(more, rows, replace=False)
    _same_table(g, p)  # "war" kept its old vector
    g.add_vectors(["war"], [rows[0]], replace=True)
    p.add_vectors(["war"], [rows[0]], replace=True)
    _same_table(g, p)
    # the norms follow the new rows (gensim keeps the stale ones until fill_norms(force=True))
    g.fill_norms(force=True)
    assert p.most_similar("war", topn=5) == g.most_similar("war", topn=5)


def test_add_to_empty_and_dtype():
    g, p = KeyedVectors(2), pyembed.Vectors([], np.zeros((0, 2), np.float32))
    for kv in (g, p):
        kv.add_vectors(["a"], np.array([[1.0, 1.0]], np.float64))
        kv[["b", "c"]] = [np.array([0.5, 2.0]), np.array([3.0, -1.0])]
    _same_table(g, p)
    assert p.vectors.dtype == np.float32


def test_add_vector_returns_the_row():
    g, p = KeyedVectors(3), pyembed.Vectors([], np.zeros((0, 3), np.float32))
    with pytest.warns(UserWarning):
        gi = [g.add_vector(k, np.arange(3.0) + i) for i, k in enumerate("xyz")]
    assert [p.add_vector(k, np.arange(3.0) + i) for i, k in enumerate("xyz")] == gi
    _same_table(g, p)


@needs_data
def test_set_item(pair):
    g, p = pair
    d = g.vector_size
    (r1,), (r2,) = _rand_rows(1, d, 2), _rand_rows(1, d, 3)
    ents = ["war", "___new1___", "___new2___", "terrorism", "conflict"]
    rows = _rand_rows(len(ents), d, 4)
    for kv in (g, p):
        kv["___some_new_entity___"] = r1
        kv["war"] = r2
        kv[ents] = rows
    _same_table(g, p)
    assert len(p) == len(g)


@needs_data
def test_unit_normalize_all_and_fill_norms(pair):
    g, p = pair
    g.unit_normalize_all()
    p.unit_normalize_all()
    _same_table(g, p)
    np.testing.assert_array_equal(p.norms, g.norms)
    p.vectors[0] *= 2
    g.vectors[0] *= 2
    p.fill_norms()
    assert p.norms[0] == 1.0  # not recomputed without force, as gensim
    p.fill_norms(force=True)
    g.fill_norms(force=True)
    np.testing.assert_array_equal(p.norms, g.norms)


def _write_analogies(tmp_path, words):
    q = tmp_path / "q.txt"
    a, b, c, d = words[:4]
    q.write_text(f": sec\n{a} {b} {c} {d}\n{b} {a} {d} {c}\n{a} {c} {b} {d}\n")
    return q


@needs_data
def test_evaluate_word_analogies_similarity_function(pair, tmp_path):
    g, p = pair
    q = _write_analogies(tmp_path, ["war", "conflict", "good", "nice"])
    for fn in ("most_similar", "most_similar_cosmul"):
        gs, gsec = g.evaluate_word_analogies(q, similarity_function=fn)
        ps, psec = p.evaluate_word_analogies(q, similarity_function=fn)
        assert ps == gs and psec == gsec


def _save_load_both(tmp_path, save_kw, load_kw, seed=5):
    g = KeyedVectors(vector_size=10)
    keys = [str(i) for i in range(20)]
    g.add_vectors(keys, _rand_rows(20, 10, seed))
    p = pyembed.Vectors(keys, g.vectors)
    gp, pp = tmp_path / "g.txt", tmp_path / "p.txt"
    g.save_word2vec_format(str(gp), **save_kw)
    p.save_word2vec_format(pp, **save_kw)
    return gp, pp, KeyedVectors.load_word2vec_format(str(gp), **load_kw), \
        pyembed.Vectors.load_word2vec_format(pp, **load_kw)


@pytest.mark.parametrize("binary", [False, True])
def test_save_reload(tmp_path, binary):
    _, _, g, p = _save_load_both(tmp_path, {"binary": binary}, {"binary": binary})
    _same_table(g, p)


# gensim's no_header reading leaves its second file handle open (a ResourceWarning)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_no_header(tmp_path):
    gp, pp, g, p = _save_load_both(tmp_path, {"write_header": False}, {"no_header": True})
    assert not pp.read_text().startswith("20 10")
    _same_table(g, p)
    # each reads the other's file
    _same_table(KeyedVectors.load_word2vec_format(str(pp), no_header=True),
                pyembed.load_vectors(gp, format="word2vec", no_header=True))


def test_no_header_binary_is_not_implemented(tmp_path):
    p = tmp_path / "v.bin"
    p.write_bytes(b"a " + np.ones(2, np.float32).tobytes())
    with pytest.raises(NotImplementedError):
        KeyedVectors.load_word2vec_format(str(p), binary=True, no_header=True)
    with pytest.raises(NotImplementedError):
        pyembed.load_vectors(p, binary=True, no_header=True)


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("datatype", [np.float16, np.float32, np.float64])
def test_datatype(tmp_path, binary, datatype):
    p = tmp_path / "v"
    rows = np.random.default_rng(6).standard_normal((50, 7)) * 10  # float16 norms stay finite
    with open(p, "wb") as f:  # 17 significant digits: float16/32/64 each round them differently
        f.write(b"50 7\n")
        for i, r in enumerate(rows):
            if binary:
                f.write(f"w{i} ".encode() + r.astype(np.float32).tobytes())
            else:
                f.write((f"w{i} " + " ".join(repr(float(x)) for x in r) + "\n").encode())
    g = KeyedVectors.load_word2vec_format(str(p), binary=binary, datatype=datatype)
    kv = pyembed.load_vectors(p, binary=binary, datatype=datatype)
    _same_table(g, kv)
    assert kv.most_similar("w0", topn=3) == g.most_similar("w0", topn=3)


def test_total_vec_prefix_append(tmp_path):
    g = KeyedVectors(vector_size=4)
    g.add_vectors(["a", "b"], _rand_rows(2, 4, 7))
    g.set_vecattr("a", "count", 5)
    g.set_vecattr("b", "count", 9)
    p = pyembed.Vectors(["a", "b"], g.vectors)
    p.set_vecattr("a", "count", 5)
    p.set_vecattr("b", "count", 9)
    gp, pp = tmp_path / "g.txt", tmp_path / "p.txt"
    gv, pv = tmp_path / "g.voc", tmp_path / "p.voc"
    for kv, path, voc in ((g, gp, gv), (p, pp, pv)):
        kv.save_word2vec_format(str(path), fvocab=str(voc), total_vec=4, prefix="x_")
        kv.save_word2vec_format(str(path), fvocab=str(voc), write_header=False, prefix="y_",
                                append=True)
    assert pv.read_text() == gv.read_text()
    _same_table(KeyedVectors.load_word2vec_format(str(gp), fvocab=str(gv)),
                pyembed.load_vectors(pp, fvocab=pv))
    assert pp.read_text().splitlines()[0] == "4 4"


def test_truncated_files_raise_eoferror(tmp_path):
    v = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = tmp_path / "t.bin"
    b.write_bytes(b"2 3\nab " + v[0].tobytes() + b"cd " + v[1].tobytes()[:-3])
    t = tmp_path / "t.txt"
    t.write_text("3 3\nab 0 1 2\ncd 3 4 5\n")
    for path, binary in ((b, True), (t, False)):
        with pytest.raises(EOFError):
            KeyedVectors.load_word2vec_format(str(path), binary=binary)
        with pytest.raises(EOFError):
            pyembed.load_vectors(path, binary=binary)
        with pytest.raises(ValueError):  # pyembed's own promise: every malformed file
            pyembed.load_vectors(path, binary=binary)
        with pytest.raises(pyembed.TruncatedFileError):
            pyembed.load_vectors(path, binary=binary)


def test_strict_decode_error_is_unicodedecodeerror():
    model, vocab = datapath("w2v_keyedvectors_load_test.modeldata"), \
        datapath("w2v_keyedvectors_load_test.vocab")
    if not os.path.exists(model):
        pytest.skip("gensim's test data missing")
    with pytest.raises(UnicodeDecodeError):
        KeyedVectors.load_word2vec_format(model, fvocab=vocab, binary=False)
    with pytest.raises(UnicodeDecodeError, match="line 1: the word is not valid"):
        pyembed.load_vectors(model, fvocab=vocab, binary=False)
    for errors in ("replace", "ignore"):
        g = KeyedVectors.load_word2vec_format(model, fvocab=vocab, binary=False,
                                              unicode_errors=errors)
        p = pyembed.load_vectors(model, fvocab=vocab, binary=False, unicode_errors=errors)
        _same_table(g, p)
        assert [p.get_vecattr(k, "count") for k in p.index_to_key] == \
            [g.get_vecattr(k, "count") for k in g.index_to_key]


@needs_data
@pytest.mark.parametrize("mmap", [None, "r"])
def test_native_save_load_round_trip(pair, tmp_path, mmap):
    g, p = pair
    p.set_vecattr("war", "note", "a str")  # an object attribute, beside the int64 counts
    p.fill_norms()
    path = tmp_path / "kv.native"
    p.save(path, format="native")
    q = pyembed.Vectors.load(path, mmap=mmap)
    assert q.index_to_key == p.index_to_key and q.key_to_index == p.key_to_index
    np.testing.assert_array_equal(q.vectors, p.vectors)
    assert q.vectors.dtype == p.vectors.dtype
    np.testing.assert_array_equal(q.norms, p.norms)
    assert sorted(q.expandos) == sorted(p.expandos)
    for attr in p.expandos:
        assert q.expandos[attr].tolist() == p.expandos[attr].tolist()
        assert q.expandos[attr].dtype == p.expandos[attr].dtype
    assert isinstance(q.vectors, np.memmap) == (mmap == "r")
    if mmap == "r":
        assert not q.vectors.flags.writeable
    assert q.most_similar("war", topn=5) == g.most_similar("war", topn=5)


def test_native_refuses_pickles_and_bad_keys(tmp_path):
    p = pyembed.Vectors(["a", 1], np.eye(2, dtype=np.float32))
    path = tmp_path / "kv"
    p.save(path, format="native")
    q = pyembed.load_vectors(path)  # "auto" knows the format
    assert q.index_to_key == ["a", 1]
    np.save(str(path) + ".vectors.npy", np.array([[object()]] * 2, object), allow_pickle=True)
    with pytest.raises(ValueError, match="not a plain .npy array"):
        pyembed.load_vectors(path)
    with pytest.raises(TypeError, match="str and int keys"):
        pyembed.Vectors([("a", 1)], np.eye(1)).save(tmp_path / "t", format="native")
    with pytest.raises(ValueError, match="only a format='native' save"):
        pyembed.load_vectors(EUCLID if os.path.exists(EUCLID) else path, binary=True, mmap="r")


@needs_data
@pytest.mark.filterwarnings("ignore:Call to deprecated `init_sims`:DeprecationWarning")  # gensim's own
def test_queries(pair):
    """gensim's most_similar / similar_by_* / distance / similarity / get_mean_vector cases."""
    g, p = pair
    for call in (lambda kv: kv.most_similar("war", topn=5),
                 lambda kv: kv.most_similar("war", topn=10, restrict_vocab=5),
                 lambda kv: kv.most_similar([kv["war"]], topn=5),
                 lambda kv: kv.most_similar(positive=kv.vectors[0:5]),
                 lambda kv: kv.most_similar("war", "peace", topn=5),
                 lambda kv: kv.most_similar(positive=["war"], negative=["peace"], topn=5),
                 lambda kv: kv.most_similar_cosmul("war", "peace", topn=5),
                 lambda kv: kv.most_similar_cosmul(positive=["war"], negative="peace", topn=5),
                 lambda kv: kv.similar_by_word("war", topn=5),
                 lambda kv: kv.similar_by_vector(kv["war"], topn=5),
                 lambda kv: [len(kv.most_similar("war", topn=t)) for t in (0, np.uint8(0), 10)]):
        assert call(p) == call(g)
    np.testing.assert_array_equal(p.most_similar("war", topn=None), g.most_similar("war", topn=None))
    for a, b in (("war", "conflict"), ("war", "war")):
        assert p.distance(a, b) == g.distance(a, b)
        assert p.similarity(a, b) == g.similarity(a, b)
    keys = ["conflict", "administration", "terrorism", "call", "an out-of-vocabulary word"]
    for kw in ({}, {"weights": [1, 2, 3, 1, 2]}, {"pre_normalize": False}):
        np.testing.assert_array_equal(p.get_mean_vector(keys, **kw), g.get_mean_vector(keys, **kw))
    for kv in (g, p):
        with pytest.raises(KeyError):
            kv.most_similar("not_in_vocab")


def _binary_file(path, entries):
    """A word2vec binary file as gensim's test helper writes it (no newline after a vector)."""
    with open(path, "wb") as f:
        f.write(f"{len(entries)} 3\n".encode())
        for word, vec in entries.items():
            f.write(word.encode() + b" " + np.array(vec, np.float32).tobytes())


@pytest.mark.parametrize("entries", [
    {"abc": [1, 2, 3], "cde": [4, 5, 6], "def": [7, 8, 9]},
    {"abc": [1, 2, 3], "cdefg": [4, 5, 6], "d": [7, 8, 9]},
    {"\nabc": [1, 2, 3], "cdefdg": [4, 5, 6], "\n\ndef": [7, 8, 9]},  # leading newlines stripped
])
@pytest.mark.parametrize("limit", [None, 1, 2])
def test_load_word2vec_binary_limit_and_space_stripping(tmp_path, entries, limit):
    path = tmp_path / "w.bin"
    _binary_file(path, entries)
    g = KeyedVectors.load_word2vec_format(str(path), binary=True, limit=limit)
    p = pyembed.load_vectors(path, binary=True, limit=limit)
    _same_table(g, p)
    assert p.index_to_key == [w.lstrip() for w in entries][:limit]


def test_native_refuses_attribute_names_outside_its_folder(tmp_path):
    q = pyembed.Vectors(["a", "b"], np.eye(2, dtype=np.float32))
    q.set_vecattr("a", "count", 1)
    path = tmp_path / "kv"
    q.save(path, format="native")
    path.write_text(path.read_text().replace('"count"', '"../count"'))
    with pytest.raises(ValueError, match="cannot name a file"):
        pyembed.load_vectors(path)
    q.expandos["../x"] = np.zeros(2)
    with pytest.raises(ValueError, match="cannot name a file"):
        q.save(tmp_path / "kv2", format="native")

"""fastText .bin models (pyembed/fasttext.py) against gensim's load_facebook_vectors on the model
files gensim's own tests ship, and the reader's answers to truncated and corrupt files.

Every comparison is exact (np.array_equal): the reader sums the n-gram rows in float32 in
fastText's order and divides as gensim does, so there is no rounding to allow for."""
import logging
import os
import pathlib
import struct

import numpy as np
import pytest

import pyembed
from pyembed import fasttext

gensim_ft = pytest.importorskip("gensim.models.fasttext", reason="gensim is not installed")
gensim_utils = pytest.importorskip("gensim.test.utils", reason="gensim's test utilities")

# (file, encoding): the old format (no magic: lee_fasttext.bin, non_ascii, cp852), the new one
# (version 11 and 12), a model trained from pretrained vectors, non-ASCII and cp852 words
FILES = [("lee_fasttext.bin", "utf-8"), ("lee_fasttext_new.bin", "utf-8"),
         ("toy-model.bin", "utf-8"), ("toy-model-pretrained.bin", "utf-8"),
         ("non_ascii_fasttext.bin", "utf-8"), ("cp852_fasttext.bin", "cp852"),
         ("cp852_fasttext.bin", "utf-8"), ("crime-and-punishment.bin", "utf-8")]

OOV = ["hello", "x", "", " ", "a", "ab", "<>", "<", ">", "--", "Zürich", "naïve", "日本語",
       "😀emoji", "\u00e9\u0301", "Ā" * 40, "supercalifragilisticexpialidocious" * 3,
       "\x80bytes", "tab\tword", "lowercase", "LANDLORD", "landlord", "steamtrain", "мама",
       "останавливаться!", "ÿ", "\x7f\x01"]


def _path(name):
    p = gensim_utils.datapath(name)
    if not os.path.exists(p):
        pytest.skip(f"gensim's test file {name} is not installed")
    return p


def _gensim(name, encoding):
    logging.disable(logging.WARNING)  # gensim logs each word it cannot decode and each OOV
    try:
        return gensim_ft.load_facebook_vectors(_path(name), encoding=encoding)
    finally:
        logging.disable(logging.NOTSET)


@pytest.fixture(scope="module", params=FILES, ids=lambda f: f"{f[0]}-{f[1]}")
def pair(request):
    name, enc = request.param
    return _gensim(name, enc), pyembed.load_vectors(_path(name), encoding=enc), name


def test_vocabulary_and_parameters_match_gensim(pair):
    g, p, _ = pair
    assert isinstance(p, pyembed.FastTextVectors) and isinstance(p, pyembed.Vectors)
    assert p.index_to_key == g.index_to_key
    assert (p.min_n, p.max_n, p.bucket) == (g.min_n, g.max_n, g.bucket)
    np.testing.assert_array_equal(p.vectors_ngrams, g.vectors_ngrams)
    counts = [g.get_vecattr(w, "count") for w in g.index_to_key]
    assert [p.get_vecattr(w, "count") for w in p.index_to_key] == counts


def test_in_vocabulary_vectors_equal_gensim(pair):
    g, p, _ = pair
    assert p.vectors.dtype == np.float32
    np.testing.assert_array_equal(p.vectors, g.vectors)
    for w in g.index_to_key[:20]:
        np.testing.assert_array_equal(p.get_vector(w, norm=True), g.get_vector(w, norm=True))


def test_out_of_vocabulary_vectors_equal_gensim(pair):
    g, p, _ = pair
    words = OOV + [w + "s" for w in g.index_to_key[:100]] + [w[:-1] for w in g.index_to_key[:50]]
    words = [w for w in words if w not in g.key_to_index]
    for w in words:
        assert w in p  # as gensim: any word has a vector when there are buckets
        np.testing.assert_array_equal(p[w], g[w], err_msg=repr(w))
        np.testing.assert_array_equal(p.get_vector(w, norm=True), g.get_vector(w, norm=True),
                                      err_msg=repr(w))
    np.testing.assert_array_equal(p[words[:5] + g.index_to_key[:3]],
                                  np.stack([g[w] for w in words[:5] + g.index_to_key[:3]]))


def test_most_similar_of_an_oov_word_matches_gensim(pair):
    g, p, _ = pair
    for pos, neg in [(["landlordz"], None), (["hellp", g.index_to_key[0]], ["xyzzy"])]:
        # toy-model-pretrained.bin has all-zero word vectors: 0/0 in gensim's scores and ours
        with np.errstate(invalid="ignore"):
            mine = p.most_similar(positive=pos, negative=neg, topn=5)
            ref = g.most_similar(positive=pos, negative=neg, topn=5)
        assert [w for w, _ in mine] == [w for w, _ in ref]
        np.testing.assert_allclose([s for _, s in mine], [s for _, s in ref], rtol=1e-6)


def test_set_queries_with_oov_words_match_gensim(pair):
    g, p, _ = pair
    a, b = ["hellp", g.index_to_key[1]], ["xyzzy", "ab", g.index_to_key[2]]
    with np.errstate(invalid="ignore"):
        assert p.n_similarity(a, b) == pytest.approx(g.n_similarity(a, b), rel=1e-6, nan_ok=True)
        assert p.similarity("hellp", "xyzzy") == pytest.approx(g.similarity("hellp", "xyzzy"),
                                                              rel=1e-6, nan_ok=True)
    np.testing.assert_array_equal(p.get_mean_vector(a + b), g.get_mean_vector(a + b))


def test_composition_in_chunks_equals_gensim(pair):
    g, _, _ = pair
    for chunk in (1, 7, 100):
        got = fasttext.compose(g.index_to_key, g.vectors_vocab.copy(), g.vectors_ngrams,
                               g.min_n, g.max_n, g.bucket, chunk_words=chunk)
        np.testing.assert_array_equal(got, g.vectors)


def test_ngram_hashes_equal_gensim():
    from gensim.models.fasttext import ft_ngram_hashes
    words = OOV + ["the", "café"]
    for minn, maxn in [(3, 6), (1, 1), (1, 3), (2, 2), (5, 5), (0, 4), (4, 3)]:
        rows, counts = fasttext.ngram_buckets(words, minn, maxn, 2_000_000)
        ref = [ft_ngram_hashes(w, minn, maxn, 2_000_000) for w in words]
        assert counts.tolist() == [len(r) for r in ref]
        assert rows.tolist() == [h for r in ref for h in r]


def test_cp852_words_are_decoded_with_the_encoding():
    p = pyembed.load_vectors(_path("cp852_fasttext.bin"), encoding="cp852")
    raw = pathlib.Path(_path("cp852_fasttext.bin")).read_bytes()
    assert any(not w.isascii() for w in p.index_to_key)
    for w in p.index_to_key:
        assert w.encode("cp852") in raw


def test_format_detection():
    new, old = _path("toy-model.bin"), _path("lee_fasttext.bin")
    assert fasttext.is_fasttext_bin(new) and fasttext.is_fasttext_bin(old)
    assert type(pyembed.load_vectors(old, format="fasttext-bin")) is pyembed.FastTextVectors
    vec = _path("lee_fasttext.vec")  # the .vec beside it is read as word2vec text
    assert not fasttext.is_fasttext_bin(vec)
    assert type(pyembed.load_vectors(vec)) is pyembed.Vectors
    assert not fasttext.is_fasttext_bin(vec, "word2vec")


# -- truncated and corrupt files -------------------------------------------------------------------

def _raises_value_error(tmp_path, data, match=None):
    p = tmp_path / "bad.bin"
    p.write_bytes(data)
    with pytest.raises(ValueError, match=match) as err:
        pyembed.load_vectors(p, format="fasttext-bin")
    assert str(p) in str(err.value)


@pytest.mark.parametrize("name", ["toy-model.bin", "non_ascii_fasttext.bin"])
def test_every_truncation_raises_value_error(tmp_path, name):
    data = pathlib.Path(_path(name)).read_bytes()
    cuts = sorted(set(range(0, min(len(data), 400))) | set(range(400, len(data), 97))
                  | {len(data) - 1, len(data) - 4})
    for n in cuts:
        _raises_value_error(tmp_path, data[:n])


def _toy():
    return bytearray(pathlib.Path(_path("toy-model.bin")).read_bytes())


def _matrix_offset(data):
    """Byte offset of the input matrix's quantization flag in the new-format toy model."""
    nwords = struct.unpack_from("<i", data, 64)[0]
    pos = 64 + 12 + 8 + 8
    for _ in range(nwords):
        pos = data.index(b"\0", pos) + 1 + 9
    return pos


@pytest.mark.parametrize("offset, value, match", [
    (64, 2**31 - 1, "vocabulary"),          # vocabulary size: 2 G words claimed
    (68, 2**31 - 1, "vocabulary claims"),   # nwords differs from size
    (72, 3, "supervised"),                  # labels
    (40, 2**31 - 1, "input matrix"),        # bucket: the matrix no longer fits the file
    (8, 2**31 - 1, "input matrix"),         # dim
    (8, -3, "dim=-3"),
    (48, 2**31 - 1, None),                  # maxn: huge, yet nothing huge is allocated
])
def test_corrupt_header_fields_raise_value_error(tmp_path, offset, value, match):
    data = _toy()
    struct.pack_into("<i", data, offset, value)
    if match is None:  # maxn is not checked against anything: the vectors change, no crash
        p = tmp_path / "maxn.bin"
        p.write_bytes(bytes(data))
        kv = pyembed.load_vectors(p)
        assert kv.max_n == 2**31 - 1 and kv["unseen"].shape == (5,)
        return
    _raises_value_error(tmp_path, bytes(data), match)


def test_corrupt_matrix_records_raise_value_error(tmp_path):
    data = _toy()
    at = _matrix_offset(data)
    quant = bytearray(data)
    quant[at] = 1
    _raises_value_error(tmp_path, bytes(quant), "quantized")
    rows = bytearray(data)
    struct.pack_into("<q", rows, at + 1, 2**62)
    _raises_value_error(tmp_path, bytes(rows), "shape")
    _raises_value_error(tmp_path, bytes(data) + b"\0", "after the output matrix")
    label = bytearray(data)
    label[data.index(b"\0", 64 + 28) + 9] = 1  # the first entry's type: a label
    _raises_value_error(tmp_path, bytes(label), "label")


def test_random_byte_flips_load_or_raise_value_error(tmp_path):
    data = _toy()
    rng = np.random.default_rng(0)
    p = tmp_path / "flip.bin"
    for _ in range(300):
        bad = bytearray(data)
        for i in rng.integers(0, 400, 3):
            bad[i] = int(rng.integers(0, 256))
        p.write_bytes(bytes(bad))
        try:
            kv = pyembed.load_vectors(p, format="fasttext-bin")
        except ValueError as e:
            assert str(p) in str(e)
        else:
            assert kv.vectors.shape[0] == len(kv)


def test_unknown_encoding_is_named():
    with pytest.raises(ValueError, match="encoding must name a codec, got 'nope'"):
        pyembed.load_vectors(_path("toy-model.bin"), encoding="nope")


def test_not_a_fasttext_file_raises_value_error(tmp_path):
    _raises_value_error(tmp_path, b"2 3\ncat 0.1 0.2 0.3\n", "magic")
    _raises_value_error(tmp_path, b"", "empty")

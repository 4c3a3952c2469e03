"""Word-vector files: round trips, gensim's files read bit-exact, every malformed-file error."""
import gzip
import locale
import os
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pyembed
from pyembed import Vectors, _core, load_vectors, save_vectors
from vector_files import assert_same_bits, bits, gensim_kv, kv, write_file  # noqa: F401 (fixtures)


# -- number parsing ---------------------------------------------------------------------------------

def _numbers():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(3000) * 10.0 ** rng.integers(-45, 39, 3000)
    toks = [repr(float(v)) for v in x[:600]] + ["%.9g" % v for v in x[600:1200]]
    toks += [str(np.float32(v)) for v in x[1200:1800]] + ["%.25e" % v for v in x[1800:2400]]
    toks += ["%.6f" % v for v in x[2400:]]  # what the word2vec C tool writes
    toks += ["1.00000005960464478", "1.000000059604644775390625000001",  # float32 midpoints:
             "1.0000000596046447753906", "0.000001", "-0", "+5", ".5", "5.", "1E5", "1e-46",
             "123456789012345678901234567890", "9007199254740993", "3.4028236e38", "1e400",
             "-1e400", "inf", "-Infinity", "nan", "4.9e-324", "2.2250738585072011e-308",
             "0.1e-22", "1e22", "1e23", "00000000000000000000000001.5"]
    return toks


def test_numbers_parse_exactly_as_numpy_and_python():
    toks = _numbers()
    line = ("w " + " ".join(toks) + "\n").encode()
    with np.errstate(over="ignore"):
        ref32 = np.array([np.float32(t) for t in toks], np.float32)  # gensim's conversion
    ref64 = np.array([float(t) for t in toks])
    got32 = _core.parse_text(line, 0, len(toks), -1, np.float32, "t", 1)[0][0]
    got64 = _core.parse_text(line, 0, len(toks), -1, np.float64, "t", 1)[0][0]
    np.testing.assert_array_equal(bits(got32), bits(ref32))
    np.testing.assert_array_equal(bits(got64), bits(ref64))


@pytest.mark.parametrize("tok", ["0x1p3", "1e", "1.2.3", "--1", "nan(1)", "1,5", "e5", "+", "."])
def test_not_a_number(tmp_path, tok):
    p = tmp_path / "v.txt"
    p.write_text(f"1 2\nw 1 {tok}\n")
    with pytest.raises(ValueError, match=r"v\.txt, line 2: value 2 .* is not a number"):
        load_vectors(p)


def test_numbers_ignore_the_process_locale(tmp_path):
    p = tmp_path / "v.txt"
    p.write_text("1 2\nw 1.5 2.25\n")
    old = locale.setlocale(locale.LC_NUMERIC)
    for name in ("de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8"):
        try:
            locale.setlocale(locale.LC_NUMERIC, name)
            break
        except locale.Error:
            continue
    else:
        pytest.skip("no locale with a decimal comma installed")
    try:
        v = load_vectors(p)
        np.testing.assert_array_equal(v.vectors, [[1.5, 2.25]])
        out = tmp_path / "o.txt"
        v.save(out)
        assert out.read_text() == "1 2\nw 1.5 2.25\n"
    finally:
        locale.setlocale(locale.LC_NUMERIC, old)


# -- round trips ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,binary", [("word2vec", False), ("word2vec", True), ("glove", False),
                                        ("fasttext", False), ("safetensors", False)])
def test_round_trip_every_format(tmp_path, kv, fmt, binary):
    p = tmp_path / "v.out"
    kv.save(p, format=fmt, binary=binary)
    back = load_vectors(p, format=fmt)
    assert_same_bits(back.vectors, kv.vectors)
    if fmt == "safetensors":
        assert back.index_to_key == list(range(len(kv)))
    else:
        assert back.index_to_key == kv.index_to_key


@pytest.mark.parametrize("binary", [False, True])
def test_auto_detects_format(tmp_path, kv, binary):
    p = tmp_path / "v.vec"
    kv.save(p, binary=binary)
    assert_same_bits(load_vectors(p).vectors, kv.vectors)
    g = tmp_path / "g.txt"
    kv.save(g, format="glove")
    assert load_vectors(g).index_to_key == kv.index_to_key


def test_round_trip_float64_text(tmp_path):
    rng = np.random.default_rng(2)
    v = Vectors(["a", "b", "c"], rng.standard_normal((3, 5)) * 1e-300)
    v.vectors[0, 0] = 5e-324
    p = tmp_path / "v.txt"
    v.save(p)
    assert_same_bits(load_vectors(p, dtype=np.float64).vectors, v.vectors)


def test_nan_and_inf_round_trip(tmp_path):
    v = Vectors(["a"], np.array([[np.nan, np.inf, -np.inf]], np.float32))
    p = tmp_path / "v.txt"
    v.save(p)
    np.testing.assert_array_equal(load_vectors(p).vectors, v.vectors)


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 5)),
                  elements=st.floats(width=32, allow_nan=False)))
def test_text_round_trip_any_float32(tmp_path_factory, arr):
    p = tmp_path_factory.mktemp("rt") / "v.txt"
    v = Vectors([f"w{i}" for i in range(arr.shape[0])], arr)
    v.save(p)
    assert_same_bits(load_vectors(p).vectors, arr)


def test_text_is_shortest_repr(tmp_path):
    v = Vectors(["a"], np.array([[0.1, 1.0 / 3, -2.5, 1e-8, 100.0]], np.float32))
    p = tmp_path / "v.txt"
    v.save(p)
    assert p.read_text() == "1 5\na 0.1 0.33333334 -2.5 1e-08 100\n"


def test_limit_and_dtype(tmp_path, kv):
    p = tmp_path / "v.txt"
    kv.save(p)
    v = load_vectors(p, limit=5, dtype=np.float64)
    assert v.index_to_key == kv.index_to_key[:5] and v.vectors.dtype == np.float64
    # float64 reads the shortest decimals, which round back to the float32 values
    assert_same_bits(v.vectors.astype(np.float32), kv.vectors[:5])
    b = tmp_path / "v.bin"
    kv.save(b, binary=True)
    assert load_vectors(b, limit=3).index_to_key == kv.index_to_key[:3]
    g = tmp_path / "g.txt"
    kv.save(g, format="glove")
    assert len(load_vectors(g, limit=7)) == 7
    assert len(load_vectors(g, limit=0)) == 0


def test_gzip(tmp_path, kv):
    p = tmp_path / "v.txt"
    kv.save(p)
    gz = tmp_path / "v.txt.gz"
    gz.write_bytes(gzip.compress(p.read_bytes()))
    assert_same_bits(load_vectors(gz).vectors, kv.vectors)


def test_c_tool_binary_with_newlines_and_crlf_text(tmp_path):
    v = np.arange(6, dtype=np.float32).reshape(2, 3)
    p = tmp_path / "c.bin"  # the C tool writes '\n' after every vector
    p.write_bytes(b"2 3\n" + b"ab " + v[0].tobytes() + b"\n" + b"cd " + v[1].tobytes() + b"\n")
    r = load_vectors(p)
    assert r.index_to_key == ["ab", "cd"]
    np.testing.assert_array_equal(r.vectors, v)
    t = tmp_path / "crlf.txt"
    t.write_bytes(b"2 3\r\nab 0 1 2 \r\n\r\ncd 3 4 5\r\n")
    r = load_vectors(t)
    assert r.index_to_key == ["ab", "cd"]
    np.testing.assert_array_equal(r.vectors, v)


def test_glove_words_with_spaces(tmp_path):
    p = tmp_path / "g.txt"
    p.write_text("the 1 2\nat name@x.com 3 4\n. . . 5 6\n")
    r = load_vectors(p, format="glove")
    assert r.index_to_key == ["the", "at name@x.com", ". . ."]
    np.testing.assert_array_equal(r.vectors, [[1, 2], [3, 4], [5, 6]])


def test_tab_separated_and_words_with_tabs(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("a\t1\t2\nb\tc 3 4\n")
    r = load_vectors(p, format="glove")
    assert r.index_to_key == ["a", "b\tc"]
    np.testing.assert_array_equal(r.vectors, [[1, 2], [3, 4]])


def test_empty_vectors(tmp_path):
    v = Vectors([], np.zeros((0, 4), np.float32))
    p = tmp_path / "e.txt"
    v.save(p)
    r = load_vectors(p)
    assert len(r) == 0 and r.vectors.shape == (0, 4)


def test_save_rejects_bad_words(tmp_path):
    v = Vectors(["a b", "c"], np.ones((2, 2), np.float32))
    with pytest.raises(ValueError, match="space"):
        v.save(tmp_path / "x.bin", binary=True)
    v.save(tmp_path / "x.txt")  # text keeps it: our reader takes the last dim fields
    assert load_vectors(tmp_path / "x.txt").index_to_key == ["a b", "c"]
    with pytest.raises(ValueError, match="newline"):
        Vectors(["a\nb"], np.ones((1, 2))).save(tmp_path / "y.txt")
    with pytest.raises(ValueError, match="format"):
        v.save(tmp_path / "y.txt", format="xml")
    with pytest.raises(ValueError, match="binary"):
        v.save(tmp_path / "y.txt", format="glove", binary=True)
    with pytest.raises(TypeError):
        save_vectors(np.ones((2, 2)), tmp_path / "y.txt")


def test_save_never_destroys_the_old_file(tmp_path, kv, monkeypatch):
    p = tmp_path / "v.txt"
    kv.save(p)
    before = p.read_bytes()

    def boom(*a):
        raise RuntimeError("disk full")

    monkeypatch.setattr(_core, "format_text", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        Vectors(["z"], np.ones((1, 7), np.float32)).save(p)
    assert p.read_bytes() == before
    assert os.listdir(tmp_path) == ["v.txt"]  # no temporary file left behind


# -- malformed files ----------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [b"abc def\n", b"3\n", b"3 x\n", b"-1 3\n", b"1 2 3\n"])
def test_bad_header(tmp_path, header):
    p = write_file(tmp_path, header + b"w 1 2\n")
    with pytest.raises(ValueError, match=r"bad\.txt, line 1: the header .* does not parse"):
        load_vectors(p, format="word2vec")


def test_impossible_header_dim(tmp_path):
    p = write_file(tmp_path, b"1 1000000000000\nw 1 2\n")
    with pytest.raises(ValueError, match="line 1: the header promises 1000000000000 values"):
        load_vectors(p)
    b = write_file(tmp_path, b"1 100000000\nw " + bytes(8), "b.bin")
    with pytest.raises(ValueError, match=r"b\.bin, line 1: the header promises 100000000 values"):
        load_vectors(b, binary=True)


def test_empty_file(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        load_vectors(write_file(tmp_path, b""))


def test_fasttext_model_bin_is_named(tmp_path):
    with pytest.raises(ValueError, match="fastText model"):
        load_vectors(write_file(tmp_path, b"\xba\x16\x4f\x2f\x0c\x00\x00\x00", "m.bin"))


def test_glue_keeps_reference_counts():
    import sys

    buf = b"2 2\na 1 2\nb 3 4\n"
    bad = b"a 1 x\n"
    before = sys.getrefcount(buf), sys.getrefcount(bad)
    for _ in range(500):
        _core.parse_text(buf, 4, 2, -1, np.float32, "f", 2)
        with pytest.raises(ValueError):
            _core.parse_text(bad, 0, 2, -1, np.float64, "f", 1)
        _core.parse_binary(b"a " + bytes(8), 0, 1, 2, np.float32, "f")
        _core.format_text(b"a\nb", np.array([0, 2]), np.array([1, 3]), np.ones((2, 2), np.float32))
    assert (sys.getrefcount(buf), sys.getrefcount(bad)) == before


@pytest.mark.parametrize("row,found", [(b"b 1\n", 1), (b"b 1 2 3\n", 3), (b"b\n", 0)])
def test_wrong_value_count(tmp_path, row, found):
    p = write_file(tmp_path, b"3 2\na 1 2\n" + row + b"c 1 2\n")
    with pytest.raises(ValueError, match=rf"bad\.txt, line 3: expected 2 values after the word, found {found}"):
        load_vectors(p)


def test_wrong_value_count_glove_line_number_counts_blank_lines(tmp_path):
    p = write_file(tmp_path, b"a 1 2\n\n\nb 1 2\nc 1\n")
    with pytest.raises(ValueError, match=r"line 5: expected 2 values"):
        load_vectors(p)


def test_fewer_rows_than_header(tmp_path):
    p = write_file(tmp_path, b"5 2\na 1 2\nb 3 4\n")
    with pytest.raises(ValueError, match=r"bad\.txt: the header promises 5 vectors but the file has only 2"):
        load_vectors(p)
    # limit below what is there is fine (gensim reads min(count, limit) rows)
    assert len(load_vectors(p, limit=2)) == 2


@pytest.mark.parametrize("cut", [1, 4, 11, 12])
def test_truncated_binary(tmp_path, cut):
    v = np.arange(6, dtype=np.float32).reshape(2, 3)
    data = b"2 3\nab " + v[0].tobytes() + b"cd " + v[1].tobytes()
    p = write_file(tmp_path, data[:-cut], "t.bin")
    with pytest.raises(ValueError, match=r"t\.bin, record 2 .*ends inside the record"):
        load_vectors(p, binary=True)


def test_binary_word_with_inner_newline(tmp_path):
    p = write_file(tmp_path, b"1 1\na\nb " + bytes(4), "n.bin")
    with pytest.raises(ValueError, match=r"n\.bin: a word contains a newline"):
        load_vectors(p, binary=True)


def test_binary_header_promises_too_many(tmp_path):
    v = np.arange(3, dtype=np.float32)
    p = write_file(tmp_path, b"1000000000 3\nab " + v.tobytes(), "t.bin")
    with pytest.raises(ValueError, match=r"record 2 "):
        load_vectors(p, binary=True)


def test_duplicate_words_keep_first_and_warn(tmp_path):
    p = write_file(tmp_path, b"4 1\na 1\nb 2\na 3\nc 4\n")
    with pytest.warns(UserWarning, match=r"1 duplicate word.*'a' at line 4"):
        v = load_vectors(p)
    assert v.index_to_key == ["a", "b", "c"]
    np.testing.assert_array_equal(v.vectors[:, 0], [1, 2, 4])
    assert v.key_to_index == {"a": 0, "b": 1, "c": 2}


def test_bad_utf8(tmp_path):
    p = write_file(tmp_path, b"2 1\nok 1\nbad\xff\xfe 2\n")
    with pytest.raises(ValueError, match=r"bad\.txt, line 3: the word is not valid utf-8"):
        load_vectors(p)
    assert load_vectors(p, unicode_errors="ignore").index_to_key == ["ok", "bad"]
    assert load_vectors(p, unicode_errors="replace").index_to_key == ["ok", "bad\ufffd\ufffd"]
    assert load_vectors(p, encoding="latin-1").index_to_key == ["ok", "bad\xff\xfe"]
    b = write_file(tmp_path, b"2 1\nok " + np.float32(1).tobytes() + b"\xe6\x97 " + np.float32(2).tobytes(), "b.bin")
    with pytest.raises(ValueError, match=r"b\.bin, record 2: the word is not valid"):
        load_vectors(b, binary=True)
    assert load_vectors(b, binary=True, unicode_errors="replace").index_to_key == ["ok", "\ufffd"]


def test_bad_arguments(tmp_path, kv):
    p = tmp_path / "v.txt"
    kv.save(p)
    with pytest.raises(ValueError, match="format"):
        load_vectors(p, format="xml")
    with pytest.raises(ValueError, match="limit"):
        load_vectors(p, limit=-1)
    with pytest.raises(ValueError, match="dtype"):
        load_vectors(p, dtype=np.int32)
    with pytest.raises(FileNotFoundError):
        load_vectors(tmp_path / "missing.txt")


# -- gensim parity ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [dict(), dict(binary=True), dict(write_header=False)])
def test_files_written_by_gensim_load_bit_exact(tmp_path, gensim_kv, kw):
    p = tmp_path / "g.out"
    gensim_kv.save_word2vec_format(str(p), **kw)
    v = load_vectors(p)
    assert v.index_to_key == gensim_kv.index_to_key
    assert_same_bits(v.vectors, gensim_kv.vectors)


# gensim's no_header reader leaves a file open
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("fmt,binary,kw", [("word2vec", False, {}), ("word2vec", True, dict(binary=True)),
                                           ("glove", False, dict(no_header=True))])
def test_gensim_loads_our_files_bit_exact(tmp_path, gensim_kv, fmt, binary, kw):
    from gensim.models import KeyedVectors

    v = Vectors(gensim_kv.index_to_key, gensim_kv.vectors)
    p = tmp_path / "o.out"
    v.save(p, format=fmt, binary=binary)
    g = KeyedVectors.load_word2vec_format(str(p), **kw)
    assert g.index_to_key == v.index_to_key
    assert_same_bits(g.vectors, v.vectors)


def test_binary_file_identical_to_gensims(tmp_path, gensim_kv):
    gensim_kv.save_word2vec_format(str(tmp_path / "g.bin"), binary=True)
    Vectors(gensim_kv.index_to_key, gensim_kv.vectors).save(tmp_path / "o.bin", binary=True)
    assert (tmp_path / "g.bin").read_bytes() == (tmp_path / "o.bin").read_bytes()


@pytest.mark.parametrize("name,kw", [
    ("EN.1-10.cbow1_wind5_hs0_neg10_size300_smpl1e-05.txt", {}),  # 19-digit values: strtod path
    ("high_precision.kv.txt", {}), ("high_precision.kv.bin", dict(binary=True)),
    ("crime-and-punishment.vec", {}),
    ("lee_fasttext.vec", {}), ("euclidean_vectors.bin", dict(binary=True)),
])
def test_gensim_test_data_files(name, kw):
    pytest.importorskip("gensim")
    from gensim.models import KeyedVectors
    from gensim.test.utils import datapath

    path = datapath(name)
    if not os.path.exists(path):
        pytest.skip(f"{name} not shipped with this gensim")
    g = KeyedVectors.load_word2vec_format(path, **kw)
    v = load_vectors(path)
    assert v.index_to_key == g.index_to_key
    assert_same_bits(v.vectors, g.vectors)


def test_gensim_limit_and_unicode_errors_agree(tmp_path):
    pytest.importorskip("gensim")
    from gensim.models import KeyedVectors

    p = write_file(tmp_path, b"3 2\nok 1 2\nbad\xc3 2 3\nx\xe2\x82 4 5\n")
    for errors in ("replace", "ignore"):
        g = KeyedVectors.load_word2vec_format(str(p), unicode_errors=errors)
        assert load_vectors(p, unicode_errors=errors).index_to_key == g.index_to_key
    g = KeyedVectors.load_word2vec_format(str(p), limit=1, unicode_errors="ignore")
    assert load_vectors(p, limit=1, unicode_errors="ignore").index_to_key == g.index_to_key


# -- Embedding.from_pretrained --------------------------------------------------------------------------

def test_from_pretrained_keeps_the_vocab(tmp_path, kv):
    p = tmp_path / "v.txt"
    kv.save(p)
    emb = pyembed.Embedding.from_pretrained(load_vectors(p), padding_idx="the")
    ids = emb.vocab.encode(["héllo", "the", "日本語"])
    np.testing.assert_array_equal(ids, [1, 0, 3])
    np.testing.assert_array_equal(emb(ids), kv.vectors[[1, 0, 3]])
    assert emb.padding_idx == 0 and not emb.requires_grad
    with pytest.raises(KeyError):
        emb.vocab.encode(["not-a-word"])
    arr = pyembed.Embedding.from_pretrained(kv.vectors, freeze=False)
    assert arr.vocab is None and arr.requires_grad
    with pytest.raises(ValueError, match="not a word"):
        pyembed.Embedding.from_pretrained(kv, padding_idx="<pad>")


def test_threads_give_identical_results_and_the_first_error(tmp_path):
    rng = np.random.default_rng(9)
    v = Vectors([f"w{i}" for i in range(4000)], rng.standard_normal((4000, 20)).astype(np.float32))
    p = tmp_path / "v.txt"
    v.save(p)  # ~700 KB: parsed in parallel when threads > 1
    lines = p.read_bytes().split(b"\n")
    lines[3001] = b"w3000 1 2"  # line 3002
    lines[3501] = b"w3500 x"
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\n".join(lines))
    old = pyembed.get_num_threads()
    try:
        results = []
        for nt in (1, 2, 4):
            pyembed.set_num_threads(nt)
            results.append(load_vectors(p).vectors)
            with pytest.raises(ValueError, match="line 3002: expected 20 values"):
                load_vectors(bad)
    finally:
        pyembed.set_num_threads(old)
    for r in results[1:]:
        assert_same_bits(r, results[0])
    assert_same_bits(results[0], v.vectors)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["auto", "word2vec", "glove"]),
       st.sampled_from([None, True, False]))
def test_garbage_never_crashes(tmp_path_factory, data, fmt, binary):
    """Any bytes: a Vectors or a ValueError (with the file name), never a crash."""
    if fmt == "glove" and binary:
        binary = None
    p = tmp_path_factory.mktemp("fuzz") / "g.txt"
    p.write_bytes(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # duplicate words
            v = load_vectors(p, format=fmt, binary=binary, unicode_errors="replace")
    except ValueError as e:
        assert "g.txt" in str(e) or "GloVe" in str(e)
    else:
        assert v.vectors.shape[0] == len(v.index_to_key)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=120))
def test_garbage_after_a_valid_header(tmp_path_factory, tail):
    p = tmp_path_factory.mktemp("fuzz") / "h.bin"
    p.write_bytes(b"3 2\n" + tail)
    for binary in (True, False):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # duplicate words
                v = load_vectors(p, binary=binary, unicode_errors="ignore")
        except ValueError as e:
            assert "h.bin" in str(e)
        else:
            assert v.vectors.shape == (len(v), 2)


def test_save_refuses_words_that_are_only_whitespace(tmp_path):
    """Found by the vectors_roundtrip fuzzer: a GloVe save of the word '\\x0c\\x0c' wrote
    b'\\x0c\\x0c 0 -0\\n', which every reader (gensim's too) takes for a "count dim" header."""
    p = tmp_path / "g.txt"
    for word in ("\x0c\x0c", "", " \t"):
        with pytest.raises(ValueError, match="only whitespace"):
            save_vectors(Vectors([word], np.zeros((1, 2), np.float32)), p, format="glove")
        assert not p.exists()


def test_glove_dimension_counts_fields_as_the_parser_splits_them(tmp_path):
    """GloVe's dimension comes from the first line split on space, tab and CR, as the C parser
    splits: bytes.split() also cut at a form feed inside the word, giving one field too many."""
    p = tmp_path / "g.txt"
    p.write_bytes(b"a\x0cb 1 2\nc 3 4\n")
    kv = load_vectors(p, format="glove")
    assert kv.index_to_key == ["a\x0cb", "c"] and kv.vectors.tolist() == [[1, 2], [3, 4]]

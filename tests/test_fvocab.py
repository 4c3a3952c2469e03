"""Vocabulary files (gensim's fvocab): word counts read with the vectors and written beside them,
against gensim where it is installed."""
import gzip
import os

import numpy as np
import pytest

from pyembed import Vectors, load_vectors, save_vectors
from vector_files import assert_same_bits, gensim_kv, kv, words, write_file  # noqa: F401 (fixtures)


# -- vocabulary files (fvocab) ------------------------------------------------------------------------

def _counted(n=40, d=7, seed=0):
    """Vectors with word counts that are not in row order, with ties."""
    rng = np.random.default_rng(seed)
    kv = Vectors(words(n), (rng.standard_normal((n, d)) * 0.3).astype(np.float32))
    kv.expandos["count"] = rng.integers(1, 12, n).astype(np.int64)
    return kv


@pytest.mark.parametrize("fmt,binary,ext", [("word2vec", False, ".txt"), ("word2vec", True, ".bin"),
                                            ("glove", False, ".txt"), ("fasttext", False, ".vec")])
def test_fvocab_round_trip(tmp_path, fmt, binary, ext):
    kv = _counted()
    p, pv = tmp_path / ("v" + ext), tmp_path / "vocab.txt"
    kv.save(p, format=fmt, binary=binary, fvocab=pv)
    counts = kv.expandos["count"]
    order = np.argsort(-counts, kind="stable")  # most frequent first, ties in row order
    words = [kv.index_to_key[i] for i in order.tolist()]
    text = pv.read_bytes()
    assert text.decode() == "".join(f"{w} {c}\n" for w, c in zip(words, counts[order].tolist()))
    if fmt == "fasttext":  # a compressed vocabulary file reads as the vectors do
        pv = tmp_path / "vocab.txt.gz"
        pv.write_bytes(gzip.compress(text))
    back = load_vectors(p, format=fmt, fvocab=pv)
    assert back.index_to_key == words
    assert_same_bits(back.vectors, kv.vectors[order])
    assert back.expandos["count"].dtype == np.int64
    np.testing.assert_array_equal(back.expandos["count"], counts[order])
    assert back.get_vecattr(words[0], "count") == counts.max()
    back.save(tmp_path / "again", format=fmt, binary=binary, fvocab=tmp_path / "again.vocab")
    assert (tmp_path / "again.vocab").read_bytes() == text  # sorted already: nothing moves
    assert load_vectors(tmp_path / "again", format=fmt).index_to_key == words


def test_without_fvocab_counts_are_gensims_invention(tmp_path, kv):
    p = tmp_path / "v.txt"
    kv.save(p)
    assert load_vectors(p).expandos["count"].tolist() == list(range(40, 0, -1))
    # gensim's vocab_size is min(header count, limit): the counts still end at 1
    assert load_vectors(p, limit=5).expandos["count"].tolist() == [5, 4, 3, 2, 1]
    kv.save(tmp_path / "g.txt", format="glove")
    assert load_vectors(tmp_path / "g.txt", limit=3).expandos["count"].tolist() == [3, 2, 1]
    # with duplicates the count is the vectors read minus the row kept (gensim's add_vector)
    write_file(tmp_path, b"3 2\na 1 2\na 3 4\nc 5 6\n", "d.txt")
    with pytest.warns(UserWarning, match="duplicate"):
        assert load_vectors(tmp_path / "d.txt").expandos["count"].tolist() == [3, 2]


def test_load_then_save_gives_the_same_file(tmp_path, kv):
    for name, binary in (("v.txt", False), ("v.bin", True)):
        p = tmp_path / name
        kv.save(p, binary=binary)
        before = p.read_bytes()
        load_vectors(p).save(tmp_path / "again", binary=binary, fvocab=tmp_path / "again.vocab")
        assert (tmp_path / "again").read_bytes() == before
        assert (tmp_path / "again.vocab").read_text().splitlines()[:2] == ["the 40", "héllo 39"]


def test_fvocab_missing_word_warns_and_gets_none(tmp_path):
    p = write_file(tmp_path, b"3 2\na 1 2\nb 3 4\nc 5 6\n", "v.txt")
    pv = write_file(tmp_path, b"c 7\n\na 10\nzz 4\nc 8\n", "vocab.txt")  # later lines win; blank ok
    with pytest.warns(UserWarning, match=r"vocab\.txt: .*incomplete: 1 word\(s\) missing "
                                         r"\(the first: 'b'\); their count is None"):
        kv = load_vectors(p, fvocab=pv)
    assert kv.expandos["count"].tolist() == [10, None, 8]
    assert kv.get_vecattr("b", "count") is None
    # saved: the word without a count goes last and is left out of the vocabulary file
    kv.save(tmp_path / "o.txt", fvocab=tmp_path / "o.vocab")
    assert (tmp_path / "o.vocab").read_bytes() == b"a 10\nc 8\n"
    assert (tmp_path / "o.txt").read_text().split("\n")[1:4] == ["a 1 2", "c 5 6", "b 3 4"]
    with pytest.warns(UserWarning, match="the first: 'b'"):
        again = load_vectors(tmp_path / "o.txt", fvocab=tmp_path / "o.vocab")
    assert again.expandos["count"].tolist() == [10, 8, None]


def test_sort_attr(tmp_path):
    kv = _counted()
    kv.save(tmp_path / "v.txt", sort_attr=None, fvocab=tmp_path / "vocab.txt")  # row order
    assert load_vectors(tmp_path / "v.txt").index_to_key == kv.index_to_key
    lines = (tmp_path / "vocab.txt").read_text().splitlines()
    assert lines == [f"{w} {c}" for w, c in zip(kv.index_to_key, kv.expandos["count"].tolist())]
    kv.expandos["score"] = np.linspace(0.0, 1.0, 40)  # another attribute: ascending rows reversed
    kv.save(tmp_path / "s.txt", sort_attr="score", fvocab=tmp_path / "s.vocab")
    assert load_vectors(tmp_path / "s.txt").index_to_key == kv.index_to_key[::-1]
    assert (tmp_path / "s.vocab").read_text().splitlines()[0] == f"w39 {np.float64(1.0)}"
    kv.save(tmp_path / "n.txt", sort_attr="missing")  # absent: row order, as gensim
    assert load_vectors(tmp_path / "n.txt").index_to_key == kv.index_to_key


def test_fvocab_encoding_and_unicode_errors(tmp_path):
    p = write_file(tmp_path, "2 1\ncafé 1\nthé 2\n".encode("latin-1"), "v.txt")
    pv = write_file(tmp_path, "thé 5\ncafé 3\n".encode("latin-1"), "vocab.txt")
    kv = load_vectors(p, fvocab=pv, encoding="latin-1")
    assert kv.expandos["count"].tolist() == [3, 5]
    with pytest.raises(ValueError, match=r"vocab\.txt, line 1: the word is not valid utf-8"):
        load_vectors(p, fvocab=pv)  # read first, as gensim: its error comes first
    assert load_vectors(p, fvocab=pv, unicode_errors="ignore").expandos["count"].tolist() == [3, 5]
    kv.save(tmp_path / "o.txt", fvocab=tmp_path / "o.vocab", encoding="latin-1")
    assert (tmp_path / "o.vocab").read_bytes() == "thé 5\ncafé 3\n".encode("latin-1")


@pytest.mark.parametrize("line", [b"oops", b"a 1 2", b"a x", b"a 1.5"])
def test_malformed_fvocab_names_file_and_line(tmp_path, kv, line):
    kv.save(tmp_path / "v.txt")
    pv = write_file(tmp_path, b"the 5\n\n" + line + b"\nhello 3\n", "vocab.txt")
    with pytest.raises(ValueError, match=r"vocab\.txt, line 3: expected 'word count', got "):
        load_vectors(tmp_path / "v.txt", fvocab=pv)


def test_fvocab_without_counts_changes_nothing(tmp_path, kv):
    p, pv = tmp_path / "v.txt", tmp_path / "vocab.txt"
    p.write_bytes(b"old")
    pv.write_bytes(b"old vocab")
    for call in (lambda: kv.save(p, fvocab=pv), lambda: kv.save(p, fvocab=pv, sort_attr=None),
                 lambda: _counted().save(p, fvocab=pv, sort_attr="score")):
        with pytest.raises(ValueError, match="fvocab: the vectors have no per-key attribute"):
            call()
    for call in (lambda: save_vectors(_counted(), p, format="safetensors", fvocab=pv),
                 lambda: load_vectors(tmp_path / "x.safetensors", fvocab=pv)):
        with pytest.raises(ValueError, match="fvocab: a safetensors file has no words"):
            call()
    assert p.read_bytes() == b"old" and pv.read_bytes() == b"old vocab"
    assert sorted(os.listdir(tmp_path)) == ["v.txt", "vocab.txt"]


def test_a_failed_fvocab_write_changes_neither_file(tmp_path, monkeypatch):
    p, pv = tmp_path / "v.txt", tmp_path / "vocab.txt"
    p.write_bytes(b"old")
    pv.write_bytes(b"old vocab")
    with pytest.raises(FileNotFoundError):
        _counted().save(p, fvocab=tmp_path / "no" / "vocab.txt")
    real_fsync, calls = os.fsync, []

    def fsync_fails_second(fd):  # the disk fills while the vocabulary file is written
        calls.append(fd)
        if len(calls) == 2:
            raise OSError("disk full")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_fails_second)
    with pytest.raises(OSError, match="disk full"):
        _counted().save(p, fvocab=pv)
    assert p.read_bytes() == b"old" and pv.read_bytes() == b"old vocab"
    assert sorted(os.listdir(tmp_path)) == ["v.txt", "vocab.txt"]  # no temporary file left


def test_counts_agree_with_gensims(tmp_path):
    pytest.importorskip("gensim")
    from gensim.models import KeyedVectors

    p = write_file(tmp_path, "4 2\nthé 1 2\nb 3 4\nc 5 6\nd 7 8\n".encode(), "v.txt")
    pv = write_file(tmp_path, "d 9\nthé 4\nb 4\nc 1\nb 2\nzz 5\n".encode(), "vocab.txt")
    for kw in (dict(), dict(fvocab=pv), dict(limit=2), dict(limit=3, fvocab=pv)):
        g = KeyedVectors.load_word2vec_format(str(p), **{k: str(v) if k == "fvocab" else v
                                                         for k, v in kw.items()})
        v = load_vectors(p, **kw)
        assert v.index_to_key == g.index_to_key
        assert v.expandos["count"].tolist() == g.expandos["count"].tolist()


# gensim's no_header reader leaves a file open
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_glove_counts_agree_with_gensims(tmp_path, gensim_kv):
    from gensim.models import KeyedVectors

    Vectors(gensim_kv.index_to_key, gensim_kv.vectors).save(tmp_path / "g.txt", format="glove")
    for limit in (None, 7):
        g = KeyedVectors.load_word2vec_format(str(tmp_path / "g.txt"), no_header=True, limit=limit)
        v = load_vectors(tmp_path / "g.txt", format="glove", limit=limit)
        assert v.expandos["count"].tolist() == g.expandos["count"].tolist()


@pytest.mark.parametrize("binary", [False, True])
def test_fvocab_files_identical_to_gensims(tmp_path, gensim_kv, binary):
    from gensim.models import KeyedVectors

    g = KeyedVectors(gensim_kv.vector_size)
    g.add_vectors(gensim_kv.index_to_key, gensim_kv.vectors)
    counts = np.random.default_rng(2).integers(1, 30, len(g))  # out of order, with ties
    for w, c in zip(g.index_to_key, counts.tolist()):
        g.set_vecattr(w, "count", c)
    g.save_word2vec_format(str(tmp_path / "g.out"), fvocab=str(tmp_path / "g.vocab"), binary=binary)
    v = Vectors(g.index_to_key, g.vectors)
    for w, c in zip(v.index_to_key, counts.tolist()):
        v.set_vecattr(w, "count", c)
    v.save(tmp_path / "o.out", binary=binary, fvocab=tmp_path / "o.vocab")
    assert (tmp_path / "o.vocab").read_bytes() == (tmp_path / "g.vocab").read_bytes()
    # our text floats are the shortest that read back exactly, as str(np.float32) writes them
    assert (tmp_path / "o.out").read_bytes() == (tmp_path / "g.out").read_bytes()
    # and each reads the other's pair of files to the same counts
    back = load_vectors(tmp_path / "g.out", fvocab=tmp_path / "g.vocab")
    g2 = KeyedVectors.load_word2vec_format(str(tmp_path / "o.out"), binary=binary,
                                           fvocab=str(tmp_path / "o.vocab"))
    assert back.index_to_key == g2.index_to_key
    assert back.expandos["count"].tolist() == g2.expandos["count"].tolist()

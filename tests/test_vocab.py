"""Vocab: building, encoding, decoding, files."""
import collections
import os

import numpy as np
import pytest

from pyembed import Vocab


def test_from_tokens_keeps_order_and_specials_first():
    v = Vocab(["the", "cat", "the", "sat"], specials=("<pad>", "<unk>"))
    assert v.index_to_key == ["<pad>", "<unk>", "the", "cat", "sat"]
    assert v.key_to_index == {w: i for i, w in enumerate(v.index_to_key)}
    assert len(v) == 5 and "cat" in v and "dog" not in v
    assert v.unk_token == "<unk>" and v.unk_id == 1
    assert list(v) == v.index_to_key


def test_from_counts_orders_filters_and_truncates():
    counts = collections.Counter({"a": 1, "b": 5, "c": 3, "d": 3, "e": 2})
    v = Vocab(counts=counts, min_count=2, specials=("<unk>",))
    assert v.index_to_key == ["<unk>", "b", "c", "d", "e"]  # ties keep first-seen order
    assert Vocab(counts=counts, max_size=2).index_to_key == ["<unk>", "b", "c"]
    assert Vocab(counts=counts, specials=()).index_to_key == ["b", "c", "d", "e", "a"]
    assert v.counts == dict(counts)


def test_from_corpus_counts_like_counter():
    sents = [["a", "b", "a"], ["c", "a", "b"], "a"]
    v = Vocab.from_corpus(sents, min_count=2, specials=("<pad>", "<unk>"))
    assert v.index_to_key == ["<pad>", "<unk>", "a", "b"]
    assert v.counts == {"a": 4, "b": 2, "c": 1}


def test_encode_decode():
    v = Vocab(["the", "cat", "sat"])
    ids = v.encode("the cat sat on the mat".split())
    assert ids.dtype == np.int64
    np.testing.assert_array_equal(ids, [1, 2, 3, 0, 1, 0])
    assert v.decode(ids) == ["the", "cat", "sat", "<unk>", "the", "<unk>"]
    assert v.decode(np.array([[1, 2], [3, 0]])) == ["the", "cat", "sat", "<unk>"]
    assert v.encode("cat") == 2 and v["dog"] == 0 and v.decode(2) == "cat"
    assert v.encode([]).shape == (0,) and v.decode([]) == []
    assert v.encode(iter(["sat"])).tolist() == [3]


def test_encode_without_unk_raises():
    v = Vocab(["a", "b"], specials=())
    assert v.unk_id is None
    with pytest.raises(KeyError, match="'zz' at position 1"):
        v.encode(["a", "zz"])
    with pytest.raises(KeyError, match="zz"):
        v["zz"]


def test_decode_errors():
    v = Vocab(["a", "b"])
    with pytest.raises(IndexError, match="id 7 at position 1"):
        v.decode([1, 7])
    with pytest.raises(IndexError):
        v.decode([-1])
    with pytest.raises(IndexError):
        v.decode(3)
    with pytest.raises(TypeError):
        v.decode([1.5])


def test_bad_arguments():
    with pytest.raises(ValueError, match="not both"):
        Vocab(["a"], counts={"a": 1})
    with pytest.raises(TypeError, match="split"):
        Vocab("the cat")
    with pytest.raises(ValueError, match="min_count"):
        Vocab(counts={"a": 1}, min_count=-1)
    with pytest.raises(ValueError, match="max_size"):
        Vocab(["a"], max_size=-2)
    with pytest.raises(ValueError, match="distinct"):
        Vocab(["a"], specials=("<unk>", "<unk>"))
    with pytest.raises(ValueError, match="unk_token"):
        Vocab(["a"], unk_token="<oov>")
    with pytest.raises(TypeError, match="specials"):
        Vocab(["a"], specials="<unk>")


def test_save_load_round_trip(tmp_path):
    v = Vocab(["the", "héllo", "日本語", "a b"], specials=("<pad>", "<unk>"))
    p = tmp_path / "vocab.txt"
    v.save(p)
    assert p.read_text(encoding="utf-8").split("\n")[:3] == ["<pad>", "<unk>", "the"]
    w = Vocab.load(p)
    assert w == v and w.unk_id == 1
    np.testing.assert_array_equal(w.encode(["a b", "zz"]), v.encode(["a b", "zz"]))
    p.write_bytes(b"x\r\ny\r\n")
    assert Vocab.load(p).index_to_key == ["x", "y"] and Vocab.load(p).unk_id is None


def test_save_errors_keep_the_old_file(tmp_path):
    p = tmp_path / "vocab.txt"
    Vocab(["a"]).save(p)
    before = p.read_bytes()
    with pytest.raises(ValueError, match="newline"):
        Vocab(["a\nb"]).save(p)
    assert p.read_bytes() == before and os.listdir(tmp_path) == ["vocab.txt"]
    p.write_text("a\na\n")
    with pytest.raises(ValueError, match="repeated"):
        Vocab.load(p)


def test_carriage_returns_round_trip_or_are_refused(tmp_path):
    """Found by the vocab fuzzer: b"a\\r" loaded as 'a\\r', which saved as "a\\r\\n" and loaded
    back as 'a'. A line's trailing "\\r" is a line end (CRLF files load), and a token ending in
    "\\r" cannot be saved."""
    p = tmp_path / "v.txt"
    p.write_bytes(b"a\r\nb\r")
    assert Vocab.load(p, unk_token=None).index_to_key == ["a", "b"]
    v = Vocab(["x\ry", "z"], specials=(), unk_token=None)
    v.save(p)
    assert Vocab.load(p, unk_token=None).index_to_key == ["x\ry", "z"]
    with pytest.raises(ValueError, match="carriage return"):
        Vocab(["a\r", "b"], specials=(), unk_token=None).save(p)
    assert Vocab.load(p, unk_token=None).index_to_key == ["x\ry", "z"]  # unchanged

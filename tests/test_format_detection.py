"""load_vectors' text/binary detection is certain or refuses, asking for binary= (issue 11):
it never loads a text file as binary garbage, nor a binary file as text."""
import bz2
import gzip
import lzma

import numpy as np
import pytest

import pyembed
from pyembed import Vectors, load_vectors, save_vectors


def _text_file(path, count, dim, rows, width):
    lines = [f"{count} {dim}"] + [f"w{i} " + " ".join(f"{0.1 * j + i:.3f}" for j in range(width))
                                  for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("rows", [3, 100])
@pytest.mark.parametrize("dim,width", [(2, 5), (3, 5), (5, 2), (4, 8)])
def test_text_with_a_wrong_header_dim_is_an_error_not_binary_garbage(tmp_path, rows, dim, width):
    p = _text_file(tmp_path / "t.txt", rows, dim, rows, width)
    with pytest.raises(ValueError, match=r"t\.txt.*binary=") as e:
        load_vectors(p)
    assert "line 2" in str(e.value)
    with pytest.raises(ValueError, match=r"t\.txt"):
        load_vectors(p, binary=False)


@pytest.mark.parametrize("payload", [b"1234abcd", b"1e10\x20\x20-5", b"9999" * 4, b"abcdefgh"])
def test_binary_with_printable_floats_is_never_read_as_text(tmp_path, payload):
    v = np.frombuffer(payload, np.float32).reshape(-1, 1).copy()
    kv = Vectors([f"w{i}" for i in range(len(v))], v)
    p = tmp_path / "b.bin"
    save_vectors(kv, p, binary=True)
    try:
        back = load_vectors(p)
    except ValueError as e:
        assert "binary=" in str(e) and "b.bin" in str(e)
    else:
        assert back.vectors.tobytes() == v.tobytes()
    assert load_vectors(p, binary=True).vectors.tobytes() == v.tobytes()


def test_a_file_valid_both_as_text_and_as_binary_is_refused(tmp_path):
    """One dim-1 vector whose float bytes are printable reads whole both ways: no guess (the
    vectors_roundtrip fuzzer found a float whose last byte is a newline, which the old guess,
    "ends in a newline: text", loaded as garbage). A ValueError asks for binary=."""
    v = np.frombuffer(b"1234", np.float32).reshape(1, 1).copy()
    p = tmp_path / "b.bin"
    save_vectors(Vectors(["a"], v), p, binary=True)
    with pytest.raises(ValueError, match="binary="):
        load_vectors(p)
    assert load_vectors(p, binary=True).vectors.tobytes() == v.tobytes()
    w = np.frombuffer(b"12\r\n", np.float32).reshape(1, 1).copy()  # ends in a newline
    save_vectors(Vectors(["a"], w), p, binary=True)
    with pytest.raises(ValueError, match="binary="):
        load_vectors(p)
    assert load_vectors(p, binary=True).vectors.tobytes() == w.tobytes()
    q = tmp_path / "t.txt"  # a text writer's final newline is left over by the binary reading
    save_vectors(Vectors(["a"], np.array([[1234.0]], np.float32)), q)
    assert q.read_bytes() == b"1 1\na 1234\n"
    assert load_vectors(q).vectors[0, 0] == 1234.0


def test_text_and_binary_with_limit_and_many_rows_still_detected(tmp_path):
    rng = np.random.default_rng(0)
    kv = Vectors([f"w{i}" for i in range(300)], rng.standard_normal((300, 7)).astype(np.float32))
    for binary in (False, True):
        p = tmp_path / f"v{binary}"
        save_vectors(kv, p, binary=binary)
        for limit in (None, 1, 70, 300):
            got = load_vectors(p, limit=limit)
            n = 300 if limit is None else limit
            assert got.vectors.tobytes() == kv.vectors[:n].tobytes()


def test_binary_then_garbage_is_refused(tmp_path):
    v = np.frombuffer(b"1234", np.float32).reshape(1, 1).copy()
    p = tmp_path / "b.bin"
    p.write_bytes(b"1 1\na 1234 and more\n")
    with pytest.raises(ValueError, match="binary="):
        load_vectors(p)
    assert pyembed.load_vectors(p, binary=True).vectors.tobytes() == v.tobytes()


# -- loaders raise ValueError naming file and line, never OverflowError ---------------------------
@pytest.mark.parametrize("binary", [None, True, False])
@pytest.mark.parametrize("header", [b"99999999999999999999999 3", b"9223372036854775808 1",
                                    b"1 99999999999999999999999"])
def test_absurd_header_counts_are_value_errors(tmp_path, header, binary):
    p = tmp_path / "h.txt"
    p.write_bytes(header + b"\na 1 2 3\n")
    with pytest.raises(ValueError, match=r"h\.txt"):
        load_vectors(p, binary=binary)


@pytest.mark.parametrize("count", [b"99999999999999999999999", b"-9223372036854775809"])
def test_vocab_file_counts_beyond_int64_are_value_errors(tmp_path, count):
    p = tmp_path / "v.txt"
    p.write_bytes(b"2 1\na 1\nb 2\n")
    voc = tmp_path / "voc.txt"
    voc.write_bytes(b"a 5\nb " + count + b"\n")
    with pytest.raises(ValueError, match=r"voc\.txt, line 2"):
        load_vectors(p, fvocab=voc)


def test_vocab_file_errors_name_file_and_line(tmp_path):
    p = tmp_path / "voc.txt"
    p.write_bytes(b"a\nb\n\xff\n")
    with pytest.raises(ValueError, match=r"voc\.txt, line 3: not valid UTF-8"):
        pyembed.Vocab.load(p)
    p.write_bytes(b"a\nb\nc\nb\n")
    with pytest.raises(ValueError, match=r"voc\.txt, line 4: token 'b' repeats line 2"):
        pyembed.Vocab.load(p)


@pytest.mark.parametrize("kw,name", [(dict(encoding="no-such-codec"), "encoding"),
                                     (dict(encoding="utf-16"), "encoding"),
                                     (dict(encoding=7), "encoding"),
                                     (dict(unicode_errors="bogus"), "unicode_errors")])
def test_bad_codec_arguments_are_value_errors_naming_them(tmp_path, kw, name):
    p = tmp_path / "v.txt"
    p.write_bytes(b"1 1\na 1\n")
    with pytest.raises(ValueError, match=name) as e:
        load_vectors(p, **kw)
    assert repr(next(iter(kw.values()))) in str(e.value)
    if name == "encoding":
        with pytest.raises(ValueError, match=name):
            save_vectors(Vectors(["a"], np.ones((1, 1), np.float32)), tmp_path / "o.txt", **kw)
        assert not (tmp_path / "o.txt").exists()


def test_optimizer_number_errors_name_the_value():
    emb = pyembed.Embedding(3, 2)
    with pytest.raises(TypeError, match=r"lr must be a number, got 'fast'"):
        pyembed.optim.Adam(emb, lr="fast")


@pytest.mark.parametrize("ext", [".gz", ".bz2", ".xz"])
@pytest.mark.parametrize("damage", ["truncate", "corrupt", "garbage"])
def test_broken_compressed_files_are_value_errors(tmp_path, ext, damage):
    comp = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}[ext]
    data = comp(b"2 2\na 1 2\nb 3 4\n" * 50)
    if damage == "truncate":
        data = data[:len(data) // 2]
    elif damage == "corrupt":
        data = data[:12] + bytes(b ^ 0x5A for b in data[12:40]) + data[40:]
    else:
        data = b"not compressed at all"
    p = tmp_path / ("v.txt" + ext)
    p.write_bytes(data)
    with pytest.raises(ValueError, match=r"v\.txt"):
        load_vectors(p)

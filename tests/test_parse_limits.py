"""Vector files that claim more than they hold, and numbers gensim reads (issue 11): loaders
allocate only what the file's bytes can hold and raise ValueError naming file and line, never a
MemoryError for a claimed size, an OverflowError or NumPy's "array is too big"."""
import warnings

import numpy as np
import pytest

from pyembed import load_vectors


def test_text_header_claiming_75_gib_is_a_line_error(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("100000 200000\n" + "a\n" * 100000)  # 200 KB asking for 74.5 GiB
    with pytest.raises(ValueError, match=r"big\.txt, line 2: expected 200000 values .* found 0"):
        load_vectors(path, binary=False)


def test_glove_first_row_claiming_37_gib_is_a_line_error(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("w " + " ".join(["0"] * 100000) + "\n" + "a\n" * 100000)
    with pytest.raises(ValueError, match=r"glove\.txt, line 2: expected 100000 values"):
        load_vectors(path, format="glove")


def test_an_earlier_bad_line_is_still_the_one_named(tmp_path):
    # the rows before the first line too short for dim are parsed first: their error wins
    path = tmp_path / "v.txt"
    path.write_text("3 4\nw 1 2 x 4\nv 1\nu 1 2 3 4\n")
    with pytest.raises(ValueError, match=r"v\.txt, line 2: value 3 \('x'\) is not a number"):
        load_vectors(path, binary=False)


@pytest.mark.parametrize("binary", [True, False])
def test_a_count_past_int64_is_a_value_error(tmp_path, binary):
    path = tmp_path / "h.bin"
    path.write_bytes(b"99999999999999999999 2\nw " + b"\0" * 8)
    with pytest.raises(ValueError, match=r"h\.bin, (line|record) "):
        load_vectors(path, binary=binary)


# what gensim's KeyedVectors.load_word2vec_format reads (np.float32(token), i.e. Python's
# float() rounded to float32) and what it refuses
NUMBERS = ["1e5", "+1", "nan", "inf", "-Infinity", "iNf", "1.", ".5", "-0", "1e500", "1e-500",
           "1_0", "1e1_0", "1_0.5_5", "\u0661", "\u0663.\u0665", "1\x0b", "1\u00a0", "0001"]
NOT_NUMBERS = ["0x10", "1e", "1d5", "nan(1)", "1__0", "_1", "1_", "1_e5", "1e_5", "++1", "1.0f",
               "0b1", "Infinityy"]


@pytest.mark.parametrize("token", NUMBERS + NOT_NUMBERS)
def test_numbers_are_read_as_gensim_reads_them(tmp_path, token):
    gensim_models = pytest.importorskip("gensim.models")
    path = tmp_path / "n.txt"
    path.write_text(f"2 2\nw {token} 0.5\nv 1 {token}\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            want = gensim_models.KeyedVectors.load_word2vec_format(path, binary=False).vectors
        except ValueError:
            want = None
    assert (want is None) == (token in NOT_NUMBERS)
    if want is None:
        with pytest.raises(ValueError, match=r"n\.txt, line 2: value 1 .* is not a number"):
            load_vectors(path, binary=False)
    else:
        got = load_vectors(path, binary=False).vectors
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))

"""Word-vector files in and out: word2vec text and binary, GloVe text, fastText ``.vec``.

This is the formats layer, below :class:`pyembed.Vectors`: :func:`read_vectors` gives a file's
keys, matrix and per-key counts, :func:`pyembed.writers.write_vectors` writes any object holding them;
``pyembed.load_vectors`` and ``save_vectors`` (vectors.py) wrap them for a Vectors.

The formats are gensim's (``KeyedVectors.load_word2vec_format`` / ``save_word2vec_format``):

- word2vec text: a header line ``"count dim"``, then ``count`` lines ``word v1 ... vdim``;
- word2vec binary: the same header, then ``count`` records ``word`` + ``b" "`` + ``dim`` native
  little-endian float32 (the C tool adds ``b"\\n"`` after each vector, gensim does not: both read);
- GloVe text: the lines without a header (``no_header=True`` in gensim);
- fastText ``.vec``: word2vec text.

Numbers are parsed by a C kernel (``csrc/kernels/parse.c``) to exactly the bits gensim gets
(``np.float32(token)``), many times faster; the whole file is memory-mapped (``.gz``/``.bz2``/
``.xz`` files are decompressed in memory). Malformed files raise ``ValueError`` naming the file and
the line (text) or record (binary). Writers write a temporary file and ``os.replace`` it, so a
failed save never destroys the previous file.

Word counts ("vocabulary files", gensim's ``fvocab``): lines ``"word count"``, as word2vec.c's
``-save-vocab`` writes them. Loaded, they become the per-key attribute ``"count"``
(:meth:`pyembed.Vectors.get_vecattr`); without one, the word2vec, fastText and GloVe loaders
invent gensim's descending counts. Saving writes the rows most frequent first, as gensim does.
"""
from __future__ import annotations

import bz2
import gzip
import itertools
import lzma
import mmap
import os
import re
import warnings
import zlib

import numpy as np
from numpy.typing import DTypeLike

from . import _core
from ._checks import check_encoding, check_float_dtype, is_int
from ._util import fspath
from .safetensors import load_safetensors

__all__ = ["read_vectors", "FORMATS", "TruncatedFileError"]


class TruncatedFileError(ValueError, EOFError):
    """A file that ends before the vectors its header promises: a ValueError, as every malformed
    file here, and an EOFError, what gensim raises (so ``except EOFError`` code keeps working)."""

#: formats understood by pyembed.load_vectors / save_vectors
FORMATS = ("word2vec", "glove", "fasttext", "safetensors")

_COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_CHECK_CHUNK_ROWS = 8192


def _read_buffer(path):
    """(buffer, closer): the bytes of the file, memory-mapped when it is a plain file."""
    ext = os.path.splitext(path)[1].lower()
    if ext in _COMPRESSED:
        with _COMPRESSED[ext](path, "rb") as f:
            try:
                return f.read(), None
            except (EOFError, OSError, zlib.error, lzma.LZMAError) as e:
                # truncated or corrupt data (BadGzipFile and bz2's errors are OSErrors)
                raise ValueError(f"{path}: not a valid {ext[1:]} file ({e})") from None
    f = open(path, "rb")
    try:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            f.close()
            return b"", None
        try:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # a pipe or a special file: read it
            data = f.read()
            f.close()
            return data, None
    except BaseException:
        f.close()
        raise
    f.close()
    return mm, mm


def _first_line(buf, start=0):
    end = buf.find(b"\n", start)
    if end < 0:
        end = len(buf)
    return bytes(buf[start:end]), end


def _parse_header(line):
    """(count, dim) if `line` is a word2vec header "count dim", else None."""
    parts = line.split()
    if len(parts) != 2:
        return None
    try:
        count, dim = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    if count < 0 or dim < 0:
        return None
    return count, dim


def _line_of(buf, offset):
    """1-based line number of byte `offset`."""
    if offset <= 0:
        return 1
    arr = np.frombuffer(buf, np.uint8, count=offset)
    return int(np.count_nonzero(arr == 10)) + 1


def _decode_words(blob, n, path, encoding, unicode_errors, where):
    """Decode the b'\\n'-joined words in one call; `where(i)` names row i for errors."""
    if n == 0:
        return []
    try:
        words = blob.decode(encoding, unicode_errors).split("\n")
    except UnicodeDecodeError as e:
        row = blob.count(b"\n", 0, e.start)
        raise _decode_error(e, f"{path}, {where(row)}") from e
    if len(words) != n:  # an encoding whose decoder swallowed a newline: decode word by word
        words = [w.decode(encoding, unicode_errors) for w in blob.split(b"\n")]
    if len(words) != n:
        raise ValueError(f"{path}: a word contains a newline byte (a binary file with "
                         f"newlines inside words?); {len(words)} pieces for {n} words")
    return words


_SEPARATORS = b" \t\r"  # what csrc/kernels/parse.c splits a line on (is_sep)
_DETECT_ROWS = 64  # records read both ways to tell text from binary
_CONTROL = np.array([c for c in range(32) if c not in b"\t\n\v\f\r"] + [127], np.uint8)


def _detect_binary(buf, offset, count, want, dim, path):
    """After a header "count dim": is the body binary? The first of the ``want`` records are
    read both ways.

    - One reading works: that one; except that a body of printable bytes that only the
      binary reading accepts is a text file with a wrong header (its text error is raised).
    - Both work: text if the ``count`` binary records do not end the file (whitespace aside);
      binary if they do and the text reading of the ``want`` rows fails.
    - Both read the whole file (only when every float byte is printable, e.g. one dim-1
      vector ``b"1234"``): text when a newline is left over after the binary records (every
      text writer ends its lines so; pyembed's and gensim's binary writers leave nothing);
      when the binary records end exactly at the end of the file, a ValueError asking for
      ``binary=`` (no guess: the vectors_roundtrip fuzzer found a float whose last byte is a
      newline, which a guess loaded as text garbage). word2vec.c's layout (a newline after
      each vector) with every float byte printable still reads as text.
    - Neither works: the error of the reading the bytes suggest, asking for ``binary=``.
    """
    k = min(want, _DETECT_ROWS)
    hint = "pass binary=True or binary=False to say which"
    text = _text_error(buf, offset, dim, k, count, path)
    binary = _binary_error(buf, offset, dim, k, path)
    if text is None and binary is None:
        if _binary_error(buf, offset, dim, count, path, to_end=True) is not None:
            return False
        if k < want and _text_error(buf, offset, dim, want, count, path) is not None:
            return True
        # both read the whole file: a text writer ends its last line with a newline that the
        # binary reading leaves over; binary records that end exactly at the end are a tie
        exact = _binary_error(memoryview(buf)[:len(buf) - 1], offset, dim, count, path) is not None
        if exact or buf[len(buf) - 1:] != b"\n":
            raise ValueError(f"{path}: reads both as text and as binary word2vec ({hint})")
        return False
    if text is None:
        return False
    window = np.frombuffer(bytes(buf[offset:offset + 65536]), np.uint8)  # a copy: buf may be
    # an mmap, which cannot close while a view of it exists
    printable = not np.isin(window, _CONTROL).any()
    if binary is None and not printable:
        return True
    err, kind = (text, "text") if printable else (binary, "binary")
    raise ValueError(f"{err} (read as {kind}; if the file is not {kind}, {hint})") from err


def _decode_error(e, where):
    """A UnicodeDecodeError (what gensim raises; a ValueError too) whose message names the file
    and the line or record."""
    return UnicodeDecodeError(e.encoding, e.object, e.start, e.end,
                              f"{where}: the word is not valid {e.encoding} ({e.reason}); pass "
                              f"unicode_errors='replace' or 'ignore' to load it anyway")


def _text_error(buf, offset, dim, n, count, path):
    """The ValueError of reading n text rows at offset, or None."""
    try:
        vecs = _core.parse_text(buf, offset, dim, n, np.float32, path, 2)[0]
    except ValueError as e:
        return e
    if vecs.shape[0] < n:
        return ValueError(f"{path}: the header promises {count} vectors but the file has only "
                          f"{vecs.shape[0]}")
    return None


def _binary_error(buf, offset, dim, n, path, to_end=False):
    """The ValueError of reading n binary records at offset (and, with to_end, of bytes other
    than whitespace after them), or None. Reads in pieces: no table-sized allocation."""
    try:
        done = 0
        while done < n:
            k = min(n - done, _CHECK_CHUNK_ROWS)
            _, blob, offset = _core.parse_binary(buf, offset, k, dim, np.float32, path)
            if blob.count(b"\n") != k - 1:
                raise ValueError(f"{path}: a word contains a newline byte")
            done += k
    except ValueError as e:
        return e
    while to_end and offset < len(buf):
        if bytes(buf[offset:offset + (1 << 20)]).strip():
            return ValueError(f"{path}: bytes after the last record")
        offset += 1 << 20
    return None


def _read_counts(fvocab, encoding, unicode_errors):
    """{word: count} from a vocabulary file. As gensim reads it: each line split on whitespace
    into a word and an int, a later line for a word wins; unlike gensim, blank lines are skipped
    and the words are decoded with the vectors' ``encoding`` (gensim always uses UTF-8, which
    garbles the counts of a file word2vec.c wrote in another encoding)."""
    buf, closer = _read_buffer(fvocab)
    try:
        try:
            text = str(buf, encoding, unicode_errors)
        except UnicodeDecodeError as e:
            raise _decode_error(e, f"{fvocab}, line {_line_of(buf, e.start)}") from e
    finally:
        if closer is not None:
            closer.close()
    lines = text.split("\n")
    pairs = [line.split() for line in lines]
    try:
        counts = {w: int(c) for w, c in filter(None, pairs)}
        if all(-2**63 <= c < 2**63 for c in counts.values()):  # stored as int64
            return counts
    except ValueError:
        pass
    for no, p in enumerate(pairs, 1):  # find the line to name
        try:
            if p:
                w, c = p
                if not -2**63 <= int(c) < 2**63:
                    raise ValueError
        except ValueError:
            raise ValueError(f"{fvocab}, line {no}: expected 'word count', got "
                             f"{lines[no - 1][:80]!r} (the count an int64)") from None
    raise AssertionError("unreachable: a bad line is always found above")  # pragma: no cover


def _counts(words, rows, counts, fvocab):
    """The "count" of each loaded word: from ``counts`` (None where the vocabulary file lacks
    the word, with a warning, as gensim), or without a file gensim's invented ``rows - row``
    (``rows``: the vectors read before duplicates were dropped, which with ``limit`` is
    ``min(header count, limit)``, as gensim's ``vocab_size``)."""
    if counts is None:
        return np.arange(rows, rows - len(words), -1, dtype=np.int64)
    found = list(map(counts.get, words))
    if None not in found:
        return np.array(found, np.int64)
    missing = [w for w, c in zip(words, found) if c is None]
    warnings.warn(f"{fvocab}: the vocabulary file is incomplete: {len(missing)} word(s) missing "
                  f"(the first: {missing[0]!r}); their count is None",
                  UserWarning, stacklevel=3)
    return np.array(found, object)


def read_vectors(path: str | os.PathLike, format: str = "auto", *, binary: bool | None = None,
                 limit: int | None = None, dtype: DTypeLike = np.float32,
                 unicode_errors: str = "strict", encoding: str = "utf-8",
                 fvocab: str | os.PathLike | None = None, datatype: DTypeLike | None = None,
                 no_header: bool = False) -> tuple[list, np.ndarray, dict, dict]:
    """Read a word-vector file: ``(keys, vectors, key_to_index, expandos)``, the parts of the
    :class:`pyembed.Vectors` that :func:`pyembed.load_vectors` returns.

    Args:
        path: the file (``.gz``, ``.bz2`` and ``.xz`` are decompressed).
        format: ``"auto"`` (a ``"count dim"`` first line means word2vec, text or binary as the
            bytes after it say; ``.safetensors`` files by name; else GloVe), ``"word2vec"``,
            ``"fasttext"`` (word2vec text), ``"glove"`` (text without a header) or
            ``"safetensors"`` (see :func:`pyembed.load_safetensors`; keys are the row numbers).
        binary: for word2vec, force binary (True) or text (False); None detects.
        limit: read only the first ``limit`` vectors.
        dtype: float32 (default, what gensim stores) or float64.
        datatype: gensim's name for ``dtype``, which also takes float16 (text values rounded
            once from their decimals, binary ones from their float32, as gensim).
        no_header: for word2vec text, the file has no ``"count dim"`` line (as GloVe; gensim's
            ``no_header=True``); binary files need a header (NotImplementedError, as gensim).
        unicode_errors: how to decode words that are not valid ``encoding`` (``"strict"``,
            ``"replace"``, ``"ignore"``), as in gensim.
        encoding: of the words (an ASCII-compatible encoding).
        fvocab: a vocabulary file (lines ``"word count"``, word2vec.c's ``-save-vocab``), read
            with the same ``encoding`` and ``unicode_errors``: each word's count becomes
            ``get_vecattr(word, "count")``; a word the file lacks gets None (with a warning).
            Without it every word2vec, fastText or GloVe row gets gensim's invented count
            ``n - row`` (n: the rows read, ``min(count, limit)`` for a header's count), so
            saving keeps the order. Safetensors files have no words: no counts, and fvocab is
            a ValueError.

    Duplicate words keep their first vector (with a warning), as gensim does.
    """
    path = fspath(path)
    if binary is not None and not isinstance(binary, (bool, np.bool_)):
        raise TypeError(f"binary must be True, False or None, got {str(repr(binary))[:80]}")
    if format not in ("auto",) + FORMATS:
        raise ValueError(f"format must be 'auto' or one of {FORMATS}, got {format!r}")
    if limit is not None:
        if not is_int(limit) or limit < 0:
            raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")
        limit = int(limit)
    half = datatype is not None and np.dtype(datatype) == np.float16
    dt = check_float_dtype(dtype if datatype is None else (np.float64 if half else datatype),
                           "datatype" if datatype is not None else "dtype")
    if no_header:
        if binary:
            raise NotImplementedError("no_header only available for text-format files")
        if format not in ("auto", "word2vec", "fasttext", "glove"):
            raise ValueError(f"no_header=True needs a text format, got format={format!r}")
        format = "glove"
    check_encoding(encoding, unicode_errors)
    if format == "safetensors" or (format == "auto" and path.endswith(".safetensors")):
        if fvocab is not None:
            raise ValueError("fvocab: a safetensors file has no words to give counts to")

        arr = load_safetensors(path)
        if limit is not None:
            arr = arr[:limit]
        keys = list(range(arr.shape[0]))
        return keys, np.array(arr, dtype=dt, order="C"), dict(zip(keys, keys)), {}

    # gensim reads the vocabulary file first: its errors come before the vectors'
    counts = None if fvocab is None else _read_counts(fspath(fvocab), encoding, unicode_errors)
    buf, closer = _read_buffer(path)
    try:
        # float16: parsed as float64 (binary: float32 widened, exact), then rounded once
        words, vecs, key_to_index, rows = _load_text_or_binary(buf, path, format, binary, limit,
                                                               dt, unicode_errors, encoding)
    finally:
        if closer is not None:
            closer.close()
    if half:  # gensim: np.float16(token) for text, float32 bytes .astype(float16) for binary
        vecs = vecs.astype(np.float16)
    expandos = {"count": _counts(words, rows, counts, fvocab)}
    return words, vecs, key_to_index, expandos


def _load_text_or_binary(buf, path, format, binary, limit, dt, unicode_errors, encoding):
    """(words, vectors, key_to_index, rows read before dropping duplicates)."""
    if len(buf) == 0:
        raise ValueError(f"{path}: the file is empty")
    if buf[:4] == b"\xba\x16\x4f\x2f":
        raise ValueError(f"{path}: this is a fastText model (.bin), not a vectors file; load the "
                         f".vec file that fastText writes beside it")
    line, end = _first_line(buf)
    header = _parse_header(line)
    if format == "auto":
        format = "word2vec" if header is not None else "glove"
    if format in ("word2vec", "fasttext"):
        if header is None:
            raise ValueError(f"{path}, line 1: the header {line[:80]!r} does not parse as "
                             f"'count dim' (a GloVe file without a header? use format='glove')")
        count, dim = header
        offset = min(end + 1, len(buf))
        want = count if limit is None else min(count, limit)
        if want >= 2**63:  # the parsers count in int64; no file holds that many vectors
            raise ValueError(f"{path}, line 1: the header promises {count} vectors, more than "
                             f"the file's {len(buf)} bytes can hold")
        if want > 0 and dim > len(buf):  # a text value takes 2 bytes, a binary one 4
            raise ValueError(f"{path}, line 1: the header promises {dim} values per vector, "
                             f"more than the file's {len(buf)} bytes can hold")
        if binary is None:
            binary = format == "word2vec" and want > 0 and _detect_binary(buf, offset, count,
                                                                          want, dim, path)
        if binary:
            try:
                vecs, blob, _ = _core.parse_binary(buf, offset, want, dim, dt, path)
            except ValueError as e:
                if "ends inside the record" in str(e):
                    raise TruncatedFileError(str(e)) from None
                raise
            starts = None
            words = _decode_words(blob, want, path, encoding, unicode_errors,
                                  lambda i: f"record {i + 1}")
        else:
            vecs, blob, starts, _ = _core.parse_text(buf, offset, dim, want, dt, path, 2)
            if vecs.shape[0] < want:
                last = _line_of(buf, len(buf)) - (1 if buf[len(buf) - 1:] == b"\n" else 0)
                raise TruncatedFileError(f"{path}: the header promises {count} vectors but the file has "
                                 f"only {vecs.shape[0]} (it ends at line {last}; truncated file?)")
    elif format == "glove":
        if binary:
            raise ValueError("GloVe files are text; binary=True needs format='word2vec'")
        # the first non-blank line gives the dimension, split on the parser's separators
        # (space, tab, CR): bytes.split() also splits on \v and \f, which a word may hold
        pos = 0
        while True:
            line, end = _first_line(buf, pos)
            if line.strip(_SEPARATORS) or end >= len(buf):
                break
            pos = end + 1
        dim = max(len(re.split(rb"[ \t\r]+", line.strip(_SEPARATORS))) - 1, 0)
        vecs, blob, starts, _ = _core.parse_text(buf, 0, dim, -1 if limit is None else limit,
                                                 dt, path, 1)
    else:  # pragma: no cover - guarded above
        raise ValueError(format)
    n = vecs.shape[0]
    if starts is not None:
        words = _decode_words(blob, n, path, encoding, unicode_errors,
                              lambda i: f"line {_line_of(buf, int(starts[i]))}")
    key_to_index = dict(zip(words, range(n)))
    if len(key_to_index) != n:  # duplicates: keep each word's first vector, as gensim
        first = dict(zip(reversed(words), range(n - 1, -1, -1)))
        keep = np.fromiter(map(first.__getitem__, words), np.int64, n) == np.arange(n)
        dup = int(np.flatnonzero(~keep)[0])
        where = f"line {_line_of(buf, int(starts[dup]))}" if starts is not None else f"record {dup + 1}"
        warnings.warn(f"{path}: {int((~keep).sum())} duplicate word(s) (the first: {words[dup]!r} "
                      f"at {where}); keeping the first vector of each, as gensim does",
                      UserWarning, stacklevel=3)
        vecs = np.ascontiguousarray(vecs[keep])
        words = list(itertools.compress(words, keep.tolist()))
        key_to_index = dict(zip(words, range(len(words))))
    return words, vecs, key_to_index, n

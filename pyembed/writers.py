"""Word-vector files out: word2vec text and binary, GloVe text, fastText ``.vec``, safetensors
-- the writing half of the formats layer (:mod:`pyembed.io` reads them), as gensim's
``KeyedVectors.save_word2vec_format`` writes them. :func:`pyembed.save_vectors` calls it.

Text values are the shortest decimals that read back to the same bits, formatted by a C kernel
(``csrc/kernels/parse.c``); every file is written to a temporary name and renamed
(``_util.atomic_write``), so a failed save never destroys the previous file.
"""
from __future__ import annotations

import os

import numpy as np

from . import _core, vecattr
from ._checks import check_encoding, is_int
from ._util import atomic_write
from .safetensors import save_safetensors

__all__ = ["write_vectors", "FORMATS"]

#: formats pyembed.save_vectors writes
FORMATS = ("word2vec", "glove", "fasttext", "safetensors")
_WRITE_CHUNK_ROWS = 8192


# -- writing --------------------------------------------------------------------------------------

def _encode_words(keys, encoding, forbid_space):
    """(blob, starts, ends) with the words joined by b'\\n'."""
    keys = [k if isinstance(k, str) else str(k) for k in keys]
    text = "\n".join(keys)
    if text.count("\n") != max(len(keys) - 1, 0):
        bad = next(k for k in keys if "\n" in k)
        raise ValueError(f"word {bad!r} contains a newline, which no vector format can store")
    if not all(map(str.strip, keys)):  # some word is empty or only whitespace
        bad = next(k for k in keys if not k.strip())
        raise ValueError(f"word {bad!r} is empty or only whitespace, which no vector file can "
                         f"store (readers, gensim's too, split lines on whitespace)")
    if forbid_space and (" " in text):
        bad = next(k for k in keys if " " in k)
        raise ValueError(f"word {bad!r} contains a space, which the binary format cannot store")
    blob = text.encode(encoding)
    nl = np.flatnonzero(np.frombuffer(blob, np.uint8) == 10)
    starts = np.concatenate(([0], nl + 1)).astype(np.int64)
    ends = np.concatenate((nl, [len(blob)])).astype(np.int64)
    if not keys:
        starts = ends = np.zeros(0, np.int64)
    return blob, starts, ends


def write_vectors(vectors, path: str | os.PathLike, format: str = "word2vec",
                  binary: bool = False, *, fvocab: str | os.PathLike | None = None,
                  sort_attr: str | None = "count", encoding: str = "utf-8",
                  tensor_name: str = "weight", write_header: bool = True,
                  total_vec: int | None = None, prefix: str = "", append: bool = False) -> None:
    """Write ``vectors`` (a :class:`pyembed.Vectors`, or any object with its ``index_to_key``,
    ``vectors`` and ``expandos``) to ``path``; :func:`pyembed.save_vectors` calls it.

    ``format``: ``"word2vec"`` (header + text, or binary float32 with ``binary=True``),
    ``"fasttext"`` (word2vec text), ``"glove"`` (text, no header) or ``"safetensors"`` (the matrix
    as tensor ``tensor_name``). Text values are the shortest decimals that read back to the same
    bits, so text round-trips are exact. The file is written to a temporary name and renamed,
    so an error never leaves a half-written file in place of the old one.

    As gensim's ``save_word2vec_format``, the text and binary formats write the rows by
    descending per-key attribute ``sort_attr`` when the vectors have it (ties in row order;
    ``None`` values, words a vocabulary file lacked, last), else in row order; ``sort_attr=None``
    keeps row order. Loaded vectors without a vocabulary file carry descending counts, so a
    load and a save give the same rows back in the same order. ``fvocab``: also write a
    vocabulary file, a line ``"word value"`` of ``sort_attr`` (``"count"`` when it is None) per
    row in that order, leaving out ``None`` values (reading it back gives them None again);
    vectors without that attribute are a ValueError, as in gensim. Both files are written
    before either is renamed into place, so a failure while writing changes neither.

    gensim's options: ``write_header=False`` leaves out the ``"count dim"`` line; ``total_vec``
    is the count it declares (default: the rows written); ``prefix`` goes before every word
    (in the vocabulary file too); ``append`` adds to the end of existing files (the old bytes
    are copied into the new file, which then replaces the old one as any save).
    """
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
    if total_vec is not None and (not is_int(total_vec) or total_vec < 0):
        raise ValueError(f"total_vec must be a non-negative int or None, got {total_vec!r}")
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if binary and format != "word2vec":
        raise ValueError(f"binary=True needs format='word2vec', got {format!r}")
    check_encoding(encoding)
    if format == "safetensors":
        if fvocab is not None:
            raise ValueError("fvocab: a safetensors file has no words to give counts to")
        save_safetensors(path, {tensor_name: vectors.vectors})
        return
    n, d = vectors.vectors.shape
    keys = vectors.index_to_key
    order = None
    if sort_attr is not None and sort_attr in vectors.expandos:
        order = vecattr.descending_order(vecattr.column(vectors.expandos, n, sort_attr))
    if order is not None:
        keys = list(map(keys.__getitem__, order.tolist()))
    if prefix:
        keys = [prefix + (k if isinstance(k, str) else str(k)) for k in keys]
    jobs = ()
    if fvocab is not None:
        attr = "count" if sort_attr is None else sort_attr
        if attr not in vectors.expandos:
            raise ValueError(f"fvocab: the vectors have no per-key attribute {attr!r} to write "
                             f"(load them with fvocab=, or set_vecattr(key, {attr!r}, value))")
        vocab = _vocab_text(keys, vecattr.column(vectors.expandos, n, attr), order)
        jobs = ((fvocab, _appending(fvocab, append, lambda f: f.write(vocab.encode(encoding)))),)
    vecs = vectors.vectors
    blob, starts, ends = _encode_words(keys, encoding, forbid_space=binary)

    def rows(a, b):  # rows a..b of the file: a gather per chunk, never a reordered copy of all
        return vecs[a:b] if order is None else vecs[order[a:b]]

    def write(f):
        if format != "glove" and write_header:
            f.write(f"{n if total_vec is None else int(total_vec)} {d}\n".encode("ascii"))
        if binary:
            for a in range(0, n, _WRITE_CHUNK_ROWS * 8):
                b = min(n, a + _WRITE_CHUNK_ROWS * 8)
                v32 = np.ascontiguousarray(rows(a, b), dtype=np.float32)
                f.write(_core.format_binary(blob, starts[a:b], ends[a:b], v32))
        else:
            for a in range(0, n, _WRITE_CHUNK_ROWS):
                b = min(n, a + _WRITE_CHUNK_ROWS)
                f.write(_core.format_text(blob, starts[a:b], ends[a:b], rows(a, b)))

    atomic_write(path, _appending(path, append, write), *jobs)


def _appending(path, append, write):
    """``write``, preceded by the bytes already in ``path`` when appending."""
    if not append:
        return write

    def both(f):
        try:
            with open(path, "rb") as old:
                while chunk := old.read(1 << 20):
                    f.write(chunk)
        except FileNotFoundError:
            pass
        write(f)
    return both


def _vocab_text(keys, values, order):
    """The vocabulary file: ``"word value"`` lines for ``keys`` (already in file order), the
    values taken in ``order``; None values are left out."""
    if order is not None:
        values = values[order]
    # str() of a NumPy float is its shortest repr, what gensim writes; ints and objects as Python's
    values = list(values) if values.dtype.kind == "f" else values.tolist()
    return "".join(f"{k} {v}\n" for k, v in zip(keys, values) if v is not None)

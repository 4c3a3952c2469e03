"""Facebook fastText's ``.bin`` model file: the reader and the subword (character n-gram) vectors.

A ``.bin`` holds, after a header of hyper-parameters, the vocabulary (NUL-terminated words with
their counts), then the input matrix: ``nwords`` word rows followed by ``bucket`` n-gram rows.
fastText's vector for a word is the mean of its word row and the rows of its hashed character
n-grams; an out-of-vocabulary word gets the mean of its n-gram rows alone. The layout and the
arithmetic are those of fastText's ``dictionary.cc``/``fasttext.cc`` as gensim reproduces them
(``gensim/models/_fasttext_bin.py``, ``fasttext.py``, ``fasttext_inner.pyx``); the vectors equal
gensim's ``load_facebook_vectors`` bit for bit, including where gensim differs from fastText:

- the n-grams of a word are hashed over its UTF-8 bytes whatever ``encoding`` the file's words
  were decoded with (fastText hashes the raw bytes of the file), and
- a word's sum is divided by ``n + 1`` (fastText multiplies by ``1 / (n + 1)``, a rounding apart).

This module sits below :mod:`pyembed.vectors` (which cannot be imported from here without a
cycle): it reads the file into a :class:`FastTextModel` and provides :class:`SubwordVectors`, the
mixin that ``pyembed.vectors.FastTextVectors`` combines with ``Vectors``.
"""
from __future__ import annotations

import codecs
import mmap
import os
from typing import NamedTuple

import numpy as np

__all__ = ["FASTTEXT_MAGIC", "FastTextModel", "SubwordVectors", "is_fasttext_bin",
           "ngram_buckets", "read_fasttext_bin"]

#: the first int32 of a fastText model written since 2017 (fastText's FASTTEXT_FILEFORMAT_MAGIC)
FASTTEXT_MAGIC = 793712314

# fastText's hash: 32-bit FNV-1a, each byte sign-extended from int8 first (dictionary.cc casts
# the char to int8_t before uint32_t), which changes the hash of every non-ASCII byte.
_FNV_OFFSET = np.uint32(2166136261)
_FNV_PRIME = np.uint32(16777619)

# header fields after magic and version (new format) -- the old format has neither, its first
# two int32 are dim and ws
_NEW_HEADER = np.dtype([("dim", "<i4"), ("ws", "<i4"), ("epoch", "<i4"), ("min_count", "<i4"),
                        ("neg", "<i4"), ("word_ngrams", "<i4"), ("loss", "<i4"),
                        ("model", "<i4"), ("bucket", "<i4"), ("minn", "<i4"), ("maxn", "<i4"),
                        ("lr_update_rate", "<i4"), ("t", "<f8")])
_OLD_HEADER = np.dtype([(n, _NEW_HEADER.fields[n][0]) for n in _NEW_HEADER.names])
_VOCAB_HEAD = np.dtype([("size", "<i4"), ("nwords", "<i4"), ("nlabels", "<i4"),
                        ("ntokens", "<i8")])
_ENTRY_TAIL = 9  # int64 count + int8 entry type after each word's NUL
_CHUNK_WORDS = 8192  # words composed at once: bounds the (words, dim) gathers to a few MB


class FastTextModel(NamedTuple):
    """What :func:`read_fasttext_bin` reads: the hyper-parameters, the words in file order, their
    counts, the composed word vectors (nwords, dim) and the n-gram matrix (bucket, dim)."""
    words: list
    counts: np.ndarray
    vectors: np.ndarray
    vectors_ngrams: np.ndarray
    min_n: int
    max_n: int
    bucket: int
    params: dict


def _plausible_old_header(h):
    """True when an old-format header (no magic) has values fastText could have written: a
    text or word2vec file starts with ASCII, whose int32s are above 5e8."""
    return (0 < h["dim"] <= 100_000 and 0 < h["ws"] <= 100_000 and h["loss"] in (1, 2, 3)
            and h["model"] in (1, 2, 3) and 0 <= h["minn"] <= 1000 and 0 <= h["maxn"] <= 1000
            and h["bucket"] >= 0)


def is_fasttext_bin(path, format="auto"):
    """Whether ``load_vectors(path, format)`` should read ``path`` as a fastText ``.bin``:
    ``format="fasttext-bin"``, or ``"auto"`` and the file starts with fastText's magic number
    (or with a plausible header of the pre-2017 format, which had none)."""
    if format == "fasttext-bin":
        return True
    if format != "auto":
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(_OLD_HEADER.itemsize)
    except (OSError, TypeError, ValueError):
        return False  # the ordinary reader reports a missing or odd path
    if len(head) < 4:
        return False
    if int.from_bytes(head[:4], "little", signed=True) == FASTTEXT_MAGIC:
        return True
    return len(head) == _OLD_HEADER.itemsize and _plausible_old_header(
        np.frombuffer(head, _OLD_HEADER)[0])


class _Cursor:
    """Reads records from the mapped file, checking each against the bytes left."""

    def __init__(self, buf, path):
        self.buf, self.path, self.pos = buf, path, 0

    def need(self, nbytes, what):
        if nbytes < 0 or self.pos + nbytes > len(self.buf):
            raise ValueError(f"{self.path}: truncated or corrupt fastText model: {what} at byte "
                             f"{self.pos} needs {nbytes} bytes, {len(self.buf) - self.pos} left")

    def record(self, dtype, what):
        self.need(dtype.itemsize, what)
        rec = np.frombuffer(self.buf, dtype, 1, self.pos)[0]
        self.pos += dtype.itemsize
        return rec

    def fail(self, what):
        raise ValueError(f"{self.path}: truncated or corrupt fastText model: {what} (at byte "
                         f"{self.pos})")


def _read_vocab(cur, size, encoding):
    """The words and counts of the vocabulary (one find per word: the counts may hold NULs, so
    the word boundaries can only be found in order)."""
    buf, pos, find = cur.buf, cur.pos, cur.buf.find
    raw, starts = [], np.empty(size, np.int64)
    for i in range(size):
        end = find(b"\0", pos)
        if end < 0 or end + 1 + _ENTRY_TAIL > len(buf):
            cur.pos = pos
            cur.fail(f"vocabulary entry {i} of {size} is cut short (no end-of-word NUL, or "
                     "no count after it)")
        raw.append(buf[pos:end])
        starts[i] = end + 1
        pos = end + 1 + _ENTRY_TAIL
    cur.pos = pos
    u8 = np.frombuffer(buf, np.uint8)
    counts = u8[starts[:, None] + np.arange(8)].view("<i8").ravel()  # a gather: a copy
    kinds = u8[starts + 8]
    if np.any(kinds != 0):
        cur.fail(f"vocabulary entry {int(np.flatnonzero(kinds)[0])} is a label "
                 "(supervised models are not supported)")
    words = []
    for b in raw:
        try:
            words.append(b.decode(encoding))
        except UnicodeDecodeError:  # gensim too keeps the word, escaped, and goes on
            words.append(b.decode(encoding, errors="backslashreplace"))
    if len(set(words)) != len(words):
        seen = set()
        dup = next(w for w in words if w in seen or seen.add(w))
        cur.fail(f"word {dup!r} appears twice in the vocabulary")
    return words, counts


def _read_matrix(cur, new_format, what, rows, dim):
    """A (rows, dim) float32 matrix record, its claimed shape checked before it is read."""
    if new_format:
        quant = cur.record(np.dtype("u1"), f"{what} quantization flag")
        if quant:
            cur.fail(f"{what} is quantized (a .ftz model), which is not supported")
    shape = cur.record(np.dtype([("m", "<i8"), ("n", "<i8")]), f"{what} shape")
    if (int(shape["m"]), int(shape["n"])) != (rows, dim):
        cur.fail(f"{what} has shape ({int(shape['m'])}, {int(shape['n'])}), expected "
                 f"({rows}, {dim}) from the header")
    cur.need(rows * dim * 4, f"{what} of {rows} x {dim} float32")
    mat = np.frombuffer(cur.buf, "<f4", rows * dim, cur.pos).reshape(rows, dim)
    cur.pos += rows * dim * 4
    return mat


def read_fasttext_bin(path, encoding="utf-8"):
    """Read a fastText ``.bin`` model (either format) into a :class:`FastTextModel`.

    ``encoding`` decodes the words (gensim's ``load_facebook_vectors(path, encoding)``). A
    truncated or corrupt file raises ValueError naming the file, the record and its offset; every
    size the file claims is checked against the file's length before anything is allocated."""
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError):
        raise ValueError(f"encoding must name a codec, got {encoding!r}") from None
    path = os.fspath(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise ValueError(f"{path}: empty file, not a fastText model")
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        return _parse(mm, path, encoding)
    finally:
        try:
            mm.close()  # every array handed out is a copy
        except BufferError:  # a view held by an exception's frames: unmapped when collected
            pass


def _parse(mm, path, encoding):
    cur = _Cursor(mm, path)
    magic = cur.record(np.dtype("<i4"), "magic number")
    new_format = int(magic) == FASTTEXT_MAGIC
    if new_format:
        cur.record(np.dtype("<i4"), "version")
        h = cur.record(_NEW_HEADER, "header")
    else:
        cur.pos = 0
        if len(mm) < _OLD_HEADER.itemsize or not _plausible_old_header(
                np.frombuffer(mm, _OLD_HEADER, 1)[0]):
            cur.fail(f"neither fastText's magic number {FASTTEXT_MAGIC} nor a plausible header")
        h = cur.record(_OLD_HEADER, "header")
    params = {n: h[n].item() for n in _NEW_HEADER.names}
    dim, bucket, minn, maxn = (params[k] for k in ("dim", "bucket", "minn", "maxn"))
    if dim <= 0 or bucket < 0 or minn < 0 or maxn < 0:
        cur.fail(f"header has dim={dim}, bucket={bucket}, minn={minn}, maxn={maxn}")
    v = cur.record(_VOCAB_HEAD, "vocabulary header")
    nwords, vsize, nlabels = int(v["nwords"]), int(v["size"]), int(v["nlabels"])
    if nlabels != 0:
        cur.fail(f"{nlabels} labels: supervised models are not supported")
    if nwords < 0 or vsize != nwords:
        cur.fail(f"vocabulary claims {vsize} entries of which {nwords} words")
    params["ntokens"] = int(v["ntokens"])
    if new_format:
        # fastText writes -1 when the model was not pruned; the pairs follow the words
        prune = int(cur.record(np.dtype("<i8"), "pruned-index size"))
    else:
        prune = 0
    cur.need((1 + _ENTRY_TAIL) * nwords, f"vocabulary of {nwords} words")
    words, counts = _read_vocab(cur, nwords, encoding)
    if prune > 0:
        cur.need(8 * prune, f"pruned index of {prune} pairs")
        cur.pos += 8 * prune
    inp = _read_matrix(cur, new_format, "input matrix", nwords + bucket, dim)
    # the output matrix is not needed for vectors, but a model cut short inside it is corrupt
    if new_format:
        cur.record(np.dtype("u1"), "output matrix quantization flag")
    out = cur.record(np.dtype([("m", "<i8"), ("n", "<i8")]), "output matrix shape")
    if int(out["n"]) != dim or int(out["m"]) < 0:
        cur.fail(f"output matrix has shape ({int(out['m'])}, {int(out['n'])})")
    cur.need(int(out["m"]) * dim * 4, "output matrix")
    if cur.pos + int(out["m"]) * dim * 4 != len(mm):
        cur.fail(f"{len(mm) - cur.pos - int(out['m']) * dim * 4} bytes after the output matrix")
    ngrams = np.array(inp[nwords:], np.float32)
    vectors = compose(words, np.array(inp[:nwords], np.float32), ngrams, minn, maxn, bucket)
    return FastTextModel(words, counts, vectors, ngrams, minn, maxn, bucket, params)


def ngram_buckets(words, min_n, max_n, bucket):
    """The n-gram rows of ``words`` (strs) in fastText's order: (rows int64, counts int64 per
    word), the rows of word i being ``rows[sum(counts[:i]) : sum(counts[:i+1])]``.

    As fastText's ``computeSubwords``: the word is wrapped in ``<`` and ``>``, encoded to UTF-8,
    and every run of ``min_n``..``max_n`` characters (a character is a UTF-8 lead byte and its
    continuation bytes) is an n-gram, except the lone ``<`` and ``>``; its row is the FNV-1a hash
    of its bytes modulo ``bucket``. Vectorised over all n-grams of all words: the only loop is
    over byte positions within an n-gram."""
    n = len(words)
    if n == 0 or bucket <= 0 or max_n <= 0 or max_n < min_n:
        return np.zeros(0, np.int64), np.zeros(n, np.int64)
    enc = [("<" + w + ">").encode("utf-8") for w in words]
    blob = np.frombuffer(b"".join(enc), np.uint8)
    is_char = (blob & 0xC0) != 0x80
    cstart = np.flatnonzero(is_char)
    lens = np.fromiter(map(len, enc), np.int64, n)
    first_byte = np.cumsum(lens) - lens
    nchars = np.add.reduceat(is_char.astype(np.int64), first_byte)  # each word has >= 2 bytes
    max_n = min(max_n, int(nchars.max()))  # a corrupt max_n must not size the arrays below
    wid = np.repeat(np.arange(n), nchars)
    c = np.arange(cstart.size) - np.repeat(np.cumsum(nchars) - nchars, nchars)
    nch = nchars[wid][:, None]
    ln = np.arange(1, max_n + 1)[None, :]
    cc = c[:, None]
    ok = (ln >= max(min_n, 1)) & (cc + ln <= nch) & ~((ln == 1) & ((cc == 0) | (cc + 1 == nch)))
    g, k = np.nonzero(ok)  # row-major: by start character, then by length, as fastText
    ends = np.append(cstart, blob.size)
    start = cstart[g]
    length = ends[g + k + 1] - start
    sbytes = blob.view(np.int8).astype(np.uint32)  # sign-extends, as fastText's int8_t cast
    # longest n-grams first, so that byte j of every n-gram that has one is a prefix
    order = np.argsort(-length, kind="stable")
    start, length = start[order], length[order]
    live = np.searchsorted(-length, -np.arange(int(length[0]) if g.size else 0), side="left")
    hs = np.full(g.size, _FNV_OFFSET, np.uint32)
    for j, m in enumerate(live.tolist()):
        hs[:m] = (hs[:m] ^ sbytes[start[:m] + j]) * _FNV_PRIME
    h = np.empty_like(hs)
    h[order] = hs
    return h.astype(np.int64) % bucket, np.bincount(wid[g], minlength=n).astype(np.int64)


def compose(words, word_rows, ngrams, min_n, max_n, bucket, chunk_words=_CHUNK_WORDS):
    """The vectors of in-vocabulary words: (word row + its n-gram rows, summed in fastText's
    order in float32) / (n + 1), as gensim's ``adjust_vectors``; ``word_rows`` is overwritten.
    The words are taken ``chunk_words`` at a time, which bounds the temporary arrays."""
    if bucket == 0:
        return word_rows
    for a in range(0, len(words), chunk_words):
        rows, counts = ngram_buckets(words[a:a + chunk_words], min_n, max_n, bucket)
        acc = word_rows[a:a + counts.size]
        if not rows.size:
            continue
        # the words with the most n-grams first, so that step j adds to a prefix of them
        order = np.argsort(-counts, kind="stable")
        offs = (np.cumsum(counts) - counts)[order]
        active = np.searchsorted(-counts[order], -np.arange(int(counts.max())), side="left")
        part = acc[order]
        for j, m in enumerate(active.tolist()):
            part[:m] += ngrams[rows[offs[:m] + j]]
        part /= (counts[order] + 1).astype(np.float32)[:, None]
        acc[order] = part
    return word_rows


class SubwordVectors:
    """Mixin for ``Vectors``: out-of-vocabulary words get fastText's subword vector.

    Needs ``vectors_ngrams`` (bucket, dim), ``min_n``, ``max_n``, ``bucket`` beside the
    ``Vectors`` attributes. As gensim's ``FastTextKeyedVectors``: ``word in kv`` is True for any
    word when there are n-gram buckets (``word in kv.key_to_index`` asks the vocabulary); a word
    with no n-gram gets the zero vector."""

    def oov_vector(self, word, norm=False):
        """The subword vector of ``word`` (gensim's arithmetic: float32 sum in order, then
        divided by the number of n-grams, or by its norm when ``norm``)."""
        if self.bucket == 0:
            raise KeyError(f"Key {word!r} not present (the model has no n-gram buckets)")
        rows, _ = ngram_buckets([word], self.min_n, self.max_n, self.bucket)
        vec = np.zeros(self.vectors_ngrams.shape[1], np.float32)
        for r in rows.tolist():  # in order: gensim's float32 rounding
            vec += self.vectors_ngrams[r]
        if rows.size:
            vec = vec / np.linalg.norm(vec) if norm else vec / np.float32(rows.size)
        vec.setflags(write=False)
        return vec

    def _is_oov(self, key):
        return isinstance(key, str) and key not in self.key_to_index

    def __contains__(self, key):
        return self.bucket > 0 and isinstance(key, str) or key in self.key_to_index

    def get_vector(self, key, norm=False):
        if self._is_oov(key):
            return self.oov_vector(key, norm)
        return super().get_vector(key, norm)

    def __getitem__(self, key_or_keys):
        if isinstance(key_or_keys, str):
            return self.get_vector(key_or_keys)
        keys = list(key_or_keys)
        if not any(map(self._is_oov, keys)):
            return super().__getitem__(keys)
        return np.stack([self.get_vector(k) for k in keys]) if keys else \
            np.zeros((0, self.vector_size), self.vectors.dtype)

    def _subwords(self, items, norm):
        """``items`` (keys, vectors or (item, weight) pairs) with each out-of-vocabulary word
        replaced by its subword vector."""
        if isinstance(items, str) or (isinstance(items, np.ndarray) and items.ndim == 1):
            items = [items]
        out = []
        for it in items:
            if isinstance(it, tuple) and len(it) == 2 and self._is_oov(it[0]):
                it = (self.oov_vector(it[0], norm), it[1])
            elif self._is_oov(it):
                it = self.oov_vector(it, norm)
            out.append(it)
        return out

    def get_mean_vector(self, keys, weights=None, pre_normalize=True, post_normalize=False,
                        ignore_missing=True):
        """``Vectors.get_mean_vector`` with out-of-vocabulary words (gensim's ``__contains__``
        admits them there)."""
        return super().get_mean_vector(self._subwords(keys, pre_normalize), weights,
                                       pre_normalize, post_normalize, ignore_missing)

    def most_similar(self, positive=None, negative=None, topn=10, *args, **kwargs):
        """``Vectors.most_similar``, an out-of-vocabulary word standing for its unit subword
        vector (as gensim's ``get_mean_vector`` normalises each key's vector)."""
        return super().most_similar(None if positive is None else self._subwords(positive, True),
                                    None if negative is None else self._subwords(negative, True),
                                    topn, *args, **kwargs)

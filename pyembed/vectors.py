"""pyembed.Vectors: a word -> vector table and the questions people ask it (gensim's KeyedVectors).

Queries follow gensim 4's arithmetic step for step (same neighbours in the same order, same
scores), vectorised: one BLAS matrix-vector (or, batched, matrix-matrix) product against the raw
vectors divided by cached row norms -- the normalised matrix is never materialised -- and
``argpartition`` for the top k (batched queries: a C top-k that divides by the norms as it
scans, csrc/kernels/topk.c).
"""
from __future__ import annotations

import itertools
import os
from collections.abc import Hashable, Iterable, Sequence

import numpy as np
from numpy.typing import ArrayLike

from . import evaluation, fasttext, kvedit, kvstore, neighbours, vecattr
from ._checks import is_int
from ._util import fspath
from .io import read_vectors
from .neighbours import KEY_TYPES, ensure_list, hashable, top, unitvec
from .vocab import Vocab
from .writers import write_vectors

__all__ = ["FastTextVectors", "Vectors", "load_vectors", "save_vectors"]

#: a key of a Vectors: a word, or any hashable (an int that is not a key is a row number)
Key = Hashable


class Vectors:
    """Vectors keyed by words, like ``gensim.models.KeyedVectors``.

    Args:
        keys: the words (or any hashable keys), one per row, unique.
        vectors: (len(keys), vector_size) array; float32 or float64 is kept, anything else becomes
            float32.
        copy: copy ``vectors`` (default) or use it as is when already C-contiguous float.

    Attributes: ``index_to_key`` (list), ``key_to_index`` (dict), ``vectors`` (2-D array),
    ``vector_size``, ``norms`` (cached row norms; call :meth:`fill_norms(force=True)
    <fill_norms>` after changing ``vectors`` in place), ``expandos`` (per-key attributes, one
    array each, e.g. ``"count"``: see :meth:`get_vecattr`).

    Example:
        >>> import numpy as np, pyembed
        >>> kv = pyembed.Vectors(["a", "b", "c"], np.array([[1, 0], [0.9, 0.1], [0, 1]], np.float32))
        >>> [w for w, s in kv.most_similar("a", topn=2)]
        ['b', 'c']
        >>> round(kv.similarity("a", "c"), 6)
        0.0
    """

    def __init__(self, keys: Iterable[Hashable], vectors: ArrayLike, *, copy: bool = True) -> None:
        arr = np.asarray(vectors)
        if arr.dtype not in (np.float32, np.float64):
            if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
                raise TypeError(f"vectors must be numeric, got dtype {arr.dtype}")
            arr = arr.astype(np.float32)
        if arr.ndim != 2:
            raise ValueError(f"vectors must be 2-D (rows, vector_size), got shape {arr.shape}")
        keys = list(keys)
        if len(keys) != arr.shape[0]:
            raise ValueError(f"{len(keys)} keys but {arr.shape[0]} vectors")
        key_to_index = dict(zip(keys, range(len(keys))))
        if len(key_to_index) != len(keys):
            seen = set()
            dup = next(k for k in keys if k in seen or seen.add(k))
            raise ValueError(f"duplicate key {dup!r}: keys must be unique")
        self.index_to_key = keys
        self.key_to_index = key_to_index
        self.vectors = np.array(arr, order="C", copy=True) if copy else np.ascontiguousarray(arr)
        self.norms = None
        self.expandos = {}

    @classmethod
    def _trusted(cls, keys, vectors, key_to_index, expandos=None):
        """Wrap already-checked parts (the loaders: unique keys, 2-D float C-contiguous
        vectors, key_to_index built from keys, one value per key in each expando) without
        building the dict again."""
        obj = cls.__new__(cls)
        obj.index_to_key = keys
        obj.key_to_index = key_to_index
        obj.vectors = vectors
        obj.norms = None
        obj.expandos = {} if expandos is None else expandos
        return obj

    # -- basics ------------------------------------------------------------------------------------
    @property
    def vector_size(self) -> int:
        return self.vectors.shape[1]

    def __len__(self):
        return len(self.index_to_key)

    def __contains__(self, key):
        return key in self.key_to_index

    @property
    def vocab(self) -> Vocab:
        """The keys as a :class:`pyembed.Vocab` (ids are rows; an unknown word encodes to
        ``"<unk>"`` when that is a key, else raises KeyError): the vocabulary
        ``Embedding.from_pretrained(vectors)`` keeps. A new Vocab on each access."""
        return Vocab(self.index_to_key, specials=(), unk_token="<unk>")

    def has_index_for(self, key):
        return self.get_index(key, -1) >= 0

    def __repr__(self):
        return f"Vectors({len(self)} keys, vector_size={self.vector_size}, dtype={self.vectors.dtype})"

    def get_index(self, key: Key, default: int | None = None) -> int:
        """The row of ``key``; an int that is not a key is taken as a row number (gensim)."""
        val = self.key_to_index.get(key, -1) if isinstance(key, KEY_TYPES) or hashable(key) else -1
        if val >= 0:
            return val
        if is_int(key) and 0 <= key < len(self):
            return int(key)
        if default is not None:
            return default
        raise KeyError(f"Key {key!r} not present")

    def _indices(self, keys):
        """Rows of many keys at once (KeyError naming the first missing one)."""
        get = self.key_to_index.get
        try:
            idx = np.fromiter(map(get, keys, itertools.repeat(-1)), np.int64, len(keys))
        except TypeError:  # an unhashable key (a vector): not a word
            idx = np.fromiter(map(lambda k: get(k, -1) if hashable(k) else -1, keys), np.int64)
        bad = np.flatnonzero(idx < 0)
        for b in bad.tolist():  # only keys that are not words: ints as row numbers
            idx[b] = self.get_index(keys[b])
        return idx

    def get_vector(self, key: Key, norm: bool = False) -> np.ndarray:
        """The vector of ``key`` (read-only view), unit length when ``norm``."""
        i = self.get_index(key)
        if norm:
            self.fill_norms()
            res = self.vectors[i] / self.norms[i]
        else:
            res = self.vectors[i]
        res.setflags(write=False)
        return res

    def __getitem__(self, key_or_keys):
        """A vector for one key, a (len, vector_size) array for a list of keys."""
        if isinstance(key_or_keys, KEY_TYPES):
            return self.get_vector(key_or_keys)
        try:
            keys = list(key_or_keys)
        except TypeError:  # neither a key nor a list of keys (3.5): a missing key, as gensim
            raise KeyError(f"Key {key_or_keys!r} not present") from None
        return np.take(self.vectors, self._indices(keys), axis=0)

    def __setitem__(self, keys, weights):
        """``kv["w"] = vec`` or ``kv[["a", "b"]] = rows``: add or replace (gensim's
        ``add_vectors(..., replace=True)``; a list is many keys, anything else one key)."""
        if not isinstance(keys, list):
            keys = [keys]
            weights = np.asarray(weights).reshape(1, -1)
        kvedit.add_vectors(self, keys, weights, replace=True)

    def add_vectors(self, keys, weights, extras=None, replace=False) -> None:
        """Append keys and their rows; a key already there keeps its vector unless ``replace``
        (gensim). ``extras``: ``{attr: values}``, per-key attributes of the keys added."""
        kvedit.add_vectors(self, keys, weights, extras, replace)

    def add_vector(self, key: Key, vector: ArrayLike) -> int:
        """Add one key (a key already there keeps its vector, as gensim); its row number."""
        shape = np.shape(vector)
        if shape != (self.vector_size,):
            raise ValueError(f"vector must have shape ({self.vector_size},) for vector_size "
                             f"{self.vector_size}, got shape {shape}")
        kvedit.add_vectors(self, [key], vector)
        return self.key_to_index[key]

    def unit_normalize_all(self) -> None:
        """Scale every row to unit length, in place (gensim); norms become ones."""
        kvedit.unit_normalize_all(self)

    def vectors_for_all(self, keys: Iterable[Key], allow_inference: bool = True,
                        copy_vecattrs: bool = False) -> Vectors:
        """A new Vectors of the given keys that are here (each once, in the given order), as
        gensim's; ``copy_vecattrs`` copies the per-key attributes."""
        found, rows, expandos = kvedit.select(self, keys, allow_inference, copy_vecattrs)
        return Vectors._trusted(found, rows, dict(zip(found, range(len(found)))), expandos)

    def fill_norms(self, force: bool = False) -> None:
        """Compute (once; again with ``force``) the L2 norm of every row, as gensim does."""
        if self.norms is None or force:
            self.norms = np.linalg.norm(self.vectors, axis=1)

    def get_normed_vectors(self) -> np.ndarray:
        """A new array of the unit-length rows."""
        self.fill_norms()
        return self.vectors / self.norms[..., np.newaxis]

    def get_mean_vector(self, keys, weights=None, pre_normalize=True, post_normalize=False,
                        ignore_missing=True):
        """Weighted mean of the keys' vectors (gensim's arithmetic)."""
        if len(keys) == 0:
            raise ValueError("cannot compute mean with no input")
        if isinstance(weights, list):
            weights = np.array(weights, dtype=self.vectors.dtype)
        if weights is None:
            weights = np.ones(len(keys), dtype=self.vectors.dtype)
        if len(keys) != weights.shape[0]:
            raise ValueError("keys and weights array must have same number of elements")
        mean = np.zeros(self.vector_size, self.vectors.dtype)
        total_weight = 0
        for idx, key in enumerate(keys):  # the few query keys, not the table's rows
            if isinstance(key, np.ndarray):
                mean += weights[idx] * key
                total_weight += abs(weights[idx])
            elif self.has_index_for(key):
                mean += weights[idx] * self.get_vector(key, norm=pre_normalize)
                total_weight += abs(weights[idx])
            elif not ignore_missing:
                raise KeyError(f"Key {key!r} not present in vocabulary")
        if total_weight > 0:
            mean = mean / total_weight
        if post_normalize:
            mean = unitvec(mean).astype(np.float32)
        return mean

    # -- per-key attributes (pyembed/vecattr.py) ----------------------------------------------------
    def set_vecattr(self, key, attr, val):
        """Set attribute ``attr`` of ``key`` to ``val`` (gensim), e.g. ``set_vecattr("the",
        "count", 1061396)``; the other keys read 0 until set."""
        vecattr.set_value(self.expandos, len(self), self.get_index(key), attr, val)

    def get_vecattr(self, key, attr):
        """Attribute ``attr`` of ``key`` (gensim): ``get_vecattr("the", "count")`` is the word's
        count from the vocabulary file given to :func:`pyembed.load_vectors` (None for a word
        the file lacks), or gensim's invented ``vocab_size - row`` without one."""
        return vecattr.column(self.expandos, len(self), attr)[self.get_index(key)]

    # -- neighbours ----------------------------------------------------------------------------------
    def _clip(self, restrict_vocab, clip_start=0, clip_end=None):
        clip_end = clip_end or len(self.vectors)
        if restrict_vocab:
            clip_start, clip_end = 0, int(restrict_vocab)
        return clip_start, clip_end

    def most_similar(self, positive=None, negative=None, topn: int | None = 10,
                     clip_start: int = 0, clip_end: int | None = None,
                     restrict_vocab: int | None = None) -> list[tuple[Key, float]] | np.ndarray:
        """The ``topn`` keys most cosine-similar to the mean of ``positive`` minus ``negative``.

        Items are keys (words or row ids), vectors, or ``(item, weight)`` pairs (default weight 1
        for positive, -1 for negative); the query keys themselves are not returned. ``topn=None``
        returns the similarities to every key. ``restrict_vocab=n`` searches the first n rows.
        Same results as ``gensim.models.KeyedVectors.most_similar``.

        >>> kv.most_similar(positive=["king", "woman"], negative=["man"], topn=1)  # doctest: +SKIP
        [('queen', 0.71)]
        """
        if neighbours.no_results(topn):
            return []
        positive = ensure_list(positive)
        negative = ensure_list(negative)
        self.fill_norms()
        clip_start, clip_end = self._clip(restrict_vocab, clip_start, clip_end)
        keys = []
        weight = np.concatenate((np.ones(len(positive)), -1.0 * np.ones(len(negative))))
        for idx, item in enumerate(positive + negative):
            if isinstance(item, KEY_TYPES + (np.ndarray,)):
                keys.append(item)
            else:
                keys.append(item[0])
                weight[idx] = item[1]
        if all(isinstance(k, KEY_TYPES) for k in keys):
            # gensim's get_mean_vector, inlined: mean(float32) += w * unit row, in key order
            all_keys = [self.get_index(k) for k in keys]
            if not keys:
                raise ValueError("cannot compute mean with no input")
            mean = np.zeros(self.vector_size, self.vectors.dtype)
            wl = weight.tolist()
            for i, w in zip(all_keys, wl):
                mean += np.float64(w) * (self.vectors[i] / self.norms[i])
            total = sum(map(abs, wl))  # left to right, as gensim
            if total > 0:
                mean = mean / np.float64(total)
            mean = unitvec(mean).astype(np.float32)
        else:
            mean = self.get_mean_vector(keys, weight, pre_normalize=True, post_normalize=True,
                                        ignore_missing=False)
            all_keys = [self.get_index(k) for k in keys
                        if isinstance(k, KEY_TYPES) and self.has_index_for(k)]
        dists = np.dot(self.vectors[clip_start:clip_end], mean) / self.norms[clip_start:clip_end]
        if not topn:
            return dists
        best = top(dists, topn + len(all_keys))
        exclude = set(all_keys)
        itk = self.index_to_key
        result = [(itk[i + clip_start], float(dists[i])) for i in best.tolist()
                  if (i + clip_start) not in exclude]
        return result[:topn]

    def similar_by_key(self, key: Key, topn: int | None = 10,
                       restrict_vocab: int | None = None) -> list[tuple[Key, float]]:
        return self.most_similar(positive=[key], topn=topn, restrict_vocab=restrict_vocab)

    similar_by_word = similar_by_key

    def similar_by_vector(self, vector: ArrayLike, topn: int | None = 10,
                          restrict_vocab: int | None = None) -> list[tuple[Key, float]]:
        return self.most_similar(positive=[vector], topn=topn, restrict_vocab=restrict_vocab)

    def _query_matrix(self, queries):
        """Unit query rows (q, d) float32 for keys/vectors, and each key's own row (or -1)."""
        return neighbours.query_matrix(self, queries, self._indices)

    def most_similar_batch(self, queries, topn: int = 10,
                           restrict_vocab: int | None = None) -> list[list[tuple[Key, float]]]:
        """``most_similar`` for many single queries (keys or vectors, or a 2-D array of vectors)
        with one matrix-matrix product and a C top-k: a list with one ``[(key, score), ...]``
        per query, the query key itself left out. Scores equal the one-at-a-time ones to
        float32 rounding (a matrix product sums in another order than a matrix-vector one);
        equal scores are ordered by row (gensim leaves their order to NumPy's sort)."""
        if neighbours.no_results(topn):
            return [[] for _ in range(len(queries))]
        m, own = self._query_matrix(queries)
        return neighbours.top_batch(self, m, own, topn, *self._clip(restrict_vocab))

    def most_similar_cosmul(self, positive=None, negative=None, topn: int | None = 10,
                            restrict_vocab: int | None = None) -> list[tuple[Key, float]]:
        """3CosMul of Levy & Goldberg (2014), eq. (4) with cosines shifted to [0, 1]: the keys
        maximising prod(pos sims) / (prod(neg sims) + 1e-6). Same as gensim's (which ignores
        ``restrict_vocab``; here it limits the search to the first rows)."""
        return neighbours.most_similar_cosmul(self, positive, negative, topn,
                                              *self._clip(restrict_vocab))

    def analogy(self, a: Key, b: Key, c: Key, topn: int = 1,
                restrict_vocab: int | None = None) -> list[tuple[Key, float]]:
        """``a`` is to ``b`` as ``c`` is to ...? The keys nearest ``b - a + c`` (3CosAdd), e.g.
        ``analogy("man", "king", "woman")`` -> ``[("queen", 0.7...)]``."""
        return self.most_similar(positive=[b, c], negative=[a], topn=topn,
                                 restrict_vocab=restrict_vocab)

    # -- pairs and sets -------------------------------------------------------------------------------
    def similarity(self, w1: Key, w2: Key) -> float:
        """Cosine similarity of two keys."""
        return float(np.dot(unitvec(self[w1]), unitvec(self[w2])))

    def n_similarity(self, ws1: Sequence[Key], ws2: Sequence[Key]) -> float:
        if not (len(ws1) and len(ws2)):
            raise ZeroDivisionError("At least one of the passed list is empty.")
        m1 = self.get_mean_vector(ws1, pre_normalize=False)
        m2 = self.get_mean_vector(ws2, pre_normalize=False)
        return float(np.dot(unitvec(m1), unitvec(m2)))

    def distance(self, w1: Key, w2: Key) -> float:
        return 1 - self.similarity(w1, w2)

    @staticmethod
    def cosine_similarities(vector_1, vectors_all):
        norm = np.linalg.norm(vector_1)
        all_norms = np.linalg.norm(vectors_all, axis=1)
        return np.dot(vectors_all, vector_1) / (norm * all_norms)

    def distances(self, word_or_vector: Key | ArrayLike,
                  other_words: Sequence[Key] = ()) -> np.ndarray:
        """Cosine distances from a key or vector to ``other_words`` (default: every key)."""
        if isinstance(word_or_vector, KEY_TYPES):
            v = self.get_vector(word_or_vector)
        else:
            v = np.asarray(word_or_vector)
        if not other_words:
            others = self.vectors
        else:
            others = np.take(self.vectors, self._indices(list(other_words)), axis=0)
        return 1 - self.cosine_similarities(v, others)

    def rank_by_centrality(self, words, use_norm=True):
        """(similarity to the centroid, word) pairs, most central first (gensim)."""
        return neighbours.rank_by_centrality(self, words, use_norm)

    def doesnt_match(self, words: Sequence[Key]) -> Key:
        """The word furthest from the mean of all of them."""
        return self.rank_by_centrality(words)[-1][1]

    def closer_than(self, key1: Key, key2: Key) -> list[Key]:
        """The keys closer to ``key1`` than ``key2`` is (row order, ``key1`` left out)."""
        return kvedit.closer_than(self, key1, key2)

    def rank(self, key1: Key, key2: Key) -> int:
        """1 + the number of keys closer to ``key1`` than ``key2`` (gensim)."""
        return len(kvedit.closer_than(self, key1, key2)) + 1

    def most_similar_to_given(self, key1: Key, keys_list: Sequence[Key]) -> Key:
        """The key of ``keys_list`` most similar to ``key1``."""
        return kvedit.most_similar_to_given(self, key1, keys_list)

    def relative_cosine_similarity(self, wa: Key, wb: Key, topn: int = 10) -> float:
        """cos(wa, wb) / the sum of wa's top-``topn`` cosines (Leeuwenberg et al., 2016)."""
        return kvedit.relative_cosine_similarity(self, wa, wb, topn)

    # -- evaluation (pyembed/evaluation.py) -----------------------------------------------------------
    def evaluate_word_analogies(self, analogies, restrict_vocab=300000, case_insensitive=True,
                                dummy4unknown=False, similarity_function="most_similar"):
        """Accuracy on a questions-words file (``: section`` lines, then ``a b c d`` lines asking
        a:b :: c:d), as gensim (the word2vec ``compute-accuracy`` rules: only the first
        ``restrict_vocab`` words, case-insensitive, 3CosAdd over the top 5). All questions are
        answered with one matrix product. Returns ``(score, sections)`` like gensim.
        ``similarity_function`` is accepted and, as in gensim 4.4, not used: 3CosAdd always."""
        if not isinstance(similarity_function, str):
            raise TypeError(f"similarity_function must be a method name (str), got "
                            f"{similarity_function!r}")
        return evaluation.evaluate_word_analogies(self, analogies, restrict_vocab, case_insensitive,
                                                  dummy4unknown)

    def evaluate_word_pairs(self, pairs, delimiter="\t", encoding="utf8", restrict_vocab=300000,
                            case_insensitive=True, dummy4unknown=False):
        """Correlation with human similarity judgements (e.g. WordSim-353, SimLex-999): a file of
        ``word1<TAB>word2<TAB>score`` lines, ``#`` comments. Returns ``((pearson_r, p_value),
        (spearman_rho, p_value), oov_ratio_percent)`` as gensim (computed with NumPy, no SciPy)."""
        return evaluation.evaluate_word_pairs(self, pairs, delimiter, encoding, restrict_vocab,
                                              case_insensitive, dummy4unknown)

    # -- files ----------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, format: str = "word2vec", binary: bool = False,
             **kwargs) -> None:
        """Write to ``path`` (see :func:`pyembed.save_vectors`: ``fvocab=`` also writes the
        counts; rows go most frequent first, as gensim)."""
        save_vectors(self, path, format=format, binary=binary, **kwargs)

    def save_word2vec_format(self, fname, fvocab=None, binary=False, total_vec=None,
                             write_header=True, prefix="", append=False, sort_attr="count",
                             **kwargs):
        """gensim's signature: word2vec text (or binary) to ``fname``, counts to ``fvocab``."""
        self.save(fname, format="word2vec", binary=binary, fvocab=fvocab, total_vec=total_vec,
                  write_header=write_header, prefix=prefix, append=append, sort_attr=sort_attr,
                  **kwargs)

    @classmethod
    def load(cls, path: str | os.PathLike, format: str = "auto", **kwargs) -> Vectors:
        """Read ``path`` (see :func:`pyembed.load_vectors`; ``fvocab=`` reads word counts; a
        ``format="native"`` save takes ``mmap="r"``, as gensim's ``KeyedVectors.load``)."""
        return load_vectors(path, format=format, **kwargs)

    @classmethod
    def load_word2vec_format(cls, fname, fvocab=None, binary=None, encoding="utf8",
                             unicode_errors="strict", limit=None, datatype=None, no_header=False,
                             **kwargs):
        """gensim's signature: a word2vec file (text or binary, detected when ``binary`` is
        None) with counts from ``fvocab``."""
        return cls.load(fname, format="word2vec", binary=binary, fvocab=fvocab, encoding=encoding,
                        unicode_errors=unicode_errors, limit=limit, datatype=datatype,
                        no_header=no_header, **kwargs)


def load_vectors(path: str | os.PathLike, format: str = "auto", **options) -> Vectors:
    """Read a word-vector file into a :class:`Vectors`: word2vec text or binary, GloVe, fastText
    ``.vec`` or safetensors. ``format`` and the options (``binary``, ``limit``, ``dtype``,
    ``unicode_errors``, ``encoding``, ``fvocab``: the word counts) are those of
    :func:`pyembed.io.read_vectors`, as in gensim's ``load_word2vec_format``. A fastText ``.bin``
    model (``format="fasttext-bin"``, or found by its header; option ``encoding``) gives a
    :class:`FastTextVectors`, as gensim's ``load_facebook_vectors``.

    Example:
        >>> import pyembed, tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "v.txt"
        >>> _ = p.write_text("2 3\\ncat 0.1 0.2 0.3\\ndog 0.1 0.25 0.3\\n")
        >>> kv = pyembed.load_vectors(p)
        >>> kv.most_similar("cat", topn=1)[0][0]
        'dog'

    ``format="native"`` (detected by ``"auto"``) reads what ``save_vectors(format="native")``
    wrote, exactly, with ``mmap=`` (None, ``"r"``, ``"r+"``, ``"c"``) to memory-map the matrix.
    """
    # binary= says the file is word2vec's: no guess of another format then (fastText's old
    # format has no magic number; a native save's main file is JSON text)
    said_word2vec = format == "auto" and options.get("binary") is not None
    if format == "native" or (not said_word2vec and format == "auto" and kvstore.is_native(path)):
        _refuse_options(path, "a native pyembed save", options, "mmap")
        keys, vecs, key_to_index, expandos, norms = kvstore.load_native(path, **options)
        kv = Vectors._trusted(keys, vecs, key_to_index, expandos)
        kv.norms = norms
        return kv
    if options.get("mmap") is not None:
        raise ValueError(f"mmap={options['mmap']!r}: only a format='native' save can be "
                         f"memory-mapped")
    options.pop("mmap", None)
    if not said_word2vec and fasttext.is_fasttext_bin(path, format):
        _refuse_options(path, "a fastText .bin model", options, "encoding")
        return FastTextVectors.from_model(fasttext.read_fasttext_bin(path, **options))
    return Vectors._trusted(*read_vectors(path, format, **options))


def _refuse_options(path, what, options, allowed):
    """A ValueError naming the word2vec options given for a file that is ``what``."""
    other = sorted(k for k, v in options.items() if k != allowed and v is not None)
    if other:
        raise ValueError(f"{fspath(path)} is {what}: option(s) {other} apply to word2vec, GloVe "
                         f"and fastText .vec files only (pass format='word2vec' to read it as one)")


class FastTextVectors(fasttext.SubwordVectors, Vectors):
    """A fastText ``.bin`` model's vectors (gensim's ``FastTextKeyedVectors``): a Vectors whose
    out-of-vocabulary words get their subword vector (see :mod:`pyembed.fasttext`)."""

    @classmethod
    def from_model(cls, m):
        kv = cls._trusted(m.words, m.vectors, dict(zip(m.words, range(len(m.words)))),
                          {"count": m.counts})
        kv.vectors_ngrams, kv.min_n, kv.max_n = m.vectors_ngrams, m.min_n, m.max_n
        kv.bucket = m.bucket
        return kv


def save_vectors(vectors: Vectors, path: str | os.PathLike, format: str = "word2vec",
                 binary: bool = False, **options) -> None:
    """Write ``vectors`` to ``path`` (to a temporary file, then renamed): ``format`` and the
    options (``fvocab``: also the word counts, ``sort_attr``, ``encoding``, ``tensor_name``)
    are those of :func:`pyembed.writers.write_vectors`, as in gensim's ``save_word2vec_format``.
    ``format="native"``: the whole Vectors (keys, matrix, per-key attributes, norms) in
    ``path`` and ``.npy`` files beside it, read back exactly by :func:`load_vectors`."""
    if not isinstance(vectors, Vectors):
        raise TypeError(f"vectors must be a pyembed.Vectors, got {type(vectors).__name__}")
    if format == "native":
        if binary or options:
            raise ValueError(f"format='native' takes no other options, got binary={binary!r}, "
                             f"{sorted(options)}")
        kvstore.save_native(vectors, path)
        return
    write_vectors(vectors, path, format, binary, **options)

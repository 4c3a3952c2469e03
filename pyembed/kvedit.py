"""The rest of gensim's ``KeyedVectors`` on a :class:`pyembed.Vectors`: growing and editing the
table (``add_vectors``, item assignment, ``unit_normalize_all``, ``vectors_for_all``) and the
questions about one key's neighbourhood (``closer_than``, ``rank``, ``most_similar_to_given``,
``relative_cosine_similarity``).

The functions take the Vectors as their first argument; the gensim API is the methods of the
same names, which call these. Where gensim leaves the table inconsistent (stale norms after an
addition, per-key attributes one row short) these keep it whole: see DIFFERENCES-gensim.md.
"""
from collections.abc import Iterable

import numpy as np

from . import vecattr
from ._checks import check_int

__all__ = ["add_vectors", "unit_normalize_all", "select", "closer_than",
           "most_similar_to_given", "relative_cosine_similarity"]


def _rows(weights, n, d, dtype):
    """``weights`` (a list of 1-D vectors or a 2-D array) as an (n, d) array of ``dtype``,
    ValueError naming the shape otherwise."""
    arr = np.asarray(weights)
    if arr.ndim == 1 and n == 1:
        arr = arr.reshape(1, -1)
    if arr.shape != (n, d):
        raise ValueError(f"weights must be ({n}, {d}) for {n} keys of vector_size {d}, "
                         f"got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"weights must be numeric, got dtype {arr.dtype}")
    return arr.astype(dtype, copy=False)


def add_vectors(kv, keys, weights, extras=None, replace=False):
    """gensim's ``add_vectors``: append the keys not yet there with their rows; a key already
    there keeps its vector unless ``replace``. ``extras``: ``{attr: values}``, one value per
    key, set as per-key attributes. Everything is checked before anything changes; the
    cached norms are dropped (gensim keeps the stale ones)."""
    single = isinstance(keys, (str, int, np.integer))
    keys = [keys] if single else list(keys)
    n, d = len(keys), kv.vector_size
    rows = _rows(weights, n, d, kv.vectors.dtype)
    extras = {} if extras is None else {a: np.asarray(v) for a, v in extras.items()}
    for attr, vals in extras.items():
        if vals.shape != (n,):
            raise ValueError(f"extras[{attr!r}] must hold one value per key ({n}), "
                             f"got shape {vals.shape}")
    if len(set(keys)) != n:
        seen = set()
        dup = next(k for k in keys if k in seen or seen.add(k))
        raise ValueError(f"duplicate key {dup!r} among the keys to add")
    have = np.fromiter((k in kv.key_to_index for k in keys), bool, n)
    new = np.flatnonzero(~have)
    old_n = len(kv)
    if new.size:
        kv.vectors = np.concatenate((kv.vectors, rows[new]))
        for i, pos in enumerate(new.tolist()):
            kv.key_to_index[keys[pos]] = old_n + i
            kv.index_to_key.append(keys[pos])
        for attr, col in list(kv.expandos.items()):  # grow: zeros (None for objects)
            grown = np.zeros(len(kv), col.dtype)
            grown[:old_n] = col
            kv.expandos[attr] = grown
    targets = [kv.key_to_index[k] for k in keys] if replace else [old_n + i for i in range(new.size)]
    take = np.arange(n) if replace else new
    if replace and have.any():
        kv.vectors[np.asarray(targets)[have]] = rows[have]
    for attr, vals in extras.items():
        for row, val in zip(targets, vals[take].tolist()):
            vecattr.set_value(kv.expandos, len(kv), row, attr, val)
    kv.norms = None


def unit_normalize_all(kv):
    """Scale every row to unit length in place (gensim); the norms become ones."""
    kv.fill_norms()
    kv.vectors /= kv.norms[..., np.newaxis]
    kv.norms = np.ones(len(kv.vectors))


def select(kv, keys, allow_inference=True, copy_vecattrs=False):
    """The parts of gensim's ``vectors_for_all``: (keys, rows, expandos) for the keys that are
    there, first occurrence of each, in the given order; ``count`` is gensim's invented
    descending count unless ``copy_vecattrs`` copies the attributes."""
    # a Vectors infers nothing; as gensim, allow_inference also takes ints as row numbers
    there = kv.has_index_for if allow_inference else kv.key_to_index.__contains__
    if isinstance(keys, (str, bytes)) or not isinstance(keys, Iterable):
        raise TypeError(f"keys must be an iterable of keys, got {type(keys).__name__} "
                        f"{str(repr(keys))[:80]}")
    found = list(dict.fromkeys(k for k in keys if there(k)))
    idx = np.array([kv.get_index(k) for k in found], np.int64)
    n = len(found)
    expandos = {"count": np.arange(n, 0, -1, dtype=np.int64)}
    if copy_vecattrs:
        for attr, col in kv.expandos.items():
            expandos[attr] = vecattr.column(kv.expandos, len(kv), attr)[idx].copy()
    rows = np.ascontiguousarray(np.take(kv.vectors, idx, axis=0).reshape(n, kv.vector_size))
    return found, rows, expandos


def closer_than(kv, key1, key2):
    """The keys closer to ``key1`` than ``key2`` is, in row order, ``key1`` left out."""
    dist = kv.distances(key1)
    i1, i2 = kv.get_index(key1), kv.get_index(key2)
    return [kv.index_to_key[i] for i in np.flatnonzero(dist < dist[i2]).tolist() if i != i1]


def most_similar_to_given(kv, key1, keys_list):
    """The key of ``keys_list`` most similar to ``key1`` (the first of equals)."""
    if len(keys_list) == 0:
        raise ValueError(f"keys_list is empty: no key to choose for {key1!r}")
    return keys_list[int(np.argmax([kv.similarity(key1, k) for k in keys_list]))]


def relative_cosine_similarity(kv, wa, wb, topn=10):
    """Leeuwenberg et al. (2016), eq. (1): cos(wa, wb) over the sum of wa's top-n cosines."""
    topn = check_int("topn", topn, 1)
    sims = kv.similar_by_word(wa, topn)
    if not sims:
        raise ValueError("Cannot calculate relative cosine similarity without any similar words.")
    return float(kv.similarity(wa, wb)) / sum(sim for _, sim in sims)

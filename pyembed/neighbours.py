"""The scoring arithmetic behind :class:`pyembed.Vectors`' neighbour queries, step for step as
gensim 4 does it (same NumPy calls, so equal scores come out in the same order): unit vectors,
the top k, 3CosMul and centrality. The Vectors methods of the same names call these.
"""
import math
import warnings

import numpy as np

from . import _core
from ._checks import is_int

__all__ = ["KEY_TYPES", "unitvec", "top", "ensure_list", "hashable", "most_similar_cosmul",
           "rank_by_centrality", "query_matrix", "top_batch"]

#: what a single key is (a list or a 1-D array is several, or a vector)
KEY_TYPES = (str, int, np.integer)


def unitvec(vec):
    """gensim.matutils.unitvec for a dense vector: scaled in float64, returned in vec's dtype."""
    v64 = np.asarray(vec, dtype=np.float64)
    n = math.sqrt(float(np.dot(v64, v64))) if v64.size else 0.0
    if n > 0.0:
        return (v64 * (1.0 / n)).astype(vec.dtype)
    return vec


def top(x, topn):
    """gensim.matutils.argsort(x, topn, reverse=True): indices of the topn largest, ordered
    (the same NumPy calls, so equal scores come out in the same order as gensim's)."""
    x = -x
    if topn <= 0:
        return np.zeros(0, np.int64)
    if topn >= x.size:
        return np.argsort(x)[:topn]
    part = np.argpartition(x, topn)[:topn]
    return part.take(np.argsort(x.take(part)))


def no_results(topn) -> bool:
    """Whether ``topn`` (an int or None, else TypeError naming it) asks for no results."""
    if topn is not None and not is_int(topn):
        raise TypeError(f"topn must be an int or None, got {str(repr(topn))[:80]}")
    return topn is not None and topn < 1


def ensure_list(value):
    if value is None:
        return []
    if isinstance(value, KEY_TYPES) or (isinstance(value, np.ndarray) and value.ndim == 1):
        return [value]
    return list(value)  # a sequence of items, or a 2-D array (its rows)


def hashable(k):
    try:
        hash(k)
    except TypeError:
        return False
    return True


def most_similar_cosmul(kv, positive, negative, topn, lo, hi):
    """Vectors.most_similar_cosmul over rows lo..hi."""
    if no_results(topn):
        return []
    positive = ensure_list(positive)
    negative = ensure_list(negative)
    kv.fill_norms()
    all_words = {kv.get_index(w) for w in positive + negative
                 if not isinstance(w, np.ndarray) and kv.has_index_for(w)}
    positive = [w if isinstance(w, np.ndarray) else kv.get_vector(w, norm=True) for w in positive]
    negative = [w if isinstance(w, np.ndarray) else kv.get_vector(w, norm=True) for w in negative]
    if not positive:
        raise ValueError("cannot compute similarity with no input")
    V, norms = kv.vectors[lo:hi], kv.norms[lo:hi]
    pos_dists = [((1 + np.dot(V, term) / norms) / 2) for term in positive]
    neg_dists = [((1 + np.dot(V, term) / norms) / 2) for term in negative]
    dists = np.prod(pos_dists, axis=0) / (np.prod(neg_dists, axis=0) + 0.000001)
    if not topn:
        return dists
    best = top(dists, topn + len(all_words))
    itk = kv.index_to_key
    result = [(itk[i + lo], float(dists[i])) for i in best.tolist() if (i + lo) not in all_words]
    return result[:topn]


def rank_by_centrality(kv, words, use_norm=True):
    """Vectors.rank_by_centrality."""
    kv.fill_norms()
    used = [w for w in words if w in kv]
    if len(used) != len(words):
        warnings.warn(f"vectors for words {set(words) - set(used)} are not present in the "
                      f"model, ignoring these words", UserWarning, stacklevel=3)
    if not used:
        raise ValueError("cannot select a word from an empty list")
    idx = np.array([kv.key_to_index[w] for w in used], np.int64)
    vecs = np.take(kv.vectors, idx, axis=0)
    if use_norm:
        vecs = vecs / kv.norms[idx, None]
    vecs = vecs.astype(np.float32)
    mean = kv.get_mean_vector(vecs, post_normalize=True)
    dists = np.dot(vecs, mean)
    return sorted(zip(dists.tolist(), used), reverse=True)


def query_matrix(kv, queries, indices):
    """Unit query rows (q, d) float32 for keys/vectors, and each key's own row (or -1)."""
    kv.fill_norms()
    if isinstance(queries, np.ndarray) and queries.ndim == 2:
        if queries.shape[1] != kv.vector_size:
            raise ValueError(f"queries has shape {queries.shape} but the vectors have size "
                             f"{kv.vector_size}")
        q64 = queries.astype(np.float64)
        own = np.full(len(queries), -1, np.int64)
    else:
        queries = list(queries)
        is_vec = np.fromiter((isinstance(q, np.ndarray) for q in queries), bool, len(queries))
        own = np.full(len(queries), -1, np.int64)
        q64 = np.empty((len(queries), kv.vector_size), np.float64)
        kpos = np.flatnonzero(~is_vec)
        if kpos.size:
            own[kpos] = indices([queries[i] for i in kpos.tolist()])
            rows = own[kpos]
            # gensim: the key's unit vector (float32), times weight 1.0, over total weight 1.0
            q64[kpos] = kv.vectors[rows] / kv.norms[rows, None]
        vpos = np.flatnonzero(is_vec)
        if vpos.size:
            q64[vpos] = np.stack([np.asarray(queries[i], np.float64).astype(kv.vectors.dtype)
                                  for i in vpos.tolist()])
    n = np.sqrt(np.einsum("ij,ij->i", q64, q64))
    n[n == 0] = 1.0
    return (q64 * (1.0 / n)[:, None]).astype(np.float32), own


def top_batch(kv, m, own, topn, lo, hi):
    """Vectors.most_similar_batch's search: the top ``topn`` rows lo..hi for each unit query
    row of ``m``, leaving out row ``own[i]`` (the query key) from query i's."""
    V = kv.vectors[lo:hi]
    norms = kv.norms[lo:hi]
    k = int(topn) + 1
    out = []
    # bound the (rows, chunk) similarity block to ~64 MB
    chunk = max(1, min(len(m), (64 << 20) // max(1, 4 * V.shape[0])))
    itk = kv.index_to_key
    for a in range(0, len(m), chunk):
        # (chunk, rows) dot products; the C top-k divides by the norms as it scans
        P = m[a:a + chunk].astype(V.dtype, copy=False) @ V.T
        best, scores = _core.topk(P, min(k, P.shape[1]), scale=norms)
        for j, (b_row, s_row) in enumerate(zip(best.tolist(), scores.tolist())):
            me = int(own[a + j])
            res = [(itk[i + lo], float(s)) for i, s in zip(b_row, s_row) if i + lo != me]
            out.append(res[:topn])
    return out

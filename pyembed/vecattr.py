"""Per-key attributes of a :class:`pyembed.Vectors` (gensim's ``KeyedVectors.expandos``).

One NumPy array per attribute name, row i holding the value of key i; the loaders put word
counts in ``"count"`` (from a vocabulary file, or gensim's invented descending counts). An array
is created at an attribute's first value, with the dtype gensim's ``allocate_vecattrs`` gives
that value's type (int -> int64, float -> float64, bool -> bool, anything else -> object), zeros
for the keys not yet set.
"""
import numpy as np


def _dtype_of(val):
    if isinstance(val, (bool, np.bool_)):
        return np.dtype(bool)
    if isinstance(val, np.number):
        return val.dtype
    if isinstance(val, int):
        return np.dtype(np.int64)
    if isinstance(val, float):
        return np.dtype(np.float64)
    return np.dtype(object)


def column(expandos, n, attr):
    """The array of ``attr`` (KeyError naming the attributes there are), checked to hold one
    value per key: ``expandos`` is a public dict, so a user may have put any array in it."""
    col = expandos.get(attr)
    if col is None:
        raise KeyError(f"no per-key attribute {attr!r} (the attributes: {sorted(expandos)})")
    if col.shape != (n,):
        raise ValueError(f"per-key attribute {attr!r} has shape {col.shape}, not ({n},) for {n} keys")
    return col


def set_value(expandos, n, index, attr, val):
    """expandos[attr][index] = val, creating the array at the first value. A value the array's
    dtype cannot hold without loss is a TypeError (gensim refuses a conflicting type too)."""
    if attr not in expandos:
        expandos[attr] = np.zeros(n, _dtype_of(val))
    col = column(expandos, n, attr)
    if col.dtype != object and not np.can_cast(_dtype_of(val), col.dtype, "safe"):
        raise TypeError(f"per-key attribute {attr!r} holds {col.dtype}; cannot store "
                        f"{val!r} ({type(val).__name__}) in it")
    try:
        col[index] = val
    except OverflowError as e:  # an int past int64
        raise TypeError(f"per-key attribute {attr!r} holds {col.dtype}; cannot store "
                        f"{val!r} in it") from e


def descending_order(col):
    """Rows by descending value, ties in row order: gensim's save_word2vec_format sorts the keys
    with ``sorted(key=lambda k: -value)``, a stable sort. None values (words a vocabulary file
    lacked) go last, in row order. None when the order is the rows' own (nothing to permute)."""
    n = col.size
    if col.dtype == object:
        missing = np.equal(col, None)
        have = np.flatnonzero(~missing)
        order = np.concatenate((have[_descending(np.array(col[have].tolist()))],
                                np.flatnonzero(missing))).astype(np.int64)
    else:
        order = _descending(col)
    return None if np.array_equal(order, np.arange(n)) else order


def _descending(values):
    # a stable ascending sort of the reversed array, reversed: descending, ties in row order
    # (negating the values instead would overflow at the smallest int64)
    return values.size - 1 - np.argsort(values[::-1], kind="stable")[::-1]

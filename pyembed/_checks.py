"""Argument checks shared by the Python layer (public names, private module): each check has one
owner here, so that every caller raises the same exception with the same message.

The C glue checks what reaches the kernels (ids of a Table, arrays, out=); these are the checks
of the Python-only arguments (sizes, seeds, dtypes, padding_idx, ids the Python layer indexes
with itself)."""
from __future__ import annotations

import codecs

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class UnsupportedModeError(NotImplementedError, ValueError):
    """An option combination torch refuses with NotImplementedError (per_sample_weights with
    mode "mean" or "max"); also a ValueError, what pyembed raised before, so both ``except``
    clauses keep working."""


class DtypeMismatchError(TypeError, RuntimeError):
    """An array whose dtype must equal another's (torch raises RuntimeError; pyembed's dtype
    errors are TypeErrors: this is both)."""


def is_int(v) -> bool:
    """An int (Python or NumPy) but not a bool: ``True`` is an int to Python, never a size."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def check_int(name: str, v, minimum: int | None = None) -> int:
    """``v`` as an int: TypeError unless :func:`is_int`, ValueError below ``minimum``."""
    if not is_int(v):
        raise TypeError(f"{name} must be an int, got {str(repr(v))[:80]} ({type(v).__name__})")
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return int(v)


def as_float(name: str, v) -> float:
    """``v`` as a float (a number, not a bool; NaN and inf pass: ranges are the caller's)."""
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be a number, got a bool ({v!r})")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {str(repr(v))[:80]} "
                        f"({type(v).__name__})") from None


def check_seed(seed) -> int | None:
    """A random-generator seed: None, or an int >= 0 (taken modulo 2^64)."""
    if seed is None:
        return None
    if not is_int(seed):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return int(seed) & 0xFFFFFFFFFFFFFFFF


def check_float_dtype(dtype, name: str = "dtype") -> np.dtype:
    """``dtype`` as a NumPy dtype that the kernels have: float32 or float64 (ValueError)."""
    dt = np.dtype(dtype)
    if dt not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be float32 or float64, got {dt}")
    return dt


def bfloat16_dtype(name: str = "dtype") -> np.dtype:
    """ml_dtypes' bfloat16 (the one JAX uses; NumPy has none), imported only when asked for."""
    try:
        import ml_dtypes
    except ImportError:
        raise ImportError(f"{name}=bfloat16 needs the ml_dtypes package: "
                          "pip install 'pyembed[half]' (or pip install ml_dtypes)") from None
    return np.dtype(ml_dtypes.bfloat16)


def is_half(dt: np.dtype) -> bool:
    """True for the 16-bit storage dtypes of a table: float16 and ml_dtypes' bfloat16."""
    return dt == np.float16 or (dt.itemsize == 2 and dt.type.__name__ == "bfloat16")


def compute_dtype(dt: np.dtype) -> np.dtype:
    """The dtype a table of dtype ``dt`` computes in (lookups, gradients): float32 for float16
    and bfloat16 tables, ``dt`` otherwise."""
    return np.dtype(np.float32) if is_half(dt) else dt


def check_table_dtype(dtype, name: str = "dtype") -> np.dtype:
    """``dtype`` as a table's storage dtype: float32, float64, float16 or bfloat16 (the string
    ``"bfloat16"`` or ``ml_dtypes.bfloat16``). ValueError for anything else."""
    if isinstance(dtype, str) and dtype == "bfloat16":
        return bfloat16_dtype(name)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be float32 or float64, or float16 or bfloat16, got "
                        f"{str(repr(dtype))[:80]}") from None
    if dt not in FLOAT_DTYPES and not is_half(dt):
        raise ValueError(f"{name} must be float32 or float64, or float16 or bfloat16, got {dt}")
    return dt


def check_padding_idx(padding_idx, num_embeddings: int) -> int | None:
    """``padding_idx`` (None, or an int in ``[-num_embeddings, num_embeddings)``, negative
    counting from the end as in torch) as a row number or None."""
    if padding_idx is None:
        return None
    if not is_int(padding_idx):
        raise TypeError(f"padding_idx must be an int or None, got {type(padding_idx).__name__}")
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"padding_idx {padding_idx} must be within num_embeddings "
                         f"({num_embeddings})")
    return int(padding_idx) % num_embeddings


def check_ids(ids, size: int, what: str) -> np.ndarray:
    """``ids`` (integers of any dtype and shape) as int64, each in ``[0, size)``: TypeError for
    non-integers, IndexError naming the first bad value and its position (the wording of the C
    tables' own check; ``what`` names the table, e.g. ``"an embedding of 5 rows"``)."""
    ids = as_ids(ids, size, what)
    if ids.dtype == np.bool_ or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
        raise TypeError(f"ids must be integers, got an array of dtype {ids.dtype}")
    if ids.size:
        bad = (ids < 0) | (ids >= size)
        if bad.any():
            pos = tuple(int(i) for i in np.argwhere(bad)[0])
            where = f"ids[{', '.join(map(str, pos))}]" if pos else "ids"
            raise IndexError(f"index {ids[pos]} is out of range for {what} (at {where})")
    return ids.astype(np.int64, copy=False)


def check_encoding(encoding, unicode_errors=None):
    """An ASCII-compatible codec (the parsers split on ASCII spaces and newlines) and an error
    handler Python knows; a ValueError naming the argument otherwise (not a LookupError)."""
    try:
        ok = isinstance(encoding, str) and codecs.lookup(encoding) and \
            "w 1\n".encode(encoding) == b"w 1\n"
    except (LookupError, UnicodeError):
        ok = False
    if not ok:
        raise ValueError(f"encoding must be an ASCII-compatible codec name, got {encoding!r}")
    if unicode_errors is not None:
        try:
            codecs.lookup_error(unicode_errors)
        except (LookupError, TypeError):
            raise ValueError(f"unicode_errors must be an error handler ('strict', 'replace', "
                             f"'ignore', ...), got {unicode_errors!r}") from None


def as_ids(ids, size: int, what: str) -> np.ndarray:
    """``np.asarray(ids)``, but Python ints NumPy cannot hold (``[0, 2**70]`` becomes an object
    array, ``[2**63]`` a float64 one) raise the IndexError of :func:`check_ids` naming the value
    and its position, as the C tables' conversion does, rather than a TypeError about the dtype."""
    arr = np.asarray(ids)
    if isinstance(ids, np.ndarray) or arr.dtype.kind not in "Of":
        return arr
    try:
        objs = np.asarray(ids, dtype=object)
    except ValueError:  # ragged: the dtype's TypeError stands
        return arr
    for pos in np.ndindex(objs.shape):
        v = objs[pos]
        if not isinstance(v, int) or isinstance(v, bool):
            break  # not an int: the TypeError is right
        if not 0 <= v < size:
            where = f"ids[{', '.join(map(str, pos))}]" if pos else "ids"
            raise IndexError(f"index {v} is out of range for {what} (at {where})")
    return arr


def pretrained_matrix(embeddings, dtype):
    """(``embeddings`` as a 2-D real array, the table dtype: ``dtype``, else the array's when a
    table can have it (float32/64, float16, bfloat16), else float32) for the ``from_pretrained``
    constructors."""
    arr = np.asarray(embeddings)
    if arr.ndim != 2:
        raise ValueError(f"embeddings must be 2-D, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf" and not is_half(arr.dtype):
        raise TypeError(f"embeddings must be real numbers, got dtype {arr.dtype}")
    if dtype is None:  # a checkpoint's float16 / bfloat16 stays so
        dtype = arr.dtype if arr.dtype in FLOAT_DTYPES or is_half(arr.dtype) else np.float32
    dtype = check_table_dtype(dtype)
    if is_half(arr.dtype) and arr.dtype != dtype:  # exact; NumPy casts no bfloat16 to float16
        arr = arr.astype(np.float32)
    return arr, dtype

"""A :class:`pyembed.Vectors` saved whole and loaded back exactly, memory-mapping the matrix on
load as gensim's ``KeyedVectors.load(path, mmap="r")`` does -- without pickle.

The layout follows gensim's (a main file, the large arrays beside it in ``.npy`` files):

- ``path``: JSON -- the keys (str or int), the matrix's dtype and shape, whether norms were
  saved, the numeric per-key attributes (their dtypes) and the values of the others;
- ``path.vectors.npy``: the matrix; ``path.norms.npy``: the cached norms, when computed;
- ``path.attr.<name>.npy``: one numeric per-key attribute (e.g. ``count``).

Arrays are read with ``np.load(allow_pickle=False)``: a file cannot make the loader build an
arbitrary object. All files are written, then renamed together (``_util.atomic_write``).
"""
import io
import json

import numpy as np

from ._util import atomic_write, fspath

__all__ = ["MAGIC", "save_native", "load_native", "is_native"]

#: the first bytes of the main file
MAGIC = b'{"format": "pyembed.Vectors"'
_VERSION = 1


def _npy(arr):
    def write(f):
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
        f.write(buf.getbuffer())
    return write


def _json_key(k):
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (str, int, np.integer)):
        raise TypeError(f"key {k!r} ({type(k).__name__}): the native format stores str and int "
                        f"keys only")
    return k if isinstance(k, str) else int(k)


def _check_attr_name(attr):
    """An attribute name that names a file beside the main one (never one elsewhere)."""
    if not isinstance(attr, str) or not attr or "/" in attr or "\\" in attr or attr.startswith("."):
        raise ValueError(f"per-key attribute name {attr!r} cannot name a file")


def save_native(kv, path):
    """Write ``kv`` (keys, vectors, per-key attributes, norms) to ``path`` and its ``.npy``
    files beside it; TypeError for a key or attribute value JSON cannot hold exactly."""
    path = fspath(path)
    n = len(kv.index_to_key)
    arrays, objects = {}, {}
    for attr, col in kv.expandos.items():
        _check_attr_name(attr)
        col = np.asarray(col)
        if col.shape != (n,):
            raise ValueError(f"per-key attribute {attr!r} has shape {col.shape}, not ({n},)")
        if col.dtype == object:
            vals = col.tolist()
            if any(v is not None and (isinstance(v, bool) or not isinstance(v, (int, float, str)))
                   for v in vals):
                raise TypeError(f"per-key attribute {attr!r}: the native format stores numbers, "
                                f"strings and None only")
            objects[attr] = vals
        else:
            arrays[attr] = col
    head = {"format": "pyembed.Vectors", "version": _VERSION,
            "keys": [_json_key(k) for k in kv.index_to_key],
            "dtype": kv.vectors.dtype.str, "shape": list(kv.vectors.shape),
            "norms": None if kv.norms is None else np.asarray(kv.norms).dtype.str,
            "arrays": {a: c.dtype.str for a, c in arrays.items()}, "objects": objects}
    text = json.dumps(head, ensure_ascii=False, allow_nan=True).encode("utf-8")
    more = [(path + ".vectors.npy", _npy(kv.vectors))]
    if kv.norms is not None:
        more.append((path + ".norms.npy", _npy(kv.norms)))
    more += [(f"{path}.attr.{a}.npy", _npy(c)) for a, c in arrays.items()]
    atomic_write(path, lambda f: f.write(text), *more)


def is_native(path):
    """Does ``path`` start with the native format's magic?"""
    try:
        with open(fspath(path), "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def _array(path, mmap, shape, dtype):
    try:
        arr = np.load(path, mmap_mode=mmap, allow_pickle=False)
    except ValueError as e:  # a pickled (object) array, or not a .npy file
        raise ValueError(f"{path}: not a plain .npy array ({e})") from None
    if arr.shape != tuple(shape) or arr.dtype != np.dtype(dtype):
        raise ValueError(f"{path}: expected a {dtype} array of shape {tuple(shape)}, got "
                         f"{arr.dtype} {arr.shape}")
    return arr


def load_native(path, mmap=None):
    """(keys, vectors, key_to_index, expandos, norms) of a native save; ``mmap``: None (read
    into memory) or an ``np.load`` mmap_mode (``"r"``, ``"r+"``, ``"c"``) for the matrix."""
    if mmap not in (None, "r", "r+", "c", "readonly", "copyonwrite", "readwrite"):
        raise ValueError(f"mmap must be None, 'r', 'r+' or 'c', got {mmap!r}")
    path = fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        head = json.loads(raw.decode("utf-8"))
        if head.get("format") != "pyembed.Vectors" or head.get("version") != _VERSION:
            raise ValueError("not a version-1 pyembed.Vectors file")
        keys, shape = head["keys"], head["shape"]
        n = shape[0]
        if len(keys) != n or any(isinstance(k, bool) or not isinstance(k, (str, int))
                                 for k in keys):
            raise ValueError(f"{len(keys)} keys for {n} rows")
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, IndexError,
            AttributeError, ValueError) as e:
        raise ValueError(f"{path}: not a pyembed.Vectors native file ({e})") from None
    vectors = _array(path + ".vectors.npy", mmap, shape, head["dtype"])
    key_to_index = dict(zip(keys, range(n)))
    if len(key_to_index) != n:
        raise ValueError(f"{path}: duplicate keys")
    for a in list(head["arrays"]) + list(head["objects"]):
        _check_attr_name(a)
    expandos = {a: np.array(_array(f"{path}.attr.{a}.npy", None, (n,), dt))
                for a, dt in head["arrays"].items()}
    for a, vals in head["objects"].items():
        col = np.empty(n, object)
        col[:] = vals
        expandos[a] = col
    norms = None
    if head["norms"]:
        norms = np.array(_array(path + ".norms.npy", None, (n,), head["norms"]))
    return keys, vectors, key_to_index, expandos, norms

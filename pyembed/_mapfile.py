"""Files mapped into memory (public names, private module): the safetensors header
(https://github.com/huggingface/safetensors), read and checked, shared by pyembed.safetensors
(loading tensors) and Embedding.from_memmap (mapping one tensor's bytes), which sit on the two
sides of the package and may not import each other; and the shared maps of raw row files that
back tables larger than memory.

The format: 8 bytes little-endian u64 N, then N bytes of JSON ``{name: {"dtype", "shape",
"data_offsets": [begin, end]}, "__metadata__": {...}}``, then the data; offsets are relative to
the end of the header.
"""
from __future__ import annotations

import json
import mmap
import os

import numpy as np

__all__ = ["DTYPES", "read_header", "MODES", "map_rows", "raw_shape", "map_tensor"]

MODES = ("r", "r+", "w+")

DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"), "BF16": np.dtype("<u2"),
}
_MAX_HEADER = 100_000_000  # the safetensors package refuses larger headers


def _unique_keys(pairs):
    """object_pairs_hook: a JSON object as a dict, refusing a repeated key (json keeps the last
    silently; the safetensors package refuses it inside a tensor's entry)."""
    d = dict(pairs)
    if len(d) != len(pairs):
        seen = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"the key {dup!r} appears twice in one object")
    return d


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def _is_u64(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**64


def read_header(path, mm):
    """{name: (dtype, shape, file offset, nbytes)}, after checking what the safetensors package
    checks: the header length, JSON (no repeated keys, no NaN), metadata of str to str, each
    tensor's dtype, shape and offsets, and that the tensors tile the data exactly (from 0, no
    gap, no overlap, no trailing bytes)."""
    size = len(mm)
    if size < 8:
        raise ValueError(f"{path}: not a safetensors file ({size} bytes, no header length)")
    n = int.from_bytes(mm[:8], "little")
    if n > _MAX_HEADER or 8 + n > size:
        raise ValueError(f"{path}: header length {n} does not fit in the file ({size} bytes)")
    try:
        header = json.loads(bytes(mm[8:8 + n]).decode("utf-8"), object_pairs_hook=_unique_keys,
                            parse_constant=_no_constant)
    except RecursionError:
        raise ValueError(f"{path}: the header is not valid safetensors JSON (nested too "
                         f"deeply)") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{path}: the header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: the header is not a JSON object")
    meta = header.get("__metadata__")
    if meta is not None and not (isinstance(meta, dict) and
                                 all(isinstance(v, str) for v in meta.values())):
        raise ValueError(f"{path}: __metadata__ must map str to str, got {str(meta)[:200]}")
    data_start, data_len = 8 + n, size - 8 - n
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (b, e) = info["dtype"], info["shape"], info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{path}: tensor {name!r}: entry needs dtype, shape, "
                             f"data_offsets, got {str(info)[:200]}") from None
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise ValueError(f"{path}: tensor {name!r}: unsupported dtype {str(dtype)[:80]}")
        if not isinstance(shape, list) or not all(map(_is_u64, shape)):
            raise ValueError(f"{path}: tensor {name!r}: bad shape {str(shape)[:200]}")
        if not (_is_u64(b) and _is_u64(e) and b <= e):
            raise ValueError(f"{path}: tensor {name!r}: bad data_offsets {[b, e]!r}")
        nbytes = int(np.prod(shape, dtype=object)) * DTYPES[dtype].itemsize
        if e - b != nbytes:
            raise ValueError(f"{path}: tensor {name!r}: data_offsets {[b, e]} hold {e - b} bytes "
                             f"but {dtype} {shape} needs {nbytes}")
        if e > data_len:
            raise ValueError(f"{path}: tensor {name!r}: data_offsets {[b, e]} run past the end "
                             f"of the data ({data_len} bytes; truncated file?)")
        tensors[name] = (dtype, tuple(shape), data_start + b, nbytes)
    end = 0
    for name, (_, _, b, nbytes) in sorted(tensors.items(), key=lambda t: (t[1][2], t[1][3])):
        if b - data_start != end:
            raise ValueError(f"{path}: tensor {name!r} starts at data byte {b - data_start}, "
                             f"not where the tensor before it ends ({end}): tensors must tile "
                             f"the data without gaps or overlaps")
        end += nbytes
    if end != data_len:
        raise ValueError(f"{path}: the tensors cover {end} bytes of data but the file has "
                         f"{data_len} after the header (trailing bytes?)")
    return tensors


def map_rows(path, shape, dtype, mode, offset=0, exact=True):
    """A C-contiguous ``shape`` array of ``dtype`` over bytes ``[offset, offset + nbytes)`` of
    the file at ``path``, mapped shared: writes reach the file (``mode`` "r+" or "w+"), or the
    array is read-only ("r"). "w+" first creates (or truncates) the file to exactly ``nbytes``
    of zeros, a sparse file where the file system allows. The file must be ``offset + nbytes``
    long (at least that when not ``exact``), checked before anything is mapped. Returns
    (array, the mmap object, whose flush() writes the pages back)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if nbytes == 0:
        raise ValueError(f"{path}: a mapped table needs at least one row and one column, got "
                         f"shape {tuple(shape)}")
    if mode == "w+":
        with open(path, "wb") as f:
            f.truncate(nbytes)
    with open(path, "rb" if mode == "r" else "r+b") as f:
        have = os.fstat(f.fileno()).st_size
        if have != offset + nbytes and (exact or have < offset + nbytes):
            raise ValueError(f"{path}: the file has {have} bytes but a {shape[0]} x {shape[1]} "
                             f"{dtype.name} table needs {offset + nbytes} (a file of another "
                             f"table, or the wrong shape or dtype?)")
        mm = mmap.mmap(f.fileno(), offset + nbytes,
                       access=mmap.ACCESS_READ if mode == "r" else mmap.ACCESS_WRITE)
    if hasattr(mm, "madvise"):
        # a lookup reads one row: the kernel's read-around (128 KiB by default) would bring in
        # and map 32 pages per row, paid in memory and disk reads
        mm.madvise(mmap.MADV_RANDOM)
    arr = np.frombuffer(mm, dtype=dtype, count=nbytes // dtype.itemsize, offset=offset)
    return arr.reshape(shape), mm


def raw_shape(path, rows, dim, dt, mode):
    """(rows, dim) of a raw file of rows, the missing one from its size."""
    if rows is None and dim is None:
        raise ValueError("from_memmap needs embedding_dim (or num_embeddings): a raw file of "
                         "rows has no header")
    if rows is not None and dim is not None:
        return rows, dim  # map_rows checks the size
    if mode == "w+":
        raise ValueError("from_memmap(mode='w+') creates the file: give num_embeddings and "
                         "embedding_dim")
    size = os.stat(path).st_size
    unit = (dim if rows is None else rows) * dt.itemsize
    if size == 0 or size % unit:
        what = f"rows of {dim}" if rows is None else f"columns of {rows}"
        raise ValueError(f"{path}: the file has {size} bytes, not a whole number of {what} "
                         f"{dt.name} values ({unit} bytes each)")
    return (size // unit, dim) if rows is None else (rows, size // unit)


def map_tensor(path, name, rows, dim, dt, mode):
    """(array, mmap) over one tensor of a safetensors file, its header checked first."""
    if mode == "w+":
        raise ValueError("mode='w+' creates a raw file of rows; write a safetensors file with "
                         "pyembed.save_safetensors")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        tensors = read_header(path, mm)
    if name is None:
        if len(tensors) != 1:
            raise ValueError(f"{path}: holds {len(tensors)} tensors; pass name= (one of "
                             f"{sorted(tensors)[:20]})")
        name = next(iter(tensors))
    if name not in tensors:
        raise KeyError(f"{path}: no tensor {name!r} (tensors: {sorted(tensors)[:20]})")
    st_dtype, shape, offset, _ = tensors[name]
    if len(shape) != 2 or DTYPES[st_dtype] != dt.newbyteorder("<"):
        raise ValueError(f"{path}: tensor {name!r} is {st_dtype} {list(shape)}; from_memmap maps "
                         f"a 2-D tensor of dtype={dt.name} in place (pass the matching dtype)")
    for arg, want, have in (("num_embeddings", rows, shape[0]), ("embedding_dim", dim, shape[1])):
        if want is not None and want != have:
            raise ValueError(f"{path}: tensor {name!r} has shape {list(shape)}, not "
                             f"{arg}={want}")
    return map_rows(path, shape, dt, mode, offset=offset, exact=False)

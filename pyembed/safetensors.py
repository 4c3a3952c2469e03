"""Safetensors files without torch or the safetensors package.

The format (https://github.com/huggingface/safetensors): 8 bytes little-endian u64 N, then N
bytes of JSON ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``,
then the data; offsets are relative to the end of the header. We check every offset and size
before touching data and memory-map the file.
"""
from __future__ import annotations

import json
import mmap
import os
from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ._checks import bfloat16_dtype, is_half
from ._util import atomic_write

__all__ = ["load_safetensors", "save_safetensors", "safetensors_names"]

_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"), "BF16": np.dtype("<u2"),
}
_NAMES = {v: k for k, v in _DTYPES.items() if k != "BF16"}
_FLOATS = ("F64", "F32", "F16", "BF16")
_EMBED_SUFFIXES = ("word_embeddings.weight", "embed_tokens.weight")
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


def _read_header(path, mm):
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
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise ValueError(f"{path}: tensor {name!r}: unsupported dtype {str(dtype)[:80]}")
        if not isinstance(shape, list) or not all(map(_is_u64, shape)):
            raise ValueError(f"{path}: tensor {name!r}: bad shape {str(shape)[:200]}")
        if not (_is_u64(b) and _is_u64(e) and b <= e):
            raise ValueError(f"{path}: tensor {name!r}: bad data_offsets {[b, e]!r}")
        nbytes = int(np.prod(shape, dtype=object)) * _DTYPES[dtype].itemsize
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


def _open(path):
    path = os.fspath(path)
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            raise ValueError(f"{path}: the file is empty")
        # copy-on-write: arrays are writeable and writes never reach the file
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    return path, mm


def safetensors_names(path: str | os.PathLike) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{name: (dtype, shape)} of the tensors in a safetensors file."""
    path, mm = _open(path)
    try:
        return {k: (v[0], v[1]) for k, v in _read_header(path, mm).items()}
    finally:
        mm.close()


def _pick_embedding(path, tensors):
    hits = [k for k in tensors if k.endswith(_EMBED_SUFFIXES)]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:  # e.g. an encoder-decoder: the shortest name is the shared table
        hits.sort(key=lambda k: (len(k), k))
        return hits[0]
    two_d = [k for k, v in tensors.items() if len(v[1]) == 2]
    if len(tensors) == 1 or len(two_d) == 1:
        return next(iter(tensors)) if len(tensors) == 1 else two_d[0]
    raise ValueError(f"{path}: no tensor named '*word_embeddings.weight' or "
                     f"'*embed_tokens.weight'; pass name= (tensors: {sorted(tensors)[:20]})")


def load_safetensors(path: str | os.PathLike, name: str | None = None, *,
                     dtype: DTypeLike | None = np.float32) -> np.ndarray:
    """One tensor of a safetensors file as a NumPy array, without torch.

    ``name=None`` picks the token-embedding table: the tensor whose name ends in
    ``word_embeddings.weight`` (BERT) or ``embed_tokens.weight`` (Llama, Mistral, ...), with or
    without a model prefix (else the only 2-D tensor). F32/F16/BF16/F64 become ``dtype``
    (float32 by default; ``"bfloat16"`` and ``ml_dtypes.bfloat16`` too); ``None`` keeps the stored
    type: F16 as float16, BF16 as ``ml_dtypes.bfloat16`` (ImportError naming the package when it
    is missing), which :meth:`Embedding.from_pretrained` keeps as the table's dtype. Integer and
    bool tensors come as stored. The data is memory-mapped copy-on-write: an F32 tensor read as
    float32 is not copied (and writing to it never changes the file).

    Example:
        >>> import numpy as np, pyembed, tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "m.safetensors")
        >>> pyembed.save_safetensors(p, {"model.embed_tokens.weight": np.eye(3, dtype=np.float32)})
        >>> pyembed.load_safetensors(p).shape
        (3, 3)
    """
    path, mm = _open(path)
    try:
        tensors = _read_header(path, mm)
        if name is None:
            name = _pick_embedding(path, tensors)
        elif name not in tensors:
            raise KeyError(f"{path}: no tensor {name!r} (tensors: {sorted(tensors)[:20]})")
    except BaseException:
        mm.close()
        raise
    st_dtype, shape, offset, nbytes = tensors[name]
    raw = np.frombuffer(mm, dtype=_DTYPES[st_dtype], count=nbytes // _DTYPES[st_dtype].itemsize,
                        offset=offset).reshape(shape)
    if isinstance(dtype, str) and dtype == "bfloat16":
        dtype = bfloat16_dtype()
    if st_dtype == "BF16":
        if dtype is None or is_half(np.dtype(dtype)):  # the bits as they are, then as asked
            raw = raw.view(bfloat16_dtype("BF16 tensor"))
        else:  # the top 16 bits of a float32: exact without ml_dtypes
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
    if dtype is None or st_dtype not in _FLOATS:
        return raw
    return raw.astype(dtype, copy=False)  # native byte order: a no-op for F32 on x86/arm


def save_safetensors(path: str | os.PathLike, tensors: Mapping[str, ArrayLike],
                     metadata: Mapping[str, str] | None = None) -> None:
    """Write ``{name: array}`` as a safetensors file (readable by the ``safetensors`` package
    and by :func:`load_safetensors`); written to a temporary file and renamed."""
    if not isinstance(tensors, dict) or not tensors:
        raise ValueError("tensors must be a non-empty dict {name: array}")
    header, arrays, pos = {}, [], 0
    for name in tensors:
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"bad tensor name {name!r}")
        arr = np.asarray(tensors[name])
        if is_half(arr.dtype) and arr.dtype != np.float16:  # bfloat16: its bits, as BF16
            st_name, arr = "BF16", np.ascontiguousarray(arr).view("<u2")
        else:
            le = arr.dtype.newbyteorder("<") if arr.dtype.itemsize > 1 else arr.dtype
            if le not in _NAMES:
                raise ValueError(f"tensor {name!r}: dtype {arr.dtype} cannot be stored "
                                 f"(supported: {sorted(_NAMES.values())} and bfloat16)")
            st_name, arr = _NAMES[le], np.ascontiguousarray(arr, dtype=le)
        header[name] = {"dtype": st_name, "shape": list(arr.shape),
                        "data_offsets": [pos, pos + arr.nbytes]}
        arrays.append(arr)
        pos += arr.nbytes
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise ValueError("metadata must be a dict of str to str")
        header = {"__metadata__": metadata, **header}
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)  # the data starts 8-byte aligned, as the package writes

    def write(f):
        f.write(len(blob).to_bytes(8, "little"))
        f.write(blob)
        for a in arrays:
            f.write(a.reshape(-1).view(np.uint8).data)

    atomic_write(path, write)

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
from ._mapfile import DTYPES, read_header
from ._util import atomic_write

__all__ = ["load_safetensors", "save_safetensors", "safetensors_names"]

_NAMES = {v: k for k, v in DTYPES.items() if k != "BF16"}
_FLOATS = ("F64", "F32", "F16", "BF16")
_EMBED_SUFFIXES = ("word_embeddings.weight", "embed_tokens.weight")


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
        return {k: (v[0], v[1]) for k, v in read_header(path, mm).items()}
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
        tensors = read_header(path, mm)
        if name is None:
            name = _pick_embedding(path, tensors)
        elif name not in tensors:
            raise KeyError(f"{path}: no tensor {name!r} (tensors: {sorted(tensors)[:20]})")
    except BaseException:
        mm.close()
        raise
    st_dtype, shape, offset, nbytes = tensors[name]
    raw = np.frombuffer(mm, dtype=DTYPES[st_dtype], count=nbytes // DTYPES[st_dtype].itemsize,
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

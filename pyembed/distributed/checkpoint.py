"""The files of a sharded table's checkpoint: one ``.npz`` per rank (its rows and the
optimizer state of its rows), written atomically, and ``manifest.json``, written by rank 0
after every rank's file is in place (a folder with a manifest is complete). Reading re-shards:
a rank of a new ``size`` picks its rows ``r % size == rank`` out of every old rank's file."""
from __future__ import annotations

import json
import os

import numpy as np

from .._util import atomic_write, fspath
from .routing import num_local_rows

FORMAT = "pyembed.sharded/1"


def rank_file(folder, rank, size):
    return os.path.join(folder, f"rank-{rank:05d}-of-{size:05d}.npz")


def write_rank(folder, rank, size, arrays):
    """This rank's arrays (name -> array) into its file, atomically."""
    atomic_write(rank_file(folder, rank, size), lambda f: np.savez(f, **arrays))


def write_manifest(folder, manifest):
    text = json.dumps(dict(manifest, format=FORMAT), indent=1, sort_keys=True).encode()
    atomic_write(os.path.join(folder, "manifest.json"), lambda f: f.write(text))


def read_manifest(folder):
    folder = fspath(folder, "folder")
    path = os.path.join(folder, "manifest.json")
    try:
        with open(path, "rb") as f:
            manifest = json.loads(f.read())
    except FileNotFoundError:
        raise FileNotFoundError(f"{folder!r} holds no manifest.json: not a complete sharded "
                                f"checkpoint") from None
    except ValueError as e:
        raise ValueError(f"{path}: not a pyembed sharded manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} manifest")
    return folder, manifest


def read_rows(folder, manifest, rank, size):
    """The arrays of the rows rank ``rank`` of ``size`` holds (``r % size == rank``, in order),
    gathered from the files of the ``manifest["size"]`` ranks that wrote them."""
    old_size, n = manifest["size"], manifest["num_embeddings"]
    want = num_local_rows(n, rank, size)
    out = {}
    for old in range(old_size):
        with np.load(rank_file(folder, old, old_size), allow_pickle=False) as z:
            rows = old + old_size * np.arange(num_local_rows(n, old, old_size), dtype=np.int64)
            mine = np.flatnonzero(rows % size == rank)
            for name in z.files:
                a = z[name]
                if a.shape[:1] != rows.shape:
                    raise ValueError(f"{rank_file(folder, old, old_size)}: {name} has shape "
                                     f"{a.shape}, expected {rows.size} rows")
                if name not in out:
                    out[name] = np.zeros((want,) + a.shape[1:], a.dtype)
                out[name][rows[mine] // size] = a[mine]
    return out

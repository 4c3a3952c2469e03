"""Tables larger than memory: the part of :class:`pyembed.Embedding` (and so EmbeddingBag) whose
weight, and optimizer state beside it, are files mapped into memory: ``from_memmap``,
``state_memmaps``, ``flush``, ``to_memmap``, and the pickling that leaves the maps behind.

A mixin (no state of its own but the ``_map`` / ``_state_maps`` it sets) that Embedding inherits,
so that embedding.py keeps to the lookup table itself; nothing here is meant to be used alone.
"""
from __future__ import annotations

import copy
import os
from typing import TypeVar

import numpy as np
from numpy.typing import DTypeLike

from ._checks import check_float_dtype, check_int, check_padding_idx
from ._core import Table
from ._mapfile import MODES, map_rows, map_tensor, raw_shape
from ._util import atomic_write, fspath

__all__ = ["MemmapMixin"]

E = TypeVar("E", bound="MemmapMixin")


class MemmapMixin:
    """Embedding's methods for a weight that is a file mapped into memory (see
    :meth:`from_memmap`). Expects the Embedding interface: its constructor, ``table``,
    ``weight``, ``shape``, ``dtype``, ``padding_idx``, ``num_parameters``."""

    @classmethod
    def from_memmap(cls: type[E], path: str | os.PathLike, num_embeddings: int | None = None,
                    embedding_dim: int | None = None, dtype: DTypeLike = np.float32,
                    mode: str = "r+", *, name: str | None = None, padding_idx: int | None = None,
                    max_norm: float | None = None, norm_type: float = 2.0,
                    scale_grad_by_freq: bool = False) -> E:
        """An Embedding whose weight IS a file mapped into memory (no copy): a table larger than
        RAM trains with memory growing with the rows touched, not with the table. Lookups,
        backward, lazy optimizer steps (``Adam(..., lazy=True)``, ``SparseAdam``, ``SGD``) touch
        only the pages of the batch's rows; the gradient buffer is allocated lazily-zero and
        only touched rows are ever written or cleared. (A dense optimizer step, ``attend`` and
        ``max_norm`` renorm of many rows touch what they touch.)

        ``path``: a raw file of rows (``num_embeddings * embedding_dim`` values of ``dtype``,
        row-major, no header; give ``embedding_dim`` or ``num_embeddings`` and the other comes
        from the file size), or, when the name ends in ``.safetensors``, an uncompressed
        safetensors file whose F32/F64 tensor ``name`` is mapped in place (``name`` may be
        omitted when the file holds one tensor; its dtype must be ``dtype``). Sizes that
        disagree with the file raise ValueError before anything is mapped.

        ``mode``: ``"r+"`` (writes reach the file), ``"r"`` (read-only: lookups only; backward,
        renorm, weight assignment and optimizers raise ValueError) or ``"w+"`` (create or
        overwrite a raw file of zeros of the given shape; sparse where the file system allows).
        Writes reach the file when the system writes the pages back; :meth:`flush` (and
        :meth:`to_memmap`) makes them durable. The padding row keeps the file's values.

        Optimizer state beside the table: moments as large as the table must not live in RAM
        either. Map them with :meth:`state_memmaps` and hand them to the optimizer before its
        first step, under the names the algorithm uses (Adam: ``exp_avg``, ``exp_avg_sq``;
        SGD with momentum: ``momentum_buffer``)::

            emb = pyembed.Embedding.from_memmap("table.f32", embedding_dim=64)
            opt = pyembed.optim.Adam(emb, lr=1e-3, lazy=True)
            opt.state[emb] = {"step": 0, **emb.state_memmaps("exp_avg", "exp_avg_sq")}

        ``state_memmaps`` reopens files that exist, so a run resumes from them (keep ``step``,
        e.g. from ``opt.state_dict()["state.0.step"]``, yourself): ``opt.load_state_dict``
        copies state into memory. ``per_row_step=True`` keeps its int64 counter per row in
        memory unless you give ``"step"`` as a mapped array too. A mapped Embedding pickles as
        an in-memory copy.
        """
        path = fspath(path)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        dt = check_float_dtype(dtype)
        rows = None if num_embeddings is None else check_int("num_embeddings", num_embeddings, 1)
        dim = None if embedding_dim is None else check_int("embedding_dim", embedding_dim, 1)
        if path.endswith(".safetensors"):
            arr, mm = map_tensor(path, name, rows, dim, dt, mode)
        else:
            if name is not None:
                raise ValueError(f"name={name!r} picks a tensor of a .safetensors file, and "
                                 f"{path!r} is a raw file of rows")
            rows, dim = raw_shape(path, rows, dim, dt, mode)
            arr, mm = map_rows(path, (rows, dim), dt, mode)
        # through the constructor, so that a subclass (EmbeddingBag: mode "mean") is whole
        obj = cls(0, arr.shape[1], max_norm=max_norm, norm_type=norm_type,
                  scale_grad_by_freq=scale_grad_by_freq, dtype=dt, init="zeros")
        obj.padding_idx = check_padding_idx(padding_idx, arr.shape[0])
        obj.table = Table.wrap(arr)
        obj._map = (path, mm)
        return obj

    def state_memmaps(self, *names: str) -> dict[str, np.ndarray]:
        """``{name: array}``: for each name an array shaped and typed like the weight, mapped
        from the file ``<table file>.<name>`` beside the table's (opened when it exists, created
        full of zeros, sparse, when not): where an optimizer's moments of a table from
        :meth:`from_memmap` live (see there). :meth:`flush` writes them back too."""
        if getattr(self, "_map", None) is None:  # None too in an Embedding pickled before
            raise ValueError("state_memmaps needs a table from Embedding.from_memmap (this one "
                             "is in memory)")
        for n in names:
            if not isinstance(n, str) or not n or n != os.path.basename(n) or n.startswith("."):
                raise ValueError(f"state_memmaps: each name must be a plain file-name suffix "
                                 f"such as 'exp_avg', got {n!r}")
        if not self.weight.flags.writeable:
            raise ValueError("state_memmaps: this table was mapped with mode='r' and cannot be "
                             "trained; map it with mode='r+'")
        out = {}
        for n in names:
            p = f"{self._map[0]}.{n}"
            arr, mm = map_rows(p, self.shape, self.dtype, "r+" if os.path.exists(p) else "w+")
            self._state_maps.append(mm)
            out[n] = arr
        return out

    def flush(self) -> None:
        """Write the mapped table's changed pages (and those of its :meth:`state_memmaps`) back
        to their files and wait for it (``msync``); nothing to do for a table in memory."""
        if getattr(self, "_map", None) is None:
            return
        for mm in [self._map[1]] + self._state_maps:
            mm.flush()

    def to_memmap(self: E, path: str | os.PathLike) -> E:
        """Write the weights to ``path`` as a raw file of rows (row-major, native dtype, no
        header: what :meth:`from_memmap` maps) and return an Embedding over that file with this
        one's options. A mapped table is flushed first. Written to a temporary file and renamed.
        For a safetensors file use ``pyembed.save_safetensors(path, {"weight": emb.weight})``."""
        path = fspath(path)
        if path.endswith(".safetensors"):
            raise ValueError(f"to_memmap writes a raw file of rows, not {path!r}: use "
                             f"pyembed.save_safetensors(path, {{'weight': emb.weight}})")
        if self.num_parameters == 0:
            raise ValueError(f"to_memmap: a {self.shape} table has nothing to map")
        self.flush()
        w = self.weight
        atomic_write(path, lambda f: f.write(memoryview(w).cast("B")))
        arr, mm = map_rows(path, self.shape, self.dtype, "r+")
        new = copy.copy(self)  # the same options, vocab and frozen rows (never changed in place)
        new.table, new._map, new._state_maps = Table.wrap(arr), (path, mm), []
        return new

    def __getstate__(self):
        # the maps cannot travel: a mapped table pickles as an in-memory copy (Table.__reduce__)
        return dict(self.__dict__, _map=None, _state_maps=[])

"""pyembed.optim.in_backward: the link between an Embedding and an optimizer applied in its
backward (issue 12, ``in_backward=True``). The optimizer (optimizer.py) creates one per table and
hands it its checked step; the Embedding calls it from ``backward``."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from .._checks import check_ids

__all__ = ["InBackward"]

_ALTERNATIVE = ("use the optimizer without in_backward (the dense mode) or the table with "
                "sparse=True, where backward and step are separate")


class InBackward:
    """The link between an Embedding and the optimizer applied in its backward
    (``in_backward=True``): ``emb.in_backward_hook``. The Embedding calls :meth:`lookup` (a lookup's
    gradient: grouped and applied row by row in C, no gradient buffer) or :meth:`compact` (a
    bag's gradient, already summed to ``(rows, values)``); both run the optimizer's ``_update``
    in its in-backward form: ``run(group, grad, rows, **form)``, the optimizer's checked step of
    one table. ``group``: the table's param group (the optimizer re-points it when it loads a
    state dict); ``pending``: a backward ran since the last ``opt.step()``."""

    __slots__ = ("name", "group", "run", "pending")

    def __init__(self, name: str, group: dict, run: Callable) -> None:
        self.name, self.group, self.run, self.pending = name, group, run, False

    def begin(self):
        """Refuse a second backward without ``opt.step()`` in between (each backward is one step:
        gradients cannot accumulate), naming the alternatives."""
        if self.pending:
            raise RuntimeError(
                f"a second backward on a table whose optimizer ({self.name}) runs in the "
                f"backward, without opt.step() in between: each backward is one step, so "
                f"gradients cannot accumulate over micro-batches. Call opt.step() (a no-op) "
                f"after each backward, or {_ALTERNATIVE}")

    def lookup(self, emb, ids: ArrayLike, grad_output: ArrayLike) -> None:
        """Apply ``emb.backward(ids, grad_output)``'s gradient now (checked first)."""
        ids = check_ids(ids, emb.num_embeddings, f"an embedding of {emb.num_embeddings} rows")
        g = np.asarray(grad_output)
        want = ids.shape + (emb.embedding_dim,)
        if g.shape != want:
            raise ValueError(f"grad_output has shape {g.shape} but ids.shape + (embedding_dim,) "
                             f"is {want}")
        if g.dtype.kind not in "biuf":
            raise TypeError(f"grad_output must be real numbers, got dtype {g.dtype}")
        self.begin()
        if ids.size and not (emb.padding_idx is not None and (ids == emb.padding_idx).all()):
            self.run(self.group, g, None, ids=ids, padding_idx=emb.padding_idx,
                     scale_grad_by_freq=emb.scale_grad_by_freq)
        self.pending = True

    def compact(self, rows: np.ndarray, values: np.ndarray) -> None:
        """Apply a summed gradient: ``values[i]`` is row ``rows[i]``'s (sorted, unique)."""
        self.begin()
        if len(rows):
            self.run(self.group, values, rows, compact=True)
        self.pending = True

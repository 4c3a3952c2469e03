"""Where the rows of a row-sharded table live, and the routing plans of a batch: pure NumPy,
no MPI, so that they are tested with any ids (above 2^31 too) without a table that big.

Row ``r`` of a table sharded over ``size`` ranks lives on rank ``r % size`` at local row
``r // size``: consecutive ids land on different ranks, so a frequency-sorted vocabulary spreads
its hot rows over every rank."""
from __future__ import annotations

import numpy as np


def num_local_rows(num_embeddings: int, rank: int, size: int) -> int:
    """How many of ``num_embeddings`` rows rank ``rank`` of ``size`` holds."""
    return max(0, (num_embeddings - rank + size - 1) // size)


def displacements(counts):
    """Exclusive prefix sum of ``counts`` (the displacements of an Alltoallv)."""
    d = np.zeros(len(counts), np.int64)
    np.cumsum(counts[:-1], out=d[1:])
    return d


def unique_plan(flat, size):
    """The forward's plan for a batch ``flat`` (int64 ids, 1-D): each distinct id sent once.

    Returns ``(send_ids, counts, where)``: ``send_ids`` the distinct ids grouped by owner rank
    (ascending within an owner), ``counts[k]`` how many go to rank k, and ``where`` such that the
    row of ``flat[i]`` is row ``where[i]`` of the rows received back in ``send_ids``' order."""
    uniq, inverse = np.unique(flat, return_inverse=True)
    owner = uniq % size
    order = np.argsort(owner, kind="stable")
    position = np.empty_like(order)
    position[order] = np.arange(order.size)
    return uniq[order], np.bincount(owner, minlength=size), position[inverse.ravel()]


def occurrence_plan(flat, size, padding_idx=None):
    """The backward's plan: every occurrence's gradient row is sent (never a partial sum: the
    owner must add them in one process's order, by source rank then position, and float sums
    are not associative). Returns ``(order, counts)``: the positions of ``flat`` to send,
    grouped by owner and in batch order within an owner (the padding row's left out), and
    ``counts[k]`` how many go to rank k."""
    pos = np.arange(flat.size) if padding_idx is None else np.flatnonzero(flat != padding_idx)
    owner = flat[pos] % size
    order = pos[np.argsort(owner, kind="stable")]
    return order, np.bincount(owner, minlength=size)

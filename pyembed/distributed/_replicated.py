"""Replicated tables over MPI: every rank holds the whole (small) table and its own batch; after
the backward, ``allreduce_sparse_grad`` gives every rank the sum of all ranks' gradients, so that
the same optimizer step keeps the replicas bit for bit equal (data parallelism, as Horovod's
sparse allreduce). mpi4py is imported only when a communicator is needed."""
from __future__ import annotations

import numpy as np

from .._core import Table

__all__ = ["allreduce_sparse_grad"]


def _table_of(table):
    t = table.table if isinstance(getattr(table, "table", None), Table) else table
    if not isinstance(t, Table):
        raise TypeError(f"table must be a pyembed.Embedding or Table, got "
                        f"{type(table).__name__}")
    return t


def allreduce_sparse_grad(table, comm=None, *, dense: bool | None = None) -> str:
    """Sum the gradient of ``table`` (an Embedding or Table) over the ranks of ``comm`` (an
    mpi4py communicator; ``MPI.COMM_WORLD`` by default). Afterwards every rank holds the same
    gradient, bit for bit: each row the sum of the ranks' rows for it, added in rank order
    (``((g_0 + g_1) + g_2) + ...``, ranks without the row skipped), and the same touched rows
    (the union), so a lazy optimizer step updates the same rows everywhere. Call it on every
    rank, between the backward and the step (a collective).

    Each rank sends its touched rows once (the gradient is already summed over the rank's own
    duplicate ids): an ``Allgather`` of the row counts, then ``Allgatherv`` of the ids and of
    the rows (one MPI datatype per row, so counts stay small). When the gathered rows would
    outnumber the table's (sum of the counts > num_embeddings) the whole gradient goes through
    one dense ``Allreduce`` instead, with a byte per row for the union of touched rows: MPI
    advises implementations to give every rank the same bits there, and the sum is in MPI's
    order, not rank order. ``dense``: force one way (True / False); None picks as above.

    Returns ``"sparse"``, ``"dense"`` or ``"none"`` (no rank had a gradient). Multiply the
    learning rate by ``1 / comm.size`` (or scale the loss) for a mean instead of a sum.

    Example (run with ``mpiexec -n 4 python train.py``)::

        emb = pyembed.Embedding(1000, 64, seed=0)          # the same on every rank
        opt = pyembed.optim.Adam(emb, lr=1e-3, lazy=True)
        out = emb(my_ids); emb.backward(my_ids, grad_out)  # this rank's batch
        pyembed.distributed.allreduce_sparse_grad(emb)
        opt.step(); opt.zero_grad()                         # replicas stay equal
    """
    t = _table_of(table)
    if dense is not None and not isinstance(dense, bool):
        raise TypeError(f"dense must be None or a bool, got {dense!r}")
    from mpi4py import MPI
    if comm is None:
        comm = MPI.COMM_WORLD
    if not isinstance(comm, MPI.Comm):
        raise TypeError(f"comm must be an mpi4py communicator, got {type(comm).__name__}")
    rows = t.touched
    counts = np.zeros(comm.Get_size(), np.int64)
    comm.Allgather(np.array([rows.size], np.int64), counts)
    total = int(counts.sum())
    if total == 0:
        return "none"
    V, D = t.shape
    use_dense = total > V if dense is None else dense
    grad = t.grad
    if use_dense:
        g = np.zeros(t.shape, t.dtype) if grad is None else np.array(grad)
        mask = np.zeros(V, np.uint8)
        mask[rows] = 1
        comm.Allreduce(MPI.IN_PLACE, g, op=MPI.SUM)
        comm.Allreduce(MPI.IN_PLACE, mask, op=MPI.MAX)
        union = np.flatnonzero(mask)
        ids, vals = union, np.take(g, union, axis=0)
    elif D == 0:
        ids, vals = np.empty(total, np.int64), np.zeros((total, 0), t.dtype)
        comm.Allgatherv(rows, [ids, counts, np.cumsum(counts) - counts, MPI.INT64_T])
    else:
        mine = np.take(grad, rows, axis=0) if rows.size else np.zeros((0, D), t.dtype)
        displs = np.cumsum(counts) - counts
        ids = np.empty(total, np.int64)
        comm.Allgatherv(rows, [ids, counts, displs, MPI.INT64_T])
        vals = np.empty((total, D), t.dtype)
        row_type = (MPI.DOUBLE if t.dtype == np.float64 else MPI.FLOAT).Create_contiguous(D)
        row_type.Commit()
        try:
            comm.Allgatherv([mine, rows.size, row_type], [vals, counts, displs, row_type])
        finally:
            row_type.Free()
    # the table's backward sums each row's contributions in the order they come: rank order
    t.zero_grad()
    t.backward(ids, vals)
    return "dense" if use_dense else "sparse"

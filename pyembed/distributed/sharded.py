"""pyembed.distributed.ShardedEmbedding: an embedding table sharded by rows over MPI ranks.

Row ``r`` lives on rank ``r % size`` at local row ``r // size`` (pyembed/distributed/routing.py).
Each rank brings its own batch. Forward: distinct ids are routed to their owners (``Alltoall`` of
counts, ``Alltoallv`` of ids), owners gather with the C kernel, rows come back with a second
``Alltoallv`` in a contiguous row datatype. Backward: every occurrence's gradient row goes to its
owner, which adds them with the C scatter kernel in the order of one process that got the ranks'
batches concatenated in rank order (by source rank, then position).

**The promise**: P ranks each training on their own batch give, bit for bit, the weights of one
process training on the concatenation of those batches in rank order (tests/distributed/).

Bad input on one rank raises there, and the other ranks raise a RuntimeError naming it, at the
first exchange of counts: no rank is left waiting in a collective and no table changes.
"""
from __future__ import annotations

import os

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .._checks import (as_float, check_float_dtype, check_ids, check_int, check_padding_idx,
                       check_seed)
from .._core import Table, fill_normal, fill_uniform
from .._util import fspath
from . import checkpoint
from .mpi import default_comm, load_mpi, row_type
from .routing import displacements, num_local_rows, occurrence_plan, unique_plan

__all__ = ["ShardedEmbedding"]

_INITS = ("normal", "uniform", "zeros")
_REFUSED = -1  # a count no rank sends: "my input was bad, everybody stop"


def _seed(comm, seed):
    """One seed for every rank: the given one, or rank 0's random one."""
    seed = check_seed(seed)
    if seed is None:
        return comm.bcast(int.from_bytes(os.urandom(8), "little"), root=0)
    return seed


class ShardedEmbedding:
    """A ``(num_embeddings, embedding_dim)`` table whose rows are spread over the ranks of
    ``comm`` (default ``MPI.COMM_WORLD``); every rank creates it with the same arguments.

    Args:
        num_embeddings, embedding_dim, padding_idx, dtype, std: as :class:`pyembed.Embedding`.
        init: ``"normal"``, ``"uniform"`` (bound sqrt(3) * std) or ``"zeros"``.
        seed: a seeded table is the same for every number of ranks, and equal to
            ``pyembed.Embedding(num_embeddings, embedding_dim, seed=seed)`` (row ``r`` depends
            only on the seed and ``r``). Without one, rank 0 draws a seed for all.

    Every method that communicates is collective: all ranks call it, in the same order.
    ``pyembed.optim`` optimizers step each rank's shard (``weight`` is the local rows); a step
    is collective too (it asks whether any rank has gradient, as one process would). With
    ``in_backward=True`` an owner updates its rows inside :meth:`backward` as their gradient rows
    arrive (no gradient buffer; the same bits as one process's optimizer in the backward).

    Example (``mpiexec -n 4 python train.py``)::

        shard = ShardedEmbedding(1_000_000, 64, seed=0)
        opt = pyembed.optim.SparseAdam(shard, lr=1e-3)
        x = shard(my_ids)                   # this rank's batch
        shard.backward(my_ids, grad_x)
        opt.step(); opt.zero_grad()
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, *, comm=None,
                 padding_idx: int | None = None, dtype: DTypeLike = np.float32,
                 init: str = "normal", std: float = 1.0, seed: int | None = None) -> None:
        num_embeddings = check_int("num_embeddings", num_embeddings, 0)
        embedding_dim = check_int("embedding_dim", embedding_dim, 0)
        dt = check_float_dtype(dtype)
        padding_idx = check_padding_idx(padding_idx, num_embeddings)
        std = as_float("std", std)
        if not std >= 0:
            raise ValueError(f"std must be >= 0, got {std}")
        if not (isinstance(init, str) and init in _INITS):
            raise ValueError(f"init must be one of {_INITS}, got {init!r}")
        comm = default_comm(comm)
        s = _seed(comm, seed)
        self.comm, self.rank, self.size = comm, comm.Get_rank(), comm.Get_size()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        self.requires_grad = True
        self.sparse = False
        self.in_backward_hook = None  # an optim.InBackward when an optimizer runs in the backward
        self.table = Table(num_local_rows(num_embeddings, self.rank, self.size), embedding_dim, dt)
        w = self.table.weight
        if init == "normal":
            fill_normal(w, s, 0.0, std, self.rank, self.size)
        elif init == "uniform":
            b = float(np.sqrt(3.0) * std)
            fill_uniform(w, s, -b, b, self.rank, self.size)
        if padding_idx is not None and padding_idx % self.size == self.rank:
            w[padding_idx // self.size] = 0
        self.bytes_sent = 0  # ids and rows this rank sent to other ranks (the bench reads it)
        self._plan = None    # the last forward's (ids, occurrence order, counts), for backward

    # -- the exchanges ---------------------------------------------------------------------------
    def _exchange_counts(self, counts, error):
        """Alltoall of per-rank counts; a rank whose input was bad sends _REFUSED to all, so that
        every rank raises instead of waiting in the next collective."""
        MPI = load_mpi()
        send = (np.full(self.size, _REFUSED, np.int64) if error is not None
                else counts.astype(np.int64))
        recv = np.empty(self.size, np.int64)
        self.comm.Alltoall([send, MPI.INT64_T], [recv, MPI.INT64_T])
        refused = np.flatnonzero(recv == _REFUSED)
        if error is not None:
            raise error
        if refused.size:
            raise RuntimeError(f"rank {int(refused[0])} refused its input (see its own error); "
                               f"no table changed")
        return recv

    def _alltoallv(self, send, send_counts, recv, recv_counts, datatype):
        self.comm.Alltoallv([send, (send_counts, displacements(send_counts)), datatype],
                            [recv, (recv_counts, displacements(recv_counts)), datatype])

    def _rows_alltoallv(self, send, send_counts, recv_counts):
        """Rows of this table's width, counted in rows (a contiguous row datatype)."""
        recv = np.empty((int(recv_counts.sum()), self.embedding_dim), self.dtype)
        if self.embedding_dim:
            rt = row_type(self.dtype, self.embedding_dim)
            try:
                self._alltoallv(send, send_counts, recv, recv_counts, rt)
            finally:
                rt.Free()
        return recv

    def _sent(self, counts, item_bytes):
        self.bytes_sent += int(counts.sum() - counts[self.rank]) * item_bytes

    # -- forward / backward ----------------------------------------------------------------------
    def __call__(self, ids: ArrayLike) -> np.ndarray:
        """``W[ids]`` for this rank's ``ids``. See :meth:`forward`."""
        return self.forward(ids)

    def forward(self, ids: ArrayLike) -> np.ndarray:
        """The rows of this rank's ``ids`` (any integer dtype and shape), shape
        ``ids.shape + (embedding_dim,)``. Collective."""
        MPI = load_mpi()
        error = flat = None
        try:
            ids = check_ids(ids, self.num_embeddings, f"an embedding of {self.num_embeddings} rows")
            flat = np.ascontiguousarray(ids).ravel()
            send_ids, counts, where = unique_plan(flat, self.size)
        except (TypeError, ValueError, IndexError, OverflowError) as e:
            error, counts = e, None
        recv_counts = self._exchange_counts(counts, error)
        recv_ids = np.empty(int(recv_counts.sum()), np.int64)
        self._alltoallv(send_ids, counts, recv_ids, recv_counts, MPI.INT64_T)
        rows = self.table.lookup(recv_ids // self.size)
        out_u = self._rows_alltoallv(rows, recv_counts, counts)
        self._sent(counts, 8)
        self._sent(recv_counts, self.embedding_dim * self.dtype.itemsize)
        self._plan = (flat.copy(), *occurrence_plan(flat, self.size, self.padding_idx))
        return np.take(out_u, where, axis=0).reshape(ids.shape + (self.embedding_dim,))

    def backward(self, ids: ArrayLike, grad_output: ArrayLike) -> None:
        """Add this rank's gradient of the lookup of ``ids`` to the owners' :attr:`grad`
        (``np.add.at`` over all ranks' batches, the padding row left out), summed in one
        process's order. A no-op when ``requires_grad`` is False (on every rank). Collective."""
        if not self.requires_grad:
            return None
        if self.in_backward_hook is not None:
            # every rank has run the same backwards and steps: all raise here, none waits
            self.in_backward_hook.begin()
        MPI = load_mpi()
        error = counts = None
        try:
            ids = check_ids(ids, self.num_embeddings, f"an embedding of {self.num_embeddings} rows")
            flat = np.ascontiguousarray(ids).ravel()
            g = np.asarray(grad_output)
            if g.dtype.kind not in "biuf":
                raise TypeError(f"grad_output must be an array of real numbers, got dtype "
                                f"{g.dtype}")
            want = ids.shape + (self.embedding_dim,)
            if g.shape != want:
                raise ValueError(f"grad_output has shape {g.shape} but ids of shape {ids.shape} "
                                 f"need {want}")
            g = g.reshape(flat.size, self.embedding_dim)
            p = self._plan
            if p is not None and p[0].shape == flat.shape and np.array_equal(p[0], flat):
                order, counts = p[1], p[2]  # the forward's plan: the same batch
            else:
                order, counts = occurrence_plan(flat, self.size, self.padding_idx)
            send_ids = flat[order]
            send_rows = np.take(g, order, axis=0).astype(self.dtype, copy=False)
        except (TypeError, ValueError, IndexError, OverflowError) as e:
            error = e
        recv_counts = self._exchange_counts(counts, error)
        recv_ids = np.empty(int(recv_counts.sum()), np.int64)
        self._alltoallv(send_ids, counts, recv_ids, recv_counts, MPI.INT64_T)
        recv_rows = self._rows_alltoallv(np.ascontiguousarray(send_rows), counts, recv_counts)
        self._sent(counts, 8 + self.embedding_dim * self.dtype.itemsize)
        # received in source-rank order, each source's rows in its batch order: exactly the
        # sequence one process would add for each of these rows
        self.accumulate(recv_ids // self.size, recv_rows)
        return None

    def accumulate(self, local_ids: np.ndarray, grad_rows: np.ndarray) -> None:
        """Where an owner's gradient rows land: ``np.add.at(grad, local_ids, grad_rows)`` on this
        rank's table, in the order given; or, with an optimizer applied in the backward
        (``in_backward=True``), that optimizer's update of these rows, summed in that order.
        Collective with an optimizer in the backward: one process takes a step when any row of
        the concatenated batches is not padding, so every rank steps (its counter advances) when
        any rank received a row."""
        hook = self.in_backward_hook
        if hook is None:
            self.table.backward(local_ids, grad_rows)
            return
        MPI = load_mpi()
        if self.comm.allreduce(int(local_ids.size), op=MPI.SUM):
            if local_ids.size:
                hook.run(hook.group, grad_rows, None, ids=local_ids, padding_idx=None,
                         scale_grad_by_freq=False)
            else:  # no row here: the state (and its step counter) advance as one process's
                hook.run(hook.group, np.zeros((0, self.embedding_dim), self.dtype),
                         np.zeros(0, np.int64), compact=True)
        hook.pending = True

    def sparse_grad_buffer(self):
        """None: a sharded table keeps a dense gradient of its own rows (``sparse=True`` is not
        supported), or none at all with an optimizer applied in the backward."""
        return None

    def step_grad(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(grad, touched local rows)`` for an optimizer step, ``(None, None)`` when no rank has
        gradient (one process would skip the step). A rank with no touched row of its own still
        steps (Adam's counter stays the same on every rank). Collective: optimizers call it."""
        MPI = load_mpi()
        total = self.comm.allreduce(int(self.table.num_touched), op=MPI.SUM)
        if total == 0:
            return None, None
        if self.table.grad is None:  # allocates the (zero) gradient, touches nothing
            self.table.backward(np.zeros(0, np.int64), np.zeros((0, self.embedding_dim), self.dtype))
        return self.table.grad, self.table.touched

    def zero_grad(self) -> None:
        """Clear this rank's gradient (its touched rows only). Not collective."""
        self.table.zero_grad()

    def parameters(self) -> list[ShardedEmbedding]:
        """What an optimizer updates: ``[self]`` (each rank its own rows)."""
        return [self]

    # -- the whole table, checkpoints -----------------------------------------------------------
    def gather_weight(self, root: int = 0) -> np.ndarray | None:
        """The whole ``(num_embeddings, embedding_dim)`` table on rank ``root`` (None on the
        others), for checks and export. Collective."""
        root = check_int("root", root, 0)
        if root >= self.size:
            raise ValueError(f"root must be a rank below {self.size}, got {root}")
        counts = np.array([num_local_rows(self.num_embeddings, k, self.size)
                           for k in range(self.size)], np.int64)
        blocks = np.empty((int(counts.sum()) if self.rank == root else 0, self.embedding_dim),
                          self.dtype)
        if self.embedding_dim:
            rt = row_type(self.dtype, self.embedding_dim)
            try:
                self.comm.Gatherv([self.table.weight, rt],
                                  [blocks, (counts, displacements(counts)), rt], root=root)
            finally:
                rt.Free()
        if self.rank != root:
            return None
        w = np.empty((self.num_embeddings, self.embedding_dim), self.dtype)
        for k, start in enumerate(displacements(counts)):
            w[k::self.size] = blocks[start:start + counts[k]]
        return w

    def save(self, folder, optimizer=None) -> None:
        """Write a checkpoint into ``folder`` (created if needed): each rank its rows and, with
        ``optimizer``, the optimizer state of its rows, atomically; then rank 0 the manifest.
        Load it with :meth:`load` on any number of ranks. Collective."""
        folder = fspath(folder, "folder")
        state = self._optimizer_state(optimizer)
        arrays = {"weight": self.table.weight}
        scalars = {}
        for k, v in state.items():
            if isinstance(v, np.ndarray) and v.shape[:1] == (self.table.num_embeddings,):
                arrays["state." + k] = v
            else:
                scalars[k] = int(v)
        error = None
        try:
            os.makedirs(folder, exist_ok=True)
            checkpoint.write_rank(folder, self.rank, self.size, arrays)
        except OSError as e:
            error = e
        errors = self.comm.allgather(None if error is None else repr(error))
        if error is not None:
            raise error
        if any(errors):
            raise RuntimeError(f"another rank could not write its part: {errors}")
        if self.rank == 0:
            checkpoint.write_manifest(folder, dict(
                size=self.size, num_embeddings=self.num_embeddings,
                embedding_dim=self.embedding_dim, dtype=self.dtype.name,
                padding_idx=self.padding_idx, optimizer_scalars=scalars))
        self.comm.Barrier()

    def _optimizer_state(self, optimizer):
        if optimizer is None:
            return {}
        params = [p for g in getattr(optimizer, "param_groups", ()) for p in g["params"]
                  if getattr(p, "table", None) is self.table]
        if not params:
            raise ValueError("optimizer does not optimize this ShardedEmbedding")
        return optimizer.state.get(params[0], {})

    @classmethod
    def load(cls, folder, comm=None) -> ShardedEmbedding:
        """The table saved by :meth:`save`, re-sharded over ``comm`` (any number of ranks).
        Collective. The optimizer state comes back with :meth:`load_optimizer_state`."""
        folder, m = checkpoint.read_manifest(folder)
        obj = cls(m["num_embeddings"], m["embedding_dim"], comm=comm,
                  padding_idx=m["padding_idx"], dtype=m["dtype"], init="zeros", seed=0)
        arrays = checkpoint.read_rows(folder, m, obj.rank, obj.size)
        obj.table.weight = arrays["weight"]
        return obj

    def load_optimizer_state(self, folder, optimizer) -> None:
        """Give ``optimizer`` (already built over this table) the state saved beside the rows
        in ``folder``, re-sharded for this number of ranks. Not collective."""
        folder, m = checkpoint.read_manifest(folder)
        params = [p for g in getattr(optimizer, "param_groups", ()) for p in g["params"]
                  if getattr(p, "table", None) is self.table]
        if not params:
            raise ValueError("optimizer does not optimize this ShardedEmbedding")
        arrays = checkpoint.read_rows(folder, m, self.rank, self.size)
        state = {k[len("state."):]: v for k, v in arrays.items() if k.startswith("state.")}
        state.update(m["optimizer_scalars"])
        if state:
            optimizer.state[params[0]] = state

    # -- attributes ---------------------------------------------------------------------------
    @property
    def weight(self) -> np.ndarray:
        """This rank's rows ``r % size == rank``, in order (the table's memory)."""
        return self.table.weight

    @property
    def grad(self) -> np.ndarray | None:
        """This rank's rows' gradient (read-only), or None before the first backward."""
        return self.table.grad

    @property
    def local_rows(self) -> np.ndarray:
        """The global ids of this rank's rows."""
        return np.arange(self.rank, self.num_embeddings, self.size, dtype=np.int64)

    @property
    def dtype(self) -> np.dtype:
        return self.table.dtype

    def __repr__(self):
        return (f"ShardedEmbedding({self.num_embeddings}, {self.embedding_dim}, rank {self.rank} "
                f"of {self.size}, {self.table.num_embeddings} local rows)")

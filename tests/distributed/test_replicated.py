"""pyembed.distributed.allreduce_sparse_grad: replicated tables summed over MPI ranks.

Run under MPI: ``mpiexec -n K python -m pytest tests/distributed/test_replicated.py`` (K = 1..4;
every rank runs every test, in the same order, as the collectives need). Outside mpiexec only the
argument checks run: MPI is never initialised in a plain pytest process, whose later tests fork.
"""
import os

import numpy as np
import pytest

import pyembed
from pyembed.distributed._replicated import allreduce_sparse_grad

UNDER_MPI = any(k in os.environ for k in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"))


@pytest.fixture(scope="module")
def comm():
    pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install 'pyembed[mpi]')")
    if not UNDER_MPI:
        pytest.skip("not under mpiexec: run mpiexec -n K python -m pytest "
                    "tests/distributed/test_replicated.py")
    from mpi4py import MPI
    return MPI.COMM_WORLD


def rank_batch(r, V, n, seed):
    """Rank r's ids: the same on every rank, so each can compute the others' gradients."""
    return np.random.default_rng([seed, r]).integers(0, V, n)


def local_grad(V, D, dtype, ids, seed):
    t = pyembed.Table(V, D, dtype)
    g = np.random.default_rng([seed, 99, len(ids)]).standard_normal((len(ids), D))
    t.backward(ids, g.astype(dtype))
    return t


def reference(V, D, dtype, batches, seed):
    """The rows summed in rank order (0 + g_0 + g_1 + ...) and the union of touched rows."""
    ref, touched = np.zeros((V, D), dtype), set()
    for ids in batches:
        t = local_grad(V, D, dtype, ids, seed)
        if t.grad is not None:
            rows = t.touched
            ref[rows] += t.grad[rows]
            touched.update(rows.tolist())
    return ref, np.array(sorted(touched), np.int64)


def same_everywhere(comm, arr):
    mine = np.ascontiguousarray(arr).tobytes()
    return all(b == mine for b in comm.allgather(mine))


SIZES = {"uneven": lambda r, P: 3 * r + 2, "rank 1 empty": lambda r, P: 0 if r == 1 else 7,
         "all empty but last": lambda r, P: 5 if r == P - 1 else 0}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sizes", list(SIZES), ids=list(SIZES))
def test_sparse_sum_in_rank_order(comm, dtype, sizes):
    P, r, V, D, seed = comm.size, comm.rank, 6, 8, 7  # rows shared by every rank
    batches = [rank_batch(q, V, SIZES[sizes](q, P), seed) for q in range(P)]
    t = local_grad(V, D, dtype, batches[r], seed)
    ref, rows = reference(V, D, dtype, batches, seed)
    assert allreduce_sparse_grad(t, comm, dense=False) == "sparse"
    assert np.array_equal(t.touched, rows)
    assert np.array_equal(t.grad, ref)  # same additions in the same order: the same bits
    assert same_everywhere(comm, t.grad)


def test_dense_path_keeps_replicas_equal(comm):
    P, r, V, D, seed = comm.size, comm.rank, 20, 3, 3
    batches = [rank_batch(q, V, 30, seed) for q in range(P)]  # ~17 distinct rows of 20 each
    t = local_grad(V, D, np.float32, batches[r], seed)
    ref, rows = reference(V, D, np.float32, batches, seed)
    total = sum(np.unique(b).size for b in batches)
    assert allreduce_sparse_grad(t, comm) == ("dense" if total > V else "sparse")
    assert np.array_equal(t.touched, rows)
    # MPI's order of additions, not rank order: equal to rounding, and equal on every rank
    np.testing.assert_allclose(t.grad, ref, rtol=1e-5, atol=1e-6)
    assert same_everywhere(comm, t.grad)
    emb = pyembed.Embedding(V, D, seed=0)
    emb.backward(batches[r], np.ones((30, D), np.float32))
    assert allreduce_sparse_grad(emb, comm, dense=True) == "dense"
    pyembed.optim.Adam(emb, lr=0.1, lazy=True).step()
    assert same_everywhere(comm, emb.weight)


def test_training_keeps_replicas_bitwise_equal(comm):
    V, D = 40, 4
    emb = pyembed.Embedding(V, D, seed=1, padding_idx=0)
    opt = pyembed.optim.Adam(emb, lr=0.05, lazy=True)
    for step in range(5):
        ids = rank_batch(comm.rank, V, 4 + comm.rank, step)
        out = emb(ids)
        emb.backward(ids, out - 1.0)
        allreduce_sparse_grad(emb, comm)
        opt.step()
        opt.zero_grad()
    assert same_everywhere(comm, emb.weight)


def test_nothing_touched_anywhere(comm):
    t = pyembed.Table(5, 2)
    assert allreduce_sparse_grad(t, comm) == "none"
    assert t.grad is None


def test_bad_arguments_refused_before_any_communication():
    t = pyembed.Table(5, 2)
    with pytest.raises(TypeError, match="table must be a pyembed.Embedding or Table"):
        allreduce_sparse_grad(np.zeros((5, 2)), None)
    with pytest.raises(TypeError, match="dense must be None or a bool"):
        allreduce_sparse_grad(t, None, dense=1)
    if UNDER_MPI:
        pytest.importorskip("mpi4py", reason="mpi4py is not installed")
        with pytest.raises(TypeError, match="comm must be an mpi4py communicator"):
            allreduce_sparse_grad(t, "world")

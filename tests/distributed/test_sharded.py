"""The promise of pyembed.distributed.ShardedEmbedding: P ranks, each training on its own batch,
give bit for bit the weights of one process (pyembed.Embedding) training on the concatenation of
the batches in rank order. Every rank draws every rank's batch from one seed, trains its shard on
its own and the single-process reference on all of them, and compares."""
import numpy as np
import pytest

import pyembed
import pyembed.optim as optim
from pyembed.distributed import ShardedEmbedding

OPTIMIZERS = {
    "SparseAdam": lambda p: optim.SparseAdam(p, lr=0.05),
    "Adam lazy": lambda p: optim.Adam(p, lr=0.05, lazy=True, weight_decay=0.01),
    "Adam dense amsgrad": lambda p: optim.Adam(p, lr=0.05, amsgrad=True, weight_decay=0.01),
    "AdamW lazy per-row step": lambda p: optim.AdamW(p, lr=0.05, lazy=True, per_row_step=True),
    "SGD momentum nesterov": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "SGD": lambda p: optim.SGD(p, lr=0.1),
    # applied in the backward: the owners update their rows as the gradient rows arrive
    "Adam lazy in backward": lambda p: optim.Adam(p, lr=0.05, lazy=True, weight_decay=0.01,
                                                  in_backward=True),
    "SparseAdam in backward": lambda p: optim.SparseAdam(p, lr=0.05, in_backward=True),
    "AdamW per-row step in backward": lambda p: optim.AdamW(p, lr=0.05, lazy=True,
                                                            per_row_step=True, in_backward=True),
    "SGD momentum in backward": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, lazy=True,
                                                    in_backward=True),
    "RowWiseAdagrad in backward": lambda p: optim.RowWiseAdagrad(p, lr=0.1, lr_decay=0.01,
                                                                 in_backward=True),
    "Adagrad lazy in backward": lambda p: optim.Adagrad(p, lr=0.1, lr_decay=0.01, lazy=True,
                                                        in_backward=True),
}


def draw(seed, size, steps, high, dim, dtype, max_len=9, owner_zero=False, empty_rank=None):
    """steps x size (ids, grad_output) pairs; batch lengths 0..max_len-1 (rarely divisible
    by the number of ranks), ids of shape (n, 2); with owner_zero every id lives on rank 0."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        step = []
        for k in range(size):
            n = 0 if k == empty_rank else int(rng.integers(0, max_len))
            ids = rng.integers(0, high, (n, 2))
            if owner_zero:
                ids = ids * size
            step.append((ids, rng.standard_normal((n, 2, dim)).astype(dtype)))
        out.append(step)
    return out


def train(comm, data, num_embeddings, dim, make_opt, *, dtype=np.float32, padding_idx=None,
          accumulate=1):
    """Train a shard and the one-process reference on ``data``; returns (gathered shard
    weight on every rank, reference weight, lookups equal, the shard's optimizer)."""
    rank = comm.Get_rank()
    shard = ShardedEmbedding(num_embeddings, dim, comm=comm, seed=11, dtype=dtype,
                             padding_idx=padding_idx)
    ref = pyembed.Embedding(num_embeddings, dim, seed=11, dtype=dtype, padding_idx=padding_idx)
    opt_s, opt_r = make_opt(shard), make_opt(ref)
    lookups_ok = True
    for i, step in enumerate(data):
        ids, g = step[rank]
        x = shard(ids)
        lookups_ok &= x.shape == ids.shape + (dim,) and np.array_equal(x, ref.weight[ids])
        shard.backward(ids, g)
        ref.backward(np.concatenate([b.reshape(-1) for b, _ in step]),
                     np.concatenate([h.reshape(-1, dim) for _, h in step]))
        if (i + 1) % accumulate == 0:
            opt_s.step(), opt_s.zero_grad()
            opt_r.step(), opt_r.zero_grad()
    return comm.bcast(shard.gather_weight(), root=0), ref.weight, lookups_ok, opt_s


def same_bits(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_promise(comm, agree, name):
    size = comm.Get_size()
    data = draw(1, size, 6, 23, 5, np.float32, empty_rank=size - 1 if size > 1 else None)
    w, ref, lookups_ok, _ = train(comm, data, 23, 5, OPTIMIZERS[name], padding_idx=4)
    assert agree(lookups_ok), "a lookup differs from the one-process table"
    assert agree(same_bits(w, ref)), "the weights differ from one process's"


def test_every_id_on_one_owner_float64_accumulated(comm, agree):
    size = comm.Get_size()
    data = draw(2, size, 6, 9, 3, np.float64, owner_zero=True)
    w, ref, lookups_ok, _ = train(comm, data, 9 * size, 3, OPTIMIZERS["Adam lazy"],
                                  dtype=np.float64, accumulate=2)
    assert agree(lookups_ok and same_bits(w, ref))


def test_adam_counter_same_on_every_rank(comm, agree):
    """Ranks that own no touched row still count the step; a step where no rank has a gradient
    is skipped everywhere (one process skips it)."""
    size = comm.Get_size()
    data = draw(3, size, 4, 40, 2, np.float32)
    data[2] = [(np.zeros((0, 2), np.int64), np.zeros((0, 2, 2), np.float32))] * size
    data[3] = [(np.full((1, 2), 0), np.ones((1, 2, 2), np.float32))] + data[3][1:]
    w, ref, ok, opt = train(comm, data, 40, 2, OPTIMIZERS["SparseAdam"])
    steps = comm.allgather(int(opt.state[opt.param_groups[0]["params"][0]]["step"]))
    assert agree(ok and same_bits(w, ref))
    assert steps == [3] * size


@pytest.mark.parametrize("name", ["Adam lazy in backward", "Adagrad lazy in backward"])
def test_in_backward_counter_same_on_every_rank(comm, agree, name):
    """Applied in the backward: a rank that receives no row still counts the step when another
    rank received one, an all-padding backward counts on no rank (as one process), the table
    keeps no gradient, and a second backward without a step is refused on every rank."""
    size = comm.Get_size()
    data = draw(3, size, 4, 40, 2, np.float32)
    data[2] = [(np.full((2, 2), 4), np.ones((2, 2, 2), np.float32))] * size  # padding only
    data[3] = [(np.full((1, 2), 0), np.ones((1, 2, 2), np.float32))] + [
        (np.zeros((0, 2), np.int64), np.zeros((0, 2, 2), np.float32))] * (size - 1)
    w, ref, ok, opt = train(comm, data, 40, 2, OPTIMIZERS[name], padding_idx=4)
    shard = opt.param_groups[0]["params"][0].emb
    steps = comm.allgather(int(opt.state[opt.param_groups[0]["params"][0]]["step"]))
    assert agree(ok and same_bits(w, ref))
    assert steps == [3] * size
    assert shard.grad is None
    ids = np.zeros((1, 2), np.int64)
    shard.backward(ids, np.ones((1, 2, 2), np.float32))
    with pytest.raises(RuntimeError, match="without opt.step"):
        shard.backward(ids, np.ones((1, 2, 2), np.float32))


@pytest.mark.parametrize("init", ["normal", "uniform"])
def test_seeded_table_equals_embedding(comm, agree, init):
    shard = ShardedEmbedding(29, 7, comm=comm, seed=5, init=init, std=0.5, dtype=np.float64)
    w = comm.bcast(shard.gather_weight(), root=0)
    ref = pyembed.Embedding(29, 7, seed=5, init=init, std=0.5, dtype=np.float64).weight
    assert agree(same_bits(w, ref)), "the seeded table depends on the number of ranks"
    assert agree(same_bits(shard.weight, ref[comm.Get_rank()::comm.Get_size()]))


def test_ids_above_2_31_cross_ranks(comm, agree):
    """int64 ids above 2^31 routed through MPI: a table of 2^31 + 7 rows of width 0 (no bytes;
    the arithmetic placing wide rows is tested in test_routing.py)."""
    rank, size = comm.Get_rank(), comm.Get_size()
    n = 2**31 + 7
    shard = ShardedEmbedding(n, 0, comm=comm, init="zeros")
    ids = np.array([n - 1 - rank, 2**31 + rank % 3, 5, n - 1 - rank], np.int64)
    x = shard(ids)
    shard.backward(ids, np.zeros((4, 0), np.float32))
    every = np.unique(np.concatenate(comm.allgather(ids)))
    mine = every[every % size == rank] // size
    assert agree(x.shape == (4, 0) and np.array_equal(shard.table.touched, mine))


def test_bad_ids_on_one_rank_refused_by_all(comm, agree):
    rank, size = comm.Get_rank(), comm.Get_size()
    shard = ShardedEmbedding(10, 3, comm=comm, seed=0)
    before = shard.weight.copy()
    ids = np.array([1, 10 if rank == size - 1 else 2])
    with pytest.raises((IndexError, RuntimeError)) as e:
        shard(ids)
    want = IndexError if rank == size - 1 else RuntimeError
    g = np.ones((2, 4), np.float32)  # wrong width on rank 0
    with pytest.raises((ValueError, RuntimeError)) as e2:
        shard.backward(np.array([1, 2]), g if rank == 0 else g[:, :3])
    ok_fwd = isinstance(e.value, want) and ("index 10" in str(e.value) or "rank" in str(e.value))
    ok_bwd = isinstance(e2.value, ValueError if rank == 0 else RuntimeError)
    assert agree(ok_fwd and ok_bwd and same_bits(shard.weight, before) and shard.grad is None)
    # and the table still works afterwards
    x = shard(np.array([rank % 10]))
    assert agree(same_bits(x[0], comm.bcast(shard.gather_weight(), root=0)[rank % 10]))


def test_arguments_checked(comm):
    with pytest.raises(ValueError, match="init"):
        ShardedEmbedding(4, 2, comm=comm, init="ones")
    with pytest.raises(TypeError, match="comm"):
        ShardedEmbedding(4, 2, comm="world")
    with pytest.raises(ValueError, match="num_embeddings"):
        ShardedEmbedding(-1, 2, comm=comm)
    with pytest.raises(ValueError, match="std"):
        ShardedEmbedding(4, 2, comm=comm, std=-1.0)
    shard = ShardedEmbedding(4, 2, comm=comm, seed=0)
    with pytest.raises(ValueError, match="root"):
        shard.gather_weight(root=comm.Get_size())


def test_requires_grad_false_changes_nothing(comm, agree):
    shard = ShardedEmbedding(8, 2, comm=comm, seed=1)
    shard.requires_grad = False
    shard.backward([1, 2], np.ones((2, 2), np.float32))
    assert agree(shard.grad is None)


def test_bad_calls_name_the_argument(comm, agree):
    """Bad input given on every rank: each raises its own error, nothing changes."""
    shard = ShardedEmbedding(6, 2, comm=comm, seed=0)
    before = shard.weight.copy()
    with pytest.raises(TypeError, match="seed"):
        ShardedEmbedding(6, 2, comm=comm, seed=1.5)
    with pytest.raises(ValueError, match="seed"):
        ShardedEmbedding(6, 2, comm=comm, seed=-1)
    with pytest.raises(TypeError, match="ids"):
        shard([0.5])
    with pytest.raises(TypeError, match="grad_output"):
        shard.backward([1], np.full((1, 2), "x"))
    with pytest.raises(ValueError, match=r"\(3, 2\)"):
        shard.backward([1, 2], np.ones((3, 2), np.float32))
    with pytest.raises(TypeError, match="folder"):
        shard.save(3.5)
    other = optim.SGD(pyembed.Embedding(3, 2, seed=0), lr=0.1)
    with pytest.raises(ValueError, match="optimizer"):
        shard.save("unused-folder", optimizer=other)
    with pytest.raises(TypeError, match="root"):
        shard.gather_weight(root="0")
    assert agree(same_bits(shard.weight, before) and shard.grad is None)


def test_clip_grad_norm_refuses_a_shard(comm):
    """Its norm would be this rank's alone: refused rather than wrong."""
    shard = ShardedEmbedding(6, 2, comm=comm, seed=0)
    with pytest.raises(NotImplementedError, match="ShardedEmbedding"):
        optim.clip_grad_norm_(shard, 1.0)

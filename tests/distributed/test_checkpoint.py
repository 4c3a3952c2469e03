"""Checkpoints of a ShardedEmbedding: saved by all the ranks of a run, loaded on every smaller
number of ranks (communicators split from the run's: under ``mpiexec -n 4`` a save by 4 ranks
loads on 3, 2 and 1), the rows and the optimizer state re-sharded, and training continued from
the loaded state gives the bits of training that never stopped."""
import os
import pathlib
import shutil
import tempfile

import numpy as np
import pytest

import pyembed.optim as optim
from pyembed.distributed import ShardedEmbedding


def same_bits(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def steps(shard, opt, rng_seed, n, rank):
    rng = np.random.default_rng(rng_seed + rank)
    for _ in range(n):
        ids = rng.integers(0, shard.num_embeddings, int(rng.integers(0, 7)))
        shard(ids)
        shard.backward(ids, rng.standard_normal((ids.size, shard.embedding_dim)).astype(np.float32))
        opt.step()
        opt.zero_grad()


@pytest.fixture
def folder(comm):
    """One new folder for every rank, made by rank 0 and removed after the test (not pytest's
    tmp_path: the ranks' pytest processes would clean up each other's base folders)."""
    path = comm.bcast(tempfile.mkdtemp(prefix="pyembed-sharded-") if comm.Get_rank() == 0
                      else None, root=0)
    yield path
    comm.Barrier()
    if comm.Get_rank() == 0:
        shutil.rmtree(path)


def full_state(comm, shard, st):
    """Every rank's row-shaped optimizer state assembled into whole-table arrays (on all ranks);
    scalars as they are."""
    rank, size, n = comm.Get_rank(), comm.Get_size(), shard.num_embeddings
    out = {}
    for k, v in st.items():
        if isinstance(v, np.ndarray):
            whole = np.zeros((n,) + v.shape[1:], v.dtype)
            whole[rank::size] = v
            out[k] = comm.allreduce(whole)
        else:
            out[k] = v
    return out


@pytest.mark.parametrize("make_opt", [lambda p: optim.Adam(p, lr=0.1, lazy=True, amsgrad=True),
                                      lambda p: optim.AdamW(p, lazy=True, per_row_step=True),
                                      lambda p: optim.SGD(p, lr=0.1, momentum=0.5)],
                         ids=["Adam", "AdamW per-row", "SGD"])
def test_save_then_load_on_fewer_ranks(comm, agree, folder, make_opt):
    rank, size = comm.Get_rank(), comm.Get_size()
    shard = ShardedEmbedding(31, 3, comm=comm, seed=2, padding_idx=7)
    opt = make_opt(shard)
    steps(shard, opt, 0, 3, rank)
    shard.save(folder, optimizer=opt)
    full = comm.bcast(shard.gather_weight(), root=0)
    state = full_state(comm, shard, opt.state[shard])
    files = sorted(os.listdir(folder))
    ok = True
    for k in range(1, size + 1):
        sub = comm.Split(0 if rank < k else 1, rank)
        if rank < k:
            loaded = ShardedEmbedding.load(folder, sub)
            g = loaded.gather_weight()
            ok &= sub.Get_rank() != 0 or same_bits(g, full)
            ok &= loaded.padding_idx == 7 and loaded.size == k
            ok &= same_bits(loaded.weight, full[rank::k])
            opt_l = make_opt(loaded)
            loaded.load_optimizer_state(folder, opt_l)
            st = opt_l.state[loaded]
            ok &= set(st) == set(state)
            for key, v in state.items():
                ok &= same_bits(st[key], v[rank::k]) if isinstance(v, np.ndarray) \
                    else st[key] == v
            steps(loaded, opt_l, 50, 1, rank)  # and it trains on
        sub.Free()
    assert files == ["manifest.json"] + [f"rank-{r:05d}-of-{size:05d}.npz" for r in range(size)]
    assert agree(ok)


def test_resumed_training_matches(comm, agree, folder):
    """Save with all ranks, reload on all ranks, keep training: the bits of a run that never
    stopped (optimizer state included)."""
    rank = comm.Get_rank()
    shard = ShardedEmbedding(23, 4, comm=comm, seed=9)
    opt = optim.Adam(shard, lr=0.1, lazy=True)
    steps(shard, opt, 0, 2, rank)
    shard.save(folder, optimizer=opt)
    steps(shard, opt, 100, 3, rank)
    loaded = ShardedEmbedding.load(folder, comm)
    opt2 = optim.Adam(loaded, lr=0.1, lazy=True)
    loaded.load_optimizer_state(folder, opt2)
    steps(loaded, opt2, 100, 3, rank)
    assert agree(same_bits(loaded.weight, shard.weight))
    assert agree(opt2.state[loaded]["step"] == opt.state[shard]["step"] == 5)


def test_state_resharded_row_by_row(comm, agree, folder):
    """Each row's moments land with the row, whatever the new number of ranks."""
    rank, size = comm.Get_rank(), comm.Get_size()
    shard = ShardedEmbedding(13, 2, comm=comm, seed=4)
    opt = optim.Adam(shard, lr=0.1, lazy=True)
    steps(shard, opt, 7, 2, rank)
    shard.save(folder, optimizer=opt)
    m = np.zeros((13, 2), np.float32)
    m[rank::size] = opt.state[shard]["exp_avg"]
    m = comm.allreduce(m)
    ok = True
    sub = comm.Split(0, size - 1 - rank)  # the ranks in reverse order: every row moves
    loaded = ShardedEmbedding.load(folder, sub)
    opt2 = optim.Adam(loaded, lr=0.1, lazy=True)
    loaded.load_optimizer_state(folder, opt2)
    ok &= same_bits(opt2.state[loaded]["exp_avg"], m[loaded.rank::size])
    sub.Free()
    assert agree(ok)


def test_load_refuses_a_folder_without_manifest(comm, folder):
    with pytest.raises(FileNotFoundError, match="manifest"):
        ShardedEmbedding.load(folder, comm)
    comm.Barrier()
    if comm.Get_rank() == 0:
        (pathlib.Path(folder) / "manifest.json").write_text("[1, 2]")
    comm.Barrier()
    with pytest.raises(ValueError, match="manifest"):
        ShardedEmbedding.load(folder, comm)

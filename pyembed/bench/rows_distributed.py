"""Bench rows for pyembed.distributed (``mpiexec -n K python -m pyembed.bench --distributed``):
a table sharded over the K ranks, each rank looking up its 1/K of one global batch of Zipf ids,
against one process (rank 0 alone, the others waiting) looking up the whole batch in an
Embedding. Reports lookups/s of the global batch and the bytes each rank sends per call.

Timing: the one harness (``race``) with a fixed number of calls on every rank (a collective
must be called the same number of times everywhere), each call starting at a barrier; a row's
time is the slowest rank's median."""
import numpy as np

from ..distributed import ShardedEmbedding
from ..embedding import Embedding
from .harness import zipf_ids

RUNS = 15


def dist_shapes(quick):
    return [(50000, 64, 8192)] if quick else [(200000, 128, 32768), (1000000, 64, 65536)]


def rows(ctx, comm):
    from mpi4py import MPI  # optional dependency: only this area needs it
    rank, size = comm.Get_rank(), comm.Get_size()
    out = []
    for V, D, N in dist_shapes(ctx.quick):
        ids = zipf_ids(np.random.default_rng(0), N, V)  # the same global batch on every rank
        mine = np.array_split(ids, size)[rank]
        g = np.ones((mine.size, D), np.float32)
        shard = ShardedEmbedding(V, D, comm=comm, seed=0)

        def fwd():
            comm.Barrier()
            shard(mine)

        def fwd_bwd():
            comm.Barrier()
            shard(mine)
            shard.backward(mine, g)
            shard.zero_grad()

        t, sent = {}, {}
        for name, fn in (("forward", fwd), ("forward+backward", fwd_bwd)):
            shard.bytes_sent = 0
            mine_t = ctx.race({name: fn}, min_time=0.0, min_runs=RUNS, max_runs=RUNS, block=3,
                              drop=2)[name]
            t[name] = comm.allreduce(mine_t, op=MPI.MAX)
            sent[name] = comm.allreduce(shard.bytes_sent / (3 * RUNS), op=MPI.MAX)
        anchors = {}
        if rank == 0:  # one process, the whole batch, while the others wait at the barrier
            emb = Embedding(V, D, seed=0)
            gg = np.ones((N, D), np.float32)

            def one_bwd():
                emb(ids)
                emb.backward(ids, gg)
                emb.zero_grad()

            anchors = ctx.race({"forward": lambda: emb(ids), "forward+backward": one_bwd},
                               min_runs=3)
            del emb
        comm.Barrier()
        uniq = len(np.unique(ids))
        for name in t:
            shape = f"{V}x{D} {N} ids zipf ({uniq} unique), {size} ranks"
            out.append({"kernel": f"sharded {name}", "shape": shape, "pyembed_s": t[name],
                        "anchors": {f"one process, {name}": anchors[name]} if anchors else {},
                        "bytes": 2 * N * D * 4, "lookups_per_s": N / t[name],
                        "bytes_sent_per_rank": sent[name], "ranks": size})
        del shard
    return out

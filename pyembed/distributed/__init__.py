"""pyembed.distributed: embedding tables over MPI (mpi4py, imported on first use).

``ShardedEmbedding`` spreads a table's rows over the ranks (row r on rank r % size); P ranks
training on their own batches give bit for bit the weights of one process training on the
batches concatenated in rank order. Run with ``mpiexec -n P python train.py``. ``allreduce_sparse_grad`` keeps replicated small
tables equal: it sums the touched rows of every rank in rank order.
"""
from ._replicated import allreduce_sparse_grad
from .sharded import ShardedEmbedding

__all__ = ["ShardedEmbedding", "allreduce_sparse_grad"]

"""pyembed.optim: torch.optim's Adam, AdamW, SparseAdam, SGD and Adagrad, and FBGEMM's
row-wise Adagrad, for pyembed tables and NumPy arrays.

Every update is one C kernel call per parameter (csrc/kernels/adam.c, sgd.c, adagrad.c): a single
fused pass
over the parameter, its gradient and its state, with the GIL released, bitwise identical for every
thread count. Names, defaults, hyper-parameter checks and ``state_dict`` layout follow torch.

``params`` may be an :class:`~pyembed.Embedding` or :class:`~pyembed.Table`, a list of them, a list
of param-group dicts (``{"params": [...], "lr": ...}``), or ``(array, grad_array)`` pairs of
NumPy arrays (C-contiguous, float32/float64, same shape) so that a user's own layers can share
the optimizer: the optimizer reads ``grad_array`` and updates ``array`` in place.

What "has a gradient" means for a table: it received a backward since its last ``zero_grad``
(``table.touched`` is not empty). A table without one is skipped, step counter included, which is
what torch does for a parameter whose ``.grad`` is None after ``zero_grad(set_to_none=True)``.
An Embedding with ``requires_grad = False`` is skipped; rows frozen with
``Embedding.freeze_rows`` are left bit-for-bit unchanged (weights and optimizer state) by every
optimizer here, dense or lazy.

Example:
    >>> import numpy as np, pyembed
    >>> emb = pyembed.Embedding(100, 8, seed=0)
    >>> opt = pyembed.optim.Adam(emb, lr=1e-2)
    >>> ids = np.array([1, 5, 5])
    >>> out = emb(ids)
    >>> emb.backward(ids, np.ones_like(out))
    >>> opt.step(); opt.zero_grad()
    >>> np.savez("/tmp/opt.npz", **opt.state_dict())
    >>> opt.load_state_dict(np.load("/tmp/opt.npz"))
"""
from . import lr_scheduler
from .adagrad import Adagrad, RowWiseAdagrad
from .adam import Adam, AdamW
from .clip_grad import clip_grad_norm_
from .optimizer import Optimizer
from .sgd import SGD
from .sparse_adam import SparseAdam

__all__ = ["Optimizer", "Adam", "AdamW", "SparseAdam", "SGD", "Adagrad", "RowWiseAdagrad",
           "clip_grad_norm_", "lr_scheduler"]

"""Bench rows for a training step INCLUDING the backward (python -m pyembed.bench --only step),
issue 12: lazy Adam applied in the backward (``in_backward=True``) beside our backward-then-step
(backward, step, zero_grad) and torch ``SparseAdam`` (the coo gradient built and coalesced, then
the step), on a Zipf batch of ids.

The memory floor of the step in the backward: the batch's gradient read once, and each touched
row's weight, m and v read and written once; ``bytes`` is that floor, so the printed fraction of
memcpy is the fraction of the floor reached.
"""
import numpy as np

from .. import optim
from ..embedding import Embedding
from .harness import zipf_ids


def _torch_step(torch, ids, g, vocab, dim):
    tp = torch.zeros(vocab, dim, requires_grad=True)
    opt = torch.optim.SparseAdam([tp], lr=1e-3)
    ids_t, g_t = torch.from_numpy(ids)[None], torch.from_numpy(g)

    def step():
        tp.grad = torch.sparse_coo_tensor(ids_t, g_t, (vocab, dim),
                                          check_invariants=False).coalesce()
        opt.step()
    return step


def rows(ctx):
    rng = np.random.default_rng(0)
    vocab, nids, dims = (16000, 2048, (256, 1024)) if ctx.quick else (128000, 8192, (1024, 4096))
    ids = zipf_ids(rng, nids, vocab)
    nuniq = np.unique(ids).size
    out = []
    for dim in dims:
        g = rng.standard_normal((nids, dim), dtype=np.float32)
        # init="zeros": weights, gradient and moments are calloc'd, only touched rows' pages used
        fused, plain = Embedding(vocab, dim, init="zeros"), Embedding(vocab, dim, init="zeros")
        f_opt = optim.Adam(fused, lr=1e-3, lazy=True, in_backward=True)
        p_opt = optim.Adam(plain, lr=1e-3, lazy=True)

        def fused_step():
            fused.backward(ids, g)
            f_opt.step()

        def plain_step():
            plain.backward(ids, g)
            p_opt.step()
            p_opt.zero_grad()
        anchors = {"pyembed backward, step, zero_grad": plain_step}
        if ctx.torch is not None:
            anchors["torch SparseAdam (coo grad + step)"] = _torch_step(ctx.torch, ids, g,
                                                                        vocab, dim)
        out.append(ctx.row("adam in backward f32", f"{vocab}x{dim}, {nids} zipf ids, "
                           f"{nuniq} rows", fused_step, anchors,
                           nids * dim * 4 + 6 * nuniq * dim * 4))
        del fused, plain, f_opt, p_opt, anchors
    return out

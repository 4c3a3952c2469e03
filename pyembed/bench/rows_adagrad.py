"""Bench rows for Adagrad and RowWiseAdagrad, beside Adam's (python -m pyembed.bench --only optim).

- dense Adagrad (float32) against torch ``Adagrad`` (single-tensor, foreach and fused): the limit
  is memory traffic, 20 bytes per parameter (read p, g, sum; write p, sum);
- lazy Adagrad on a table with a Zipf batch of ids against torch's Adagrad with the coalesced
  sparse gradient (its sparse step): 20 bytes per parameter of the touched rows;
- RowWiseAdagrad on the same table and batch (FBGEMM's row-wise step; torch's sparse Adagrad is
  the nearest anchor torch has): 12 bytes per parameter of the touched rows (read p, g; write p),
  its one accumulator per row aside.
"""
import numpy as np

from .. import optim
from ..embedding import Embedding
from .harness import zipf_ids


def _torch_dense(torch, p, g, **kw):
    """torch's Adagrad step on copies of p and its dense gradient g."""
    tp = torch.from_numpy(p.copy()).requires_grad_()
    tp.grad = torch.from_numpy(g.copy())
    return torch.optim.Adagrad([tp], lr=1e-3, **kw).step


def rows(ctx):
    torch = ctx.torch
    rng = np.random.default_rng(0)
    out = []

    # -- dense Adagrad -----------------------------------------------------------------------------
    n = (1 << 20) if ctx.quick else (1 << 24)
    p = rng.standard_normal(n, dtype=np.float32)
    g = rng.standard_normal(n, dtype=np.float32)
    opt = optim.Adagrad([(p, g)], lr=1e-3)
    fns = {"pyembed": opt.step}
    if torch is not None:
        fns.update({"torch Adagrad": _torch_dense(torch, p, g),
                    "torch Adagrad foreach": _torch_dense(torch, p, g, foreach=True),
                    "torch Adagrad fused": _torch_dense(torch, p, g, fused=True)})
    t = ctx.race(fns)
    out.append({"kernel": "adagrad dense f32", "shape": f"{n} params",
                "pyembed_s": t.pop("pyembed"), "anchors": t, "bytes": 20 * n})
    del opt, fns, p, g

    # -- lazy Adagrad and RowWiseAdagrad on a Zipf batch (the SparseAdam row's shapes) -------------
    vocab, dim, nids = (16000, 1024, 2048) if ctx.quick else (128000, 4096, 8192)
    ids = zipf_ids(rng, nids, vocab)
    uniq = np.unique(ids)
    shape = f"{vocab}x{dim}, {nids} zipf ids, {uniq.size} unique rows"
    # init="zeros": calloc'd table, gradient and state, so only the touched rows' pages are used
    emb = Embedding(vocab, dim, init="zeros")
    emb.backward(ids, rng.standard_normal((nids, dim), dtype=np.float32))
    anchors = {}
    if torch is not None:
        tp = torch.zeros(vocab, dim, requires_grad=True)
        tp.grad = torch.sparse_coo_tensor(torch.from_numpy(uniq)[None],
                                          torch.from_numpy(emb.grad[uniq].copy()), (vocab, dim),
                                          check_invariants=False).coalesce()
        topt = torch.optim.Adagrad([tp], lr=1e-3)

        def torch_sparse_step():
            with torch.sparse.check_sparse_tensor_invariants(False):  # torch warns when unset
                topt.step()
        anchors["torch Adagrad sparse"] = torch_sparse_step
    for label, opt, nbytes in (
            ("adagrad lazy f32", optim.Adagrad(emb, lr=1e-3, lazy=True), 20),
            ("rowwise adagrad f32", optim.RowWiseAdagrad(emb, lr=1e-3), 12)):
        t = ctx.race({"pyembed": opt.step, **anchors})
        out.append({"kernel": label, "shape": shape, "pyembed_s": t.pop("pyembed"),
                    "anchors": t, "bytes": nbytes * uniq.size * dim})
        del opt
    del emb, anchors
    return out

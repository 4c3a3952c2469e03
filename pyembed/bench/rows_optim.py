"""Bench rows for the optimizers (python -m pyembed.bench --only optim).

- dense Adam (float32) against torch ``Adam(fused=True)`` and ``Adam(foreach=True)``: the limit
  is memory traffic, 28 bytes per parameter (read p, g, m, v; write p, m, v);
- lazy Adam (``SparseAdam``) against torch ``SparseAdam`` on a table with a Zipf batch of ids:
  28 bytes per parameter of the touched rows (the unique rows are in the shape string);
- SGD with momentum (20 bytes/param) and plain SGD (12 bytes/param) against torch SGD.
"""
import numpy as np

from .. import optim
from ..embedding import Embedding
from .harness import zipf_ids


def _dense_arrays(rng, n):
    p = rng.standard_normal(n, dtype=np.float32)
    g = rng.standard_normal(n, dtype=np.float32)
    return p, g


def rows(ctx):
    torch = ctx.torch
    rng = np.random.default_rng(0)
    out = []

    # -- dense Adam ------------------------------------------------------------------------------
    n = (1 << 20) if ctx.quick else (1 << 24)
    p, g = _dense_arrays(rng, n)
    opt = optim.Adam([(p, g)], lr=1e-3)
    fns = {"pyembed": opt.step}
    if torch is not None:
        for name, kw in (("torch Adam fused", dict(fused=True)),
                         ("torch Adam foreach", dict(foreach=True))):
            tp = torch.from_numpy(p.copy()).requires_grad_()
            tp.grad = torch.from_numpy(g.copy())
            fns[name] = torch.optim.Adam([tp], lr=1e-3, **kw).step
    t = ctx.race(fns)
    out.append({"kernel": "adam dense f32", "shape": f"{n} params",
                "pyembed_s": t.pop("pyembed"), "anchors": t, "bytes": 28 * n})
    del opt, fns

    # -- SGD ---------------------------------------------------------------------------------------
    for label, kw, nbytes in (("sgd momentum f32", dict(momentum=0.9), 20),
                              ("sgd f32", dict(), 12)):
        opt = optim.SGD([(p, g)], lr=1e-3, **kw)
        opt.step()  # momentum buffer allocated and set, as torch's first step
        fns = {"pyembed": opt.step}
        if torch is not None:
            for name, tkw in (("torch SGD", dict()), ("torch SGD fused", dict(fused=True))):
                tp = torch.from_numpy(p.copy()).requires_grad_()
                tp.grad = torch.from_numpy(g.copy())
                topt = torch.optim.SGD([tp], lr=1e-3, **kw, **tkw)
                topt.step()
                fns[name] = topt.step
        t = ctx.race(fns)
        out.append({"kernel": label, "shape": f"{n} params", "pyembed_s": t.pop("pyembed"),
                    "anchors": t, "bytes": nbytes * n})
        del opt, fns
    del p, g

    # -- lazy Adam (SparseAdam) on a Zipf batch ------------------------------------------------
    vocab, dim, nids = (16000, 1024, 2048) if ctx.quick else (128000, 4096, 8192)
    ids = zipf_ids(rng, nids, vocab)
    uniq = np.unique(ids)
    # init="zeros": the table, its gradient and the moments are calloc'd, so only the touched
    # rows' pages are ever used (a 128000 x 4096 float32 table is 2 GiB per array)
    emb = Embedding(vocab, dim, init="zeros")
    emb.backward(ids, rng.standard_normal((nids, dim), dtype=np.float32))
    opt = optim.SparseAdam(emb, lr=1e-3)
    fns = {"pyembed": opt.step}
    if torch is not None:
        tp = torch.zeros(vocab, dim, requires_grad=True)
        rows_t = torch.from_numpy(uniq)
        vals = torch.from_numpy(emb.grad[uniq].copy())
        tp.grad = torch.sparse_coo_tensor(rows_t[None], vals, (vocab, dim),
                                          check_invariants=False).coalesce()
        fns["torch SparseAdam"] = torch.optim.SparseAdam([tp], lr=1e-3).step
        del vals
    t = ctx.race(fns)
    out.append({"kernel": "adam lazy f32 (SparseAdam)",
                "shape": f"{vocab}x{dim}, {nids} zipf ids, {uniq.size} unique rows",
                "pyembed_s": t.pop("pyembed"), "anchors": t, "bytes": 28 * uniq.size * dim})
    del opt, emb, fns
    return out

"""Bench rows for the table kernels (python -m pyembed.bench --only core): gather against np.take
and torch's F.embedding, backward (accumulating, into a fresh gradient, with zero_grad) against
np.add.at and torch's dense backward and index_add_, on uniform and Zipf ids."""
import numpy as np

from ..embedding import Embedding
from .harness import zipf_ids


def core_shapes(quick):
    if quick:
        return [(50000, 512, 16384), (30000, 768, 8192)]
    return [(50000, 512, 16384), (128000, 4096, 8192), (30000, 768, 8192)]


def rows(ctx):
    torch = ctx.torch
    F = torch.nn.functional if torch is not None else None
    out = []
    rng = np.random.default_rng(0)
    for V, D, N in core_shapes(ctx.quick):
        emb = Embedding(V, D, seed=0)
        W = emb.weight
        halves = half_tables(W)
        tW = torch.from_numpy(W) if torch is not None else None
        for dist in ("uniform", "zipf"):
            ids = rng.integers(0, V, N) if dist == "uniform" else zipf_ids(rng, N, V)
            uniq = len(np.unique(ids))
            shape = f"{V}x{D} {N} ids {dist} ({uniq} unique)"
            row_bytes = D * 4
            tids = torch.from_numpy(ids) if torch is not None else None
            # gather: reads the rows, writes the output
            anchors = {"np.take": lambda: np.take(W, ids, axis=0)}
            if torch is not None:
                anchors["torch F.embedding"] = lambda: F.embedding(tids, tW)
            out.append(ctx.row("gather", shape, lambda: emb(ids), anchors, 2 * N * row_bytes))
            out.extend(half_gather_rows(ctx, emb, halves, ids, shape))
            # backward, three ways in one race: accumulating into rows that already hold a
            # gradient (np.add.at's contract: G keeps accumulating), into a gradient just cleared
            # by zero_grad (a training step; the clearing untimed), and with the clearing timed.
            # torch's dense backward allocates and fills a whole (V, D) gradient each call.
            g = rng.standard_normal((N, D), dtype=np.float32)
            emb.backward(ids, g)
            G = np.zeros_like(W)

            def step():
                emb.backward(ids, g)
                emb.zero_grad()

            def touch():  # the accumulating case needs the rows already touched
                if emb.table.touched.size == 0:
                    emb.backward(ids, g)

            fns = {"acc": (lambda: emb.backward(ids, g), touch),
                   "fresh": (lambda: emb.backward(ids, g), emb.zero_grad),
                   "step": (step, emb.zero_grad)}
            if N * D <= 16384 * 768:  # np.add.at takes seconds on the 128k x 4096 case
                fns["np.add.at"] = lambda: np.add.at(G, ids, g)
            if torch is not None:
                tg = torch.from_numpy(g)
                tz = torch.zeros(V, D)
                fns["torch embedding_dense_backward"] = (
                    lambda: torch.ops.aten.embedding_dense_backward(tg, tids, V, -1, False))
                fns["torch index_add_ (no alloc)"] = lambda: tz.index_add_(0, tids, tg)
            t = ctx.race(fns, min_runs=3)
            del G
            anchors = {k: v for k, v in t.items() if k not in ("acc", "fresh", "step")}
            step_bytes = N * row_bytes + 2 * uniq * row_bytes
            out.append({"kernel": "backward", "shape": shape, "pyembed_s": t["acc"],
                        "anchors": anchors, "bytes": step_bytes})
            out.append({"kernel": "backward (fresh grad)", "shape": shape, "pyembed_s": t["fresh"],
                        "anchors": anchors, "bytes": step_bytes})
            dense = {k: v for k, v in anchors.items() if k == "torch embedding_dense_backward"}
            out.append({"kernel": "backward+zero_grad", "shape": shape, "pyembed_s": t["step"],
                        "anchors": dense, "bytes": step_bytes + uniq * row_bytes})
            emb.zero_grad()
        del emb, W, tW, halves
    return out


def half_tables(W):
    """{name: Embedding} of W rounded to float16 and to bfloat16 (without ml_dtypes: no bfloat16
    row)."""
    out = {"float16": Embedding.from_pretrained(W.astype(np.float16))}
    try:
        out["bfloat16"] = Embedding(*W.shape, dtype="bfloat16", init="zeros")
    except ImportError:
        return out
    out["bfloat16"].weight = W
    return out


def half_gather_rows(ctx, emb, halves, ids, shape):
    """The lookup of a float16 / bfloat16 table, widened to float32 in the kernel, beside the
    float32 table's lookup and NumPy's take-then-astype: reads 2 bytes, writes 4 per element."""
    out = []
    N, D = len(ids), emb.embedding_dim
    for name, h in halves.items():
        W16 = h.weight
        anchors = {"float32 table": lambda: emb(ids),
                   "np.take + astype": lambda: np.take(W16, ids, axis=0).astype(np.float32)}
        out.append(ctx.row(f"gather {name}->f32", shape, lambda: h(ids), anchors, 6 * N * D))
    return out

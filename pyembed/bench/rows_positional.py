"""Bench rows for the transformer input stage (python -m pyembed.bench --only positional).

sinusoidal vs the float32 formula in NumPy and torch (and their max abs error at position 2^20),
fused token + position vs ``W[ids] * s + pe[:n]``, BERT's input stage (token + segment + position,
LayerNorm) forward+backward vs the same stage in torch ops with autograd, RoPE vs NumPy / torch with cached cos/sin
tables, EmbeddingBag vs ``F.embedding_bag``, and the lookup vs ``one_hot(ids) @ W``.
"""
import math

import numpy as np

from ..bag import EmbeddingBag
from ..embedding import Embedding
from ..input_embedding import InputEmbedding, one_hot
from ..positional import sinusoidal
from ..rope import rope


def _np_formula(start, n, d):
    """The PyTorch-tutorial formula in float32 NumPy (angles rounded to float32)."""
    pos = np.arange(start, start + n, dtype=np.float32)[:, None]
    div = np.exp(np.arange(0, d, 2, dtype=np.float32) * np.float32(-math.log(10000.0) / d))
    pe = np.zeros((n, d), np.float32)
    pe[:, 0::2] = np.sin(pos * div)
    pe[:, 1::2] = np.cos(pos * div)
    return pe


def _torch_formula(torch, start, n, d):
    pe = torch.zeros(n, d)
    position = torch.arange(start, start + n, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d, 2).float() * (-math.log(10000.0) / d))
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe


def _ref64(start, n, d):
    p = np.arange(start, start + n, dtype=np.float64)[:, None]
    a = p * 10000.0 ** (-np.arange(0, d, 2) / d)
    out = np.empty((n, d))
    out[:, 0::2], out[:, 1::2] = np.sin(a), np.cos(a)
    return out


def _sinusoidal_rows(ctx):
    torch = ctx.torch
    shapes = [(4096, 512)] if ctx.quick else [(8192, 512), (32768, 1024)]
    for n, d in shapes:
        # accuracy at the end of a 2^20-position table (64 rows ending at 2^20 - 1)
        s0 = 2**20 - 64
        want = _ref64(s0, 64, d)
        errs = {"pyembed": float(np.abs(sinusoidal(64, d, start=s0) - want).max()),
                "numpy f32": float(np.abs(_np_formula(s0, 64, d) - want).max())}
        anchors = {"numpy float32 formula": lambda: _np_formula(0, n, d)}
        if torch is not None:
            errs["torch f32"] = float(np.abs(_torch_formula(torch, s0, 64, d).numpy() - want).max())
            anchors["torch float32 formula"] = lambda: _torch_formula(torch, 0, n, d)
        note = ", ".join(f"{k} {v:.1e}" for k, v in errs.items())
        yield ctx.row("sinusoidal", f"{n}x{d} f32 (max err @2^20: {note})",
                      lambda: sinusoidal(n, d), anchors, n * d * 4,
                      **{"max_abs_err_at_2^20": errs})


def _fused_rows(ctx):
    torch = ctx.torch
    rng = np.random.default_rng(0)
    shapes = [(32000, 512, 8, 512)] if ctx.quick else [(32000, 512, 8, 512), (50000, 768, 4, 1024)]
    for V, D, B, S in shapes:
        inp = InputEmbedding(V, D, max_len=S, seed=0)
        ids = rng.integers(0, V, (B, S))
        W = inp.token.weight
        P = inp.position.encoding(S)
        s = np.float32(math.sqrt(D))
        anchors = {"numpy W[ids]*s + pe[:n]": lambda: W[ids] * s + P}
        if torch is not None:
            tW, tP, tids = torch.from_numpy(W), torch.from_numpy(np.array(P)), torch.from_numpy(ids)
            anchors["torch F.embedding*s + pe"] = (
                lambda: torch.nn.functional.embedding(tids, tW) * float(s) + tP)
        yield ctx.row("token+position", f"{V}x{D} ids {B}x{S} sinusoidal", lambda: inp(ids),
                      anchors, 2 * B * S * D * 4 + S * D * 4)


def _layernorm_rows(ctx):
    """BERT-base's input stage, one training step: forward, backward into every table and
    gamma/beta, gradients cleared. The anchor is the stage as a torch user writes it (lookups,
    adds, F.layer_norm, autograd; torch's embedding gradients are dense, cleared with None)."""
    torch = ctx.torch
    rng = np.random.default_rng(4)
    V, D, S = 30522, 768, 128
    for B in [4] if ctx.quick else [4, 16]:
        inp = InputEmbedding(V, D, max_len=512, positional="learned", scale=None, num_segments=2,
                             norm="layernorm", eps=1e-12, seed=0)
        ids = rng.integers(0, V, (B, S))
        seg = np.zeros((B, S), np.int64)
        seg[:, S // 2:] = 1
        g = rng.standard_normal((B, S, D), dtype=np.float32)

        def step():
            inp(ids, segment_ids=seg)
            inp.backward(ids, g, segment_ids=seg)
            inp.zero_grad()

        anchors = {}
        if torch is not None:
            F = torch.nn.functional
            leaves = [torch.tensor(a, requires_grad=True) for a in (
                inp.token.weight, inp.segment.weight, inp.position.weight, inp.gamma, inp.beta)]
            tW, tS, tP, tg, tb = leaves
            tids, tseg, tgo = torch.from_numpy(ids), torch.from_numpy(seg), torch.from_numpy(g)
            pos = torch.arange(S)

            def torch_step(sparse):
                for p in leaves:
                    p.grad = None
                x = (F.embedding(tids, tW, sparse=sparse) + F.embedding(tseg, tS, sparse=sparse)
                     + F.embedding(pos, tP, sparse=sparse))
                F.layer_norm(x, (D,), tg, tb, 1e-12).backward(tgo)

            anchors["torch ops + autograd"] = lambda: torch_step(False)
            # the stricter anchor: sparse gradients spare torch the dense (V, D) zero fill
            anchors["torch ops, sparse=True grads"] = lambda: torch_step(True)
        yield ctx.row("embed+LayerNorm fwd+bwd", f"{V}x{D} ids {B}x{S} BERT-base", step, anchors,
                      6 * B * S * D * 4)


def _rope_rows(ctx):
    torch = ctx.torch
    rng = np.random.default_rng(1)
    shapes = [(1, 32, 512, 128)] if ctx.quick else [(1, 32, 1024, 128), (4, 8, 2048, 64)]
    for B, H, S, hd in shapes:
        x = rng.standard_normal((B, H, S, hd), dtype=np.float32)
        # the anchors get their cos/sin tables for free (cached, as HF does)
        inv = 1.0 / 10000.0 ** (np.arange(0, hd, 2, dtype=np.float32) / hd)
        f = np.outer(np.arange(S, dtype=np.float32), inv)
        emb = np.concatenate([f, f], -1)
        cos, sin = np.cos(emb), np.sin(emb)
        h = hd // 2

        def np_rope():
            return x * cos + np.concatenate([-x[..., h:], x[..., :h]], -1) * sin

        anchors = {"numpy rotate_half (cached cos/sin)": np_rope}
        if torch is not None:
            tx, tc, ts = torch.from_numpy(x), torch.from_numpy(cos), torch.from_numpy(sin)
            anchors["torch rotate_half (cached cos/sin)"] = (
                lambda: tx * tc + torch.cat((-tx[..., h:], tx[..., :h]), dim=-1) * ts)
        yield ctx.row("rope", f"{B}x{H}x{S}x{hd} f32 halves layout", lambda: rope(x),
                      anchors, 2 * x.nbytes)


def _bag_rows(ctx):
    torch = ctx.torch
    rng = np.random.default_rng(2)
    shapes = [(100000, 64, 2048, 32)] if ctx.quick else [(100000, 64, 2048, 32),
                                                         (500000, 64, 4096, 40)]
    for V, D, B, L in shapes:
        ids = rng.integers(0, V, (B, L))
        n = B * L
        for mode in ("sum", "mean", "max"):
            bag = EmbeddingBag(V, D, mode, seed=0)
            g = rng.standard_normal((B, D), dtype=np.float32)
            anchors, steps = {}, {}
            shape = f"{V}x{D} {B} bags of {L} ({mode})"
            if torch is not None:
                F = torch.nn.functional
                tids, tg = torch.from_numpy(ids), torch.from_numpy(g)
                # what a torch user runs: the module, on the weight torch allocated for it, in
                # a training forward (torch then also builds what its backward needs, offset2bag,
                # bag sizes and max indices, as our forward always does)
                m = torch.nn.EmbeddingBag(V, D, mode=mode)
                with torch.no_grad():
                    m.weight.copy_(torch.from_numpy(bag.weight))
                anchors["torch nn.EmbeddingBag"] = lambda: m(tids)
                # and torch's kernel alone on our table's memory (huge pages, cache-warm)
                tW = torch.from_numpy(bag.weight)
                anchors["torch F.embedding_bag on our table"] = (
                    lambda: F.embedding_bag(tids, tW, mode=mode))

                def torch_step():
                    m.weight.grad = None
                    m(tids).backward(tg)

                steps["torch nn.EmbeddingBag fwd+bwd (dense grad)"] = torch_step
            yield ctx.row("embedding_bag fwd", shape, lambda: bag(ids), anchors,
                          n * D * 4 + B * D * 4)

            def step():  # a training step: forward, backward into the table, clear the gradient
                bag(ids)
                bag.backward(g)
                bag.zero_grad()

            yield ctx.row("embedding_bag fwd+bwd", shape, step, steps,
                          3 * n * D * 4 + 2 * B * D * 4)
            del bag


def _one_hot_rows(ctx):
    rng = np.random.default_rng(3)
    V, D, n = (4000, 256, 256) if ctx.quick else (8000, 256, 512)
    emb = Embedding(V, D, seed=0)
    W = emb.weight
    ids = rng.integers(0, V, n)
    anchors = {"one_hot(ids) @ W (BLAS)": lambda: one_hot(ids, V, dtype=np.float32) @ W,
               "np.take": lambda: np.take(W, ids, axis=0)}
    return [ctx.row("lookup vs one_hot @ W", f"{V}x{D} {n} ids", lambda: emb(ids), anchors,
                    2 * n * D * 4)]


def rows(ctx):
    return [r for area in (_sinusoidal_rows, _fused_rows, _layernorm_rows, _rope_rows, _bag_rows,
                           _one_hot_rows) for r in area(ctx)]

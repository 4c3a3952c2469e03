"""NumPy float64 references for the positional area, written from the formulas (the test oracle).

Nothing here is fast; everything is obviously the formula.
"""
import numpy as np

import pyembed


def frequencies(dim, base=10000.0, exponent="2i/d"):
    """w_i for every frequency the table carries (ceil(dim/2) for "2i/d", dim//2 otherwise)."""
    h = dim // 2
    if exponent == "2i/d":
        i = np.arange((dim + 1) // 2, dtype=np.float64)
        return base ** (-(2 * i) / dim)
    i = np.arange(h, dtype=np.float64)
    return base ** (-i / max(h - 1, 1))


def sinusoidal(n, dim, start=0, base=10000.0, layout="interleaved", exponent="2i/d"):
    """Vaswani et al. 2017: PE[p, 2i] = sin(p w_i), PE[p, 2i+1] = cos(p w_i), in float64."""
    p = np.arange(start, start + n, dtype=np.float64)[:, None]
    w = frequencies(dim, base, exponent)
    a = p * w
    h = dim // 2
    out = np.zeros((n, dim))
    if layout == "interleaved":
        out[:, 0:2 * h:2] = np.sin(a[:, :h])
        out[:, 1:2 * h:2] = np.cos(a[:, :h])
    else:
        out[:, :h] = np.sin(a[:, :h])
        out[:, h:2 * h] = np.cos(a[:, :h])
    if dim % 2 and exponent == "2i/d":
        out[:, -1] = np.sin(a[:, h])
    return out


def fairseq_sinusoidal(num_embeddings, embedding_dim, padding_idx=None):
    """fairseq.modules.SinusoidalPositionalEmbedding.get_embedding, transcribed to float64 NumPy."""
    half_dim = embedding_dim // 2
    emb = np.log(10000) / (half_dim - 1)
    emb = np.exp(np.arange(half_dim, dtype=np.float64) * -emb)
    emb = np.arange(num_embeddings, dtype=np.float64)[:, None] * emb[None, :]
    emb = np.concatenate([np.sin(emb), np.cos(emb)], axis=1).reshape(num_embeddings, -1)
    if embedding_dim % 2 == 1:
        emb = np.concatenate([emb, np.zeros((num_embeddings, 1))], axis=1)
    if padding_idx is not None:
        emb[padding_idx, :] = 0
    return emb


def numpy_float32_formula(n, dim, base=10000.0):
    """The common float32 formula (PyTorch tutorial), whose angle is rounded to float32."""
    pos = np.arange(n, dtype=np.float32)[:, None]
    div = np.exp(np.arange(0, dim, 2, dtype=np.float32) * np.float32(-np.log(base) / dim))
    pe = np.zeros((n, dim), np.float32)
    pe[:, 0::2] = np.sin(pos * div)
    pe[:, 1::2] = np.cos(pos * div)[:, : dim // 2]
    return pe


def rope(x, positions=None, base=10000.0, layout="halves", inverse=False):
    """Rotary embedding (Su et al. 2021) of the last axis of x (..., seq, head_dim), float64.

    layout "halves": pairs (j, j + hd/2) (GPT-NeoX / HF rotate_half); "interleaved": (2j, 2j+1)
    (the paper, Meta's Llama). positions broadcast against x.shape[:-1] (default arange(seq)).
    """
    x = np.asarray(x, np.float64)
    seq, hd = x.shape[-2], x.shape[-1]
    if positions is None:
        positions = np.arange(seq)
    pos = np.broadcast_to(np.asarray(positions, np.float64), x.shape[:-1])
    w = base ** (-(2 * np.arange(hd // 2, dtype=np.float64)) / hd)
    a = pos[..., None] * w
    c, s = np.cos(a), np.sin(a)
    if inverse:
        s = -s
    if layout == "halves":
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    else:
        x1, x2 = x[..., 0::2], x[..., 1::2]
    o1 = x1 * c - x2 * s
    o2 = x2 * c + x1 * s
    out = np.empty_like(x)
    if layout == "halves":
        out[..., : hd // 2], out[..., hd // 2:] = o1, o2
    else:
        out[..., 0::2], out[..., 1::2] = o1, o2
    return out


def input_embedding(W, ids, scale, P, start=0):
    """E[ids] * scale + P[start : start + seq] in float64 (P may be None)."""
    out = np.asarray(W, np.float64)[ids] * scale
    if P is not None:
        seq = ids.shape[-1]
        out = out + np.asarray(P, np.float64)[start:start + seq]
    return out


def embedding_bag(W, ids, offsets=None, mode="mean", per_sample_weights=None,
                  include_last_offset=False, padding_idx=None):
    """torch.nn.functional.embedding_bag in float64 NumPy, one bag at a time (the oracle)."""
    W = np.asarray(W, np.float64)
    ids = np.asarray(ids)
    if ids.ndim == 2:
        B, L = ids.shape
        bounds = [(b * L, (b + 1) * L) for b in range(B)]
        flat = ids.reshape(-1)
        psw = None if per_sample_weights is None else np.asarray(per_sample_weights).reshape(-1)
    else:
        flat = ids
        psw = per_sample_weights
        offs = list(np.asarray(offsets))
        if include_last_offset:
            bounds = [(offs[b], offs[b + 1]) for b in range(len(offs) - 1)]
        else:
            bounds = [(offs[b], offs[b + 1] if b + 1 < len(offs) else len(flat))
                      for b in range(len(offs))]
    out = np.zeros((len(bounds), W.shape[1]))
    for b, (lo, hi) in enumerate(bounds):
        rows, weights = [], []
        for j in range(lo, hi):
            if padding_idx is not None and flat[j] == padding_idx:
                continue
            rows.append(W[flat[j]])
            weights.append(1.0 if psw is None else float(psw[j]))
        if not rows:
            continue
        R = np.array(rows)
        if mode == "sum":
            out[b] = (R * np.array(weights)[:, None]).sum(0)
        elif mode == "mean":
            out[b] = R.mean(0)
        else:
            out[b] = R.max(0)
    return out


def embed_layernorm(W, ids, scale, P=None, S=None, seg=None, gamma=None, beta=None, eps=1e-5,
                    position_ids=None):
    """LayerNorm(E[ids] * scale + S[seg] + P) * gamma + beta in float64 (Ba et al. 2016); P holds
    the seq position rows (with position_ids, of ids' shape or (seq,): the table they index);
    S, P None: no such term; gamma None: the sum alone."""
    x = _layernorm_input(W, ids, scale, P, S, seg, position_ids)
    if gamma is None:
        return x
    xh, _ = _normalise(x, eps)
    return xh * np.asarray(gamma, np.float64) + np.asarray(beta, np.float64)


def embed_layernorm_backward(W, ids, scale, P, S, seg, gamma, dout, eps=1e-5,
                             position_ids=None):
    """Gradients of sum(out * dout), by the chain rule in float64: (dW, dP, dS, dgamma, dbeta)
    as dense arrays of the tables' shapes (dP: (seq, dim), or P's shape with position_ids; dS
    None without S). gamma None: no LayerNorm (dgamma, dbeta None)."""
    x = _layernorm_input(W, ids, scale, P, S, seg, position_ids)
    dout = np.asarray(dout, np.float64)
    if gamma is None:
        dx = dout
    else:
        xh, rstd = _normalise(x, eps)
        g = dout * np.asarray(gamma, np.float64)
        dx = rstd * (g - g.mean(-1, keepdims=True) - xh * (g * xh).mean(-1, keepdims=True))
    lead = tuple(range(dx.ndim - 1))
    dW = np.zeros(np.shape(W))
    np.add.at(dW, ids, dx * scale)
    dS = None
    if S is not None:
        dS = np.zeros(np.shape(S))
        np.add.at(dS, seg, dx)
    if position_ids is None:
        dP = dx.sum(0) if dx.ndim == 3 else dx
    else:
        dP = np.zeros(np.shape(P))
        np.add.at(dP, np.broadcast_to(position_ids, np.shape(ids)), dx)
    if gamma is None:
        return dW, dP, dS, None, None
    return dW, dP, dS, (dout * xh).sum(lead), dout.sum(lead)


def _layernorm_input(W, ids, scale, P, S, seg, position_ids=None):
    x = np.asarray(W, np.float64)[ids] * scale
    if S is not None:
        x = x + np.asarray(S, np.float64)[seg]
    if P is not None:
        P = np.asarray(P, np.float64)
        x = x + (P if position_ids is None else P[position_ids])
    return x


def _normalise(x, eps):
    m = x.mean(-1, keepdims=True)
    rstd = 1.0 / np.sqrt(((x - m) ** 2).mean(-1, keepdims=True) + eps)
    return (x - m) * rstd, rstd


# ---- test inputs for the input stage (not references: shared by its test files) ---------------

def random_stage(dtype=np.float32, positional="learned", num_segments=2, norm="layernorm",
                 scale=None, V=23, D=13, seed=0, max_len=16):
    """A pyembed.InputEmbedding whose every parameter is random (gamma and beta too)."""
    inp = pyembed.InputEmbedding(V, D, max_len=max_len, positional=positional, scale=scale,
                                 num_segments=num_segments, norm=norm, dtype=dtype, seed=seed,
                                 pos_std=1.0)
    if norm:
        rng = np.random.default_rng(seed)
        inp.gamma[...] = rng.standard_normal(D)
        inp.beta[...] = rng.standard_normal(D)
    return inp


def packed_positions(rng, nb, seq, max_len):
    """(nb, seq) positions of packed rows: texts of random lengths 1 .. max_len, each counting from
    0 (Tokenizer.pack's positions)."""
    pos = np.empty((nb, seq), np.int64)
    for b in range(nb):
        t = 0
        while t < seq:
            n = int(rng.integers(1, max_len + 1))
            pos[b, t:t + n] = np.arange(min(n, seq - t))
            t += n
    return pos

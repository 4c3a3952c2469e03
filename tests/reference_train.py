"""NumPy/Python reference of the SGNS kernel (csrc/kernels/sgns.c), written from sgns.h's
description: the same counter-based draws, the same table sigmoid, and float32 arithmetic in the
kernel's order (dot products summed in 8 lanes with two accumulators, no FMA), so that the
kernel must match it bit for bit. Slow (plain loops); for corpora of a few dozen tokens."""
import numpy as np

from pyembed import _core

M64 = (1 << 64) - 1
EXP_TABLE_SIZE = 1024
MAX_EXP = 8.0


def hash64(seed, counter):
    """splitmix64 of (seed, counter), as pe_hash64 in csrc/kernels/rng.h."""
    z = (seed + (counter + 1) * 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def u01(h):
    return (h >> 11) * (1.0 / 9007199254740992.0)


def alias_draw(table, h):
    n = len(table)
    i = ((h & 0xFFFFFFFF) * n) >> 32
    e = int(table[i])
    return i if (h >> 32) < (e >> 32) else e & 0xFFFFFFFF


def alias_probabilities(table):
    """The distribution an alias table draws from (exact up to 2**-32)."""
    table = np.asarray(table, dtype=np.uint64)
    n = table.size
    thr = (table >> np.uint64(32)).astype(np.float64) / 2.0**32
    alias = (table & np.uint64(0xFFFFFFFF)).astype(np.int64)
    p = thr / n
    np.add.at(p, alias, (1.0 - thr) / n)
    return p


def _softplus(x):
    return np.where(x > 0, x + np.log1p(np.exp(-np.abs(x))), np.log1p(np.exp(np.minimum(x, 0))))


def _tables():
    x = -MAX_EXP + (np.arange(EXP_TABLE_SIZE) + 0.5) * (2.0 * MAX_EXP / EXP_TABLE_SIZE)
    sig = (1.0 / (1.0 + np.exp(-x))).astype(np.float32)
    nl_pos = _softplus(-x).astype(np.float32)  # -log sigmoid(x)
    nl_neg = _softplus(x).astype(np.float32)   # -log sigmoid(-x)
    return sig, nl_pos, nl_neg


def dot32(a, b):
    """a . b in float32 as the kernel sums it: lanes of 8, two accumulators over blocks of 16,
    a fixed pairwise lane sum, then the tail in order."""
    D = a.size
    s0 = np.zeros(8, np.float32)
    s1 = np.zeros(8, np.float32)
    k = 0
    while k + 16 <= D:
        s0 = s0 + a[k:k + 8] * b[k:k + 8]
        s1 = s1 + a[k + 8:k + 16] * b[k + 8:k + 16]
        k += 16
    if k + 8 <= D:
        s0 = s0 + a[k:k + 8] * b[k:k + 8]
        k += 8
    s0 = s0 + s1
    s = ((s0[0] + s0[1]) + (s0[2] + s0[3])) + ((s0[4] + s0[5]) + (s0[6] + s0[7]))
    for j in range(k, D):
        s = np.float32(s + a[j] * b[j])
    return np.float32(s)


def _sigmoid_loss(tables, f, label):
    """(sigmoid(f), loss of the label) from one table index, clamped beyond +-MAX_EXP."""
    sig, nl_pos, nl_neg = tables
    f = np.float32(f)
    if not f > -MAX_EXP:
        return 0.0, (-float(f) if label else 0.0)
    if f >= MAX_EXP:
        return 1.0, (0.0 if label else float(f))
    idx = int((f + np.float32(MAX_EXP)) * np.float32(EXP_TABLE_SIZE / (2.0 * MAX_EXP)))
    idx = min(idx, EXP_TABLE_SIZE - 1)  # f + 8 can round up to 16
    return float(sig[idx]), float(nl_pos[idx] if label else nl_neg[idx])


def sgns_reference(syn0, syn1, tokens, bounds, keep_prob, alias, window, negative, alpha_begin,
                   alpha_end, seed, counter_base=0):
    """Returns (syn0, syn1, loss, pairs, words) after one call (float32 copies updated)."""
    r = w2v_reference(syn0, syn1, tokens, bounds, keep_prob, alias, window, negative,
                      alpha_begin, alpha_end, seed, counter_base)
    return r[0], r[1], r[3], r[4], r[5]


def _predict(x, acc, targets, syn, alpha, tables, skip_saturated):
    """One objective, target by target as gensim's loops: targets are (row, label) pairs.
    Returns the loss; updates syn's rows and acc in place."""
    loss = 0.0
    for t, label in targets:
        f = dot32(x, syn[t])
        sg, lk = _sigmoid_loss(tables, f, label)
        loss += lk
        if skip_saturated and not -MAX_EXP < f < MAX_EXP:
            continue  # word2vec.c and gensim skip a saturated tree node
        g = np.float32((np.float32(label) - np.float32(sg)) * alpha)
        out = syn[t].copy()
        acc += g * out
        syn[t] = out + g * x
    return loss


def w2v_reference(syn0, syn1, tokens, bounds, keep_prob, alias, window, negative, alpha_begin,
                  alpha_end, seed, counter_base=0, sg=1, cbow_mean=1, tree=None):
    """Skip-gram or CBOW, negative sampling and/or hierarchical softmax (tree = (hs_syn1, points,
    codes, code_offsets)), written from sgns.h. Returns (syn0, syn1, hs_syn1, loss, pairs,
    words) after one call (float32 copies updated)."""
    syn0 = syn0.astype(np.float32).copy()
    syn1 = syn1.astype(np.float32).copy()
    hs1 = tree[0].astype(np.float32).copy() if tree is not None else None
    use_ns = tree is None or negative > 0
    tables = _tables()
    first, last = int(bounds[0]), int(bounds[-1])
    slope = (alpha_end - alpha_begin) / (last - first - 1) if last - first > 1 else 0.0
    loss, pairs, words = 0.0, 0, 0

    def path(w):
        _, points, codes, offs = tree
        return [(int(points[b]), 1 - int(codes[b])) for b in range(offs[w], offs[w + 1])]

    def negatives(center, state, draw):
        targets = [(center, 1)]
        for _ in range(negative):
            t = alias_draw(alias, hash64(state, draw))
            draw += 1
            if t != center:
                targets.append((t, 0))
        return targets, draw

    for s in range(len(bounds) - 1):
        kept = [(int(tokens[p]), p) for p in range(int(bounds[s]), int(bounds[s + 1]))
                if u01(hash64(seed, counter_base + p)) < keep_prob[tokens[p]]]
        words += len(kept)
        n = len(kept)
        for c, (center, pos) in enumerate(kept):
            state = hash64(seed, counter_base + pos)
            span = window - hash64(state, 1) % window
            draw = 2
            alpha = np.float32(alpha_begin + slope * (pos - first))
            ctx = [j for j in range(max(c - span, 0), min(c + span + 1, n)) if j != c]
            if sg:
                for j in ctx:
                    w = kept[j][0]
                    pairs += 1
                    if tree is not None:
                        acc = np.zeros_like(syn0[w])
                        loss += _predict(syn0[w], acc, path(center), hs1, alpha, tables, True)
                        syn0[w] = syn0[w] + acc
                    if use_ns:
                        targets, draw = negatives(center, state, draw)
                        acc = np.zeros_like(syn0[w])
                        loss += _predict(syn0[w], acc, targets, syn1, alpha, tables, False)
                        syn0[w] = syn0[w] + acc
                continue
            if not ctx:
                continue
            pairs += 1
            inv = np.float32(1.0) / np.float32(len(ctx))
            objectives = ([("hs", hs1)] if tree is not None else []) + (
                [("ns", syn1)] if use_ns else [])
            for kind, syn in objectives:
                neu1 = np.zeros(syn0.shape[1], np.float32)
                for j in ctx:
                    neu1 = neu1 + syn0[kept[j][0]]
                if cbow_mean:
                    neu1 = neu1 * inv
                if kind == "hs":
                    targets = path(center)
                else:
                    targets, draw = negatives(center, state, draw)
                acc = np.zeros_like(neu1)
                loss += _predict(neu1, acc, targets, syn, alpha, tables, kind == "hs")
                if not cbow_mean:
                    acc = acc * inv
                for j in ctx:
                    syn0[kept[j][0]] = syn0[kept[j][0]] + acc
    return syn0, syn1, hs1, loss, pairs, words


def sgns_problem(seed, V=7, D=11, n_tokens=40, n_sent=4):
    """A small random problem: (syn0, syn1, tokens, bounds, keep_prob, alias)."""

    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, V, n_tokens).astype(np.int32)
    cuts = np.sort(rng.integers(0, n_tokens, n_sent - 1))
    bounds = np.concatenate(([0], cuts, [n_tokens])).astype(np.int64)
    syn0 = rng.normal(0, 0.5, (V, D)).astype(np.float32)
    syn1 = rng.normal(0, 0.5, (V, D)).astype(np.float32)
    keep = rng.uniform(0.5, 1.0, V)
    alias = _core.alias_table(rng.uniform(0.1, 2.0, V))
    return syn0, syn1, tokens, bounds, keep, alias

"""Word-vector benchmarks: gensim's ``evaluate_word_analogies`` and ``evaluate_word_pairs``.

Same semantics as gensim 4 (the word2vec ``compute-accuracy`` rules for analogies: only the first
``restrict_vocab`` words, case-insensitive, 3CosAdd over the top 5; WordSim-353-style pair files for
similarity), with every question answered in one batched product. Pearson and Spearman
correlations with their two-sided p-values are computed in NumPy (as ``scipy.stats.pearsonr`` and
``spearmanr``), so SciPy is not needed.

The functions take the :class:`pyembed.Vectors` as their first argument; the gensim API is the
methods ``Vectors.evaluate_word_analogies`` and ``Vectors.evaluate_word_pairs``, which call these.
"""
import itertools
import math

import numpy as np

from . import _core

__all__ = ["evaluate_word_analogies", "evaluate_word_pairs"]


def evaluate_word_analogies(kv, analogies, restrict_vocab=300000, case_insensitive=True,
                            dummy4unknown=False):
    """:meth:`Vectors.evaluate_word_analogies <pyembed.Vectors.evaluate_word_analogies>` on
    ``kv``: read the questions, answer them all with one matrix product, sort into sections."""
    ok_vocab = _ok_vocab(kv, restrict_vocab, case_insensitive)
    sections, entries, section = [], [], None  # entries: per section, (quad, question or -1)
    quads = []
    with open(analogies, "rb") as fin:
        lines = fin.read().decode("utf-8").splitlines()
    for line_no, line in enumerate(lines):
        if line.startswith(": "):
            section = {"section": line.lstrip(": ").strip(), "correct": [], "incorrect": []}
            sections.append(section)
            entries.append([])
            continue
        if not section:
            raise ValueError(f"Missing section header before line #{line_no} in {analogies}")
        parts = line.split()
        if len(parts) != 4:  # gensim skips invalid lines
            continue
        quad = tuple(w.upper() for w in parts) if case_insensitive else tuple(parts)
        if all(w in ok_vocab for w in quad):
            entries[-1].append((quad, len(quads)))
            quads.append(quad)
        elif dummy4unknown:
            entries[-1].append((quad, -1))
    ok = _answer_analogies(kv, quads, ok_vocab, restrict_vocab, case_insensitive).tolist()
    for sec, ents in zip(sections, entries):  # file order within each list, as gensim
        for quad, q in ents:
            (sec["correct"] if q >= 0 and ok[q] else sec["incorrect"]).append(quad)
    total = {
        "section": "Total accuracy",
        "correct": list(itertools.chain.from_iterable(s["correct"] for s in sections)),
        "incorrect": list(itertools.chain.from_iterable(s["incorrect"] for s in sections)),
    }
    c, i = len(total["correct"]), len(total["incorrect"])
    score = c / (c + i) if c + i else 0.0
    sections.append(total)
    return score, sections


def _answer_analogies(kv, quads, ok_vocab, restrict_vocab, case_insensitive):
    """bool per question: is the expected word gensim's prediction?"""
    if not quads:
        return np.zeros(0, bool)
    kv.fill_norms()
    ids = np.array([[ok_vocab[w] for w in q] for q in quads], np.int64)  # (q, 4)
    a, b, c, e = ids.T
    unit = lambda r: kv.vectors[r] / kv.norms[r, None]  # noqa: E731
    # gensim: mean(float32) += 1*b_hat, += 1*c_hat, += -1*a_hat; / 3; unit; float32
    mean = unit(b).astype(np.float32)
    mean += unit(c)
    mean += -1.0 * unit(a)
    mean = mean.astype(np.float64) / 3.0
    n = np.sqrt(np.einsum("ij,ij->i", mean, mean))
    n[n == 0] = 1.0
    mean = (mean * (1.0 / n)[:, None]).astype(np.float32)
    hi = min(len(kv.vectors), restrict_vocab) if restrict_vocab else len(kv.vectors)
    V, norms = kv.vectors[:hi], kv.norms[:hi]
    # the canonical (first-spelling) id of every searched row, for the case-insensitive test
    keys = kv.index_to_key[:hi]
    spelled = map(str.upper, keys) if case_insensitive else iter(keys)
    canon = np.fromiter(map(ok_vocab.get, spelled, itertools.repeat(-1)), np.int64, len(keys))
    k = min(5 + 3, hi)
    ok = np.zeros(len(quads), bool)
    chunk = max(1, (64 << 20) // max(1, 4 * hi))
    for s in range(0, len(quads), chunk):
        sl = slice(s, s + chunk)
        best, _ = _core.topk(mean[sl].astype(V.dtype, copy=False) @ V.T, k, scale=norms)
        qa, qb, qc, qe = a[sl, None], b[sl, None], c[sl, None], e[sl, None]
        # most_similar drops the three query rows, then keeps 5
        keep = (best != qa) & (best != qb) & (best != qc)
        rank = np.cumsum(keep, axis=1)
        keep &= rank <= 5
        # the first kept candidate whose spelling is none of a, b, c is the prediction;
        # if there is none, gensim's `predicted` is the last of the 5
        cand = canon[best]
        good = keep & (cand != qa) & (cand != qb) & (cand != qc)
        has = good.any(axis=1)
        first = np.argmax(good, axis=1)
        last = (keep.shape[1] - 1) - np.argmax(keep[:, ::-1], axis=1)
        pick = np.where(has, first, last)
        pred = cand[np.arange(len(pick)), pick]
        ok[sl] = keep.any(axis=1) & (pred == qe[:, 0])
    return ok


def evaluate_word_pairs(kv, pairs, delimiter="\t", encoding="utf8", restrict_vocab=300000,
                        case_insensitive=True, dummy4unknown=False):
    """:meth:`Vectors.evaluate_word_pairs <pyembed.Vectors.evaluate_word_pairs>` on ``kv``."""
    ok_vocab = _ok_vocab(kv, restrict_vocab, case_insensitive)
    gold, ia, ib = [], [], []
    oov = 0
    with open(pairs, encoding=encoding) as fin:
        lines = fin.read().split("\n")
    for line in lines:
        if not line or line.startswith("#"):
            continue
        parts = line.split(delimiter)
        if len(parts) != 3:
            continue
        a, b, sim = (p.upper() for p in parts) if case_insensitive else parts
        try:
            sim = float(sim)
        except ValueError:
            continue
        if a not in ok_vocab or b not in ok_vocab:
            oov += 1
            if dummy4unknown:
                gold.append(sim)
                ia.append(-1)
                ib.append(-1)
            continue
        gold.append(sim)
        ia.append(ok_vocab[a])
        ib.append(ok_vocab[b])
    if not gold:
        raise ValueError(f"No valid similarity judgements found in {pairs}: either invalid "
                         f"format or all are out-of-vocabulary in {kv}")
    ia, ib = np.array(ia, np.int64), np.array(ib, np.int64)
    known = ia >= 0
    model = np.zeros(len(gold))
    if known.any():
        u = _unit_rows(kv.vectors[ia[known]])
        v = _unit_rows(kv.vectors[ib[known]])
        model[known] = np.einsum("ij,ij->i", u, v)
    gold = np.array(gold)
    pearson = _pearson(gold, model)
    spearman = _pearson(_rankdata(gold), _rankdata(model))
    if dummy4unknown:
        oov_ratio = float(oov) / len(gold) * 100
    else:
        oov_ratio = float(oov) / (len(gold) + oov) * 100
    return pearson, spearman, oov_ratio


def _ok_vocab(kv, restrict_vocab, case_insensitive):
    """Upper-cased (or as spelled) key -> row among the first ``restrict_vocab`` keys."""
    ok_keys = kv.index_to_key[:restrict_vocab]
    rng = range(len(ok_keys) - 1, -1, -1)
    if case_insensitive:  # reversed: the first (most frequent) spelling wins, as gensim
        return dict(zip(map(str.upper, reversed(ok_keys)), rng))
    return dict(zip(reversed(ok_keys), rng))


def _unit_rows(m):
    """Rows scaled to unit length as gensim.matutils.unitvec does (float64 scale, same dtype)."""
    m64 = m.astype(np.float64)
    n = np.sqrt(np.einsum("ij,ij->i", m64, m64))
    n[n == 0] = 1.0
    return (m64 * (1.0 / n)[:, None]).astype(m.dtype)


def _rankdata(x):
    """Ranks with ties averaged (scipy.stats.rankdata 'average')."""
    x = np.asarray(x)
    sorter = np.argsort(x, kind="mergesort")
    inv = np.empty(sorter.size, np.intp)
    inv[sorter] = np.arange(sorter.size)
    xs = x[sorter]
    obs = np.r_[True, xs[1:] != xs[:-1]]
    dense = obs.cumsum()[inv]
    count = np.r_[np.nonzero(obs)[0], len(obs)]
    return 0.5 * (count[dense] + count[dense - 1] + 1)


def _pearson(x, y):
    """(r, two-sided p) as scipy.stats.pearsonr: p from the t distribution with n - 2 degrees
    of freedom, through the regularised incomplete beta function."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    n = len(x)
    xm, ym = x - x.mean(), y - y.mean()
    den = np.sqrt((xm * xm).sum()) * np.sqrt((ym * ym).sum())
    r = float((xm * ym).sum() / den) if den > 0 else float("nan")
    if not math.isfinite(r):
        return r, float("nan")
    r = max(min(r, 1.0), -1.0)
    if n <= 2 or abs(r) == 1.0:
        return r, 1.0 if n <= 2 else 0.0
    df = n - 2
    t2 = r * r * df / ((1.0 - r) * (1.0 + r))
    p = _betainc(0.5 * df, 0.5, df / (df + t2))
    return r, float(min(max(p, 0.0), 1.0))


def _betainc(a, b, x):
    """Regularised incomplete beta I_x(a, b) (Numerical Recipes' continued fraction)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    front = math.exp(lbeta + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _betacf(a, b, x, itmax=500, eps=1e-15):
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, itmax + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h

"""Bench rows for word-vector files and queries (run by pyembed.bench).

Loads a generated ~200 MB file (~20 MB with ctx.quick) in each text format and in word2vec
binary, beside gensim's ``KeyedVectors.load_word2vec_format`` on the same file; then
``most_similar`` one query at a time and batched, beside gensim's ``most_similar``. gensim rows
are skipped when gensim is not installed. Files live in a temporary directory.
"""
import os
import shutil
import tempfile
import time

import numpy as np

from .io import load_vectors
from .vectors import Vectors


def _gensim():
    try:
        from gensim.models import KeyedVectors
    except ImportError:
        return None
    import logging

    logging.getLogger("gensim").setLevel(logging.ERROR)
    return KeyedVectors


def _make_files(d, n, dim, seed=0):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(n)]
    # GloVe-style: values with 5-6 significant digits ("0.41842 -0.23911 ...")
    glove = Vectors(words, np.round(rng.standard_normal((n, dim)) * 0.4, 5).astype(np.float32),
                    copy=False)
    glove.save(os.path.join(d, "glove.txt"), format="glove")
    # word2vec-style: full float32 precision, as gensim's save_word2vec_format writes
    w2v = Vectors(words, (rng.standard_normal((n, dim)) * 0.1).astype(np.float32), copy=False)
    w2v.save(os.path.join(d, "w2v.txt"))
    w2v.save(os.path.join(d, "w2v.bin"), binary=True)
    return w2v


def _once(fn):
    """Seconds of one call: gensim takes ~20 s per 100 MB of text, so it is not repeated."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _timeit(ctx, fn):
    try:
        return ctx.timeit(fn, min_time=0.2, min_runs=3)
    except TypeError:  # a runner whose timeit takes only min_time
        return ctx.timeit(fn, min_time=0.2)


def _pair(ctx, ours, theirs, rounds=3):
    """(ours, theirs) seconds, alternating rounds and keeping each side's best, so that a
    change in machine load during the run does not favour either side."""
    a, b = [], []
    for _ in range(rounds):
        a.append(ctx.timeit(ours))
        if theirs is not None:
            b.append(ctx.timeit(theirs))
    return min(a), (min(b) if b else None)


def rows(ctx):
    KeyedVectors = _gensim()
    out = []
    n, dim = (20_000, 100) if ctx.quick else (200_000, 100)
    d = tempfile.mkdtemp(prefix="pyembed_bench_vectors_")
    try:
        kv = _make_files(d, n, dim)
        cases = [
            ("load glove text", "glove.txt", dict(format="glove"), dict(no_header=True)),
            ("load word2vec text", "w2v.txt", dict(format="word2vec"), dict()),
            ("load word2vec binary", "w2v.bin", dict(format="word2vec"), dict(binary=True)),
        ]
        for name, fname, ours_kw, gensim_kw in cases:
            path = os.path.join(d, fname)
            size = os.path.getsize(path)
            t = _timeit(ctx, lambda: load_vectors(path, **ours_kw))
            anchors = {}
            if KeyedVectors is not None:
                anchors["gensim"] = _once(
                    lambda: KeyedVectors.load_word2vec_format(path, **gensim_kw))
            out.append({"kernel": name, "shape": f"{n}x{dim} ({size / 1e6:.0f} MB)",
                        "pyembed_s": t, "anchors": anchors, "bytes": size})

        # queries on the word2vec-style vectors
        kv.fill_norms()
        mat_bytes = kv.vectors.nbytes
        g = None
        if KeyedVectors is not None:
            g = KeyedVectors(dim)
            g.add_vectors(kv.index_to_key, kv.vectors)
            g.fill_norms()
        q1 = "w17"
        t, tg = _pair(ctx, lambda: kv.most_similar(q1, topn=10),
                      (lambda: g.most_similar(q1, topn=10)) if g else None)
        anchors = {"gensim": tg} if g else {}
        out.append({"kernel": "most_similar", "shape": f"{n}x{dim}, topn=10",
                    "pyembed_s": t, "anchors": anchors, "bytes": mat_bytes})
        qs = [f"w{i}" for i in range(0, 64 * 97, 97)]
        t, tg = _pair(ctx, lambda: kv.most_similar_batch(qs, topn=10),
                      (lambda: [g.most_similar(q, topn=10) for q in qs]) if g else None, rounds=2)
        anchors = {"gensim (loop)": tg} if g else {}
        out.append({"kernel": "most_similar batched", "shape": f"{n}x{dim}, 64 queries, topn=10",
                    "pyembed_s": t, "anchors": anchors, "bytes": mat_bytes})
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return out

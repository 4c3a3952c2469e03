"""Bench rows for word-vector files and queries (python -m pyembed.bench --only vectors).

Loads a generated ~200 MB file (~20 MB with ctx.quick) in each text format and in word2vec
binary, beside gensim's ``KeyedVectors.load_word2vec_format`` on the same file; then
``most_similar`` one query at a time and batched, beside gensim's ``most_similar``. gensim rows
are skipped when gensim is not installed. Files live in a temporary directory. gensim's load
takes ~20 s per 100 MB of text, so it is timed once (after one untimed call), in the same race.
"""
import logging
import os
import shutil
import tempfile

import numpy as np

from ..vectors import Vectors, load_vectors


def _gensim():
    try:
        from gensim.models import KeyedVectors
    except ImportError:
        return None
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
            fns = {"pyembed": lambda: load_vectors(path, **ours_kw)}
            if KeyedVectors is not None:
                fns["gensim"] = lambda: KeyedVectors.load_word2vec_format(path, **gensim_kw)
            t = ctx.race(fns, min_time=0.2, min_runs=3, max_runs={"gensim": 1}, block=3, drop=1)
            out.append({"kernel": name, "shape": f"{n}x{dim} ({size / 1e6:.0f} MB)",
                        "pyembed_s": t.pop("pyembed"), "anchors": t, "bytes": size})

        # queries on the word2vec-style vectors
        kv.fill_norms()
        mat_bytes = kv.vectors.nbytes
        g = None
        if KeyedVectors is not None:
            g = KeyedVectors(dim)
            g.add_vectors(kv.index_to_key, kv.vectors)
            g.fill_norms()
        q1 = "w17"
        anchors = {"gensim": lambda: g.most_similar(q1, topn=10)} if g else {}
        out.append(ctx.row("most_similar", f"{n}x{dim}, topn=10",
                           lambda: kv.most_similar(q1, topn=10), anchors, mat_bytes))
        qs = [f"w{i}" for i in range(0, 64 * 97, 97)]
        anchors = {"gensim (loop)": lambda: [g.most_similar(q, topn=10) for q in qs]} if g else {}
        out.append(ctx.row("most_similar batched", f"{n}x{dim}, 64 queries, topn=10",
                           lambda: kv.most_similar_batch(qs, topn=10), anchors, mat_bytes))
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return out

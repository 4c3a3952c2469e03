"""Bench row for fastText ``.bin`` models (python -m pyembed.bench --only fasttext): pyembed's
``load_vectors`` beside gensim's ``load_facebook_vectors`` on a synthetic model written here
(no download): 30,000 words x 50 with 200,000 n-gram buckets (3,000 x 20,000 with ctx.quick).
Both compose every word's vector from its n-grams at load, so the row is the whole load.
"""
import os
import shutil
import tempfile

import numpy as np

from ..fasttext import FASTTEXT_MAGIC
from ..vectors import load_vectors


def write_fasttext_bin(path, words, counts, word_rows, ngram_rows, min_n=3, max_n=6):
    """Write a skip-gram fastText model (the new format, version 12) whose input matrix is
    ``word_rows`` then ``ngram_rows`` (float32) and whose output matrix is zero: what fastText's
    ``save_model`` writes, with the hyper-parameters of its defaults."""
    dim = word_rows.shape[1]
    bucket = ngram_rows.shape[0]
    header = np.array([(FASTTEXT_MAGIC, 12, dim, 5, 5, 5, 5, 1, 2, 2, bucket, min_n, max_n,
                        100, 1e-4)],
                      dtype=[("magic", "<i4"), ("version", "<i4"), ("dim", "<i4"), ("ws", "<i4"),
                             ("epoch", "<i4"), ("min_count", "<i4"), ("neg", "<i4"),
                             ("word_ngrams", "<i4"), ("loss", "<i4"), ("model", "<i4"),
                             ("bucket", "<i4"), ("minn", "<i4"), ("maxn", "<i4"),
                             ("lr_update_rate", "<i4"), ("t", "<f8")])
    n = len(words)
    vocab_head = np.array([(n, n, 0, int(np.sum(counts)), -1)],
                          dtype=[("size", "<i4"), ("nwords", "<i4"), ("nlabels", "<i4"),
                                 ("ntokens", "<i8"), ("prune", "<i8")])
    entry_tail = np.dtype([("count", "<i8"), ("type", "i1")])
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(vocab_head.tobytes())
        for w, c in zip(words, counts):
            f.write(w.encode("utf-8") + b"\0")
            f.write(np.array([(c, 0)], entry_tail).tobytes())
        for rows, mat in ((n + bucket, (word_rows, ngram_rows)), (n, (np.zeros((n, dim)),))):
            f.write(b"\0" + np.array([rows, dim], "<i8").tobytes())
            for m in mat:
                f.write(np.ascontiguousarray(m, "<f4").tobytes())


def rows(ctx):
    try:
        from gensim.models.fasttext import load_facebook_vectors
    except ImportError:
        load_facebook_vectors = None
    n, dim, bucket = (3_000, 50, 20_000) if ctx.quick else (30_000, 50, 200_000)
    rng = np.random.default_rng(0)
    words = [f"w{i}x{rng.integers(1000)}" for i in range(n)]
    d = tempfile.mkdtemp(prefix="pyembed_bench_fasttext_")
    try:
        path = os.path.join(d, "model.bin")
        write_fasttext_bin(path, words, np.arange(n, 0, -1) + 4,
                           rng.standard_normal((n, dim)).astype(np.float32) * 0.1,
                           rng.standard_normal((bucket, dim)).astype(np.float32) * 0.1)
        size = os.path.getsize(path)
        fns = {"pyembed": lambda: load_vectors(path)}
        if load_facebook_vectors is not None:
            fns["gensim load_facebook_vectors"] = lambda: load_facebook_vectors(path)
        t = ctx.race(fns, min_time=0.2, min_runs=3, max_runs={"gensim load_facebook_vectors": 2},
                     block=2, drop=1)
        return [{"kernel": "load fastText .bin", "shape": f"{n}x{dim} + {bucket} buckets "
                 f"({size / 1e6:.0f} MB)", "pyembed_s": t.pop("pyembed"), "anchors": t,
                 "bytes": size}]
    finally:
        shutil.rmtree(d, ignore_errors=True)

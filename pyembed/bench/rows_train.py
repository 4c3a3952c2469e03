"""Benchmark rows for the word2vec trainer: pyembed's Word2Vec against gensim's, same corpus (the
built-in grammar corpus) and settings (dim 100, window 5, 5 epochs, min_count 5, sample 1e-3, the
same thread count), timing ``train`` alone (vocabulary building excluded on both sides), in four
modes: skip-gram and CBOW (mean), each with 5 negatives or with hierarchical softmax alone.
Quality is measured with gensim's own evaluators on both models:
analogy accuracy on the grammar's questions-words file and the Spearman correlation on its word
pairs. Also ``python -m pyembed.bench.rows_train [--threads N] [--quick]`` prints the comparison.
Each trainer runs once (a run takes seconds), in one round of the harness's race.
"""
import argparse
import os
import tempfile

from .._core import get_num_threads
from ..corpus import default_corpus, questions_words, word_pairs
from ..train import DEFAULTS, Word2Vec
from .harness import race

# the settings both trainers get: pyembed's defaults, which are gensim's
SETTINGS = {k: DEFAULTS[k] for k in ("vector_size", "window", "negative", "min_count", "sample",
                                     "epochs", "alpha", "min_alpha", "seed")}


def _quality(index_to_key, vectors, qw_path, pairs_path):
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vectors.shape[1])
    kv.add_vectors(list(index_to_key), vectors)
    acc = kv.evaluate_word_analogies(qw_path)[0]
    rho = kv.evaluate_word_pairs(pairs_path)[1][0]
    return float(acc), float(rho)


#: the modes of the rows: name -> the arguments both trainers get
MODES = {"SGNS": dict(sg=1, hs=0), "CBOW NS": dict(sg=0, hs=0, cbow_mean=1),
         "SG HS": dict(sg=1, hs=1, negative=0),
         "CBOW HS": dict(sg=0, hs=1, negative=0, cbow_mean=1)}


def compare(threads=1, quick=False, seed=0, mode="SGNS"):
    """Train both in ``mode`` (a key of MODES), return a dict of seconds, words/s and quality
    for pyembed and gensim (gensim entries are None when gensim is not installed)."""
    sents = default_corpus(n_sentences=20_000 if quick else 200_000, seed=seed)
    epochs = 1 if quick else SETTINGS["epochs"]
    n_words = sum(map(len, sents))
    res = {"sentences": len(sents), "words": n_words, "threads": threads, "epochs": epochs}
    tmp = tempfile.mkdtemp(prefix="pyembed-bench-")
    qw = os.path.join(tmp, "questions-words.txt")
    wp = os.path.join(tmp, "pairs.tsv")
    with open(qw, "w") as fh:
        fh.write(questions_words())
    with open(wp, "w") as fh:
        fh.writelines(f"{a}\t{b}\t{s}\n" for a, b, s in word_pairs())
    kw = dict(SETTINGS, epochs=epochs, **MODES[mode])
    m = Word2Vec(workers=threads, progress=False, **kw)
    m.build_vocab(sents)
    fns = {"pyembed": m.train}
    try:
        from gensim.models import Word2Vec as GensimWord2Vec
    except ImportError:
        GensimWord2Vec = None
    if GensimWord2Vec is not None:
        g = GensimWord2Vec(workers=threads, **kw)
        g.build_vocab(sents)
        fns["gensim"] = lambda: g.train(sents, total_examples=g.corpus_count, epochs=epochs)
    t = race(fns, min_time=0.0, min_runs=1, block=1, drop=0)
    res["pyembed_s"] = t["pyembed"]
    res["pyembed_wps"] = m.words_per_second
    try:
        res["pyembed_analogy"], res["pyembed_spearman"] = _quality(m.index_to_key, m.syn0, qw, wp)
    except ImportError:
        res["pyembed_analogy"] = res["pyembed_spearman"] = None
    res["bytes"] = m.bytes_moved
    res["gensim_s"] = res["gensim_wps"] = res["gensim_analogy"] = res["gensim_spearman"] = None
    if GensimWord2Vec is not None:
        res["gensim_s"] = t["gensim"]
        res["gensim_wps"] = epochs * n_words / res["gensim_s"]
        res["gensim_analogy"], res["gensim_spearman"] = _quality(g.wv.index_to_key, g.wv.vectors,
                                                                 qw, wp)
    return res


def rows(ctx):
    """One row per mode for pyembed.bench: the trainer's seconds (and words/s) beside gensim's."""
    out = []
    for mode, kw in MODES.items():
        r = compare(threads=getattr(ctx, "threads", None) or get_num_threads(),
                    quick=bool(ctx.quick), mode=mode)
        anchors = {}
        if r["gensim_s"] is not None:
            anchors["gensim Word2Vec"] = r["gensim_s"]
        q = (f"analogy {r['pyembed_analogy']:.3f} vs gensim {r['gensim_analogy']:.3f}, spearman "
             f"{r['pyembed_spearman']:.3f} vs {r['gensim_spearman']:.3f}"
             if r["gensim_analogy"] is not None else "quality: gensim not installed")
        wps = f"{r['pyembed_wps'] / 1e6:.2f}M words/s" + (
            f" vs gensim {r['gensim_wps'] / 1e6:.2f}M" if r["gensim_wps"] else "")
        out.append({
            "kernel": f"word2vec train ({mode})",
            "shape": (f"{r['words'] / 1e6:.1f}M words x {r['epochs']} ep, d100 w5 "
                      f"n{kw.get('negative', SETTINGS['negative'])}, {r['threads']} thr; {wps}; "
                      f"{q}"),
            "pyembed_s": r["pyembed_s"],
            "anchors": anchors,
            "bytes": int(r["bytes"]),
        })
    return out


def _main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--mode", choices=list(MODES), default="SGNS")
    a = p.parse_args()
    r = compare(threads=a.threads, quick=a.quick, mode=a.mode)
    print(f"corpus: {r['sentences']:,} sentences, {r['words']:,} words, {r['epochs']} epochs, "
          f"{r['threads']} thread(s)")
    for name in ("pyembed", "gensim"):
        if r[f"{name}_s"] is None:
            print(f"{name:8s} not installed")
            continue
        print(f"{name:8s} {r[name + '_s']:7.2f} s  {r[name + '_wps'] / 1e6:6.2f}M words/s  "
              f"analogy {r[name + '_analogy']:.3f}  spearman {r[name + '_spearman']:.3f}")
    if r["gensim_s"]:
        print(f"speed-up: {r['gensim_s'] / r['pyembed_s']:.2f}x")


if __name__ == "__main__":
    _main()

"""The ``pyembed`` command line (also ``python -m pyembed``).

    pyembed demo                          train on the built-in corpus, show neighbours, draw plots
    pyembed train CORPUS -o OUT           word2vec (skip-gram, negative sampling) on a text file
    pyembed similar VECTORS WORD          nearest neighbours by cosine similarity
    pyembed analogy VECTORS A B C         A is to B as C is to ?  (B - A + C)
    pyembed plot VECTORS -o PNG           2-D PCA of the vectors, labelled
    pyembed info VECTORS                  size, dimension and a few words of a vectors file
    pyembed bench                         the kernel benchmarks (pyembed.bench)

Bad arguments and unreadable files end with exit status 2 and one line on stderr.
"""
import argparse
import os
import sys
import time

from . import bench, corpus
from .plot import plot_2d, plot_heatmap
from .positional import sinusoidal
from .train import DEFAULTS, Word2Vec, read_corpus
from .vectors import load_vectors

__all__ = ["main", "run_demo"]

DEMO_SENTENCES = 200_000  # ~8 s of training on one thread

DEMO_QUERIES = ("cat", "dog", "car", "king")
STDLIB_QUERIES = ("file", "list", "error", "thread", "socket")
DEMO_ANALOGY = ("man", "king", "woman")  # man : king :: woman : ?  (king - man + woman)
# the words of the demo's picture: a few of each category, so that the labels stay readable
DEMO_PLOT_WORDS = ("cat", "kitten", "dog", "puppy", "horse", "cow", "car", "truck", "bus", "train",
                   "bicycle", "apple", "banana", "orange", "cherry", "king", "queen", "man",
                   "woman", "prince", "princess", "boy", "girl", "paris", "france", "berlin",
                   "germany")
EMBEDDINGS_PNG = "embeddings_2d.png"
POSITIONAL_PNG = "positional_encoding.png"
# pixel sizes of the demo's pictures (inches * dpi), fixed so that tests can check them
EMBEDDINGS_SIZE = (8.0, 8.0)
POSITIONAL_SIZE = (10.0, 5.0)
DPI = 100


class _UsageError(Exception):
    """A problem with the user's input: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # one clear line instead of argparse's usage block
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        sys.exit(2)


def _arg_type(convert, kind, ok, want):
    """An argparse ``type``: ``convert(text)``, then one line naming what was expected when the
    text is not ``kind`` or its value fails ``ok``."""
    def parse(text):
        try:
            v = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"expected {want}, got {text}")
        return v
    return parse


_positive_int = _arg_type(int, "an integer", lambda v: v >= 1, "an integer >= 1")
# NaN fails both comparisons
_nonneg_float = _arg_type(float, "a number", lambda v: 0 <= v < float("inf"),
                          "a finite number >= 0")
_seed = _arg_type(int, "an integer", lambda v: 0 <= v < 2**64, "an integer in [0, 2**64)")
_nonneg_int = _arg_type(int, "an integer", lambda v: v >= 0, "an integer >= 0")
_bit = _arg_type(int, "an integer", lambda v: v in (0, 1), "0 or 1")


# the training options: flags, the Word2Vec argument (its default is Word2Vec's), type, help
_TRAINING_FLAGS = (
    (("--vector-size", "--size"), "vector_size", _positive_int, "dimension of the vectors"),
    (("--window",), "window", _positive_int, "context window"),
    (("--negative",), "negative", _nonneg_int, "noise words per prediction, <= 64 (0: only "
     "with --hs 1)"),
    (("--sg",), "sg", _bit, "1 skip-gram, 0 CBOW"),
    (("--hs",), "hs", _bit, "1 adds hierarchical softmax"),
    (("--cbow-mean",), "cbow_mean", _bit, "CBOW: 1 the mean of the context vectors, 0 the sum"),
    (("--min-count",), "min_count", _positive_int, "ignore words seen fewer times"),
    (("--sample",), "sample", _nonneg_float, "subsampling threshold for frequent words, 0 = off"),
    (("--epochs",), "epochs", _positive_int, "passes over the corpus"),
    (("--alpha",), "alpha", _nonneg_float, "initial learning rate"),
    (("--min-alpha",), "min_alpha", _nonneg_float, "final learning rate"),
    (("--seed",), "seed", _seed, "random seed"),
)
TRAINING_OPTIONS = tuple(dest for _, dest, _, _ in _TRAINING_FLAGS)


def _add_training_options(p, demo=False):
    g = p.add_argument_group("training (gensim's names and defaults)")
    for flags, dest, kind, text in _TRAINING_FLAGS:
        g.add_argument(*flags, dest=dest, type=kind, default=DEFAULTS[dest],
                       help=text + " (default %(default)s)")
    if demo:
        g.add_argument("--workers", "--threads", type=_positive_int, default=1,
                       help="threads (default 1: the same output on every run; "
                            "more threads update the vectors Hogwild-style, which on this "
                            "small vocabulary gains little)")
    else:
        g.add_argument("--workers", "--threads", type=_positive_int, default=None,
                       help="threads (default: all pyembed threads; 1 gives the same vectors "
                            "on every run)")
    g.add_argument("--corpus", choices=("default", "stdlib"), default="default",
                   help="built-in corpus when no CORPUS file is given: 'default' (generated "
                        "from a small grammar) or 'stdlib' (the Python standard library's "
                        "docstrings)")


def _build_parser():
    p = _Parser(prog="pyembed",
                description="Embedding tables for NumPy: train word vectors, query them, plot them.",
                epilog="Start with: pyembed demo")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    d = sub.add_parser("demo", help="train on a built-in corpus, print neighbours and an "
                       "analogy, write embeddings_2d.png and positional_encoding.png",
                       description="Train word2vec on a built-in corpus (under a minute), print "
                       "the loss, the nearest neighbours of cat, dog, car and king and the answer "
                       "to king - man + woman, and write embeddings_2d.png (PCA of the vectors) "
                       "and positional_encoding.png (the sinusoidal table).")
    d.add_argument("--out-dir", default=".", help="where to write the pictures (default: .)")
    d.add_argument("--no-plots", action="store_true", help="skip the pictures")
    d.add_argument("--sentences", type=_positive_int, default=DEMO_SENTENCES,
                   help=f"sentences generated for the default corpus (default {DEMO_SENTENCES})")
    _add_training_options(d, demo=True)

    t = sub.add_parser("train", help="train word vectors on a text file (one sentence per line)",
                       description="Train skip-gram with negative sampling (word2vec) and write "
                       "the vectors in word2vec format, readable by gensim and "
                       "pyembed.load_vectors.")
    t.add_argument("corpus_file", nargs="?", metavar="CORPUS",
                   help="text file, one sentence per line, words split on whitespace "
                        "(default: the built-in corpus chosen by --corpus)")
    t.add_argument("-o", "--output", required=True, metavar="OUT", help="vectors file to write")
    t.add_argument("--binary", action="store_true", help="word2vec binary instead of text")
    t.add_argument("--lowercase", action="store_true", help="lowercase the corpus first")
    _add_training_options(t)

    s = sub.add_parser("similar", help="nearest neighbours of a word",
                       description="The words closest to WORD by cosine similarity.")
    s.add_argument("vectors", metavar="VECTORS", help="vectors file (word2vec text/binary, ...)")
    s.add_argument("word", metavar="WORD")
    s.add_argument("-n", "--topn", type=_positive_int, default=10, help="how many (default 10)")

    a = sub.add_parser("analogy", help="A is to B as C is to ?  (B - A + C)",
                       description="Solve A : B :: C : ? by the words nearest to B - A + C "
                       "(3CosAdd, Mikolov et al. 2013). 'analogy V man king woman' asks "
                       "king - man + woman.")
    a.add_argument("vectors", metavar="VECTORS")
    a.add_argument("a", metavar="A")
    a.add_argument("b", metavar="B")
    a.add_argument("c", metavar="C")
    a.add_argument("-n", "--topn", type=_positive_int, default=5, help="how many (default 5)")

    pl = sub.add_parser("plot", help="2-D PCA picture of the vectors",
                        description="Project the vectors on their first two principal axes and "
                        "draw them, labelled.")
    pl.add_argument("vectors", metavar="VECTORS")
    pl.add_argument("-o", "--output", required=True, metavar="PNG", help="picture to write")
    pl.add_argument("--words", nargs="+", metavar="WORD",
                    help="words to draw (default: the most frequent --limit words)")
    pl.add_argument("--limit", type=_positive_int, default=60,
                    help="how many words when --words is not given (default 60)")

    i = sub.add_parser("info", help="size, dimension and a few words of a vectors file",
                       description="Print the number of words, the dimension, the dtype and the "
                       "first words of a vectors file.")
    i.add_argument("vectors", metavar="VECTORS")

    b = sub.add_parser("bench", help="run the kernel benchmarks (python -m pyembed.bench)",
                       description="Run pyembed.bench; the remaining arguments go to it.")
    b.add_argument("bench_args", nargs=argparse.REMAINDER, metavar="...")
    return p


# -- helpers ----------------------------------------------------------------------------------------


def _load(path):
    if not os.path.exists(path):
        raise _UsageError(f"cannot read {path!r}: no such file")
    try:
        return load_vectors(path)
    except (OSError, ValueError, UnicodeError) as e:
        raise _UsageError(f"cannot read {path!r}: {e}") from None


def _check_words(kv, words):
    missing = [w for w in words if w not in kv]
    if missing:
        raise _UsageError("not in the vocabulary: " + ", ".join(repr(w) for w in missing))


def _builtin_corpus(name, seed, n_sentences=DEMO_SENTENCES):
    if name == "stdlib":
        return corpus.stdlib_corpus()
    return corpus.default_corpus(n_sentences=n_sentences, seed=seed)


def _word2vec(sentences, args, progress="auto"):
    return Word2Vec(sentences, workers=args.workers, progress=progress,
                    **{k: getattr(args, k) for k in TRAINING_OPTIONS})


def _fmt_neighbours(pairs):
    return ", ".join(f"{w} ({s:.2f})" for w, s in pairs)


def save_embeddings_plot(kv, words, path, title=None):
    """The 2-D PCA picture of ``words`` (pyembed.plot.plot_2d), EMBEDDINGS_SIZE at DPI."""
    plot_2d(kv, words=list(words), path=path, title=title, figsize=EMBEDDINGS_SIZE, dpi=DPI)
    return path


def save_positional_plot(path, num_positions=128, dim=128):
    """The sinusoidal table (Vaswani et al. 2017) as a heat map: positions down, dimensions
    across, the picture of every transformer tutorial."""
    pe = sinusoidal(num_positions, dim)
    plot_heatmap(pe, path, title=f"Sinusoidal positional encoding, {num_positions} positions x "
                 f"{dim} dims: PE[p, 2i] = sin(p / 10000^(2i/d))",
                 xlabel="dimension i  (even: sin, odd: cos)", ylabel="position p",
                 figsize=POSITIONAL_SIZE, dpi=DPI)
    return path


# -- commands ---------------------------------------------------------------------------------------


def run_demo(out_dir=".", *, seed=DEFAULTS["seed"], workers=1, epochs=DEFAULTS["epochs"],
             corpus="default", plots=True, progress="auto", out=None, args=None):
    """The main job: train on a built-in corpus, print what it learned, draw the pictures.
    Returns ``(model, report)``: the trained Word2Vec and a dict of what was shown
    (neighbours, analogy, paths, seconds)."""
    out = out or sys.stdout
    t0 = time.perf_counter()
    if args is None:
        options = {k: DEFAULTS[k] for k in TRAINING_OPTIONS}
        options.update(epochs=epochs, seed=seed, workers=workers, corpus=corpus,
                       sentences=DEMO_SENTENCES)
        args = argparse.Namespace(**options)
    sents = _builtin_corpus(args.corpus, args.seed, args.sentences)
    n_tok = sum(map(len, sents))
    print(f"corpus: {args.corpus} ({len(sents):,} sentences, {n_tok:,} words)", file=out)
    how = " and ".join((["negative sampling"] if args.negative else [])
                       + (["hierarchical softmax"] if args.hs else []))
    print(f"training {'skip-gram' if args.sg else 'CBOW'} with {how}: dim {args.vector_size}, "
          f"window {args.window}, {args.negative} negatives, {args.epochs} epochs", file=out,
          flush=True)
    model = _word2vec(sents, args, progress=progress)
    print(f"trained in {model.train_seconds:.1f} s ({model.words_per_second / 1e6:.2f}M words/s); "
          f"loss per epoch: " + " -> ".join(f"{x:.3f}" for x in model.loss_history), file=out)
    kv = model.wv
    report = {"neighbours": {}, "analogy": None, "paths": []}
    print("\nnearest neighbours (cosine):", file=out)
    for q in DEMO_QUERIES if args.corpus == "default" else STDLIB_QUERIES:
        if q not in kv:
            print(f"  {q:>5}: (not in the vocabulary)", file=out)
        else:
            nb = kv.most_similar(q, topn=5)
            report["neighbours"][q] = nb
            print(f"  {q:>5}: {_fmt_neighbours(nb)}", file=out)
    a, b, c = DEMO_ANALOGY
    if all(w in kv for w in (a, b, c)):
        ans = kv.analogy(a, b, c, topn=3)
        report["analogy"] = ans
        print(f"\n{b} - {a} + {c} = {ans[0][0]}   (then: {_fmt_neighbours(ans[1:])})", file=out)
    if plots:
        os.makedirs(out_dir, exist_ok=True)
        words = [w for w in DEMO_PLOT_WORDS if w in kv]
        if len(words) < 10:  # another corpus: its most frequent words
            words = list(model.index_to_key[:40])
        p1 = save_embeddings_plot(kv, words, os.path.join(out_dir, EMBEDDINGS_PNG),
                                  title="word2vec on the built-in corpus: PCA of the vectors")
        p2 = save_positional_plot(os.path.join(out_dir, POSITIONAL_PNG))
        report["paths"] = [p1, p2]
        print(f"\nwrote {p1} (PCA of {len(words)} word vectors) and {p2}", file=out)
    report["seconds"] = time.perf_counter() - t0
    print(f"done in {report['seconds']:.1f} s", file=out)
    return model, report


def _cmd_demo(args):
    if not args.no_plots:  # fail before training, not after
        if os.path.exists(args.out_dir) and not os.path.isdir(args.out_dir):
            raise _UsageError(f"cannot write in {args.out_dir!r}: not a directory")
        try:
            os.makedirs(args.out_dir, exist_ok=True)
        except OSError as e:
            raise _UsageError(f"cannot write in {args.out_dir!r}: {e.strerror or e}") from None
        if not os.access(args.out_dir, os.W_OK):
            raise _UsageError(f"cannot write in {args.out_dir!r}: permission denied")
    run_demo(args.out_dir, plots=not args.no_plots, args=args)
    return 0


def _cmd_train(args):
    if args.corpus_file is not None:
        try:
            sents = read_corpus(args.corpus_file, lowercase=args.lowercase)
        except OSError as e:
            raise _UsageError(f"cannot read {args.corpus_file!r}: {e.strerror or e}") from None
    else:
        sents = _builtin_corpus(args.corpus, args.seed)
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        raise _UsageError(f"cannot write {args.output!r}: no directory {out_dir!r}")
    try:
        model = _word2vec(sents, args)
    except ValueError as e:  # e.g. no word reaches min_count
        raise _UsageError(str(e)) from None
    try:
        model.save(args.output, binary=args.binary)
    except OSError as e:
        raise _UsageError(f"cannot write {args.output!r}: {e.strerror or e}") from None
    print(f"wrote {len(model.index_to_key):,} vectors of dimension {model.vector_size} to "
          f"{args.output} ({model.words_per_second / 1e6:.2f}M words/s)")
    return 0


def _cmd_similar(args):
    kv = _load(args.vectors)
    _check_words(kv, [args.word])
    for w, s in kv.most_similar(args.word, topn=args.topn):
        print(f"{s:8.4f}  {w}")
    return 0


def _cmd_analogy(args):
    kv = _load(args.vectors)
    _check_words(kv, [args.a, args.b, args.c])
    res = kv.analogy(args.a, args.b, args.c, topn=args.topn)
    print(f"{args.a} : {args.b} :: {args.c} : ?   ({args.b} - {args.a} + {args.c})")
    for w, s in res:
        print(f"{s:8.4f}  {w}")
    return 0


def _cmd_plot(args):
    kv = _load(args.vectors)
    if args.words:
        _check_words(kv, args.words)
        words = args.words
    else:
        words = list(kv.index_to_key[: args.limit])
    if len(words) < 2:
        raise _UsageError("a plot needs at least 2 words")
    try:
        save_embeddings_plot(kv, words, args.output)
    except OSError as e:
        raise _UsageError(f"cannot write {args.output!r}: {e.strerror or e}") from None
    print(f"wrote {args.output} ({len(words)} words)")
    return 0


def _cmd_info(args):
    kv = _load(args.vectors)
    vec = kv.vectors
    norms = (vec.astype("float64") ** 2).sum(axis=1) ** 0.5
    print(f"file:       {args.vectors}")
    print(f"words:      {len(kv.index_to_key):,}")
    print(f"dimension:  {vec.shape[1]}")
    print(f"dtype:      {vec.dtype}")
    if len(norms):
        print(f"norms:      min {norms.min():.4g}, mean {norms.mean():.4g}, max {norms.max():.4g}")
    # keys are row numbers (ints) for a safetensors file
    print(f"first words: {' '.join(map(str, kv.index_to_key[:10]))}")
    return 0


def _cmd_bench(args):
    return bench.main(list(args.bench_args))


_COMMANDS = {"demo": _cmd_demo, "train": _cmd_train, "similar": _cmd_similar,
             "analogy": _cmd_analogy, "plot": _cmd_plot, "info": _cmd_info, "bench": _cmd_bench}


def main(argv=None):
    """Entry point of the ``pyembed`` script. Returns the exit status."""
    parser = _build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # everything after 'bench' belongs to pyembed.bench
        args = argparse.Namespace(command="bench", bench_args=argv[1:])
    else:
        args = parser.parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Exception as e:  # the promise: one line and status 2, never a traceback
        sys.stderr.write(f"pyembed {args.command}: error: {_one_line(e)}\n")
        return 2


def _one_line(e):
    """An exception as the one line the user sees."""
    if isinstance(e, _UsageError):
        msg = str(e)
    elif isinstance(e, OSError) and e.strerror:
        msg = e.strerror + (f": {e.filename!r}" if e.filename else "")
    elif isinstance(e, MemoryError):
        msg = "out of memory" + (f" ({e})" if str(e) else "") + "; try smaller sizes"
    elif isinstance(e, (ValueError, TypeError, OverflowError, KeyError)):
        msg = str(e)
    else:
        msg = f"{type(e).__name__}: {e}"
    return " ".join(msg.split()) or type(e).__name__

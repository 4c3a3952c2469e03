"""Word vectors from text: skip-gram with negative sampling (word2vec), trained by a C kernel.

The model is Mikolov et al. 2013 ("Distributed Representations of Words and Phrases and their
Compositionality") as word2vec.c and gensim implement it: a dynamic window (each center word
uses a window of 1..window, uniformly), negatives drawn from unigram counts ** 0.75,
frequent-word subsampling, min_count, and a learning rate falling linearly from ``alpha`` to
``min_alpha`` over the whole run. The inner loop (lookup, dot, sigmoid, gradient, scatter into
the two tables, the random draws) is one fused kernel, csrc/kernels/sgns.c, called once per
batch of about ``batch_words`` tokens with the GIL released.

Determinism: every random draw is a function of ``(seed, position of the token in the run)``
(a counter-based generator), so with ``workers=1`` the vectors are the same bits on every run.
With ``workers > 1`` the threads update the shared tables without locks ("Hogwild", as
word2vec.c and gensim do): faster, and equally good, but the result then depends on timing.

>>> from pyembed.train import Word2Vec
>>> sents = [["the", "cat", "sat"], ["the", "dog", "sat"]] * 50
>>> model = Word2Vec(sents, vector_size=16, min_count=1, epochs=2, workers=1, progress=False)
>>> model.wv.vectors.shape
(4, 16)
"""
from __future__ import annotations

import inspect
import itertools
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable

import numpy as np

from . import _core
from ._checks import is_int
from ._util import gc_paused
from .vectors import Vectors

__all__ = ["Word2Vec"]

# Sentences longer than this are cut into pieces, as gensim does (MAX_WORDS_IN_BATCH): a piece
# is the unit a thread takes, and the kernel's scratch is sized by the longest one.
MAX_SENTENCE = 10_000


def _as_sentences(sentences):
    if isinstance(sentences, (str, bytes)):
        raise TypeError("sentences must be an iterable of lists of words, not a string "
                        "(use pyembed.train.read_corpus(path) for a file)")
    return sentences if isinstance(sentences, list) else list(sentences)


def read_corpus(path: str | os.PathLike, lowercase: bool = False) -> list[list[str]]:
    """Sentences of a text file: one sentence per line, words separated by whitespace (the format
    gensim's LineSentence and word2vec.c read)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        if lowercase:
            return [line.lower().split() for line in fh if line.strip()]
        return [line.split() for line in fh if line.strip()]


class Word2Vec:
    """Skip-gram with negative sampling, with gensim's argument names and defaults.

    Args:
        sentences: an iterable of sentences, each a list of str tokens (read once, into one
            int32 array). If given, the model is built and trained right away.
        corpus_file: instead of sentences, a text file with one sentence per line
            (:func:`read_corpus`).
        vector_size: the dimension of the vectors.
        window: the maximum distance between a center word and a context word.
        negative: noise words per (center, context) pair (1 to 64).
        min_count: words seen fewer times are dropped before training.
        sample: frequent-word subsampling threshold (word2vec's formula; 0 disables it).
        epochs: passes over the corpus.
        alpha, min_alpha: the learning rate falls linearly from alpha to min_alpha.
        ns_exponent: negatives are drawn from counts ** ns_exponent.
        batch_words: tokens per kernel call (the progress bar moves once per call).
        seed: seeds the initial vectors and every random draw.
        workers: threads (default: ``pyembed.get_num_threads()``). ``threads`` is an alias.
        progress: ``"auto"`` (a tqdm bar on a terminal, plain lines otherwise), True (always
            report), False (silent).
        sg, hs: accepted for gensim habits; only ``sg=1, hs=0`` (skip-gram with negative
            sampling) exists, anything else raises NotImplementedError.

    Attributes: ``wv`` (a :class:`pyembed.Vectors` of the input vectors), ``syn1neg`` (the output
    vectors), ``index_to_key``, ``counts``, ``loss_history`` (the loss
    per epoch: the sum over a pair's 1 + negative targets of -log sigmoid, averaged over pairs),
    ``words_per_second``, ``train_seconds`` and ``pairs_trained`` of the last :meth:`train`.
    """

    def __init__(self, sentences: Iterable[list[str]] | None = None, *,
                 corpus_file: str | os.PathLike | None = None, vector_size: int = 100,
                 window: int = 5, negative: int = 5, min_count: int = 5, sample: float = 1e-3,
                 epochs: int = 5, alpha: float = 0.025, min_alpha: float = 1e-4,
                 ns_exponent: float = 0.75, batch_words: int = 50_000, seed: int = 1,
                 workers: int | None = None, threads: int | None = None,
                 progress: bool | str = "auto", sg: int = 1, hs: int = 0) -> None:
        if sg != 1 or hs != 0:
            raise NotImplementedError("only skip-gram with negative sampling is implemented "
                                      f"(sg=1, hs=0); got sg={sg!r}, hs={hs!r}")
        if sentences is not None and corpus_file is not None:
            raise ValueError("give sentences or corpus_file, not both")
        if threads is not None and workers is not None and threads != workers:
            raise ValueError(f"workers={workers} and threads={threads} disagree; give one")
        workers = workers if workers is not None else threads
        for name, v, lo in (("vector_size", vector_size, 1), ("window", window, 1),
                            ("negative", negative, 1), ("min_count", min_count, 1),
                            ("epochs", epochs, 1), ("batch_words", batch_words, 1)):
            if not is_int(v):
                raise TypeError(f"{name} must be an int, got {v!r} ({type(v).__name__})")
            if v < lo:
                raise ValueError(f"{name} must be >= {lo}, got {v}")
        if negative > 64:
            raise ValueError(f"negative must be <= 64, got {negative}")
        if window > 2**31 - 1:  # the kernel's window is a C int
            raise ValueError(f"window must be <= 2147483647, got {window}")
        for name, v in (("sample", sample), ("alpha", alpha), ("min_alpha", min_alpha),
                        ("ns_exponent", ns_exponent)):
            if not (isinstance(v, (int, float, np.integer, np.floating))
                    and not isinstance(v, (bool, np.bool_)) and math.isfinite(v)
                    and (v >= 0 or name == "ns_exponent")):
                what = "a finite number" + ("" if name == "ns_exponent" else " >= 0")
                raise ValueError(f"{name} must be {what}, got {v!r}")
        if workers is not None:
            if not is_int(workers):
                raise TypeError(f"workers must be an int, got {workers!r} "
                                f"({type(workers).__name__})")
            if not 1 <= workers <= 2**31 - 1:
                raise ValueError(f"workers must be in [1, 2147483647], got {workers}")
        if not is_int(seed) or not 0 <= seed < 2**64:
            raise ValueError(f"seed must be an int in [0, 2**64), got {seed!r}")
        if progress not in ("auto", True, False):
            raise ValueError(f"progress must be 'auto', True or False, got {progress!r}")
        self.vector_size = int(vector_size)
        self.window = int(window)
        self.negative = int(negative)
        self.min_count = int(min_count)
        self.sample = float(sample)
        self.epochs = int(epochs)
        self.alpha = float(alpha)
        self.min_alpha = float(min_alpha)
        self.ns_exponent = float(ns_exponent)
        self.batch_words = int(batch_words)
        self.seed = int(seed)
        self.workers = int(workers) if workers is not None else None
        self.progress = progress
        self.index_to_key = []
        self.key_to_index = {}
        self.counts = np.zeros(0, np.int64)
        self.syn0 = self.syn1neg = None
        self.loss_history = []
        self.words_per_second = 0.0
        self.train_seconds = 0.0
        self.pairs_trained = 0
        self._wv = None
        if corpus_file is not None:
            sentences = read_corpus(corpus_file)
        if sentences is not None:
            self.build_vocab(sentences)
            self.train()

    # -- vocabulary and corpus ----------------------------------------------------------------
    def build_vocab(self, sentences: Iterable[list[str]]) -> Word2Vec:
        """Count the words, keep those seen ``min_count`` times (most frequent first, ties in
        order of first appearance, as gensim), turn the corpus into int32 ids and initialise
        the tables: input vectors U[-1/dim, 1/dim) (gensim 4; word2vec.c uses half that, which
        learns slower in short runs), output vectors zero."""
        with gc_paused():
            sents = _as_sentences(sentences)
            flat = list(itertools.chain.from_iterable(sents))
            lengths = np.fromiter(map(len, sents), dtype=np.int64, count=len(sents))
            counter = Counter(flat)
        bad = next((w for w in counter if not isinstance(w, str)), None)
        if bad is not None:
            raise TypeError(f"sentences must hold str tokens, got {bad!r} of type "
                            f"{type(bad).__name__}")
        words = np.array(list(counter.keys()), dtype=object)
        counts = np.fromiter(counter.values(), dtype=np.int64, count=len(counter))
        order = np.flatnonzero(counts >= self.min_count)
        # most frequent first; a stable sort keeps ties in order of first appearance (as gensim)
        order = order[np.argsort(-counts[order], kind="stable")]
        if order.size == 0:
            raise ValueError(f"no word occurs min_count={self.min_count} times in "
                             f"{len(flat)} tokens: nothing to train")
        # everything is computed into locals first: a failure (memory, a bad option) leaves
        # the model's vocabulary, corpus and tables as they were
        index_to_key = words[order].tolist()
        key_to_index = dict(zip(index_to_key, range(order.size)))
        counts = counts[order]
        ids = np.fromiter(map(key_to_index.get, flat, itertools.repeat(-1)), dtype=np.int64,
                          count=len(flat))
        keep = ids >= 0
        # sentence bounds after dropping rare words, then long sentences cut into pieces
        cum = np.concatenate(([0], np.cumsum(keep)))
        starts = cum[np.concatenate(([0], np.cumsum(lengths)))[:-1]]
        lens = np.diff(np.append(starts, cum[-1]))
        starts, lens = starts[lens > 0], lens[lens > 0]
        pieces = (lens + MAX_SENTENCE - 1) // MAX_SENTENCE
        piece_start = np.repeat(starts, pieces)
        k = np.arange(piece_start.size) - np.repeat(np.cumsum(pieces) - pieces, pieces)
        tokens = ids[keep].astype(np.int32)
        bounds = np.append(piece_start + k * MAX_SENTENCE, tokens.size).astype(np.int64)
        tables = self._prepare_tables(counts)
        self.index_to_key, self.key_to_index, self.counts = index_to_key, key_to_index, counts
        self._tokens, self._bounds = tokens, bounds
        self._keep, self._alias, self.syn0, self.syn1neg = tables
        self._wv = None
        return self

    def _prepare_tables(self, counts):
        """(keep probabilities, alias table, syn0, syn1neg) for a vocabulary with ``counts``."""
        V, D = len(counts), self.vector_size
        total = float(counts.sum())
        if self.sample > 0:
            # word2vec.c: keep a word with probability (sqrt(f / t) + 1) * t / f, t = sample*total
            t = self.sample * total
            keep = np.minimum((np.sqrt(counts / t) + 1.0) * t / counts, 1.0)
        else:
            keep = np.ones(V)
        with np.errstate(over="ignore"):
            noise = counts.astype(np.float64) ** self.ns_exponent
        if not 0 < noise.sum() < np.inf:
            raise ValueError(f"ns_exponent={self.ns_exponent!r} makes the noise distribution "
                             f"counts ** ns_exponent overflow or vanish (counts "
                             f"{counts.min()} .. {counts.max()})")
        alias = _core.alias_table(noise)
        syn0 = np.empty((V, D), np.float32)
        _core.fill_uniform(syn0, self.seed, -1.0 / D, 1.0 / D)
        return keep, alias, syn0, np.zeros((V, D), np.float32)

    # -- training -----------------------------------------------------------------------------
    def train(self, epochs: int | None = None) -> Word2Vec:
        """Run ``epochs`` passes (default: the constructor's) over the corpus given to
        :meth:`build_vocab`. Returns self."""
        if self.syn0 is None:
            raise RuntimeError("call build_vocab(sentences) before train()")
        if epochs is None:
            epochs = self.epochs
        elif isinstance(epochs, (bool, np.bool_)) or not isinstance(epochs, (int, np.integer)):
            raise TypeError(f"epochs must be an int, got {epochs!r}")
        elif epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        epochs = int(epochs)
        workers = self.workers if self.workers is not None else _core.get_num_threads()
        tokens, bounds = self._tokens, self._bounds
        n_tokens = int(tokens.size)
        # batch boundaries: whole sentences of about batch_words tokens
        marks = np.searchsorted(bounds, np.arange(0, n_tokens, self.batch_words), side="left")
        cuts = np.unique(np.concatenate((marks, [bounds.size - 1])))
        total_run = max(epochs * n_tokens, 1)
        report = _Progress(self.progress, epochs, n_tokens)
        self.loss_history = []
        self.pairs_trained = 0
        start = time.perf_counter()
        try:
            for epoch in range(epochs):
                ep_loss, ep_terms = 0.0, 0
                for s0, s1 in zip(cuts[:-1], cuts[1:]):
                    b = bounds[s0 : s1 + 1]
                    p0 = epoch * n_tokens + int(b[0])
                    p1 = epoch * n_tokens + int(b[-1]) - 1
                    a0 = self.alpha - (self.alpha - self.min_alpha) * (p0 / total_run)
                    a1 = self.alpha - (self.alpha - self.min_alpha) * (p1 / total_run)
                    loss, pairs, _ = _core.sgns_train(
                        self.syn0, self.syn1neg, tokens, b, self._keep, self._alias,
                        window=self.window, negative=self.negative, alpha_begin=a0,
                        alpha_end=max(a1, 0.0), seed=self.seed,
                        counter_base=epoch * n_tokens, threads=workers)
                    ep_loss += loss
                    ep_terms += pairs
                    self.pairs_trained += pairs
                    report.batch(int(b[-1] - b[0]), loss, pairs)
                mean = ep_loss / max(ep_terms, 1)
                self.loss_history.append(mean)
                report.epoch(epoch, mean)
        finally:
            report.close()
        self.train_seconds = time.perf_counter() - start
        self.words_per_second = epochs * n_tokens / max(self.train_seconds, 1e-9)
        self._wv = None
        return self

    @property
    def bytes_moved(self) -> int:
        """The least memory traffic of the last train(): every (center, context) pair reads and
        writes its context row of syn0 and 1 + negative rows of syn1 (float32)."""
        return self.pairs_trained * (2 + 2 * (1 + self.negative)) * self.vector_size * 4

    # -- results ------------------------------------------------------------------------------
    @property
    def wv(self) -> Vectors:
        """The trained input vectors as a :class:`pyembed.Vectors` (shares no memory with the
        model: training further does not change a Vectors already returned)."""
        if self.syn0 is None:
            raise RuntimeError("the model has no vocabulary yet: call build_vocab/train")
        if self._wv is None:
            self._wv = Vectors(list(self.index_to_key), self.syn0.copy(), copy=False)
            # the real corpus counts, as gensim's model.wv has them: wv.save(fvocab=...) writes them
            self._wv.expandos["count"] = self.counts.copy()
        return self._wv

    def save(self, path: str | os.PathLike, binary: bool = False,
             fvocab: str | os.PathLike | None = None) -> None:
        """Write the word vectors in word2vec text (or binary) format, which gensim's
        ``KeyedVectors.load_word2vec_format`` and ``pyembed.load_vectors`` read; ``fvocab``: also
        the word counts, a ``"word count"`` line each (word2vec.c's ``-save-vocab``)."""
        self.wv.save(path, format="word2vec", binary=binary, fvocab=fvocab)


#: Word2Vec's defaults (gensim's), read from its signature: the one place they are written. The
#: command line and the bench take theirs from here.
DEFAULTS = {name: p.default for name, p in inspect.signature(Word2Vec).parameters.items()
            if p.default is not inspect.Parameter.empty}


class _Progress:
    """A tqdm bar (words, words/s, loss) on a terminal; otherwise ten plain lines, one per tenth
    of the run, each with the mean loss since the line before (so the loss is seen falling)."""

    LINES = 10

    def __init__(self, mode, epochs, n_tokens):
        self.epochs = epochs
        self.total = max(epochs * n_tokens, 1)
        self.bar = None
        self.plain = mode is True or (mode == "auto" and not _isatty())
        self.enabled = mode is not False
        self.t0 = time.perf_counter()
        self.done = 0
        self.cur_epoch = 0
        self.next_line = 1
        self.line_loss, self.line_terms = 0.0, 0
        self.run_loss, self.run_terms = 0.0, 0
        if self.enabled and not self.plain:
            # imported when a bar is shown: tqdm takes 40 ms to import, half of import pyembed
            from tqdm import tqdm

            self.bar = tqdm(total=epochs * n_tokens, unit="word", unit_scale=True,
                            desc="training", dynamic_ncols=True, leave=True)

    def batch(self, words, loss, pairs):
        self.done += words
        self.run_loss += loss
        self.run_terms += pairs
        self.line_loss += loss
        self.line_terms += pairs
        if self.bar is not None:
            self.bar.update(words)
            self.bar.set_postfix(loss=f"{self.run_loss / max(self.run_terms, 1):.4f}",
                                 refresh=False)
        elif self.enabled and self.done * self.LINES >= self.next_line * self.total:
            rate = self.done / max(time.perf_counter() - self.t0, 1e-9)
            print(f"{100 * self.done / self.total:5.0f}%  epoch {self.cur_epoch + 1}/{self.epochs}"
                  f"  loss {self.line_loss / max(self.line_terms, 1):.4f}  "
                  f"{rate / 1e6:.2f}M words/s", flush=True)
            self.line_loss, self.line_terms = 0.0, 0
            while self.next_line * self.total <= self.done * self.LINES:
                self.next_line += 1

    def epoch(self, epoch, mean_loss):
        self.run_loss, self.run_terms = 0.0, 0
        self.cur_epoch = epoch + 1
        if self.bar is not None:
            self.bar.write(f"epoch {epoch + 1}/{self.epochs}: loss {mean_loss:.4f}")

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _isatty():
    try:
        return sys.stderr.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):
        return False

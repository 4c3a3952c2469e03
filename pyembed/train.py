"""Word vectors from text: word2vec (skip-gram or CBOW; negative sampling and/or hierarchical
softmax), trained by a C kernel.

The model is Mikolov et al. 2013 ("Efficient Estimation of Word Representations in Vector Space";
"Distributed Representations of Words and Phrases and their Compositionality") as word2vec.c and
gensim implement it: a dynamic window (each center word uses a window of 1..window, uniformly),
negatives drawn from unigram counts ** 0.75, a Huffman tree of the counts for hierarchical
softmax (built as gensim builds it: pyembed/huffman.py), frequent-word subsampling, min_count,
and a learning rate falling linearly from ``alpha`` to ``min_alpha`` over the whole run. The
inner loop (lookup, dot, sigmoid, gradient, scatter into the tables, the random draws) is one
fused kernel, csrc/kernels/sgns.c, called once per batch of about ``batch_words`` tokens with the
GIL released.

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
import time
from collections import Counter
from collections.abc import Iterable

import numpy as np

from . import _core
from ._checks import is_int
from ._util import gc_paused
from .huffman import huffman_tree
from .progress import Progress
from .vectors import Vectors, load_vectors

__all__ = ["Word2Vec", "NoVocabularyError"]

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


class NoVocabularyError(ValueError, RuntimeError):
    """No word kept: a ValueError (pyembed's bad input) and a RuntimeError (gensim's)."""


def _pieces(ids, lengths):
    """(tokens int32, bounds int64) of a corpus given as word ids (-1: dropped) and sentence
    lengths: sentences without their dropped words, long ones cut into MAX_SENTENCE pieces."""
    keep = ids >= 0
    cum = np.concatenate(([0], np.cumsum(keep)))
    starts = cum[np.concatenate(([0], np.cumsum(lengths)))[:-1]]
    lens = np.diff(np.append(starts, cum[-1]))
    starts, lens = starts[lens > 0], lens[lens > 0]
    pieces = (lens + MAX_SENTENCE - 1) // MAX_SENTENCE
    piece_start = np.repeat(starts, pieces)
    k = np.arange(piece_start.size) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    tokens = ids[keep].astype(np.int32)
    bounds = np.append(piece_start + k * MAX_SENTENCE, tokens.size).astype(np.int64)
    return tokens, bounds


class Word2Vec:
    """word2vec with gensim's argument names and defaults, except ``sg=1`` (skip-gram) by default
    (gensim: CBOW; see the README's "Differences from gensim and PyTorch").

    Args:
        sentences: an iterable of sentences, each a list of str tokens (read once, into one
            int32 array). If given, the model is built and trained right away.
        corpus_file: instead of sentences, a text file with one sentence per line
            (:func:`read_corpus`).
        vector_size: the dimension of the vectors.
        window: the maximum distance between a center word and a context word.
        negative: noise words per prediction (0 to 64; 0 only with ``hs=1``).
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
        sg: 1 skip-gram (each context word predicts the center), 0 CBOW (the context's mean,
            or sum, predicts the center).
        hs: 1 adds hierarchical softmax (a Huffman tree of the counts; ``negative=0`` then
            turns negative sampling off).
        cbow_mean: CBOW only: 1 the mean of the context vectors, 0 their sum (the gradient is
            then divided by the context size, as gensim does).

    Attributes: ``wv`` (a :class:`pyembed.Vectors` of the input vectors), ``syn1neg`` (the output
    vectors of negative sampling), ``syn1`` (the tree's inner-node vectors when ``hs=1``, else
    None), ``index_to_key``, ``counts``, ``loss_history`` (the loss per epoch: the sum of
    -log sigmoid over a prediction's targets, averaged over predictions: (center, context) pairs
    for skip-gram, centers for CBOW), ``words_per_second``, ``train_seconds`` and
    ``pairs_trained`` (predictions) of the last :meth:`train`.

    Training continues: ``build_vocab(sentences, update=True)`` adds a corpus's new words
    (gensim's online update); each :meth:`train` goes on from the current tables and random
    stream. :meth:`from_vectors` starts from loaded vectors; :meth:`intersect_vectors` copies
    loaded vectors into the model's rows.
    """

    def __init__(self, sentences: Iterable[list[str]] | None = None, *,
                 corpus_file: str | os.PathLike | None = None, vector_size: int = 100,
                 window: int = 5, negative: int = 5, min_count: int = 5, sample: float = 1e-3,
                 epochs: int = 5, alpha: float = 0.025, min_alpha: float = 1e-4,
                 ns_exponent: float = 0.75, batch_words: int = 50_000, seed: int = 1,
                 workers: int | None = None, threads: int | None = None,
                 progress: bool | str = "auto", sg: int = 1, hs: int = 0,
                 cbow_mean: int = 1) -> None:
        for name, v in (("sg", sg), ("hs", hs), ("cbow_mean", cbow_mean)):
            if not (is_int(v) or isinstance(v, (bool, np.bool_))) or v not in (0, 1):
                raise ValueError(f"{name} must be 0 or 1, got {v!r}")
        if sentences is not None and corpus_file is not None:
            raise ValueError("give sentences or corpus_file, not both")
        if threads is not None and workers is not None and threads != workers:
            raise ValueError(f"workers={workers} and threads={threads} disagree; give one")
        workers = workers if workers is not None else threads
        for name, v, lo in (("vector_size", vector_size, 1), ("window", window, 1),
                            ("negative", negative, 0), ("min_count", min_count, 1),
                            ("epochs", epochs, 1), ("batch_words", batch_words, 1)):
            if not is_int(v):
                raise TypeError(f"{name} must be an int, got {v!r} ({type(v).__name__})")
            if v < lo:
                raise ValueError(f"{name} must be >= {lo}, got {v}")
        if negative > 64:
            raise ValueError(f"negative must be <= 64, got {negative}")
        if negative == 0 and not hs:
            raise ValueError("negative=0 with hs=0 trains nothing: set negative >= 1 or hs=1 "
                             "(gensim refuses it too)")
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
        self.sg, self.hs, self.cbow_mean = int(sg), int(hs), int(cbow_mean)
        self.syn1 = None
        self._tree = None
        self._ran = 0  # tokens trained over all train() calls: where the random stream goes on
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
    def build_vocab(self, sentences: Iterable[list[str]] | None = None, update: bool = False, *,
                    corpus_file: str | os.PathLike | None = None) -> Word2Vec:
        """Count the words, keep those seen ``min_count`` times (most frequent first, ties in
        order of first appearance, as gensim), turn the corpus into int32 ids and initialise
        the tables: input vectors U[-1/dim, 1/dim) (gensim 4; word2vec.c uses half that, which
        learns slower in short runs), output vectors zero.

        ``update=True`` (gensim's online update) keeps the vocabulary and the tables: a word of
        the new corpus seen ``min_count`` times is appended (in order of first appearance) with
        a fresh random row and zero output rows, or, if known, its count grows by the new
        count; the sampling tables and the Huffman tree are rebuilt from the new counts (the
        tree's inner-node rows keep their numbers, as in gensim). The new corpus is what
        :meth:`train` then trains on. ``corpus_file``: a text file instead of sentences."""
        if (sentences is None) == (corpus_file is None):
            raise TypeError("build_vocab needs sentences or corpus_file (one of them)")
        if corpus_file is not None:
            sentences = read_corpus(corpus_file)
        if not isinstance(update, (bool, np.bool_)):
            raise TypeError(f"update must be a bool, got {update!r}")
        if update and self.syn0 is None:
            raise RuntimeError("build_vocab(update=True) needs a vocabulary: call "
                               "build_vocab(sentences) or Word2Vec.from_vectors first")
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
        # everything is computed into locals first: a failure (memory, a bad option) leaves
        # the model's vocabulary, corpus and tables as they were
        if update:
            old = self.key_to_index
            known = np.fromiter((w in old for w in words[order]), bool, count=order.size)
            index_to_key = self.index_to_key + words[order[~known]].tolist()
            key_to_index = dict(zip(index_to_key, range(len(index_to_key))))
            counts_all = np.concatenate((self.counts, counts[order[~known]]))
            np.add.at(counts_all, [old[w] for w in words[order[known]]], counts[order[known]])
            counts = counts_all
        else:
            # most frequent first; a stable sort keeps ties in order of first appearance
            order = order[np.argsort(-counts[order], kind="stable")]
            if order.size == 0:
                raise NoVocabularyError(f"no word occurs min_count={self.min_count} times in "
                                 f"{len(flat)} tokens: nothing to train")
            index_to_key = words[order].tolist()
            key_to_index = dict(zip(index_to_key, range(order.size)))
            counts = counts[order]
        ids = np.fromiter(map(key_to_index.get, flat, itertools.repeat(-1)), dtype=np.int64,
                          count=len(flat))
        tokens, bounds = _pieces(ids, lengths)
        sampling = self._sampling(counts)
        tables = self._grow_tables(len(counts)) if update else self._new_tables(len(counts))
        self.index_to_key, self.key_to_index, self.counts = index_to_key, key_to_index, counts
        self._tokens, self._bounds = tokens, bounds
        self._keep, self._alias, self._tree = sampling
        self.syn0, self.syn1neg, self.syn1 = tables
        if not update:
            self._ran = 0
        self._wv = None
        return self

    def _sampling(self, counts):
        """(keep probabilities, alias table, Huffman tree or None) for ``counts``."""
        total = float(counts.sum())
        if self.sample > 0:
            # word2vec.c: keep a word with probability (sqrt(f / t) + 1) * t / f, t = sample*total
            t = self.sample * total
            with np.errstate(divide="ignore"):  # a count of 0 (from_vectors): never in a corpus
                keep = np.minimum((np.sqrt(counts / t) + 1.0) * t / counts, 1.0)
        else:
            keep = np.ones(len(counts))
        with np.errstate(over="ignore"):
            noise = counts.astype(np.float64) ** self.ns_exponent
        if not 0 < noise.sum() < np.inf:
            raise ValueError(f"ns_exponent={self.ns_exponent!r} makes the noise distribution "
                             f"counts ** ns_exponent overflow or vanish (counts "
                             f"{counts.min()} .. {counts.max()})")
        alias = _core.alias_table(noise)
        return keep, alias, huffman_tree(counts) if self.hs else None

    def _new_tables(self, V):
        """(syn0, syn1neg, syn1 or None) for V words: syn0 random, the output tables zero."""
        D = self.vector_size
        syn0 = np.empty((V, D), np.float32)
        _core.fill_uniform(syn0, self.seed, -1.0 / D, 1.0 / D)
        return syn0, np.zeros((V, D), np.float32), np.zeros((V, D), np.float32) if self.hs else None

    def _grow_tables(self, V):
        """The tables with rows for words V_old..V-1 appended: random input rows (from a seed
        of their own), zero output rows."""
        D, V0 = self.vector_size, self.syn0.shape[0]
        new = np.empty((V - V0, D), np.float32)
        _core.fill_uniform(new, (self.seed + V0) % 2**64, -1.0 / D, 1.0 / D)
        zeros = np.zeros((V - V0, D), np.float32)
        syn1 = None
        if self.hs:
            syn1 = np.concatenate((self.syn1, zeros)) if self.syn1 is not None else \
                np.zeros((V, D), np.float32)
        return np.concatenate((self.syn0, new)), np.concatenate((self.syn1neg, zeros)), syn1

    @classmethod
    def from_vectors(cls, vectors: Vectors | str | os.PathLike, **params) -> Word2Vec:
        """A model whose vocabulary and input vectors are loaded ones (a :class:`Vectors`, or a
        path :func:`pyembed.load_vectors` reads), ready to continue training: then
        ``build_vocab(sentences, update=True)`` and :meth:`train`. The counts are the vectors'
        ``"count"`` attribute (1 each without it; a file read without ``fvocab`` has gensim's
        made-up falling counts); the output tables start at zero.
        ``params``: the constructor's (``vector_size`` must be the vectors' if given)."""
        vectors = vectors if isinstance(vectors, Vectors) else load_vectors(vectors)
        keys = list(vectors.index_to_key)
        bad = next((k for k in keys if not isinstance(k, str)), None)
        if bad is not None:
            raise TypeError(f"vectors must have str keys, got {bad!r}")
        if not keys:
            raise ValueError("vectors holds no words: nothing to start from")
        D = vectors.vectors.shape[1]
        if params.setdefault("vector_size", D) != D:
            raise ValueError(f"vector_size={params['vector_size']!r} but the vectors have "
                             f"{D} dimensions")
        given = [n for n in ("sentences", "corpus_file") if params.get(n) is not None]
        if given:
            raise TypeError(f"from_vectors takes no {given[0]}: use build_vocab(sentences, "
                            "update=True), then train()")
        model = cls(**params)
        counts = vectors.expandos.get("count") if hasattr(vectors, "expandos") else None
        counts = np.ones(len(keys), np.int64) if counts is None else \
            np.asarray(counts, dtype=np.int64).copy()
        sampling = model._sampling(counts)
        syn0, syn1neg, syn1 = model._new_tables(len(keys))
        syn0[...] = vectors.vectors
        model.index_to_key, model.key_to_index = keys, dict(zip(keys, range(len(keys))))
        model.counts = counts
        model._tokens, model._bounds = np.zeros(0, np.int32), np.zeros(1, np.int64)
        model._keep, model._alias, model._tree = sampling
        model.syn0, model.syn1neg, model.syn1 = syn0, syn1neg, syn1
        return model

    def intersect_vectors(self, vectors: Vectors | str | os.PathLike) -> int:
        """Copy the loaded vectors of the words this model knows over their rows (gensim's
        ``intersect_word2vec_format`` with ``lockf=1.0``: they keep training); other words are
        left alone. ``vectors``: a :class:`Vectors` or a path. Returns the number copied."""
        if self.syn0 is None:
            raise RuntimeError("the model has no vocabulary yet: call build_vocab first")
        vectors = vectors if isinstance(vectors, Vectors) else load_vectors(vectors)
        D = vectors.vectors.shape[1]
        if D != self.vector_size:
            raise ValueError(f"the vectors have {D} dimensions, the model {self.vector_size}")
        pairs = [(self.key_to_index[k], i) for i, k in enumerate(vectors.index_to_key)
                 if isinstance(k, str) and k in self.key_to_index]
        if pairs:
            rows, src = np.array(pairs).T
            self.syn0[rows] = vectors.vectors[src]
            self._wv = None
        return len(pairs)

    # -- training -----------------------------------------------------------------------------
    def train(self, epochs: int | None = None, *,
              corpus_iterable: Iterable[list[str]] | None = None,
              corpus_file: str | os.PathLike | None = None, total_examples: int | None = None,
              total_words: int | None = None, start_alpha: float | None = None,
              end_alpha: float | None = None) -> Word2Vec:
        """Run ``epochs`` passes (default: the constructor's) over the corpus given to
        :meth:`build_vocab`, or over ``corpus_iterable``/``corpus_file`` (words not in the
        vocabulary are dropped), continuing from the current tables. The learning rate falls
        linearly from ``start_alpha`` (default ``alpha``) to ``end_alpha`` (default
        ``min_alpha``) over this call, as gensim's. ``total_examples``/``total_words`` are
        accepted for gensim's calls and not needed. Returns self."""
        if self.syn0 is None:
            raise RuntimeError("call build_vocab(sentences) before train()")
        if epochs is None:
            epochs = self.epochs
        elif isinstance(epochs, (bool, np.bool_)) or not isinstance(epochs, (int, np.integer)):
            hint = ("; pass the corpus as train(corpus_iterable=...)"
                    if isinstance(epochs, (list, tuple)) else "")
            raise TypeError(f"epochs must be an int, got {epochs!r}{hint}")
        elif epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        epochs = int(epochs)
        a_start = self.alpha if start_alpha is None else start_alpha
        a_end = self.min_alpha if end_alpha is None else end_alpha
        for name, v in (("start_alpha", a_start), ("end_alpha", a_end)):
            if not (isinstance(v, (int, float, np.integer, np.floating))
                    and not isinstance(v, (bool, np.bool_)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        for name, v in (("total_examples", total_examples), ("total_words", total_words)):
            if v is not None and (not is_int(v) or v < 0):
                raise ValueError(f"{name} must be an int >= 0 or None, got {v!r}")
        if corpus_iterable is not None and corpus_file is not None:
            raise ValueError("give corpus_iterable or corpus_file, not both")
        if corpus_file is not None:
            corpus_iterable = read_corpus(corpus_file)
        tokens, bounds = self._tokens, self._bounds
        if corpus_iterable is not None:
            sents = _as_sentences(corpus_iterable)
            with gc_paused():
                flat = list(itertools.chain.from_iterable(sents))
                lengths = np.fromiter(map(len, sents), dtype=np.int64, count=len(sents))
                ids = np.fromiter(map(self.key_to_index.get, flat, itertools.repeat(-1)),
                                  dtype=np.int64, count=len(flat))
            tokens, bounds = _pieces(ids, lengths)
        if tokens.size == 0:
            raise ValueError("no corpus to train on: call build_vocab(sentences, update=True) "
                             "or pass corpus_iterable")
        workers = self.workers if self.workers is not None else _core.get_num_threads()
        n_tokens = int(tokens.size)
        # batch boundaries: whole sentences of about batch_words tokens
        marks = np.searchsorted(bounds, np.arange(0, n_tokens, self.batch_words), side="left")
        cuts = np.unique(np.concatenate((marks, [bounds.size - 1])))
        total_run = max(epochs * n_tokens, 1)
        report = Progress(self.progress, epochs, n_tokens)
        tree = {}
        if self.hs:
            points, codes, offsets = self._tree
            tree = dict(hs_syn1=self.syn1, points=points, codes=codes, code_offsets=offsets)
        self.loss_history = []
        self.pairs_trained = 0
        start = time.perf_counter()
        try:
            for epoch in range(epochs):
                ep_loss, ep_terms = 0.0, 0
                base = self._ran + epoch * n_tokens
                for s0, s1 in zip(cuts[:-1], cuts[1:]):
                    b = bounds[s0 : s1 + 1]
                    p0 = epoch * n_tokens + int(b[0])
                    p1 = epoch * n_tokens + int(b[-1]) - 1
                    a0 = a_start - (a_start - a_end) * (p0 / total_run)
                    a1 = a_start - (a_start - a_end) * (p1 / total_run)
                    loss, pairs, _ = _core.sgns_train(
                        self.syn0, self.syn1neg, tokens, b, self._keep, self._alias,
                        window=self.window, negative=self.negative, alpha_begin=a0,
                        alpha_end=max(a1, 0.0), seed=self.seed, counter_base=base % 2**64,
                        threads=workers, sg=bool(self.sg), cbow_mean=bool(self.cbow_mean),
                        **tree)
                    ep_loss += loss
                    ep_terms += pairs
                    self.pairs_trained += pairs
                    report.batch(int(b[-1] - b[0]), loss, pairs)
                mean = ep_loss / max(ep_terms, 1)
                self.loss_history.append(mean)
                report.epoch(epoch, mean)
        finally:
            report.close()
        self._ran += epochs * n_tokens
        self.train_seconds = time.perf_counter() - start
        self.words_per_second = epochs * n_tokens / max(self.train_seconds, 1e-9)
        self._wv = None
        return self

    @property
    def bytes_moved(self) -> int:
        """The least memory traffic of the last train() (float32 rows read and written): per
        prediction the 1 + negative rows of syn1neg, the mean path's rows of syn1, and per
        objective the context row (skip-gram) or, an estimate, window + 1 context rows read
        twice and written once (CBOW)."""
        ns = bool(self.negative or not self.hs)
        per = 2.0 * (1 + self.negative) if ns else 0.0
        if self.hs:
            lengths = np.diff(self._tree[2])
            per += 2 * float((lengths * self.counts).sum()) / max(float(self.counts.sum()), 1.0)
        per += (ns + bool(self.hs)) * (2 if self.sg else 3 * (self.window + 1))
        return int(self.pairs_trained * per * self.vector_size * 4)

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

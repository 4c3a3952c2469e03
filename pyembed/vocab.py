"""pyembed.Vocab: words <-> ids, with special tokens at fixed ids.

Built from a list of words (kept in order), from counts (most frequent first, ties in first-seen
order, ``min_count`` / ``max_size`` applied), or from a corpus with :meth:`Vocab.from_corpus`.
Special tokens (``"<unk>"``, ``"<pad>"``, ...) take ids ``0 .. len(specials) - 1`` in the order
given. Encoding and decoding are single C-level passes (``map`` over dict lookups into
``np.fromiter``), no Python loop per token.
"""
from __future__ import annotations

import collections
import itertools
import os
from collections.abc import Hashable, Iterable, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from ._checks import as_ids, is_int
from ._util import atomic_write

__all__ = ["Vocab"]


class Vocab:
    """Map words to ids and back.

    Args:
        tokens: the vocabulary in id order (after the specials); repeated words keep their
            first id.
        counts: ``{word: count}`` (a dict or Counter) instead of ``tokens``: words with
            ``count >= min_count``, most frequent first (ties keep the mapping's order), at most
            ``max_size`` of them (specials not counted).
        min_count, max_size: filters for ``counts`` (``max_size`` also truncates ``tokens``).
        specials: tokens with the first ids, in this order (default ``("<unk>",)``).
        unk_token: the token unknown words encode to (default ``"<unk>"`` when it is in the
            vocabulary); ``None``: unknown words raise KeyError.

    Example:
        >>> from pyembed import Vocab
        >>> v = Vocab(counts={"the": 5, "cat": 2, "sat": 2, "rare": 1}, min_count=2,
        ...           specials=("<pad>", "<unk>"))
        >>> v.index_to_key
        ['<pad>', '<unk>', 'the', 'cat', 'sat']
        >>> v.encode("the cat sat on".split()).tolist()
        [2, 3, 4, 1]
        >>> v.decode([2, 3])
        ['the', 'cat']
    """

    def __init__(self, tokens: Iterable[Hashable] | None = None, *,
                 counts: Mapping[Hashable, int] | None = None, min_count: int = 1,
                 max_size: int | None = None, specials: Sequence[Hashable] = ("<unk>",),
                 unk_token: Hashable | None = "<unk>") -> None:
        if tokens is not None and counts is not None:
            raise ValueError("give tokens or counts, not both")
        if isinstance(tokens, str):
            raise TypeError("tokens must be a list of words, not a str (did you mean .split()?)")
        if not is_int(min_count) or min_count < 0:
            raise ValueError(f"min_count must be an int >= 0, got {min_count!r}")
        if max_size is not None and (not is_int(max_size) or max_size < 0):
            raise ValueError(f"max_size must be an int >= 0 or None, got {max_size!r}")
        if isinstance(specials, str):
            raise TypeError("specials must be a sequence of tokens, not a str")
        specials = [] if specials is None else list(specials)
        if len(set(specials)) != len(specials):
            raise ValueError(f"specials must be distinct, got {specials}")
        self.counts = None
        if counts is not None:
            counts = dict(counts)
            bad = next((w for w, c in counts.items() if not is_int(c)), None)
            if bad is not None:
                raise TypeError(f"counts must map words to ints, got counts[{bad!r}] = "
                                f"{str(repr(counts[bad]))[:80]}")
            items = [(w, c) for w, c in counts.items() if c >= min_count]
            # stable sort: ties keep the mapping's (first-seen) order, as Counter.most_common
            items.sort(key=lambda wc: -wc[1])
            words = [w for w, _ in items]
            self.counts = counts
        else:
            words = list(tokens) if tokens is not None else []
        special_set = set(specials)
        words = [w for w in dict.fromkeys(words) if w not in special_set]
        if max_size is not None:
            words = words[:int(max_size)]
        self.index_to_key = specials + words
        self.key_to_index = dict(zip(self.index_to_key, range(len(self.index_to_key))))
        self.specials = tuple(specials)
        if unk_token is not None and unk_token not in self.key_to_index:
            if unk_token != "<unk>":
                raise ValueError(f"unk_token {unk_token!r} is not in the vocabulary "
                                 f"(add it to specials)")
            unk_token = None
        self.unk_token = unk_token
        self.unk_id = self.key_to_index[unk_token] if unk_token is not None else None

    @classmethod
    def from_corpus(cls, sentences: Iterable, *, min_count: int = 1, max_size: int | None = None,
                    specials: Sequence[Hashable] = ("<unk>",),
                    unk_token: Hashable | None = "<unk>") -> Vocab:
        """Count the tokens of ``sentences`` (an iterable of token lists, or of tokens) and
        build from the counts."""
        counter = collections.Counter()
        for s in sentences:
            if isinstance(s, str):
                counter[s] += 1
            else:
                counter.update(s)
        return cls(counts=counter, min_count=min_count, max_size=max_size, specials=specials,
                   unk_token=unk_token)

    @classmethod
    def from_tokenizer(cls, tokenizer, *, num_embeddings: int | None = None) -> Vocab:
        """The vocabulary of a subword tokenizer, in id order, so that ``vocab.index_to_key[i]``
        names row ``i`` of the model's token table.

        ``tokenizer``: a :class:`pyembed.Tokenizer`, a ``tokenizers.Tokenizer`` or a
        transformers tokenizer (anything with ``get_vocab()``, added tokens included). Its
        unknown token, if any, becomes ``unk_token``; no specials are moved (their ids are the
        tokenizer's).

        ``num_embeddings``: the rows of the table the vocabulary will name, when the checkpoint
        has more rows than the tokenizer has tokens (T5: 32128 rows for 32100 tokens; tables are
        often padded to a multiple of 64 or 128). The rows past the tokenizer's, and any id the
        tokenizer leaves unused, get placeholder names ``"<row N>"``: every row stays
        addressable (``decode``/``encode`` of the name), and no text encodes to them. Fewer rows
        than the tokenizer's largest id + 1 is a ValueError. Without it the vocabulary has
        exactly the tokenizer's ids, and :meth:`pyembed.Embedding.from_pretrained` warns when
        given a larger table.
        """
        get_vocab = getattr(tokenizer, "get_vocab", None)
        if not callable(get_vocab):
            raise TypeError(f"tokenizer must have get_vocab() (a pyembed.Tokenizer, a "
                            f"tokenizers.Tokenizer or a transformers tokenizer), got "
                            f"{type(tokenizer).__name__}")
        mapping = dict(get_vocab())
        bad = next((t for t, i in mapping.items() if not is_int(i) or i < 0), None)
        if bad is not None:
            raise ValueError(f"the tokenizer's vocabulary maps {bad!r} to {mapping[bad]!r}, "
                             f"not an id >= 0")
        size = max(mapping.values(), default=-1) + 1
        if num_embeddings is not None:
            if not is_int(num_embeddings):
                raise TypeError(f"num_embeddings must be an int or None, got "
                                f"{type(num_embeddings).__name__}")
            if num_embeddings < size:
                raise ValueError(f"num_embeddings={num_embeddings} is less than the tokenizer's "
                                 f"{size} ids: the table would miss tokens")
            size = int(num_embeddings)
        tokens = [None] * size
        for token, i in mapping.items():
            tokens[i] = token
        if len(mapping) < size:
            taken = set(mapping)
            for i, t in enumerate(tokens):
                if t is None:
                    name = f"<row {i}>"
                    while name in taken:  # a tokenizer that already has the name: mark it again
                        name = f"<{name}>"
                    tokens[i] = name
        unk = getattr(tokenizer, "unk_token", None)
        if unk is None:  # a tokenizers.Tokenizer keeps it on its model (transformers' too)
            backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
            unk = getattr(getattr(backend, "model", None), "unk_token", None)
        return cls(tokens, specials=(), unk_token=unk if unk in mapping else None)

    # -- lookups -----------------------------------------------------------------------------------
    def __len__(self):
        return len(self.index_to_key)

    def __contains__(self, token):
        return token in self.key_to_index

    def __iter__(self):
        return iter(self.index_to_key)

    def __getitem__(self, token):
        """The id of one token (the unk id, or KeyError, for an unknown one)."""
        i = self.key_to_index.get(token)
        if i is not None:
            return i
        if self.unk_id is not None:
            return self.unk_id
        raise KeyError(f"token {token!r} is not in the vocabulary and there is no unk_token")

    def __repr__(self):
        return f"Vocab({len(self)} tokens, specials={list(self.specials)}, unk_token={self.unk_token!r})"

    def __eq__(self, other):
        return (isinstance(other, Vocab) and self.index_to_key == other.index_to_key
                and self.unk_token == other.unk_token)

    def encode(self, tokens) -> np.ndarray | int:
        """ids of ``tokens`` as an int64 array (one str -> one int)."""
        if isinstance(tokens, str):
            return self[tokens]
        tokens = tokens if isinstance(tokens, (list, tuple)) else list(tokens)
        get = self.key_to_index.get
        if self.unk_id is not None:
            unk = self.unk_id
            return np.fromiter(map(get, tokens, itertools.repeat(unk)), np.int64, len(tokens))
        ids = np.fromiter(map(get, tokens, itertools.repeat(-1)), np.int64, len(tokens))
        if len(ids) and ids.min() < 0:
            pos = int(np.flatnonzero(ids < 0)[0])
            raise KeyError(f"token {tokens[pos]!r} at position {pos} is not in the vocabulary "
                           f"and there is no unk_token")
        return ids

    def decode(self, ids: ArrayLike) -> list | Hashable:
        """Tokens of ``ids`` (a list for a sequence, a str for one int)."""
        if is_int(ids):
            if not -len(self) <= ids < len(self):
                raise IndexError(f"id {ids} out of range for a vocabulary of {len(self)}")
            return self.index_to_key[ids]
        arr = as_ids(ids, len(self), f"a vocabulary of {len(self)}")
        if arr.size == 0:
            return []
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"ids must be integers, got dtype {arr.dtype}")
        flat = arr.reshape(-1)
        bad = np.flatnonzero((flat < 0) | (flat >= len(self)))
        if bad.size:
            raise IndexError(f"id {int(flat[bad[0]])} at position {int(bad[0])} out of range for "
                             f"a vocabulary of {len(self)}")
        return list(map(self.index_to_key.__getitem__, flat.tolist()))

    lookup_indices = encode
    lookup_tokens = decode

    # -- files ---------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """One token per line (UTF-8), in id order; written to a temporary file and renamed."""
        text = "\n".join(self.index_to_key)
        if text.count("\n") != max(len(self) - 1, 0):
            bad = next(t for t in self.index_to_key if "\n" in t)
            raise ValueError(f"token {bad!r} contains a newline and cannot be saved one per line")
        if "\r\n" in text + "\n":
            bad = next(t for t in self.index_to_key if t.endswith("\r"))
            raise ValueError(f"token {bad!r} ends in a carriage return, which load() reads as "
                             "part of a Windows line end: it cannot be saved one per line")
        data = (text + "\n").encode("utf-8") if len(self) else b""
        atomic_write(path, lambda f: f.write(data))

    @classmethod
    def load(cls, path: str | os.PathLike, *, unk_token: Hashable | None = "<unk>") -> Vocab:
        """Read a file written by :meth:`save` (ids are line numbers, from 0)."""
        with open(os.fspath(path), "rb") as f:
            data = f.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            raise ValueError(f"{path}, line {line}: not valid UTF-8 ({e.reason})") from None
        tokens = text.split("\n")
        if tokens and tokens[-1] == "":
            tokens.pop()
        # a line's trailing "\r"s are a Windows line end, also on a last line without "\n"
        # (so no loaded token ends in "\r", and save refuses one that does)
        tokens = [t.rstrip("\r") for t in tokens]
        if len(set(tokens)) != len(tokens):
            first = {}
            dup = next(i for i, t in enumerate(tokens) if first.setdefault(t, i) != i)
            raise ValueError(f"{path}, line {dup + 1}: token {tokens[dup]!r} repeats line "
                             f"{first[tokens[dup]] + 1} (repeated tokens: not a vocabulary file)")
        return cls(tokens, specials=(), unk_token=unk_token if unk_token in set(tokens) else None)

"""pyembed.Tokenizer: text to NumPy id arrays with a Hugging Face ``tokenizer.json``.

The tokenization itself (normalisation, WordPiece / BPE / Unigram, special tokens, pair templates,
truncation) is Hugging Face's ``tokenizers`` package, an optional extra (``pip install
'pyembed[hf]'``) imported when a Tokenizer is made. pyembed adds the batch layer: int64 arrays
ready for :class:`pyembed.InputEmbedding` or a torch model, padded or packed, built with a few
NumPy calls per batch (no Python loop over tokens).

Arrays, by their pyembed names (the keys of the result are transformers' names, so
``{k: torch.from_numpy(v) for k, v in enc.items()}`` feeds a Hugging Face model):

==================  ==================  =========================================================
attribute           key                 meaning
==================  ==================  =========================================================
``ids``             ``input_ids``       token ids; the pad id on padding
``segment_ids``     ``token_type_ids``  0 for the first text of a pair, 1 for the second (BERT)
``positions``       ``position_ids``    the token's index within its own text; 0 on padding
``attention_mask``  ``attention_mask``  1 for a token, 0 for padding
``document_ids``    ``document_ids``    packed batches only: the index of the token's text in
                                        the input list, -1 on padding
==================  ==================  =========================================================
"""
from __future__ import annotations

import itertools
import json
import os
import threading
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from ._checks import as_ids, check_int, is_int
from ._util import fspath

__all__ = ["Tokenizer", "BatchEncoding"]

_PADDING = {True: "longest", "longest": "longest", "max_length": "max_length", False: None,
            "do_not_pad": None}
_TRUNCATION = {True: "longest_first", "longest_first": "longest_first",
               "only_first": "only_first", "only_second": "only_second", False: None,
               "do_not_truncate": None}
_NAMES = {"ids": "input_ids", "segment_ids": "token_type_ids", "positions": "position_ids",
          "attention_mask": "attention_mask", "document_ids": "document_ids"}


def _tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise ImportError("pyembed.Tokenizer needs Hugging Face's tokenizers package: "
                          "pip install 'pyembed[hf]' (or pip install tokenizers)") from None
    return tokenizers


class BatchEncoding(dict):
    """The arrays of a batch: a dict with transformers' key names (``input_ids``,
    ``token_type_ids``, ``position_ids``, ``attention_mask``, and ``document_ids`` when packed),
    each an int64 array of shape ``(rows, length)``, also read as attributes by pyembed's names
    (``ids``, ``segment_ids``, ``positions``, ``attention_mask``, ``document_ids``)."""

    def __getattr__(self, name):
        key = _NAMES.get(name)
        if key is None or key not in self:
            raise AttributeError(f"BatchEncoding has no {name!r} (keys: {sorted(self)})")
        return self[key]

    def document_mask(self) -> np.ndarray:
        """``(rows, length, length)`` bool: may token i attend to token j of its row? True where
        both are tokens of the same text (a packed batch: block-diagonal per text; a padded one:
        every token pair of the row). AND it with a causal mask for a decoder."""
        doc = self["document_ids"] if "document_ids" in self else np.where(
            self["attention_mask"] > 0, 0, -1)
        return (doc[:, :, None] == doc[:, None, :]) & (doc[:, :, None] >= 0)


class Tokenizer:
    """A Hugging Face ``tokenizers.Tokenizer`` that encodes batches to NumPy arrays.

    Args:
        tokenizer: a ``tokenizers.Tokenizer``, or a transformers fast tokenizer (its
            ``backend_tokenizer``, ``pad_token`` and ``padding_side`` are taken). A private copy
            is kept: the caller's object is never reconfigured.
        pad_token: the token padding uses (default: the transformers tokenizer's, else the
            ``tokenizer.json``'s padding setting, else none: padding rows of different lengths
            then raises). GPT-2 has none; ``pad_token="<|endoftext|>"`` is the usual choice.
        padding_side: ``"right"`` (default) or ``"left"`` (for generation with a decoder).

    Use :meth:`from_file` for a ``tokenizer.json`` or a model folder.

    Example (a word-level tokenizer made on the spot; a real one: ``from_file(folder)``):
        >>> import pyembed
        >>> from tokenizers import Tokenizer as HFTokenizer, models, pre_tokenizers
        >>> words = {"[PAD]": 0, "[UNK]": 1, "the": 2, "cat": 3, "sat": 4}
        >>> hf = HFTokenizer(models.WordLevel(words, unk_token="[UNK]"))
        >>> hf.pre_tokenizer = pre_tokenizers.Whitespace()
        >>> tok = pyembed.Tokenizer(hf, pad_token="[PAD]")
        >>> enc = tok(["the cat sat", "the dog"])
        >>> enc.ids
        array([[2, 3, 4],
               [2, 1, 0]])
        >>> enc.attention_mask.tolist(), enc["position_ids"].tolist()
        ([[1, 1, 1], [1, 1, 0]], [[0, 1, 2], [0, 1, 0]])
        >>> packed = tok.pack(["the cat", "sat", "the cat sat"], max_length=4)
        >>> packed.document_ids.tolist(), packed.positions.tolist()
        ([[0, 0, 1, -1], [2, 2, 2, -1]], [[0, 1, 0, 0], [0, 1, 2, 0]])
        >>> tok.decode(packed.ids[0])
        'the cat sat [PAD]'
        >>> pyembed.Vocab.from_tokenizer(tok, num_embeddings=7).index_to_key
        ['[PAD]', '[UNK]', 'the', 'cat', 'sat', '<row 5>', '<row 6>']
    """

    def __init__(self, tokenizer, *, pad_token: str | None = None,
                 padding_side: str | None = None) -> None:
        hf = _tokenizers()
        if hasattr(tokenizer, "backend_tokenizer"):  # a transformers PreTrainedTokenizerFast
            pad_token = pad_token if pad_token is not None else tokenizer.pad_token
            padding_side = padding_side or tokenizer.padding_side
            tokenizer = tokenizer.backend_tokenizer
        if not isinstance(tokenizer, hf.Tokenizer):
            raise TypeError(f"tokenizer must be a tokenizers.Tokenizer or a transformers fast "
                            f"tokenizer, got {type(tokenizer).__name__}")
        padding_side = padding_side or "right"
        if padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
        if pad_token is None and tokenizer.padding is not None:
            pad_token = tokenizer.padding.get("pad_token")
        # the copy's truncation is set per call, under the lock (tokenizers keeps it as state)
        self.backend = hf.Tokenizer.from_str(tokenizer.to_str())
        self.backend.no_padding()
        self.backend.no_truncation()
        self._lock = threading.Lock()
        if pad_token is not None:
            if not isinstance(pad_token, str):
                raise TypeError(f"pad_token must be a str or None, got "
                                f"{type(pad_token).__name__}")
            if self.backend.token_to_id(pad_token) is None:
                raise ValueError(f"pad_token {pad_token!r} is not a token of the tokenizer")
        self.pad_token = pad_token
        self.pad_token_id = None if pad_token is None else self.backend.token_to_id(pad_token)
        self.padding_side = padding_side

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, pad_token: str | None = None,
                  padding_side: str | None = None) -> Tokenizer:
        """Read a ``tokenizer.json``, or a model folder holding one (then the folder's
        ``tokenizer_config.json``, when there, gives the default ``pad_token`` and
        ``padding_side``, as transformers reads them). No download: the path is local."""
        hf = _tokenizers()
        path = fspath(path, "path")
        config = {}
        if os.path.isdir(path):
            folder, path = path, os.path.join(path, "tokenizer.json")
            if not os.path.exists(path):
                raise FileNotFoundError(f"{folder} has no tokenizer.json (only fast tokenizers "
                                        f"saved as tokenizer.json are read)")
            config = _read_config(os.path.join(folder, "tokenizer_config.json"))
        with open(path, "rb") as f:  # a missing file or a folder: the OSError names the path
            data = f.read()
        try:
            tokenizer = hf.Tokenizer.from_str(data.decode("utf-8"))
        except Exception as e:  # bad UTF-8, or tokenizers' bare Exception for a malformed file
            raise ValueError(f"{path}: not a tokenizer.json that tokenizers can read ({e})") \
                from None
        if pad_token is None:
            pad_token = _content(config.get("pad_token"))
        return cls(tokenizer, pad_token=pad_token,
                   padding_side=padding_side or config.get("padding_side"))

    # -- the vocabulary ------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Tokens, added tokens included (``len(tokenizer)`` in transformers)."""
        return self.backend.get_vocab_size(with_added_tokens=True)

    def __len__(self):
        return self.vocab_size

    def get_vocab(self) -> dict:
        """``{token: id}``, added tokens included."""
        return self.backend.get_vocab(with_added_tokens=True)

    @property
    def unk_token(self) -> str | None:
        """The model's unknown token (WordPiece ``[UNK]``; a byte-level BPE has none)."""
        return getattr(self.backend.model, "unk_token", None)

    def token_to_id(self, token: str) -> int | None:
        """The id of ``token``, None when it is not in the vocabulary."""
        if not isinstance(token, str):
            raise TypeError(f"token must be a str, got {type(token).__name__}")
        return self.backend.token_to_id(token)

    def id_to_token(self, id: int) -> str:
        """The token of ``id`` (IndexError outside the vocabulary)."""
        check_int("id", id)
        token = self.backend.id_to_token(int(id)) if 0 <= id < 2 ** 32 else None
        if token is None:
            raise IndexError(f"id {id} is not in the vocabulary of {self.vocab_size} tokens")
        return token

    def __getstate__(self):  # a lock does not pickle (a DataLoader's spawned workers pickle)
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self):
        return (f"Tokenizer({type(self.backend.model).__name__}, vocab_size={self.vocab_size}, "
                f"pad_token={self.pad_token!r}, padding_side={self.padding_side!r})")

    # -- encoding ------------------------------------------------------------------------------
    def __call__(self, text: str | Sequence[str], text_pair: str | Sequence[str] | None = None, *,
                 padding: bool | str = True, truncation: bool | str = False,
                 max_length: int | None = None,
                 add_special_tokens: bool = True) -> BatchEncoding:
        """Encode a batch of texts (or of sentence pairs) to ``(len(text), length)`` arrays.

        Args:
            text: a str or a list of str (one str is a batch of one).
            text_pair: the second texts of sentence pairs (same count as ``text``), for BERT's
                ``[CLS] a [SEP] b [SEP]`` with segment ids 0 then 1.
            padding: ``True`` / ``"longest"`` (default): to the longest text of the batch;
                ``"max_length"``: to ``max_length``; ``False``: none (every text must then have
                the same length).
            truncation: ``False`` (default): a text longer than ``max_length`` is an error;
                ``True`` / ``"longest_first"``, ``"only_first"``, ``"only_second"``: cut to
                ``max_length`` tokens, special tokens included, as transformers does.
            max_length: the length that padding to ``"max_length"`` and truncation use.
            add_special_tokens: the tokenizer's template (``[CLS]``/``[SEP]``, ...).

        Returns a :class:`BatchEncoding` (``ids``, ``segment_ids``, ``positions``,
        ``attention_mask``). The ids equal transformers' ``tokenizer(text, text_pair,
        padding=..., truncation=..., max_length=..., return_tensors="np")``; unlike transformers
        the default pads (arrays must be rectangular) and positions restart at each text.
        """
        pad_mode = _option("padding", padding, _PADDING)
        encs, lengths = self._encode(text, text_pair, truncation, max_length, add_special_tokens)
        n = len(encs)
        longest = int(lengths.max()) if n else 0
        if pad_mode == "max_length":
            if max_length is None:
                raise ValueError("padding='max_length' needs max_length")
            length = max(max_length, longest)
        else:
            length = longest
            if pad_mode is None and n and int(lengths.min()) != longest:
                i = int(np.argmin(lengths))
                raise ValueError(f"padding=False but the texts have different lengths (text {i} "
                                 f"has {lengths[i]} tokens, another {longest}): pass padding=True")
        if pad_mode is not None and length > int(lengths.min(initial=length)):
            self._require_pad_token()
        cols = np.arange(length)
        if self.padding_side == "right":
            mask = cols < lengths[:, None]
        else:
            mask = cols >= (length - lengths)[:, None]
        ids, segments = self._flat(encs, lengths)
        out = BatchEncoding()
        out["input_ids"] = np.full((n, length), self._pad_id(), np.int64)
        out["input_ids"][mask] = ids
        out["token_type_ids"] = np.zeros((n, length), np.int64)
        out["token_type_ids"][mask] = segments
        out["position_ids"] = np.where(mask, np.cumsum(mask, axis=1) - 1, 0)
        out["attention_mask"] = mask.astype(np.int64)
        return out

    def pack(self, text: str | Sequence[str], text_pair: str | Sequence[str] | None = None, *,
             max_length: int, truncation: bool | str = False,
             add_special_tokens: bool = True) -> BatchEncoding:
        """Pack whole texts into rows of ``max_length`` tokens (no padding between them).

        Texts are placed in order, each after the last one of the current row while it fits,
        else at the start of a new row ("next fit": rows keep the input order; a text is never
        split across rows). Each text keeps its special tokens, and its ``positions`` restart at
        0; ``document_ids`` gives each token the index of its text in ``text`` (-1 on the
        padding that ends a row), so a model can forbid attention across texts
        (:meth:`BatchEncoding.document_mask`). A text longer than ``max_length`` is cut with
        ``truncation`` (see :meth:`__call__`), or is an error without it.

        Returns a :class:`BatchEncoding` of shape ``(rows, max_length)`` with ``document_ids``.
        """
        if max_length is None or not is_int(max_length):
            raise TypeError(f"max_length must be an int, got {max_length!r}")
        encs, lengths = self._encode(text, text_pair, truncation, max_length, add_special_tokens)
        rows, starts, row, used = [], [], 0, 0
        for n_tok in lengths.tolist():  # per text, not per token: the tokenizer's loop is longer
            if used + n_tok > max_length:
                row, used = row + 1, 0
            rows.append(row)
            starts.append(used)
            used += n_tok
        n_rows = (row + 1) if len(encs) else 0
        rows = np.asarray(rows, np.int64)
        if (np.bincount(rows, lengths, n_rows) < max_length).any():
            self._require_pad_token()
        first = np.cumsum(lengths) - lengths  # each text's first token in the flat arrays
        local = np.arange(int(lengths.sum())) - np.repeat(first, lengths)
        dest = np.repeat(rows * max_length + np.asarray(starts, np.int64),
                         lengths) + local
        ids, segments = self._flat(encs, lengths)
        out = BatchEncoding()
        for key, fill, values in (("input_ids", self._pad_id(), ids),
                                  ("token_type_ids", 0, segments), ("position_ids", 0, local),
                                  ("document_ids", -1, np.repeat(np.arange(len(encs)), lengths))):
            out[key] = np.full((n_rows, max_length), fill, np.int64)
            out[key].reshape(-1)[dest] = values
        out["attention_mask"] = (out["document_ids"] >= 0).astype(np.int64)
        return out

    def encode(self, text: str, text_pair: str | None = None, *,
               add_special_tokens: bool = True) -> np.ndarray:
        """The ids of one text (or one pair) as a 1-D int64 array, as transformers'
        ``tokenizer.encode``."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__} (for a batch, call "
                            f"the tokenizer)")
        return self(text, text_pair, add_special_tokens=add_special_tokens)["input_ids"][0]

    def decode(self, ids: ArrayLike, *, skip_special_tokens: bool = False) -> str | list:
        """The text of a 1-D sequence of ids (a list of texts for a 2-D array), with the
        tokenizer's decoder; ``skip_special_tokens`` drops ``[CLS]``, padding, ... ."""
        if not isinstance(skip_special_tokens, (bool, np.bool_)):
            raise TypeError(f"skip_special_tokens must be a bool, got "
                            f"{type(skip_special_tokens).__name__}")
        size = self.vocab_size
        what = f"a vocabulary of {size} tokens"
        arr = as_ids(ids, size, what)
        if arr.ndim not in (1, 2):
            raise ValueError(f"ids must be 1-D (one text) or 2-D (a batch), got shape "
                             f"{arr.shape}")
        if arr.size and (arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer)):
            raise TypeError(f"ids must be integers, got dtype {arr.dtype}")
        bad = np.argwhere((arr < 0) | (arr >= size)) if arr.size else ()
        if len(bad):
            pos = tuple(int(i) for i in bad[0])
            raise IndexError(f"index {arr[pos]} is out of range for {what} "
                             f"(at ids[{', '.join(map(str, pos))}])")
        skip = bool(skip_special_tokens)
        if arr.ndim == 1:
            return self.backend.decode(arr.tolist(), skip_special_tokens=skip)
        return self.backend.decode_batch(arr.tolist(), skip_special_tokens=skip)

    # -- helpers -------------------------------------------------------------------------------
    def _encode(self, text, text_pair, truncation, max_length, add_special_tokens):
        """(the tokenizers Encodings, their lengths as int64) after every argument is checked."""
        strategy = _option("truncation", truncation, _TRUNCATION)
        if max_length is not None:
            check_int("max_length", max_length, 1)
        if strategy is not None and max_length is None:
            raise ValueError(f"truncation={truncation!r} needs max_length")
        if not isinstance(add_special_tokens, (bool, np.bool_)):
            raise TypeError(f"add_special_tokens must be a bool, got "
                            f"{type(add_special_tokens).__name__}")
        single = isinstance(text, str)
        texts = _texts("text", [text] if single else text)
        inputs = texts
        if text_pair is not None:
            if single != isinstance(text_pair, str):
                raise TypeError(f"text_pair must be a str when text is one, and a list when text "
                                f"is a list; got {type(text_pair).__name__}")
            pairs = _texts("text_pair", [text_pair] if single else text_pair)
            if len(pairs) != len(texts):
                raise ValueError(f"text_pair has {len(pairs)} texts but text has {len(texts)}")
            inputs = list(zip(texts, pairs))
        with self._lock:
            if strategy is None:
                self.backend.no_truncation()
            else:
                self.backend.enable_truncation(max_length, strategy=strategy)
            try:
                encs = self.backend.encode_batch(inputs,
                                                 add_special_tokens=bool(add_special_tokens))
            except Exception as e:  # e.g. a pair too short for only_second: tokenizers' words
                raise ValueError(f"tokenizers refused the batch: {e}") from None
            finally:
                self.backend.no_truncation()
        lengths = np.fromiter(map(len, encs), np.int64, len(encs))
        if strategy is None and max_length is not None and len(encs) and lengths.max() > max_length:
            i = int(np.argmax(lengths))
            raise ValueError(f"text {i} has {lengths[i]} tokens, more than max_length="
                             f"{max_length}: pass truncation=True (or a larger max_length)")
        return encs, lengths

    @staticmethod
    def _flat(encs, lengths):
        """All ids, then all segment ids, of the batch as flat int64 arrays."""
        total = int(lengths.sum())
        ids = np.fromiter(itertools.chain.from_iterable(e.ids for e in encs), np.int64, total)
        seg = np.fromiter(itertools.chain.from_iterable(e.type_ids for e in encs), np.int64,
                          total)
        return ids, seg

    def _require_pad_token(self):
        if self.pad_token is None:
            raise ValueError("padding needs a pad token and this tokenizer has none: pass "
                             "pad_token= (e.g. pad_token='<|endoftext|>' for GPT-2)")

    def _pad_id(self):
        return 0 if self.pad_token_id is None else self.pad_token_id


def _option(name, value, choices):
    if not isinstance(value, (bool, str)) or value not in choices:
        raise ValueError(f"{name} must be one of {sorted(map(repr, choices))}, got {value!r}")
    return choices[value]


def _texts(name, texts):
    """``texts`` as a list of str, naming the first item that is not one."""
    if isinstance(texts, (bytes, np.ndarray)) or not isinstance(texts, Sequence):
        raise TypeError(f"{name} must be a str or a list of str, got {type(texts).__name__}")
    texts = list(texts)
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"{name}[{bad}] must be a str, got {type(texts[bad]).__name__}")
    return texts


def _read_config(path):
    """A model folder's tokenizer_config.json as a dict ({} when there is none)."""
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(config).__name__}")
    return config


def _content(token):
    """A token of tokenizer_config.json: a str, or an AddedToken dict with ``content``."""
    return token.get("content") if isinstance(token, dict) else token

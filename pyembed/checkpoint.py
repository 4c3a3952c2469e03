"""The input stage of a Hugging Face checkpoint, read from a local folder without torch or a
download: ``config.json`` for the sizes and ``model.safetensors`` (through pyembed's own reader)
for the tables. :meth:`pyembed.InputEmbedding.from_pretrained` builds the stage from what
:func:`read_input_stage` returns.

Families (by ``config.json``'s ``model_type``):

- BERT (``bert``): word + learned position + token-type embeddings, then LayerNorm
  (``transformers.models.bert.modeling_bert.BertEmbeddings``), ``layer_norm_eps`` from the config.
- GPT-2 (``gpt2``): word (``wte``) + learned position (``wpe``); the word table is also the
  tied output head.

Tensor names are looked up with and without the model prefix (``bert.`` for a BertFor... head
model, ``transformer.`` for GPT2LMHeadModel), as ``save_pretrained`` writes either.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import DTypeLike

from ._checks import check_table_dtype, compute_dtype
from .safetensors import load_safetensors, safetensors_names

__all__ = ["InputStage", "read_input_stage"]

_BERT_NAMES = {
    "token": "embeddings.word_embeddings.weight",
    "position": "embeddings.position_embeddings.weight",
    "segment": "embeddings.token_type_embeddings.weight",
    "gamma": "embeddings.LayerNorm.weight",
    "beta": "embeddings.LayerNorm.bias",
}
# checkpoints converted from TensorFlow (and transformers before 2.x) call them gamma and beta
_BERT_OLD = {"gamma": "embeddings.LayerNorm.gamma", "beta": "embeddings.LayerNorm.beta"}
_GPT2_NAMES = {"token": "wte.weight", "position": "wpe.weight"}
# model_type -> (prefixes, {role: tensor name under the prefix})
FAMILIES = {
    "bert": (("", "bert."), _BERT_NAMES),
    "gpt2": (("", "transformer."), _GPT2_NAMES),
}


@dataclass
class InputStage:
    """What a checkpoint's input stage is: ``family`` ('bert' or 'gpt2'), the InputEmbedding
    keyword arguments in ``kwargs`` and the arrays by role in ``tensors`` ('token', 'position',
    and for BERT 'segment', 'gamma', 'beta')."""

    family: str
    kwargs: dict = field(default_factory=dict)
    tensors: dict = field(default_factory=dict)


def _config(folder):
    path = os.path.join(folder, "config.json")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder!r} is not a folder (from_pretrained reads a local model "
                                f"folder holding config.json and model.safetensors)")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{folder!r} has no config.json")
    with open(path, encoding="utf-8") as f:
        try:
            cfg = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(cfg).__name__}")
    return path, cfg


def _int_key(path, cfg, *keys):
    for k in keys:
        v = cfg.get(k)
        if v is not None:
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{path}: {k} must be an int >= 0, got {v!r}")
            return v
    raise ValueError(f"{path}: no {' or '.join(keys)}")


def _find(names, prefixes, want):
    for p in prefixes:
        if p + want in names:
            return p + want
    return None


# a checkpoint's float tensor types as table dtypes (bfloat16 through ml_dtypes, imported then)
_TABLE_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "BF16": "bfloat16"}


def read_input_stage(folder: str | os.PathLike, *,
                     dtype: DTypeLike | None = np.float32) -> InputStage:
    """The input stage of the checkpoint in ``folder`` (config.json + model.safetensors).

    ``dtype``: the tables' dtype (float32, float64, float16 or ``"bfloat16"``), or None for the
    stored type of the token table (F16 stays float16, BF16 bfloat16: as
    :meth:`pyembed.Embedding.from_pretrained` keeps an array's dtype). LayerNorm's gamma and
    beta come in the dtype the stage computes in (float32 beside a half table).

    Raises FileNotFoundError for a missing folder or file, ValueError for an unknown
    ``model_type`` or a config without the sizes, KeyError naming every missing tensor, and
    ValueError when a tensor's shape disagrees with the config."""
    folder = os.fspath(folder)
    cfg_path, cfg = _config(folder)
    family = cfg.get("model_type")
    if family not in FAMILIES:
        raise ValueError(f"{cfg_path}: model_type {family!r} is not supported; from_pretrained "
                         f"reads {sorted(FAMILIES)}")
    st_path = os.path.join(folder, "model.safetensors")
    if not os.path.isfile(st_path):
        raise FileNotFoundError(f"{folder!r} has no model.safetensors (only the safetensors "
                                f"format is read: save with safe_serialization=True)")
    names = safetensors_names(st_path)
    prefixes, roles = FAMILIES[family]
    found, missing = {}, []
    for role, want in roles.items():
        name = _find(names, prefixes, want)
        if name is None and role in _BERT_OLD and family == "bert":
            name = _find(names, prefixes, _BERT_OLD[role])
        if name is None:
            missing.append(f"{prefixes[-1]}{want}")
        else:
            found[role] = name
    if missing:
        raise KeyError(f"{st_path}: missing tensors {missing} (with or without the prefix "
                       f"{prefixes[-1]!r}) for a {family} input stage")
    if family == "bert":
        width = _int_key(cfg_path, cfg, "hidden_size")
        sizes = {"token": _int_key(cfg_path, cfg, "vocab_size"),
                 "position": _int_key(cfg_path, cfg, "max_position_embeddings"),
                 "segment": _int_key(cfg_path, cfg, "type_vocab_size")}
        eps = cfg.get("layer_norm_eps", 1e-12)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
            raise ValueError(f"{cfg_path}: layer_norm_eps must be a number >= 0, got {eps!r}")
        pad = cfg.get("pad_token_id")
        kwargs = dict(num_segments=sizes["segment"], norm="layernorm", eps=float(eps),
                      padding_idx=pad if isinstance(pad, int) and 0 <= pad < sizes["token"]
                      else None)
    else:
        width = _int_key(cfg_path, cfg, "n_embd", "hidden_size")
        sizes = {"token": _int_key(cfg_path, cfg, "vocab_size"),
                 "position": _int_key(cfg_path, cfg, "n_positions", "max_position_embeddings")}
        kwargs = {}
    if dtype is None:
        dtype = _TABLE_DTYPES.get(names[found["token"]][0], np.float32)
    dtype = check_table_dtype(dtype)
    tensors = {}
    for role, name in found.items():
        arr = load_safetensors(st_path, name,
                               dtype=dtype if role in sizes else compute_dtype(dtype))
        want = (sizes[role], width) if role in sizes else (width,)
        if arr.shape != want:
            raise ValueError(f"{st_path}: {name} has shape {arr.shape} but config.json says "
                             f"{want}")
        tensors[role] = arr
    kwargs.update(vocab_size=sizes["token"], d_model=width, max_len=sizes["position"],
                  positional="learned", scale=None, dtype=dtype)
    return InputStage(family, kwargs, tensors)

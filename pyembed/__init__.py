"""pyembed: the input-embedding stage of a transformer, fast from NumPy.

C kernels for lookup, scatter-add backward, positional encodings and Adam under a NumPy-native
API whose names follow torch.nn.Embedding, torch.optim and gensim's KeyedVectors.

>>> import numpy as np, pyembed
>>> emb = pyembed.Embedding(1000, 64, seed=0)
>>> out = emb(np.array([[1, 2, 3], [4, 5, 6]]))
>>> out.shape
(2, 3, 64)
"""
import os as _os
from importlib.machinery import EXTENSION_SUFFIXES as _EXTENSION_SUFFIXES


def _core_missing_message(here):
    """Why ``pyembed._core`` cannot be imported, when no built extension sits beside this file:
    almost always Python found a source checkout (the current folder comes first on sys.path with
    ``python -m`` and ``python -c``) before the installed package. NumPy's "you should not try to
    import numpy from its source directory" is the model."""
    others = sorted(f for f in _os.listdir(here)
                    if f.startswith("_core.") and f.endswith((".so", ".pyd")))
    built = (f"; the extensions there ({', '.join(others)}) were built for another Python"
             if others else "")
    return (f"pyembed's C extension (pyembed._core) is not built in {here}{built}. If that is "
            "pyembed's source folder, Python found it before an installed pyembed: run "
            "`pip install .` and then run Python (or the `pyembed` command) from another "
            "directory, or build the extension in place with "
            "`python setup.py build_ext --inplace`.")


try:
    from . import _core
except ImportError:
    _here = _os.path.dirname(_os.path.abspath(__file__))
    if any(_os.path.exists(_os.path.join(_here, "_core" + s)) for s in _EXTENSION_SUFFIXES):
        raise  # built but does not load (a missing symbol, a sanitizer runtime): that error says why
    # from None: the chained "partially initialized module ... circular import" would mislead
    raise ImportError(_core_missing_message(_here), name="pyembed._core") from None
from ._core import Table, get_num_threads, set_num_threads
from .embedding import Embedding
from .vocab import Vocab
from .tokenizer import Tokenizer
from .vectors import FastTextVectors, Vectors, load_vectors, save_vectors
from .io import TruncatedFileError
from .safetensors import load_safetensors, save_safetensors
from . import plot
from . import optim
from .positional import PositionalEncoding, sinusoidal
from .input_embedding import InputEmbedding, one_hot
from .rope import rope, rope_backward, rope_permute
from .bag import EmbeddingBag
from .train import Word2Vec
from ._version import __version__


__all__ = [
    "Embedding",
    "EmbeddingBag",
    "FastTextVectors",
    "InputEmbedding",
    "PositionalEncoding",
    "Table",
    "Tokenizer",
    "TruncatedFileError",
    "Vectors",
    "Vocab",
    "Word2Vec",
    "get_num_threads",
    "load_safetensors",
    "load_vectors",
    "one_hot",
    "optim",
    "plot",
    "rope",
    "rope_backward",
    "rope_permute",
    "save_safetensors",
    "save_vectors",
    "set_num_threads",
    "sinusoidal",
]

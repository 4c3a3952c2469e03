"""pyembed: the input-embedding stage of a transformer, fast from NumPy.

C kernels for lookup, scatter-add backward, positional encodings and Adam under a NumPy-native
API whose names follow torch.nn.Embedding, torch.optim and gensim's KeyedVectors.

>>> import numpy as np, pyembed
>>> emb = pyembed.Embedding(1000, 64, seed=0)
>>> out = emb(np.array([[1, 2, 3], [4, 5, 6]]))
>>> out.shape
(2, 3, 64)
"""
from . import _core
from ._core import Table, get_num_threads, set_num_threads
from .embedding import Embedding
from .vocab import Vocab
from .vectors import Vectors, load_vectors, save_vectors
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
    "InputEmbedding",
    "PositionalEncoding",
    "Table",
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

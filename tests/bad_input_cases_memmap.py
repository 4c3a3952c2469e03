"""Bad-input cases for tables over mapped files (Embedding.from_memmap, state_memmaps, to_memmap,
Table.wrap): see bad_input_cases.py. The world's input files are used as the files to map; a
call that must create a file (mode="w+") is refused before it does."""
import os

import numpy as np

import pyembed
from bad_input_cases import case, strided
from bad_input_world import DIM

E, T = pyembed.Embedding, pyembed.Table


def mapped(w, mode="r"):
    """The world's safetensors table (F64, 10 x 3), mapped in place."""
    return E.from_memmap(w.st, dtype=np.float64, mode=mode)


def memmap_cases():
    fm = E.from_memmap
    return [
        case("Embedding.from_memmap mode", lambda w: fm(w.st, mode="w"), ValueError, "mode",
             "'w'"),
        case("Embedding.from_memmap no size", lambda w: fm(w.repeated), ValueError,
             "embedding_dim", "header"),
        case("Embedding.from_memmap size mismatch", lambda w: fm(w.repeated, 3, DIM),
             ValueError, "4 bytes", "3 x 4", "48"),
        case("Embedding.from_memmap not whole rows", lambda w: fm(w.repeated, embedding_dim=3),
             ValueError, "4 bytes", "12 bytes"),
        case("Embedding.from_memmap empty file", lambda w: fm(w.empty, embedding_dim=DIM),
             ValueError, "0 bytes"),
        case("Embedding.from_memmap missing file", lambda w: fm(w.missing, embedding_dim=DIM),
             FileNotFoundError, "x.txt"),
        case("Embedding.from_memmap num_embeddings 0", lambda w: fm(w.repeated, 0, DIM),
             ValueError, "num_embeddings"),
        case("Embedding.from_memmap dtype int", lambda w: fm(w.repeated, 1, 1, dtype=np.int32),
             ValueError, "dtype", "int32"),
        case("Embedding.from_memmap w+ without rows",
             lambda w: fm(os.path.join(w.dir, "new.f32"), embedding_dim=DIM, mode="w+"),
             ValueError, "num_embeddings", "w+"),
        case("Embedding.from_memmap name of a raw file",
             lambda w: fm(w.repeated, embedding_dim=1, name="weight"), ValueError, "name",
             "raw"),
        case("Embedding.from_memmap safetensors dtype", lambda w: fm(w.st), ValueError,
             "F64", "float32"),
        case("Embedding.from_memmap safetensors name",
             lambda w: fm(w.st, dtype=np.float64, name="nope"), KeyError, "nope"),
        case("Embedding.from_memmap safetensors rows",
             lambda w: fm(w.st, 3, dtype=np.float64), ValueError, "num_embeddings=3", "10"),
        case("Embedding.from_memmap safetensors w+",
             lambda w: fm(w.st, dtype=np.float64, mode="w+"), ValueError, "w+",
             "save_safetensors"),
        case("Embedding.from_memmap garbage safetensors", lambda w: fm(w.garbage),
             ValueError, "header"),
        case("Embedding.from_memmap mode r backward",
             lambda w: mapped(w).backward([1], np.ones((1, 3))), ValueError, "backward",
             "read-only", "r+"),
        case("Embedding.from_memmap mode r optimizer",
             lambda w: pyembed.optim.Adam(mapped(w)), ValueError, "read-only", "r+"),
        case("Embedding.from_memmap mode r weight",
             lambda w: setattr(mapped(w), "weight", np.zeros((10, 3))), ValueError, "weight",
             "read-only"),
        case("Embedding.from_memmap mode r max_norm",
             lambda w: E.from_memmap(w.st, dtype=np.float64, mode="r", max_norm=1.0)([1]),
             ValueError, "max_norm", "read-only"),
        case("Embedding.state_memmaps in memory", lambda w: w.emb.state_memmaps("exp_avg"),
             ValueError, "from_memmap"),
        case("Embedding.state_memmaps name path",
             lambda w: mapped(w).state_memmaps("../x"), ValueError, "name", "'../x'"),
        case("Embedding.state_memmaps name int", lambda w: mapped(w).state_memmaps(3),
             ValueError, "name", "3"),
        case("Embedding.state_memmaps mode r", lambda w: mapped(w).state_memmaps("exp_avg"),
             ValueError, "mode='r'"),
        case("Embedding.to_memmap safetensors",
             lambda w: w.emb.to_memmap(os.path.join(w.dir, "x.safetensors")), ValueError,
             "save_safetensors"),
        case("Embedding.to_memmap empty table",
             lambda w: E(0, DIM).to_memmap(os.path.join(w.dir, "x.f32")), ValueError, "(0, 4)"),
        case("Embedding.to_memmap folder", lambda w: w.emb.to_memmap(w.sub), OSError,
             "a_folder"),
        case("Embedding.to_memmap path int", lambda w: w.emb.to_memmap(3), TypeError, "path"),
        case("Table.wrap list", lambda w: T.wrap([[1.0]]), TypeError, "numpy array", "list"),
        case("Table.wrap int64", lambda w: T.wrap(np.zeros((2, 2), np.int64)), ValueError,
             "int64"),
        case("Table.wrap 1-D", lambda w: T.wrap(np.zeros(2, np.float32)), ValueError, "1-D"),
        case("Table.wrap strided", lambda w: T.wrap(strided((2, 2))), ValueError,
             "C-contiguous"),
        case("Table.wrap big-endian", lambda w: T.wrap(np.zeros((2, 2), ">f4")), ValueError,
             "byte order"),
    ]

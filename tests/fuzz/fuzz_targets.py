"""Fuzz targets for pyembed's parsers: one function per harness, bytes in, nothing out.

A target returns when pyembed behaved (it accepted the input, or refused it with a documented
exception, see /work/shared/DESIGN.md "Errors"); anything else propagates: an undocumented
exception type as itself, a broken promise as ``Finding``. A crash or a sanitizer report kills the
process, which the fuzzer (and test_regressions.py, which replays each kept input in a child
process) sees. ``fuzz.py`` runs these under atheris; ``fuzz_convert.py`` holds the argument
conversion target; ``parse_fuzz.c`` is the C-level twin of ``parse_kernels``.

Oracles for every file reader:
- only ValueError (and its subclasses, UnicodeDecodeError among them) escapes;
- the memory a call asks for is bounded by the file's size: the peak of Python's and NumPy's
  allocations (tracemalloc sees both) stays under ``MEM_PER_BYTE`` times the input plus
  ``MEM_SLACK``; a 200-byte file that makes the loader allocate 400 KB is a finding;
- what a reader accepted reads back the same after a save where the format promises a round
  trip (vocabulary files); safetensors files are accepted only when the ``safetensors`` package
  also accepts them, and then hold the same bytes.
"""
import atexit
import gzip
import os
import shutil
import tempfile
import tracemalloc
import warnings

import numpy as np

import pyembed
from pyembed import _core
from pyembed.safetensors import safetensors_names

try:  # BF16 tensors load as ml_dtypes.bfloat16: its one-time import is no input's allocation
    import ml_dtypes  # noqa: F401
except ImportError:
    pass

#: allocation bound for one call: MEM_PER_BYTE * len(input) + MEM_SLACK. Measured on valid files
#: (tracemalloc peak): 5-30 bytes per input byte; the worst legitimate case is a GloVe file of
#: dim 0 with distinct three-byte lines ("ab\n"), ~160 bytes of str, list slot and dict entry per
#: word, about 55 per byte. The slack covers fixed costs: about 90 KiB for a gzip read, 64 KiB
#: for the binary-detection window.
MEM_PER_BYTE = 128
MEM_SLACK = 256 << 10

_TMP = tempfile.mkdtemp(prefix="pyembed-fuzz-",
                        dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)


class Finding(AssertionError):
    """pyembed broke a promise on this input (the message says which)."""


def tmp_file(name, data):
    """Write `data` to a scratch file called `name` and return its path (one per process)."""
    path = os.path.join(_TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def bounded_call(what, size, fn, *args, **kwargs):
    """fn(*args, **kwargs) with only ValueError allowed out (returned as the exception instead
    of the result) and its allocations bounded by `size` input bytes."""
    # tracing stays on once started: a start/stop per call leaks about 300 bytes each time
    # (CPython 3.11), which over a million inputs reaches libFuzzer's RSS limit
    if not tracemalloc.is_tracing():
        tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = fn(*args, **kwargs)
        except ValueError as e:
            res = e
    peak = tracemalloc.get_traced_memory()[1] - base
    limit = MEM_PER_BYTE * size + MEM_SLACK
    if peak > limit:
        raise Finding(f"{what}: a {size}-byte input made it allocate {peak} bytes (bound {limit})")
    return res


def _flags(data, n):
    """(the first n bytes as ints, zero-padded; the rest)."""
    head = data[:n].ljust(n, b"\0")
    return list(head), data[n:]


# -- parse_kernels: the glue calls the C harness (parse_fuzz.c) makes, same byte layout ----------

def parse_kernels(data):
    (mode, d, rows), buf = _flags(data, 3)
    dtype = np.float64 if mode & 1 else np.float32
    if mode & 3 < 2:
        res = bounded_call("parse_text", len(buf), _core.parse_text, buf, 0, d % 17,
                           -1 if rows == 255 else rows, dtype, "fuzz", 1)
    else:
        res = bounded_call("parse_binary", len(buf), _core.parse_binary, buf, 0, rows, d % 9,
                           dtype, "fuzz")
    if mode & 3 < 2 and not isinstance(res, Exception):  # binary words may hold b"\n": io.py checks
        vecs, words = res[0], res[1]
        nwords = words.count(b"\n") + 1 if len(vecs) else 0
        if vecs.dtype != dtype or nwords != len(vecs):
            raise Finding(f"parse: {vecs.dtype} {vecs.shape} vectors for {nwords} words")


# -- vectors: load_vectors with every format, binary, limit, dtype and decoding option ------------

_FORMATS = ("auto", "word2vec", "glove", "fasttext")
_BINARY = (None, True, False, None)
_ERRORS = ("strict", "replace", "ignore", "strict")


def vectors(data):
    """Byte 0: format (bits 0-1), binary (2-3), float64 (4), unicode_errors (5-6), gzip (7);
    byte 1: limit (255: None); byte 2 bit 0: latin-1 instead of UTF-8; the rest is the file."""
    (f, lim, enc), body = _flags(data, 3)
    name = "v.txt.gz" if f & 128 else "v.txt"
    path = tmp_file(name, gzip.compress(body, mtime=0) if f & 128 else body)
    res = bounded_call("load_vectors", len(body), pyembed.load_vectors, path, _FORMATS[f & 3],
                       binary=_BINARY[f >> 2 & 3], limit=None if lim == 255 else lim,
                       dtype=np.float64 if f & 16 else np.float32,
                       unicode_errors=_ERRORS[f >> 5 & 3],
                       encoding="latin-1" if enc & 1 else "utf-8")
    if isinstance(res, Exception):
        return
    n = len(res.index_to_key)
    if res.vectors.shape[0] != n or len(res.key_to_index) != n:
        raise Finding(f"load_vectors: {n} keys, {len(res.key_to_index)} indexed, "
                      f"vectors {res.vectors.shape}")


# -- vectors_roundtrip: what save_vectors writes, load_vectors reads back with its defaults -------

_WRITERS = (("word2vec", False), ("word2vec", True), ("glove", False), ("fasttext", False))


def vectors_roundtrip(data):
    """Byte 0: the writer (format, binary); byte 1: dim (0..7); then rows split at b"\xff": each
    dim float32 values (raw bits, zero-padded), then the word (latin-1, without the separators
    ' ', '\t', '\r', '\n' no format can hold; empty and repeated words dropped). The file must
    load back with the default arguments (format and binary detected) to the same words and
    values (NaN payloads aside: text writes "nan"), or be refused with a ValueError (by the
    loader, or by save_vectors before it writes)."""
    (w, d), body = _flags(data, 2)
    fmt, binary = _WRITERS[w % 4]
    d %= 8
    words, rows = [], []
    for chunk in body.split(b"\xff"):
        word = chunk[4 * d:].decode("latin-1").translate({ord(c): None for c in " \t\r\n"})
        if word and word not in words:
            words.append(word)
            rows.append(np.frombuffer(chunk[:4 * d].ljust(4 * d, b"\0"), np.float32))
    vecs = np.array(rows, np.float32).reshape(len(words), d)
    path = os.path.join(_TMP, "rt.txt")
    try:
        pyembed.save_vectors(pyembed.Vectors(words, vecs), path, fmt, binary=binary)
    except ValueError:  # refused at save (e.g. a word that is only whitespace): nothing written
        return
    with open(path, "rb") as f:
        size = len(f.read())
    back = bounded_call("load_vectors", size, pyembed.load_vectors, path)
    if isinstance(back, Exception):
        return
    same = (back.index_to_key == words and back.vectors.shape == vecs.shape and
            np.array_equal(np.isnan(back.vectors), np.isnan(vecs)) and
            np.array_equal(back.vectors.view(np.uint32)[~np.isnan(vecs)],
                           vecs.view(np.uint32)[~np.isnan(vecs)]))
    if not same:
        raise Finding(f"save_vectors({fmt}, binary={binary}) of {words[:3]} {vecs[:2].tolist()} "
                      f"loads back as {back.index_to_key[:3]} {back.vectors[:2].tolist()}")


# -- safetensors: the header reader, against the safetensors package -------------------------------

def _package_view(data):
    """{name: (dtype, shape, bytes)} as the safetensors package reads `data`, the package's
    reason (a str) when it refuses the file, or None when it is not installed."""
    try:
        import safetensors  # optional: without it there is nothing to compare with
    except ImportError:
        return None
    try:
        items = safetensors.deserialize(data)
    except Exception as e:  # SafetensorError, and anything else the package refuses with
        return f"{type(e).__name__}: {e}"
    return {k: (v["dtype"], tuple(v["shape"]), bytes(v["data"])) for k, v in items}


def safetensors_header(data):
    path = tmp_file("t.safetensors", data)
    names = bounded_call("safetensors_names", len(data), safetensors_names, path)
    if isinstance(names, Exception):
        return
    theirs = _package_view(data)
    if theirs is None:
        return
    if isinstance(theirs, str):
        raise Finding(f"safetensors: pyembed reads {sorted(names)[:5]} from a file the "
                      f"safetensors package refuses ({theirs[:200]})")
    for name, (dtype, shape) in names.items():
        arr = bounded_call("load_safetensors", len(data), pyembed.load_safetensors, path, name,
                           dtype=None)
        if isinstance(arr, Exception):
            raise Finding(f"safetensors: {name!r} is listed but does not load: {arr}")
        if name not in theirs or theirs[name][:2] != (dtype, shape):
            raise Finding(f"safetensors: {name!r} is {dtype} {shape} for pyembed, "
                          f"{theirs.get(name, ('absent',))[:2]} for the package")
        if dtype != "BF16" and arr.tobytes() != theirs[name][2]:
            raise Finding(f"safetensors: {name!r} holds other bytes than the package reads")
    bounded_call("load_vectors", len(data), pyembed.load_vectors, path)


# -- vocabulary files: Vocab.load, and load_vectors(fvocab=) -------------------------------------

def vocab(data):
    path = tmp_file("vocab.txt", data)
    v = bounded_call("Vocab.load", len(data), pyembed.Vocab.load, path)
    if isinstance(v, Exception):
        return
    again = os.path.join(_TMP, "vocab2.txt")
    v.save(again)
    try:
        back = pyembed.Vocab.load(again)
    except ValueError as e:
        raise Finding(f"Vocab: save then load of {v.index_to_key[:5]} fails: {e}") from None
    if back.index_to_key != v.index_to_key:
        first = next((a, b) for a, b in zip(v.index_to_key + [None], back.index_to_key + [None])
                     if a != b)
        raise Finding(f"Vocab: save then load changes the tokens: {first[0]!r} -> {first[1]!r}")


_FVOCAB_VECTORS = b"2 2\ncat 1 2\ndog 3 4\n"


def fvocab(data):
    """Byte 0: bits 0-1 unicode_errors, bit 2 latin-1; the rest is the vocabulary file."""
    (f,), body = _flags(data, 1)
    vec_path = tmp_file("fv.txt", _FVOCAB_VECTORS)
    path = tmp_file("counts.txt", body)
    res = bounded_call("load_vectors(fvocab=)", len(body), pyembed.load_vectors, vec_path,
                       fvocab=path, unicode_errors=_ERRORS[f & 3],
                       encoding="latin-1" if f & 4 else "utf-8")
    if isinstance(res, Exception):
        return
    for w in res.index_to_key:
        c = res.get_vecattr(w, "count")
        if c is not None and not isinstance(c, (int, np.integer)):
            raise Finding(f"fvocab: count of {w!r} is {c!r}, not an int")


HARNESSES = {
    "parse_kernels": parse_kernels,
    "vectors": vectors,
    "vectors_roundtrip": vectors_roundtrip,
    "safetensors": safetensors_header,
    "vocab": vocab,
    "fvocab": fvocab,
}

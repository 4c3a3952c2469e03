"""Bad input to every public function (issue 11, "make CI find the next ones", item 4).

Each case (tests/bad_input_cases.py, and the ids table below crossed with every function that
takes ids) must raise the documented exception (DESIGN.md "Errors": IndexError naming the value
and its position for ids out of range, TypeError for non-integer ids, ValueError naming both
shapes for a mismatch, MemoryError / OverflowError for impossible sizes), with a message naming
the argument (and the value where there is one), and leave everything -- every table's weight,
grad and touched rows, every optimizer's groups and state, the vectors, vocabularies, the
Word2Vec model and the files -- bit for bit as it was (bad_input_world.snapshot).

Calls that could crash the interpreter (out= overlapping an input) run in a child process.
"""
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pyembed
import bad_input_cases as bc
import bad_input_cases_more as bcm
import bad_input_cases_inbwd as bci
import bad_input_cases_adagrad as bca
import bad_input_cases_memmap as bcmm
import bad_input_cases_hf as bch
import bad_input_cases_tok as bct
from child import PKG_PARENT
from bad_input_world import DIM, ROWS, World, changed, make_inputs, ones, snapshot



@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    _SHARED.clear()
    return make_inputs(tmp_path_factory.mktemp("inputs"))


# One World shared by the cases, rebuilt only after a test that may have changed it: a case that
# passes has shown, by its snapshot, that it left the world exactly as it found it (and building
# a world costs more than most cases).
_SHARED = {}


@pytest.fixture
def world(tmp_path_factory, inputs):
    if "world" not in _SHARED:
        w = World(tmp_path_factory.mktemp("world"), inputs)
        _SHARED.update(world=w, snap=snapshot(w))
    _SHARED["clean"] = False
    yield _SHARED["world"]
    if not _SHARED["clean"]:
        _SHARED.clear()


def check_refused(w, call, exc, needles):
    """The shared assertion: `call(w)` raises `exc` naming every needle (whole words, any case),
    and changes nothing."""
    before = _SHARED["snap"] if _SHARED.get("world") is w else snapshot(w)
    with pytest.raises(exc) as info:
        call(w)
    msg = str(info.value)
    if isinstance(info.value, KeyError) and info.value.args:
        msg = str(info.value.args[0])
    for needle in needles:
        # a whole word: "h" is not found in "matching", nor "0" in "10", nor "path" in "PathLike"
        if not isinstance(needle, re.Pattern):
            needle = re.compile(rf"(?<!\w){re.escape(needle)}(?!\w)", re.IGNORECASE)
        found = needle.search(msg)
        assert found, f"{type(info.value).__name__}({msg!r}) does not name {needle.pattern!r}"
    after = snapshot(w)
    assert not changed(before, after), f"the failed call changed {changed(before, after)}"
    _SHARED["clean"] = True


@pytest.mark.parametrize("name, mutate", [
    ("t", lambda w: w.t.zero_grad()),
    ("emb", lambda w: w.emb.weight.__setitem__((3, 1), 7.0)),
    ("emb", lambda w: w.emb.unfreeze_rows()),
    ("bag", lambda w: w.bag([4], [0])),
    ("inp", lambda w: w.inp.position.encoding(4, 30)),
    ("inpl", lambda w: w.inpl.zero_grad()),
    ("pe", lambda w: w.pe.encoding(4, 30)),
    ("adam", lambda w: w.adam.step()),
    ("adam2", lambda w: w.adam2.param_groups[1].__setitem__("lr", 0.3)),
    ("sgd", lambda w: w.sgd.state[w.e3]["momentum_buffer"].__setitem__((1, 1), 2.0)),
    ("pw", lambda w: w.pair_opt.step()),
    ("kv", lambda w: w.kv.set_vecattr("w1", "count", 99)),
    ("vocab", lambda w: w.vocab.index_to_key.append("x")),
    ("w2v", lambda w: w.w2v.syn1neg.__setitem__((0, 0), 1.0)),
    ("files", lambda w: open(w.sub + "/new", "w").close()),
])
def test_the_snapshot_sees_every_change(world, name, mutate):
    """The snapshot is the assertion of every case: it must see a change anywhere."""
    before = snapshot(world)
    mutate(world)
    assert any(c.startswith(name) for c in changed(before, snapshot(world)))


# ---- ids: one table of bad ids, every function that takes ids -------------------------------

def _pos(*index, flat=None):
    """The position of the bad id in the message: ``ids[1, 2]`` or ``position 5``."""
    inner = ", ".join(map(str, index))
    flat = index[0] if flat is None else flat
    return re.compile(rf"\[{inner}\]|position {flat}\b")


# (name, ids, exception, needles, shape of the ids for a matching gradient or None if 2-D only)
BAD_IDS = [
    ("float", np.array([1.0, 2.0]), TypeError, ["float64"]),
    ("float list", [1.5], TypeError, ["float64"]),
    ("bool", np.array([True, False]), TypeError, ["bool"]),
    ("complex", np.array([1 + 0j]), TypeError, ["complex128"]),
    ("object ints", np.array([1, 2], dtype=object), TypeError, ["object"]),
    ("object None", np.array([1, None], dtype=object), TypeError, ["object"]),
    ("str", np.array(["1", "2"]), TypeError, ["<U1"]),
    ("bytes", np.array([b"1"]), TypeError, ["S1"]),
    ("datetime", np.array(["2020-01-01"], "datetime64[D]"), TypeError, ["datetime64"]),
    ("float16", np.array([1, 2], np.float16), TypeError, ["float16"]),
    ("ragged", [[1], [2, 3]], (TypeError, ValueError), []),
    ("one past the end", [3, ROWS], IndexError, [str(ROWS), _pos(1)]),
    ("-1", [2, -1], IndexError, ["-1", _pos(1)]),
    ("2**31", [2 ** 31], IndexError, [str(2 ** 31), _pos(0)]),
    ("2**63", [2 ** 63], IndexError, [str(2 ** 63), _pos(0)]),
    ("-2**63-1", [-2 ** 63 - 1], IndexError, [str(-2 ** 63 - 1), _pos(0)]),
    ("past int64", [0, 2 ** 70], IndexError, [str(2 ** 70), _pos(1)]),
    ("-2**63", np.array([-2 ** 63]), IndexError, [str(-2 ** 63), _pos(0)]),
    ("uint64 max", np.array([2 ** 64 - 1], np.uint64), IndexError, [str(2 ** 64 - 1), _pos(0)]),
    ("int8 -3", np.array([5, -3], np.int8), IndexError, ["-3", _pos(1)]),
    ("uint8 200", np.array([1, 200], np.uint8), IndexError, ["200", _pos(1)]),
    ("int32 strided", np.array([0, 0, 1, 0, 99, 0], np.int32)[::2], IndexError, ["99",
                                                                                   _pos(2)]),
    ("2-D", np.array([[0, 1], [2, 99]]), IndexError, ["99", _pos(1, 1, flat=3)]),
]


def _bag(w, ids):
    a = np.asarray(ids, dtype=object) if not isinstance(ids, np.ndarray) else ids
    return w.bag(ids) if getattr(a, "ndim", 1) == 2 else w.bag(ids, [0])


def _grad(ids):
    try:
        shape = np.shape(ids)
    except ValueError:  # ragged
        shape = (2,)
    return np.ones(shape + (DIM,), np.float32)


# (name, call(w, ids)); each must refuse every row of BAD_IDS the same way
IDS_FUNCS = [
    ("Table.lookup", lambda w, ids: w.t.lookup(ids)),
    ("Table.lookup out=", lambda w, ids: w.t.lookup(ids, np.zeros(_grad(ids).shape, np.float32))),
    ("Table.lookup max_norm", lambda w, ids: w.t.lookup(ids, max_norm=0.01)),
    ("Table.backward", lambda w, ids: w.t.backward(ids, _grad(ids))),
    ("Table.backward scale_grad_by_freq", lambda w, ids: w.t.backward(ids, _grad(ids), None,
                                                                       True)),
    ("Table.renorm", lambda w, ids: w.t.renorm(ids, 0.01, 2.0)),
    ("Embedding()", lambda w, ids: w.emb(ids)),
    ("Embedding(max_norm)", lambda w, ids: w.embn(ids)),
    ("Embedding.backward", lambda w, ids: w.emb.backward(ids, _grad(ids))),
    ("Embedding.freeze_rows", lambda w, ids: w.emb.freeze_rows(ids)),
    ("Embedding.unfreeze_rows", lambda w, ids: w.emb.unfreeze_rows(ids)),
    ("EmbeddingBag()", _bag),
    ("EmbeddingBag(max_norm)", lambda w, ids: w.bagn(ids) if np.ndim(ids) == 2 else
     w.bagn(ids, [0])),
    ("EmbeddingBag psw", lambda w, ids: w.bag(ids, [0], per_sample_weights=ones(*np.shape(ids)))
     if np.ndim(ids) == 1 else w.bag(ids, per_sample_weights=ones(*np.shape(ids)))),
    ("InputEmbedding()", lambda w, ids: w.inp(ids)),
    ("InputEmbedding(learned)", lambda w, ids: w.inpl(ids)),
    ("InputEmbedding.backward", lambda w, ids: w.inpl.backward(ids, _grad(ids))),
    ("one_hot", lambda w, ids: pyembed.one_hot(ids, ROWS)),
    ("Vocab.decode", lambda w, ids: w.vocab.decode(ids)),
]

# combinations that fail on today's main: (function, ids name) -> reason
IDS_XFAIL = {}


def _ids_params():
    out = []
    for fname, call in IDS_FUNCS:
        for name, ids, exc, needles in BAD_IDS:
            reason = IDS_XFAIL.get((fname, name))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(lambda w, c=call, i=ids: c(w, i), exc, needles,
                                    id=f"{fname}-{name}", marks=marks))
    return out


ALL_CASES = (_ids_params() + bc.table_cases() + bc.embedding_cases() + bc.positional_cases()
             + bc.rope_cases() + bc.misc_cases() + bcm.vectors_cases() + bcm.io_cases()
             + bcm.word2vec_cases() + bcm.optim_cases() + bca.adagrad_cases() + bcm.plot_cases()
             + bci.inbwd_cases() + bcmm.memmap_cases() + bch.hf_cases() + bct.tokenizer_cases())


@pytest.mark.parametrize("call, exc, needles", ALL_CASES)
def test_bad_input_is_refused_and_changes_nothing(world, call, exc, needles):
    check_refused(world, call, exc, needles)


def test_every_public_name_has_cases():
    """A new public function or method without a bad-input case fails here: every name must
    begin the id of some case (``"Embedding.backward grad shape"``, ``"load_vectors missing"``)."""
    ids = [p.id for p in ALL_CASES]
    names = [n for n in pyembed.__all__ if n not in ("optim", "plot", "Table",
                                                     "TruncatedFileError")]
    names += [n for n in pyembed.optim.__all__ if n != "Optimizer"] + list(pyembed.plot.__all__)
    for cls, prefix in ((pyembed.Table, "Table"), (pyembed.Vectors, "Vectors"),
                        (pyembed.Embedding, "Embedding"), (pyembed.EmbeddingBag, "EmbeddingBag"),
                        (pyembed.embedding_memmap.MemmapMixin, "Embedding"),  # from_memmap etc.
                        (pyembed.Vocab, "Vocab"), (pyembed.Word2Vec, "Word2Vec"),
                        (pyembed.InputEmbedding, "InputEmbedding"),
                        (pyembed.PositionalEncoding, "PositionalEncoding"),
                        (pyembed.Tokenizer, "Tokenizer"),
                        (pyembed.optim.Optimizer, "Adam")):
        names += [f"{prefix}.{m}" for m in vars(cls) if not m.startswith("_")]
    missing = [n for n in names if n not in NO_BAD_INPUT and not any(
        i.startswith(n) and i[len(n):len(n) + 1] in ("", " ", "(", "[", "-", "=") for i in ids)]
    assert not missing, f"public names without a bad-input case: {missing}"


# names whose arguments cannot be bad (none, or any value is fine), or that only forward to a
# function with cases of its own
NO_BAD_INPUT = {"get_num_threads"} | {f"{cls}.{name}" for cls, names in {
    "Table": "dtype embedding_dim num_embeddings num_touched shape zero_grad mark_all_touched",
    "Vectors": "vector_size fill_norms get_normed_vectors has_index_for similar_by_word "
               "similar_by_key analogy cosine_similarities distance save_word2vec_format "
               "load_word2vec_format vocab unit_normalize_all",
    "Embedding": "zero_grad sparse_grad parameters frozen_rows grad touched num_embeddings "
                 "embedding_dim dtype shape num_parameters nbytes extra_repr frozen_mask flush "
                 "sparse_grad_buffer",  # no arguments
    "EmbeddingBag": "extra_repr",
    "Vocab": "from_corpus lookup_indices lookup_tokens",
    "Word2Vec": "bytes_moved",
    "InputEmbedding": "zero_grad parameters d_model vocab_size dtype padding_idx num_segments",
    "PositionalEncoding": "max_len table backward parameters",
    "Adam": "zero_grad state_dict in_backward",  # in_backward: a flag, no arguments
    "Tokenizer": "vocab_size get_vocab unk_token",
}.items() for name in names.split()}


# ---- out= overlapping an input (crash-prone: in a child) --------------------------------------

OVERLAP = {
    # ids stored inside out's memory: the call must read all of them before writing out
    "Table.lookup": ("t = pyembed.Table(100, 64, np.float32)\nt.weight = rng.standard_normal("
                     "(100, 64))\nout = np.zeros((1, 64, 64), np.float32)\n"
                     "ids = out.reshape(-1).view(np.int64)[:64].reshape(1, 64)\n"
                     "ids[...] = rng.integers(0, 100, (1, 64))\n"
                     "expect = t.weight[ids.copy()]\ngot = lambda: t.lookup(ids, out=out)"),
    "InputEmbedding": ("inp = pyembed.InputEmbedding(100, 64, max_len=64, seed=0)\n"
                       "out = np.zeros((1, 64, 64), np.float32)\n"
                       "ids = out.reshape(-1).view(np.int64)[:64].reshape(1, 64)\n"
                       "ids[...] = rng.integers(0, 100, (1, 64))\n"
                       "expect = inp(ids.copy())\ngot = lambda: inp(ids, out=out)"),
    # out a shifted view of x: an in-place rotation is allowed only for out is x
    "rope": ("buf = rng.standard_normal(2 * 8 * 16 + 16).astype(np.float32)\n"
             "x = buf[16:].reshape(2, 8, 16)\nout = buf[:-16].reshape(2, 8, 16)\n"
             "expect = pyembed.rope(x.copy())\ngot = lambda: pyembed.rope(x, out=out)"),
    "sinusoidal": ("out = np.zeros((8, 16), np.float32)\nexpect = pyembed.sinusoidal(8, 16)\n"
                   "got = lambda: pyembed.sinusoidal(8, 16, out=out)"),
}


@pytest.mark.parametrize("what", [
    "Table.lookup",
    "InputEmbedding",  # issue 11: it segfaulted (fixed on branch glue)
    "rope", "sinusoidal",
])
def test_out_overlapping_an_input(what):
    """Either a ValueError naming out, or the result a call with copied inputs gives."""
    code = textwrap.dedent("""
        import faulthandler
        import numpy as np
        import pyembed
        faulthandler.enable()
        rng = np.random.default_rng(0)
        """) + OVERLAP[what] + textwrap.dedent("""
        try:
            r = got()
        except ValueError as e:
            assert "out" in str(e), e
        else:
            assert r is out and np.array_equal(r, expect), "wrong result"
        print("ok")
        """)
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=60, cwd=PKG_PARENT)
    except subprocess.TimeoutExpired:
        pytest.fail("the child hung")
    assert r.returncode == 0 and "ok" in r.stdout, f"status {r.returncode}: {r.stderr[-3000:]}"

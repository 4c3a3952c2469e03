"""Word2Vec checks every argument up front, naming it and its value, and a build_vocab or train
that fails leaves the model (vocabulary, corpus, tables) exactly as it was (issue 11)."""
import math

import numpy as np
import pytest

import pyembed

SENTS = [["a", "b", "c", "a"], ["b", "a", "d"]] * 5


def _state(m):
    return (list(m.index_to_key), dict(m.key_to_index), m.counts.tobytes(), m.syn0.tobytes(),
            m.syn1neg.tobytes(), m._tokens.tobytes(), m._bounds.tobytes(), m._keep.tobytes(),
            list(m.loss_history), m.pairs_trained)


@pytest.mark.parametrize("name,value", [
    ("ns_exponent", math.nan), ("ns_exponent", math.inf), ("ns_exponent", "0.75"),
    ("ns_exponent", True), ("sample", -1.0), ("sample", True), ("alpha", math.nan),
    ("min_alpha", -math.inf), ("window", 2**31), ("workers", 2**40), ("seed", 2**64),
    ("seed", -1), ("negative", 65), ("vector_size", 0), ("epochs", 1.5),
])
def test_constructor_names_the_bad_argument_and_value(name, value):
    with pytest.raises((ValueError, TypeError), match=name) as e:
        pyembed.Word2Vec(SENTS, **{"min_count": 1, "epochs": 1, name: value})
    assert name in str(e.value)
    if not isinstance(value, float) or not math.isnan(value):
        assert (repr(value) in str(e.value) or str(value) in str(e.value)
                or type(value).__name__ in str(e.value))


def test_nan_ns_exponent_value_is_in_the_message():
    with pytest.raises(ValueError, match="ns_exponent.*nan"):
        pyembed.Word2Vec(min_count=1, ns_exponent=float("nan"))


@pytest.mark.parametrize("exponent", [1e6, -1e6])
def test_build_vocab_that_fails_keeps_the_old_model(exponent):
    m = pyembed.Word2Vec(SENTS, vector_size=4, min_count=1, epochs=1, workers=1)
    before = _state(m)
    m.ns_exponent = exponent  # set after construction: only build_vocab can find it
    with pytest.raises(ValueError, match="ns_exponent"):
        m.build_vocab([["x", "y", "y", "x", "z"]] * 3)
    assert _state(m) == before
    m.ns_exponent = 0.75
    m.train()


def test_build_vocab_refuses_non_str_tokens_and_keeps_the_old_model():
    m = pyembed.Word2Vec(SENTS, vector_size=4, min_count=1, epochs=1, workers=1)
    before = _state(m)
    with pytest.raises(TypeError, match="str tokens.*3.*int"):
        m.build_vocab([["a", 3]])
    assert _state(m) == before


@pytest.mark.parametrize("epochs,exc", [(-1, ValueError), (0, ValueError), ("2", TypeError),
                                        (2.5, TypeError), (True, TypeError)])
def test_train_checks_epochs_before_changing_anything(epochs, exc):
    m = pyembed.Word2Vec(SENTS, vector_size=4, min_count=1, epochs=1, workers=1)
    before = _state(m)
    with pytest.raises(exc, match="epochs"):
        m.train(epochs)
    assert _state(m) == before


@pytest.mark.parametrize("name,value", [("vector_size", 2.5), ("window", "5"), ("workers", 1.0)])
def test_int_arguments_name_the_value(name, value):
    with pytest.raises(TypeError, match=name) as e:
        pyembed.Word2Vec(**{name: value})
    assert repr(value) in str(e.value)

"""Issue 11, Python side: state saved for a backward is private, and a call that raises has
changed nothing (tables and optimizer state compared bit for bit before and after)."""
import re

import numpy as np
import pytest

import pyembed


def _snapshot(*objs):
    """Bytes of every table weight and gradient in objs, to compare bit for bit."""
    out = []
    for o in objs:
        out.append(o.weight.tobytes())
        out.append(None if o.grad is None else o.grad.tobytes())
    return out


# -- 1. forward state is a private copy ----------------------------------------------------------
@pytest.mark.parametrize("two_d", [False, True])
def test_bag_backward_ignores_ids_changed_after_forward(two_d):
    ids = np.array([1, 2, 4, 5, 4, 3, 2, 9])
    offsets = None if two_d else [0, 4]
    if two_d:
        ids = ids.reshape(2, 4)
    psw = np.linspace(0.5, 2.0, ids.size).reshape(ids.shape)
    a = pyembed.EmbeddingBag(10, 3, "sum", seed=0)
    b = pyembed.EmbeddingBag(10, 3, "sum", seed=0)
    g = np.arange(6, dtype=np.float32).reshape(2, 3)
    a(ids.copy(), offsets, per_sample_weights=psw.copy())
    want = a.backward(g)
    mine, mine_w = ids.copy(), psw.copy()
    b(mine, offsets, per_sample_weights=mine_w)
    mine[...] = 7          # a data loader refilling its batch buffer
    mine_w[...] = 100.0
    got = b.backward(g)
    assert np.array_equal(b.grad, a.grad) and np.array_equal(b.touched, a.touched)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_bag_backward_ignores_ids_changed_after_forward_modes(mode):
    ids = np.array([1, 2, 4, 5, 4, 3, 2, 9])
    a = pyembed.EmbeddingBag(10, 3, mode, seed=0, scale_grad_by_freq=mode != "max")
    b = pyembed.EmbeddingBag(10, 3, mode, seed=0, scale_grad_by_freq=mode != "max")
    g = np.ones((2, 3), np.float32)
    a(ids.copy(), [0, 4])
    a.backward(g)
    mine = ids.copy()
    b(mine, [0, 4])
    mine[:] = 7
    b.backward(g)
    assert np.array_equal(b.grad, a.grad)


# -- 2. max_norm renormalises only after every argument is checked -------------------------------
BAD_BAGS = [
    ("offsets[0]", dict(ids=[1, 2, 3], offsets=[1, 2])),
    ("nondecreasing", dict(ids=[1, 2, 3], offsets=[0, 2, 1])),
    ("beyond", dict(ids=[1, 2, 3], offsets=[0, 5], include_last_offset=True)),
    ("mode='sum'", dict(ids=[1, 2, 3], offsets=[0], per_sample_weights=[1.0, 2.0, 3.0],
                        mode="mean")),
    ("shape", dict(ids=[1, 2, 3], offsets=[0], per_sample_weights=[1.0, 2.0])),
    ("real numbers", dict(ids=[1, 2, 3], offsets=[0], per_sample_weights=[1j, 2j, 3j])),
    ("out of range", dict(ids=[1, 2, 30], offsets=[0])),
    ("integers", dict(ids=[1.0, 2.0], offsets=[0])),
]


@pytest.mark.parametrize("match,case", BAD_BAGS, ids=[c[0] for c in BAD_BAGS])
def test_bag_max_norm_bad_call_changes_nothing(match, case):
    case = dict(case)
    bag = pyembed.EmbeddingBag(10, 4, case.pop("mode", "sum"), max_norm=0.1, seed=0)
    before = _snapshot(bag)
    with pytest.raises((ValueError, TypeError, IndexError), match=re.escape(match)):
        bag(case.pop("ids"), **case)
    assert _snapshot(bag) == before


def test_embedding_max_norm_bad_out_changes_nothing():
    emb = pyembed.Embedding(10, 4, max_norm=0.1, seed=0)
    before = _snapshot(emb)
    with pytest.raises(ValueError):
        emb([1, 2], out=np.empty((3, 4), np.float32))
    with pytest.raises(IndexError):
        emb([1, 2, 10])
    assert _snapshot(emb) == before

"""Embedding(sparse=True) / EmbeddingBag(sparse=True) (issue 12): the gradient is the coalesced
(rows, values) of the touched rows only, the same bits as the dense gradient's rows, accumulated
over backward calls; every optimizer, clip_grad_norm_ and state_dict work on it."""
import numpy as np
import pytest

import pyembed
from pyembed import optim
from reference import same_bits

ROWS, DIM = 60, 6


def batches(dtype, n=3, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        ids = np.minimum(rng.zipf(1.5, (5, 8)) - 1, ROWS - 1)
        g = rng.standard_normal((5, 8, DIM)).astype(dtype)
        g[rng.random(g.shape) < 0.2] = -0.0
        yield ids, g, rng.standard_normal((5, 8)).astype(dtype)


def backward(m, ids, g, psw):
    if isinstance(m, pyembed.EmbeddingBag):
        m.bag(ids, per_sample_weights=psw if m.mode == "sum" else None)
        m.backward(g[:, 0])
    else:
        m.backward(ids, g)


KINDS = [dict(), dict(padding_idx=2), dict(padding_idx=0, scale_grad_by_freq=True),
         dict(bag="sum"), dict(bag="mean", padding_idx=1), dict(bag="max"),
         dict(bag="mean", scale_grad_by_freq=True)]


def make(kind, dtype, sparse):
    kw = dict(kind)
    mode = kw.pop("bag", None)
    if mode:
        return pyembed.EmbeddingBag(ROWS, DIM, mode, seed=1, dtype=dtype, sparse=sparse, **kw)
    return pyembed.Embedding(ROWS, DIM, seed=1, dtype=dtype, sparse=sparse, **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS, ids=str)
def test_sparse_grad_equals_the_dense_rows_accumulated(kind, dtype):
    dense, sparse = make(kind, dtype, False), make(kind, dtype, True)
    for ids, g, psw in batches(dtype):
        backward(dense, ids, g, psw)
        backward(sparse, ids, g, psw)
        rd, vd = dense.sparse_grad()
        rs, vs = sparse.sparse_grad()
        assert same_bits(rd, rs) and same_bits(vd, vs)
        assert same_bits(dense.touched, sparse.touched)
    assert sparse.table.grad is None and sparse.grad is None  # no (V, D) buffer, ever
    sparse.zero_grad()
    assert sparse.sparse_grad()[0].size == 0 and sparse.touched.size == 0


OPTS = [lambda p: optim.Adam(p, lr=0.05), lambda p: optim.Adam(p, lr=0.05, lazy=True),
        lambda p: optim.AdamW(p, lr=0.05, amsgrad=True, lazy=True, per_row_step=True),
        lambda p: optim.SparseAdam(p, lr=0.05), lambda p: optim.SGD(p, lr=0.05),
        lambda p: optim.SGD(p, lr=0.05, momentum=0.9),
        lambda p: optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.1, lazy=True),
        lambda p: optim.Adagrad(p, lr=0.05, lr_decay=0.1),
        lambda p: optim.Adagrad(p, lr=0.05, weight_decay=0.1),  # every row: densified
        lambda p: optim.Adagrad(p, lr=0.05, weight_decay=0.1, maximize=True, lazy=True),
        lambda p: optim.RowWiseAdagrad(p, lr=0.05, weight_decay=0.1),
        lambda p: optim.RowWiseAdagrad(p, lr=0.05, weight_decay=0.1,
                                       decoupled_weight_decay=True)]


@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("k", range(len(OPTS)))
@pytest.mark.parametrize("kind", [KINDS[2], KINDS[4]], ids=str)
def test_every_optimizer_steps_a_sparse_gradient_as_the_dense_one(kind, k, clip):
    out = []
    for sparse in (False, True):
        m = make(kind, np.float32, sparse)
        m.freeze_rows([3])
        opt = OPTS[k](m)
        norms = []
        for ids, g, psw in batches(np.float32, n=4):
            backward(m, ids, g, psw)
            backward(m, ids[:2], g[:2], psw[:2])  # two micro-batches accumulate
            if clip:
                norms.append(optim.clip_grad_norm_(m, 0.5))
            opt.step()
            opt.zero_grad()
        out.append((m.weight.copy(), opt.state_dict(), norms))
    assert same_bits(out[0][0], out[1][0])
    assert out[0][2] == out[1][2]
    assert sorted(out[0][1]) == sorted(out[1][1])
    for key in out[0][1]:
        assert same_bits(out[0][1][key], out[1][1][key]), key


def test_state_dict_round_trip_on_a_sparse_table():
    m = make({}, np.float32, True)
    opt = optim.SparseAdam(m, lr=0.1)
    m.backward([1, 2, 2], np.ones((3, DIM), np.float32))
    opt.step()
    sd = {k: np.array(v) for k, v in opt.state_dict().items()}
    opt2 = optim.SparseAdam(m, lr=0.1)
    opt2.load_state_dict(sd)
    assert same_bits(opt2.state[m]["exp_avg"], sd["state.0.exp_avg"])


def test_from_pretrained_sparse_and_repr():
    e = pyembed.Embedding.from_pretrained(np.eye(3, dtype=np.float32), freeze=False, sparse=True)
    b = pyembed.EmbeddingBag.from_pretrained(np.eye(3, dtype=np.float32), sparse=True)
    assert e.sparse and b.sparse and "sparse=True" in repr(e)
    e.backward([[0, 2]], np.ones((1, 2, 3), np.float32))
    rows, vals = e.sparse_grad()
    assert rows.tolist() == [0, 2] and vals.tolist() == [[1, 1, 1], [1, 1, 1]]


def test_a_failed_sparse_backward_keeps_the_gradient():
    m = make({}, np.float32, True)
    m.backward([1], np.ones((1, DIM), np.float32))
    with pytest.raises(ValueError, match="grad_output"):
        m.backward([1, 2], np.ones((1, DIM), np.float32))
    rows, vals = m.sparse_grad()
    assert rows.tolist() == [1] and (vals == 1).all()

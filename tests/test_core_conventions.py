"""One convention per concept at the _core level (issue 10 §6): padding_idx None means "no
padding row" everywhere and a negative value counts from the end (as torch); one `interleaved`
flag of one polarity for sinusoidal tables and rope; .grad is read-only; an out= that overlaps an
input is refused with both named."""
import numpy as np
import pytest

import pyembed
from pyembed import _core


def _table(rows=6, dim=4):
    t = _core.Table(rows, dim, np.float64)
    t.weight = np.arange(rows * dim, dtype=np.float64).reshape(rows, dim) + 1.0
    return t


def test_padding_idx_minus_one_is_the_last_row_in_every_function():
    ids, off = np.array([0, 5, 5, 2]), np.array([0, 2, 4])
    g = np.ones((2, 4))
    for pad, row in ((None, None), (-1, 5), (5, 5), (-6, 0)):
        t = _table()
        out, _ = _core.bag_forward(t, ids, off, None, 0, pad)
        want = np.stack([t.weight[[i for i in ids[a:b] if i != row]].sum(0)
                         for a, b in zip(off[:-1], off[1:])])
        np.testing.assert_array_equal(out, want)
        _core.bag_backward(t, ids, off, g, None, None, 0, pad)
        u = _table()
        u.backward(ids, np.ones((4, 4)), padding_idx=pad)
        np.testing.assert_array_equal(t.grad, u.grad)  # the same rows got gradient
        assert (row is None) or not t.grad[row].any()
        gpsw = _core.bag_psw_grad(t, ids, off, g, pad)
        assert (row is None) or (gpsw[ids == row] == 0).all()


@pytest.mark.parametrize("pad", [6, -7, 2**70])
def test_padding_idx_out_of_range_names_it(pad):
    t = _table()
    with pytest.raises(ValueError, match="padding_idx"):
        _core.bag_forward(t, np.array([0]), np.array([0, 1]), None, 0, pad)
    with pytest.raises(ValueError, match="padding_idx"):
        t.backward([0], np.ones((1, 4)), padding_idx=pad)
    with pytest.raises(TypeError, match="padding_idx"):
        t.backward([0], np.ones((1, 4)), padding_idx=1.0)


def test_interleaved_means_the_same_pairing_for_sinusoidal_and_rope():
    s_inter = _core.sinusoidal(5, 8, 0, 10000.0, True)  # sin, cos in columns (2i, 2i+1)
    s_halves = _core.sinusoidal(5, 8, 0, 10000.0, False)  # [sin | cos]
    np.testing.assert_array_equal(s_inter[:, 0::2], s_halves[:, :4])
    np.testing.assert_array_equal(s_inter[:, 1::2], s_halves[:, 4:])
    np.testing.assert_array_equal(_core.sinusoidal(5, 8), s_inter)  # the paper's is the default
    x = np.zeros((5, 8))
    x[:, 0::2] = 1.0  # the "cos" slot of every interleaved pair: rotating gives (cos, sin)
    r = _core.rope(x, None, 10000.0, True)
    np.testing.assert_allclose(r[:, 0::2], s_inter[:, 1::2], atol=1e-12)
    np.testing.assert_allclose(r[:, 1::2], s_inter[:, 0::2], atol=1e-12)
    x = np.zeros((5, 8))
    x[:, :4] = 1.0
    r = _core.rope(x, None, 10000.0, False)
    np.testing.assert_allclose(r, np.concatenate([s_halves[:, 4:], s_halves[:, :4]], 1), atol=1e-12)


def test_grad_is_read_only_and_dense_gradients_come_in_through_add_dense_grad():
    t = _table()
    t.backward([1], np.ones((1, 4)))
    with pytest.raises(ValueError, match="read-only"):
        t.grad[3] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        np.add(t.grad, 1.0, out=t.grad)
    t.add_dense_grad(np.full((6, 4), 2.0))
    np.testing.assert_array_equal(t.touched, np.arange(6))
    want = np.full((6, 4), 2.0)
    want[1] += 1.0
    np.testing.assert_array_equal(t.grad, want)
    with pytest.raises(ValueError, match="dense has shape"):
        t.add_dense_grad(np.ones((5, 4)))
    _core.scale_grad(t.grad, 0.5, None, table=t)  # the table's own grad, under its lock
    np.testing.assert_array_equal(t.grad, want / 2)
    with pytest.raises(ValueError, match="read-only"):
        _core.scale_grad(t.grad, 0.5)  # without the table it is just a read-only array
    emb = pyembed.Embedding(6, 4)
    emb.backward([0], np.ones((1, 4), np.float32))
    with pytest.raises(ValueError, match="read-only"):
        emb.grad[0] = 1.0


def test_out_overlapping_an_input_is_refused_naming_both():
    t = _table(20, 4)
    ids = np.array([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="out overlaps the token table"):
        _core.embed_positions(t, ids, None, 1.0, t.weight[:4].reshape(2, 2, 4))
    big = np.zeros(40)
    pos = big[:8].reshape(2, 4)
    with pytest.raises(ValueError, match="out overlaps positions"):
        _core.embed_positions(t, ids, pos, 1.0, big[4:20].reshape(2, 2, 4))
    with pytest.raises(ValueError, match="out overlaps the table's weight"):
        t.lookup(ids, out=t.weight[2:6].reshape(2, 2, 4))
    x = np.ones((2, 3, 4))
    assert _core.rope(x, None, 10000.0, False, False, x) is x  # in place is allowed
    buf = np.zeros(28)
    with pytest.raises(ValueError, match="out overlaps x"):
        _core.rope(buf[:24].reshape(2, 3, 4), None, 10000.0, False, False, buf[4:].reshape(2, 3, 4))

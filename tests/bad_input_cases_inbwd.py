"""Bad-input cases for issue 12's arguments: sparse=True tables, optimizers applied in the
backward (in_backward=True) and the adam_step / sgd_step / adagrad_step forms behind them (see
bad_input_cases.py for the rules). Objects a case must change first are built inside the case."""
import numpy as np

import pyembed
from pyembed import _core, optim
from bad_input_cases import case
from bad_input_world import DIM, ROWS


def fused(opt_cls=optim.Adam, **kw):
    """A fresh Embedding with an optimizer applied in its backward."""
    e = pyembed.Embedding(ROWS, DIM, seed=1)
    kw.setdefault("lazy", True) if opt_cls is not optim.SparseAdam else None
    return e, opt_cls(e, lr=0.1, in_backward=True, **kw)


def after_backward(e):
    e.backward([1, 2], np.ones((2, DIM), np.float32))
    return e


def zeros(*shape):
    return np.zeros(shape, np.float32)


def inbwd_cases():
    E, B, A, S = pyembed.Embedding, pyembed.EmbeddingBag, optim.Adam, optim.SGD
    ids, g = np.array([1, 2]), np.ones((2, DIM), np.float32)
    return [
        case("Embedding(sparse str)", lambda w: E(ROWS, DIM, sparse="yes"), TypeError, "sparse"),
        case("EmbeddingBag(sparse 1)", lambda w: B(ROWS, DIM, sparse=1), TypeError, "sparse"),
        case("Embedding.compact_backward ids", lambda w: w.emb.compact_backward(
            [ROWS], lambda *a: None), IndexError, "index", str(ROWS)),
        case("Embedding.compact_backward run", lambda w: w.emb.compact_backward([1], 5),
             TypeError, "run"),
        case("Adam(in_backward str)", lambda w: A(w.e1, lazy=True, in_backward="yes"),
             TypeError, "in_backward"),
        case("Adam(in_backward dense)", lambda w: A(w.e1, in_backward=True), ValueError,
             "in_backward", "lazy"),
        case("SGD(in_backward momentum)", lambda w: S(w.e1, momentum=0.9, in_backward=True),
             ValueError, "in_backward", "lazy"),
        case("Adam(in_backward Table)", lambda w: A(w.t, lazy=True, in_backward=True),
             TypeError, "in_backward", "Table"),
        case("Adam(in_backward pair)", lambda w: A([(zeros(2, 2), zeros(2, 2))], lazy=True,
                                                  in_backward=True), TypeError, "in_backward"),
        case("Adam(in_backward group Table)", lambda w: A(
            [{"params": [E(ROWS, DIM)]}, {"params": [w.t]}], lazy=True, in_backward=True),
             TypeError, "Table"),
        case("Adam(in_backward twice)", lambda w: A(fused()[0], lazy=True, in_backward=True),
             ValueError, "already"),
        case("Adam(in_backward pending grad)", lambda w: A(after_backward(E(ROWS, DIM)),
                                                          lazy=True, in_backward=True),
             ValueError, "zero_grad"),
        case("in_backward backward ids", lambda w: fused()[0].backward([ROWS], g[:1]),
             IndexError, str(ROWS)),
        case("in_backward backward shape", lambda w: fused()[0].backward(ids, g[:1]),
             ValueError, "grad_output"),
        case("in_backward backward dtype", lambda w: fused()[0].backward(ids, g.astype(str)),
             TypeError, "grad_output"),
        case("in_backward second backward", lambda w: after_backward(after_backward(
            fused(optim.SparseAdam)[0])), RuntimeError, "step", "sparse"),
        case("in_backward attend_backward", lambda w: fused()[0].attend_backward(
            zeros(1, DIM), zeros(1, ROWS)), RuntimeError, "in_backward", "dense"),
        case("sparse attend_backward", lambda w: E(ROWS, DIM, sparse=True).attend_backward(
            zeros(1, DIM), zeros(1, ROWS)), RuntimeError, "sparse", "dense"),
        case("in_backward sparse_grad", lambda w: fused(S)[0].sparse_grad(), RuntimeError,
             "in_backward"),
        case("in_backward clip_grad_norm_", lambda w: optim.clip_grad_norm_(fused()[0], 1.0),
             RuntimeError, "in_backward", "sparse"),
        case("adam_step ids+rows", lambda w: _core.adam_step(
            zeros(3, 2), zeros(1, 2), zeros(3, 2), zeros(3, 2), step=1, ids=[0], rows=[0]),
             ValueError, "ids", "rows"),
        case("adam_step compact w/o rows", lambda w: _core.adam_step(
            zeros(3, 2), zeros(1, 2), zeros(3, 2), zeros(3, 2), step=1, compact=True),
             ValueError, "compact", "rows"),
        case("adam_step compact shape", lambda w: _core.adam_step(
            zeros(3, 2), zeros(3, 2), zeros(3, 2), zeros(3, 2), step=1, compact=True, rows=[0]),
             ValueError, "grad"),
        case("adam_step padding_idx w/o ids", lambda w: _core.adam_step(
            zeros(3, 2), zeros(3, 2), zeros(3, 2), zeros(3, 2), step=1, padding_idx=0),
             ValueError, "padding_idx", "ids"),
        case("adam_step ids range", lambda w: _core.adam_step(
            zeros(3, 2), zeros(1, 2), zeros(3, 2), zeros(3, 2), step=1, ids=[3]), IndexError,
             "3"),
        case("adam_step ids grad shape", lambda w: _core.adam_step(
            zeros(3, 2), zeros(2, 2), zeros(3, 2), zeros(3, 2), step=1, ids=[1]), ValueError,
             "grad"),
        case("sgd_step ids padding_idx", lambda w: _core.sgd_step(
            zeros(3, 2), zeros(1, 2), ids=[1], padding_idx=7), ValueError, "padding_idx", "7"),
        case("sgd_step ids 1-D param", lambda w: _core.sgd_step(zeros(3), zeros(1, 3), ids=[0]),
             ValueError, "ids", "2-D"),
        case("Adagrad(in_backward dense)", lambda w: optim.Adagrad(w.e1, in_backward=True),
             ValueError, "in_backward", "lazy"),
        case("RowWiseAdagrad(in_backward str)", lambda w: optim.RowWiseAdagrad(
            w.e1, in_backward="yes"), TypeError, "in_backward"),
        case("RowWiseAdagrad(in_backward Table)", lambda w: optim.RowWiseAdagrad(
            w.t, in_backward=True), TypeError, "in_backward", "Table"),
        case("adagrad_step ids+compact", lambda w: _core.adagrad_step(
            zeros(3, 2), zeros(1, 2), zeros(3, 2), ids=[0], compact=True), ValueError, "ids",
             "compact"),
        case("adagrad_step rowwise ids range", lambda w: _core.adagrad_step(
            zeros(3, 2), zeros(1, 2), zeros(3), rowwise=True, ids=[-4]), IndexError, "-4"),
        case("adagrad_step ids grad shape", lambda w: _core.adagrad_step(
            zeros(3, 2), zeros(2, 2), zeros(3, 2), ids=[1]), ValueError, "grad"),
        case("adagrad_step scale_grad_by_freq w/o ids", lambda w: _core.adagrad_step(
            zeros(3, 2), zeros(3, 2), zeros(3, 2), scale_grad_by_freq=True), ValueError,
             "scale_grad_by_freq", "ids"),
    ]

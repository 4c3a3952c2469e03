"""InputEmbedding: fused E[ids] * scale + P[start:start+seq] and its backward."""
import numpy as np
import pytest

import pyembed
from reference import numeric_grad
from reference_positional import input_embedding as ref

rng = np.random.default_rng(0)


def _positions(inp, start, seq):
    if inp.positional == "learned":
        return inp.position.weight[start:start + seq]
    if inp.positional == "sinusoidal":
        return pyembed.sinusoidal(seq, inp.d_model, start=start, dtype=inp.dtype)
    return None


@pytest.mark.parametrize("positional", ["sinusoidal", "learned", None])
@pytest.mark.parametrize("scale", ["sqrt", 0.5, None])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (0, 4), (2, 0)])
def test_forward_has_the_bits_of_the_numpy_expression(positional, scale, shape):
    inp = pyembed.InputEmbedding(50, 12, max_len=20, positional=positional, scale=scale, seed=1)
    ids = rng.integers(0, 50, shape)
    start = 3
    out = inp(ids, start=start)
    W = inp.token.weight
    s = {"sqrt": np.sqrt(12), 0.5: 0.5, None: 1.0}[scale]
    want = W[ids] * np.float32(s)
    P = _positions(inp, start, shape[-1])
    if P is not None:
        want = want + P
    assert out.shape == shape + (12,) and out.dtype == np.float32
    assert np.array_equal(out, want)


@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
def test_float64_against_reference(positional):
    inp = pyembed.InputEmbedding(30, 9, max_len=16, positional=positional, dtype=np.float64,
                                 scale=2.0, seed=2)
    ids = rng.integers(0, 30, (4, 6))
    out = inp(ids, start=2)
    want = ref(inp.token.weight, ids, 2.0, _positions(inp, 2, 6))
    assert out.dtype == np.float64
    assert np.allclose(out, want, rtol=0, atol=1e-12)


def test_large_streamed_output_and_threads(threads, stores):
    # a large output (streamed with `stores`); every thread count gives the same bits
    inp = pyembed.InputEmbedding(1000, 256, max_len=600, seed=3)
    ids = rng.integers(0, 1000, (8, 600))
    want = inp.token.weight[ids] * np.float32(16.0) + pyembed.sinusoidal(600, 256)
    for t in (1, 2, 4):
        threads(t)
        assert np.array_equal(inp(ids), want)


@pytest.mark.parametrize("positional", ["learned", None])
def test_large_streamed_output_float64(positional, stores):
    inp = pyembed.InputEmbedding(300, 256, max_len=512, positional=positional, scale=0.75,
                                 dtype=np.float64, seed=4)
    ids = rng.integers(0, 300, (4, 512))
    want = inp.token.weight[ids] * 0.75
    if positional:
        want = want + inp.position.weight
    assert np.array_equal(inp(ids), want)


def test_out_argument_and_errors():
    inp = pyembed.InputEmbedding(10, 4, max_len=8, seed=0)
    out = np.empty((2, 3, 4), np.float32)
    assert inp([[1, 2, 3], [4, 5, 6]], out=out) is out
    bad = np.full((2, 3, 5), 9, np.float32)
    with pytest.raises(ValueError, match="shape"):
        inp([[1, 2, 3], [4, 5, 6]], out=bad)
    assert (bad == 9).all()
    with pytest.raises(ValueError, match="overlaps"):
        inp([[1, 2, 3], [4, 5, 6]], out=inp.token.weight[:6].reshape(2, 3, 4))


def test_padding_row_gives_only_the_position():
    inp = pyembed.InputEmbedding(10, 6, max_len=8, padding_idx=0, seed=0)
    out = inp([0, 0, 3])
    assert np.array_equal(out[:2], pyembed.sinusoidal(2, 6))


def test_sinusoidal_positions_grow_beyond_max_len():
    inp = pyembed.InputEmbedding(10, 6, max_len=4, seed=0, scale=None)
    out = inp(np.zeros(10, np.int64), start=20)
    assert np.array_equal(out, inp.token.weight[0] + pyembed.sinusoidal(10, 6, start=20))


def test_backward_accumulates_scaled_token_and_position_grads():
    inp = pyembed.InputEmbedding(20, 5, max_len=12, positional="learned", scale=3.0,
                                 padding_idx=1, seed=4)
    ids = np.array([[1, 2, 2, 7], [7, 7, 3, 1]])
    g = rng.standard_normal((2, 4, 5)).astype(np.float32)
    inp.backward(ids, g, start=5)
    want_tok = np.zeros((20, 5), np.float32)
    np.add.at(want_tok, ids[ids != 1], (g * np.float32(3.0))[ids != 1])
    assert np.array_equal(inp.token.grad, want_tok)
    want_pos = np.zeros((12, 5), np.float32)
    np.add.at(want_pos, np.broadcast_to(np.arange(5, 9), ids.shape), g)
    assert np.array_equal(inp.position.grad, want_pos)
    assert list(inp.token.touched) == [2, 3, 7]
    assert list(inp.position.touched) == [5, 6, 7, 8]
    assert inp.parameters() == [inp.token, inp.position]
    inp.zero_grad()
    assert inp.token.touched.size == 0 and not inp.position.grad.any()


@pytest.mark.parametrize("positional", ["sinusoidal", "learned", None])
def test_gradient_by_finite_differences(positional):
    inp = pyembed.InputEmbedding(8, 4, max_len=6, positional=positional, dtype=np.float64,
                                 scale=1.7, seed=5)
    ids = np.array([[1, 3, 3], [0, 7, 1]])
    R = rng.standard_normal((2, 3, 4))

    def loss():
        return float((inp(ids, start=2) * R).sum())

    inp.backward(ids, R, start=2)
    for p in inp.parameters():
        assert np.allclose(p.grad, numeric_grad(loss, p.weight), atol=1e-7)


def test_backward_errors_leave_tables_unchanged():
    inp = pyembed.InputEmbedding(10, 4, max_len=8, positional="learned", seed=0)
    ids = np.array([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="shape"):
        inp.backward(ids, np.ones((2, 3, 4), np.float32))
    with pytest.raises(IndexError, match="10"):
        inp.backward(np.array([[1, 10], [3, 4]]), np.ones((2, 2, 4), np.float32))
    assert inp.token.touched.size == 0 and inp.position.touched.size == 0
    assert inp.position.grad is None or not inp.position.grad.any()
    with pytest.raises(ValueError, match="max_len"):
        inp.backward(ids, np.ones((2, 2, 4), np.float32), start=7)


def test_forward_errors():
    inp = pyembed.InputEmbedding(10, 4, max_len=8, positional="learned", seed=0)
    with pytest.raises(IndexError, match="-1"):
        inp([1, -1])
    with pytest.raises(ValueError, match="max_len"):
        inp([1, 2, 3], start=6)
    with pytest.raises(ValueError, match="shape"):
        inp(np.zeros((1, 2, 3), np.int64))
    with pytest.raises(TypeError):
        inp([1.5, 2.0])
    with pytest.raises(ValueError, match="start"):
        inp([1], start=-1)


@pytest.mark.parametrize("kwargs,exc", [
    (dict(positional="rope"), ValueError), (dict(scale="log"), ValueError),
    (dict(scale=float("inf")), ValueError), (dict(scale=[1.0]), TypeError),
    (dict(dtype=np.int32), ValueError), (dict(max_len=-1), ValueError),
])
def test_constructor_errors(kwargs, exc):
    with pytest.raises(exc):
        pyembed.InputEmbedding(10, 4, **kwargs)


def test_glue_rejects_non_table_and_bad_positions():
    inp = pyembed.InputEmbedding(10, 4, max_len=8, seed=0)
    with pytest.raises(TypeError, match="Table"):
        pyembed._core.embed_positions(inp.token.weight, [1], None, 1.0)
    with pytest.raises(ValueError, match="positions"):
        pyembed._core.embed_positions(inp.token.table, [1, 2], np.zeros((3, 4), np.float32), 1.0)


# ---- tied output head ------------------------------------------------------------------------

@pytest.mark.parametrize("hshape", [(6,), (3, 6), (2, 4, 6)])
def test_attend_is_h_times_w_transposed(hshape):
    emb = pyembed.Embedding(11, 6, seed=0)
    h = rng.standard_normal(hshape).astype(np.float32)
    logits = emb.attend(h)
    assert logits.shape == hshape[:-1] + (11,)
    assert np.allclose(logits, h @ emb.weight.T, rtol=1e-6, atol=1e-6)


def test_attend_backward_adds_to_the_lookup_gradient():
    emb = pyembed.Embedding(9, 4, padding_idx=0, dtype=np.float64, seed=1)
    ids = np.array([[0, 3], [3, 5]])
    gx = rng.standard_normal((2, 2, 4))
    emb.backward(ids, gx)
    h = rng.standard_normal((2, 2, 4))
    gl = rng.standard_normal((2, 2, 9))
    grad_h = emb.attend_backward(h, gl)
    assert np.allclose(grad_h, gl @ emb.weight)
    want = np.zeros((9, 4))
    np.add.at(want, ids[ids != 0], gx[ids != 0])
    want += gl.reshape(-1, 9).T @ h.reshape(-1, 4)
    assert np.allclose(emb.grad, want, rtol=0, atol=1e-12)
    assert list(emb.touched) == list(range(9))
    emb.zero_grad()
    assert not emb.grad.any()


def test_attend_gradients_by_finite_differences():
    emb = pyembed.Embedding(5, 3, dtype=np.float64, seed=2)
    h = rng.standard_normal((2, 3))
    R = rng.standard_normal((2, 5))
    grad_h = emb.attend_backward(h, R)

    def loss():
        return float((emb.attend(h) * R).sum())

    for arr, grad in ((emb.weight, emb.grad), (h, grad_h)):
        assert np.allclose(grad, numeric_grad(loss, arr), atol=1e-7)


def test_attend_errors_leave_grad_unchanged():
    emb = pyembed.Embedding(5, 3, seed=0)
    with pytest.raises(ValueError, match="shape"):
        emb.attend(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match="grad_logits"):
        emb.attend_backward(np.ones((2, 3), np.float32), np.ones((2, 4), np.float32))
    assert emb.grad is None or not emb.grad.any()
    emb.requires_grad = False
    gh = emb.attend_backward(np.ones((2, 3), np.float32), np.ones((2, 5), np.float32))
    assert gh.shape == (2, 3) and (emb.grad is None or not emb.grad.any())


# ---- one_hot ---------------------------------------------------------------------------------

def test_one_hot_times_table_is_the_lookup():
    W = rng.standard_normal((13, 5)).astype(np.float32)
    ids = rng.integers(0, 13, (3, 4))
    oh = pyembed.one_hot(ids, 13, dtype=np.float32)
    assert oh.shape == (3, 4, 13)
    assert np.array_equal(oh @ W, W[ids])
    assert np.array_equal(pyembed.one_hot(ids, 13) @ W, W[ids].astype(np.float64))


def test_one_hot_matches_torch():
    torch = pytest.importorskip("torch")
    ids = rng.integers(0, 7, (4, 3))
    assert np.array_equal(pyembed.one_hot(ids), torch.nn.functional.one_hot(torch.from_numpy(ids)).numpy())
    assert np.array_equal(pyembed.one_hot(ids, 9),
                          torch.nn.functional.one_hot(torch.from_numpy(ids), 9).numpy())
    assert pyembed.one_hot(np.zeros(0, np.int64), 4).shape == (0, 4)


@pytest.mark.parametrize("ids,n,exc", [([1, 5], 5, IndexError), ([-1], 3, IndexError),
                                       ([1.5], 3, TypeError), ([True], 3, TypeError),
                                       ([1], -2, ValueError), ([1], 2.0, TypeError)])
def test_one_hot_errors(ids, n, exc):
    with pytest.raises(exc):
        pyembed.one_hot(ids, n)


@pytest.mark.parametrize("positional", ["sinusoidal", "learned", None])
def test_pickle_round_trip(positional):
    import pickle

    inp = pyembed.InputEmbedding(20, 6, max_len=10, positional=positional, seed=0)
    ids = np.array([[1, 2, 3]])
    inp(ids, start=12 if positional == "sinusoidal" else 0)   # grows the sinusoidal cache
    back = pickle.loads(pickle.dumps(inp))
    assert np.array_equal(back(ids), inp(ids))
    if positional == "sinusoidal":
        assert back.position.max_len == inp.position.max_len
        assert not back.position.table.flags.writeable
    bag = pyembed.EmbeddingBag(5, 3, "max", seed=1)
    bag([[1, 2]])
    assert np.array_equal(pickle.loads(pickle.dumps(bag))([[1, 2]]), bag([[1, 2]]))


def test_parameters_feed_an_optimizer():
    optim = pytest.importorskip("pyembed.optim")
    inp = pyembed.InputEmbedding(30, 8, max_len=16, positional="learned", seed=0)
    bag = pyembed.EmbeddingBag(20, 8, "mean", seed=1)
    opt = optim.Adam(inp.parameters() + bag.parameters(), lr=1e-2)
    ids = np.array([[1, 2, 3], [4, 5, 6]])
    before = [p.weight.copy() for p in inp.parameters() + bag.parameters()]
    x = inp(ids)
    inp.backward(ids, np.ones_like(x))
    b = bag([[1, 2], [3, 4]])
    bag.backward(np.ones_like(b))
    opt.step()
    after = [p.weight for p in inp.parameters() + bag.parameters()]
    for w0, w1 in zip(before, after):
        assert not np.array_equal(w0, w1)
    assert np.array_equal(before[0][7:], after[0][7:])   # untouched token rows keep their values

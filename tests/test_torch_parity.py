"""Parity with torch.nn.Embedding / F.embedding (CPU): forward, backward with padding_idx and
scale_grad_by_freq, and max_norm renormalisation."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyembed

torch = pytest.importorskip("torch")
F = torch.nn.functional

DTYPES = [(np.float32, torch.float32), (np.float64, torch.float64)]


def torch_embedding(e, **kwargs):
    te = torch.nn.Embedding(e.num_embeddings, e.embedding_dim,
                            dtype=torch.float64 if e.dtype == np.float64 else torch.float32,
                            **kwargs)
    with torch.no_grad():
        te.weight.copy_(torch.from_numpy(e.weight.copy()))
    return te


@pytest.mark.parametrize("np_dt,_", DTYPES)
@pytest.mark.parametrize("id_dtype", [np.int32, np.int64, np.uint8])
def test_forward_equals_f_embedding(np_dt, _, id_dtype):
    e = pyembed.Embedding(200, 33, dtype=np_dt, seed=0)
    ids = np.random.default_rng(0).integers(0, 200, (7, 9)).astype(id_dtype)
    expect = F.embedding(torch.from_numpy(ids.astype(np.int64)), torch.from_numpy(e.weight.copy()))
    np.testing.assert_array_equal(e(ids), expect.numpy())


@given(pad=st.sampled_from([None, 0, 5, -1]), scale=st.booleans(),
       dt=st.sampled_from(DTYPES), kind=st.sampled_from(["uniform", "zipf"]),
       n=st.integers(0, 300), dim=st.sampled_from([1, 8, 70]), seed=st.integers(0, 2**31))
def test_backward_matches_torch(pad, scale, dt, kind, n, dim, seed):
    np_dt, t_dt = dt
    rng = np.random.default_rng(seed)
    rows = 50
    e = pyembed.Embedding(rows, dim, padding_idx=pad, scale_grad_by_freq=scale, dtype=np_dt,
                          seed=seed % 1000)
    te = torch_embedding(e, padding_idx=pad, scale_grad_by_freq=scale)
    ids = (rng.integers(0, rows, n) if kind == "uniform"
           else np.minimum(rng.zipf(1.3, n) - 1, rows - 1)).reshape(-1, 1)
    g = rng.standard_normal((ids.shape[0], 1, dim)).astype(np_dt)
    for _ in range(2):  # accumulation across calls
        te(torch.from_numpy(ids)).backward(torch.from_numpy(g))
        e.backward(ids, g)
    expect = te.weight.grad.numpy()
    tol = 1e-6 if np_dt == np.float32 else 1e-12
    # rtol on the values and an atol for sums that cancel toward zero (torch may sum differently)
    np.testing.assert_allclose(e.grad, expect, rtol=tol, atol=tol * max(1.0, np.abs(expect).max()))
    skip = pad % rows if pad is not None else -1
    np.testing.assert_array_equal(e.touched, np.unique(ids[ids != skip]))


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, float("inf")])
@pytest.mark.parametrize("np_dt,t_dt", DTYPES)
def test_max_norm_matches_torch(norm_type, np_dt, t_dt):
    rng = np.random.default_rng(int(norm_type) if norm_type != float("inf") else 9)
    e = pyembed.Embedding(60, 24, max_norm=1.5, norm_type=norm_type, dtype=np_dt, seed=4)
    te = torch_embedding(e, max_norm=1.5, norm_type=norm_type)
    w0, seen = e.weight.copy(), []
    for _ in range(3):
        ids = np.minimum(rng.zipf(1.3, (5, 11)) - 1, 59)
        with torch.no_grad():
            expect = te(torch.from_numpy(ids)).numpy()
        out = e(ids)
        seen.append(ids.ravel())
        np.testing.assert_allclose(out, expect, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(e.weight, te.weight.detach().numpy(), rtol=1e-6, atol=1e-7)
    rest = np.setdiff1d(np.arange(60), np.concatenate(seen))
    assert rest.size and np.array_equal(e.weight[rest], w0[rest])  # rows never looked up
    assert not np.array_equal(e.weight, w0)  # and max_norm did bite

"""EmbeddingBag against a float64 reference and torch.nn.functional.embedding_bag."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pyembed
from reference import numeric_grad
from reference_positional import embedding_bag as ref

rng = np.random.default_rng(0)
MODES = ("sum", "mean", "max")


def _flat_case(V=20, n=30, nb=7):
    ids = rng.integers(0, V, n)
    offsets = np.sort(rng.integers(0, n + 1, nb))
    offsets[0] = 0
    offsets[2] = offsets[1]          # an empty bag in the middle
    return ids, offsets


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("padding_idx", [None, 3])
def test_forward_flat_offsets(mode, padding_idx):
    bag = pyembed.EmbeddingBag(20, 6, mode, padding_idx=padding_idx, seed=1)
    ids, offsets = _flat_case()
    ids[:4] = 3
    out = bag(ids, offsets)
    want = ref(bag.weight, ids, offsets, mode=mode, padding_idx=padding_idx)
    assert out.shape == (7, 6) and out.dtype == np.float32
    assert np.allclose(out, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_forward_2d_and_include_last_offset(mode):
    bag = pyembed.EmbeddingBag(15, 4, mode, dtype=np.float64, seed=2)
    ids2 = rng.integers(0, 15, (5, 3))
    assert np.allclose(bag(ids2), ref(bag.weight, ids2, mode=mode), atol=1e-12)
    ids = rng.integers(0, 15, 10)
    offs = np.array([0, 2, 2, 7, 9])   # four bags; ids[9] is outside every bag
    got = bag(ids, offs, include_last_offset=True)
    assert got.shape == (4, 4)
    assert np.allclose(got, ref(bag.weight, ids, offs, mode=mode, include_last_offset=True),
                       atol=1e-12)
    assert not got[1].any()            # the empty bag


def test_per_sample_weights():
    bag = pyembed.EmbeddingBag(12, 5, "sum", padding_idx=0, dtype=np.float64, seed=3)
    ids = np.array([[1, 0, 4], [4, 4, 11]])
    psw = rng.standard_normal((2, 3))
    out = bag(ids, per_sample_weights=psw)
    assert np.allclose(out, ref(bag.weight, ids, mode="sum", per_sample_weights=psw,
                                padding_idx=0), atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(V=st.integers(1, 30), n=st.integers(0, 40), nb=st.integers(1, 8),
       mode=st.sampled_from(MODES), pad=st.sampled_from([None, 0]), seed=st.integers(0, 99))
def test_matches_reference_property(V, n, nb, mode, pad, seed):
    r = np.random.default_rng(seed)
    ids = r.integers(0, V, n)
    offsets = np.sort(r.integers(0, n + 1, nb))
    offsets[0] = 0
    bag = pyembed.EmbeddingBag(V, 3, mode, padding_idx=pad, dtype=np.float64, seed=seed)
    assert np.allclose(bag(ids, offsets), ref(bag.weight, ids, offsets, mode=mode,
                                              padding_idx=pad), atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_backward_by_finite_differences(mode):
    bag = pyembed.EmbeddingBag(6, 3, mode, padding_idx=2, dtype=np.float64, seed=4)
    ids = np.array([1, 2, 5, 5, 0, 1, 2, 3])
    offs = np.array([0, 3, 3, 6])
    R = rng.standard_normal((4, 3))
    bag(ids, offs)
    assert bag.backward(R) is None

    def loss():
        return float((bag(ids, offs) * R).sum())

    num = numeric_grad(loss, bag.weight)
    assert np.allclose(bag.grad, num, atol=1e-7)
    assert 2 not in bag.touched


def test_per_sample_weights_gradient_by_finite_differences():
    bag = pyembed.EmbeddingBag(6, 3, "sum", padding_idx=2, dtype=np.float64, seed=5)
    ids = np.array([[1, 2, 5], [5, 0, 1]])
    psw = rng.standard_normal((2, 3))
    R = rng.standard_normal((2, 3))
    bag(ids, per_sample_weights=psw)
    gpsw = bag.backward(R)
    assert gpsw.shape == (2, 3)

    def loss():
        return float((bag(ids, per_sample_weights=psw) * R).sum())

    assert np.allclose(gpsw, numeric_grad(loss, psw), atol=1e-7)
    assert np.allclose(bag.grad, numeric_grad(loss, bag.weight), atol=1e-7)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("padding_idx", [None, 1])
@pytest.mark.parametrize("include_last_offset", [False, True])
def test_torch_parity(mode, padding_idx, include_last_offset):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    bag = pyembed.EmbeddingBag(25, 8, mode, padding_idx=padding_idx, seed=6)
    ids = rng.integers(0, 25, 40)
    ids[5:9] = 1
    offs = np.array([0, 4, 4, 10, 30, 31]) if not include_last_offset else np.array([0, 4, 4, 10, 30, 40])
    W = torch.from_numpy(bag.weight.copy()).requires_grad_(True)
    tout = F.embedding_bag(torch.from_numpy(ids), W, torch.from_numpy(offs), mode=mode,
                           padding_idx=padding_idx, include_last_offset=include_last_offset)
    out = bag(ids, offs, include_last_offset=include_last_offset)
    assert np.allclose(out, tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    g = rng.standard_normal(out.shape).astype(np.float32)
    tout.backward(torch.from_numpy(g))
    bag.backward(g)
    assert np.allclose(bag.grad, W.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_torch_parity_per_sample_weights():
    torch = pytest.importorskip("torch")
    bag = pyembed.EmbeddingBag(25, 8, "sum", seed=7)
    ids = rng.integers(0, 25, (6, 5))
    psw = rng.standard_normal((6, 5)).astype(np.float32)
    W = torch.from_numpy(bag.weight.copy()).requires_grad_(True)
    tp = torch.from_numpy(psw).requires_grad_(True)
    tout = torch.nn.functional.embedding_bag(torch.from_numpy(ids), W, mode="sum",
                                             per_sample_weights=tp)
    out = bag(ids, per_sample_weights=psw)
    assert np.allclose(out, tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    g = rng.standard_normal(out.shape).astype(np.float32)
    tout.backward(torch.from_numpy(g))
    gpsw = bag.backward(g)
    assert np.allclose(gpsw, tp.grad.numpy(), rtol=1e-5, atol=1e-5)
    assert np.allclose(bag.grad, W.grad.numpy(), rtol=1e-5, atol=1e-6)


def _freq_backward_ref(V, dim, ids, offs, g, mode, psw=None, pad=None):
    """float64 reference of the backward with scale_grad_by_freq: position j of bag b adds
    g[b] * own_j / count(ids[j]), own_j = 1, psw[j] or 1 / (non-padding positions of b); the
    count is over the whole input."""
    G = np.zeros((V, dim))
    counts = {}
    for i in ids:  # over the whole input, positions in no bag included (as torch counts)
        counts[i] = counts.get(i, 0) + 1
    for b in range(len(offs) - 1):
        pos = [j for j in range(offs[b], offs[b + 1]) if pad is None or ids[j] != pad]
        for j in pos:
            own = 1.0 / len(pos) if mode == "mean" else (1.0 if psw is None else float(psw[j]))
            G[ids[j]] += g[b] * own / counts[ids[j]]
    return G


@pytest.mark.parametrize("mode", ["sum", "mean"])
@pytest.mark.parametrize("pad", [None, 2])
@pytest.mark.parametrize("weighted", [False, True])
def test_scale_grad_by_freq_matches_reference(mode, pad, weighted):
    if weighted and mode == "mean":
        pytest.skip("per_sample_weights only with sum")
    bag = pyembed.EmbeddingBag(10, 5, mode, padding_idx=pad, scale_grad_by_freq=True,
                               dtype=np.float64, seed=9)
    ids = rng.integers(0, 10, 40)
    ids[:6] = 2
    offs = np.array([0, 6, 6, 15, 33, 38])  # an empty bag; ids[38:] in no bag
    psw = rng.standard_normal(40) if weighted else None
    bag(ids, offs, per_sample_weights=psw, include_last_offset=True)
    g = rng.standard_normal((5, 5))
    bag.backward(g)
    want = _freq_backward_ref(10, 5, ids, offs, g, mode, psw, pad)
    assert np.allclose(bag.grad, want, rtol=1e-12, atol=1e-12)
    assert 2 not in bag.touched if pad == 2 else 2 in bag.touched
    # the forward and the unscaled gradient of per_sample_weights are unaffected
    plain = pyembed.EmbeddingBag(10, 5, mode, padding_idx=pad, dtype=np.float64, seed=9)
    assert np.array_equal(plain(ids, offs, per_sample_weights=psw, include_last_offset=True),
                          bag(ids, offs, per_sample_weights=psw, include_last_offset=True))


def test_scale_grad_by_freq_refused_with_max():
    with pytest.raises(ValueError, match="scale_grad_by_freq"):
        pyembed.EmbeddingBag(5, 2, "max", scale_grad_by_freq=True)
    with pytest.raises(ValueError, match="scale_grad_by_freq"):
        pyembed.EmbeddingBag.from_pretrained(np.ones((5, 2)), mode="max", scale_grad_by_freq=True)


@pytest.mark.parametrize("mode", ["sum", "mean"])
@pytest.mark.parametrize("padding_idx", [None, 1])
@pytest.mark.parametrize("weighted", [False, True])
def test_torch_parity_scale_grad_by_freq(mode, padding_idx, weighted):
    # Against torch's Embedding (whose CPU scale_grad_by_freq is right) reduced over each row of
    # 2-D ids: torch 2.13's own CPU EmbeddingBag divides some rows by another id's count
    # (pytorch#190063, fixed after 2.13), so it cannot be the oracle here.
    torch = pytest.importorskip("torch")
    if weighted and mode == "mean" or padding_idx is not None and mode == "mean":
        pytest.skip("per_sample_weights only with sum; the mean's count skips padding")
    bag = pyembed.EmbeddingBag(25, 8, mode, padding_idx=padding_idx, scale_grad_by_freq=True,
                               seed=10)
    ids = rng.integers(0, 25, (6, 7))
    ids[0, :5] = 1
    ids[1:3, 2:4] = 7
    psw = rng.standard_normal(ids.shape).astype(np.float32) if weighted else None
    W = torch.from_numpy(bag.weight.copy()).requires_grad_(True)
    rows = torch.nn.functional.embedding(torch.from_numpy(ids), W, padding_idx=padding_idx,
                                         scale_grad_by_freq=True)
    if psw is not None:
        rows = rows * torch.from_numpy(psw)[..., None]
    tout = rows.sum(1) if mode == "sum" else rows.mean(1)
    out = bag(ids, per_sample_weights=psw)
    if padding_idx is None:
        assert np.allclose(out, tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    g = rng.standard_normal(out.shape).astype(np.float32)
    tout.backward(torch.from_numpy(g))
    bag.backward(g)
    assert np.allclose(bag.grad, W.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode,scale", [(m, False) for m in MODES] + [("mean", True)])
def test_thread_count_does_not_change_bits(threads, mode, scale):
    bag = pyembed.EmbeddingBag(3000, 96, mode, scale_grad_by_freq=scale, seed=8)
    ids = rng.integers(0, 300, 20000)      # many repeats: rows shared between bags
    offs = np.sort(rng.integers(0, 20000, 500))
    offs[0] = 0
    g = rng.standard_normal((500, 96)).astype(np.float32)
    results = []
    for t in (1, 2, 4):
        threads(t)
        bag.zero_grad()
        out = bag(ids, offs)
        bag.backward(g)
        results.append((out, bag.grad.copy()))
    for out, grad in results[1:]:
        assert np.array_equal(out, results[0][0])
        assert np.array_equal(grad, results[0][1])


def test_errors_change_nothing():
    bag = pyembed.EmbeddingBag(10, 4, "mean", seed=9)
    ids = np.array([1, 2, 3, 4])
    with pytest.raises(ValueError, match="mode='sum'"):
        bag(ids, [0, 2], per_sample_weights=np.ones(4))
    with pytest.raises(ValueError, match="offsets must be None"):
        bag(ids.reshape(2, 2), [0, 1])
    with pytest.raises(ValueError, match="need offsets"):
        bag(ids)
    with pytest.raises(ValueError, match="nondecreasing"):
        bag(ids, [0, 3, 1])
    with pytest.raises(ValueError, match="offsets\\[0\\]"):
        bag(ids, [1, 3])
    with pytest.raises(ValueError, match="beyond"):
        bag(ids, [0, 5], include_last_offset=True)
    with pytest.raises(IndexError, match="10"):
        bag(np.array([1, 10]), [0])
    with pytest.raises(TypeError):
        bag(ids, [0.0, 1.0])
    with pytest.raises(ValueError):
        bag(np.zeros((1, 1, 1), np.int64))
    with pytest.raises(RuntimeError, match="forward"):
        pyembed.EmbeddingBag(10, 4).backward(np.ones((1, 4), np.float32))
    bag(ids, [0, 2])
    with pytest.raises(ValueError, match="grad_output"):
        bag.backward(np.ones((3, 4), np.float32))
    assert bag.grad is None or not bag.grad.any()
    assert bag.touched.size == 0
    with pytest.raises(ValueError, match="mode"):
        pyembed.EmbeddingBag(10, 4, "median")
    s = pyembed.EmbeddingBag(10, 4, "sum")
    with pytest.raises(ValueError, match="per_sample_weights"):
        s(ids.reshape(2, 2), per_sample_weights=np.ones(4))


def test_from_pretrained_and_frozen():
    W = rng.standard_normal((5, 3)).astype(np.float32)
    bag = pyembed.EmbeddingBag.from_pretrained(W, mode="max")
    assert np.array_equal(bag(np.array([[0, 4]])), np.maximum(W[0], W[4])[None])
    bag.backward(np.ones((1, 3), np.float32))   # frozen: no gradient
    assert bag.grad is None
    assert isinstance(bag, pyembed.Embedding) and bag.parameters() == [bag]


def test_concurrent_backward_from_python_threads():
    # the table's lock serialises the writers: small integer gradients sum exactly in any order
    import threading

    bag = pyembed.EmbeddingBag(50, 32, "sum", seed=10)
    ids = rng.integers(0, 50, (64, 8))
    bag(ids)
    g = rng.integers(-3, 4, (64, 32)).astype(np.float32)

    def work():
        for _ in range(20):
            pyembed._core.bag_backward(bag.table, ids.reshape(-1), np.arange(65) * 8, g, None, None, 0, None)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    want = np.zeros((50, 32), np.float64)
    np.add.at(want, ids.reshape(-1), np.repeat(g, 8, axis=0).astype(np.float64))
    assert np.array_equal(bag.grad, (80 * want).astype(np.float32))
    assert list(bag.touched) == sorted(set(ids.reshape(-1).tolist()))


@pytest.mark.parametrize("mode", ["mean", "max"])
def test_per_sample_weights_with_mean_or_max_is_not_implemented_as_torch(mode):
    torch = pytest.importorskip("torch")
    ids = np.array([[1, 2], [3, 4]])
    with pytest.raises(NotImplementedError, match="mode='sum'") as theirs:
        torch.nn.functional.embedding_bag(torch.tensor(ids), torch.zeros(5, 2), mode=mode,
                                          per_sample_weights=torch.ones(2, 2))
    bag = pyembed.EmbeddingBag(5, 2, mode, seed=1)
    before = bag.weight.copy()
    with pytest.raises(NotImplementedError, match=f"mode='sum' \\(got mode='{mode}'\\)"):
        bag(ids, per_sample_weights=np.ones((2, 2), np.float32))
    assert "got mode=" in str(theirs.value)
    max_norm = pyembed.EmbeddingBag(5, 2, mode, max_norm=1e-3, seed=1)
    with pytest.raises(ValueError):  # also a ValueError, what pyembed raised before
        max_norm(ids, per_sample_weights=np.ones((2, 2), np.float32))
    assert np.array_equal(bag.weight, before)
    assert max_norm.table.num_touched == 0 and np.array_equal(max_norm.weight, before)


@pytest.mark.parametrize("table, given", [(np.float32, np.float64), (np.float64, np.float32),
                                          (np.float32, np.int64)])
def test_per_sample_weights_of_another_dtype_raise_as_torch(table, given):
    torch = pytest.importorskip("torch")
    ids = np.array([[1, 2], [3, 4]])
    with pytest.raises(RuntimeError, match="same type"):
        torch.nn.functional.embedding_bag(torch.tensor(ids),
                                          torch.zeros(5, 2, dtype=getattr(torch, np.dtype(
                                              table).name)), mode="sum",
                                          per_sample_weights=torch.ones(2, 2, dtype=getattr(
                                              torch, np.dtype(given).name)))
    bag = pyembed.EmbeddingBag(5, 2, "sum", dtype=table, max_norm=1e-3, seed=1)
    before = bag.weight.copy()
    for exc in (RuntimeError, TypeError):
        with pytest.raises(exc, match=f"dtype {np.dtype(given)} but the table's is "
                                      f"{np.dtype(table)}"):
            bag(ids, per_sample_weights=np.ones((2, 2), given))
    assert np.array_equal(bag.weight, before)  # refused before max_norm renormalised rows
    # a list has no dtype of its own: converted, as before
    out = bag(ids, per_sample_weights=[[1, 2], [0.5, 1]])
    assert out.dtype == table

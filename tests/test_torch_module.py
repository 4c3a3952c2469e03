"""pyembed.torch against torch.nn.Embedding / EmbeddingBag: forward, gradients (dense and sparse),
every option, gradcheck, the gradient buffer's aliasing rules, and 50-step training runs."""
import copy
import doctest
import pickle
import inspect
import subprocess
import sys
import threading

import numpy as np
import pytest
from child import PKG_PARENT

torch = pytest.importorskip("torch", reason="pyembed.torch needs torch (pip install torch)")
pt = pytest.importorskip("pyembed.torch")
F = torch.nn.functional

DTYPES = [torch.float32, torch.float64]


def twin(pe_module, cls, **kwargs):
    """The torch.nn module of the same kind holding a copy of ``pe_module``'s weights."""
    w = pe_module.weight.detach().clone()
    return cls.from_pretrained(w, freeze=False, **kwargs)


def dense(g):
    return g.to_dense() if g.is_sparse else g


def assert_grad_close(got, want):
    """Exact for float64 sums; float32 within a few ulps (torch may sum a row's terms in another
    order)."""
    got, want = dense(got), dense(want)
    tol = 1e-12 if got.dtype == torch.float64 else 2e-6
    torch.testing.assert_close(got, want, rtol=tol, atol=tol * max(1.0, want.abs().max().item()))


# -- import rules ---------------------------------------------------------------------------------
def test_import_pyembed_leaves_torch_alone():
    code = "import sys, pyembed; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PKG_PARENT)


def test_without_torch_the_error_says_how_to_install():
    code = ("import sys; sys.modules['torch'] = None\n"
            "try:\n    import pyembed.torch\nexcept ImportError as e:\n"
            "    assert 'pip install torch' in str(e), e\nelse:\n    raise SystemExit('no error')")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PKG_PARENT)


def test_docstring_example_runs():
    result = doctest.testmod(pt)
    assert result.attempted > 5 and result.failed == 0


# -- the weight is the table ----------------------------------------------------------------------
@pytest.mark.parametrize("cls", [pt.Embedding, pt.EmbeddingBag])
def test_weight_shares_memory_both_ways(cls):
    m = cls(20, 4)
    assert isinstance(m.weight, torch.nn.Parameter)
    with torch.no_grad():
        m.weight[3] = 7.0
    assert (m.pe.weight[3] == 7.0).all()
    m.pe.weight[5] = -2.0
    assert (m.weight[5] == -2.0).all()
    assert m.weight.data_ptr() == m.pe.weight.ctypes.data


@pytest.mark.parametrize("name", ["Embedding", "EmbeddingBag"])
def test_torchs_signatures(name):
    for f in ("__init__", "from_pretrained", "forward"):
        ours = inspect.signature(getattr(getattr(pt, name), f)).parameters
        theirs = inspect.signature(getattr(getattr(torch.nn, name), f)).parameters
        assert [(p.name, p.default) for p in ours.values()] == \
            [(p.name, p.default) for p in theirs.values()]


def test_init_is_torchs():
    torch.manual_seed(3)
    a = pt.Embedding(30, 5, padding_idx=2)
    torch.manual_seed(3)
    b = torch.nn.Embedding(30, 5, padding_idx=2)
    assert torch.equal(a.weight, b.weight)
    assert repr(a) == repr(b)


def test_load_state_dict_writes_into_the_table():
    a, b = pt.Embedding(10, 3), torch.nn.Embedding(10, 3)
    a.load_state_dict(b.state_dict())
    np.testing.assert_array_equal(a.pe.weight, b.weight.detach().numpy())


@pytest.mark.parametrize("how", ["double", "deepcopy", "pickle", "assign"])
def test_replaced_weight_is_shared_again(how):
    m = pt.EmbeddingBag(10, 3, mode="sum")
    if how == "double":
        m = m.double()
    elif how == "deepcopy":
        m = copy.deepcopy(m)
    elif how == "pickle":
        m = pickle.loads(pickle.dumps(m))
    else:
        m.weight = torch.nn.Parameter(torch.arange(30.0).reshape(10, 3))
    want = m.weight.detach().clone()
    out = m(torch.tensor([[1, 2]]))
    torch.testing.assert_close(out, want[1:3].sum(0, keepdim=True), rtol=0, atol=0)
    assert m.weight.data_ptr() == m.pe.weight.ctypes.data
    out.sum().backward()
    assert m.weight.grad.dtype == m.weight.dtype


def test_bad_arguments():
    with pytest.raises(ValueError, match="CPU only"):
        pt.Embedding(3, 2, device="meta")
    with pytest.raises(ValueError, match="float32 or torch.float64"):
        pt.Embedding(3, 2, dtype=torch.float16)
    with pytest.raises(ValueError, match="Shape of weight"):
        pt.Embedding(3, 2, _weight=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="mode"):
        pt.EmbeddingBag(3, 2, mode="median")
    with pytest.raises(NotImplementedError, match="mode='sum'"):
        pt.EmbeddingBag(3, 2, mode="mean")(torch.tensor([[0, 1]]),
                                          per_sample_weights=torch.ones(1, 2))
    with pytest.raises(IndexError):
        pt.Embedding(3, 2)(torch.tensor([3]))


def test_from_pretrained_copies_and_freezes():
    w = torch.arange(12.0).reshape(4, 3)
    for cls in (pt.Embedding, pt.EmbeddingBag):
        m = cls.from_pretrained(w)
        assert torch.equal(m.weight, w) and not m.weight.requires_grad
        assert m.weight.data_ptr() != w.data_ptr()
        assert cls.from_pretrained(w, freeze=False).weight.requires_grad
    ids = torch.tensor([[0, 3]])
    out = pt.Embedding.from_pretrained(w)(ids)
    assert not out.requires_grad and torch.equal(out, F.embedding(ids, w))


# -- Embedding against torch.nn.Embedding ---------------------------------------------------------
EMB_OPTIONS = [
    {},
    {"padding_idx": 0},
    {"padding_idx": -1},
    {"scale_grad_by_freq": True},
    {"scale_grad_by_freq": True, "padding_idx": 4},
    {"max_norm": 1.0},
    {"max_norm": 0.5, "norm_type": 1.0},
    {"max_norm": 2.0, "norm_type": float("inf")},
    {"sparse": True},
    {"sparse": True, "padding_idx": 3, "scale_grad_by_freq": True},
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opts", EMB_OPTIONS)
def test_embedding_matches_torch(opts, dtype):
    torch.manual_seed(0)
    m = pt.Embedding(40, 6, dtype=dtype, **opts)
    # torch has no sparse gradient with scale_grad_by_freq: compare with its dense one
    t = twin(m, torch.nn.Embedding, **{**opts, "sparse": opts.get("sparse", False)
                                       and not opts.get("scale_grad_by_freq", False)})
    rng = np.random.default_rng(1)
    ids = torch.from_numpy(np.minimum(rng.zipf(1.5, (5, 7)) - 1, 39))
    g = torch.randn(5, 7, 6, dtype=dtype)
    w0 = m.weight.detach().clone()
    handed = []
    m.weight.register_hook(handed.append)
    out_m, out_t = m(ids), t(ids)
    if "max_norm" in opts:  # pyembed's norm is summed in double: within float rounding of torch's
        torch.testing.assert_close(out_m, out_t, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(m.weight, t.weight, rtol=1e-6, atol=1e-7)
        assert not torch.equal(m.weight, w0)  # max_norm did bite
    else:
        assert torch.equal(out_m, out_t)
        assert torch.equal(m.weight, t.weight)
    out_m.backward(g)
    out_t.backward(g)
    assert m.weight.grad.is_sparse == m.sparse
    # what the backward hands torch is coalesced (AccumulateGrad then drops the flag, as for
    # any sparse gradient it adopts)
    assert handed[0].is_sparse == m.sparse and (not m.sparse or handed[0].is_coalesced())
    assert_grad_close(m.weight.grad, t.weight.grad)


def test_two_backward_calls_before_a_step_accumulate():
    m = pt.Embedding(50, 4)
    t = twin(m, torch.nn.Embedding)
    ids1, ids2 = torch.tensor([1, 2, 2, 7]), torch.tensor([2, 9])
    kept = []
    for mod in (m, t):
        mod(ids1).sum().backward()
        if mod is m:
            kept.append(m.weight.grad.clone())
            first = m.weight.grad
        (2 * mod(ids2)).sum().backward()
    assert m.weight.grad.data_ptr() != m.pe.grad.ctypes.data  # .grad is torch's own
    assert torch.equal(m.weight.grad, t.weight.grad)
    assert first is m.weight.grad  # accumulated in place, as torch does
    # after a step-and-zero_grad, the next backward does not leak the old rows
    m.weight.grad = None
    t.weight.grad = None
    m(ids2).sum().backward()
    t(ids2).sum().backward()
    assert torch.equal(m.weight.grad, t.weight.grad)
    assert torch.equal(kept[0], dense(F.one_hot(ids1, 50).sum(0)[:, None].expand(50, 4).float()))


def test_module_used_twice_in_one_graph_and_hooks_that_keep_grads():
    m = pt.Embedding(30, 3)
    t = twin(m, torch.nn.Embedding)
    seen = []
    m.weight.register_hook(lambda g: seen.append(g))
    a, b = torch.tensor([1, 2]), torch.tensor([2, 5, 5])
    (m(a).sum() + 3 * m(b).sum()).backward()
    (t(a).sum() + 3 * t(b).sum()).backward()
    assert torch.equal(m.weight.grad, t.weight.grad)
    frozen = [s.clone() for s in seen]
    m(torch.tensor([0, 29])).sum().backward()  # must not overwrite the tensors the hook kept
    for s, f in zip(seen[:2], frozen):
        assert torch.equal(s, f)


@pytest.mark.parametrize("mode", ["max", "sum"])
def test_bag_used_twice_before_backward(mode):
    m = pt.EmbeddingBag(20, 3, mode=mode)
    t = twin(m, torch.nn.EmbeddingBag, mode=mode)
    a, b = torch.tensor([[1, 2, 3]]), torch.tensor([[4, 5], [6, 6]])
    psw = [torch.rand(2, 2, requires_grad=True) if mode == "sum" else None for _ in range(2)]
    if psw[0] is not None:
        psw[1] = psw[0].detach().clone().requires_grad_()
    for mod, w in zip((m, t), psw):
        # the engine runs the later node first: the weighted call is the second, on a scratch
        (2 * mod(b, per_sample_weights=w).sum() + mod(a).sum()).backward()
    assert_grad_close(m.weight.grad, t.weight.grad)
    if mode == "sum":  # the second call ran on a scratch table: its psw gradient read the weights
        assert_grad_close(psw[0].grad, psw[1].grad)


def test_hook_writing_into_the_gradient_in_place():
    # a tensor hook gets the module's reused buffer itself; an in-place write there must not
    # leak into the next gradient
    m = pt.Embedding(10, 2)
    t = twin(m, torch.nn.Embedding)
    for mod in (m, t):
        mod.weight.register_hook(lambda g: g.add_(1.0))
        for ids in ([3], [4, 4]):
            mod.weight.grad = None
            mod(torch.tensor(ids)).sum().backward()
    assert torch.equal(m.weight.grad, t.weight.grad)


def test_ids_changed_after_forward_do_not_change_the_gradient():
    m = pt.EmbeddingBag(10, 2, mode="sum")
    ids = torch.tensor([[1, 2], [3, 4]])
    out = m(ids)
    ids.fill_(0)  # a data loader reusing its batch buffer
    out.sum().backward()
    assert m.weight.grad[0].abs().sum() == 0 and m.weight.grad[1:5].eq(1).all()


def test_backward_from_two_threads_at_once():
    m = pt.EmbeddingBag(500, 16, mode="sum")
    t = twin(m, torch.nn.EmbeddingBag, mode="sum")
    rng = np.random.default_rng(5)
    batches = [torch.from_numpy(rng.integers(0, 500, (64, 10))) for _ in range(2)]
    errors = []

    def run(ids):
        try:
            for _ in range(20):
                m(ids).sum().backward()
        except Exception as e:  # reported below, in the main thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(b,)) for b in batches]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    for b in batches:
        t(b).sum().backward()
    torch.testing.assert_close(m.weight.grad, 20 * t.weight.grad)


def test_frozen_weight_gets_no_gradient():
    m = pt.EmbeddingBag.from_pretrained(torch.ones(5, 2), mode="sum")
    psw = torch.ones(1, 3, requires_grad=True)
    m(torch.tensor([[0, 1, 1]]), per_sample_weights=psw).sum().backward()
    assert m.weight.grad is None and psw.grad is not None


# -- EmbeddingBag against torch.nn.EmbeddingBag ---------------------------------------------------
BAG_OPTIONS = [
    {"mode": "sum"},
    {"mode": "mean"},
    {"mode": "max"},
    {"mode": "sum", "padding_idx": 2},
    {"mode": "mean", "padding_idx": 2},
    {"mode": "max", "padding_idx": 2},
    {"mode": "sum", "include_last_offset": True},
    {"mode": "mean", "include_last_offset": True},
    {"mode": "max", "include_last_offset": True},
    {"mode": "mean", "max_norm": 1.0},
    {"mode": "sum", "sparse": True},
    {"mode": "mean", "sparse": True, "padding_idx": 0},
    {"mode": "sum", "scale_grad_by_freq": True},
    {"mode": "mean", "scale_grad_by_freq": True},
]


def bag_inputs(opts, psw, dtype):
    rng = np.random.default_rng(2)
    ids = torch.from_numpy(np.minimum(rng.zipf(1.4, 23) - 1, 29))
    offsets = torch.tensor([0, 4, 4, 11, 20])  # bag 1 is empty
    if opts.get("include_last_offset"):
        offsets = torch.cat([offsets, torch.tensor([23])])
    w = torch.rand(23, dtype=dtype, requires_grad=True) if psw else None
    return ids, offsets, w


def bag_via_embedding(weight, ids, offsets, mode, psw):
    """A bag (no padding) as torch.nn.Embedding(scale_grad_by_freq=True) rows, weighted, then
    summed or averaged per bag with index_add."""
    rows = F.embedding(ids, weight, scale_grad_by_freq=True)
    if psw is not None:
        rows = rows * psw[:, None]
    bag_of = torch.bucketize(torch.arange(len(ids)), offsets[1:], right=True)
    out = torch.zeros(len(offsets), weight.shape[1], dtype=weight.dtype).index_add(0, bag_of, rows)
    if mode == "mean":
        out = out / torch.bincount(bag_of, minlength=len(offsets)).clamp(min=1)[:, None]
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opts,psw", [(o, False) for o in BAG_OPTIONS] +
                         [(o, True) for o in BAG_OPTIONS if o["mode"] == "sum"])
def test_bag_matches_torch(opts, psw, dtype):
    torch.manual_seed(0)
    m = pt.EmbeddingBag(30, 5, dtype=dtype, **opts)
    t = twin(m, torch.nn.EmbeddingBag, **opts)
    ids, offsets, w = bag_inputs(opts, psw, dtype)
    w2 = None if w is None else w.detach().clone().requires_grad_()
    handed = []
    m.weight.register_hook(handed.append)
    out_m = m(ids, offsets, w)
    if opts.get("scale_grad_by_freq"):
        # torch 2.13's CPU bag kernel divides some rows by another id's count (pytorch#190063);
        # the documented semantics are nn.Embedding's scale_grad_by_freq, then the bag's sum/mean
        out_t = bag_via_embedding(t.weight, ids, offsets, opts["mode"], w2)
    else:
        out_t = t(ids, offsets, w2)
    torch.testing.assert_close(out_m, out_t, rtol=0, atol=0 if opts["mode"] == "max" else
                               (1e-12 if dtype == torch.float64 else 1e-6))
    if "max_norm" in opts:  # the norm in double, see test_embedding_matches_torch
        torch.testing.assert_close(m.weight, t.weight, rtol=1e-6, atol=1e-7)
    else:
        assert torch.equal(m.weight, t.weight)
    g = torch.randn(out_m.shape, dtype=dtype)
    out_m.backward(g)
    out_t.backward(g)
    assert handed[0].is_sparse == bool(opts.get("sparse"))
    if opts.get("sparse"):
        assert handed[0].is_coalesced()
    assert_grad_close(m.weight.grad, t.weight.grad)
    if psw:
        assert_grad_close(w.grad, w2.grad)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_bag_2d_input_matches_torch(mode):
    m = pt.EmbeddingBag(30, 4, mode=mode, padding_idx=1)
    t = twin(m, torch.nn.EmbeddingBag, mode=mode, padding_idx=1)
    ids = torch.tensor([[1, 2, 3], [1, 1, 1], [5, 5, 7]])  # the second bag is all padding
    out_m, out_t = m(ids), t(ids)
    torch.testing.assert_close(out_m, out_t, rtol=1e-6, atol=1e-6)
    out_m.sum().backward()
    out_t.sum().backward()
    assert_grad_close(m.weight.grad, t.weight.grad)


# -- gradcheck in float64 -------------------------------------------------------------------------
# (padding_idx and scale_grad_by_freq are not the derivative by design; gradcheck wants the
# dense layout, so sparse=True is checked against torch's sparse gradient above instead)
def test_gradcheck_embedding():
    m = pt.Embedding(8, 3, dtype=torch.float64)
    ids = torch.tensor([[1, 2, 2], [7, 1, 0]])
    assert torch.autograd.gradcheck(lambda w: m(ids), (m.weight,))


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_gradcheck_bag(mode):
    m = pt.EmbeddingBag(8, 3, mode=mode, dtype=torch.float64, padding_idx=6)
    ids = torch.tensor([1, 2, 2, 7, 6, 0, 5])
    offsets = torch.tensor([0, 3, 3])
    assert torch.autograd.gradcheck(lambda w: m(ids, offsets), (m.weight,))
    if mode == "sum":
        psw = torch.rand(7, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda w, p: m(ids, offsets, p), (m.weight, psw))


# -- 50 training steps: torch.nn vs pyembed.torch -------------------------------------------------
def train(emb_cls, bag, optim, steps=50):
    torch.manual_seed(0)
    sparse = optim in ("sparseadam", "sgd-sparse")
    kw = {"mode": "mean"} if bag else {}
    emb = emb_cls(200, 8, sparse=sparse, **kw)
    head = torch.nn.Linear(8, 3)
    if optim == "adam":
        opts = [torch.optim.Adam([emb.weight, *head.parameters()], lr=1e-2)]
    elif optim == "sparseadam":
        opts = [torch.optim.SparseAdam([emb.weight], lr=1e-2),
                torch.optim.Adam(head.parameters(), lr=1e-2)]
    else:
        opts = [torch.optim.SGD([emb.weight, *head.parameters()], lr=0.2, momentum=0.5)]
    rng = np.random.default_rng(0)
    for _ in range(steps):
        ids = torch.from_numpy(np.minimum(rng.zipf(1.3, (16, 6)) - 1, 199))
        y = torch.from_numpy(rng.integers(0, 3, 16))
        h = emb(ids) if bag else emb(ids).mean(1)
        loss = F.cross_entropy(head(h), y)
        for o in opts:
            o.zero_grad()
        loss.backward()
        for o in opts:
            o.step()
    return emb.weight.detach().clone(), [p.detach().clone() for p in head.parameters()]


# Which runs match bit for bit (the same arithmetic in the same order) and which only within float32
# rounding (found by running them: 50 steps stay within 1e-5 of torch's weights).
TRAIN_CASES = [
    # Embedding, dense: torch's embedding_dense_backward adds each row's terms in id order, as
    # pyembed's scatter does; everything after is the same torch code.
    (False, "adam", "bitwise"),
    (False, "sgd", "bitwise"),
    # sparse: torch hands over the uncoalesced rows (one per id) and SparseAdam coalesces them,
    # summing duplicates in its own order; SGD's momentum buffer keeps them uncoalesced and adds
    # each duplicate to the weight separately. Ours arrive summed: the same values to rounding.
    (False, "sparseadam", "rounding"),
    (False, "sgd-sparse", "rounding"),
    # EmbeddingBag(mode="mean"): torch's bag backward scales and adds a row's terms in its own
    # order (and the forward sums a bag in another order than pyembed's kernel).
    (True, "adam", "rounding"),
    (True, "sgd", "rounding"),
    (True, "sparseadam", "rounding"),
    (True, "sgd-sparse", "rounding"),
]


@pytest.mark.parametrize("bag,optim,expect", TRAIN_CASES)
def test_training_ends_with_the_same_weights(bag, optim, expect):
    ref = train(torch.nn.EmbeddingBag if bag else torch.nn.Embedding, bag, optim)
    got = train(pt.EmbeddingBag if bag else pt.Embedding, bag, optim)
    for a, b in zip([got[0], *got[1]], [ref[0], *ref[1]]):
        if expect == "bitwise":
            assert torch.equal(a, b)
        else:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)

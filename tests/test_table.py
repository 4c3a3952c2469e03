"""pyembed._core.Table against the NumPy reference: lookup, backward, zero_grad, touched, out=,
weight/grad views, pickle, repr, and every error path (clear exception, table unchanged)."""
import gc
import pickle
import re
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import reference as ref
from pyembed import Table, _core

FLOATS = (np.float32, np.float64)


def make_table(rows, dim, dtype=np.float32, seed=0):
    t = Table(rows, dim, dtype)
    t.weight = np.random.default_rng(seed).standard_normal((rows, dim))
    return t


snapshot = ref.snapshot


def assert_unchanged(t, snap):
    ref.assert_unchanged(t, snap, zero_grad_may_appear=True)


def draw_ids(rng, kind, shape, rows, dtype=np.int64):
    """ids of `shape` in [0, rows) drawn uniform, with heavy duplicates, or Zipf (hot rows)."""
    hi = min(rows, np.iinfo(dtype).max + 1)
    n = int(np.prod(shape))
    if kind == "uniform":
        v = rng.integers(0, hi, n)
    elif kind == "dups":
        v = rng.choice(rng.integers(0, hi, 3), n)
    else:
        v = np.minimum(rng.zipf(1.3, n) - 1, hi - 1)
    return v.astype(dtype).reshape(shape)


# ---- forward -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ref.INT_DTYPES)
def test_lookup_every_id_dtype(dtype):
    t = make_table(100, 7)
    ids = np.array([[0, 99, 5], [5, 1, 42]], dtype)
    out = t.lookup(ids)
    assert out.shape == (2, 3, 7) and out.dtype == np.float32
    np.testing.assert_array_equal(out, ref.gather(t.weight, ids))


@given(shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
       dtype=st.sampled_from(ref.INT_DTYPES), fdtype=st.sampled_from(FLOATS),
       dim=st.integers(0, 40), seed=st.integers(0, 2**32 - 1))
def test_lookup_matches_take(shape, dtype, fdtype, dim, seed):
    rng = np.random.default_rng(seed)
    t = make_table(120, dim, fdtype, seed)
    ids = draw_ids(rng, "uniform", shape, 120, dtype)
    out = t.lookup(ids)
    assert out.shape == shape + (dim,) and out.dtype == fdtype
    np.testing.assert_array_equal(ref.bits(out), ref.bits(ref.gather(t.weight, ids)))


@pytest.mark.parametrize("view", ["step", "transpose", "reversed", "fortran", "byteswap",
                                  "byteswap_u64", "unaligned_offset"])
def test_lookup_strided_ids(view):
    t = make_table(50, 5)
    base = np.random.default_rng(1).integers(0, 50, (6, 8))
    ids = {
        "step": base[::2, 1::3],
        "transpose": base.T,
        "reversed": base[::-1, ::-1],
        "fortran": np.asfortranarray(base),
        "byteswap": base.astype(">i4"),
        "byteswap_u64": base.astype(">u8"),
        "unaligned_offset": np.frombuffer(b"\0" + base.astype("<i8").tobytes(), "<i8",
                                          offset=1).reshape(6, 8),
    }[view]
    np.testing.assert_array_equal(t.lookup(ids), ref.gather(t.weight, np.array(ids)))


def test_lookup_python_lists_scalars_and_empty():
    t = make_table(10, 3)
    np.testing.assert_array_equal(t.lookup([[1, 2], [3, 9]]), t.weight[[[1, 2], [3, 9]]])
    np.testing.assert_array_equal(t.lookup(4), t.weight[4])
    np.testing.assert_array_equal(t.lookup(np.uint16(4)), t.weight[4])
    assert t.lookup(np.array(4)).shape == (3,)
    assert t.lookup([]).shape == (0, 3)
    assert t.lookup(np.zeros((2, 0, 3), np.int8)).shape == (2, 0, 3, 3)
    assert Table(0, 4).lookup([]).shape == (0, 4)


def test_lookup_returns_a_copy():
    t = make_table(10, 3)
    out = t.lookup([1])
    out[:] = 7
    assert not (t.weight[1] == 7).any()


def test_lookup_out():
    t = make_table(20, 6)
    ids = np.array([[3, 1], [19, 3]])
    out = np.full((2, 2, 6), np.nan, np.float32)
    res = t.lookup(ids, out=out)
    assert res is out
    np.testing.assert_array_equal(out, t.weight[ids])
    t64 = make_table(20, 6, np.float64)
    out64 = np.empty((2, 2, 6))
    assert t64.lookup(ids, out64) is out64
    np.testing.assert_array_equal(out64, t64.weight[ids])


@pytest.mark.parametrize("case", ["dtype", "shape", "ndim", "noncontig", "fortran", "readonly",
                                  "byteswapped", "overlap", "overlap_partial"])
def test_lookup_bad_out_raises_and_writes_nothing(case):
    t = make_table(20, 6)
    ids = np.array([[3, 1], [19, 3]])
    if case == "dtype":
        out = np.zeros((2, 2, 6), np.float64)
    elif case == "shape":
        out = np.zeros((2, 2, 5), np.float32)
    elif case == "ndim":
        out = np.zeros((4, 6), np.float32)
    elif case == "noncontig":
        out = np.zeros((2, 2, 12), np.float32)[..., ::2]
    elif case == "fortran":
        out = np.zeros((6, 2, 2), np.float32).T
    elif case == "readonly":
        out = np.zeros((2, 2, 6), np.float32)
        out.flags.writeable = False
    elif case == "byteswapped":
        out = np.zeros((2, 2, 6), ">f4")
    elif case == "overlap":
        out = t.weight[:4].reshape(2, 2, 6)
    else:
        out = t.weight.reshape(-1)[3:27].reshape(2, 2, 6)
    before = out.copy()
    snap = snapshot(t)
    pattern = {"shape": r"\(2, 2, 5\).*\(2, 2, 6\)", "ndim": r"\(4, 6\).*\(2, 2, 6\)",
               "dtype": "float64", "readonly": "read-only", "overlap": "overlap",
               "overlap_partial": "overlap", "noncontig": "contiguous",
               "fortran": "contiguous", "byteswapped": "dtype"}[case]
    with pytest.raises(ValueError, match=pattern):
        t.lookup(ids, out=out)
    np.testing.assert_array_equal(out, before)
    assert_unchanged(t, snap)


def test_lookup_out_not_an_array():
    t = make_table(5, 2)
    with pytest.raises(TypeError, match="out"):
        t.lookup([1], out=[[0.0, 0.0]])


# ---- backward, touched, zero_grad ------------------------------------------------------------

@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=12),
       kind=st.sampled_from(["uniform", "dups", "zipf"]), fdtype=st.sampled_from(FLOATS),
       dim=st.sampled_from([0, 1, 3, 16, 65]), rows=st.integers(1, 300),
       pad=st.one_of(st.none(), st.integers(-300, 299)), scale=st.booleans(),
       id_dtype=st.sampled_from(ref.INT_DTYPES), gcast=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_backward_bitwise_equals_reference(shape, kind, fdtype, dim, rows, pad, scale, id_dtype,
                                           gcast, seed):
    rng = np.random.default_rng(seed)
    if pad is not None and not -rows <= pad < rows:
        pad = pad % rows
    t = Table(rows, dim, fdtype)
    grad = np.zeros((rows, dim), fdtype)
    touched = np.zeros(0, np.int64)
    for _ in range(2):  # two calls: accumulation, and the touched list grows
        ids = draw_ids(rng, kind, shape, rows, id_dtype)
        g = rng.standard_normal(shape + (dim,))
        g = g if gcast else g.astype(fdtype)  # float64 grads into a float32 table are cast first
        t.backward(ids, g, pad, scale)
        grad = ref.backward(grad, ids, g, pad, scale)
        touched = ref.touched_after(touched, ids, pad, rows)
        assert t.grad.dtype == fdtype
        np.testing.assert_array_equal(ref.bits(t.grad), ref.bits(grad))
        np.testing.assert_array_equal(t.touched, touched)
        assert t.num_touched == touched.size
    t.zero_grad()
    assert not t.grad.any() and t.touched.size == 0 and t.num_touched == 0


def test_backward_strided_and_integer_grads():
    t = Table(10, 4)
    ids = np.array([[1, 2, 1], [9, 9, 0]])[:, ::2].T  # non-contiguous
    big = np.arange(2 * 2 * 8, dtype=np.float64).reshape(2, 2, 8)
    g = big[..., ::2]  # strided grad_output
    t.backward(ids, g)
    np.testing.assert_array_equal(t.grad, ref.backward(np.zeros((10, 4), np.float32), ids, g))
    t2 = Table(10, 4)
    t2.backward([[1, 2]], np.ones((1, 2, 4), np.int64))
    np.testing.assert_array_equal(t2.grad[[1, 2]], np.ones((2, 4)))


def test_grad_is_none_until_first_backward_and_touched_empty():
    t = Table(10, 4)
    assert t.grad is None
    assert t.touched.dtype == np.int64 and t.touched.shape == (0,)
    t.zero_grad()  # harmless before any backward
    assert t.grad is None
    t.backward([], np.zeros((0, 4), np.float32))
    assert t.grad.shape == (10, 4) and not t.grad.any() and t.touched.size == 0


def test_touched_sorted_unique_across_calls():
    t = Table(1000, 2)
    rng = np.random.default_rng(5)
    seen = set()
    for _ in range(5):
        ids = rng.integers(0, 1000, 50)
        seen.update(ids.tolist())
        t.backward(ids, np.ones((50, 2), np.float32))
        tt = t.touched
        np.testing.assert_array_equal(tt, sorted(seen))
        assert tt.dtype == np.int64
        assert np.all(np.diff(tt) > 0)


def test_padding_row_gets_no_grad_and_is_not_touched():
    t = Table(6, 3)
    t.backward([[5, 1, 5]], np.ones((1, 3, 3), np.float32), padding_idx=-1)
    np.testing.assert_array_equal(t.touched, [1])
    assert not t.grad[5].any()
    t.backward([5, 2], np.ones((2, 3), np.float32), padding_idx=5)
    np.testing.assert_array_equal(t.touched, [1, 2])


def test_scale_grad_by_freq_values():
    t = Table(5, 2, np.float64)
    t.backward([1, 1, 1, 2], np.ones((4, 2)), scale_grad_by_freq=True)
    np.testing.assert_allclose(t.grad[1], [1.0, 1.0])
    np.testing.assert_array_equal(t.grad[2], [1.0, 1.0])


def test_zero_grad_clears_only_touched_rows():
    t = Table(20, 3)
    t.backward([2, 7, 7], np.ones((3, 3), np.float32))
    g = t.grad
    # grad is read-only: a row written by hand would not be "touched", and the kernels rely on
    # untouched rows being zero (issue 10 §6); a dense gradient goes in through add_dense_grad
    assert not g.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        g[11] = 5.0
    t.zero_grad()
    assert not g[[2, 7]].any()
    assert not t.grad.any() and t.touched.size == 0
    t.backward([3], np.full((1, 3), 2.0, np.float32))  # and accumulation starts from zero
    np.testing.assert_array_equal(t.grad[3], [2, 2, 2])
    np.testing.assert_array_equal(t.touched, [3])


def test_mark_all_touched():
    t = Table(4, 2)
    t.mark_all_touched()
    np.testing.assert_array_equal(t.touched, [0, 1, 2, 3])
    t.add_dense_grad(np.ones((4, 2)))  # grad is read-only: a dense gradient comes in this way
    t.zero_grad()
    assert not t.grad.any() and t.touched.size == 0


# ---- weight / grad views -------------------------------------------------------------------

def test_weight_view_shares_memory():
    t = Table(4, 3)
    w = t.weight
    w[2] = [1, 2, 3]
    np.testing.assert_array_equal(t.lookup([2]), [[1, 2, 3]])
    assert w.flags.c_contiguous and w.flags.writeable and w.ctypes.data % 64 == 0
    assert np.shares_memory(w, t.weight)
    t.backward([0], np.ones((1, 3), np.float32))
    g = t.grad
    assert g.ctypes.data % 64 == 0 and not np.shares_memory(g, w)
    t.backward([0], np.ones((1, 3), np.float32))  # the grad view sees later backwards
    np.testing.assert_array_equal(g[0], [2, 2, 2])


def test_views_keep_table_alive():
    t = Table(8, 4)
    t.weight = np.arange(32, dtype=np.float32).reshape(8, 4)
    t.backward([1], np.ones((1, 4), np.float32))
    r = weakref.ref(t)
    w, g = t.weight, t.grad
    del t
    gc.collect()
    assert r() is not None
    np.testing.assert_array_equal(w, np.arange(32).reshape(8, 4))
    np.testing.assert_array_equal(g[1], [1, 1, 1, 1])
    del w
    gc.collect()
    assert r() is not None
    del g
    gc.collect()
    assert r() is None


def test_weight_setter_copies():
    t = Table(3, 2)
    src = np.arange(6, dtype=np.float64).reshape(3, 2) + 0.1
    t.weight = src
    np.testing.assert_array_equal(t.weight, src.astype(np.float32))
    assert not np.shares_memory(t.weight, src)
    src[:] = 0
    assert t.weight[2, 1] == np.float32(5.1)
    t.weight = [[1, 2], [3, 4], [5, 6]]
    np.testing.assert_array_equal(t.weight, [[1, 2], [3, 4], [5, 6]])
    t.weight = t.weight[::-1]  # a view of itself
    np.testing.assert_array_equal(t.weight, [[5, 6], [3, 4], [1, 2]])
    t.weight = np.asfortranarray(t.weight[:, ::-1])
    np.testing.assert_array_equal(t.weight, [[6, 5], [4, 3], [2, 1]])


@pytest.mark.parametrize("value", [np.zeros((3, 3)), np.zeros((2, 2)), np.zeros(6), "abc",
                                   [["a", "b", "c"]] * 2, np.zeros((2, 3), complex), None])
def test_weight_setter_rejects(value):
    t = make_table(2, 3)
    snap = snapshot(t)
    with pytest.raises(ValueError):
        t.weight = value
    assert_unchanged(t, snap)


def test_weight_cannot_be_deleted_and_grad_is_read_only_attribute():
    t = Table(2, 2)
    with pytest.raises(AttributeError):
        del t.weight
    with pytest.raises(AttributeError):
        t.grad = np.zeros((2, 2))


# ---- constructor, repr, pickle ----------------------------------------------------------------

def test_constructor_and_attributes():
    t = Table(7, 3, np.float64)
    assert t.shape == (7, 3) and t.num_embeddings == 7 and t.embedding_dim == 3
    assert t.dtype == np.float64 and t.weight.dtype == np.float64 and not t.weight.any()
    assert Table(7, 3).dtype == np.float32
    assert Table(7, 3, "float64").dtype == np.float64
    with pytest.raises(ValueError):
        Table(-1, 3)
    with pytest.raises(ValueError, match="float32 or float64"):
        Table(3, 3, np.int32)
    with pytest.raises(OverflowError):
        Table(2**62, 2**62)


def test_repr():
    assert repr(Table(10, 4)) == \
        "Table(num_embeddings=10, embedding_dim=4, dtype=float32, parameters=40)"
    assert repr(Table(3, 5, np.float64)) == \
        "Table(num_embeddings=3, embedding_dim=5, dtype=float64, parameters=15)"


@pytest.mark.parametrize("fdtype", FLOATS)
def test_pickle_round_trip(fdtype):
    t = make_table(30, 5, fdtype)
    t2 = pickle.loads(pickle.dumps(t))
    assert t2.grad is None and t2.touched.size == 0 and t2.dtype == fdtype
    np.testing.assert_array_equal(ref.bits(t2.weight), ref.bits(t.weight))
    t.backward([29, 3, 3, 10], np.random.default_rng(0).standard_normal((4, 5)))
    t3 = pickle.loads(pickle.dumps(t, protocol=pickle.HIGHEST_PROTOCOL))
    assert type(t3) is Table
    np.testing.assert_array_equal(ref.bits(t3.grad), ref.bits(t.grad))
    np.testing.assert_array_equal(t3.touched, [3, 10, 29])
    assert not np.shares_memory(t3.weight, t.weight)
    t3.backward([4], np.ones((1, 5)))  # the unpickled touched list is live
    np.testing.assert_array_equal(t3.touched, [3, 4, 10, 29])
    t3.zero_grad()
    assert not t3.grad.any() and t3.touched.size == 0


# ---- errors: clear exception, nothing changed ------------------------------------------------

def _used_table():
    t = make_table(10, 4)
    t.backward([1, 3, 3], np.ones((3, 4), np.float32))
    return t


@pytest.mark.parametrize("call", ["lookup", "backward", "renorm"])
@pytest.mark.parametrize("ids,value,pos", [
    (np.array([1, 10, 3]), "10", r"ids\[1\]"),
    (np.array([[1, 2], [3, -1]], np.int8), "-1", r"ids\[1, 1\]"),
    (np.array([0, 11, -5]), "11", r"ids\[1\]"),            # the first bad one is named
    (np.array([2**63 + 5], np.uint64), str(2**63 + 5), r"ids\[0\]"),
    (np.array([3, 2**64 - 1], np.uint64), str(2**64 - 1), r"ids\[1\]"),
    (np.array(12), "12", r"ids\[\(\)\]"),
    ([[0, 1], [2, 99]], "99", r"ids\[1, 1\]"),
    # Python ints past int64 (NumPy makes object or float64 arrays of them)
    ([1, 2**64], str(2**64), r"ids\[1\]"),
    ([1, 2**63], str(2**63), r"ids\[1\]"),
    ([[0, 1], [2, -2**63 - 1]], str(-2**63 - 1), r"ids\[1, 1\]"),
    (np.array([[1, 2, 3], [4, 5, 10]]).T, "10", r"ids\[2, 1\]"),  # position in the caller's shape
])
def test_bad_ids_index_error(call, ids, value, pos):
    t = _used_table()
    snap = snapshot(t)
    with pytest.raises(IndexError, match=rf"index {re.escape(value)} .*{pos}"):
        if call == "lookup":
            t.lookup(ids)
        elif call == "backward":
            t.backward(ids, np.ones(np.shape(ids) + (4,), np.float32))
        else:
            t.renorm(ids, 0.1)
    assert_unchanged(t, snap)


@pytest.mark.parametrize("ids", [np.array([1.0, 2.0]), [1.5], np.array([True, False]), [True],
                                 np.array(["1"]), np.array([1 + 0j]), np.array([None, 1]),
                                 [[1, 2], [3]], "12", [None, 2**64], [1.5, 2**64],
                                 np.array([1, 2**64], dtype=object)])
def test_non_integer_ids_type_error(ids):
    t = _used_table()
    snap = snapshot(t)
    with pytest.raises(TypeError, match="ids"):
        t.lookup(ids)
    with pytest.raises(TypeError, match="ids"):
        t.backward(ids, np.ones((2, 4), np.float32))
    assert_unchanged(t, snap)


def test_grad_output_wrong_shape_names_both_shapes():
    t = _used_table()
    snap = snapshot(t)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        t.backward([1, 2], np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(4,\).*\(2, 4\)"):
        t.backward([1, 2], np.ones(4, np.float32))
    with pytest.raises(ValueError, match=r"\(1, 2, 4\).*\(2, 4\)"):
        t.backward([1, 2], np.ones((1, 2, 4), np.float32))
    assert_unchanged(t, snap)


@pytest.mark.parametrize("g", [np.ones((2, 4), complex), np.array([["a"] * 4] * 2),
                               np.ones((2, 4), object), np.ones((2, 4), bool)])
def test_grad_output_bad_dtype_type_error(g):
    t = _used_table()
    snap = snapshot(t)
    with pytest.raises(TypeError, match="grad_output"):
        t.backward([1, 2], g)
    assert_unchanged(t, snap)


def test_bad_padding_idx_and_renorm_args():
    t = _used_table()
    snap = snapshot(t)
    with pytest.raises(ValueError, match="padding_idx"):
        t.backward([1], np.ones((1, 4), np.float32), padding_idx=10)
    with pytest.raises(ValueError, match="padding_idx"):
        t.backward([1], np.ones((1, 4), np.float32), padding_idx=-11)
    with pytest.raises(TypeError):
        t.backward([1], np.ones((1, 4), np.float32), padding_idx=1.5)
    with pytest.raises(ValueError, match="max_norm"):
        t.renorm([1], -1.0)
    with pytest.raises(ValueError, match="norm_type"):
        t.renorm([1], 1.0, 0.0)
    assert_unchanged(t, snap)


def test_error_on_fresh_table_leaves_grad_none():
    t = Table(5, 2)
    with pytest.raises(IndexError):
        t.backward([7], np.ones((1, 2)))
    with pytest.raises(ValueError):
        t.backward([1], np.ones((1, 3)))
    assert t.grad is None and t.touched.size == 0


def test_lookup_with_max_norm():
    t = make_table(10, 4)
    expect = ref.renorm(t.weight, [2, 2, 7], 0.5, 2.0)
    out = t.lookup([2, 2, 7], max_norm=0.5)
    np.testing.assert_array_equal(ref.bits(t.weight), ref.bits(expect))
    np.testing.assert_array_equal(out, expect[[2, 2, 7]])
    expect = ref.renorm(t.weight, [[1, 3]], 0.25, float("inf"))
    t.lookup([[1, 3]], None, 0.25, float("inf"))
    np.testing.assert_array_equal(ref.bits(t.weight), ref.bits(expect))


@pytest.mark.parametrize("kwargs,exc", [
    (dict(out=np.empty((2, 4))), ValueError), (dict(out=np.empty((2, 3), np.float32)), ValueError),
    (dict(max_norm=-1.0), ValueError), (dict(max_norm=float("nan")), ValueError),
    (dict(max_norm=1.0, norm_type=0.0), ValueError), (dict(max_norm="a"), TypeError),
    (dict(ids=[1, 10]), IndexError), (dict(ids=[1.0, 2.0]), TypeError),
])
def test_lookup_with_max_norm_errors_change_nothing(kwargs, exc):
    t = _used_table()
    snap = snapshot(t)
    args = dict(ids=[1, 2], max_norm=0.01)
    args.update(kwargs)
    with pytest.raises(exc):
        t.lookup(args.pop("ids"), **args)
    assert_unchanged(t, snap)


# ---- inputs that alias the buffers a call writes ---------------------------------------------
# An integer view of out/grad/weight used as ids would be rewritten mid-call (ids out of range:
# a crash before the fix); grad_output aliasing grad must be read as it was (np.add.at).

def test_ids_aliasing_out():
    t = Table(4, 2, np.float64)
    t.weight = np.ones((4, 2))
    out = np.zeros((1000, 2))
    ids = out.reshape(-1)[:1000].view(np.int64)  # all 0; rows of 1.0 written over them
    t.lookup(ids, out=out)
    assert (out == 1.0).all()


@pytest.mark.parametrize("n,dim", [(2000, 2), (40000, 8)])  # serial and parallel-sized
def test_ids_aliasing_grad(n, dim):
    t = Table(n, dim, np.float64)
    t.backward([0], np.zeros((1, dim)))
    ids = t.grad.reshape(-1)[:n].view(np.int64)  # all 0 when read
    t.backward(ids, np.ones((n, dim)))
    np.testing.assert_array_equal(t.grad[0], np.full(dim, float(n)))
    assert not t.grad[1:].any()
    np.testing.assert_array_equal(t.touched, [0])


def test_grad_output_aliasing_grad_reads_the_old_values():
    t = Table(4, 2)
    t.backward([0, 1, 2, 3], np.arange(8, dtype=np.float32).reshape(4, 2))
    expect = t.grad.copy()
    np.add.at(expect, [1, 0, 1], t.grad[:3].copy())
    t.backward([1, 0, 1], t.grad[:3])
    np.testing.assert_array_equal(t.grad, expect)


def test_ids_aliasing_weight_with_max_norm():
    t = Table(3, 2, np.float64)
    w = t.weight
    w[0] = 0.5
    w.reshape(-1)[2:4].view(np.int64)[:] = 1  # row 1 holds the bits of ids [1, 1]
    ids = w.reshape(-1)[2:4].view(np.int64)
    out = t.lookup(ids, max_norm=0.0, norm_type=1.0)  # row 1 (1-norm > 0) is scaled to 0
    assert not out.any()
    np.testing.assert_array_equal(t.weight[0], [0.5, 0.5])
    assert not t.weight[1].any()


def test_scale_grad_refuses_a_view_of_the_grad_as_another_dtype():
    # the table's own grad is written under its lock; a float32 view of a float64 grad has the
    # same address and byte count but is not the grad: it must stay read-only (it was scaled as
    # float32 words, corrupting the gradient)
    t = _core.Table(3, 2, np.float64)
    t.backward(np.array([0]), np.ones((1, 2)))
    with pytest.raises(ValueError, match="read-only"):
        _core.scale_grad(t.grad.view(np.float32), 0.5, table=t)
    assert t.grad[0].tolist() == [1.0, 1.0]
    _core.scale_grad(t.grad, 0.5, table=t)
    assert t.grad[0].tolist() == [0.5, 0.5]

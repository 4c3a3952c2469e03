"""10,000 calls of every core entry point, and of its error paths, do not leak references to the
inputs nor grow traced (tracemalloc) or resident memory."""
import gc
import os
import sys
import tracemalloc

import numpy as np
import pytest

import pyembed
from pyembed import Table

N = 10_000
# AddressSanitizer's quarantine holds freed memory back (256 MB by default): RSS means nothing then
UNDER_ASAN = "asan" in os.environ.get("LD_PRELOAD", "")


def rss_bytes():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    except OSError:
        return 0


def _raises(exc, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc:
        return
    raise AssertionError(f"{fn} did not raise {exc}")


def test_no_leaks_in_10000_calls():
    pyembed.set_num_threads(1)
    t = Table(64, 8)
    t.weight = np.random.default_rng(0).standard_normal((64, 8))
    ids = np.array([[1, 5, 5], [63, 0, 2]], np.int32)
    ids_u64 = ids.astype(np.uint64)
    ids_strided = np.arange(12)[::2].reshape(2, 3)
    ids_list = [[1, 5, 5], [63, 0, 2]]
    g = np.ones((2, 3, 8), np.float32)
    g64 = np.ones((2, 3, 8), np.float64)
    out = np.empty((2, 3, 8), np.float32)
    bad_ids = np.array([[1, 5, 5], [64, 0, 2]])
    huge = np.array([2**64 - 1], np.uint64)
    float_ids = np.array([1.0])
    g_bad = np.ones((2, 3, 7), np.float32)
    g_complex = np.ones((2, 3, 8), complex)
    out_bad = np.empty((2, 3, 8), np.float64)
    w_bad = np.zeros((3, 3))
    w_good = t.weight.copy()
    inputs = [t, ids, ids_u64, ids_strided, g, g64, out, bad_ids, huge, float_ids, g_bad,
              g_complex, out_bad, w_bad, w_good]

    def one_round():
        t.lookup(ids)
        t.lookup(ids_u64, out)
        t.lookup(ids_strided, out=out)
        t.lookup(ids_list)
        t.lookup(ids, out, max_norm=10.0, norm_type=1.0)
        t.renorm(ids, 10.0)
        t.backward(ids, g)
        t.backward(ids_strided, g64, padding_idx=0, scale_grad_by_freq=True)
        t.touched
        t.num_touched
        t.weight
        t.grad
        t.zero_grad()
        t.weight = w_good
        repr(t)
        _raises(IndexError, t.lookup, bad_ids)
        _raises(IndexError, t.lookup, huge)
        _raises(IndexError, t.backward, bad_ids, g)
        _raises(TypeError, t.lookup, float_ids)
        _raises(ValueError, t.backward, ids, g_bad)
        _raises(TypeError, t.backward, ids, g_complex)
        _raises(ValueError, t.lookup, ids, out_bad)
        _raises(ValueError, t.lookup, ids, out, max_norm=-1.0)
        _raises(ValueError, setattr, t, "weight", w_bad)

    for _ in range(200):  # warm caches (NumPy's, the interpreter's) before the baseline
        one_round()
    gc.collect()
    refs = [sys.getrefcount(x) for x in inputs]
    rss0 = rss_bytes()
    tracemalloc.start()
    try:
        traced0, _ = tracemalloc.get_traced_memory()
        for _ in range(N):
            one_round()
        gc.collect()
        traced1, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss1 = rss_bytes()
    assert [sys.getrefcount(x) for x in inputs] == refs
    # a leak of one small object per call would be >= 10000 * 16 B x 24 calls = 3.8 MB
    assert traced1 - traced0 < 256 * 1024
    assert UNDER_ASAN or rss1 - rss0 < 16 * 2**20  # scratch buffers come from malloc, which tracemalloc misses


@pytest.mark.parametrize("n_table", [N])
def test_tables_are_freed(n_table):
    """Creating and dropping tables (with views, grads and pickles) frees their buffers."""
    import pickle
    gc.collect()
    rss0 = rss_bytes()
    for i in range(n_table):
        t = Table(32, 64)  # 8 KiB weight + 8 KiB grad each: 160 MB in all if leaked
        t.backward([i % 32], np.ones((1, 64), np.float32))
        w = t.weight
        if i % 100 == 0:
            pickle.loads(pickle.dumps(t))
        del t, w
    gc.collect()
    assert UNDER_ASAN or rss_bytes() - rss0 < 32 * 2**20


def test_pooled_outputs_are_independent_and_bounded():
    """Large lookup outputs come from a cache of recycled buffers (csrc/py/pool.c): a live output is
    never handed out twice, a recycled one is fully overwritten, and the cache is bounded."""
    from pyembed import _core
    rng = np.random.default_rng(0)
    t = Table(5000, 256)
    t.weight = rng.standard_normal((5000, 256))
    W = t.weight.copy()
    ids = [rng.integers(0, 5000, n) for n in (1024, 2048, 1500, 4096)]  # 1 MiB to 4 MiB outputs
    live = [t.lookup(i) for i in ids]
    for a in range(4):
        for b in range(a):
            assert not np.shares_memory(live[a], live[b])
    for rnd in range(12):
        k = rnd % 4
        live[k] = None  # its buffer goes back to the cache ...
        live[k] = t.lookup(ids[(k + 1) % 4][: ids[k].size])  # ... and is reused, overwritten
        np.testing.assert_array_equal(live[k], W[ids[(k + 1) % 4][: ids[k].size]])
        for j in range(4):
            if j != k:
                assert not np.shares_memory(live[k], live[j])
    for j in range(4):  # every earlier output is still intact
        np.testing.assert_array_equal(live[j], W[ids[(j + 1) % 4][: ids[j].size]])
    rss0 = rss_bytes()
    for n in range(1024, 3072, 16):  # 128 sizes, 1-3 MiB each: the cache must stay bounded
        t.lookup(ids[3][:n])
    assert UNDER_ASAN or rss_bytes() - rss0 < 64 * 2**20  # 8 slots of <= 3 MiB, not 256 MiB
    del live
    gc.collect()
    assert _core.release_memory() > 0
    assert _core.release_memory() == 0

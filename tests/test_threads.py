"""Threads: bitwise determinism across thread counts, the thread-count API and environment
variable, concurrent calls on one table from several Python threads, and os.fork()."""
import os
import signal
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import pyembed
import reference as ref
from child import PKG_PARENT
from pyembed import Table

THREADS = (1, 2, 4)


def zipf_ids(rng, n, rows):
    return np.minimum(rng.zipf(1.2, n) - 1, rows - 1)


# ---- bitwise determinism ----------------------------------------------------------------------

@pytest.mark.parametrize("fdtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", [
    # (rows, n ids, dim, distribution, padding_idx, scale_grad_by_freq)
    (5000, 20000, 64, "uniform", None, False),
    (5000, 20000, 64, "zipf", 0, True),
    # dim 200 = 4 column blocks (the last partial): Zipf's hot rows are split across threads
    (3000, 8000, 200, "zipf", None, False),
    (3000, 8000, 200, "zipf", -1, True),
])
def test_backward_bitwise_for_every_thread_count(fdtype, case, stores):
    rows, n, dim, dist, pad, scale = case
    rng = np.random.default_rng(n + dim)
    ids = zipf_ids(rng, n, rows) if dist == "zipf" else rng.integers(0, rows, n)
    ids = ids.reshape(n // 100, 100)
    g = rng.standard_normal((n // 100, 100, dim)).astype(fdtype)
    expect = ref.backward(np.zeros((rows, dim), fdtype), ids, g, pad, scale)
    for nt in THREADS:
        pyembed.set_num_threads(nt)
        t = Table(rows, dim, fdtype)
        t.backward(ids, g, pad, scale)
        np.testing.assert_array_equal(ref.bits(t.grad), ref.bits(expect), err_msg=f"{nt} threads")
        np.testing.assert_array_equal(t.touched, ref.touched_after([], ids, pad, rows))
        t.zero_grad()
        assert not t.grad.any()


def test_lookup_and_zero_grad_same_for_every_thread_count(stores):
    rng = np.random.default_rng(3)
    rows, dim = 20000, 128  # output 10 MiB: the parallel paths (and streaming stores with `stores`)
    W = rng.standard_normal((rows, dim)).astype(np.float32)
    ids = zipf_ids(rng, 20000, rows)
    expect = ref.gather(W, ids)
    for nt in THREADS:
        pyembed.set_num_threads(nt)
        t = Table(rows, dim)
        t.weight = W
        np.testing.assert_array_equal(ref.bits(t.lookup(ids)), ref.bits(expect))
        out = np.empty((20000, dim), np.float32)
        t.lookup(ids, out=out)
        np.testing.assert_array_equal(ref.bits(out), ref.bits(expect))
        t.backward(ids, np.ones((20000, dim), np.float32))
        t.zero_grad()
        assert not t.grad.any() and t.touched.size == 0


@pytest.mark.parametrize("fdtype", [np.float32, np.float64])
@pytest.mark.parametrize("dim", [16, 48, 200])  # 64 B rows, 192 B rows, 800 B rows (f32)
def test_streamed_backward_of_untouched_rows_is_np_add_at(fdtype, dim, stores):
    # With streaming on, rows not yet touched are summed in L1 and written without reading them:
    # the result must still be np.add.at's bits (0 + -0.0 is +0.0), rows already touched must
    # still accumulate, and padding / scale_grad_by_freq must behave the same.
    rng = np.random.default_rng(dim)
    rows, n = 300, 2000
    for nt in THREADS:
        pyembed.set_num_threads(nt)
        t = Table(rows, dim, fdtype)
        G = np.zeros((rows, dim), fdtype)
        for step, (pad, scale) in enumerate([(None, False), (7, False), (None, True), (3, True)]):
            ids = rng.integers(0, rows if step % 2 else rows // 2, n)  # half the rows, then all
            g = rng.standard_normal((n, dim)).astype(fdtype)
            g[rng.random((n, dim)) < 0.2] = -0.0
            G = ref.backward(G, ids, g, pad, scale)
            t.backward(ids, g, pad, scale)
            np.testing.assert_array_equal(ref.bits(t.grad), ref.bits(G), err_msg=f"{nt} {step}")
        t.zero_grad()
        assert not ref.bits(t.grad).any()  # no -0.0 left either


# ---- the thread-count API ---------------------------------------------------------------------

def test_set_get_num_threads():
    pyembed.set_num_threads(3)
    assert pyembed.get_num_threads() == 3
    pyembed.set_num_threads(1)
    assert pyembed.get_num_threads() == 1
    for bad in (0, -1, 10**6):
        with pytest.raises(ValueError, match="num_threads"):
            pyembed.set_num_threads(bad)
    assert pyembed.get_num_threads() == 1
    with pytest.raises(TypeError):
        pyembed.set_num_threads(2.5)
    assert isinstance(pyembed._core.have_openmp(), bool)


@pytest.mark.parametrize("env,expect", [("3", 3), ("1", 1), ("0", None), ("abc", None)])
def test_pyembed_num_threads_env(env, expect):
    code = "import pyembed; print(pyembed.get_num_threads())"
    base = dict(os.environ, OMP_NUM_THREADS="2")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env=dict(base, PYEMBED_NUM_THREADS=env), cwd=PKG_PARENT)
    assert r.returncode == 0, r.stderr
    got = int(r.stdout)
    if expect is not None:
        assert got == expect
    else:  # an invalid value falls back to the OpenMP default (or 1 in a serial build)
        assert got == (2 if pyembed._core.have_openmp() else 1)


def test_stream_threshold_api():
    llc, old = pyembed._core.stream_threshold()
    if not os.environ.get("PYEMBED_STREAM_MIN_BYTES"):  # the default: max(4 MiB, LLC / 16)
        assert old == max(4 << 20, llc // 16)
    try:
        assert pyembed._core.stream_threshold(12345) == (llc, 12345)
        assert pyembed._core.stream_threshold() == (llc, 12345)
        for bad, exc in ((0, ValueError), (-1, ValueError), (2**70, ValueError), (2.5, TypeError),
                         (True, TypeError)):
            with pytest.raises(exc):
                pyembed._core.stream_threshold(bad)
        assert pyembed._core.stream_threshold()[1] == 12345  # a refused value changes nothing
    finally:
        pyembed._core.stream_threshold(old)


@pytest.mark.parametrize("env,expect", [("1048576", 1048576), ("0", 1), ("abc", None), ("", None),
                                        ("-1", None), (" 5", None), ("12x", None)])
def test_pyembed_stream_min_bytes_env(env, expect):
    code = "import pyembed; print(*pyembed._core.stream_threshold())"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYEMBED_STREAM_MIN_BYTES=env),
                       cwd=PKG_PARENT)
    assert r.returncode == 0, r.stderr
    llc, got = map(int, r.stdout.split())
    assert got == (expect if expect is not None else max(4 << 20, llc // 16))


# ---- several Python threads on one table -------------------------------------------------------

def _run_threads(fns):
    errors = []

    def wrap(fn):
        try:
            fn()
        except BaseException as e:  # surfaced in the main thread below
            errors.append(e)

    ts = [threading.Thread(target=wrap, args=(f,)) for f in fns]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not any(t.is_alive() for t in ts), "a thread hung"
    if errors:
        raise errors[0]


def test_concurrent_backward_equals_serial():
    """Integer-valued gradients make every sum exact, so any interleaving of whole backward calls
    must give the serial result; a torn or lost update would not."""
    pyembed.set_num_threads(2)
    rows, dim, n = 2000, 96, 4000
    rng = np.random.default_rng(11)
    batches = [(zipf_ids(rng, n, rows), rng.integers(-4, 5, (n, dim)).astype(np.float32))
               for _ in range(4)]
    t = Table(rows, dim)
    serial = np.zeros((rows, dim), np.float32)
    for _ in range(5):
        for ids, g in batches:
            serial = ref.backward(serial, ids, g)

    def worker(ids, g):
        return lambda: [t.backward(ids, g) for _ in range(5)]

    _run_threads([worker(*b) for b in batches])
    np.testing.assert_array_equal(t.grad, serial)
    np.testing.assert_array_equal(t.touched, np.unique(np.concatenate([b[0] for b in batches])))


def _two_threads_zipf(rows, dim, n, seed):
    """Two threads, a float32 table of normal weights and ``n`` Zipf ids into it (drawn after)."""
    pyembed.set_num_threads(2)
    rng = np.random.default_rng(seed)
    t = Table(rows, dim)
    t.weight = rng.standard_normal((rows, dim))
    return rng, t, zipf_ids(rng, n, rows)


def test_concurrent_mixed_calls_do_not_crash():
    rows, dim, n = 3000, 64, 5000
    rng, t, ids = _two_threads_zipf(rows, dim, n, 12)
    W = t.weight.copy()
    g = np.ones((n, dim), np.float32)
    stop = threading.Event()
    read = threading.Event()  # the touched thread has read once while backward ran
    seen = []

    def backward():
        for _ in range(30):
            t.backward(ids, g)
        read.wait(timeout=30)  # under load a reader may not get scheduled before 30 calls end
        stop.set()

    def lookup():
        while not stop.is_set():
            np.testing.assert_array_equal(t.lookup(ids), W[ids])  # weight never changes here

    def zero():
        while not stop.is_set():
            t.zero_grad()

    def touched():
        while not stop.is_set():
            tt = t.touched
            assert np.all(np.diff(tt) > 0) and (tt.size == 0 or (tt[0] >= 0 and tt[-1] < rows))
            seen.append(tt.size)
            read.set()

    _run_threads([backward, lookup, zero, touched])
    assert seen
    t.zero_grad()
    assert not t.grad.any() and t.touched.size == 0
    t.backward(ids, g)  # the table still works and is consistent
    np.testing.assert_array_equal(t.grad, ref.backward(np.zeros((rows, dim), np.float32), ids, g))


# ---- fork --------------------------------------------------------------------------------------

def run_in_fork_child(body, alarm=60):
    """Run body() in a forked child; assert that it returned true (exit status 0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            signal.alarm(alarm)  # a hang in the child becomes a SIGALRM death, not a stuck suite
            code = 0 if body() else 3
        except BaseException:
            code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status), f"child died: status {status}"
    assert os.WEXITSTATUS(status) == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_runs_parallel_sized_kernels():
    rows, dim, n = 4000, 128, 20000
    rng, t, ids = _two_threads_zipf(rows, dim, n, 13)
    g = rng.standard_normal((n, dim)).astype(np.float32)
    t.lookup(ids)  # the parent's OpenMP pool exists before the fork
    t.backward(ids, g)
    expect = ref.backward(np.zeros((rows, dim), np.float32), ids, g)
    t.zero_grad()

    def child():
        out = t.lookup(ids)
        t.backward(ids, g)
        ok = np.array_equal(out, t.weight[ids]) and np.array_equal(ref.bits(t.grad),
                                                                   ref.bits(expect))
        u = pyembed.Table(rows, dim)
        u.backward(ids, g)
        return ok and np.array_equal(ref.bits(u.grad), ref.bits(expect))

    run_in_fork_child(child)
    # the parent is unaffected
    t.backward(ids, g)
    np.testing.assert_array_equal(ref.bits(t.grad), ref.bits(expect))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_trains_word2vec_on_threads_before_any_training():
    """The child of a fork made before the first sgns_train call still trains serial (one fork
    handler for every kernel): with sgns' own handler, registered on its first call, the child
    used the parent's dead OpenMP pool and hung."""
    pyembed.set_num_threads(2)
    t = Table(100000, 64)
    t.lookup(np.arange(100000) % 1000)  # the parent's OpenMP pool exists before the fork
    sents = [["a", "b", "c", "d"] * 50 for _ in range(200)]

    def child():
        m = pyembed.Word2Vec(vector_size=16, min_count=1, epochs=1, workers=2, progress=False)
        m.build_vocab(sents)
        m.train()
        return m.pairs_trained > 0

    run_in_fork_child(child, alarm=30)

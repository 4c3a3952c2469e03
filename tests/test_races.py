"""Races are the caller's, crashes are ours (issue 11): another Python thread rewriting the ids,
offsets or rows while a kernel runs without the GIL, ids inside out='s memory, os.fork() while
another thread is inside a writing kernel. Each case runs in a subprocess: before the fixes these
crashed the interpreter (or hung it), which must fail one test, not end the suite."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from child import PKG_PARENT


# A writer thread flips `bad` (a 1-D int64 array every case passes as ids, offsets, rows or
# tokens) between valid values and 10**12 while the main thread calls the entry point for a while.
HARNESS = """
import sys, threading, time
import numpy as np
import pyembed
from pyembed import _core
rows, dim, n = 1000, 32, 100000
t = _core.Table(rows, dim)
g = np.ones((n, dim), np.float32)
good = np.arange(n, dtype=np.int64) % rows
bad = good.copy()
stop = False
def writer():
    while not stop:
        bad[:] = 10**12
        bad[:] = good
th = threading.Thread(target=writer)
th.start()
try:
    end = time.perf_counter() + 0.4
    while time.perf_counter() < end:
        try:
            CALL
        except (IndexError, ValueError):
            pass  # the writer's values seen while converting: refused, as they must be
finally:
    stop = True
    th.join()
print("survived")
"""

CALLS = {
    "lookup": "t.lookup(bad)",
    "backward": "t.backward(bad, g)",
    "renorm": "t.renorm(bad, 1.0)",
    "bag_forward_ids": "_core.bag_forward(t, bad, np.array([0, n]), None, 0, None)",
    "bag_backward_ids": "_core.bag_backward(t, bad, np.array([0, n]), g[:1], None, None, 0, None)",
    "bag_forward_offsets": "_core.bag_forward(t, ids, bad, None, 0, None)",
    "bag_backward_offsets": "_core.bag_backward(t, ids, bad, g[:1000], None, None, 0, None)",
    "embed_positions": "_core.embed_positions(t, bad.reshape(100, -1), None, 1.0)",
    "adam_rows": "_core.adam_step(w, gw, m, v, step=1, rows=bad[:rows])",
    "sgd_rows": "_core.sgd_step(w, gw, lr=0.1, rows=bad[:rows])",
    "grad_norm_rows": "_core.grad_norm(gw, rows=bad[:rows])",
}
SETUP = {
    "bag_forward_offsets": "ids = good.copy(); good = np.arange(0, n + 1, 100); bad = good.copy()",
    "bag_backward_offsets": "ids = good.copy(); good = np.arange(0, n + 1, 100); bad = good.copy()",
    "adam_rows": "w = np.zeros((rows, dim), np.float32); gw = np.ones_like(w); m = np.zeros_like(w); v = np.zeros_like(w)",
    "sgd_rows": "w = np.zeros((rows, dim), np.float32); gw = np.ones_like(w)",
    "grad_norm_rows": "gw = np.ones((rows, dim), np.float32)",
}


def _run(code, timeout=60):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, cwd=PKG_PARENT)


@pytest.mark.parametrize("case", sorted(CALLS))
def test_ids_rewritten_by_another_thread_never_crash(case):
    code = HARNESS.replace("CALL", CALLS[case]).replace(
        "stop = False", SETUP.get(case, "") + "\nstop = False")
    r = _run(code)
    assert r.returncode == 0 and "survived" in r.stdout, (r.returncode, r.stderr[-2000:])


def test_sgns_tokens_rewritten_by_another_thread_never_crash():
    code = textwrap.dedent("""
    import threading, time
    import numpy as np
    from pyembed import _core
    V, D, N = 50, 16, 200000
    syn0 = np.zeros((V, D), np.float32); syn1 = np.zeros((V, D), np.float32)
    good = (np.arange(N) % V).astype(np.int32)
    tokens = good.copy()
    bounds = np.arange(0, N + 1, 100, dtype=np.int64)
    keep = np.ones(V); alias = _core.alias_table(np.ones(V))
    stop = False
    def writer():
        while not stop:
            tokens[:] = 2**30
            tokens[:] = good
    th = threading.Thread(target=writer); th.start()
    try:
        end = time.perf_counter() + 0.4
        while time.perf_counter() < end:
            try:
                _core.sgns_train(syn0, syn1, tokens, bounds, keep, alias, negative=2, window=2)
            except IndexError:
                pass
    finally:
        stop = True; th.join()
    print("survived")
    """)
    r = _run(code)
    assert r.returncode == 0 and "survived" in r.stdout, (r.returncode, r.stderr[-2000:])


def test_ids_inside_out_are_read_before_out_is_written():
    # ids living in out's memory: the fused token+position path indexed with what it had just
    # written (a segfault in embed_rows); the glue reads a private copy of the ids
    code = textwrap.dedent("""
    import numpy as np
    import pyembed
    inp = pyembed.InputEmbedding(100, 8, max_len=64, seed=0)
    out = np.zeros((1, 64, 8), np.float32)
    ids = out.reshape(-1).view(np.int64)[:64].reshape(1, 64)
    ids[:] = np.arange(64) % 100
    want = inp(ids.copy())
    assert inp(ids, out=out) is out
    np.testing.assert_array_equal(out, want)
    t = pyembed.Table(100, 8)
    t.weight = np.arange(800, dtype=np.float32).reshape(100, 8)
    out2 = np.zeros((64, 8), np.float32)
    ids2 = out2.reshape(-1).view(np.int64)[:64]
    ids2[:] = np.arange(64)
    np.testing.assert_array_equal(t.lookup(ids2, out=out2), t.weight[np.arange(64)])
    print("ok")
    """)
    r = _run(code)
    assert r.returncode == 0 and "ok" in r.stdout, (r.returncode, r.stderr[-2000:])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_while_another_thread_holds_a_table_lock():
    # the child inherits the table's lock as the writing thread held it; that thread does not
    # exist in the child, so without a reset its first zero_grad() waits forever
    code = textwrap.dedent("""
    import os, signal, threading, time, warnings
    import numpy as np
    import pyembed
    t = pyembed.Table(2000, 256)
    ids = np.arange(400000) % 2000
    g = np.ones((400000, 256), np.float32)
    stop = False
    def busy():
        while not stop:
            t.backward(ids, g)
    th = threading.Thread(target=busy); th.start()
    warnings.simplefilter("ignore", DeprecationWarning)
    bad = 0
    for k in range(6):
        time.sleep(0.05)
        pid = os.fork()
        if pid == 0:
            signal.alarm(10)  # a hang becomes a SIGALRM death
            t.zero_grad()
            t.backward(ids[:10], g[:10])
            os._exit(0 if t.num_touched == 10 else 3)
        _, status = os.waitpid(pid, 0)
        bad += not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0)
    stop = True; th.join()
    print("bad children", bad)
    """)
    r = _run(code, timeout=120)
    assert r.returncode == 0 and "bad children 0" in r.stdout, (r.stdout, r.stderr[-2000:])

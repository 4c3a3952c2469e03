"""The demo's training, run once per test session and shared by test_train.py and test_cli.py
(a cached function instead of a conftest fixture, so that the two files stay independent)."""
import functools
import io
import os
import tempfile

OUT_DIR = tempfile.mkdtemp(prefix="pyembed-demo-")
# matplotlib's ft2font throws a C++ exception at import, which AddressSanitizer's preloaded
# runtime turns into an abort: under ASan the demo skips its pictures (tests of them skip too).
UNDER_ASAN = "asan" in os.environ.get("LD_PRELOAD", "")


@functools.lru_cache(maxsize=None)
def demo_run():
    """(model, report, printed text, out_dir) of ``run_demo`` with the demo's settings and one
    thread (so the vectors are the same on every run)."""
    from pyembed.cli import run_demo

    buf = io.StringIO()
    model, report = run_demo(OUT_DIR, seed=1, workers=1, progress=False, out=buf,
                             plots=not UNDER_ASAN)
    return model, report, buf.getvalue(), OUT_DIR

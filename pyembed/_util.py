"""Helpers shared by several modules of the package (public names, private module): atomic file
writes and pausing the cyclic garbage collector."""
import contextlib
import gc
import os
import tempfile


def fspath(path):
    """``path`` (str, bytes or os.PathLike) as a str."""
    p = os.fspath(path)
    return p.decode() if isinstance(p, bytes) else p


def atomic_write(path, write, *more):
    """Call write(f) on a temporary file next to `path`, then rename it over `path`. `more`:
    further (path, write) pairs, all written before any is renamed, so that an error while
    writing any of them leaves every old file as it was."""
    pending = []  # (temporary, final) names not yet renamed
    try:
        for path, write in ((path, write),) + more:
            path = fspath(path)
            d = os.path.dirname(os.path.abspath(path))
            fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                                       dir=d)
            pending.append((tmp, path))
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
        while pending:
            os.replace(*pending[0])
            pending.pop(0)
    except BaseException:
        for tmp, _ in pending:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise


@contextlib.contextmanager
def gc_paused():
    """Building millions of small lists triggers the cyclic GC over and over (a tenth of the
    time of a vocabulary build); none of them can form a cycle, so pause it."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()

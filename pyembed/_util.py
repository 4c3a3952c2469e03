"""Helpers shared by several modules of the package (public names, private module): atomic file
writes and pausing the cyclic garbage collector."""
import contextlib
import errno
import gc
import os
import shutil
import stat
import tempfile


def fspath(path, name: str = "path"):
    """``path`` (str, bytes or os.PathLike) as a str (TypeError naming ``name`` otherwise)."""
    try:
        p = os.fspath(path)
    except TypeError:
        raise TypeError(f"{name} must be a str, bytes or os.PathLike, got "
                        f"{str(repr(path))[:80]} ({type(path).__name__})") from None
    return p.decode() if isinstance(p, bytes) else p


def _umask():
    """The process's umask, read without changing it where Linux allows (os.umask can only
    read it by setting it, which races with other threads creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def _fsync_dir(d):
    """Make renames in directory d durable (best effort: not every system can open one)."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, write, *more):
    """Call write(f) on a temporary file next to `path`, then rename it over `path`. `more`:
    further (path, write) pairs.

    Each file keeps the permission bits of the file it replaces (a new one gets 0o666 less the
    umask, as ``open`` gives, not mkstemp's 0o600). A path that is a symbolic link is written
    through: the link's target is replaced and the link stays.

    Several files are all or nothing as far as POSIX allows: all are written and synced before
    any is renamed; each old file is kept (a hard link, or a copy where links are refused)
    until every rename has succeeded, and an error in any rename puts every old file back
    (and removes the new files that had none). The window POSIX leaves: if the process dies
    (SIGKILL, power loss) between two renames, the files renamed so far are new and the
    others old, and the kept old copies (``.<name>.*.old``) remain beside them. A path that is
    not a regular file (a device, a pipe) is written in place, after the temporary files and
    before any rename, and cannot be rolled back.
    """
    jobs = [(os.path.realpath(fspath(p)), w) for p, w in ((path, write),) + more]
    for final, _ in jobs:
        if os.path.isdir(final):
            raise IsADirectoryError(errno.EISDIR, "cannot save over a directory", final)
    if len({final for final, _ in jobs}) != len(jobs):
        raise ValueError(f"the same file is to be written twice: "
                         f"{[fspath(p) for p, _ in ((path, write),) + more]}")
    # a device or a pipe (/dev/stdout, /dev/null, a FIFO) is written in place: renaming a
    # regular file over it would replace the device node itself
    direct = [(final, w) for final, w in jobs
              if os.path.exists(final) and not stat.S_ISREG(os.stat(final).st_mode)]
    jobs = [job for job in jobs if job not in direct]
    pending = []  # (temporary, final) names not yet renamed
    kept = []  # (old file's copy or None when there was none, final): restored on error
    renamed = []
    try:
        for final, write in jobs:
            fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(final) + ".",
                                       suffix=".tmp", dir=os.path.dirname(final))
            pending.append((tmp, final))
            with os.fdopen(fd, "wb") as f:
                try:
                    mode = stat.S_IMODE(os.stat(final).st_mode)
                except FileNotFoundError:
                    mode = 0o666 & ~_umask()
                if hasattr(os, "fchmod"):  # POSIX (Windows has no mode bits to keep)
                    os.fchmod(f.fileno(), mode)
                write(f)
                f.flush()
                os.fsync(f.fileno())
        for final, write in direct:
            with open(final, "wb") as f:
                write(f)
        if len(jobs) > 1:
            for tmp, final in pending:
                old = tmp[:-len(".tmp")] + ".old"
                try:
                    os.link(final, old)
                except FileNotFoundError:
                    old = None
                except OSError:  # a file system without hard links
                    shutil.copy2(final, old)
                kept.append((old, final))
        for tmp, final in pending:
            os.replace(tmp, final)
            renamed.append(final)
        pending = []
        for old, _ in kept:
            if old is not None:
                os.unlink(old)
        for d in dict.fromkeys(os.path.dirname(final) for final, _ in jobs):
            _fsync_dir(d)
    except BaseException:
        for old, final in kept:
            try:
                if final in renamed:
                    if old is None:
                        os.unlink(final)
                    else:
                        os.replace(old, final)
                elif old is not None:
                    os.unlink(old)
            except OSError:
                pass
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

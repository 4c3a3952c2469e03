"""Saving (pyembed._util.atomic_write, under save_vectors / save_safetensors / Vocab.save): files
keep the mode of the file they replace, symlinks are written through, and a two-file save is all
or nothing (issue 11)."""
import os
import stat

import numpy as np
import pytest

import pyembed
from pyembed import Vectors, save_vectors


@pytest.fixture
def kv():
    v = Vectors(["a", "b", "c"], np.arange(6, dtype=np.float32).reshape(3, 2))
    v.expandos["count"] = np.array([3, 2, 1])  # what fvocab= writes
    return v


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def _mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def _savers(kv):
    return [lambda p: save_vectors(kv, p), lambda p: save_vectors(kv, p, binary=True),
            lambda p: pyembed.save_safetensors(p, {"w": kv.vectors}),
            lambda p: pyembed.Vocab(["x", "y"]).save(p)]


@pytest.mark.parametrize("which", range(4))
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o755])
def test_replaced_file_keeps_its_mode(tmp_path, kv, which, mode):
    p = tmp_path / "out"
    p.write_bytes(b"old")
    os.chmod(p, mode)
    _savers(kv)[which](p)
    assert p.read_bytes() != b"old"
    assert _mode(p) == mode


@pytest.mark.parametrize("which", range(4))
@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002, 0])
def test_new_file_gets_the_umask(tmp_path, kv, umask, which, mask):
    umask(mask)
    p = tmp_path / "new"
    _savers(kv)[which](p)
    assert _mode(p) == 0o666 & ~mask


@pytest.mark.parametrize("relative", [False, True])
def test_saving_to_a_symlink_writes_through(tmp_path, kv, relative):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "v.txt"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    link = tmp_path / "link.txt"
    link.symlink_to(os.path.join("real", "v.txt") if relative else target)
    save_vectors(kv, link)
    assert link.is_symlink() and os.path.samefile(link, target)
    assert pyembed.load_vectors(target).index_to_key == ["a", "b", "c"]
    assert _mode(target) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["link.txt", "real"]
    assert os.listdir(tmp_path / "real") == ["v.txt"]


def _state(d):
    return {n: (p.read_bytes(), _mode(p)) for n in sorted(os.listdir(d))
            for p in [d / n] if p.is_file()}


@pytest.mark.parametrize("fail_at", [1, 2])
@pytest.mark.parametrize("existing", [True, False])
def test_two_file_save_is_all_or_nothing_when_a_rename_fails(tmp_path, kv, monkeypatch, fail_at,
                                                             existing):
    vec, voc = tmp_path / "v.txt", tmp_path / "voc.txt"
    if existing:
        vec.write_bytes(b"old vectors")
        voc.write_bytes(b"old vocab")
    before = _state(tmp_path)
    real, calls = os.replace, []

    def failing(a, b):
        calls.append(b)
        if len(calls) == fail_at:
            raise OSError(28, "No space left on device (simulated)")
        return real(a, b)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError, match="simulated"):
        save_vectors(kv, vec, fvocab=voc)
    monkeypatch.setattr(os, "replace", real)
    assert _state(tmp_path) == before  # no file changed, no temporary left
    save_vectors(kv, vec, fvocab=voc)
    assert pyembed.load_vectors(vec, fvocab=voc).index_to_key == ["a", "b", "c"]


def test_fvocab_that_is_a_directory_changes_nothing(tmp_path, kv):
    vec = tmp_path / "v.txt"
    vec.write_bytes(b"old vectors")
    (tmp_path / "voc").mkdir()
    with pytest.raises(IsADirectoryError):
        save_vectors(kv, vec, fvocab=tmp_path / "voc")
    assert vec.read_bytes() == b"old vectors"
    assert sorted(os.listdir(tmp_path)) == ["v.txt", "voc"]


def test_same_file_twice_is_refused(tmp_path, kv):
    vec = tmp_path / "v.txt"
    vec.write_bytes(b"old")
    with pytest.raises(ValueError, match="twice"):
        save_vectors(kv, vec, fvocab=vec)
    assert vec.read_bytes() == b"old"


def test_saving_to_a_device_writes_in_place(tmp_path, kv):
    """A device is written, never replaced by a renamed regular file (as root the rename would
    succeed and replace the node: a private node of /dev/null is used then)."""
    null = "/dev/null"
    if os.geteuid() == 0:
        null = str(tmp_path / "null")
        try:
            os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        except OSError:
            pytest.skip("cannot make a device node")
    save_vectors(kv, null)
    save_vectors(kv, null, fvocab=tmp_path / "voc.txt")
    assert stat.S_ISCHR(os.stat(null).st_mode)
    assert (tmp_path / "voc.txt").read_text().startswith("a 3")

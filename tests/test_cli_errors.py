"""Every CLI error ends with exit status 2 and one line on stderr, never a traceback (issue 11):
bad and huge numbers, outputs that are directories, under a file, on a full disk (/dev/full) or
in a read-only directory, files claiming absurd sizes, deeply nested safetensors headers."""
import json
import os
import stat
import struct
import subprocess
import sys

import numpy as np
import pytest

import pyembed
from pyembed import cli

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    kv = pyembed.Vectors(["a", "b", "c"], np.eye(3, dtype=np.float32))
    pyembed.save_vectors(kv, d / "v.txt")
    pyembed.save_safetensors(d / "m.safetensors", {"w": np.eye(3, dtype=np.float32)})
    deep = b'{"__metadata__":' + b"[" * 100000 + b"]" * 100000 + b"}"
    (d / "deep.safetensors").write_bytes(struct.pack("<Q", len(deep)) + deep)
    (d / "huge.safetensors").write_bytes(struct.pack("<Q", 2**64 - 1) + b"{}")
    hdr = json.dumps({"w": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 4]}})
    (d / "shape.safetensors").write_bytes(struct.pack("<Q", len(hdr)) + hdr.encode() + bytes(4))
    (d / "absurd.txt").write_bytes(b"99999999999999999999999 3\na 1 2 3\n")
    (d / "wide.txt").write_bytes(b"100000 200000\n" + b"a\n" * 1000)
    (d / "corpus.txt").write_text("a b c a b c d e\n" * 50)
    (d / "outdir").mkdir()
    # a full disk: /dev/full, or as root a private node of that device, so that a regression
    # renaming over the path can never replace the system's /dev/full
    full = "/dev/full"
    if ROOT:
        full = str(d / "full")
        try:
            os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
        except OSError:
            full = None
    return d, full


def _fails(capsys, argv):
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as e:  # argparse's errors (one line too: cli._Parser)
        code = e.code
    out, err = capsys.readouterr()
    assert code == 2, (argv, out, err)
    assert err.count("\n") == 1 and err.startswith("pyembed ") and "Traceback" not in err, err
    return err


TRAIN = ["--min-count", "1", "--epochs", "1", "--vector-size", "4"]


@pytest.mark.parametrize("argv", [
    ["info", "{d}/deep.safetensors"], ["info", "{d}/huge.safetensors"],
    ["info", "{d}/shape.safetensors"], ["info", "{d}/absurd.txt"], ["info", "{d}/wide.txt"],
    ["info", "{d}/outdir"], ["similar", "{d}/deep.safetensors", "a"],
    ["train", "{d}/corpus.txt", "-o", "{d}/outdir"] + TRAIN,
    ["train", "{d}/corpus.txt", "-o", "{d}/v.txt/x"] + TRAIN,
    ["train", "{d}/corpus.txt", "-o", "{full}"] + TRAIN,
    ["train", "{d}/corpus.txt", "-o", "{d}/o.txt", "--window", "99999999999999999999",
     "--min-count", "1"],
    ["train", "{d}/corpus.txt", "-o", "{d}/o.txt", "--seed", "-1", "--min-count", "1"],
    ["train", "{d}/corpus.txt", "-o", "{d}/o.txt", "--seed", "99999999999999999999999"],
    ["train", "{d}/corpus.txt", "-o", "{d}/o.txt", "--vector-size", "999999999999",
     "--min-count", "1"],
    ["train", "{d}/corpus.txt", "-o", "{d}/o.txt", "--workers", "99999999999999",
     "--min-count", "1"],
    ["train", "{d}/corpus.txt", "-o", "{d}/o.txt", "--negative", "65", "--min-count", "1"],
    ["train", "{d}/corpus.txt", "-o", "{d}/o.txt", "--negative", "0", "--min-count", "1"],
    ["train", "{d}/corpus.txt", "-o", "{d}/o.txt", "--sg", "2"],
    ["train", "{d}/corpus.txt", "-o", "{d}/o.txt", "--hs", "x"],
    ["train", "{d}/corpus.txt", "-o", "{d}/o.txt", "--sample", "1e400"],
    ["train", "{d}/corpus.txt", "-o", "{d}/o.txt", "--epochs", "x"],
    ["train", "{d}/outdir", "-o", "{d}/o.txt"],
    ["demo", "--no-plots", "--sentences", "100", "--window", "99999999999999999999"],
    ["demo", "--out-dir", "{full}", "--sentences", "100"],
    ["demo", "--out-dir", "{d}/v.txt", "--sentences", "100"],
    ["plot", "{d}/v.txt", "-o", "{d}/outdir"], ["plot", "{d}/v.txt", "-o", "{full}"],
    ["plot", "{d}/v.txt", "-o", "{d}/v.txt/x.png"],
])
def test_error_is_one_line_and_status_2(capsys, files, argv):
    d, full = files
    if argv[0] == "plot":
        pytest.importorskip("matplotlib")
    if any("{full}" in a for a in argv) and full is None:
        pytest.skip("no full device")
    _fails(capsys, [a.format(d=d, full=full) for a in argv])
    assert os.path.isfile(d / "v.txt")
    assert full is None or not os.path.isfile(full)


@pytest.mark.skipif(ROOT, reason="root writes into read-only directories")
def test_read_only_directory(capsys, files, tmp_path):
    files = files[0]
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        _fails(capsys, ["train", files / "corpus.txt", "-o", ro / "o.txt"] + TRAIN)
    finally:
        os.chmod(ro, 0o755)


def test_info_reads_safetensors_files(capsys, files):
    files = files[0]
    assert cli.main(["info", str(files / "m.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "words:      3" in out and "first words: 0 1 2" in out


def _python_m(*argv, cwd):
    env = dict(os.environ)
    parent = os.path.dirname(os.path.dirname(os.path.abspath(pyembed.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([parent, env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "pyembed", *map(str, argv)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("argv,code", [
    (["info", "m.safetensors"], 0), (["info", "deep.safetensors"], 2),
    (["train", "corpus.txt", "-o", "{full}"] + TRAIN, 2),
    (["info", "absurd.txt"], 2),
])
def test_python_dash_m(files, argv, code):
    d, full = files
    if "{full}" in argv and full is None:
        pytest.skip("no full device")
    r = _python_m(*[a.format(full=full) for a in argv], cwd=d)
    assert r.returncode == code, r.stderr
    if code:
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert full is None or not os.path.isfile(full)


@pytest.mark.parametrize("argv", [["bench", "--nonsense"], ["bench", "--threads", "0"],
                                  ["bench", "--only", "nothing"]])
def test_bench_argument_errors_are_one_line(capsys, argv):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "error" in err, err

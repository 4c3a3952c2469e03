"""The command line: the demo's output and pictures, every subcommand, exit status 2 with one
line on bad arguments and unreadable files."""
import os
import struct
import subprocess
import sys

import pytest

from pyembed import cli

from _demo_run import UNDER_ASAN, demo_run

needs_matplotlib = pytest.mark.skipif(UNDER_ASAN, reason="matplotlib aborts under ASan")

# Subprocesses must import the pyembed under test (installed, or built in place), never a source
# tree without its extension: run them outside the checkout with that package's parent on the path.
PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(cli.__file__)))


def _subprocess_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = PKG_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _png_size(path):
    with open(path, "rb") as fh:
        head = fh.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def vectors_file(tmp_path_factory):
    """The demo's vectors, written once in word2vec text format."""
    model = demo_run()[0]
    path = tmp_path_factory.mktemp("vec") / "demo.txt"
    model.save(str(path))
    return str(path)


def _run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _fails(capsys, *argv):
    """exit status 2 and exactly one line on stderr"""
    try:
        code = cli.main(list(argv))
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    assert code == 2, (argv, out, err)
    assert err.count("\n") == 1 and "error" in err, err
    return err


# -- the demo ---------------------------------------------------------------------------------------


def test_demo_prints_loss_neighbours_and_analogy():
    _, report, text, _ = demo_run()
    assert "loss per epoch" in text
    for q in cli.DEMO_QUERIES:
        assert f"{q:>5}: " in text
    assert "king - man + woman = " in text
    assert report["seconds"] > 0


@needs_matplotlib
def test_demo_pictures_exist_with_the_expected_size():
    _, report, _, out_dir = demo_run()
    emb = os.path.join(out_dir, cli.EMBEDDINGS_PNG)
    pos = os.path.join(out_dir, cli.POSITIONAL_PNG)
    assert report["paths"] == [emb, pos]
    for path, (w, h) in ((emb, cli.EMBEDDINGS_SIZE), (pos, cli.POSITIONAL_SIZE)):
        assert os.path.getsize(path) > 10_000
        assert _png_size(path) == (int(w * cli.DPI), int(h * cli.DPI))


def test_demo_command_small(capsys, tmp_path):
    code, out, _ = _run(capsys, "demo", "--out-dir", str(tmp_path), "--workers", "1",
                        "--epochs", "1", "--no-plots", "--sentences", "20000")
    assert code == 0
    assert "nearest neighbours" in out and "king - man + woman" in out
    assert not os.listdir(tmp_path)


# -- the other commands --------------------------------------------------------------------------------


def test_similar(capsys, vectors_file):
    code, out, _ = _run(capsys, "similar", vectors_file, "cat", "-n", "3")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 3 and all(len(ln.split()) == 2 for ln in lines)


def test_analogy(capsys, vectors_file):
    code, out, _ = _run(capsys, "analogy", vectors_file, "man", "king", "woman")
    assert code == 0
    assert out.splitlines()[0].startswith("man : king :: woman : ?")
    assert "queen" in " ".join(ln.split()[1] for ln in out.splitlines()[1:4])


def test_info(capsys, vectors_file):
    code, out, _ = _run(capsys, "info", vectors_file)
    assert code == 0
    assert "dimension:  100" in out and "words:" in out


@needs_matplotlib
def test_plot(capsys, vectors_file, tmp_path):
    png = tmp_path / "p.png"
    code, _, _ = _run(capsys, "plot", vectors_file, "-o", str(png), "--words", "cat", "dog",
                      "car", "king", "queen")
    assert code == 0
    assert _png_size(str(png)) == tuple(int(v * cli.DPI) for v in cli.EMBEDDINGS_SIZE)


@pytest.mark.parametrize("binary", [False, True])
def test_train_writes_a_vectors_file(capsys, tmp_path, binary):
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat on the mat\nthe dog sat on the log\n" * 40, encoding="utf-8")
    out = tmp_path / "v.out"
    argv = ["train", str(corpus), "-o", str(out), "--vector-size", "8", "--min-count", "2",
            "--epochs", "1", "--workers", "1"] + (["--binary"] if binary else [])
    code, text, _ = _run(capsys, *argv)
    assert code == 0 and "wrote 7 vectors of dimension 8" in text
    import pyembed

    kv = pyembed.load_vectors(str(out))
    assert len(kv.index_to_key) == 7


def test_help_everywhere(capsys):
    for cmd in ([], ["demo"], ["train"], ["similar"], ["analogy"], ["plot"], ["info"]):
        with pytest.raises(SystemExit) as e:
            cli.main(cmd + ["--help"])
        assert e.value.code == 0
        assert "usage:" in capsys.readouterr().out


def test_bench_forwards_its_arguments(monkeypatch):
    import pyembed.bench

    seen = []
    monkeypatch.setattr(pyembed.bench, "main", lambda argv: seen.append(argv) or 0)
    assert cli.main(["bench", "--quick", "--only", "train"]) == 0
    assert seen == [["--quick", "--only", "train"]]


# -- errors: exit status 2, one line ------------------------------------------------------------------


def test_errors_bad_arguments(capsys, vectors_file):
    assert "invalid choice" in _fails(capsys, "fly")
    _fails(capsys)  # no command
    assert "--window" in _fails(capsys, "demo", "--window", "0")
    assert "--epochs" in _fails(capsys, "train", "x.txt", "-o", "o.txt", "--epochs", "many")
    assert "-o" in _fails(capsys, "train", "x.txt")
    assert "not in the vocabulary: 'zebra'" in _fails(capsys, "similar", vectors_file, "zebra")
    assert "'unicorn'" in _fails(capsys, "analogy", vectors_file, "man", "unicorn", "woman")
    assert "--sample" in _fails(capsys, "train", "-o", "o.txt", "--sample", "-1")


def test_errors_unreadable_files(capsys, tmp_path):
    missing = str(tmp_path / "missing.txt")
    for argv in (["similar", missing, "cat"], ["info", missing], ["analogy", missing, "a", "b", "c"],
                 ["plot", missing, "-o", str(tmp_path / "p.png")],
                 ["train", missing, "-o", str(tmp_path / "v.txt")]):
        assert "cannot read" in _fails(capsys, *argv)
    garbage = tmp_path / "garbage.txt"
    garbage.write_bytes(b"this is not\x00 a vectors file\n\xff\xfe")
    assert "cannot read" in _fails(capsys, "info", str(garbage))
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b c\n", encoding="utf-8")
    assert "cannot write" in _fails(capsys, "train", str(corpus), "-o",
                                    str(tmp_path / "no" / "dir" / "v.txt"))
    assert "min_count" in _fails(capsys, "train", str(corpus), "-o", str(tmp_path / "v.txt"))


def test_demo_unwritable_out_dir(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "cannot write in" in _fails(capsys, "demo", "--out-dir", str(blocker / "sub"))


@needs_matplotlib
def test_python_dash_m_demo_end_to_end(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pyembed", "demo", "--sentences", "5000", "--epochs",
                        "1", "--out-dir", str(tmp_path)], cwd=tmp_path, env=_subprocess_env(),
                       capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "king - man + woman = " in r.stdout and "100%" in r.stdout
    assert sorted(os.listdir(tmp_path)) == [cli.EMBEDDINGS_PNG, cli.POSITIONAL_PNG]


def test_python_dash_m_entry_point(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pyembed", "similar", "/nonexistent/v.txt", "cat"],
                       cwd=tmp_path, env=_subprocess_env(), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("pyembed similar: error: cannot read")
    assert r.stderr.count("\n") == 1

"""The bench's timing harness (not speed: timings are never asserted)."""
import numpy as np
import pytest

import pyembed
import pyembed.bench as bench
from child import PKG_PARENT
from pyembed.bench import peak_rss, rows_fasttext


def test_race_interleaves_blocks_runs_setups_and_drops_the_first_calls():
    ctx = bench.Context(quick=True, threads=1, torch=None)
    log = []
    fns = {"a": lambda: log.append("a"),
           "b": (lambda: log.append("b"), lambda: log.append("setup b"))}
    t = ctx.race(fns, min_time=0.0, min_runs=3, block=3, drop=1)
    assert set(t) == {"a", "b"} and all(v >= 0 for v in t.values())
    # two rounds (2 kept calls per block of 3), each a whole block of a and of b in some order
    # (s: b's setup, run before every call of b)
    assert log.count("a") == 6 and log.count("b") == 6 and log.count("setup b") == 6
    assert "".join(x[0] for x in log).replace("aaa", "A").replace("sbsbsb", "B") in (
        "ABAB", "ABBA", "BAAB", "BABA")


def test_row_puts_pyembed_apart_from_its_anchors():
    ctx = bench.Context(quick=True, threads=1, torch=None)
    r = ctx.row("k", "shape", lambda: None, {"np": lambda: None}, 100, extra=1)
    assert r["kernel"] == "k" and r["bytes"] == 100 and r["extra"] == 1
    assert set(r["anchors"]) == {"np"} and r["pyembed_s"] >= 0
    assert "vs np" in bench.fmt_row(r, 10.0)


def test_fasttext_row_writes_a_model_both_loaders_read_alike(tmp_path):
    """The synthetic model of the fastText row is a real one: gensim's load_facebook_vectors and
    pyembed's load_vectors give the same vectors, in and out of the vocabulary; the row runs."""
    gensim_ft = pytest.importorskip("gensim.models.fasttext")
    rng = np.random.default_rng(1)
    words = ["cat", "dög", "mouse", "house"]
    path = tmp_path / "m.bin"
    rows_fasttext.write_fasttext_bin(path, words, [9, 7, 5, 3],
                                     rng.standard_normal((4, 6)).astype(np.float32),
                                     rng.standard_normal((50, 6)).astype(np.float32))
    ours, theirs = pyembed.load_vectors(path), gensim_ft.load_facebook_vectors(str(path))
    assert ours.index_to_key == theirs.index_to_key == words
    np.testing.assert_array_equal(ours.vectors, theirs.vectors)
    np.testing.assert_array_equal(ours["catalogue"], theirs["catalogue"])
    (row,) = rows_fasttext.rows(bench.Context(quick=True, threads=1, torch=None))
    assert row["kernel"] == "load fastText .bin" and set(row["anchors"]) == {
        "gensim load_facebook_vectors"}


def test_peak_rss_runs_the_chosen_configurations(monkeypatch, capsys):
    """The peak-memory script runs each configuration in a child (here tiny, with --only
    choosing the two bfloat16 ones) and prints one line each, in units of the float32 table."""
    pytest.importorskip("ml_dtypes", reason="bfloat16 tables need ml_dtypes")
    monkeypatch.chdir(PKG_PARENT)  # the children import the package these tests import
    assert peak_rss.main(["--rows", "64", "--dim", "8", "--steps", "1", "--ids", "16",
                          "--only", "bfloat16"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert [ln.split(" peak ")[0].strip() for ln in lines] == [
        "bfloat16 table, Adam(lazy, in_bwd)", "bfloat16 table, RowWiseAdagrad(in_bwd)"]
    assert all("x the table" in ln for ln in lines)

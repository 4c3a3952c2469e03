"""The bench's timing harness (not speed: timings are never asserted)."""
import pyembed.bench as bench


def test_race_interleaves_runs_setups_and_drops_the_first_call_of_each_block():
    ctx = bench.Context(quick=True, threads=1, torch=None)
    log = []
    fns = {"a": lambda: log.append("a"),
           "b": (lambda: log.append("b"), lambda: log.append("setup b"))}
    t = ctx.race(fns, min_time=0.0, min_runs=3, block=3)
    assert set(t) == {"a", "b"} and all(v >= 0 for v in t.values())
    # two rounds of blocks of 3 (2 kept calls each), the order rotating, setup before every b
    assert log == ["a"] * 3 + ["setup b", "b"] * 3 + ["setup b", "b"] * 3 + ["a"] * 3


def test_row_puts_pyembed_apart_from_its_anchors():
    ctx = bench.Context(quick=True, threads=1, torch=None)
    r = ctx.row("k", "shape", lambda: None, {"np": lambda: None}, 100, extra=1)
    assert r["kernel"] == "k" and r["bytes"] == 100 and r["extra"] == 1
    assert set(r["anchors"]) == {"np"} and r["pyembed_s"] >= 0
    assert "vs np" in bench._fmt_row(r, 10.0)

"""The bench's timing harness (not speed: timings are never asserted)."""
import pyembed.bench as bench


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

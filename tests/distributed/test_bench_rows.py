"""The distributed bench rows run on every rank and report what the printout needs (speed is
not checked: tests/test_bench.py's rule). A tiny shape: this runs under mpiexec in CI."""
import numpy as np

import pyembed.bench as bench
from pyembed.bench import rows_distributed


def test_rows_report_lookups_and_bytes(comm, agree, monkeypatch):
    monkeypatch.setattr(rows_distributed, "dist_shapes", lambda quick: [(500, 8, 301)])
    monkeypatch.setattr(rows_distributed, "RUNS", 2)
    ctx = bench.Context(quick=True, threads=1, torch=None)
    rows = rows_distributed.rows(ctx, comm)
    size = comm.Get_size()
    ok = [r["kernel"] for r in rows] == ["sharded forward", "sharded forward+backward"]
    for r in rows:
        ok &= r["ranks"] == size and r["lookups_per_s"] > 0 and np.isfinite(r["pyembed_s"])
        ok &= (r["bytes_sent_per_rank"] > 0) == (size > 1)
        ok &= (comm.Get_rank() == 0) == bool(r["anchors"])
        ok &= f"{size} ranks" in bench.fmt_row(dict(r, anchors={}), 10.0)
    assert agree(ok)

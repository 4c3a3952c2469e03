"""python -m pyembed.bench [--quick] [--threads N] [--json PATH] [--only AREA] [--distributed]

Times every kernel beside its anchors (np.take, np.add.at, torch CPU when installed) and beside the
memcpy bandwidth measured in the same run, and prints ratios (anchor time / pyembed time: > 1 means
pyembed is faster) and the fraction of memcpy bandwidth each kernel reaches. Every row is the
median of interleaved rounds in random order, pyembed and its anchors raced together
(pyembed/bench/harness.py, race). Speed is measured here, never asserted in tests.

Each area adds rows from a module ``pyembed/bench/rows_<area>.py`` exposing ``rows(ctx)``; a row
is a dict ``{"kernel", "shape", "pyembed_s", "anchors": {name: seconds}, "bytes"}``.

``--distributed``, run under ``mpiexec -n K``: only the sharded-table rows
(pyembed/bench/rows_distributed.py), printed by rank 0, with lookups/s and bytes sent per rank.
"""
import argparse
import json
import os
import platform
import sys

import numpy as np

from .. import _core
from .._version import __version__
from ..distributed.mpi import load_mpi
from . import rows_adagrad, rows_core, rows_distributed, rows_fasttext, rows_optim
from . import rows_positional, rows_step, rows_torch, rows_train, rows_vectors
from .harness import Context, fmt_row, measure_memcpy

AREAS = {"core": rows_core.rows,
         "optim": lambda ctx: rows_optim.rows(ctx) + rows_adagrad.rows(ctx),
         "step": rows_step.rows,
         "positional": rows_positional.rows, "vectors": rows_vectors.rows,
         "fasttext": rows_fasttext.rows, "train": rows_train.rows, "torch": rows_torch.rows}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, as the pyembed command's errors (no usage block)
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        sys.exit(2)


def main(argv=None):
    ap = _Parser(prog="python -m pyembed.bench", description=__doc__.split("\n\n")[1])
    ap.add_argument("--quick", action="store_true", help="smaller shapes, shorter timings")
    ap.add_argument("--threads", type=int, default=1, help="threads for pyembed and torch (default 1)")
    ap.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    ap.add_argument("--only", metavar="AREA", action="append", choices=list(AREAS),
                    help="run only this area (repeatable): " + ", ".join(AREAS))
    ap.add_argument("--distributed", action="store_true",
                    help="only the sharded-table rows; run under mpiexec -n K (needs mpi4py)")
    args = ap.parse_args(argv)
    if args.threads < 1:
        ap.error("--threads must be >= 1")
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    _core.set_num_threads(args.threads)
    ctx = Context(args.quick, args.threads, torch)
    if args.distributed:
        return _distributed(ctx, args)
    ctx.memcpy_gbps = measure_memcpy(ctx)
    print(f"pyembed {__version__} bench: {platform.machine()} {platform.processor() or ''} "
          f"{os.cpu_count()} cpus, threads={args.threads}, openmp={_core.have_openmp()}, "
          f"numpy {np.__version__}, torch {torch.__version__ if torch else 'not installed'}")
    llc, stream_min = _core.stream_threshold()
    print(f"last-level cache {llc / 2**20:.0f} MiB, streaming stores from {stream_min / 2**20:.0f} MiB; "
          f"medians of interleaved rounds")
    print(f"memcpy {ctx.memcpy_gbps:.1f} GB/s (read + write), ratios are anchor time / pyembed time")
    all_rows = []
    for area in args.only or AREAS:
        for r in AREAS[area](ctx):
            print(fmt_row(r, ctx.memcpy_gbps))
            sys.stdout.flush()
            all_rows.append(r)
    _write_json(args, ctx, all_rows)
    return 0


def _write_json(args, ctx, all_rows):
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"memcpy_gbps": ctx.memcpy_gbps, "threads": args.threads, "rows": all_rows}, f,
                      indent=1)


def _distributed(ctx, args):
    """The sharded rows on every rank of the MPI job; rank 0 prints (memcpy measured by rank 0
    alone, the others waiting)."""
    comm = load_mpi().COMM_WORLD
    lead = comm.Get_rank() == 0
    if lead:
        ctx.memcpy_gbps = measure_memcpy(ctx)
        print(f"pyembed {__version__} bench --distributed: {comm.Get_size()} ranks on "
              f"{os.cpu_count()} cpus, threads={args.threads} per rank; memcpy "
              f"{ctx.memcpy_gbps:.1f} GB/s; the slowest rank's median per call")
    comm.Barrier()
    all_rows = rows_distributed.rows(ctx, comm)
    if lead:
        for r in all_rows:
            print(fmt_row(r, ctx.memcpy_gbps))
            print(f"    {r['lookups_per_s'] / 1e6:.2f} M lookups/s (global batch), "
                  f"{r['bytes_sent_per_rank'] / 2**20:.2f} MiB sent per rank per call")
        sys.stdout.flush()
        _write_json(args, ctx, all_rows)
    return 0

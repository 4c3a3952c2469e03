"""python -m pyembed.bench [--quick] [--threads N] [--json PATH] [--only SUBSTR]

Times every kernel beside its anchors (np.take, np.add.at, torch CPU when installed) and beside the
memcpy bandwidth measured in the same run, and prints ratios (anchor time / pyembed time: > 1 means
pyembed is faster) and the fraction of memcpy bandwidth each kernel reaches. Medians of repeated runs,
pyembed and its anchors timed in interleaved rounds (Context.race).
Speed is measured here, never asserted in tests.

Each area adds rows from a module ``pyembed._bench_<area>`` exposing ``rows(ctx)``; a row is a dict
``{"kernel", "shape", "pyembed_s", "anchors": {name: seconds}, "bytes"}``.
"""
import argparse
import importlib
import json
import os
import platform
import sys
import time

import numpy as np

import pyembed

AREAS = ["core", "optim", "positional", "vectors", "train"]


class Context:
    def __init__(self, quick, threads, torch):
        self.quick = quick
        self.threads = threads
        self.torch = torch
        self.memcpy_gbps = float("nan")

    def timeit(self, fn, min_time=None, min_runs=5, max_runs=200):
        """Median seconds of fn() over repeated runs (one warm-up call first)."""
        if min_time is None:
            min_time = 0.05 if self.quick else 0.3
        fn()
        times = []
        start = time.perf_counter()
        while len(times) < min_runs or (time.perf_counter() - start < min_time and len(times) < max_runs):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return float(np.median(times))

    def race(self, fns, min_time=None, min_runs=5, max_runs=200, block=6, drop=2):
        """Median seconds of each of several callables, timed in interleaved rounds so that a
        drift in the shared machine's speed hits every contender alike. Each round runs the
        callables in a fresh random order (seeded: the same every run), each a block of ``block``
        consecutive calls of which the first ``drop`` are not kept: what ran just before leaves
        dirty lines and a cold cache that the next kernel pays for (up to 30% on a 24 MiB
        gather, measured by racing np.take against itself), which is not the kernel's own cost.
        ``fns``: {name: fn or (fn, setup)}; ``setup`` runs untimed before each call. A callable
        leaves the rounds once it has ``min_runs`` kept calls and ``min_time`` seconds of them
        (or ``max_runs`` calls); slow ones (over 20 ms) get blocks of ``drop + 1``."""
        if min_time is None:
            min_time = 0.05 if self.quick else 0.3
        items = {k: (v if isinstance(v, tuple) else (v, None)) for k, v in fns.items()}
        times = {k: [] for k in items}
        order_rng = np.random.default_rng(12345)
        while True:
            active = [k for k, ts in times.items()
                      if len(ts) < max_runs and (len(ts) < min_runs or sum(ts) < min_time)]
            if not active:
                break
            for j in order_rng.permutation(len(active)):
                k = active[j]
                fn, setup = items[k]
                n = block if not times[k] or np.median(times[k]) < 0.02 else drop + 1
                for i in range(n):
                    if setup is not None:
                        setup()
                    t0 = time.perf_counter()
                    fn()
                    if i >= drop:
                        times[k].append(time.perf_counter() - t0)
        return {k: float(np.median(ts)) for k, ts in times.items()}

    def row(self, kernel, shape, ours, anchors, nbytes, **extra):
        """A bench row: ``ours`` raced against ``anchors`` ({name: fn}) in one interleaved run."""
        t = self.race({"pyembed": ours, **anchors})
        r = {"kernel": kernel, "shape": shape, "pyembed_s": t.pop("pyembed"), "anchors": t,
             "bytes": nbytes}
        r.update(extra)
        return r


def zipf_ids(rng, n, vocab, a=1.1):
    """n ids in [0, vocab) with P(k) ~ 1/(k+1)^a, shuffled (a realistic token distribution)."""
    p = 1.0 / np.arange(1, vocab + 1, dtype=np.float64) ** a
    p /= p.sum()
    return rng.choice(vocab, size=n, p=p).astype(np.int64)


def measure_memcpy(ctx):
    """Single copy bandwidth (GB/s counting read + write) of a 256 MiB buffer (64 MiB quick)."""
    n = (64 if ctx.quick else 256) << 20
    src = np.ones(n // 4, np.float32)
    dst = np.empty_like(src)
    t = ctx.timeit(lambda: np.copyto(dst, src))
    return 2 * n / t / 1e9


def core_shapes(quick):
    if quick:
        return [(50000, 512, 16384), (30000, 768, 8192)]
    return [(50000, 512, 16384), (128000, 4096, 8192), (30000, 768, 8192)]


def rows_core(ctx):
    torch = ctx.torch
    F = torch.nn.functional if torch is not None else None
    out = []
    rng = np.random.default_rng(0)
    for V, D, N in core_shapes(ctx.quick):
        emb = pyembed.Embedding(V, D, seed=0)
        W = emb.weight
        tW = torch.from_numpy(W) if torch is not None else None
        for dist in ("uniform", "zipf"):
            ids = rng.integers(0, V, N) if dist == "uniform" else zipf_ids(rng, N, V)
            uniq = len(np.unique(ids))
            shape = f"{V}x{D} {N} ids {dist} ({uniq} unique)"
            row_bytes = D * 4
            tids = torch.from_numpy(ids) if torch is not None else None
            # gather: reads the rows, writes the output
            anchors = {"np.take": lambda: np.take(W, ids, axis=0)}
            if torch is not None:
                anchors["torch F.embedding"] = lambda: F.embedding(tids, tW)
            out.append(ctx.row("gather", shape, lambda: emb(ids), anchors, 2 * N * row_bytes))
            # backward, three ways in one race: accumulating into rows that already hold a
            # gradient (np.add.at's contract: G keeps accumulating), into a gradient just cleared
            # by zero_grad (a training step; the clearing untimed), and with the clearing timed.
            # torch's dense backward allocates and fills a whole (V, D) gradient each call.
            g = rng.standard_normal((N, D), dtype=np.float32)
            emb.backward(ids, g)
            G = np.zeros_like(W)

            def step():
                emb.backward(ids, g)
                emb.zero_grad()

            def touch():  # the accumulating case needs the rows already touched
                if emb.table.touched.size == 0:
                    emb.backward(ids, g)

            fns = {"acc": (lambda: emb.backward(ids, g), touch),
                   "fresh": (lambda: emb.backward(ids, g), emb.zero_grad),
                   "step": (step, emb.zero_grad)}
            if N * D <= 16384 * 768:  # np.add.at takes seconds on the 128k x 4096 case
                fns["np.add.at"] = lambda: np.add.at(G, ids, g)
            if torch is not None:
                tg = torch.from_numpy(g)
                tz = torch.zeros(V, D)
                fns["torch embedding_dense_backward"] = (
                    lambda: torch.ops.aten.embedding_dense_backward(tg, tids, V, -1, False))
                fns["torch index_add_ (no alloc)"] = lambda: tz.index_add_(0, tids, tg)
            t = ctx.race(fns, min_runs=3)
            del G
            anchors = {k: v for k, v in t.items() if k not in ("acc", "fresh", "step")}
            step_bytes = N * row_bytes + 2 * uniq * row_bytes
            out.append({"kernel": "backward", "shape": shape, "pyembed_s": t["acc"],
                        "anchors": anchors, "bytes": step_bytes})
            out.append({"kernel": "backward (fresh grad)", "shape": shape, "pyembed_s": t["fresh"],
                        "anchors": anchors, "bytes": step_bytes})
            dense = {k: v for k, v in anchors.items() if k == "torch embedding_dense_backward"}
            out.append({"kernel": "backward+zero_grad", "shape": shape, "pyembed_s": t["step"],
                        "anchors": dense, "bytes": step_bytes + uniq * row_bytes})
            emb.zero_grad()
        del emb, W, tW
    return out


def _fmt_row(r, memcpy_gbps):
    t = r["pyembed_s"]
    gbps = r["bytes"] / t / 1e9 if r.get("bytes") else float("nan")
    parts = [f"{r['kernel']:<22} {r['shape']:<46} pyembed {t * 1e3:9.3f} ms  {gbps:6.1f} GB/s "
             f"({gbps / memcpy_gbps:4.2f} of memcpy)"]
    for name, s in r["anchors"].items():
        parts.append(f"    vs {name:<34} {s * 1e3:9.3f} ms  -> {s / t:6.2f}x")
    return "\n".join(parts)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m pyembed.bench", description=__doc__.split("\n\n")[1])
    ap.add_argument("--quick", action="store_true", help="smaller shapes, shorter timings")
    ap.add_argument("--threads", type=int, default=1, help="threads for pyembed and torch (default 1)")
    ap.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    ap.add_argument("--only", metavar="AREA", action="append", choices=AREAS,
                    help="run only this area (repeatable): " + ", ".join(AREAS))
    args = ap.parse_args(argv)
    if args.threads < 1:
        ap.error("--threads must be >= 1")
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    pyembed.set_num_threads(args.threads)
    ctx = Context(args.quick, args.threads, torch)
    ctx.memcpy_gbps = measure_memcpy(ctx)
    print(f"pyembed {pyembed.__version__} bench: {platform.machine()} {platform.processor() or ''} "
          f"{os.cpu_count()} cpus, threads={args.threads}, openmp={pyembed._core.have_openmp()}, "
          f"numpy {np.__version__}, torch {torch.__version__ if torch else 'not installed'}")
    llc, stream_min = pyembed._core.stream_threshold()
    print(f"last-level cache {llc / 2**20:.0f} MiB, streaming stores from {stream_min / 2**20:.0f} MiB; "
          f"medians of interleaved rounds")
    print(f"memcpy {ctx.memcpy_gbps:.1f} GB/s (read + write), ratios are anchor time / pyembed time")
    all_rows = []
    for area in args.only or AREAS:
        if area == "core":
            fn = rows_core
        else:
            try:
                fn = importlib.import_module(f"pyembed._bench_{area}").rows
            except ImportError:
                continue
        for r in fn(ctx):
            print(_fmt_row(r, ctx.memcpy_gbps))
            sys.stdout.flush()
            all_rows.append(r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"memcpy_gbps": ctx.memcpy_gbps, "threads": args.threads, "rows": all_rows}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

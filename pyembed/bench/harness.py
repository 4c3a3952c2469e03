"""The bench's one timing harness: :func:`race` (medians of interleaved rounds in random order),
the :class:`Context` every area's ``rows(ctx)`` gets, the Zipf ids, the memcpy figure, and the
printed form of a row. Every row of ``python -m pyembed.bench`` is timed by :func:`race`."""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np

MAX_RUNS = 200


def race(fns: Mapping[str, Callable | tuple], min_time: float = 0.3, min_runs: int = 5,
         max_runs: int | Mapping[str, int] = MAX_RUNS, block: int = 6,
         drop: int = 2) -> dict[str, float]:
    """Median seconds of each of several callables, timed in interleaved rounds so that a
    drift in the shared machine's speed hits every contender alike. Each round runs the
    callables in a fresh random order (seeded: the same every run), each a block of ``block``
    consecutive calls of which the first ``drop`` are not kept: what ran just before leaves
    dirty lines and a cold cache that the next kernel pays for (up to 30% on a 24 MiB
    gather, measured by racing np.take against itself), which is not the kernel's own cost.
    ``fns``: {name: fn or (fn, setup)}; ``setup`` runs untimed before each call. A callable
    leaves the rounds once it has ``min_runs`` kept calls and ``min_time`` seconds of them
    (or ``max_runs`` calls: an int, or {name: int} for a slow anchor timed fewer times, the
    others getting MAX_RUNS); slow ones (over 20 ms) get blocks of ``drop + 1``."""
    items = {k: (v if isinstance(v, tuple) else (v, None)) for k, v in fns.items()}
    cap = ({k: max_runs.get(k, MAX_RUNS) for k in items} if isinstance(max_runs, Mapping)
           else dict.fromkeys(items, max_runs))
    times = {k: [] for k in items}
    order_rng = np.random.default_rng(12345)
    while True:
        active = [k for k, ts in times.items()
                  if len(ts) < cap[k] and (len(ts) < min_runs or sum(ts) < min_time)]
        if not active:
            break
        for j in order_rng.permutation(len(active)):
            k = active[j]
            fn, setup = items[k]
            n = block if not times[k] or np.median(times[k]) < 0.02 else drop + 1
            n = min(n, drop + cap[k] - len(times[k]))
            for i in range(n):
                if setup is not None:
                    setup()
                t0 = time.perf_counter()
                fn()
                if i >= drop:
                    times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(ts)) for k, ts in times.items()}


class Context:
    def __init__(self, quick, threads, torch):
        self.quick = quick
        self.threads = threads
        self.torch = torch
        self.memcpy_gbps = float("nan")

    def race(self, fns, min_time=None, min_runs=5, max_runs=MAX_RUNS, block=6, drop=2):
        """:func:`race`, with a shorter ``min_time`` by default under ``--quick``."""
        if min_time is None:
            min_time = 0.05 if self.quick else 0.3
        return race(fns, min_time, min_runs, max_runs, block, drop)

    def row(self, kernel, shape, ours, anchors, nbytes, **extra):
        """A bench row: ``ours`` raced against ``anchors`` ({name: fn}) in one interleaved run."""
        t = self.race({"pyembed": ours, **anchors})
        r = {"kernel": kernel, "shape": shape, "pyembed_s": t.pop("pyembed"), "anchors": t,
             "bytes": nbytes}
        r.update(extra)
        return r


def zipf_ids(rng, n, vocab, a=1.1):
    """n int64 ids in [0, vocab) with P(k) ~ 1/(k+1)^a, shuffled (a realistic token
    distribution: word frequencies)."""
    p = 1.0 / np.arange(1, vocab + 1, dtype=np.float64) ** a
    p /= p.sum()
    return rng.choice(vocab, size=n, p=p).astype(np.int64)


def measure_memcpy(ctx):
    """Single copy bandwidth (GB/s counting read + write) of a 256 MiB buffer (64 MiB quick)."""
    n = (64 if ctx.quick else 256) << 20
    src = np.ones(n // 4, np.float32)
    dst = np.empty_like(src)
    t = ctx.race({"memcpy": lambda: np.copyto(dst, src)})["memcpy"]
    return 2 * n / t / 1e9


def fmt_row(r, memcpy_gbps):
    """A row as printed: pyembed's time, GB/s and fraction of memcpy, then each anchor's ratio."""
    t = r["pyembed_s"]
    gbps = r["bytes"] / t / 1e9 if r.get("bytes") else float("nan")
    parts = [f"{r['kernel']:<22} {r['shape']:<46} pyembed {t * 1e3:9.3f} ms  {gbps:6.1f} GB/s "
             f"({gbps / memcpy_gbps:4.2f} of memcpy)"]
    for name, s in r["anchors"].items():
        parts.append(f"    vs {name:<34} {s * 1e3:9.3f} ms  -> {s / t:6.2f}x")
    return "\n".join(parts)

"""Baselines shared by the benchmarks: gradient descent on as many cores as the flow gets.

A benchmark that compares the flow with ``w`` worker threads against GD gives GD the same
``w`` cores: the batch split into ``w`` contiguous parts, one thread each, run at once (JAX
releases the GIL while a compiled program runs). It prints the flow's ratio to GD on one
thread and to GD on the same cores, without and with compile (each side's own compile).

Imported as ``from _baselines import ...`` by the scripts run as
``python benchmarks/bench_X.py`` (their folder is then first on ``sys.path``). Nothing here
imports flowtools at import time: ``bench_flow_vs_gd.py --cold`` must configure the caches
before flowtools is imported.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np


class GDRun(NamedTuple):
    """GD on a batch, possibly in parts on several threads (arrays in the batch's order)."""

    threads: int
    wall: float  # seconds, compile excluded
    compile: float  # seconds, the parts' programs (0 when already compiled)
    status: np.ndarray
    steps: np.ndarray
    loss_final: np.ndarray
    theta_final: np.ndarray


def gd_on_threads(problem, theta0, lr, *, max_iter, threads=1, loss_threshold=1e-15):
    """``run_gd`` on ``threads`` contiguous parts of the (B, p) batch ``theta0`` at once.

    ``threads = 1`` is one ``run_gd`` call on the whole batch (its wall and compile time).
    Otherwise the parts' programs (one per distinct part size) are compiled first by a run
    that stops at once (loss threshold 1e300: every start is below it; the threshold is a
    traced argument, so it is the same program), and that compile time is reported apart,
    as for one thread; the wall time is that of the parts run concurrently. Each member's
    GD is its own recurrence, so the parts' end points are the batch's (to round-off: a
    batch of another size is another compiled program).
    """
    import flowtools as ft

    theta0 = np.atleast_2d(np.asarray(theta0, dtype=float))
    threads = max(1, min(int(threads), len(theta0)))
    if threads == 1:
        r = ft.run_gd(problem, theta0, lr, max_iter=max_iter, loss_threshold=loss_threshold)
        return GDRun(1, r.wall_time, r.compile_time, np.asarray(r.status),
                     np.asarray(r.steps), np.asarray(r.loss_final), np.asarray(r.theta_final))
    parts = np.array_split(theta0, threads)
    compile_s = sum(ft.run_gd(problem, theta0[:k], lr, max_iter=max_iter,
                              loss_threshold=1e300).compile_time
                    for k in sorted({len(p) for p in parts}))
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        runs = list(pool.map(lambda part: ft.run_gd(problem, part, lr, max_iter=max_iter,
                                                    loss_threshold=loss_threshold), parts))
    wall = time.perf_counter() - t0
    return GDRun(threads, wall, compile_s,
                 *(np.concatenate([np.asarray(getattr(r, k)) for r in runs])
                   for k in ("status", "steps", "loss_final", "theta_final")))


def flow_ratios(flow_wall, flow_compile, gd_one: GDRun, gd_same: GDRun):
    """(flow/GD 1 thread, the same with compile, flow/GD same cores, the same with compile)."""
    return (flow_wall / gd_one.wall,
            (flow_wall + flow_compile) / (gd_one.wall + gd_one.compile),
            flow_wall / gd_same.wall,
            (flow_wall + flow_compile) / (gd_same.wall + gd_same.compile))


def ratio_line(flow_wall, flow_compile, gd_one: GDRun, gd_same: GDRun) -> str:
    """The four ratios of ``flow_ratios`` in words, for a one-line report."""
    r1, r1c, rs, rsc = flow_ratios(flow_wall, flow_compile, gd_one, gd_same)
    return (f"flow/GD on 1 thread {r1:.3f} (with compile {r1c:.3f}); flow/GD on the same "
            f"{gd_same.threads} thread(s) {rs:.3f} (with compile {rsc:.3f})")

"""Flow versus GD on the paper's Figure 3 protocol: Example 1, n = 6 grid, Gaussian
initialization of scale 1e-8, seeds 0–399 (issue 11: target flow ≤ 0.25× GD's wall time,
≤ 0.5× counting compile).

Prints, measured in this one run:
  * gradient descent with the paper's protocol (lr 0.05, ≤ 1e6 iterations, stop at loss
    ≤ 1e-15): wall time, compile time, how many it brought to ≤ 1e-15 — the baseline, once
    on one thread (one batch) and once on as many threads as each worker count the flow
    gets (the batch split into that many contiguous parts, run concurrently: JAX releases
    the GIL while a program runs), so that the flow with w worker threads is compared with
    GD on the same w cores;
  * the gradient flow with solve_flow's defaults (Kvaerno5, newton="stage", rtol 1e-10,
    stop at loss ≤ 1e-15, t1 = 1e12) for each batch size × worker count asked for: wall
    time, compile time (and whether it came from the disk caches), how many reached
    ≤ 1e-15, steps; the ratios flow/GD against GD on one thread and against GD on the same
    number of threads, without and with compile (each side's own compile).

``--cold`` switches the disk caches off (``FLOWTOOLS_JAX_CACHE=off``, set before
flowtools is imported): every compile is then a first compile on a fresh machine. Without
it the caches of earlier runs serve (the second process on a machine).

    python benchmarks/bench_flow_vs_gd.py [--seeds 400] [--batch-size 64 1]
        [--workers 2 1] [--max-iter 1000000] [--cold]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def gd_on_threads(ft, pb, theta0, lr, max_iter, threads):
    """GD on ``threads`` contiguous parts of the batch at once: (wall s, compile s, statuses).

    The parts' program is compiled first by a run that stops at once (loss threshold 1e3:
    every start is below it; the threshold is a traced argument, so it is the same
    program), and that compile time is reported apart, as for the one-thread baseline.
    """
    import numpy as np

    parts = np.array_split(theta0, threads)
    sizes = {len(p) for p in parts}
    compile_s = sum(ft.run_gd(pb, theta0[:k], lr, max_iter=max_iter,
                              loss_threshold=1e3).compile_time for k in sorted(sizes))
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        runs = list(pool.map(lambda part: ft.run_gd(pb, part, lr, max_iter=max_iter), parts))
    wall = time.perf_counter() - t0
    return wall, compile_s, np.concatenate([r.status for r in runs])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=400)
    ap.add_argument("--batch-size", type=int, nargs="+", default=[64, 1])
    ap.add_argument("--workers", type=int, nargs="+", default=None,
                    help="worker threads (default: the machine's cores, then 1)")
    ap.add_argument("--max-iter", type=int, default=10**6)
    ap.add_argument("--cold", action="store_true", help="no disk caches (first compile)")
    args = ap.parse_args(argv)
    if args.cold:
        if "flowtools" in sys.modules:
            raise SystemExit("--cold must be set before flowtools is imported")
        os.environ["FLOWTOOLS_JAX_CACHE"] = "off"

    import numpy as np

    import flowtools as ft
    from flowtools.integrate.options import available_cores
    from flowtools.status import Status

    workers = args.workers or sorted({available_cores(), 1}, reverse=True)
    pb = ft.example1()
    theta0 = pb.init_gaussian(1e-8, seed=range(args.seeds))
    print(f"Example 1, n = 6 grid, scale 1e-8, seeds 0–{args.seeds - 1}; "
          f"disk caches {'off (cold)' if args.cold else 'on'}")
    gd = ft.run_gd(pb, theta0, 0.05, max_iter=args.max_iter)
    n_gd = int(np.sum(gd.status == Status.CONVERGED))
    print(f"baseline GD lr 0.05, ≤ {args.max_iter:.0e} it., 1 thread: wall "
          f"{gd.wall_time:7.2f} s, compile {gd.compile_time:5.2f} s; reached ≤ 1e-15: "
          f"{n_gd}/{args.seeds}")
    gd_on = {1: (gd.wall_time, gd.compile_time)}
    for w in sorted(set(workers) - {1}):
        wall, comp, status = gd_on_threads(ft, pb, theta0, 0.05, args.max_iter, w)
        n_w = int(np.sum(status == Status.CONVERGED))
        gd_on[w] = (wall, comp)
        print(f"baseline GD on {w} threads ({w} parts): wall {wall:7.2f} s, compile "
              f"{comp:5.2f} s; reached ≤ 1e-15: {n_w}/{args.seeds}; speed-up over 1 thread "
              f"{gd.wall_time / wall:.2f}")
    print(f"{'flow (batch, workers)':>22} {'wall s':>7} {'compile s':>9} {'reached':>8} "
          f"{'steps med/max':>13} {'/GD 1 thr':>9} {'/GD same':>8} {'same, w/ compile':>16}")
    for bs in args.batch_size:
        for w in workers:
            fl = ft.solve_flow(pb, theta0, batch_size=bs, workers=w, max_steps=100_000)
            n_fl = int(np.sum(fl.status == Status.CONVERGED))
            g_wall, g_comp = gd_on[w]
            ratio1 = fl.wall_time / gd.wall_time
            ratio = fl.wall_time / g_wall
            with_c = (fl.wall_time + fl.compile_time) / (g_wall + g_comp)
            print(f"{f'kvaerno5 ({bs}, {w})':>22} {fl.wall_time:7.2f} {fl.compile_time:9.2f} "
                  f"{n_fl:>4}/{args.seeds:<3} {np.median(fl.steps):6.0f}/{fl.steps.max():<6d} "
                  f"{ratio1:9.3f} {ratio:8.3f} {with_c:16.3f}", flush=True)
    print("targets (issue 22): flow ≤ 0.25× GD on the same cores, ≤ 0.5× counting compile")


if __name__ == "__main__":
    main()

"""Flow versus GD on the paper's Figure 3 protocol: Example 1, n = 6 grid, Gaussian
initialization of scale 1e-8, seeds 0–399 (issue 11: target flow ≤ 0.25× GD's wall time,
≤ 0.5× counting compile).

Prints, measured in this one run:
  * gradient descent with the paper's protocol (lr 0.05, ≤ 1e6 iterations, stop at loss
    ≤ 1e-15) — the baseline, once on one thread (one batch) and once on as many threads as
    each worker count the flow gets (``_baselines.gd_on_threads``: the batch split into
    that many contiguous parts, run concurrently — JAX releases the GIL while a program
    runs), so that the flow with w worker threads is compared with GD on the same w cores:
    one line per thread count with wall time, compile time, how many reached ≤ 1e-15 and
    the speed-up over one thread;
  * the gradient flow with solve_flow's defaults (Kvaerno5, newton="stage", rtol 1e-10,
    stop at loss ≤ 1e-15) for each batch size × worker count asked for, one table row
    each: wall time, compile time, how many reached ≤ 1e-15, accepted steps median/max,
    and four ratios flow/GD of wall times — against GD on one thread (``/GD 1 thr``), the
    same counting each side's own compile (``w/ comp``), against GD on the same number of
    threads as the flow's workers (``/GD same``) and that counting compile (``w/ comp``).

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

from _baselines import flow_ratios, gd_on_threads  # benchmarks/_baselines.py


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
    gd_on = {1: gd_on_threads(pb, theta0, 0.05, max_iter=args.max_iter)}
    for w in sorted(set(workers) - {1}):
        gd_on[w] = gd_on_threads(pb, theta0, 0.05, max_iter=args.max_iter, threads=w)
    for w, g in gd_on.items():
        n_w = int(np.sum(g.status == Status.CONVERGED))
        print(f"baseline GD lr 0.05, ≤ {args.max_iter:.0e} it., {w} thread(s) ({w} parts): "
              f"wall {g.wall:7.2f} s, compile {g.compile:5.2f} s; reached ≤ 1e-15: "
              f"{n_w}/{args.seeds}; speed-up over 1 thread {gd_on[1].wall / g.wall:.2f}")
    print(f"{'flow (batch, workers)':>22} {'wall s':>7} {'compile s':>9} {'reached':>8} "
          f"{'steps med/max':>13} {'/GD 1 thr':>9} {'w/ comp':>7} {'/GD same':>8} "
          f"{'w/ comp':>7}")
    for bs in args.batch_size:
        for w in workers:
            fl = ft.solve_flow(pb, theta0, batch_size=bs, workers=w, max_steps=100_000)
            n_fl = int(np.sum(fl.status == Status.CONVERGED))
            r1, r1c, rs, rsc = flow_ratios(fl.wall_time, fl.compile_time, gd_on[1], gd_on[w])
            print(f"{f'kvaerno5 ({bs}, {w})':>22} {fl.wall_time:7.2f} {fl.compile_time:9.2f} "
                  f"{n_fl:>4}/{args.seeds:<3} {np.median(fl.steps):6.0f}/{fl.steps.max():<6d} "
                  f"{r1:9.3f} {r1c:7.3f} {rs:8.3f} {rsc:7.3f}", flush=True)
    print("targets (issue 22): flow ≤ 0.25× GD on the same cores, ≤ 0.5× counting compile")


if __name__ == "__main__":
    main()

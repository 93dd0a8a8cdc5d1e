"""Flow versus GD on the paper's Figure 3 protocol: Example 1, n = 6 grid, Gaussian
initialization of scale 1e-8, seeds 0–399 (issue 11: target flow ≤ 0.25× GD's wall time,
≤ 0.5× counting compile).

Prints, measured in this one run:
  * gradient descent with the paper's protocol (lr 0.05, ≤ 1e6 iterations, stop at loss
    ≤ 1e-15): wall time, compile time, how many it brought to ≤ 1e-15 — the baseline;
  * the gradient flow with solve_flow's defaults (Kvaerno5, newton="stage", rtol 1e-10,
    stop at loss ≤ 1e-15, t1 = 1e12) for each batch size × worker count asked for: wall
    time, compile time (and whether it came from the disk caches), how many reached
    ≤ 1e-15, steps; the ratios flow/GD without and with compile (each side's own compile).

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
    print(f"baseline GD lr 0.05, ≤ {args.max_iter:.0e} it.: wall {gd.wall_time:7.2f} s, "
          f"compile {gd.compile_time:5.2f} s; reached ≤ 1e-15: {n_gd}/{args.seeds}")
    print(f"{'flow (batch, workers)':>22} {'wall s':>7} {'compile s':>9} {'reached':>8} "
          f"{'steps med/max':>13} {'flow/GD':>8} {'with compile':>12}")
    for bs in args.batch_size:
        for w in workers:
            fl = ft.solve_flow(pb, theta0, batch_size=bs, workers=w, max_steps=100_000)
            n_fl = int(np.sum(fl.status == Status.CONVERGED))
            ratio = fl.wall_time / gd.wall_time
            with_c = (fl.wall_time + fl.compile_time) / (gd.wall_time + gd.compile_time)
            print(f"{f'kvaerno5 ({bs}, {w})':>22} {fl.wall_time:7.2f} {fl.compile_time:9.2f} "
                  f"{n_fl:>4}/{args.seeds:<3} {np.median(fl.steps):6.0f}/{fl.steps.max():<6d} "
                  f"{ratio:8.3f} {with_c:12.3f}", flush=True)
    print("targets: flow/GD ≤ 0.25, with compile ≤ 0.5 (issue 11)")


if __name__ == "__main__":
    main()

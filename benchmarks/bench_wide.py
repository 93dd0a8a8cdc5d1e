"""Width 1000 (the paper's Figure 5) with the default call of the flow, against GD on the
same cores.

Example 1's data (n = 6 grid, target tanh(x + 1)) with σ(x) = x/(1 + x²) and width
m = 1000 (p = 3000), the four trials of Figure 5 (scales 1e-8 … 1e-14, C_k/C_1 =
1.5 + 0.0015(k − 1)). Baseline, measured in the same run: GD with the figure's protocol
(lr 0.01, 1e5 iterations, batched), once on one thread (one batch) and once on as many
threads as the flow's workers (``_baselines.gd_on_threads``: the four trials split into
that many contiguous parts, run concurrently — JAX releases the GIL while a program runs).
The flow: ``solve_flow(pb, θ0, t1=lr·max_iter, workers=w)`` with every other option at its
default — ``solver="auto"`` picks the explicit Dopri8 above 256 parameters (a dense
3000 × 3000 Jacobian per Newton iterate made the implicit default take minutes), and
batch_size 1 there, so the w workers share the four trials.

Prints: one line per GD baseline (threads, wall time, compile time, end losses, speed-up
over one thread); the flow's line (method, workers, wall time, compile time, accepted
steps, end losses); and the ratios of wall times flow/GD on one thread and flow/GD on the
same w threads, each without and with compile (each side's own compile time).

    python benchmarks/bench_wide.py [--width 1000] [--lr 0.01] [--max-iter 100000]
        [--workers W]
"""

from __future__ import annotations

import argparse

import numpy as np
from _baselines import gd_on_threads, ratio_line  # benchmarks/_baselines.py

import flowtools as ft
from flowtools.integrate.options import available_cores

SCALES = (1e-8, 1e-10, 1e-12, 1e-14)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--max-iter", type=int, default=10**5)
    ap.add_argument("--workers", type=int, default=None,
                    help="the flow's worker threads and GD's threads (default: the cores)")
    args = ap.parse_args(argv)
    pb = ft.make_problem(6, activation="rational", width=args.width)
    ratios = 1.5 + 0.0015 * np.arange(1, args.width)
    theta0 = np.stack([pb.with_ratios(pb.init_gaussian(s, seed=k), ratios)
                       for k, s in enumerate(SCALES)])
    w = min(args.workers or available_cores(), len(theta0))
    T = args.lr * args.max_iter
    print(f"width {args.width} (p = {pb.n_params}), {len(SCALES)} trials, flow time {T:g}, "
          f"{w} worker(s)")
    fmt = {"float_kind": lambda v: f"{v:.3e}"}
    gd_on = {k: gd_on_threads(pb, theta0, args.lr, max_iter=args.max_iter, threads=k)
             for k in sorted({1, w})}
    for k, g in gd_on.items():
        print(f"GD   lr {args.lr:g} × {args.max_iter:.0e}, {k} thread(s): {g.wall:7.2f} s "
              f"(+{g.compile:.1f} s compile), end losses "
              f"{np.array2string(g.loss_final, formatter=fmt)}; speed-up over 1 thread "
              f"{gd_on[1].wall / g.wall:.2f}")
    fl = ft.solve_flow(pb, theta0, t1=T, workers=w)
    print(f"flow default call ({fl.method}, {w} worker(s)): {fl.wall_time:7.2f} s "
          f"(+{fl.compile_time:.1f} s compile), steps {fl.steps.tolist()}, end losses "
          f"{np.array2string(fl.loss_final, formatter=fmt)}")
    print(f"ratios (target ≤ 1): {ratio_line(fl.wall_time, fl.compile_time, gd_on[1], gd_on[w])}")


if __name__ == "__main__":
    main()

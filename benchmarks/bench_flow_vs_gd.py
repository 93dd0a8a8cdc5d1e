"""Flow versus GD on the paper's Figure 3 protocol: Example 1, n = 6 grid, Gaussian
initialization of scale 1e-8, seeds 0–399.

Prints, measured in this one run:
  * the gradient flow (diffrax Kvaerno5, rtol 1e-10, stop at loss ≤ 1e-15, t1 = 1e12):
    wall time for all 400, how many reached loss ≤ 1e-15, steps;
  * gradient descent with the paper's protocol (lr 0.05, ≤ 1e6 iterations, stop at loss
    ≤ 1e-15): wall time and how many it brought to ≤ 1e-15;
  * their ratio (target: flow / GD < 1), compile times separately.

    python benchmarks/bench_flow_vs_gd.py [--seeds 400] [--batch-size 1 8]
"""

from __future__ import annotations

import argparse

import numpy as np

import flowtools as ft
from flowtools.trajectory import Status


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=400)
    ap.add_argument("--batch-size", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--max-iter", type=int, default=10**6)
    args = ap.parse_args(argv)

    pb = ft.example1()
    theta0 = pb.init_gaussian(1e-8, seed=range(args.seeds))
    ct = pb.ratio_tilde(theta0)

    print(f"Example 1, n = 6 grid, scale 1e-8, seeds 0–{args.seeds - 1}")
    gd = ft.run_gd(pb, theta0, 0.05, max_iter=args.max_iter)
    n_gd = int(np.sum(gd.status == Status.CONVERGED))
    print(f"GD  lr 0.05, ≤ {args.max_iter:.0e} it.: {gd.wall_time:8.2f} s "
          f"(compile {gd.compile_time:.2f} s), reached ≤ 1e-15: {n_gd}/{args.seeds}")

    for bs in args.batch_size:
        fl = ft.solve_flow(pb, theta0, batch_size=bs, max_steps=100_000)
        n_fl = int(np.sum(fl.status == Status.CONVERGED))
        print(f"flow kvaerno5, batch {bs:3d}:        {fl.wall_time:8.2f} s "
              f"(compile {fl.compile_time:.2f} s), reached ≤ 1e-15: {n_fl}/{args.seeds}; "
              f"steps median {np.median(fl.steps):.0f}, max {fl.steps.max()}; "
              f"t_final median {np.median(fl.t_final):.3g}, max {fl.t_final.max():.3g}")
        print(f"    ratio flow/GD wall time: {fl.wall_time / gd.wall_time:.3f}")
        if bs == args.batch_size[0]:
            slow = np.argsort(fl.steps)[::-1][:3]
            print("    slowest seeds (seed, steps, t_final, c̃):",
                  [(int(i), int(fl.steps[i]), f"{fl.t_final[i]:.3g}", round(float(ct[i]), 4))
                   for i in slow])
            q1 = ct > 0.72
            print(f"    seeds with c̃ > 0.72 (slow Q1 side): {q1.sum()}; GD converged among "
                  f"them: {int(np.sum(gd.status[q1] == Status.CONVERGED))}")


if __name__ == "__main__":
    main()

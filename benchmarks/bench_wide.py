"""Width 1000 (the paper's Figure 5) with the default call of the flow, against GD.

Example 1's data (n = 6 grid, target tanh(x + 1)) with σ(x) = x/(1 + x²) and width
m = 1000 (p = 3000), the four trials of Figure 5 (scales 1e-8 … 1e-14, C_k/C_1 =
1.5 + 0.0015(k − 1)). Baseline, measured in the same run: GD with the figure's protocol
(lr 0.01, 1e5 iterations, batched). The flow: ``solve_flow(pb, θ0, t1=lr·max_iter)`` with
every other option at its default — ``solver="auto"`` picks the explicit Dopri8 above 256
parameters (a dense 3000 × 3000 Jacobian per Newton iterate made the implicit default take
minutes). Prints both wall times (compile apart), the end losses and the ratio.

    python benchmarks/bench_wide.py [--width 1000] [--max-iter 100000]
"""

from __future__ import annotations

import argparse

import numpy as np

import flowtools as ft

SCALES = (1e-8, 1e-10, 1e-12, 1e-14)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--max-iter", type=int, default=10**5)
    args = ap.parse_args(argv)
    pb = ft.make_problem(6, activation="rational", width=args.width)
    ratios = 1.5 + 0.0015 * np.arange(1, args.width)
    theta0 = np.stack([pb.with_ratios(pb.init_gaussian(s, seed=k), ratios)
                       for k, s in enumerate(SCALES)])
    T = args.lr * args.max_iter
    print(f"width {args.width} (p = {pb.n_params}), {len(SCALES)} trials, flow time {T:g}")
    gd = ft.run_gd(pb, theta0, args.lr, max_iter=args.max_iter)
    fl = ft.solve_flow(pb, theta0, t1=T)
    fmt = {"float_kind": lambda v: f"{v:.3e}"}
    print(f"GD   lr {args.lr:g} × {args.max_iter:.0e}: {gd.wall_time:7.2f} s "
          f"(+{gd.compile_time:.1f} s compile), end losses "
          f"{np.array2string(gd.loss_final, formatter=fmt)}")
    print(f"flow default call ({fl.method}): {fl.wall_time:7.2f} s "
          f"(+{fl.compile_time:.1f} s compile), steps {fl.steps.tolist()}, end losses "
          f"{np.array2string(fl.loss_final, formatter=fmt)}")
    print(f"ratio flow/GD wall time: {fl.wall_time / gd.wall_time:.2f} (target ≤ 1); with "
          f"compile: {(fl.wall_time + fl.compile_time) / (gd.wall_time + gd.compile_time):.2f}")


if __name__ == "__main__":
    main()

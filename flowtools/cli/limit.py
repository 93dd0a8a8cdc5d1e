"""The small-initialization limit h(θ, t) = lim_{α→0} φ(αθ, t + log(1/α)/μ1) (Theorem 1).

The direction θ comes from the initial-state options (a Gaussian draw, with --ratio c
rescaling the second neuron so that C1/C2 = c). By default it is normalized to ‖C(θ)‖ = 1,
so the times are those of the paper's aligned plots; --keep-scale uses θ as drawn
(h(sθ, t) = h(θ, t + log(s)/μ1)).

Examples:
  flowtools limit --ratio 0.5 --times -2 0 2 10
  flowtools limit --ratio 2 --t-range -2 10 50 --method both --plot h.png
  flowtools limit --ratio 0.5 --endpoint
"""

from __future__ import annotations

import numpy as np

from flowtools.cli._common import (
    add_init_arguments,
    add_problem_arguments,
    problem_from_args,
    theta0_from_args,
)

NAME = "limit"
HELP = "h(θ, t): the α → 0 limit of the flow on the aligned time axis, by two methods"


def add_arguments(p) -> None:
    add_problem_arguments(p)
    add_init_arguments(p)
    g = p.add_argument_group("limit")
    g.add_argument("--times", "-t", type=float, nargs="+", default=None,
                   help="limiting times t (default: --t-range -2 10 50)")
    g.add_argument("--t-range", type=float, nargs=3, metavar=("T0", "T1", "N"),
                   default=None, help="N evenly spaced times from T0 to T1")
    g.add_argument("--method", default="extrapolate",
                   choices=["extrapolate", "manifold", "both"],
                   help="α-extrapolation, unstable-manifold parametrization, or both with "
                   "their difference (default extrapolate)")
    g.add_argument("--keep-scale", action="store_true",
                   help="use θ as drawn instead of normalizing to ‖C(θ)‖ = 1")
    g.add_argument("--rtol", type=float, default=1e-13, help="flow tolerance (default 1e-13)")
    g.add_argument("--endpoint", action="store_true",
                   help="also print lim_{t→∞} h (the flow's stopping rules, loss ≤ 1e-15)")
    g.add_argument("--plot", metavar="PATH", default=None, help="save a plot of h(θ, t)")


def run(args) -> int:
    from flowtools.errors import FlowtoolsError
    from flowtools.limit import limit, limit_endpoint

    pb = problem_from_args(args)
    theta = theta0_from_args(pb, args)
    if theta.ndim != 1:
        raise FlowtoolsError("give one --seed: h is computed for one direction θ.")
    if not args.keep_scale:
        C = np.linalg.norm(pb.imbalance(theta))
        if C == 0:
            raise FlowtoolsError("C(θ) = 0: θ has no component in the top eigenspace.")
        theta = theta / C
    if args.times is not None:
        ts = np.asarray(args.times, dtype=float)
    else:
        t0, t1, n = args.t_range if args.t_range is not None else (-2.0, 10.0, 50)
        if int(n) != n or n < 1:
            raise FlowtoolsError(f"--t-range N must be a positive integer, got {n}.")
        ts = np.linspace(t0, t1, int(n))
    methods = ["extrapolate", "manifold"] if args.method == "both" else [args.method]
    results = {m: limit(pb, theta, ts, method=m, rtol=args.rtol) for m in methods}
    print(f"C(θ) = {np.array2string(pb.imbalance(theta), precision=6)}")
    for res in results.values():
        print(res.summary())
    if len(results) == 2:
        e, m = results["extrapolate"], results["manifold"]
        d = np.linalg.norm(e.thetas - m.thetas, axis=-1) / np.linalg.norm(m.thetas, axis=-1)
        print(f"max relative difference between the methods: {d.max():.3e} "
              f"(extrapolation's own estimate: max {e.rel_error.max():.3e})")
    if args.endpoint:
        ep = limit_endpoint(pb, theta)
        print(f"lim t→∞ h: θ = {np.array2string(ep.theta, precision=10)}, loss {ep.loss:.3e}, "
              f"stopped at limiting time t = {ep.t:.6g}: {ep.message}")
    if args.plot:
        _plot(results, args.plot)
        print(f"plot written to {args.plot}")
    return 0


def _plot(results, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    two = len(results) == 2
    fig, axes = plt.subplots(1, 2 if two else 1, figsize=(11 if two else 6, 4), squeeze=False)
    ax = axes[0, 0]
    for name, res in results.items():
        style = "-" if name == "extrapolate" else "--"
        for j in range(res.thetas.shape[1]):
            ax.plot(res.ts, res.thetas[:, j], style, label=f"θ{j + 1} ({name})")
    ax.set_xlabel("t (limiting time axis)")
    ax.set_ylabel("h(θ, t)")
    ax.legend(fontsize=6, ncol=2)
    if two:
        e, m = results["extrapolate"], results["manifold"]
        d = np.linalg.norm(e.thetas - m.thetas, axis=-1) / np.linalg.norm(m.thetas, axis=-1)
        ax = axes[0, 1]
        ax.semilogy(e.ts, d, label="|extrapolate − manifold| / |h|")
        ax.semilogy(e.ts, e.rel_error, ":", label="extrapolation error estimate")
        ax.set_xlabel("t")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

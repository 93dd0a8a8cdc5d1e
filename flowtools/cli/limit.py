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
    TimeRange,
    add_init_arguments,
    add_problem_arguments,
    finite_float,
    open_interval,
    problem_from_args,
    theta0_from_args,
)

NAME = "limit"
HELP = "h(θ, t): the α → 0 limit of the flow on the aligned time axis, by two methods"


def add_arguments(p) -> None:
    add_problem_arguments(p)
    add_init_arguments(p)
    g = p.add_argument_group("limit")
    times = g.add_mutually_exclusive_group()
    times.add_argument("--times", "-t", type=finite_float("a time t"), nargs="+",
                       default=None, help="limiting times t, finite (default: --t-range -2 "
                       "10 50)")
    times.add_argument("--t-range", type=finite_float("T0, T1 and N"), nargs=3,
                       action=TimeRange, metavar=("T0", "T1", "N"), default=None,
                       help="N evenly spaced times from T0 to T1 (finite; N an integer ≥ 1)")
    g.add_argument("--method", default="extrapolate",
                   choices=["extrapolate", "manifold", "both"],
                   help="α-extrapolation, unstable-manifold parametrization, or both with "
                   "their difference (default extrapolate)")
    g.add_argument("--keep-scale", action="store_true",
                   help="use θ as drawn instead of normalizing to ‖C(θ)‖ = 1")
    g.add_argument("--rtol", type=open_interval("the flow tolerance rtol", 0, 1),
                   default=1e-13, help="flow tolerance in (0, 1) (default 1e-13)")
    g.add_argument("--endpoint", action="store_true",
                   help="also print lim_{t→∞} h (the flow's stopping rules, loss ≤ 1e-15)")
    g.add_argument("--plot", metavar="PATH", default=None,
                   help="save a plot of h(θ, t) (format from the suffix: .png, .pdf, .svg, …)")


def _check_plot_path(path):
    """--plot: a writable file path with a format matplotlib writes (checked before work)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backend_bases import FigureCanvasBase

    from flowtools._io import check_output_file
    from flowtools.errors import FlowtoolsError

    path = check_output_file(path, what="--plot")
    kinds = FigureCanvasBase.get_supported_filetypes()
    if path.suffix and path.suffix[1:].lower() not in kinds:
        raise FlowtoolsError(f"--plot {str(path)!r}: matplotlib cannot write {path.suffix!r} "
                             f"files; use one of {', '.join('.' + k for k in sorted(kinds))}.")
    return path


def run(args) -> int:
    from flowtools.errors import FlowtoolsError
    from flowtools.limiting import limit, limit_endpoint
    from flowtools.limiting.reference import check_memory

    if args.plot:
        _check_plot_path(args.plot)
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
        check_memory(1, n, pb.n_params)  # N validated while parsing (TimeRange); sized here
        ts = np.linspace(t0, t1, n)
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
    from flowtools._io import savefig

    try:
        savefig(fig, path, dpi=120)  # atomically
    finally:
        plt.close(fig)

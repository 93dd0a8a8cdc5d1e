"""Figure 1 of Zhao, Bai & Zhang: generalization error against the initialization scale.

Example 1 (two tanh neurons with bias, target tanh(x + 1)). Left (Figures 1(a)–(e)): n
points evenly spaced on [−2, 2], n = 2…6, Gaussian initializations N(0, σ²I) from seeds
0…S−1 at each scale σ; the generalization error (``flowtools.branches.
generalization_error``: RMS over 1000 evenly spaced points of [−2, 2], Appendix C) of the
end point, mean and per-seed, against σ. Right (Figure 1(f)): n i.i.d. standard Gaussian
inputs (data seed = initialization seed), the error on 1000 i.i.d. standard Gaussian test
points averaged over the seeds, against n, one curve per σ.

Training rule: the gradient flow to ℓ ≤ 1e-15 (``solve_flow``, the t → ∞ end point; the
paper trains GD at lr 0.5 — beyond GD's stability edge near Q* for n = 6 on this setup —
and stops at 1e-15, or 1e-8 for its panels (d), (e)). Seeds: 20 per point by default
(``--paper``: the paper's 100 for (a)–(e) and 50 for (f)).

    python -m demos.fig1_init_scale [--out out/demos/] [--quick] [--paper]

Writes fig1_init_scale.png and .json.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import flowtools as ft  # noqa: E402
from flowtools.branches import generalization_error  # noqa: E402
from flowtools.experiments import finish, parser, prepare  # noqa: E402

SCALES = (1.0, 0.3, 0.1, 0.03, 0.01, 1e-3, 1e-4, 1e-6, 1e-8)
SCALES_F = (1.0, 0.1, 1e-2, 1e-4, 1e-8)
QUICK_SCALES = (1.0, 0.1, 1e-2, 1e-4, 1e-8)


def end_points(pb, scales, seed):
    """Flow end points from the seed's Gaussian draw at each scale (one batch per seed:
    the same compiled solver serves every seed and every dataset with this n)."""
    z = pb.init_gaussian(1.0, seed=int(seed))
    theta0 = np.asarray(scales)[:, None] * z[None, :]
    tr = ft.solve_flow(pb, theta0, t1=1e12, loss_threshold=1e-15, max_steps=100_000)
    return tr


def grid_panel_data(n, scales, seeds):
    pb = ft.example1(n)
    err = np.full((len(scales), len(seeds)), np.nan)
    conv = np.zeros((len(scales), len(seeds)), bool)
    for j, s in enumerate(seeds):
        tr = end_points(pb, scales, s)
        err[:, j] = generalization_error(pb, tr.theta_final)
        conv[:, j] = tr.converged
    return err, conv


def gaussian_panel_data(n, scales, seeds, n_test=1000):
    X_test = np.random.default_rng(12345).standard_normal((n_test, 1))
    err = np.full((len(scales), len(seeds)), np.nan)
    for j, s in enumerate(seeds):
        pb = ft.example1(n, sampling="gaussian", seed=int(s))
        tr = end_points(pb, scales, s)
        err[:, j] = generalization_error(pb, tr.theta_final, X_test=X_test)
    return err


def main(argv=None):
    ap = parser(__doc__,
                quick_help="n = 3, 4, 6; 5 scales; 6 seeds; (f) for n = 3, 5, 7 with 6 seeds")
    ap.add_argument("--paper", action="store_true",
                    help="the paper's seed counts: 100 per point (a–e), 50 for (f)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per point (a–e)")
    args = ap.parse_args(argv)
    out, t_start = prepare(args)
    if args.quick:
        ns, ns_f, scales, scales_f, S, S_f = (3, 4, 6), (3, 5, 7), QUICK_SCALES, \
            QUICK_SCALES, 6, 6
    else:
        ns, ns_f, scales, scales_f = (2, 3, 4, 5, 6), (2, 3, 4, 5, 6, 7, 8), SCALES, SCALES_F
        S, S_f = (100, 50) if args.paper else (20, 20)
    S = args.seeds or S
    # (f) reuses the (a–e) compilation for the same n when its batch has the same shape
    if not args.quick:
        scales_f = scales

    grid = {n: grid_panel_data(n, scales, np.arange(S)) for n in ns}
    gauss = {n: gaussian_panel_data(n, scales_f, np.arange(S_f)) for n in ns_f}

    fig, (ax_a, ax_f) = plt.subplots(1, 2, figsize=(14, 5.2), constrained_layout=True)
    sc = np.asarray(scales)
    for k, n in enumerate(ns):
        err, _ = grid[n]
        col = f"C{k}"
        ax_a.loglog(np.repeat(sc, S) * np.exp(0.04 * (k - 2)), np.maximum(err.ravel(), 1e-12),
                    ".", color=col, alpha=0.25, ms=3)
        ax_a.loglog(sc, np.maximum(err.mean(1), 1e-12), "o-", color=col, lw=1.6,
                    label=f"n = {n}: mean over {S} seeds")
    ax_a.axhline(1e-7, color="k", ls="--", lw=0.8, label="1e-7 (recovery)")
    ax_a.invert_xaxis()
    ax_a.set_xlabel(r"initialization scale $\sigma$ (log; smaller to the right)")
    ax_a.set_ylabel("generalization error (RMS on 1000 points of [−2, 2], log)")
    ax_a.set_title("(a)–(e) evenly spaced samples on [−2, 2]: dots = seeds, lines = mean",
                   fontsize=10)
    ax_a.grid(True, which="major", alpha=0.3)
    ax_a.legend(fontsize=8)
    nf = np.asarray(ns_f)
    for i, s in enumerate(scales_f):
        m = np.array([gauss[n][i].mean() for n in ns_f])
        ax_f.semilogy(nf, np.maximum(m, 1e-12), "o-", lw=1.4, label=f"σ = {s:g}")
    ax_f.set_xlabel("sample size n (i.i.d. standard Gaussian inputs)")
    ax_f.set_ylabel("mean generalization error (1000 Gaussian test points, log)")
    ax_f.set_title(f"(f) Gaussian samples: mean over {S_f} data/initialization seeds",
                   fontsize=10)
    ax_f.grid(True, which="major", alpha=0.3)
    ax_f.legend(fontsize=8, ncol=2)
    fig.suptitle("Figure 1 — Example 1: generalization error of the gradient-flow end point "
                 "(ℓ ≤ 1e-15) against the initialization scale")
    data = {
        "settings": {"ns_grid": ns, "ns_gaussian": ns_f, "scales": scales,
                     "scales_f": scales_f, "seeds": S, "seeds_f": S_f,
                     "training": "gradient flow to loss <= 1e-15"},
        "grid": {str(n): {"mean": grid[n][0].mean(1).tolist(),
                          "median": np.median(grid[n][0], 1).tolist(),
                          "fraction_below_1e-7": (grid[n][0] < 1e-7).mean(1).tolist(),
                          "fraction_reached_1e-15": grid[n][1].mean(1).tolist(),
                          "per_seed": grid[n][0].tolist()} for n in ns},
        "gaussian": {str(n): {"mean": gauss[n].mean(1).tolist(),
                              "per_seed": gauss[n].tolist()} for n in ns_f},
    }

    print(f"Figure 1: mean generalization error (grid, {S} seeds); scales {list(scales)}")
    for n in ns:
        print(f"  n = {n}: " + " ".join(f"{v:.1e}" for v in grid[n][0].mean(1))
              + "   fraction < 1e-7: " + " ".join(f"{v:.2f}" for v in
                                                   (grid[n][0] < 1e-7).mean(1)))
    print(f"  (f) Gaussian, {S_f} seeds, rows σ = {list(scales_f)}, columns n = {list(ns_f)}:")
    for i, s in enumerate(scales_f):
        print(f"    σ = {s:<6g}: " + " ".join(f"{gauss[n][i].mean():.1e}" for n in ns_f))
    return finish(out, "fig1_init_scale", fig, data, t_start)


if __name__ == "__main__":
    main()

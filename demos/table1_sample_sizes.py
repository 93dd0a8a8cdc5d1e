"""Table 1 of Zhao, Bai & Zhang, measured: how often small initialization recovers the target
for each of the table's sample sizes.

Example 1 (two tanh neurons with bias, target tanh(x + 1)), n = 3, 4, 5, 6 points evenly
spaced on [−2, 2] — the table's optimistic sample size (3), separation sample sizes of Q2
(4, the paper's text) and Q1 (5), and n = 6 where every global minimum lies in Q*.
For each n, Gaussian initializations of scale 1e-8 from seeds 0…S−1 are trained by the
gradient flow to ℓ ≤ 1e-15 (``solve_flow``; ``--method gd`` for GD with the paper's lr 0.5)
and an end point counts as a recovery when its generalization error
(``flowtools.branches.generalization_error``: RMS over 1000 points of [−2, 2]) is below
1e-7 (the paper's Appendix C / Figure 9 criterion). Reported per n: the fraction recovered,
the fraction that reached the loss threshold, and the recovery fraction in bins of
c̃ = min(|c|, 1/|c|) (the paper's section 6: for n = 3 recovery only at c̃ = 0 or 1).

    python -m demos.table1_sample_sizes [--out out/demos/] [--quick] [--method flow|gd]

Writes table1_sample_sizes.csv, .json and .png (generalization error and recovery fraction
against c̃ per n).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import flowtools as ft  # noqa: E402
from flowtools.branches import generalization_error  # noqa: E402
from flowtools.experiments import finish, parser, prepare, write_csv  # noqa: E402

NAMES = {3: "optimistic sample size", 4: "separation sample size of Q2",
         5: "separation sample size of Q1", 6: "Q* = ℓ⁻¹(0)"}
RECOVERY_TOL = 1e-7
BINS = np.array([0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0])


def recovered(problem, theta_final, tol=RECOVERY_TOL):
    """Recovery flags and generalization errors of end points (B, p)."""
    err = np.atleast_1d(generalization_error(problem, theta_final))
    return err < tol, err


def binned_fraction(ct, flags, bins=BINS):
    """Fraction of recoveries per c̃ bin (NaN for an empty bin) and the bin counts."""
    idx = np.clip(np.digitize(ct, bins) - 1, 0, len(bins) - 2)
    counts = np.bincount(idx, minlength=len(bins) - 1)
    hits = np.bincount(idx, weights=flags.astype(float), minlength=len(bins) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, hits / np.maximum(counts, 1), np.nan), counts


def measure(n, seeds, *, scale=1e-8, method="flow", lr=0.5, max_iter=10**6):
    """Train Example 1 with n grid points from each seed; return a result row (dict)."""
    pb = ft.example1(n)
    theta0 = pb.init_gaussian(scale, seed=seeds)
    ct = pb.ratio_tilde(theta0)
    if method == "flow":
        tr = ft.solve_flow(pb, theta0, t1=1e12, loss_threshold=1e-15, max_steps=100_000)
    else:
        tr = ft.run_gd(pb, theta0, lr, max_iter=max_iter, loss_threshold=1e-15, n_save=3)
    # diverged GD runs (lr beyond the stability edge) count as not recovered
    ok = np.all(np.isfinite(tr.theta_final), axis=-1) & (np.abs(tr.loss_final) < 1e6)
    flags = np.zeros(len(seeds), bool)
    err = np.full(len(seeds), np.nan)
    if ok.any():
        flags[ok], err[ok] = recovered(pb, tr.theta_final[ok])
    frac_bins, counts = binned_fraction(ct, flags)
    return {"n": n, "name": NAMES.get(n, ""), "seeds": len(seeds),
            "recovered": int(flags.sum()), "fraction": float(flags.mean()),
            "reached_loss_1e-15": int(np.sum(tr.converged)), "diverged": int(np.sum(~ok)),
            "median_gen_error": float(np.nanmedian(err)),
            "max_gen_error_recovered": float(np.max(err[flags])) if flags.any() else None,
            "min_gen_error_not_recovered": (float(np.nanmin(err[~flags])) if (~flags).any()
                                            else None),
            "c_tilde_recovered_range": ([float(ct[flags].min()), float(ct[flags].max())]
                                        if flags.any() else None),
            "fraction_by_c_tilde_bin": frac_bins.tolist(), "bin_counts": counts.tolist(),
            "per_seed": {"c_tilde": ct.tolist(), "gen_error": err.tolist(),
                         "loss_final": tr.loss_final.tolist()},
            "wall_s": tr.wall_time, "compile_s": tr.compile_time}


def main(argv=None):
    ap = parser(__doc__, quick_help="20 seeds per n")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per n (default 100)")
    ap.add_argument("--ns", type=int, nargs="+", default=[3, 4, 5, 6])
    ap.add_argument("--scale", type=float, default=1e-8)
    ap.add_argument("--method", choices=("flow", "gd"), default="flow")
    ap.add_argument("--lr", type=float, default=0.5, help="GD learning rate (paper: 0.5)")
    ap.add_argument("--max-iter", type=int, default=10**6, help="GD iterations")
    args = ap.parse_args(argv)
    out, t_start = prepare(args)
    seeds = np.arange(args.seeds or (20 if args.quick else 100))

    rows = [measure(n, seeds, scale=args.scale, method=args.method, lr=args.lr,
                    max_iter=args.max_iter) for n in args.ns]

    how = ("gradient flow to ℓ ≤ 1e-15" if args.method == "flow" else
           f"GD lr {args.lr:g}, ≤ {args.max_iter:.0e} iterations")
    fig, (ax_e, ax) = plt.subplots(1, 2, figsize=(13, 4.8), constrained_layout=True)
    mids = 0.5 * (BINS[1:] + BINS[:-1])
    for k, r in enumerate(rows):
        ps = r["per_seed"]
        ax_e.semilogy(ps["c_tilde"], np.maximum(ps["gen_error"], 1e-12), "osD^v"[k % 5],
                      ms=4, alpha=0.7, label=f"n = {r['n']}")
        ax.plot(mids + 0.006 * (k - 1.5), r["fraction_by_c_tilde_bin"], "osD^v"[k % 5],
                ls=("-", "--", "-.", ":")[k % 4], ms=7 - k, lw=1.4,
                label=f"n = {r['n']} ({r['name']}): {r['fraction']:.0%} overall")
    ax_e.axhline(RECOVERY_TOL, color="k", lw=1, ls="--", label=f"recovery: < {RECOVERY_TOL:g}")
    ax_e.set_xlabel(r"$\tilde c = \min(|c|, 1/|c|)$ at initialization")
    ax_e.set_ylabel("generalization error (RMS on 1000 points of [−2, 2], log)")
    ax_e.set_title("per seed: generalization error of the end point", fontsize=10)
    ax_e.grid(True, which="major", alpha=0.3)
    ax_e.legend(fontsize=8)
    ax.set_xlabel(r"$\tilde c$ bin centre (bins " + ", ".join(f"{b:g}" for b in BINS) + ")")
    ax.set_ylabel(f"fraction recovered (gen. error < {RECOVERY_TOL:g})")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("fraction recovered per c̃ bin", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(f"Table 1 measured — Example 1, grid data, scale {args.scale:g}, "
                 f"{len(seeds)} seeds per n, {how}")
    write_csv(out / "table1_sample_sizes.csv",
              ["n", "name", "seeds", "recovered", "fraction", "reached_loss_1e-15",
               "median_gen_error", "c_tilde_recovered_min", "c_tilde_recovered_max"],
              [[r["n"], r["name"], r["seeds"], r["recovered"], f"{r['fraction']:.3f}",
                r["reached_loss_1e-15"], f"{r['median_gen_error']:.3g}",
                *(r["c_tilde_recovered_range"] or [None, None])] for r in rows])
    data = {"settings": {"scale": args.scale, "method": args.method, "lr": args.lr,
                         "max_iter": args.max_iter, "recovery_tol": RECOVERY_TOL,
                         "bins": BINS.tolist()},
            "rows": rows}

    print(f"Table 1 measured ({how}, scale {args.scale:g}, {len(seeds)} seeds per n)")
    print(f"{'n':>2}  {'name':<30} {'recovered':>10} {'→1e-15':>7} {'median err':>11}  "
          "by c̃ bin " + " ".join(f"[{a:g},{b:g})" for a, b in zip(BINS[:-1], BINS[1:],
                                                                     strict=True)))
    for r in rows:
        fb = " ".join("  -  " if not np.isfinite(f) else f"{f:5.2f}"
                      for f in r["fraction_by_c_tilde_bin"])
        print(f"{r['n']:>2}  {r['name']:<30} {r['recovered']:>4}/{r['seeds']:<4} "
              f"{r['reached_loss_1e-15']:>7} {r['median_gen_error']:>11.2e}  {fb}")
    print(f"wrote {out / 'table1_sample_sizes.csv'}")
    finish(out, "table1_sample_sizes", fig, data, t_start,
           null_means="in fraction_by_c_tilde_bin: no seed fell in that c̃ bin; in "
           "per_seed.gen_error (and median_gen_error): not measured, the run diverged; "
           "elsewhere a number that is not finite (NaN or ±infinity, e.g. per_seed.loss_final "
           "of a diverged run)")
    return rows


if __name__ == "__main__":
    main()

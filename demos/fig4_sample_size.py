"""Figure 4 of Zhao, Bai & Zhang: generalization error against c̃ for each sample size.

Example 1 (two tanh neurons with bias, target tanh(x + 1)) on n i.i.d. standard Gaussian
inputs (data seeds 0–4), n = 3, 4, 5, 6. For each c̃ on a grid in (0, 1] the initial state
is ``Problem.init_ratio(c̃, 1e-20, seed=0)`` (Gaussian of scale 1e-20, second neuron
rescaled to C1/C2 = c̃ — under small initialization c̃ stands for every initialization,
Theorem 2), trained by the gradient flow to ℓ ≤ 1e-20 or a certified stationary point
(``solve_flow`` with t1 = 1e16: the slowest degenerate tails, n = 5, reach ℓ = 1e-20 near
t = 4e13; runs cut off at ``--max-steps`` would be counted in the JSON — none is, with
the default budget, on the full grid). The paper uses GD at lr 0.5 to ℓ ≤ 1e-15 (or 1e7 iterations);
at ℓ = 1e-15 the error on Gaussian test points of an end point in Q* is still ~1e-8–1e-7,
above the paper's recovery floor, hence the lower threshold here (``--loss-threshold``).

Generalization errors (``flowtools.branches.generalization_error`` on 1000 i.i.d. standard
Gaussian test points) below 1e-8 count as recovery and are drawn at 1e-8, as in the paper.
Last panel (Figure 4(f)): the end points for n = 4, data seed 3, both neurons as (w, b, a)
oriented onto the target's +w0, with Q1 (dashed line) and Q2 (plane a = 0).

    python -m demos.fig4_sample_size [--out out/demos/] [--quick]

Writes fig4_sample_size.png and .json.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import flowtools as ft  # noqa: E402
from flowtools.branches import classify, generalization_error  # noqa: E402
from flowtools.experiments import finish, parser, plot_endpoints_3d, prepare  # noqa: E402

FLOOR = 1e-8


def sweep(n, data_seed, cts, scale, X_test, loss_threshold, max_steps):
    pb = ft.example1(n, sampling="gaussian", seed=data_seed)
    theta0 = np.stack([pb.init_ratio(c, scale, seed=0) for c in cts])
    tr = ft.solve_flow(pb, theta0, t1=1e16, loss_threshold=loss_threshold,
                       max_steps=max_steps)
    err = generalization_error(pb, tr.theta_final, X_test=X_test)
    return pb, tr, np.asarray(err)


def main(argv=None):
    ap = parser(__doc__, quick_help="n = 3, 4; data seeds 0, 3; 12 c̃")
    ap.add_argument("--scale", type=float, default=1e-20)
    ap.add_argument("--loss-threshold", type=float, default=1e-20,
                    help="stop the flow at this loss (default 1e-20: at the paper's 1e-15 the "
                         "error on Gaussian test points is still ~1e-8–1e-7 on Q*)")
    ap.add_argument("--max-steps", type=int, default=20_000,
                    help="solver steps per trajectory (the full grid needs at most ~3800)")
    args = ap.parse_args(argv)
    out, t_start = prepare(args)
    if args.quick:
        ns, dseeds, cts = (3, 4), (0, 3), np.concatenate([[1e-3], np.linspace(0.1, 1, 11)])
    else:
        ns, dseeds = (3, 4, 5, 6), (0, 1, 2, 3, 4)
        cts = np.concatenate([[1e-3, 0.01], np.linspace(0.04, 1, 25)])
    X_test = np.random.default_rng(12345).standard_normal((1000, 1))

    res, f_panel = {}, None
    for n in ns:
        for ds in dseeds:
            pb, tr, err = sweep(n, ds, cts, args.scale, X_test, args.loss_threshold,
                                args.max_steps)
            lab = np.asarray(classify(pb, tr.theta_final).branch).astype(str)
            res[(n, ds)] = {"gen_error": err.tolist(), "branch": lab.tolist(),
                            "loss_final": tr.loss_final.tolist(),
                            "reached_threshold": int(np.sum(tr.converged)),
                            "status": [ft.Status(int(v)).name for v in tr.status]}
            if n == 4 and ds == 3:
                f_panel = (pb, tr)

    fig = plt.figure(figsize=(16, 8.5), constrained_layout=True)
    ncol = 3
    for k, n in enumerate(ns):
        ax = fig.add_subplot(2, ncol, k + 1)
        for ds in dseeds:
            e = np.maximum(res[(n, ds)]["gen_error"], FLOOR)
            line, = ax.semilogy(cts, e, "o-", ms=3, lw=1, label=f"data seed {ds}")
            cut = np.array(res[(n, ds)]["status"]) == "MAX_STEPS"
            ax.semilogy(cts[cut], e[cut], "o", ms=6, mfc="none", color=line.get_color())
        ax.axhline(FLOOR, color="k", lw=0.8, ls="--")
        ax.set_ylim(FLOOR / 3, 3)
        ax.set_xlabel(r"$\tilde c = C_1/C_2$ at initialization")
        ax.set_ylabel("generalization error (floor 1e-8 = recovery)")
        ax.set_title(f"({'abcde'[k]}) n = {n} Gaussian samples", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7)
    if f_panel is not None:
        pb, tr = f_panel
        ax = fig.add_subplot(2, ncol, 6, projection="3d")
        sc = plot_endpoints_3d(ax, pb, tr.theta_final, color=cts, size=12)
        ax.set_title("(f) n = 4, data seed 3: end points (both neurons)\n"
                     "colour: c̃; plane a = 0: Q2's silent neuron", fontsize=10)
        ax.legend(fontsize=7, loc="upper left")
        fig.colorbar(sc, ax=ax, shrink=0.6, label=r"$\tilde c$")
    fig.suptitle(f"Figure 4 — Example 1, Gaussian samples, scale {args.scale:g}: "
                 "generalization error of the gradient-flow end point\n"
                 f"(ℓ ≤ {args.loss_threshold:g}, stationary or {args.max_steps} steps; open "
                 "markers: stopped at the step limit) against c̃")
    summary = {}
    for n in ns:
        fr = [float(np.mean(np.array(res[(n, ds)]["gen_error"]) < FLOOR)) for ds in dseeds]
        ms = [int(np.sum(np.array(res[(n, ds)]["status"]) == "MAX_STEPS")) for ds in dseeds]
        summary[str(n)] = {"fraction_recovered_per_data_seed": fr,
                           "stopped_at_max_steps_per_data_seed": ms}
    data = {"settings": {"ns": ns, "data_seeds": dseeds, "c_tilde": cts.tolist(),
                         "scale": args.scale, "floor": FLOOR},
            "summary": summary,
            "runs": {f"n={n},seed={ds}": v for (n, ds), v in res.items()}}
    print(f"Figure 4: fraction of c̃ values recovered (< {FLOOR:g}) per data seed {dseeds}")
    for n in ns:
        print(f"  n = {n}: " + " ".join(f"{v:.2f}" for v in
                                       summary[str(n)]["fraction_recovered_per_data_seed"])
              + "   (runs stopped at max_steps: "
              + " ".join(map(str, summary[str(n)]["stopped_at_max_steps_per_data_seed"])) + ")")
    finish(out, "fig4_sample_size", fig, data, t_start, dpi=110)
    return summary


if __name__ == "__main__":
    main()

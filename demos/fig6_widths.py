"""Figure 6 of Zhao, Bai & Zhang: which neurons grow, and the learned function, for several
widths.

f_θ(x) = Σ_{k=1}^m a_k tanh(w_k x + b_k), target tanh(x + 1), n = 3 points evenly spaced
on [−2, 2], Gaussian initialization of scale 1e-20 from seed 0 (Appendix C), trained by the
gradient flow to ℓ ≤ 1e-15 (``solve_flow`` with the explicit Dopri8 solver — the implicit
ones need a p × p Jacobian per step; the paper uses GD at lr 0.01). (a) For each width,
the final magnitude ‖(a_k, w_k, b_k)‖ of every neuron against its initial |C_k|
(``Problem.imbalance``): Theorem 1 / Eq. (2) — neurons with the largest |C_k| grow
first and dominate. (b) The learned functions f_θ on [−2.5, 2.5] against the target, with
the generalization error (``flowtools.branches.generalization_error``).

    python -m demos.fig6_widths [--out out/demos/] [--quick]

Writes fig6_widths.png and .json.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import flowtools as ft  # noqa: E402
from flowtools.branches import generalization_error  # noqa: E402
from flowtools.experiments import finish, parser, prepare  # noqa: E402

WIDTHS = (2, 10, 100, 1000)


def main(argv=None):
    ap = parser(__doc__, quick_help="widths 2, 10, 100")
    ap.add_argument("--widths", type=int, nargs="+", default=None)
    ap.add_argument("--scale", type=float, default=1e-20)
    args = ap.parse_args(argv)
    out, t_start = prepare(args)
    widths = args.widths or ((2, 10, 100) if args.quick else WIDTHS)

    runs = {}
    for m in widths:
        pb = ft.make_problem(3, width=m)
        th0 = pb.init_gaussian(args.scale, seed=0)
        tr = ft.solve_flow(pb, th0, t1=1e12, solver="dopri8", loss_threshold=1e-15,
                           max_steps=200_000)
        C0 = np.abs(pb.imbalance(th0))
        blocks = np.asarray(tr.theta_final).reshape(m, pb.block)
        mag = np.linalg.norm(blocks, axis=-1)
        runs[m] = dict(pb=pb, tr=tr, C0=C0, mag=mag,
                       err=float(generalization_error(pb, tr.theta_final)))

    fig, axes = plt.subplots(1, 2, figsize=(14, 5.2), constrained_layout=True)
    ax = axes[0]
    for k, m in enumerate(widths):
        r = runs[m]
        rel_c = r["C0"] / r["C0"].max()
        sc = ax.scatter(rel_c, r["mag"] / r["mag"].max(), c=r["C0"] / r["C0"].max(),
                        cmap="viridis", vmin=0, vmax=1, s=14, marker="osD^v"[k % 5],
                        label=f"m = {m}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"initial $|C_k| / \max_j |C_j|$ (log)")
    ax.set_ylabel(r"final $\|(a_k, w_k, b_k)\| / \max_j \|\cdot\|$ (log)")
    ax.set_title("(a) each dot a neuron (marker: width; colour: relative |C_k|):\n"
                 "the neurons with the largest |C_k| carry the weight", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    fig.colorbar(sc, ax=ax, label=r"$|C_k| / \max_j |C_j|$")

    ax = axes[1]
    xs = np.linspace(-2.5, 2.5, 400)
    pb0 = runs[widths[0]]["pb"]
    tg = pb0.target  # the single neuron that labelled the data, stored with the problem
    ax.plot(xs, tg(xs[:, None]), "k-", lw=3, alpha=0.35,
            label=f"target {tg.a0:g}·{tg.activation.name}({tg.w0[0]:g}x + {tg.b0 or 0:g})")
    for m in widths:
        r = runs[m]
        ax.plot(xs, np.asarray(r["pb"].predict(r["tr"].theta_final, xs[:, None])), lw=1.3,
                label=f"m = {m}: gen. error {r['err']:.1e}")
    ax.plot(np.asarray(pb0.X).ravel(), np.asarray(pb0.y), "ko", ms=6,
            label=f"training points (n = {len(pb0.y)})")
    ax.axvspan(-2.5, -2, color="0.9")
    ax.axvspan(2, 2.5, color="0.9")
    ax.set_xlabel("x (shaded: outside the training interval [−2, 2])")
    ax.set_ylabel("f(x)")
    ax.set_title("(b) learned functions after training (ℓ ≤ 1e-15)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(f"Figure 6 — tanh network of widths {list(widths)}, n = 3 grid, scale "
                 f"{args.scale:g}, seed 0: gradient flow (Dopri8)")
    data = {"settings": {"widths": widths, "n": 3, "scale": args.scale, "seed": 0},
            "runs": {str(m): {"gen_error": r["err"], "loss_final": float(r["tr"].loss_final),
                              "t_final": float(r["tr"].t_final),
                              "status": ft.Status(int(r["tr"].status)).name,
                              "steps": int(r["tr"].steps),
                              "neurons_above_10pct_of_max": int(np.sum(r["mag"] >
                                                                       0.1 * r["mag"].max())),
                              "rank_of_largest_neuron_by_C": int(
                                  np.argsort(-r["C0"]).tolist().index(int(np.argmax(r["mag"])))),
                              "abs_C0": r["C0"].tolist(), "final_magnitude": r["mag"].tolist()}
                     for m, r in runs.items()}}
    print("Figure 6: tanh, n = 3 grid, scale", args.scale)
    for m in widths:
        d = data["runs"][str(m)]
        print(f"  m = {m:5d}: gen. error {d['gen_error']:.2e}, {d['status'].lower()} at t = "
              f"{d['t_final']:.3g} ({d['steps']} steps); neurons > 10% of the largest: "
              f"{d['neurons_above_10pct_of_max']}; largest neuron has |C_k| rank "
              f"{d['rank_of_largest_neuron_by_C']}")
    return finish(out, "fig6_widths", fig, data, t_start)


if __name__ == "__main__":
    main()

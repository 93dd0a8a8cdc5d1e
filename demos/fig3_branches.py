"""Figure 3 of Zhao, Bai & Zhang: which part of the target set (Q1 or Q2) the end point lies
in, against the initial imbalance ratio c = C1/C2.

Example 1, n = 6 points evenly spaced on [−2, 2], Gaussian initialization of scale 1e-8,
seeds 0–399 (the paper's protocol, Appendix C). Two training rules:

* the gradient flow integrated until ℓ ≤ 1e-15 (``solve_flow``; the t → ∞ label — the
  convergence to Q1 is polynomial, so this runs to t ~ 1e8 and beyond for some seeds);
* GD with the paper's lr = 0.05 and 1e6 iterations (``run_gd``, stopping at ℓ ≤ 1e-15;
  the label of the iterate at the last iteration, flow time T = 5e4).

End points are labelled by ``flowtools.branches.classify`` (distance to Q1 and Q2 up to the
neuron swap and the sign symmetry, tolerance 0.1). Panel (a): both neurons of every flow
end point as points (w_k, b_k, a_k) — each oriented by the sign that maps w_k onto the
target's +w0 — with Q1 (dashed line w = b = 1) and Q2 (the plane a = 0 plus the point
(1, 1, 1)), and two flow trajectories. Panels (b, c): |c| against the seed, coloured by the
branch, with the paper's demarcation lines |c| = 1.35 and 0.74. The measured boundary on
c̃ = min(|c|, 1/|c|) is the threshold that best separates "Q1 iff c̃ > threshold".

    python -m demos.fig3_branches [--out out/demos/] [--quick]

Writes fig3_branches.png and .json (per-seed c, c̃, labels, losses).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import flowtools as ft  # noqa: E402
from flowtools.branches import classify  # noqa: E402
from flowtools.experiments import finish, parser, plot_endpoints_3d, prepare  # noqa: E402

PAPER_LINES = (1.35, 0.74)
COLORS = {"Q1": "C0", "Q2": "C1", "other": "0.5", "undecided": "C3"}


def boundary(ct, labels):
    """Best threshold b for the rule "Q1 iff c̃ > b" over the Q1/Q2-labelled seeds:
    (b, number of seeds the rule gets wrong, largest Q2 c̃, smallest Q1 c̃)."""
    ok = np.isin(labels, ("Q1", "Q2"))
    c, q1 = ct[ok], labels[ok] == "Q1"
    order = np.argsort(c)
    c, q1 = c[order], q1[order]
    # errors for the threshold just below c[j] (Q1 from j on): Q1 before j + Q2 from j on
    errs = np.concatenate([[0], np.cumsum(q1)]) + np.concatenate(
        [np.cumsum((~q1)[::-1])[::-1], [0]])
    j = int(np.argmin(errs))
    lo = c[j - 1] if j > 0 else 0.0
    hi = c[j] if j < len(c) else 1.0
    q2max = float(c[~q1].max()) if (~q1).any() else float("nan")
    q1min = float(c[q1].min()) if q1.any() else float("nan")
    return 0.5 * (lo + hi), int(errs[j]), q2max, q1min, (float(lo), float(hi))


def panel_a(ax, pb, flow, labels, ct):
    """Both neurons of each end point in (w, b, a), oriented onto +w0; Q1, Q2; 2 paths: the
    Q1 and the Q2 seed nearest the paper's boundary c̃ = 0.74."""
    paths = []
    for lab, col in (("Q1", "C0"), ("Q2", "C1")):
        idx = np.flatnonzero(labels == lab)
        if idx.size:
            i = idx[np.argmin(np.abs(ct[idx] - 0.74))]
            paths.append((flow[i], f"flow path, seed {i} (c̃ = {ct[i]:.2f}) → {lab}", col))
    sc = plot_endpoints_3d(ax, pb, flow.theta_final, color=ct, paths=paths, origin=True)
    ax.set_title("(a) flow end points, both neurons as (w, b, a)\n"
                 "(colour: c̃; shaded plane a = 0: Q2's silent neuron)", fontsize=10)
    ax.view_init(elev=18, azim=-60)
    ax.legend(fontsize=7, loc="upper left")
    return sc


def panel_seed(ax, seeds, absc, labels, title, b=None):
    if b is not None and np.isfinite(b):
        for y in (1 / b, b):
            ax.axhline(y, color="C2", lw=1.2, ls="--",
                       label=f"measured c̃ = {b:.3f}" if y == b else None)
    for lab in ("Q1", "Q2", "other", "undecided"):
        m = labels == lab
        if m.any():
            ax.scatter(seeds[m], absc[m], s=9, color=COLORS[lab], label=f"{lab} ({m.sum()})")
    for y in PAPER_LINES:
        ax.axhline(y, color="k", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("seed")
    ax.set_ylabel(r"$|c| = |C_1/C_2|$ at initialization (log)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(True, which="major", alpha=0.3)


def main(argv=None):
    ap = parser(__doc__, quick_help="80 seeds, GD 1e5 iterations")
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds (paper: 400)")
    ap.add_argument("--scale", type=float, default=1e-8)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--max-iter", type=int, default=None, help="GD iterations (paper: 1e6)")
    args = ap.parse_args(argv)
    out, t_start = prepare(args)
    n_seeds = args.seeds or (80 if args.quick else 400)
    max_iter = args.max_iter or (10**5 if args.quick else 10**6)

    pb = ft.example1()
    seeds = np.arange(n_seeds)
    theta0 = pb.init_gaussian(args.scale, seed=seeds)
    c = pb.ratio(theta0)
    ct = pb.ratio_tilde(theta0)

    flow = ft.solve_flow(pb, theta0, t1=1e12, loss_threshold=1e-15, max_steps=100_000)
    fl_lab = np.asarray(classify(pb, flow.theta_final).branch, dtype=object)
    fl_lab[~flow.converged] = "undecided"
    # the flow stopped at GD's horizon T = lr·max_iter: separates what in GD's labels comes
    # from the finite horizon and what from the discretization
    T = args.lr * max_iter
    flow_T = ft.solve_flow(pb, theta0, t1=T, loss_threshold=1e-15, max_steps=100_000)
    flT_lab = np.asarray(classify(pb, flow_T.theta_final).branch).astype(str)
    gd = ft.run_gd(pb, theta0, args.lr, max_iter=max_iter, loss_threshold=1e-15, n_save=3)
    gd_res = classify(pb, gd.theta_final)
    gd_lab = np.asarray(gd_res.branch, dtype=object)
    gd_lab[~np.isfinite(gd.loss_final)] = "undecided"
    fl_lab, gd_lab = fl_lab.astype(str), gd_lab.astype(str)

    stats = {}
    for name, lab in (("flow", fl_lab), ("gd", gd_lab), ("flow_at_T", flT_lab)):
        b, nerr, q2max, q1min, bracket = boundary(ct, lab)
        counts = {k: int(np.sum(lab == k)) for k in ("Q1", "Q2", "other", "undecided")}
        stats[name] = {"boundary_c_tilde": b, "boundary_abs_c": [1 / b, b],
                       "bracket": bracket, "misordered": nerr,
                       "largest_Q2_c_tilde": q2max, "smallest_Q1_c_tilde": q1min,
                       "counts": counts}
    agree = int(np.sum(fl_lab == gd_lab))

    fig = plt.figure(figsize=(17, 5.6), constrained_layout=True)
    ax_a = fig.add_subplot(1, 3, 1, projection="3d")
    sc = panel_a(ax_a, pb, flow, fl_lab, ct)
    fig.colorbar(sc, ax=ax_a, shrink=0.6, label=r"$\tilde c$")
    s_fl, s_gd = stats["flow"], stats["gd"]
    panel_seed(fig.add_subplot(1, 3, 2), seeds, np.abs(c), fl_lab,
               f"(b) gradient flow to ℓ ≤ 1e-15 (t → ∞)\nmeasured boundary c̃ = "
               f"{s_fl['boundary_c_tilde']:.3f} (|c| = {1 / s_fl['boundary_c_tilde']:.3f}, "
               f"{s_fl['boundary_c_tilde']:.3f}); black: paper's 1.35, 0.74",
               s_fl["boundary_c_tilde"])
    panel_seed(fig.add_subplot(1, 3, 3), seeds, np.abs(c), gd_lab,
               f"(c) GD lr = {args.lr:g}, {max_iter:.0e} iterations (label at the last "
               f"iterate)\nmeasured boundary c̃ = {s_gd['boundary_c_tilde']:.3f} "
               f"(|c| = {1 / s_gd['boundary_c_tilde']:.3f}, {s_gd['boundary_c_tilde']:.3f})",
               s_gd["boundary_c_tilde"])
    fig.suptitle(f"Figure 3 — Example 1, n = 6 grid, scale {args.scale:g}, seeds 0–"
                 f"{n_seeds - 1}: end point in Q1 (both neurons = target) or Q2 (one neuron "
                 "silent)")
    data = {
        "settings": {"n": 6, "sampling": "grid", "scale": args.scale, "seeds": n_seeds,
                     "lr": args.lr, "max_iter": max_iter, "flow_loss_threshold": 1e-15,
                     "classify_tol": 0.1, "paper_lines_abs_c": PAPER_LINES},
        "flow": dict(stats["flow"], wall_s=flow.wall_time, compile_s=flow.compile_time,
                     t_final_max=float(np.max(flow.t_final)),
                     t_final_median=float(np.median(flow.t_final)),
                     status={ft.Status(int(k)).name: int(np.sum(flow.status == k))
                             for k in np.unique(flow.status)}),
        "gd": dict(stats["gd"], wall_s=gd.wall_time, compile_s=gd.compile_time,
                   reached_loss_1e15=int(np.sum(gd.converged)),
                   max_final_loss=float(np.nanmax(gd.loss_final))),
        "flow_at_T": dict(stats["flow_at_T"], T=T),
        "flow_gd_same_label": agree,
        "disagreements": [
            {"seed": int(i), "c_tilde": float(ct[i]), "flow": fl_lab[i], "gd": gd_lab[i],
             "flow_at_T": flT_lab[i]} for i in np.flatnonzero(fl_lab != gd_lab)],
        "per_seed": {"c": c.tolist(), "c_tilde": ct.tolist(), "flow": fl_lab.tolist(),
                     "gd": gd_lab.tolist(), "flow_at_T": flT_lab.tolist(),
                     "flow_t_final": flow.t_final.tolist(),
                     "gd_loss_final": gd.loss_final.tolist()},
    }

    print(f"Figure 3: Example 1, n = 6, scale {args.scale:g}, {n_seeds} seeds")
    for name, lab in (("flow (t→∞)", "flow"), (f"GD lr {args.lr:g}, {max_iter:.0e} it.", "gd"),
                      (f"flow at t = {T:g}", "flow_at_T")):
        s = stats[lab]
        print(f"  {name}: counts {s['counts']}; boundary c̃ = {s['boundary_c_tilde']:.4f} "
              f"(|c| = {1 / s['boundary_c_tilde']:.3f} / {s['boundary_c_tilde']:.3f}; "
              f"bracket {s['bracket'][0]:.4f}–{s['bracket'][1]:.4f}), "
              f"misordered {s['misordered']}")
    print(f"  flow: {flow.wall_time:.1f} s (+{flow.compile_time:.1f} s compile), t_final max "
          f"{np.max(flow.t_final):.3g}; GD: {gd.wall_time:.1f} s, reached 1e-15: "
          f"{int(np.sum(gd.converged))}/{n_seeds}; same label: {agree}/{n_seeds}")
    return finish(out, "fig3_branches", fig, data, t_start)


if __name__ == "__main__":
    main()

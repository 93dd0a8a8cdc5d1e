"""Figure 5 of Zhao, Bai & Zhang: the Theorem-1 collapse for a wide network (m = 1000).

f_θ(x) = Σ_{k=1}^{1000} a_k σ(w_k x + b_k) with σ(x) = x/(1 + x²) ('rational'), target
tanh(x + 1) on n = 6 points evenly spaced on [−2, 2]. Four trials with their own seed and
initialization scale; in every trial neurons 2…1000 are rescaled so that
C_k/C_1 = 1.5 + 0.0015(k − 1) (``Problem.with_ratios``; the caption's formula, read for
k ≥ 2 since C_1/C_1 = 1), so all trials share C/‖C‖. Loss and the first two neurons'
parameters against the aligned time τ = t − log(1/‖C(θ0)‖)/μ1
(``flowtools.experiments.aligned_flow``), for the gradient flow (explicit Dopri8: the implicit
solvers need a 3000 × 3000 Jacobian per step) and for GD at the paper's lr = 0.01
(``aligned_gd``: shifted with GD's escape rate log(1 + lr·μ1)/lr).

Rescaling neuron k by r_k·C_1/C_k also scales the part of θ_k orthogonal to the top
eigenvector, by up to ~1000× for the neuron with the smallest |C_k|: the scales here are
chosen so that ‖θ0‖ stays small (it is reported).

    python -m demos.fig5_wide_network [--out out/demos/] [--quick]

Writes fig5_wide_network.png and .json.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import flowtools as ft  # noqa: E402
from flowtools.experiments import (  # noqa: E402
    aligned_flow,
    aligned_gd,
    collapse_deviation,
    finish,
    parser,
    plot_collapse,
    prepare,
    time_shift,
)

SCALES = (1e-8, 1e-10, 1e-12, 1e-14)
WINDOW = 30.0


def main(argv=None):
    ap = parser(__doc__, quick_help="width 100, GD 1e4 iterations, flow to τ = 100")
    ap.add_argument("--width", type=int, default=None, help="width m (paper: 1000)")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--max-iter", type=int, default=None, help="GD iterations (paper: 1e5)")
    ap.add_argument("--no-flow", action="store_true", help="GD only")
    ap.add_argument("--flow-tau-end", type=float, default=None,
                    help="aligned horizon of the flow (default: GD's, lr·max_iter)")
    args = ap.parse_args(argv)
    out, t_start = prepare(args)
    width = args.width or (100 if args.quick else 1000)
    max_iter = args.max_iter or (10**4 if args.quick else 10**5)

    pb = ft.make_problem(6, activation="rational", width=width)
    ratios = 1.5 + 0.0015 * np.arange(1, width)  # C_k/C_1 for k = 2…m
    seeds = list(range(len(SCALES)))
    theta0 = np.stack([pb.with_ratios(pb.init_gaussian(s, seed=k), ratios)
                       for k, s in zip(seeds, SCALES, strict=True)])
    C = pb.imbalance(theta0)
    Cn = np.linalg.norm(C, axis=-1)
    orient = np.sign(C[:, 0])  # σ odd: show each trial with C_1 > 0
    theta_norm0 = np.linalg.norm(theta0, axis=-1)
    shift_gd = time_shift(pb, theta0, lr=args.lr)
    tau_end = args.lr * max_iter + shift_gd.max()
    taus = np.concatenate([np.linspace(shift_gd.max(), WINDOW, 400),
                           np.geomspace(WINDOW, tau_end, 201)[1:]])

    gd = aligned_gd(pb, theta0, args.lr, taus, max_iter=max_iter, n_save=5000).flipped(orient)
    gd_dev = collapse_deviation(taus, gd.thetas, gd.losses, window=WINDOW, loss_floor=0.0)
    rows = [(f"GD, lr = {args.lr:g}, {max_iter:.0e} iterations", gd, gd_dev,
             r"$\tau = t - \log(1/\|C(\theta_0)\|)/\rho$, $\rho = \log(1+\eta\mu_1)/\eta$")]
    flow = None
    if not args.no_flow:
        fl_taus = taus[taus <= (args.flow_tau_end or tau_end)]
        flow = aligned_flow(pb, theta0, fl_taus, solver="dopri8", rtol=1e-10,
                            max_steps=200_000).flipped(orient)
        fl_dev = collapse_deviation(fl_taus, flow.thetas, flow.losses, window=WINDOW,
                                    loss_floor=0.0)
        rows.insert(0, ("gradient flow (Dopri8)", flow, fl_dev,
                        r"$\tau = t - \log(1/\|C(\theta_0)\|)/\mu_1$"))

    fig, axes = plt.subplots(len(rows), 2, figsize=(13, 4.3 * len(rows)),
                             constrained_layout=True, squeeze=False)
    labels = [f"scale {s:.0e}, seed {i}" for i, s in enumerate(SCALES)]
    for r, (label, runs, dev, xl) in enumerate(rows):
        ax_l, ax_p = axes[r]
        plot_collapse(ax_l, ax_p, runs, labels=labels, names=pb.param_names, n_params=6,
                      linthresh=WINDOW, xlabel=xl)
        ax_l.set_title(f"({'ac'[r]}) {label}: loss\n(max |Δlog10 ℓ| vs smallest scale on "
                       f"τ ≤ {WINDOW:g}: {np.max(dev.log10_loss[:-1]):.1e})", fontsize=10)
        ax_p.set_title(f"({'bd'[r]}) {label}: neurons 1 and 2, line style = trial\n(max |Δθ| "
                       f"vs smallest scale on τ ≤ {WINDOW:g}: {np.max(dev.param[:-1]):.1e})",
                       fontsize=10)
    fig.suptitle(f"Figure 5 — width {width}, σ(x) = x/(1+x²), n = 6 grid, target tanh(x+1), "
                 r"$C_k/C_1 = 1.5 + 0.0015(k-1)$: four seeds/scales, aligned by Theorem 1")
    g = gd.runs
    data = {
        "settings": {"width": width, "activation": "rational", "n": 6, "scales": SCALES,
                     "seeds": seeds, "lr": args.lr, "max_iter": max_iter, "mu1": pb.mu1,
                     "gd_escape_rate": gd.rate},
        "norm_C": Cn.tolist(), "norm_theta0": theta_norm0.tolist(),
        "gd": {"max_param_dev_tau_le_30": gd_dev.param[:-1].tolist(),
               "max_log10_loss_dev_tau_le_30": gd_dev.log10_loss[:-1].tolist(),
               "loss_final": g.loss_final.tolist(), "wall_s": g.wall_time,
               "compile_s": g.compile_time},
    }
    fmt = {"float_kind": lambda v: f"{v:.2e}"}
    print(f"Figure 5: width {width}, rational σ, n = 6; ‖θ0‖ = "
          f"{np.array2string(theta_norm0, precision=2)}")
    print(f"  GD lr {args.lr:g}, {max_iter:.0e} it.: {g.wall_time:.1f} s (+{g.compile_time:.1f}"
          f" s compile); max |Δθ| (τ ≤ {WINDOW:g}) vs smallest scale "
          f"{np.array2string(gd_dev.param[:-1], formatter=fmt)}; final losses "
          f"{np.array2string(g.loss_final, formatter=fmt)}")
    if flow is not None:
        trs = flow.runs
        data["flow"] = {"max_param_dev_tau_le_30": fl_dev.param[:-1].tolist(),
                        "max_log10_loss_dev_tau_le_30": fl_dev.log10_loss[:-1].tolist(),
                        "loss_final": [float(t.loss_final) for t in trs],
                        "t_final": [float(t.t_final) for t in trs],
                        "steps": [int(t.steps) for t in trs],
                        "status": [ft.Status(int(t.status)).name for t in trs],
                        "wall_s": sum(t.wall_time for t in trs),
                        "compile_s": sum(t.compile_time for t in trs)}
        d = data["flow"]
        print(f"  flow Dopri8: {d['wall_s']:.1f} s (+{d['compile_s']:.1f} s compile), "
              f"steps {d['steps']}; max |Δθ| (τ ≤ {WINDOW:g}) "
              f"{np.array2string(fl_dev.param[:-1], formatter=fmt)}; final losses "
              f"{np.array2string(np.array(d['loss_final']), formatter=fmt)}")
    return finish(out, "fig5_wide_network", fig, data, t_start)


if __name__ == "__main__":
    main()

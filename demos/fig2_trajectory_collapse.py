"""Figure 2 of Zhao, Bai & Zhang: trajectories collapse under the Theorem-1 time shift.

Example 1 (f_θ = a1 tanh(w1 x + b1) + a2 tanh(w2 x + b2), target tanh(x + 1), n = 6 points
evenly spaced on [−2, 2]). Five trials, each with its own seed and initialization scale
(1e-4 … 1e-12), the second neuron rescaled so that c = C1/C2 = 0.5 in every trial
(``Problem.init_ratio``). Loss and parameters are plotted against the aligned time

    τ = t − log(1/‖C(θ0)‖)/μ1            (``flowtools.experiments.aligned_flow``, Theorem 1)

for the gradient flow (``solve_flow``) and for GD at the paper's lr = 0.01 (``run_gd``,
iterate k at t = k·lr). For GD the escape rate from the origin is log(1 + lr·μ1)/lr rather
than μ1 (``flowtools.experiments.aligned_gd``); the GD panels use that rate in the shift, and
the JSON also reports the misalignment left by the paper's μ1 shift. tanh is odd, so a trial
whose C(θ0) has C1 < 0 runs along the mirror image −θ(t); it is shown as −θ(t) (the paper
counts θ0 and −θ0 as the same initialization).

Measured collapse: for each trial the largest deviation from the smallest-scale trial over
the aligned window τ ≤ ``--window`` (parameters: max-norm; loss: |Δ log10 ℓ|), and its
fitted power of ‖C(θ0)‖ over the deviations above 1e-8 (the floor of the solver tolerance
and of GD's resampling; ``flowtools.experiments.collapse_deviation``, ``collapse_order``).
Theorem 3 bounds the deviation by α^{(μ1−μ2)/(2μ1−μ2)} = α^{1/2} (μ2 = 0); for odd σ the
first nonlinear term of ∇ℓ is cubic and the measured power is ≈ 2.

    python -m demos.fig2_trajectory_collapse [--out out/demos/] [--quick]

Writes fig2_trajectory_collapse.png and .json.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import flowtools as ft  # noqa: E402
from flowtools.discretization import escape_time  # noqa: E402
from flowtools.experiments import (  # noqa: E402
    aligned_flow,
    aligned_gd,
    collapse_deviation,
    collapse_order,
    finish,
    parser,
    plot_collapse,
    prepare,
    tau_grid,
    time_shift,
)

SCALES = (1e-4, 1e-6, 1e-8, 1e-10, 1e-12)
QUICK_SCALES = (1e-4, 1e-8, 1e-12)
# the power of ‖C‖ is fitted only above the floor set by the solver tolerance (rtol 1e-10)
# and GD's spline resampling (~1e-9): the smaller scales sit on that floor
FLOOR = 1e-8


def main(argv=None):
    ap = parser(__doc__, quick_help="3 trials, shorter horizon")
    ap.add_argument("--c", type=float, default=0.5, help="imbalance ratio C1/C2 (paper: 0.5)")
    ap.add_argument("--lr", type=float, default=0.01, help="GD learning rate (paper: 0.01)")
    ap.add_argument("--window", type=float, default=30.0,
                    help="aligned-time window for the collapse measure and linear axis")
    ap.add_argument("--tau-end", type=float, default=None,
                    help="aligned horizon (default 1e4; --quick: 200)")
    args = ap.parse_args(argv)
    out, t_start = prepare(args)

    pb = ft.example1()
    scales = QUICK_SCALES if args.quick else SCALES
    tau_end = args.tau_end or (200.0 if args.quick else 1e4)
    seeds = list(range(len(scales)))
    theta0 = np.stack([pb.init_ratio(args.c, s, seed=k) for k, s in zip(seeds, scales,
                                                                          strict=True)])
    Cn = np.linalg.norm(pb.imbalance(theta0), axis=-1)
    taus = tau_grid(float(np.max(time_shift(pb, theta0))), args.window, tau_end)
    # tanh is odd: θ0 and −θ0 (both C_k flipped) give mirror-image trajectories, which the
    # paper counts as one. Show each trial in the orientation with C1(θ0) > 0.
    orient = np.sign(pb.imbalance(theta0)[:, 0])
    flow = aligned_flow(pb, theta0, taus).flipped(orient)
    gd = aligned_gd(pb, theta0, args.lr, taus).flipped(orient)
    shifts, gd_shifts = flow.shifts, gd.shifts
    # misalignment of GD under the paper's μ1 shift: the escape point τ at which ‖θ‖ first
    # reaches 1, with the two shifts
    esc = np.array([escape_time(*gd.runs[i].valid()[:2]) for i in range(len(theta0))])
    esc_mu1 = esc + shifts
    esc_gd = esc + gd_shifts

    fl_dev = collapse_deviation(taus, flow.thetas, flow.losses, window=args.window)
    gd_dev = collapse_deviation(taus, gd.thetas, gd.losses, window=args.window)
    fl_dth, fl_dl, gd_dth, gd_dl = fl_dev.param, fl_dev.log10_loss, gd_dev.param, gd_dev.log10_loss
    fl_order = collapse_order(Cn[:-1], fl_dth[:-1], floor=FLOOR).slope
    gd_order = collapse_order(Cn[:-1], gd_dth[:-1], floor=FLOOR).slope
    fl_tr = flow.runs

    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5), constrained_layout=True)
    labels = [f"scale {s:.0e}, seed {k}" for k, s in zip(seeds, scales, strict=True)]
    for row, (label, runs, dev) in enumerate((("gradient flow", flow, fl_dev),
                                             (f"GD, lr = {args.lr:g}", gd, gd_dev))):
        ax_l, ax_p = axes[row]
        shift_txt = (r"$\tau = t - \log(1/\|C(\theta_0)\|)/\mu_1$" if row == 0 else
                     r"$\tau = t - \log(1/\|C(\theta_0)\|)/\rho$, $\rho=\log(1+\eta\mu_1)/\eta$")
        plot_collapse(ax_l, ax_p, runs, labels=labels, names=pb.param_names,
                      linthresh=args.window, xlabel=shift_txt)
        for ax in (ax_l, ax_p):
            ax.axvline(args.window, color="0.7", lw=0.8)
        ax_l.set_title(f"({'ac'[row]}) {label}: loss, {len(scales)} trials at c = {args.c:g} "
                       f"(max |Δlog10 ℓ| on τ ≤ {args.window:g}: "
                       f"{np.max(dev.log10_loss[:-1]):.1e})", fontsize=10)
        ax_p.set_title(f"({'bd'[row]}) {label}: parameters (line style = trial; max |Δθ| on "
                       f"τ ≤ {args.window:g}: {np.max(dev.param[:-1]):.1e})", fontsize=10)
    fig.suptitle("Figure 2 — Example 1, n = 6 grid: trajectories from different seeds and "
                 f"scales with c = C1/C2 = {args.c:g} collapse after the Theorem-1 time shift")
    data = {
        "settings": {"n": 6, "sampling": "grid", "c": args.c, "scales": list(scales),
                     "seeds": seeds, "lr": args.lr, "window": args.window,
                     "tau_end": tau_end, "mu1": pb.mu1, "gd_escape_rate": gd.rate},
        "norm_C": Cn.tolist(),
        "shift_flow": shifts.tolist(), "shift_gd": gd_shifts.tolist(),
        "flow": {"max_param_dev": fl_dth.tolist(), "max_log10_loss_dev": fl_dl.tolist(),
                 "order_in_normC": fl_order,
                 "t_final": [float(t.t_final) for t in fl_tr],
                 "aligned_t_final": [float(t.t_final) + s for t, s in
                                     zip(fl_tr, shifts, strict=True)],
                 "status": [ft.Status(int(t.status)).name for t in fl_tr]},
        "gd": {"max_param_dev": gd_dth.tolist(), "max_log10_loss_dev": gd_dl.tolist(),
               "order_in_normC": gd_order,
               "escape_tau_rho_shift": esc_gd.tolist(),
               "escape_tau_mu1_shift": esc_mu1.tolist(),
               "status": [ft.Status(int(s)).name for s in gd.runs.status],
               "iterations": gd.runs.steps.tolist()},
        "reference_trial": "the smallest scale (last)",
        "orientation_sign_C1": orient.tolist(),
    }

    print(f"Figure 2: Example 1, n = 6, c = {args.c:g}, scales {list(scales)}")
    print(f"  ‖C(θ0)‖: {np.array2string(Cn, precision=2)}")
    print(f"  flow: max |Δθ| vs smallest scale on τ ≤ {args.window:g}: "
          f"{np.array2string(fl_dth[:-1], precision=2)}  (∝ ‖C‖^{fl_order:.2f} above 1e-8; "
          f"Theorem 3 bound: 0.5); max |Δlog10 ℓ| {np.array2string(fl_dl[:-1], precision=2)}")
    print(f"  GD lr {args.lr:g}: max |Δθ| {np.array2string(gd_dth[:-1], precision=2)} "
          f"(∝ ‖C‖^{gd_order:.2f}); max |Δlog10 ℓ| {np.array2string(gd_dl[:-1], precision=2)}")
    print(f"  GD escape τ (‖θ‖ = 1): GD-rate shift spread {np.ptp(esc_gd):.3g}, "
          f"μ1 shift spread {np.ptp(esc_mu1):.3g}")
    print(f"  flow aligned end times (loss 1e-15): "
          f"{np.array2string(np.array(data['flow']['aligned_t_final']), precision=1)}")
    return finish(out, "fig2_trajectory_collapse", fig, data, t_start)


if __name__ == "__main__":
    main()

"""Figure 5 of Zhao, Bai & Zhang: the Theorem-1 collapse for a wide network (m = 1000).

f_θ(x) = Σ_{k=1}^{1000} a_k σ(w_k x + b_k) with σ(x) = x/(1 + x²) ('rational'), target
tanh(x + 1) on n = 6 points evenly spaced on [−2, 2]. Four trials with their own seed and
initialization scale; in every trial neurons 2…1000 are rescaled so that
C_k/C_1 = 1.5 + 0.0015(k − 1) (``Problem.with_ratios``; the caption's formula, read for
k ≥ 2 since C_1/C_1 = 1), so all trials share C/‖C‖. Loss and the first two neurons'
parameters against the aligned time τ = t − log(1/‖C(θ0)‖)/μ1
(``flowtools.limiting.aligned_times``), for the gradient flow (explicit Dopri8: the implicit
solvers need a 3000 × 3000 Jacobian per step) and for GD at the paper's lr = 0.01
(``run_gd``, shifted with GD's escape rate log(1 + lr·μ1)/lr).

Rescaling neuron k by r_k·C_1/C_k also scales the part of θ_k orthogonal to the top
eigenvector, by up to ~1000× for the neuron with the smallest |C_k|: the scales here are
chosen so that ‖θ0‖ stays small (it is reported).

    python demos/fig5_wide_network.py [--out out/demos/] [--quick]

Writes fig5_wide_network.png and .json.
"""

from __future__ import annotations

import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.interpolate import CubicSpline  # noqa: E402

import flowtools as ft  # noqa: E402
from flowtools.discretization import escape_rate  # noqa: E402
from flowtools.limiting import aligned_times  # noqa: E402
from flowtools.plotting import parameter_names  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import finish, parser, prepare  # noqa: E402

SCALES = (1e-8, 1e-10, 1e-12, 1e-14)
STYLES = ("-", "--", ":", "-.")


def resample(ts, th, ls, tau_shift, taus):
    """Cubic-spline θ and log ℓ onto the aligned grid (NaN outside the record)."""
    tau = ts + tau_shift
    keep = (taus >= tau[0]) & (taus <= tau[-1])
    th_out = np.full((len(taus), th.shape[1]), np.nan)
    ls_out = np.full(len(taus), np.nan)
    th_out[keep] = CubicSpline(tau, th)(taus[keep])
    ls_out[keep] = np.exp(CubicSpline(tau, np.log(np.maximum(ls, 1e-300)))(taus[keep]))
    return th_out, ls_out


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
    shift_fl = aligned_times(pb, np.zeros((len(theta0), 1)), theta0)[:, 0]
    rate = escape_rate(pb, args.lr)
    shift_gd = np.log(Cn) / rate
    tau_end = args.flow_tau_end or (args.lr * max_iter + shift_gd.max())
    taus = np.concatenate([np.linspace(shift_gd.max(), 30, 400),
                           np.geomspace(30, args.lr * max_iter + shift_gd.max(), 201)[1:]])

    gd = ft.run_gd(pb, theta0, args.lr, max_iter=max_iter, loss_threshold=1e-15, n_save=5000)
    gd_th, gd_ls = zip(*[resample(*gd[i].valid(), shift_gd[i], taus)
                         for i in range(len(theta0))], strict=True)
    gd_th, gd_ls = np.stack(gd_th) * orient[:, None, None], np.stack(gd_ls)

    flow = None
    if not args.no_flow:
        t1 = float(tau_end - shift_fl.min())
        flow = ft.solve_flow(pb, theta0, t1=t1, solver="dopri8", rtol=1e-10, n_save=2000,
                             loss_threshold=1e-15, max_steps=200_000, batch_size=1)
        fl_th, fl_ls = zip(*[resample(*flow[i].valid(), shift_fl[i], taus)
                             for i in range(len(theta0))], strict=True)
        fl_th, fl_ls = np.stack(fl_th) * orient[:, None, None], np.stack(fl_ls)

    def dev(th, ls, window=30.0):
        w = taus <= window
        dth = [float(np.nanmax(np.abs(th[i, w] - th[-1, w]))) for i in range(len(th) - 1)]
        dl = [float(np.nanmax(np.abs(np.log10(ls[i, w]) - np.log10(ls[-1, w]))))
              for i in range(len(th) - 1)]
        return dth, dl

    gd_dth, gd_dl = dev(gd_th, gd_ls)
    rows = [(f"GD, lr = {args.lr:g}, {max_iter:.0e} iterations", gd_th, gd_ls, gd_dth, gd_dl,
             r"$\tau = t - \log(1/\|C(\theta_0)\|)/\rho$, $\rho = \log(1+\eta\mu_1)/\eta$")]
    if flow is not None:
        fl_dth, fl_dl = dev(fl_th, fl_ls)
        rows.insert(0, ("gradient flow (Dopri8)", fl_th, fl_ls, fl_dth, fl_dl,
                        r"$\tau = t - \log(1/\|C(\theta_0)\|)/\mu_1$"))

    names = parameter_names(pb)[:6]
    fig, axes = plt.subplots(len(rows), 2, figsize=(13, 4.3 * len(rows)),
                             constrained_layout=True, squeeze=False)
    for r, (label, th, ls, dth, dl, xl) in enumerate(rows):
        ax_l, ax_p = axes[r]
        for i, s in enumerate(SCALES):
            ax_l.semilogy(taus, ls[i], ls=STYLES[i], lw=1.3, label=f"scale {s:.0e}, seed {i}")
            for j in range(6):
                ax_p.plot(taus, th[i, :, j], color=f"C{j}", ls=STYLES[i], lw=1.1,
                          label=names[j] if i == 0 else None)
        for ax in (ax_l, ax_p):
            ax.set_xscale("symlog", linthresh=30.0, linscale=2.0)
            ax.set_xlabel(xl + "  (linear up to 30, then log)")
            ax.grid(True, which="both", alpha=0.3)
        ax_l.set_ylabel(r"loss $\ell(\theta)$")
        ax_l.set_title(f"(a) {label}: loss\n(max |Δlog10 ℓ| vs smallest scale on τ ≤ 30: "
                       f"{max(dl):.1e})", fontsize=10)
        ax_l.legend(fontsize=8)
        ax_p.set_ylabel("parameter value")
        ax_p.set_title(f"(b) {label}: neurons 1 and 2, line style = trial\n(max |Δθ| vs "
                       f"smallest scale on τ ≤ 30: {max(dth):.1e})", fontsize=10)
        ax_p.legend(fontsize=8, ncol=2)
    fig.suptitle(f"Figure 5 — width {width}, σ(x) = x/(1+x²), n = 6 grid, target tanh(x+1), "
                 r"$C_k/C_1 = 1.5 + 0.0015(k-1)$: four seeds/scales, aligned by Theorem 1")
    data = {
        "settings": {"width": width, "activation": "rational", "n": 6, "scales": SCALES,
                     "seeds": seeds, "lr": args.lr, "max_iter": max_iter, "mu1": pb.mu1,
                     "gd_escape_rate": rate},
        "norm_C": Cn.tolist(), "norm_theta0": theta_norm0.tolist(),
        "gd": {"max_param_dev_tau_le_30": gd_dth, "max_log10_loss_dev_tau_le_30": gd_dl,
               "loss_final": gd.loss_final.tolist(), "wall_s": gd.wall_time,
               "compile_s": gd.compile_time},
    }
    if flow is not None:
        data["flow"] = {"max_param_dev_tau_le_30": fl_dth, "max_log10_loss_dev_tau_le_30": fl_dl,
                        "loss_final": flow.loss_final.tolist(),
                        "t_final": flow.t_final.tolist(), "steps": flow.steps.tolist(),
                        "status": [ft.Status(int(s)).name for s in flow.status],
                        "wall_s": flow.wall_time, "compile_s": flow.compile_time}

    print(f"Figure 5: width {width}, rational σ, n = 6; ‖θ0‖ = "
          f"{np.array2string(theta_norm0, precision=2)}")
    fmt = {"float_kind": lambda v: f"{v:.2e}"}
    print(f"  GD lr {args.lr:g}, {max_iter:.0e} it.: {gd.wall_time:.1f} s (+{gd.compile_time:.1f}"
          f" s compile); max |Δθ| (τ ≤ 30) vs smallest scale "
          f"{np.array2string(np.array(gd_dth), formatter=fmt)}; final losses "
          f"{np.array2string(gd.loss_final, formatter=fmt)}")
    if flow is not None:
        print(f"  flow Dopri8: {flow.wall_time:.1f} s (+{flow.compile_time:.1f} s compile), "
              f"steps {flow.steps.tolist()}; max |Δθ| (τ ≤ 30) "
              f"{np.array2string(np.array(fl_dth), formatter=fmt)}; final losses "
              f"{np.array2string(flow.loss_final, formatter=fmt)}")
    return finish(out, "fig5_wide_network", fig, data, t_start)


if __name__ == "__main__":
    main()

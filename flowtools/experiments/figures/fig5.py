"""Figure 5 of Zhao, Bai & Zhang: Theorem 1's collapse for a wide network (m = 1000).

f_θ(x) = Σ_{k=1}^{1000} a_k σ(w_k x + b_k) with σ(x) = x/(1 + x²), target tanh(x + 1) on
n = 6 points evenly spaced on [−2, 2]. Four trials with their own seed and scale; in every
trial neurons 2…1000 are rescaled so that C_k/C_1 = 1.5 + 0.0015(k − 1) (the caption's
formula, read for k ≥ 2 since C_1/C_1 = 1; Appendix C's "c = 0.5" is a copy of Figure 2's
text), so every trial has the same C/‖C‖ (``Problem.with_ratios``). (a) the loss, (b) the
first two neurons' parameters, against the aligned time τ = t − log(1/‖C(θ0)‖)/μ1
(``flowtools.experiments.aligned_flow``; Dopri8, explicit), on a linear τ axis over the escape
and a separate log axis over the tail to the paper's horizon t = lr·iterations = 1000.
``gd=True`` adds the paper's GD (lr 0.01 × 1e5 iterations) on the same axes, shifted with
GD's own escape rate. Rescaling neuron k by r_k·C_1/C_k also scales its part outside the
top eigenspace (‖θ0‖ is stored).
"""

from __future__ import annotations

import numpy as np

from flowtools.experiments.outcomes import decode

TITLE = "Figure 5: width 1000, σ = x/(1+x²): trials with one C/‖C‖ collapse under Theorem 1"
GD = True
# measured in `flowtools reproduce all` (full mode, idle 2-core CPU, cold JAX cache)
FULL_TIME = "26 s"

WIDTH, QUICK_WIDTH = 1000, 40
SCALES = (1e-8, 1e-10, 1e-12, 1e-14)
QUICK_SCALES = (1e-6, 1e-8, 1e-14)
LR, MAX_ITER, QUICK_MAX_ITER = 0.01, 10**5, 4000
WINDOW = 30.0
FLOOR = 1e-8


def problem(width):
    import flowtools as ft

    return ft.make_problem(6, activation="rational", width=width)


def initial_states(pb, scales):
    ratios = 1.5 + 0.0015 * np.arange(1, pb.width)  # C_k/C_1 for k = 2…m
    return np.stack([pb.with_ratios(pb.init_gaussian(s, seed=k), ratios)
                     for k, s in enumerate(scales)])


def compute(*, quick: bool, gd: bool, log=print):
    from flowtools.experiments import tau_grid, time_shift
    from flowtools.experiments.collapse import collapse_dataset
    from flowtools.experiments.outcomes import Criterion

    width = QUICK_WIDTH if quick else WIDTH
    max_iter = QUICK_MAX_ITER if quick else MAX_ITER
    pb = problem(width)
    scales = QUICK_SCALES if quick else SCALES
    theta0 = initial_states(pb, scales)
    T = LR * max_iter  # the paper's horizon in flow time
    tau0 = float(np.max(time_shift(pb, theta0)))
    taus = tau_grid(tau0, WINDOW, T + tau0, n_lin=400, n_log=150)
    log(f"  width {width}: flow of {len(scales)} trials to τ = {taus[-1]:.4g}")
    ds = collapse_dataset(pb, theta0, taus, scales=scales, window=WINDOW, floor=FLOOR,
                          criterion=Criterion(kind="rms", floor=1e-6, loss_tol=1e-15),
                          gd_lr=LR if gd else None, gd_max_iter=max_iter, gd_n_save=5000,
                          log=log, solver="dopri8", rtol=1e-10,
                          max_steps=200_000)
    keep = [f"{x}{k}" for k in (1, 2) for x in "awb"]
    ds = ds.sel(param=keep)  # (b) shows neurons 1 and 2; the end points of all in *_end
    ds.attrs.update(width=width, activation="rational x/(1+x^2)", n=6, sampling="grid",
                    ratios="C_k/C_1 = 1.5 + 0.0015 (k - 1), k = 2..m", lr=LR,
                    gd_max_iter=max_iter, horizon_t=T,
                    decided_at=f"finite horizon T = {T:g} (lr x iterations)")
    log(f"  max |Δθ| (τ ≤ {WINDOW:g}) vs smallest scale: "
        f"{np.array2string(ds.dev_param_flow.values[:-1], precision=2)}")
    return ds


def plot(ds):
    from flowtools.experiments.collapse import plot_collapse_figure

    return plot_collapse_figure(
        ds,
        params_title="(b) parameters of neurons 1 and 2\n(colour = parameter, line style = "
                     "trial)",
        suptitle=f"Figure 5 — width {ds.width}, σ(x) = x/(1+x²), n = 6 grid, target "
                 r"tanh(x+1), $C_k/C_1 = 1.5 + 0.0015(k-1)$: gradient flow (Dopri8) to "
                 f"t = {ds.horizon_t:g}, translated by Theorem 1's shift\nend points: "
                 + ", ".join(sorted(set(decode(ds.outcome_flow.values))))
                 + f" at t = {ds.horizon_t:g} ({ds.criterion})")


def claims(ds):
    from flowtools.experiments.claims import Claim

    dth, dl = ds.dev_param_flow.values[:-1], ds.dev_log10_loss_flow.values[:-1]
    order = ds.order_flow
    out = [Claim(
        "§7 / Fig. 5: under small initialization the trajectories of a width-1000 network "
        "with one C/‖C‖ conform to it (Theorem 1): the four trials' curves coincide after "
        "the translation",
        f"max over τ ≤ {ds.window:g} vs the smallest-scale trial: |Δθ| (neurons 1, 2) = "
        + ", ".join(f"{v:.1e}" for v in dth) + "; |Δlog10 ℓ| = "
        + ", ".join(f"{v:.1e}" for v in dl),
        bool(np.max(dth) < 1e-2 and np.max(dl) < 1e-2)),
        Claim(
        "Theorems 1/3: the deviation → 0 as the scale → 0 (bound ‖C‖^{1/2})",
        f"fitted order of max |Δθ| in ‖C(θ0)‖ above {ds.collapse_floor:g}: {order:.2f}"
        f" (‖C(θ0)‖ = " + ", ".join(f"{v:.1e}" for v in ds.norm_C0.values) + ")",
        bool(order >= 0.45) if np.isfinite(order) else None,
        "" if np.isfinite(order) else
        "fewer than two trials deviate above the solver floor: no order to fit")]
    if "loss_gd" in ds:
        g = ds.dev_param_gd.values[:-1]
        out.append(Claim(
            "Fig. 5 (GD, lr 0.01 × 1e5): the GD curves collapse after the translation",
            "GD max |Δθ| (τ ≤ 30) = " + ", ".join(f"{v:.1e}" for v in g)
            + "; escape-τ spread " + f"{np.ptp(ds.escape_tau_gd_rate.values):.1e} (GD's rate), "
            f"{np.ptp(ds.escape_tau_mu1_shift.values):.2f} (μ1)",
            bool(np.max(g) < 1e-2)))
    return out

"""Figure 7 of Zhao, Bai & Zhang (Appendix B): the collapse in high dimension, m = 2, d = 500.

f_θ(x) = a1 tanh(w1ᵀx + b1) + a2 tanh(w2ᵀx + b2), x ∈ ℝ^500, target tanh(1ᵀx + 1), n = 500
inputs uniform on [−2, 2]^500 drawn from data seed 0 (``make_problem(500, sampling="uniform",
dim=500, seed=0)``; the caption's "x ∈ ℝ^3" is a copy of Figure 8's). In each subfigure
c = C1/C2 is fixed over trials of different seeds and scales (the second neuron rescaled,
``Problem.init_ratio``). The caption's c values are not in the text; we chose c = 0.25
(c̃ = 0.25, towards Q2) and c = 0.9 (c̃ = 0.9, towards Q1) — c = 2 would only swap the
neurons of c = 0.5. Left: the loss; right: a1, a2 and the first coordinates of w1, w2,
against the aligned time τ = t − log(1/‖C(θ0)‖)/μ1 (μ1 ≈ 737: the escape takes τ ≈ 0.03),
on a linear axis over the escape and a separate log axis to the paper's horizon
t = lr·iterations = 0.001 × 1e4 = 10 (the flow stops earlier at ℓ ≤ 1e-15). ``gd=True``
adds the paper's GD (lr 0.001 × 1e4) on the same axes, shifted with GD's escape rate.
"""

from __future__ import annotations

import numpy as np

from flowtools.experiments.outcomes import decode

TITLE = "Figure 7: m = 2, d = n = 500: trials with one c = C1/C2 collapse (Appendix B)"
GD = True
# measured in `flowtools reproduce all` (full mode, idle 2-core CPU, cold JAX cache)
FULL_TIME = "64 s"

D = N = 500
QUICK_D = QUICK_N = 20
C_VALUES = (0.25, 0.9)
SCALES = (1e-4, 1e-6, 1e-8)
QUICK_SCALES = (1e-4, 1e-8)
LR, MAX_ITER, QUICK_MAX_ITER = 0.001, 10**4, 6000
WINDOW_MU1 = 50.0     # the escape window τ ≤ 50/μ1 (full: μ1 ≈ 737, τ ≤ 0.068)
FLOOR = 1e-8
SHOW = ("a1", "w1,1", "a2", "w2,1")


def problem(d, n):
    import flowtools as ft

    return ft.make_problem(n, sampling="uniform", dim=d, seed=0, width=2)


def compute(*, quick: bool, gd: bool, log=print):
    import xarray as xr

    from flowtools.experiments import tau_grid, time_shift
    from flowtools.experiments.collapse import collapse_dataset
    from flowtools.experiments.outcomes import Criterion

    d, n = (QUICK_D, QUICK_N) if quick else (D, N)
    max_iter = QUICK_MAX_ITER if quick else MAX_ITER
    pb = problem(d, n)
    scales = QUICK_SCALES if quick else SCALES
    T = LR * max_iter
    crit = Criterion(kind="rms", floor=1e-6, loss_tol=1e-15)
    window = min(WINDOW_MU1 / float(pb.mu1), T / 3)
    parts = []
    for c in C_VALUES:
        theta0 = np.stack([pb.init_ratio(c, s, seed=k) for k, s in enumerate(scales)])
        tau0 = float(np.max(time_shift(pb, theta0)))
        taus = tau_grid(tau0, window, T + tau0, n_lin=300, n_log=120)
        log(f"  c = {c:g}: flow of {len(scales)} trials (d = {d}, n = {n}) to t = {T:g}")
        ds = collapse_dataset(pb, theta0, taus, scales=scales, window=window, floor=FLOOR,
                              criterion=crit, gd_lr=LR if gd else None, gd_max_iter=max_iter,
                              gd_n_save=4000, log=log, solver="dopri8", max_steps=200_000)
        ds = ds.sel(param=list(SHOW)).drop_vars("tau").rename(tau="tau_index")
        ds["tau"] = (("tau_index",), taus)
        ds["c_tilde"] = ("trial", np.asarray(pb.ratio_tilde(theta0), dtype=float))
        parts.append(ds)
    attrs = dict(parts[0].attrs)
    for key in ("order_flow", "order_gd"):
        attrs.pop(key, None)
    out = xr.concat(parts, dim="c", combine_attrs="drop")
    out = out.assign_coords(c=list(C_VALUES))
    out.attrs.update(attrs)
    out.attrs.update(
        order_flow=np.array([p.order_flow for p in parts]), d=d, n=n, width=2,
        sampling="uniform on [-2, 2]^d, data seed 0", target="tanh(1^T x + 1)", lr=LR,
        gd_max_iter=max_iter, horizon_t=T,
        c_choice="the caption's c values are not given: c = 0.25 (towards Q2), 0.9 (Q1)",
        decided_at="finite horizon: the flow stopped at loss <= 1e-15 (before t = 10)")
    if gd:
        out.attrs["order_gd"] = np.array([p.order_gd for p in parts])
    return out


def _runs(ds, i, rule):
    from flowtools.experiments.collapse import aligned_runs

    return aligned_runs(ds.isel(c=i), rule)


def plot(ds):
    import matplotlib.pyplot as plt

    from flowtools.experiments.collapse import draw_aligned

    nc = ds.sizes["c"]
    fig = plt.figure(figsize=(14, 4.6 * nc), constrained_layout=True)
    gs = fig.add_gridspec(nc, 2)
    labels = [f"scale {s:.0e}, seed {k}" for s, k in zip(ds["scale"].values[0],
                                                          ds["seed"].values[0], strict=True)]
    names = [str(p) for p in ds.param.values]
    for i, c in enumerate(ds.c.values):
        gd = _runs(ds, i, "gd") if "loss_gd" in ds else None
        axes_l, axes_p = draw_aligned(
            fig, gs[i, 0], gs[i, 1], _runs(ds, i, "flow"), gd, labels=labels, names=names,
            window=ds.window, xlabel=r"$\tau = t - \log(1/\|C(\theta_0)\|)/\mu_1$")
        ends = ", ".join(sorted(set(decode(ds.outcome_flow.values[i]))))
        gd_txt = (f"\ndots: GD lr {ds.lr:g} × {ds.gd_max_iter:.0e} (its own rate)"
                  if gd is not None else "")
        axes_l[0].set_title(f"({'ab'[i]}) c = C1/C2 = {c:g} (c̃ = {min(c, 1 / c):g}), left: "
                            f"loss\nend points: {ends}{gd_txt}", fontsize=9, loc="left")
        axes_p[0].set_title("right: a1, a2 and the first coordinates of w1, w2",
                            fontsize=9, loc="left")
    fig.suptitle(f"Figure 7 — m = 2, d = {ds.d}, n = {ds.n} uniform on [−2, 2]^d (seed 0), "
                 f"target tanh(1ᵀx + 1): gradient flow (Dopri8) to t = {ds.horizon_t:g}, "
                 f"translated by Theorem 1's shift\n({ds.criterion})", fontsize=10)
    return fig


def claims(ds):
    from flowtools.experiments.claims import Claim

    out = []
    for i, c in enumerate(ds.c.values):
        dth = ds.dev_param_flow.values[i, :-1]
        dl = ds.dev_log10_loss_flow.values[i, :-1]
        out.append(Claim(
            f"App. B / Fig. 7 (c = {c:g}): the loss and parameter curves of different "
            "trials with one c match perfectly: a limiting trace determined by C1/C2",
            f"max over τ ≤ {ds.window:.3g} (the escape) vs the smallest scale: |Δθ| (a, first "
            "w coordinates) = " + ", ".join(f"{v:.1e}" for v in dth) + "; |Δlog10 ℓ| = "
            + ", ".join(f"{v:.1e}" for v in dl),
            bool(np.max(dth) < 1e-2 and np.max(dl) < 1e-2)))
    e = ds.theta_end_flow.values
    gap = float(np.max(np.abs(e[0, -1] - e[1, -1])))
    out.append(Claim(
        "App. B: the trace of parameters is determined by C1/C2 (different c, different trace)",
        f"end points of the smallest-scale trials for c = {ds.c.values[0]:g} and "
        f"{ds.c.values[1]:g} differ by {gap:.2f} (max norm over the shown parameters); "
        "outcomes " + "; ".join(f"c = {c:g}: " + ", ".join(sorted(set(decode(
            ds.outcome_flow.values[i])))) for i, c in enumerate(ds.c.values)),
        bool(gap > 1e-2)))
    if "loss_gd" in ds:
        g = ds.dev_param_gd.values[:, :-1]
        out.append(Claim(
            "Fig. 7 (GD, lr 0.001 × 1e4): the GD curves of one c match",
            f"GD max |Δθ| (τ ≤ {ds.window:.3g}) = " + ", ".join(f"{v:.1e}" for v in g.ravel())
            + "; final GD losses " + ", ".join(f"{v:.1e}" for v in
                                               ds.loss_end_gd.values.ravel()),
            bool(np.nanmax(g) < 1e-2) if np.all(np.isfinite(g)) else False,
            "" if np.all(np.isfinite(g)) else "GD diverged"))
    return out

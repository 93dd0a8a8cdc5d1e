"""The collapse of aligned runs: how far each run stays from a reference run (Figures 2, 5).

For runs on one aligned time grid (``flowtools.experiments.alignment``) the deviation of
run i from the reference run r over the window τ ≤ W is

    Δθ_i = max_{τ ≤ W} ‖θ_i(τ) − θ_r(τ)‖_∞,
    Δℓ_i = max_{τ ≤ W} |log10 ℓ_i(τ) − log10 ℓ_r(τ)|   (where both ℓ > ``loss_floor``),

(``collapse_deviation``). Theorem 3 bounds Δθ by ‖C(θ0)‖^{(μ1−μ2)/(2μ1−μ2)};
``collapse_order`` fits the measured power of ‖C(θ0)‖ (``flowtools.fitting.fit_slope``)
over the deviations above a floor (the solver's and the resampling's error). ``plot_collapse``
draws the loss and parameter panels of such a figure, ``split_axes`` a linear
dynamics axis and a separate log tail axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flowtools.fitting import SlopeFit, fit_slope

__all__ = ["CollapseDeviation", "collapse_deviation", "collapse_order", "plot_collapse",
           "aligned_runs", "collapse_dataset", "draw_aligned", "plot_collapse_figure",
           "plot_deviations", "split_axes"]

LINE_STYLES = ("-", "--", ":", "-.", (0, (5, 1)))


@dataclass(frozen=True)
class CollapseDeviation:
    """Per run (B,): ``param`` = max-norm deviation of θ, ``log10_loss`` = deviation of
    log10 ℓ from the reference run over τ ≤ ``window`` (0 for the reference itself)."""

    param: np.ndarray
    log10_loss: np.ndarray
    window: float
    ref: int


def collapse_deviation(taus, thetas, losses, *, window: float, ref: int = -1,
                       loss_floor: float = 1e-13) -> CollapseDeviation:
    """Δθ_i and Δℓ_i of runs (thetas (B, S, p), losses (B, S) on ``taus`` (S,)) from run
    ``ref`` over τ ≤ ``window`` (module docstring); NaN entries (no record) are skipped.

    >>> import numpy as np
    >>> taus = np.linspace(0.0, 1.0, 11)
    >>> th = np.stack([np.exp(taus + d)[:, None] for d in (0.0, 0.1)])
    >>> dev = collapse_deviation(taus, th, np.exp(-2 * th[..., 0]), window=1.0, ref=0)
    >>> round(float(dev.param[1]), 12) == round(float(np.e * (np.exp(0.1) - 1)), 12)
    True
    """
    taus = np.asarray(taus, dtype=float)
    thetas = np.asarray(thetas, dtype=float)
    losses = np.asarray(losses, dtype=float)
    w = taus <= window
    dth, dl = [], []
    with np.errstate(invalid="ignore", divide="ignore"):
        for i in range(len(thetas)):
            d = np.max(np.abs(thetas[i, w] - thetas[ref, w]), axis=-1)
            dth.append(float(np.nanmax(d)) if np.any(np.isfinite(d)) else float("nan"))
            ok = w & (losses[i] > loss_floor) & (losses[ref] > loss_floor)
            e = np.abs(np.log10(losses[i, ok]) - np.log10(losses[ref, ok]))
            dl.append(float(np.nanmax(e)) if np.any(np.isfinite(e)) else float("nan"))
    return CollapseDeviation(np.array(dth), np.array(dl), float(window), int(ref))


def collapse_order(norm_C, deviation, *, floor: float = 0.0) -> SlopeFit:
    """The power r of Δθ ≈ c‖C(θ0)‖^r (log–log least squares) over the runs whose deviation
    exceeds ``floor`` (the reference run, deviation 0, never counts)."""
    dev = np.asarray(deviation, dtype=float)
    return fit_slope(norm_C, np.where(dev > floor, dev, np.nan))


def split_axes(fig, spec, *, ratio: float = 3.0):
    """Two clearly separated axes in the grid cell ``spec`` (a ``SubplotSpec``): a wide one
    for the dynamics on a linear τ axis and a narrow one, after a visible gap, for the tail
    on a log τ axis — each axis one continuous scale, so no curve shows a kink that the axis
    drew (a symlog axis switching from linear to log does)."""
    sub = spec.subgridspec(1, 2, width_ratios=(ratio, 1.0), wspace=0.12)
    return fig.add_subplot(sub[0]), fig.add_subplot(sub[1])


def plot_collapse(ax_loss, ax_params, runs, *, labels, names, linthresh: float | None = None,
                  xlabel: str, n_params: int | None = None, xscale: str = "linear",
                  tau_range=None, style: dict | None = None, legend: bool = True):
    """Loss (log) and parameters of ``runs`` (``AlignedRuns``) against τ: line style = run
    (``labels``), colour = parameter (``names``, the first ``n_params`` of them).

    ``xscale`` "linear" (default) or "log" — one continuous scale; ``tau_range`` (lo, hi)
    limits the drawn τ. ``linthresh`` (deprecated) gives the old symlog axis, linear up to it
    then log, whose switch draws a kink in every curve. ``style`` overrides line keywords
    (e.g. markers for GD drawn on the flow's axes)."""
    n_params = len(names) if n_params is None else n_params
    taus = runs.taus
    keep = np.ones(len(taus), bool) if tau_range is None else \
        (taus >= tau_range[0]) & (taus <= tau_range[1])
    style = dict(style or {})
    for i, lab in enumerate(labels):
        st = LINE_STYLES[i % len(LINE_STYLES)]
        kw = {"lw": 1.3, "ls": st} | style
        ax_loss.semilogy(taus[keep], runs.losses[i, keep], label=lab, **kw)
        for j in range(n_params):
            ax_params.plot(taus[keep], runs.thetas[i, keep, j], color=f"C{j % 10}",
                           label=names[j] if i == 0 else None, **({"lw": 1.1, "ls": st} | style))
    for ax in (ax_loss, ax_params):
        if linthresh is not None:
            ax.set_xscale("symlog", linthresh=linthresh, linscale=2.0)
            ax.set_xlabel(xlabel + f"  (linear up to {linthresh:g}, then log)")
        else:
            ax.set_xscale(xscale)
            ax.set_xlabel(xlabel)
        ax.grid(True, which="both", alpha=0.3)
    ax_loss.set_ylabel(r"loss $\ell(\theta)$")
    ax_params.set_ylabel("parameter value")
    if legend:
        ax_loss.legend(fontsize=8)
        ax_params.legend(fontsize=8, ncol=2)


def draw_aligned(fig, spec_loss, spec_params, flow, gd=None, *, labels, names, window: float,
                 n_params: int | None = None, xlabel: str = r"aligned time $\tau$"):
    """Loss and parameter panels of a collapse figure: in each of the grid cells
    ``spec_loss`` and ``spec_params`` a linear τ axis up to ``window`` (the escape) and, apart,
    a log τ axis over the tail (``split_axes``); ``flow`` drawn as lines (style = run), ``gd``
    (optional ``AlignedRuns`` on the same grid) as dots on the same axes. Returns
    ((loss_main, loss_tail), (params_main, params_tail))."""
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullFormatter

    taus = flow.taus
    axes_l, axes_p = split_axes(fig, spec_loss), split_axes(fig, spec_params)
    ranges = [((taus[0], window), "linear")]
    if taus[-1] > window:
        ranges.append(((window, taus[-1]), "log"))
    for k, (rng, scale) in enumerate(ranges):
        plot_collapse(axes_l[k], axes_p[k], flow, labels=labels, names=names, xscale=scale,
                      tau_range=rng, xlabel="", legend=False, n_params=n_params)
        if gd is not None:
            plot_collapse(axes_l[k], axes_p[k], gd, labels=[None] * len(labels),
                          names=[None] * len(names), xscale=scale, tau_range=rng, xlabel="",
                          legend=False, n_params=n_params,
                          style={"ls": "none", "marker": ".", "ms": 1.5, "alpha": 0.5})
        axes_l[k].set_xlim(*rng)
        axes_p[k].set_xlim(*rng)
    vals = [r.losses[np.isfinite(r.losses) & (r.losses > 0)] for r in (flow, gd) if r is not None]
    vals = np.concatenate(vals)
    for a in axes_l:
        a.set_ylim(0.3 * vals.min(), 3 * vals.max())
    for a_main, a_tail in (axes_l, axes_p):
        a_main.set_xlabel(xlabel + " (linear)")
        if len(ranges) == 1:
            a_tail.set_visible(False)
            continue
        if a_main is axes_p[0]:
            lo = min(a_main.get_ylim()[0], a_tail.get_ylim()[0])
            hi = max(a_main.get_ylim()[1], a_tail.get_ylim()[1])
            a_main.set_ylim(lo, hi)
        a_tail.set_ylim(*a_main.get_ylim())
        lo, hi = a_tail.get_xlim()
        ticks = np.geomspace(lo * 1.001, hi / 1.001, 3)  # ends (just inside) and middle
        a_tail.xaxis.set_major_locator(FixedLocator(ticks))
        a_tail.xaxis.set_major_formatter(FixedFormatter([f"{float(f'{v:.2g}'):g}"
                                                         for v in ticks]))
        a_tail.tick_params(axis="x", labelsize=7)
        a_tail.xaxis.set_minor_formatter(NullFormatter())
        a_tail.tick_params(labelleft=False)
        a_tail.set_ylabel("")
        a_tail.set_xlabel(r"tail: $\tau$ (log)")
    axes_l[0].legend(fontsize=7, loc="lower left")
    axes_p[0].legend(fontsize=7, ncol=2, loc="upper left")
    return axes_l, axes_p


def plot_deviations(ax, norm_C, series, *, floor: float, window: float):
    """The collapse measure against ‖C(θ0)‖ on log–log axes: ``series`` is a list of
    (label, deviations, marker) over the runs (the reference run left out), with a
    ‖C‖^{1/2} line (Theorem 3's bound) through the first series' first point and the floor."""
    C = np.asarray(norm_C, dtype=float)
    for label, dev, mk in series:
        ax.loglog(C, np.asarray(dev, dtype=float), mk, label=label, ms=5)
    d0 = float(np.asarray(series[0][1], dtype=float)[0])
    ax.loglog(C, d0 * (C / C[0]) ** 0.5, "k:", lw=1, label=r"Theorem 3 bound $\propto\|C\|^{1/2}$")
    ax.axhline(floor, color="0.6", lw=0.8, ls="--", label="solver floor")
    ax.set_xlabel(r"$\|C(\theta_0)\|$ of the trial")
    ax.set_ylabel(f"deviation from the smallest scale, τ ≤ {window:g}")
    ax.set_title("collapse measure (not a panel of the paper)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def collapse_dataset(problem, theta0, taus, *, scales, window: float, floor: float,
                     criterion, gd_lr: float | None = None, gd_tau_end: float | None = None,
                     gd_max_iter: int | None = None, gd_n_save: int = 20_000,
                     log=print, **solve_options):
    """The data of a collapse figure as an ``xarray.Dataset``: the gradient flow from each
    θ0 (B, p) (trial k: seed k, scale ``scales[k]``) on the aligned grid ``taus``, shown in
    the orientation C_1(θ0) > 0 (σ odd: θ and −θ are mirror runs), its deviations from the
    last (smallest-scale) trial over τ ≤ ``window`` and their fitted order in ‖C(θ0)‖
    above ``floor``, the end points and their ``outcomes.outcome`` under ``criterion``;
    with ``gd_lr``, GD at that rate (shifted with its own escape rate) to ``gd_tau_end``
    on the same grid (NaN beyond), with its deviations, order and escape times."""
    import xarray as xr

    from flowtools.discretization import escape_time
    from flowtools.experiments.alignment import aligned_flow, aligned_gd
    from flowtools.experiments.outcomes import FLAGS, encode, outcome
    from flowtools.status import Status

    theta0 = np.atleast_2d(np.asarray(theta0, dtype=float))
    C0 = np.asarray(problem.imbalance(theta0))
    Cn = np.linalg.norm(C0, axis=-1)
    orient = np.sign(C0[:, 0])
    flow = aligned_flow(problem, theta0, taus, **solve_options).flipped(orient)
    dev = collapse_deviation(taus, flow.thetas, flow.losses, window=window)
    order = collapse_order(Cn[:-1], dev.param[:-1], floor=floor)
    end = np.stack([np.asarray(t.theta_final) for t in flow.runs]) * orient[:, None]
    loss_end = np.array([float(t.loss_final) for t in flow.runs])
    out = outcome(problem, end, loss_end, criterion)
    B = len(theta0)
    ds = xr.Dataset(
        {"loss_flow": (("trial", "tau"), flow.losses),
         "theta_flow": (("trial", "tau", "param"), flow.thetas),
         "scale": ("trial", np.asarray(scales, dtype=float)), "seed": ("trial", np.arange(B)),
         "norm_C0": ("trial", Cn), "C0": (("trial", "neuron"), C0),
         "norm_theta0": ("trial", np.linalg.norm(theta0, axis=-1)),
         "orientation": ("trial", orient), "shift_flow": ("trial", flow.shifts),
         "dev_param_flow": ("trial", dev.param), "dev_log10_loss_flow": ("trial", dev.log10_loss),
         "theta_end_flow": (("trial", "param"), end), "loss_end_flow": ("trial", loss_end),
         "t_end_flow": ("trial", np.array([float(t.t_final) for t in flow.runs])),
         "steps_flow": ("trial", np.array([int(t.steps) for t in flow.runs], np.int64)),
         "status_flow": ("trial", np.array([int(t.status) for t in flow.runs], np.int8),
                         Status.flags()),
         "outcome_flow": ("trial", encode(out), FLAGS)},
        coords={"trial": np.arange(B), "tau": np.asarray(taus, dtype=float),
                "param": list(problem.param_names), "neuron": np.arange(1, C0.shape[1] + 1)},
        attrs={"mu1": float(problem.mu1), "window": float(window),
               "reference_trial": "the smallest scale (last trial)",
               "collapse_floor": float(floor), "order_flow": float(order.slope),
               "theorem3_order": 0.5,
               "time_axis": "tau = t - log(1/||C(theta0)||)/mu1",
               "orientation_note": "trials with C1(theta0) < 0 shown as -theta (sigma odd)",
               **criterion.as_attrs()})
    if gd_lr is not None:
        gt = np.asarray(taus)[np.asarray(taus) <= (gd_tau_end or taus[-1])]
        log(f"  GD lr {gd_lr:g} to τ = {gt[-1]:g}")
        g = aligned_gd(problem, theta0, gd_lr, gt, max_iter=gd_max_iter,
                       n_save=gd_n_save).flipped(orient)
        gdev = collapse_deviation(gt, g.thetas, g.losses, window=window)
        gorder = collapse_order(Cn[:-1], gdev.param[:-1], floor=floor)
        esc = np.array([escape_time(*g.runs[i].valid()[:2]) for i in range(B)])
        pad = len(taus) - len(gt)
        ds["loss_gd"] = (("trial", "tau"), np.pad(g.losses, ((0, 0), (0, pad)),
                                                  constant_values=np.nan))
        ds["theta_gd"] = (("trial", "tau", "param"),
                          np.pad(g.thetas, ((0, 0), (0, pad), (0, 0)), constant_values=np.nan))
        ds["shift_gd"] = ("trial", g.shifts)
        ds["dev_param_gd"] = ("trial", gdev.param)
        ds["dev_log10_loss_gd"] = ("trial", gdev.log10_loss)
        ds["loss_end_gd"] = ("trial", np.asarray(g.runs.loss_final, dtype=float))
        ds["escape_tau_gd_rate"] = ("trial", esc + g.shifts)
        ds["escape_tau_mu1_shift"] = ("trial", esc + flow.shifts)
        ds.attrs.update(lr=float(gd_lr), gd_escape_rate=float(g.rate),
                        order_gd=float(gorder.slope), gd_iterations=int(np.max(g.runs.steps)),
                        gd_time_axis="tau = t - log(1/||C||)/rho, rho = log(1 + lr mu1)/lr")
    return ds


def aligned_runs(ds, rule: str = "flow"):
    """The ``AlignedRuns`` of ``collapse_dataset``'s ``rule`` ("flow" or "gd") back from
    the dataset (for plotting a stored figure)."""
    from flowtools.experiments.alignment import AlignedRuns

    if rule == "flow":
        return AlignedRuns(ds.tau.values, ds.theta_flow.values, ds.loss_flow.values,
                           ds.shift_flow.values, float(ds.attrs["mu1"]), None, [])
    return AlignedRuns(ds.tau.values, ds.theta_gd.values, ds.loss_gd.values,
                       ds.shift_gd.values, float(ds.attrs["gd_escape_rate"]),
                       float(ds.attrs["lr"]), [])


def plot_collapse_figure(ds, *, params_title: str, suptitle: str):
    """The figure of a ``collapse_dataset``: (a) loss and (b) parameters (``draw_aligned``,
    the flow as lines, GD as dots when stored) and the collapse measure against ‖C(θ0)‖
    (``plot_deviations``, with the fitted orders)."""
    loss_title = f"(a) loss, {ds.sizes['trial']} trials (line style = trial)"
    if "loss_gd" in ds:
        loss_title += (f"\ndots: GD lr {ds.lr:g} × {ds.gd_iterations:.0e} it., shifted with "
                       r"its rate $\rho=\log(1+\eta\mu_1)/\eta$")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(15, 5.2), constrained_layout=True)
    gs = fig.add_gridspec(1, 3, width_ratios=(1.35, 1.35, 0.8))
    labels = [f"scale {s:.0e}, seed {k}" for s, k in zip(ds["scale"].values,
                                                          ds["seed"].values, strict=True)]
    gd = aligned_runs(ds, "gd") if "loss_gd" in ds else None
    axes_l, axes_p = draw_aligned(
        fig, gs[0], gs[1], aligned_runs(ds), gd, labels=labels,
        names=[str(p) for p in ds.param.values], window=ds.window,
        xlabel=r"aligned time $\tau = t - \log(1/\|C(\theta_0)\|)/\mu_1$")
    axes_l[0].set_title(loss_title, fontsize=9, loc="left")
    axes_p[0].set_title(params_title, fontsize=9, loc="left")

    def order(rule):
        v = ds.attrs.get(f"order_{rule}", float("nan"))
        return f", order {v:.2f}" if np.isfinite(v) else ""

    series = [(rf"flow: max $|\Delta\theta|${order('flow')}", ds.dev_param_flow.values[:-1],
               "o-"),
              (r"flow: max $|\Delta\log_{10}\ell|$", ds.dev_log10_loss_flow.values[:-1], "s-")]
    if gd is not None:
        series.append((rf"GD: max $|\Delta\theta|${order('gd')}", ds.dev_param_gd.values[:-1],
                       "^--"))
    plot_deviations(fig.add_subplot(gs[2]), ds.norm_C0.values[:-1], series,
                    floor=ds.collapse_floor, window=ds.window)
    fig.suptitle(suptitle, fontsize=10)
    return fig

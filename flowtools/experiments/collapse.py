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
           "split_axes"]

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

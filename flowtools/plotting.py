"""Matplotlib helpers shared by the CLI, demos and theory (Agg backend, files only; every
figure is written atomically through ``flowtools._io.savefig``)."""

from __future__ import annotations

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from flowtools._io import savefig  # noqa: E402

# matplotlib's tick and layout code overflows on values near float64's limit (a loss of
# 1e299 on a log axis ended `flowtools run --scale 1e150` in an OverflowError): larger
# magnitudes are left out of plots, and the title says so
PLOT_MAX = 1e250


def plottable(values):
    """``values`` with non-finite entries and magnitudes above ``PLOT_MAX`` set to NaN
    (not drawn), and whether any was left out."""
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v) & (np.abs(v) <= PLOT_MAX)
    return np.where(ok, v, np.nan), bool(np.any(np.isfinite(v) & ~ok))


def plot_trajectories(problem, members, path, *, title="", max_params=12):
    """Loss (log–log) and parameters (log time axis) against time for each trajectory."""
    fig, (ax_l, ax_p) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = problem.param_names
    many = len(members) > 1
    left_out = False
    for i, tr in enumerate(members):
        ts, th, ls = tr.valid()
        keep = ts > 0
        (ls, cut_l), (th, cut_p) = plottable(ls), plottable(th)
        left_out |= cut_l | cut_p
        ax_l.loglog(ts[keep], ls[keep], lw=1.2, label=f"#{i}" if many else "loss")
        for j in range(min(th.shape[1], max_params)):
            ax_p.semilogx(ts[keep], th[keep, j], lw=1.0, color=f"C{j % 10}",
                          label=names[j] if i == 0 else None, alpha=0.9 if not many else 0.5)
    if left_out:
        title = f"{title} (values beyond ±{PLOT_MAX:.0e} not drawn)"
    ax_l.set(xlabel="t (flow time; GD: k·lr)", ylabel="loss ℓ(θ(t))", title="loss")
    ax_p.set(xlabel="t (flow time; GD: k·lr)", ylabel="parameter value", title="parameters")
    ax_l.grid(True, which="major", alpha=0.3)
    ax_p.grid(True, alpha=0.3)
    if len(members) <= 10:
        ax_l.legend(fontsize=8)
    ax_p.legend(fontsize=8, ncol=2)
    fig.suptitle(title)
    fig.tight_layout()
    try:
        savefig(fig, path, dpi=110)  # atomically: the old file or the new one, never half
    finally:
        plt.close(fig)
    return path

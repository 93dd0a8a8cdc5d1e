"""Figure 10 of Zhao, Bai & Zhang (Appendix B): the first coordinates of w1 and w2 at the
end points of the Figure-9 runs, against c̃, one panel per n.

The runs are Figure 9's (``fig9.flows``: the same grid, read from its store). Each neuron
is oriented by the sign that maps its input weights onto +w0 (tanh is odd: θk ↦ −θk leaves
f unchanged), so the target value is w^1 = 1. The paper's explanation of the failures at
c̃ = 0 for n = 6, 7, 8: c̃ = 0 leads to the origin of Q2 (the silent neuron at w = 0), near
which there are global minima outside Q* ("imperfect global minima"), so c̃ near 0 may
converge to them.
"""

from __future__ import annotations

import numpy as np

from flowtools.experiments.figures import fig9

TITLE = "Figure 10: first coordinates of w1, w2 at the end points against c̃ (Fig. 9 runs)"
GD = False  # it draws Figure 9's flow runs only
# measured in `flowtools reproduce all` (full mode, idle 2-core CPU, cold JAX cache)
FULL_TIME = "2 s after fig9 (reads its store)"


def compute(*, quick: bool, gd: bool, log=print, engine=None):
    ds = fig9.compute(quick=quick, gd=False, log=log, engine=engine)
    # size of each neuron at the end (the silent neuron of Q2 at its "origin": ‖θk‖ ≈ 0)
    th = ds["theta_end"].values
    ds["neuron_norm"] = (fig9.DIMS + ("neuron",),
                         np.linalg.norm(th.reshape(th.shape[:-1] + (2, 5)), axis=-1),
                         {"long_name": "‖(a_k, w_k, b_k)‖ at the end point"})
    ds.attrs["panel_quantity"] = "w1^1, w2^1: first input coordinate of each neuron, oriented"
    return ds.assign_coords(neuron=[1, 2])


def claims(ds):
    from flowtools.experiments.claims import Claim

    quick = bool(ds.attrs.get("quick", 0))
    cts, ns, o = ds["c_tilde"].values, list(ds["n"].values), ds["outcome"].values[:, 0]
    nn, i0 = ds["neuron_norm"].values[:, 0], int(np.argmin(np.abs(cts)))
    # (1) c̃ = 0 leads to the origin of Q2: the neuron with C = 0 stays at the origin
    small = nn[:, i0].min(-1)
    out = [Claim(
        "§B (Fig. 10 text): c̃ = 0 leads to the origin of Q2 (the silent neuron at 0)",
        "c̃ = 0 exactly (C1 = 0), data seed 0: the smaller neuron's ‖θk‖ at the end = "
        + ", ".join(f"n={n}: {v:.1e}" for n, v in zip(ns, small, strict=True))
        + "; outcomes " + ", ".join(f"n={n}: {o[k, i0]}" for k, n in enumerate(ns)),
        bool(np.all(small < 1e-6)),
        "" if np.all(small < 1e-6) else "a neuron at c̃ = 0 ends away from the origin")]
    # (2) near c̃ = 0 (but not at it) n = 6, 7, 8 converge to global minima outside Q*;
    # (3) those lie near the origin of Q2: one neuron near the target (w^1 ≈ 1), one small
    near = (cts > 0) & (cts <= 0.3)
    parts, near_q2 = [], []
    for n in (n for n in (6, 7, 8) if n in ns):
        k = ns.index(n)
        fail = (o[k] == "global min outside Q*") & near
        lmax = np.nanmax(ds["loss_end"].values[k, 0][fail]) if fail.any() else np.nan
        parts.append(f"n={n}: {int(fail.sum())}/{int(near.sum())} of 0 < c̃ ≤ 0.3 end at a "
                     "global min outside Q*" + (f" (loss ≤ {lmax:.0e})" if fail.any() else ""))
        if fail.any():
            th, m = ds["theta_oriented"].values[k, 0][fail].reshape(-1, 2, 5), nn[k][fail]
            dist = np.abs(th[np.arange(len(th)), np.argmax(m, -1), 1:] - 1).max(-1)
            near_q2.append(Claim(
                f"§B (Fig. 10 text): n = {n}: those global minima lie near the origin of Q2",
                f"{int(fail.sum())} failing runs: the smaller neuron's ‖θk‖ = "
                f"{m.min(-1).min():.2f}…{m.min(-1).max():.2f}, the larger neuron's input "
                f"weights within {dist.max():.2f} of w0 (max-norm)",
                None, "'near' is not quantified by the paper: numbers for the reader"))
    all_fail = len(near_q2) == len(parts)
    out.append(Claim(
        "§B (Fig. 10 text): for n = 6, 7, 8, c̃ near 0 converges to imperfect global minima "
        "(zero loss, outside Q*), so recovery fails there",
        "; ".join(parts) + "; at c̃ = 0 exactly the flow ends in Q2 (origin of Q2)",
        None if quick else all_fail,
        "" if all_fail or quick else "no failure near c̃ = 0 for some n"))
    return out + near_q2


def plot(ds):
    import matplotlib.pyplot as plt

    ns = list(ds["n"].values)
    cts = ds["c_tilde"].values
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5), sharey=True, constrained_layout=True)
    for k, (ax, n) in enumerate(zip(axes.flat, ns, strict=False)):
        th = ds["theta_oriented"].values[k, 0]
        rec = np.isin(ds["outcome"].values[k, 0], fig9.RECOVERED)
        for j, (col, name) in enumerate((("C0", "w_1^1"), ("C1", "w_2^1"))):
            w = th[:, 5 * j + 1]
            ax.plot(cts, w, "-", color=col, lw=1, zorder=2)
            ax.plot(cts[rec], w[rec], "o", color=col, ms=4, zorder=3,
                    label=f"${name}$ (recovered)")
            ax.plot(cts[~rec], w[~rec], "o", mfc="white", color=col, ms=5, zorder=3,
                    label=f"${name}$ (not recovered)")
        ax.axhline(1.0, color="k", ls=":", lw=0.8, zorder=1, label="target $w_0^1 = 1$")
        ax.axhline(0.0, color="0.6", lw=0.6, zorder=1)
    fig9.finish_panels(fig, axes, ns, "$w_k^1$ at the end (oriented to $+w_0$)")
    fig.suptitle(f"{TITLE}\ndata seed 0, gradient flow to certified end points; "
                 f"{ds.attrs.get('criterion', '')}", fontsize=11)
    return fig

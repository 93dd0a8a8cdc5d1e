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
FULL_TIME = "1 s after fig9 (reads its store)"


def compute(*, quick: bool, gd: bool, log=print, engine=None):
    ds = fig9.compute(quick=quick, gd=False, log=log, engine=engine)
    th = ds["theta_end"].values
    # size of each neuron at the end (the silent neuron of Q2 at its "origin": ‖θk‖ ≈ 0)
    blocks = th.reshape(th.shape[:-1] + (2, 5))
    ds["neuron_norm"] = (("n", "data_seed", "c_tilde", "neuron"),
                         np.linalg.norm(blocks, axis=-1),
                         {"long_name": "‖(a_k, w_k, b_k)‖ at the end point"})
    ds = ds.assign_coords(neuron=[1, 2])
    ds.attrs["panel_quantity"] = "w1^1, w2^1: first input coordinate of each neuron, oriented"
    return ds


def _small_c_failures(ds, n, s0=0, c_max=0.3):
    ns = list(ds["n"].values)
    k = ns.index(n)
    cts = ds["c_tilde"].values
    o = ds["outcome"].values[k, s0]
    fail = (o == "global min outside Q*") & (cts > 0) & (cts <= c_max)
    return cts, fail, k


def claims(ds):
    from flowtools.experiments.claims import Claim

    quick = bool(ds.attrs.get("quick", 0))
    cts = ds["c_tilde"].values
    ns = list(ds["n"].values)
    i0 = int(np.argmin(np.abs(cts)))
    out = []
    # (1) c̃ = 0 leads to the origin of Q2: the neuron with C = 0 stays at the origin
    nn = ds["neuron_norm"].values[:, 0, i0]  # (n, neuron)
    small = nn.min(-1)
    out.append(Claim(
        "§B (Fig. 10 text): c̃ = 0 leads to the origin of Q2 (the silent neuron at 0)",
        "c̃ = 0 exactly (C1 = 0), data seed 0: the smaller neuron's ‖θk‖ at the end = "
        + ", ".join(f"n={n}: {v:.1e}" for n, v in zip(ns, small, strict=True))
        + "; outcomes " + ", ".join(f"n={n}: {ds['outcome'].values[k, 0, i0]}"
                                    for k, n in enumerate(ns)),
        bool(np.all(small < 1e-6)),
        "" if np.all(small < 1e-6) else "a neuron at c̃ = 0 ends away from the origin"))
    # (2) near c̃ = 0 (but not at it) n = 6, 7, 8 converge to global minima outside Q*
    mid = [n for n in (6, 7, 8) if n in ns]
    parts, all_fail = [], True
    for n in mid:
        c, fail, k = _small_c_failures(ds, n)
        near = (c > 0) & (c <= 0.3)
        lossmax = np.nanmax(ds["loss_end"].values[k, 0][fail]) if fail.any() else np.nan
        parts.append(f"n={n}: {int(fail.sum())}/{int(near.sum())} of 0 < c̃ ≤ 0.3 end at a "
                     f"global min outside Q*" + (f" (loss ≤ {lossmax:.0e})" if fail.any()
                                                 else ""))
        all_fail &= bool(fail.any())
    out.append(Claim(
        "§B (Fig. 10 text): for n = 6, 7, 8, c̃ near 0 converges to imperfect global minima "
        "(zero loss, outside Q*), so recovery fails there",
        "; ".join(parts) + "; at c̃ = 0 exactly the flow ends in Q2 (origin of Q2)",
        None if quick else all_fail,
        "" if all_fail or quick else "no failure near c̃ = 0 for some n"))
    # (3) the failures lie near the origin of Q2: one neuron near the target (w^1 ≈ 1),
    # the other small
    for n in mid:
        c, fail, k = _small_c_failures(ds, n)
        if not fail.any():
            continue
        th = ds["theta_oriented"].values[k, 0][fail]
        nn = ds["neuron_norm"].values[k, 0][fail]
        big = np.argmax(nn, -1)
        dist_big = np.abs(th.reshape(-1, 2, 5)[np.arange(len(th)), big, 1:] - 1).max(-1)
        out.append(Claim(
            f"§B (Fig. 10 text): n = {n}: those global minima lie near the origin of Q2",
            f"{int(fail.sum())} failing runs: the smaller neuron's ‖θk‖ = "
            f"{nn.min(-1).min():.2f}…{nn.min(-1).max():.2f}, the larger neuron's input "
            f"weights within {dist_big.max():.2f} of w0 (max-norm)",
            None, "'near' is not quantified by the paper: numbers for the reader"))
    return out


def plot(ds):
    import matplotlib.pyplot as plt

    ns = list(ds["n"].values)
    cts = ds["c_tilde"].values
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5), sharey=True, constrained_layout=True)
    for k, (ax, n) in enumerate(zip(axes.flat, ns, strict=False)):
        th = ds["theta_oriented"].values[k, 0]
        rec = np.isin(ds["outcome"].values[k, 0], ("Q1", "Q2"))
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

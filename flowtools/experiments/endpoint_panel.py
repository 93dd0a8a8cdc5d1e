"""The end points of Example 1 in the neurons' own space, (w, b, a), with the target set Q*.

For the two-neuron, one-input network with a bias (Example 1), each neuron k of an end
point is a point (w_k, b_k, a_k) ∈ ℝ³. Up to the sign symmetry of an odd σ (θ_k ↦ −θ_k) —
each neuron is drawn with the sign s_k of ``flowtools.branches.classify`` that maps w_k
onto the target's +w0 — the target set is

* Q1: both neurons on the line w = w0, b = b0 (with a1 + a2 = a0);
* Q2: one neuron at (w0, b0, a0), the other silent: the plane a = 0.

``plot_endpoints_3d`` draws both neurons of every end point on a 3-D axis, coloured by a
value per end point (c̃ in the paper's Figures 3(a) and 4(f)), with Q1, Q2 and optional
trajectories.
"""

from __future__ import annotations

import numpy as np

from flowtools.branches import classify
from flowtools.errors import FlowtoolsError

__all__ = ["plot_endpoints_3d"]


def _target_point(problem):
    """(w0, b0, a0) of the problem's single-neuron target (d = 1 with a bias, m = 2)."""
    tg = getattr(problem, "target", None)
    if tg is None or problem.width != 2 or problem.dim != 1 or not problem.bias:
        raise FlowtoolsError("the (w, b, a) end-point panel needs Example 1's layout: width 2, "
                             "one input with a bias, and the target stored with the problem.")
    return float(tg.w0[0]), float(tg.b0 or 0.0), float(tg.a0)


def plot_endpoints_3d(ax, problem, theta_final, *, color, paths=(), origin: bool = False,
                      size: float = 7, extent=(-1.0, 2.5)):
    """Draw both neurons of each end point (theta_final (B, 6)) as (w, b, a) on ``ax`` (a
    matplotlib 3-D axis), coloured by ``color`` (B,) on [0, 1]; Q1 (dashed line), Q2 (plane
    a = 0 and the active neuron's point); ``paths``: (trajectory, label, colour) triples
    (trajectory: the member whose end point it is, oriented like that end point's neurons,
    given as (ts, θ (S, 6)) or a ``Trajectory``); ``origin``: mark θ = 0. Returns the
    scatter (for a colour bar)."""
    w0, b0, a0 = _target_point(problem)
    theta_final = np.atleast_2d(np.asarray(theta_final, dtype=float))
    res = classify(problem, theta_final)
    a, W = (np.asarray(v) for v in problem.unpack(theta_final))
    s = np.asarray(res.neuron_sign)
    for k in range(2):
        sc = ax.scatter(s[:, k] * W[:, k, 0], s[:, k] * W[:, k, 1], s[:, k] * a[:, k],
                        c=color, cmap="viridis", vmin=0, vmax=1, s=size, depthshade=False)
    ww, bb = np.meshgrid(np.linspace(*extent, 2), np.linspace(*extent, 2))
    ax.plot_surface(ww, bb, 0 * ww, alpha=0.12, color="C1")
    ax.scatter([w0], [b0], [a0], marker="*", s=120, color="C1",
               label=f"Q2 active neuron ({w0:g}, {b0:g}, {a0:g})")
    ax.plot([w0, w0], [b0, b0], [-0.5 * a0, 1.5 * a0], "k--", lw=1.5,
            label=f"Q1: w = {w0:g}, b = {b0:g}, a1 + a2 = {a0:g}")
    if origin:
        ax.scatter([0], [0], [0], marker="o", s=30, color="k", label="origin")
    for member, label, col in paths:
        th = member.valid()[1] if hasattr(member, "valid") else np.asarray(member[1])
        sg = np.asarray(classify(problem, th[-1]).neuron_sign)
        for k in range(2):
            blk = th[:, 3 * k: 3 * k + 3] * sg[k]
            ax.plot(blk[:, 1], blk[:, 2], blk[:, 0], color=col, lw=1.2,
                    label=label if k == 0 else None)
    ax.set_xlabel("w")
    ax.set_ylabel("b")
    ax.set_zlabel("a")
    return sc

"""The branch map of Example 1: the final branch (Q1 / Q2) of the flow's and of GD's end
points over the initial imbalance ratio c̃ (the paper's Figures 2–3 protocol, width m = 2).

The flow and GD start from ``problem.init_ratio(c̃, scale, seed)``. The flow's label is
that of its limit (integrated to the loss threshold); GD is labelled at its horizon T and
after continuing its iterate with the flow (GD's t → ∞ label, valid only below the
stability edge 2/λ_max at that end point).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flowtools import _validate as V
from flowtools.branches import classify
from flowtools.descent import run_gd
from flowtools.discretization.core import _check_lrs, _lam_max
from flowtools.errors import FlowtoolsError
from flowtools.flow import solve_flow
from flowtools.models import Problem

__all__ = ["EX1_LRS", "BranchMap", "branch_map"]

EX1_LRS = (0.01, 0.05, 0.25, 0.5)  # the paper's learning rates on Example 1 (Appendix C)


@dataclass(frozen=True, eq=False)
class BranchMap:
    """Final branch of Example 1's end points over c̃, for the flow and for GD.

    Attributes:
        c_tildes: (C,) initial imbalance ratios c = C1/C2 = c̃ ∈ (0, 1].
        lrs: (L,) GD learning rates.
        horizon: GD's flow-time horizon T (GD runs max_iter = T/η iterations, the paper's
            protocol, stopping early at ``loss_threshold``).
        flow: (C,) branch of the flow's limit (``solve_flow`` to ``loss_threshold``:
            the t → ∞ label), "undecided" if it did not get there.
        flow_edge: (C,) 2/λ_max at the flow's end point (GD's stability edge there).
        gd_T: (L, C) branch of GD's iterate at T (the finite-horizon label, ``tol``), or
            "diverged".
        gd_limit: (L, C) branch of the flow continued from GD's iterate at T to the loss
            threshold (GD's t → ∞ label, assuming GD follows the flow from there, i.e.
            η below the stability edge there; "beyond_edge" otherwise).
        gd_loss: (L, C) GD's loss at T (or when it stopped).
        disagree: list of (lr, c̃, flow label, GD limit label, GD label at T) where the GD
            limit label differs from the flow's.
    """

    c_tildes: np.ndarray
    lrs: np.ndarray
    horizon: float
    scale: float
    seed: int
    flow: np.ndarray
    flow_t: np.ndarray
    flow_edge: np.ndarray
    gd_T: np.ndarray
    gd_limit: np.ndarray
    gd_loss: np.ndarray
    gd_edge: np.ndarray
    tol: float
    disagree: list

    def table(self) -> str:
        head = f"{'c~':>6} {'flow(t→∞)':>10} {'2/λmax':>7} " + " ".join(
            f"{'lr=' + format(lr, 'g') + ' T/∞':>17}" for lr in self.lrs)
        lines = [f"branch map: Example 1 end points, scale {self.scale:g}, seed {self.seed}, "
                 f"GD horizon T = {self.horizon:g} (label at T / label of the flow "
                 "continued from GD's iterate at T)", head]
        for j, c in enumerate(self.c_tildes):
            lines.append(f"{c:6.3f} {self.flow[j]:>10} {self.flow_edge[j]:7.4f} " + " ".join(
                f"{self.gd_T[i, j] + '/' + self.gd_limit[i, j]:>17}"
                for i in range(len(self.lrs))))
        lines.append("disagreements (GD limit ≠ flow limit): " + (
            ", ".join(f"lr={lr:g} c~={c:.3f} ({f}→{g})" for lr, c, f, g, _ in self.disagree)
            or "none"))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                for k, v in self.__dict__.items()}


def branch_map(problem: Problem, c_tildes, lrs=EX1_LRS, *, scale: float = 1e-8,
               seed: int = 0, horizon: float = 5e4, loss_threshold: float = 1e-15,
               tol: float = 0.1) -> BranchMap:
    """Final branch (Q1 / Q2) over c̃ for the flow and for GD (width m = 2).

    Initial states: ``problem.init_ratio(c̃, scale, seed)`` (the paper's Figure 2/3
    protocol: the second neuron rescaled so that C1/C2 = c̃). The flow is integrated to
    ``loss_threshold`` (its t → ∞ label). GD runs to flow time ``horizon`` (default 5e4 =
    Figure 3's 1e6 iterations at η = 0.05) and is labelled there and after continuing its
    iterate with the flow to ``loss_threshold``.

        >>> import flowtools as ft
        >>> bm = branch_map(ft.example1(), [0.5, 0.9], [0.05], horizon=5e3)
        >>> bm.flow.tolist(), bm.gd_limit.tolist()
        (['Q2', 'Q1'], [['Q2', 'Q1']])
    """
    problem._require_width2("the branch map over c̃")
    cs = V.real_array(c_tildes, "c_tildes", finite=False).ravel()
    if cs.size == 0 or np.any(~np.isfinite(cs)) or np.any(cs <= 0) or np.any(cs > 1):
        raise FlowtoolsError(f"c̃ values must lie in (0, 1], got {cs}.")
    lrs = _check_lrs(lrs)
    scale = V.positive_float(scale, "the initial scale")
    seed = V.nonnegative_int(seed, "seed")
    horizon = V.positive_float(horizon, "the GD horizon")
    loss_threshold = V.loss_threshold(loss_threshold)
    tol = V.positive_float(tol, "the branch tolerance tol")
    th0 = np.stack([problem.init_ratio(c, scale, seed) for c in cs])

    def limit_labels(thetas):
        fl = solve_flow(problem, thetas, t1=1e12, loss_threshold=loss_threshold)
        lab = np.asarray(classify(problem, fl.theta_final, tol=tol).branch, dtype=object)
        lab[~np.asarray(fl.converged)] = "undecided"
        return lab, np.atleast_1d(fl.t_final), fl.theta_final

    flow, flow_t, flow_end = limit_labels(th0)
    flow_edge = 2.0 / np.maximum(_lam_max(problem, flow_end), 1e-300)
    L, C = lrs.size, cs.size
    gd_T = np.empty((L, C), dtype=object)
    gd_limit = np.empty((L, C), dtype=object)
    gd_loss = np.full((L, C), np.nan)
    gd_edge = np.full((L, C), np.nan)
    for i, lr in enumerate(lrs):
        gd = run_gd(problem, th0, lr, max_iter=max(1, int(round(horizon / lr))),
                    loss_threshold=loss_threshold, n_save=3)
        fin = np.all(np.isfinite(gd.theta_final), -1) & np.isfinite(gd.loss_final)
        gd_loss[i] = np.where(fin, gd.loss_final, np.nan)
        gd_T[i] = "diverged"
        gd_limit[i] = "diverged"
        if fin.any():
            thf = gd.theta_final[fin]
            gd_T[i, fin] = np.asarray(classify(problem, thf, tol=tol).branch, dtype=object)
            # continue every member (a fixed batch shape: one compilation); members that
            # already reached the threshold keep their end point
            start = np.where(fin[:, None], gd.theta_final, th0)
            lab, _, ends = limit_labels(start)
            done = fin & (gd.loss_final <= loss_threshold)
            lab = np.where(done, np.asarray(classify(problem, start, tol=tol).branch,
                                            dtype=object), lab)
            ends = np.where(done[:, None], start, ends)
            edge = 2.0 / np.maximum(_lam_max(problem, ends), 1e-300)
            gd_edge[i, fin] = edge[fin]
            lab = np.where(lr < edge, lab, "beyond_edge")
            gd_limit[i, fin] = lab[fin]
    disagree = [(float(lrs[i]), float(cs[j]), flow[j], gd_limit[i, j], gd_T[i, j])
                for i in range(L) for j in range(C) if gd_limit[i, j] != flow[j]]
    return BranchMap(c_tildes=cs, lrs=lrs, horizon=float(horizon), scale=scale, seed=seed,
                     flow=flow, flow_t=flow_t, flow_edge=flow_edge, gd_T=gd_T,
                     gd_limit=gd_limit, gd_loss=gd_loss, gd_edge=gd_edge, tol=tol,
                     disagree=disagree)

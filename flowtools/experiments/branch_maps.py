"""The branch map of Example 1: the final branch (Q1 / Q2) of the flow's and of GD's end
points over the initial imbalance ratio c̃ (the paper's Figures 2–3 protocol, width m = 2).

The flow and GD start from ``problem.init_ratio(c̃, scale, seed)``. The flow's label is
that of its limit (integrated to the loss threshold); GD is labelled at its horizon T and
after continuing its iterate with the flow (GD's t → ∞ label, valid only below the
stability edge 2/λ_max at that end point). Label arrays hold only branch labels
(``flowtools.branches.BRANCHES``), "" where there is none; why there is none is in the
parallel arrays: the ``Status`` of the run (a flow that did not reach the threshold, a GD
run that overflowed) and the ``Regime`` of GD against the flow (beyond the edge, diverged).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flowtools import _validate as V
from flowtools._io import named
from flowtools.branches import classify
from flowtools.descent import run_gd
from flowtools.discretization import lam_max
from flowtools.errors import FlowtoolsError
from flowtools.flow import solve_flow
from flowtools.models import Problem
from flowtools.trajectory import Regime, Status

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
            the t → ∞ label), "" if it did not get there (see ``flow_status``).
        flow_status: (C,) ``Status`` of those flows (CONVERGED: the label is the limit's).
        flow_t: (C,) the time the flow reached the threshold (or stopped).
        flow_edge: (C,) 2/λ_max at the flow's end point (GD's stability edge there).
        gd_T: (L, C) branch of GD's iterate at T (the finite-horizon label, ``tol``), ""
            where GD overflowed (see ``gd_status``).
        gd_status: (L, C) ``Status`` of the GD runs (NONFINITE: diverged).
        gd_limit: (L, C) branch of the flow continued from GD's iterate at T to the loss
            threshold (GD's t → ∞ label, assuming GD follows the flow from there, i.e.
            η below the stability edge there); "" where ``gd_regime`` is not FOLLOWS or
            the continued flow did not reach the threshold (``gd_limit_status``).
        gd_regime: (L, C) ``Regime`` of GD against the flow at GD's end point: FOLLOWS,
            BEYOND_EDGE (η ≥ 2/λ_max there) or DIVERGED.
        gd_limit_status: (L, C) ``Status`` of the continued flows (CONVERGED for runs that
            reached the threshold already; the GD run's status where it overflowed).
        gd_loss: (L, C) GD's loss at T (or when it stopped).
        gd_edge: (L, C) 2/λ_max at the end of the continued flow.
        disagree: list of (lr, c̃, flow, GD limit, GD at T) where GD's limit label differs
            from the flow's or GD does not follow the flow; each entry the label, or the
            name of the status or regime where there is none.
    """

    c_tildes: np.ndarray
    lrs: np.ndarray
    horizon: float
    scale: float
    seed: int
    flow: np.ndarray
    flow_status: np.ndarray
    flow_t: np.ndarray
    flow_edge: np.ndarray
    gd_T: np.ndarray
    gd_status: np.ndarray
    gd_limit: np.ndarray
    gd_regime: np.ndarray
    gd_limit_status: np.ndarray
    gd_loss: np.ndarray
    gd_edge: np.ndarray
    tol: float
    disagree: list

    def _shown(self, i, j):
        """Display strings (flow, GD limit, GD at T) of learning rate i, c̃ j."""
        return (self.flow[j] or self.flow_status[j].name,
                self.gd_limit[i, j] or (self.gd_regime[i, j].name
                                        if not self.gd_regime[i, j].ok
                                        else self.gd_limit_status[i, j].name),
                self.gd_T[i, j] or self.gd_status[i, j].name)

    def table(self) -> str:
        head = f"{'c~':>6} {'flow(t→∞)':>10} {'2/λmax':>7} " + " ".join(
            f"{'lr=' + format(lr, 'g') + ' T/∞':>17}" for lr in self.lrs)
        lines = [f"branch map: Example 1 end points, scale {self.scale:g}, seed {self.seed}, "
                 f"GD horizon T = {self.horizon:g} (label at T / label of the flow "
                 "continued from GD's iterate at T)", head]
        for j, c in enumerate(self.c_tildes):
            cells = [self._shown(i, j) for i in range(len(self.lrs))]
            lines.append(f"{c:6.3f} {self._shown(0, j)[0]:>10} {self.flow_edge[j]:7.4f} "
                         + " ".join(f"{T + '/' + lim:>17}" for _, lim, T in cells))
        lines.append("disagreements (GD limit ≠ flow limit): " + (
            ", ".join(f"lr={lr:g} c~={c:.3f} ({f}→{g})" for lr, c, f, g, _ in self.disagree)
            or "none"))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-ready (statuses and regimes by their names)."""
        return {k: named(v) for k, v in self.__dict__.items()}


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
        >>> bm.flow.tolist(), bm.gd_limit.tolist(), [r.name for r in bm.gd_regime[0]]
        (['Q2', 'Q1'], [['Q2', 'Q1']], ['FOLLOWS', 'FOLLOWS'])
    """
    if not isinstance(problem, Problem):
        raise FlowtoolsError("the branch map over c̃ is defined for the paper's two-layer "
                             f"network (flowtools.models.Problem), not {type(problem).__name__}.")
    problem._require_width2("the branch map over c̃")
    cs = V.real_array(c_tildes, "c_tildes", finite=False).ravel()
    if cs.size == 0 or np.any(~np.isfinite(cs)) or np.any(cs <= 0) or np.any(cs > 1):
        raise FlowtoolsError(f"c̃ values must lie in (0, 1], got {cs}.")
    lrs = V.learning_rates(lrs)
    scale = V.positive_float(scale, "the initial scale")
    seed = V.nonnegative_int(seed, "seed")
    horizon = V.positive_float(horizon, "the GD horizon")
    loss_threshold = V.loss_threshold(loss_threshold)
    tol = V.positive_float(tol, "the branch tolerance tol")
    th0 = np.stack([problem.init_ratio(c, scale, seed) for c in cs])

    def labels(thetas):
        return np.asarray(classify(problem, thetas, tol=tol).branch, dtype=object)

    def limit_labels(thetas):
        fl = solve_flow(problem, thetas, t1=1e12, loss_threshold=loss_threshold)
        lab, conv = labels(fl.theta_final), np.asarray(fl.converged)
        lab[~conv] = ""
        return lab, _statuses(fl.status), np.atleast_1d(fl.t_final), fl.theta_final

    flow, flow_status, flow_t, flow_end = limit_labels(th0)
    flow_edge = 2.0 / np.maximum(lam_max(problem, flow_end), 1e-300)
    L, C = lrs.size, cs.size
    gd_T = np.full((L, C), "", dtype=object)
    gd_limit = np.full((L, C), "", dtype=object)
    gd_status = np.empty((L, C), dtype=object)
    gd_regime = np.empty((L, C), dtype=object)
    gd_regime[...] = Regime.DIVERGED  # (np.full would store the int, not the member)
    gd_limit_status = np.empty((L, C), dtype=object)
    gd_loss = np.full((L, C), np.nan)
    gd_edge = np.full((L, C), np.nan)
    for i, lr in enumerate(lrs):
        gd = run_gd(problem, th0, lr, max_iter=max(1, int(round(horizon / lr))),
                    loss_threshold=loss_threshold, n_save=3)
        fin = np.all(np.isfinite(gd.theta_final), -1) & np.isfinite(gd.loss_final)
        gd_status[i] = _statuses(gd.status)
        gd_limit_status[i] = gd_status[i]
        gd_loss[i] = np.where(fin, gd.loss_final, np.nan)
        if fin.any():
            gd_T[i, fin] = labels(gd.theta_final[fin])
            # continue every member (a fixed batch shape: one compilation); members that
            # already reached the threshold keep their end point
            start = np.where(fin[:, None], gd.theta_final, th0)
            lab, st, _, ends = limit_labels(start)
            done = fin & (gd.loss_final <= loss_threshold)
            lab = np.where(done, labels(start), lab)
            st[done] = Status.CONVERGED
            ends = np.where(done[:, None], start, ends)
            edge = 2.0 / np.maximum(lam_max(problem, ends), 1e-300)
            gd_edge[i, fin] = edge[fin]
            follows = lr < edge
            gd_regime[i, fin & follows] = Regime.FOLLOWS
            gd_regime[i, fin & ~follows] = Regime.BEYOND_EDGE
            gd_limit[i, fin] = np.where(follows, lab, "")[fin]
            gd_limit_status[i, fin] = st[fin]
    bm = BranchMap(c_tildes=cs, lrs=lrs, horizon=float(horizon), scale=scale, seed=seed,
                   flow=flow, flow_status=flow_status, flow_t=flow_t, flow_edge=flow_edge,
                   gd_T=gd_T, gd_status=gd_status, gd_limit=gd_limit, gd_regime=gd_regime,
                   gd_limit_status=gd_limit_status, gd_loss=gd_loss, gd_edge=gd_edge,
                   tol=tol, disagree=[])
    bm.disagree.extend((float(lrs[i]), float(cs[j]), *bm._shown(i, j))
                       for i in range(L) for j in range(C)
                       if gd_limit[i, j] != flow[j] or not gd_regime[i, j].ok)
    return bm


def _statuses(codes) -> np.ndarray:
    """``Status`` members (an object array) from a trajectory's status codes."""
    return np.array([Status(int(c)) for c in np.atleast_1d(codes)], dtype=object)

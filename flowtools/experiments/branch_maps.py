"""The branch map of Example 1: the final branch (Q1 / Q2) of the flow's and of GD's end
points over the initial imbalance ratio c̃ (the paper's Figures 2–3 protocol, width m = 2).

The flow and GD start from ``problem.init_ratio(c̃, scale, seed)``. The flow's label is
that of its limit (integrated to the loss threshold); GD is labelled at its horizon T and
after continuing its iterate with the flow (GD's t → ∞ label, valid only below the
stability edge 2/λ_max at that end point). Label arrays hold only branch labels
(``flowtools.branches.BRANCHES``), "" where there is none; why there is none is in the
parallel arrays: the ``Status`` of the run (a flow that did not reach the threshold, a GD
run that overflowed) and the ``Regime`` of GD against the flow (beyond the edge, diverged).

Demarcations over c̃ (``flowtools reproduce fig3`` and ``cstar``): ``demarcation`` (the
best threshold of "Q1 iff c̃ > b" for labelled seeds), ``nearer_branch`` (how a state at a
finite horizon is assigned Q1 or Q2) and ``limit_start_points`` (start points on the α → 0
limiting trajectory for given c̃, batched).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flowtools import _validate as V
from flowtools._io import named
from flowtools.branches import classify
from flowtools.descent import GD_STEP_LIMIT, check_gd_iterations, gd_iterations, run_gd
from flowtools.discretization import lam_max
from flowtools.errors import FlowtoolsError
from flowtools.flow import solve_flow
from flowtools.models import Problem
from flowtools.status import Regime, Status

__all__ = ["EX1_LRS", "BranchMap", "Demarcation", "branch_map", "demarcation",
           "limit_start_points", "nearer_branch"]

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
               tol: float = 0.1, max_gd_steps: float = GD_STEP_LIMIT) -> BranchMap:
    """Final branch (Q1 / Q2) over c̃ for the flow and for GD (width m = 2).

    Initial states: ``problem.init_ratio(c̃, scale, seed)`` (the paper's Figure 2/3
    protocol: the second neuron rescaled so that C1/C2 = c̃). The flow is integrated to
    ``loss_threshold`` (its t → ∞ label). GD runs to flow time ``horizon`` (default 5e4 =
    Figure 3's 1e6 iterations at η = 0.05) and is labelled there and after continuing its
    iterate with the flow to ``loss_threshold``. Its GD iterations (Σ horizon/η over the
    learning rates, per c̃) are estimated first and refused above ``max_gd_steps``.

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
    with np.errstate(over="ignore"):
        worst = horizon / float(np.min(lrs))
    check_gd_iterations(
        gd_iterations(horizon, lrs, batch=cs.size), max_gd_steps, "this branch map",
        f"its longest GD run is horizon/lr = {horizon:g}/{float(np.min(lrs)):g} = "
        f"{worst:.3g} iterations, for each of the {cs.size} c̃ value(s); shorten the "
        "horizon (--horizon), raise the learning rates or give fewer c̃ values",
        "max_gd_steps (--max-gd-steps)")
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


# ------------------------------------------------------------------ demarcations over c̃
@dataclass(frozen=True)
class Demarcation:
    """The best threshold b of the rule "Q1 iff c̃ > b" for labelled c̃ values.

    Attributes:
        c_tilde: b, the midpoint of the bracket (NaN if there are no Q1 or no Q2 labels).
        bracket: (largest c̃ below b, smallest c̃ above b) among the labelled values.
        misordered: how many labelled values the rule gets wrong.
        largest_q2, smallest_q1: the extreme c̃ of each branch.
        n_q1, n_q2: how many values carry each label (others are ignored).
    """

    c_tilde: float
    bracket: tuple
    misordered: int
    largest_q2: float
    smallest_q1: float
    n_q1: int
    n_q2: int

    @property
    def abs_c(self) -> tuple:
        """The demarcation as the paper draws it, on |c| = |C1/C2|: (1/b, b)."""
        return (1.0 / self.c_tilde, self.c_tilde)


def demarcation(c_tilde, labels) -> Demarcation:
    """The threshold b that best separates "Q1 iff c̃ > b" over the values labelled "Q1"
    or "Q2" (any other label is ignored): b minimizes the number of misordered values and
    is the midpoint of the gap it falls in.

        >>> d = demarcation([0.2, 0.5, 0.7, 0.9], ["Q2", "Q2", "Q1", "Q1"])
        >>> d.c_tilde, d.bracket, d.misordered
        (0.6, (0.5, 0.7), 0)
    """
    ct = np.asarray(c_tilde, dtype=float).ravel()
    labels = np.asarray(labels, dtype=object).ravel()
    ok = (labels == "Q1") | (labels == "Q2")
    c, q1 = ct[ok], labels[ok] == "Q1"
    order = np.argsort(c, kind="stable")
    c, q1 = c[order], q1[order]
    nan = float("nan")
    if not q1.any() or q1.all():
        return Demarcation(nan, (nan, nan), 0, float(c[~q1].max()) if (~q1).any() else nan,
                           float(c[q1].min()) if q1.any() else nan, int(q1.sum()),
                           int((~q1).sum()))
    # misordered for "Q1 from index j on": Q1 before j plus Q2 from j on
    errs = np.concatenate([[0], np.cumsum(q1)]) + np.concatenate(
        [np.cumsum((~q1)[::-1])[::-1], [0]])
    j = int(np.argmin(errs))
    lo = float(c[j - 1]) if j > 0 else 0.0
    hi = float(c[j]) if j < len(c) else 1.0
    return Demarcation(0.5 * (lo + hi), (lo, hi), int(errs[j]), float(c[~q1].max()),
                       float(c[q1].min()), int(q1.sum()), int((~q1).sum()))


def nearer_branch(problem: Problem, theta) -> np.ndarray:
    """"Q1" or "Q2": the nearer of the two by ``classify``'s distances (minimized over
    neuron swaps and sign flips) — how a state at a finite horizon that has not converged
    is assigned a branch; "" where θ is not finite."""
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    fin = np.all(np.isfinite(theta), axis=-1)
    br = classify(problem, np.where(fin[:, None], theta, 0.0), tol=1e300)
    lab = np.where(np.asarray(br.dist_Q1) <= np.asarray(br.dist_Q2), "Q1", "Q2")
    return np.where(fin, lab, "").astype(object)


def limit_start_points(problem: Problem, c_tildes, *, order: int = 9,
                       tol: float = 1e-17) -> tuple[np.ndarray, np.ndarray]:
    """Start points on the α → 0 limiting trajectory h(θ, ·) for initial ratios C1/C2 = c̃
    (width m = 2): θ = V1·(c̃, 1)/‖(c̃, 1)‖ in the top eigenspace (Theorem 1: h depends on
    θ0 only through C(θ0), so this is every θ0 with that ratio), and the manifold series'
    point P(τ0σ) where its truncation error is ≤ ``tol`` (``flowtools.limiting.manifold``,
    as ``limit_endpoint`` does for one θ). Returns (start points (C, 6), τ0 (C,)).
    c̃ = 0 is C1 = 0 exactly (neuron 1 stays at 0 on the whole trajectory); c̃ = 1 is the
    swap-symmetric ray."""
    from flowtools.limiting.manifold import (
        evaluate,
        ray_coefficients,
        safe_radius,
        series_radius,
    )

    problem._require_width2("the α → 0 branch over c̃")
    cs = np.atleast_1d(np.asarray(c_tildes, dtype=float))
    if np.any(~np.isfinite(cs)) or np.any(cs < 0) or np.any(cs > 1):
        raise FlowtoolsError(f"c̃ values must lie in [0, 1], got {cs}.")
    V1 = np.asarray(problem.top_eigvecs)
    C1 = np.asarray(problem.imbalance(V1[:, 0]))
    sgn = np.sign(C1[0])  # orient s so that C(θ) ∝ (c̃, 1)
    starts, taus = np.empty((cs.size, V1.shape[0])), np.empty(cs.size)
    for i, c in enumerate(cs):
        s = np.array([c, 1.0]) / np.hypot(c, 1.0) * sgn
        Q = ray_coefficients(problem.field, V1 @ s, problem.mu1, order=order)
        log_tau = np.log(min(safe_radius(Q, tol), 0.5 * series_radius(Q), 1e300))
        starts[i], taus[i] = evaluate(Q, log_tau), np.exp(log_tau)
    return starts, taus

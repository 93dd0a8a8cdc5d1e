"""The branch map of Example 1 and the demarcations over c̃ drawn from it (the paper's
Figures 2–3, width m = 2). The map itself (``branch_map``, ``BranchMap``, ``EX1_LRS``) is
library code in ``flowtools.branches``, re-exported here.

Demarcations over c̃ (``flowtools reproduce fig3`` and ``cstar``): ``demarcation`` (the
best threshold of "Q1 iff c̃ > b" for labelled seeds), ``nearer_branch`` (how a state at a
finite horizon is assigned Q1 or Q2) and ``limit_start_points`` (start points on the α → 0
limiting trajectory for given c̃, batched).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flowtools.branches import EX1_LRS, BranchMap, branch_map, classify
from flowtools.errors import FlowtoolsError
from flowtools.models import Problem

__all__ = ["EX1_LRS", "BranchMap", "Demarcation", "branch_map", "demarcation",
           "limit_start_points", "nearer_branch"]


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

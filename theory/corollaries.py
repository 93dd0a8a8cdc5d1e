"""Corollaries 1–3 (Appendix A.2), under Theorem 3's hypotheses, h(v, t) := lim_{α→0}
φ(αv, t + log(1/α)/μ1):

  C1  h(v, t) = h(v1, t), v1 the projection of v onto the μ1-eigenspace;
  C2  h(sv, t) = h(v, t + log(s)/μ1) for every s > 0;
  C3  T_v = T_{v1}, T_{cv} = T_v (c > 0), and T_v = T_{v1/‖v1‖} (v1 ≠ 0).

Measured: C1 and C2 as max_t relative differences of two α-extrapolated limits (10 × their
error estimates, which include the flows' measured error); C3 as an upper bound of the set
distance between the two curves in both directions (no time shift assumed,
``measure.curve_distance``).

"Projection" is the spectral one, v1 = V1 W1ᵀ v (along the other eigenvectors). For a
gradient field it is the orthogonal projection; for a non-normal DF(0) the orthogonal
projection (the literal reading of Theorem 3's "u_α orthogonal to the eigenspace") gives a
different limit — measured and reported as a remark.
"""

from __future__ import annotations

import numpy as np

from theory import assumptions
from theory import measure as M
from theory.report import check, not_applicable
from theory.theorem1 import clause_iii

STATEMENTS = {
    "C1": "h(v,t) = h(v1,t), v1 = projection of v onto the μ1-eigenspace",
    "C2": "h(sv,t) = h(v, t + log(s)/μ1) for s > 0",
    "C3": "T_v = T_{cv} (c > 0) = T_{v1/‖v1‖}",
}
STEPS = np.array([0.0, 0.5, 1.0, 2.0, 4.0, 8.0])


def clause_1(ctx, case, v):
    v1 = case.project(v)
    ts = M.earliest_time(case, v) + STEPS / case.system.mu1
    a = M.limit_of(case, v, ts, cache=ctx.cache)
    b = M.limit_of(case, v1, ts, cache=ctx.cache)
    meas, tol = M.agreement(a, b)
    out = check("C1", STATEMENTS["C1"], case.name, "max_t ‖h(v,t) − h(v1,t)‖/‖h(v1,t)‖", meas,
                "<=", tol, "10 × the two extrapolations' error estimates",
                reason=f"‖v − v1‖ = {np.linalg.norm(v - v1):.3g}")
    if not case.is_network:  # the literal (orthogonal) reading, for a non-normal DF(0)
        V1 = case.system.V1
        vo = V1 @ (V1.T @ v)
        t0 = max(M.earliest_time(case, vo), ts[0])
        ts_o = t0 + STEPS / case.system.mu1
        c = M.limit_of(case, vo, ts_o, cache=ctx.cache)
        d = M.limit_of(case, v, ts_o, cache=ctx.cache)
        m_o, tol_o = M.agreement(d, c)
        ctx.remarks.append(
            f"C1 on {case.name} (DF(0) not normal): with the *orthogonal* projection "
            f"v1' = V1V1ᵀv instead of the spectral one, max_t ‖h(v,t) − h(v1',t)‖/‖h‖ = "
            f"{m_o:.3g} (error bar {tol_o:.1e}): the corollary — and Theorem 3's condition "
            "'u_α orthogonal to the eigenspace' — hold for the spectral projection "
            "(u_α in the span of the other eigenvectors), as the proof's change of "
            "coordinates to a diagonal J implies; the literal orthogonal reading fails for "
            "non-symmetric DF(0).")
    return out


def clause_2(ctx, case, v, s):
    mu1 = case.system.mu1
    ts = M.earliest_time(case, s * v) + STEPS / mu1
    shifted = ts + np.log(s) / mu1
    a = M.limit_of(case, s * v, ts, cache=ctx.cache)
    b = M.limit_of(case, v, shifted, cache=ctx.cache)
    meas, tol = M.agreement(a, b)
    return check("C2", STATEMENTS["C2"] + f" (s = {s:g})", case.name,
                 "max_t ‖h(sv,t) − h(v,t+log(s)/μ1)‖/‖h‖", meas, "<=", tol,
                 "10 × the two extrapolations' error estimates")


def run(ctx):
    claims = []
    plan = {
        "C1": (["field-", "example1"], ["field-", "d3"]),
        "C2": (["field+", "example1"], ["field+", "example1", "wide"]),
        "C3": (["field0"], ["field0", "wide"]),
    }
    for cid, (quick, full) in plan.items():
        for case in ctx.pick(quick, full):
            claims += assumptions.claim(ctx, case, "T3")
            why = assumptions.gate(ctx, case, "T3")
            if why:
                claims.append(not_applicable(cid, STATEMENTS[cid], case.name, why))
                continue
            v = case.direction(seed=3)
            if cid == "C1":
                claims.append(clause_1(ctx, case, v))
            elif cid == "C2":
                claims += [clause_2(ctx, case, v, s) for s in (0.2, 6.0)]
            else:
                v1 = case.project(v)
                claims.append(clause_iii(ctx, case, v, 3.0 * v, cid="C3",
                                         statement="T_{cv} = T_v (c = 3)"))
                claims.append(clause_iii(ctx, case, v, v1 / np.linalg.norm(v1), cid="C3",
                                         statement="T_v = T_{v1/‖v1‖}"))
    return claims

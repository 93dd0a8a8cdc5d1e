"""Proposition 1 (Appendix A.2): h(v0, t) is differentiable in t and dh/dt = g(h(v0, t)).

Measured (P1): h by α-extrapolation (flows from tiny α: the field enters only through
those flows) at t ± δ/2, t ± δ, t ± 2δ, the fourth-order central differences
D(δ) = [8(h(t+δ) − h(t−δ)) − (h(t+2δ) − h(t−2δ))]/(12δ) and D(δ/2), against g(h(t)).
Error bar: truncation |D(δ) − D(δ/2)|/15 (the δ⁴ term, Richardson) plus round-off
18·e_h/(12·δ/2) (e_h the limits' own error estimate, flows' measured error included,
Σ|coefficients| = 18); tolerance 10 × that. δ = 0.02/μ1 balances the two.
"""

from __future__ import annotations

import numpy as np

from theory import assumptions
from theory import measure as M
from theory.report import check, not_applicable

STATEMENT = "h(v0,t) is differentiable in t and dh/dt = g(h(v0,t))"


def clause(ctx, case, v, base_steps=(0.5, 3.0)):
    mu1 = case.system.mu1
    delta = 0.02 / mu1
    offs = np.array([-2, -1, -0.5, 0, 0.5, 1, 2]) * delta
    worst, worst_tol, rows = 0.0, 0.0, []
    for b in base_steps:
        t = M.earliest_time(case, v) + 2 * delta + b / mu1
        res = M.limit_of(case, v, t + offs, cache=ctx.cache)
        H, E = res.thetas, res.error
        d_full = (8 * (H[5] - H[1]) - (H[6] - H[0])) / (12 * delta)
        d_half = (8 * (H[4] - H[2]) - (H[5] - H[1])) / (12 * delta / 2)
        g = np.asarray(case.system.field(H[3]))
        ng = np.linalg.norm(g)
        meas = np.linalg.norm(d_half - g) / ng
        bar = (np.linalg.norm(d_full - d_half) / 15 + 18 * np.max(E) / (6 * delta)) / ng
        rows.append(dict(t=t, rel_diff=meas, rel_bar=bar))
        if meas / (M.SAFETY * bar) >= worst / max(worst_tol, 1e-300):
            worst, worst_tol = meas, M.SAFETY * bar
    return check("P1", STATEMENT, case.name,
                 "max_t ‖D_{δ/2} h − g(h)‖/‖g(h)‖ (4th-order central differences)", worst,
                 "<=", worst_tol,
                 "10 × (Richardson truncation estimate + round-off of the limits' errors)",
                 details=dict(rows=rows, delta=delta))


def run(ctx):
    claims = []
    for case in ctx.pick(["field+", "example1"], ["field+", "field-", "example1", "d3"]):
        claims += assumptions.claim(ctx, case, "T3")
        why = assumptions.gate(ctx, case, "T3")
        if why:
            claims.append(not_applicable("P1", STATEMENT, case.name, why))
            continue
        claims.append(clause(ctx, case, case.direction(seed=5)))
    return claims

"""The theorems' hypotheses, checked symbolically before anything is measured.

* A.T1 (Theorem 1): σ ∈ C²(ℝ), σ(0) = 0, σ'(0) ≠ 0; γ ≠ 0 — the one check of
  ``flowtools.symbolic.assumptions`` (also behind ``Problem.assumption_failures``), with γ in exact
  rationals from the data.
* A.T2 (Theorem 2): in addition σ analytic.
* A.T3 (Theorem 3, for g = −∇ℓ or a general field F): F ∈ C², F(0) = 0, DF(0)
  diagonalizable, its top eigenvalue μ1 > 0. Networks: from the symbolic origin Hessian
  (``OriginHessian``: −∇²ℓ(0) symmetric hence diagonalizable, exact spectrum), with the
  exact μ1, μ2 compared to the numeric ones used by the limit. Fields: sympy on the
  field's expression (polynomial, F(0), the Jacobian's diagonalizability and spectrum in
  exact rationals), cross-checked against the JAX field at random points.
* A.T4 (Theorem 4): ℓ analytic and nonnegative (a sum of squares of analytic functions
  when σ is analytic) and 0 a strict saddle (∇ℓ(0) = 0, λ_max(−∇²ℓ(0)) = μ1 > 0).

``gate(ctx, case, theorem)`` returns None when the hypotheses hold, otherwise the reason;
the claims of that theorem on that case are then reported as not applicable.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from theory.report import check, not_applicable

STATEMENTS = {
    "T1": "Theorem 1's hypotheses: σ ∈ C², σ(0) = 0, σ'(0) ≠ 0, γ ≠ 0 (symbolic)",
    "T2": "Theorem 2's extra hypothesis: σ analytic (symbolic)",
    "T3": "Theorem 3's hypotheses: F ∈ C², F(0) = 0, DF(0) diagonalizable, μ1 > 0 "
          "(symbolic)",
    "T4": "Theorem 4's hypotheses: ℓ analytic, ℓ ≥ 0, 0 a strict saddle (symbolic)",
}


def _network_checks(case):
    from flowtools.errors import AssumptionError
    from flowtools.symbolic import OriginHessian
    from flowtools.symbolic.assumptions import ANALYTIC, SIGMA0, check_assumptions

    pb = case.problem
    try:
        oh = OriginHessian.from_problem(pb)
        rep, mu1 = oh.assumptions, oh.mu1
    except AssumptionError:  # σ(0) or σ'(0) does not exist: no Hessian at 0, same checks
        oh, mu1 = None, None
        rep = check_assumptions(pb.activation, gamma=pb.gamma)
    out = {}
    out["T1"] = [(c.name, c.holds, c.detail) for c in rep.checks
                 if c.name.startswith("Theorem 1")]
    an, s0 = rep.get(ANALYTIC), rep.get(SIGMA0)
    out["T2"] = [(an.name, an.holds, an.detail)]
    mu1_pos = bool(sp.simplify(mu1) > 0) if mu1 is not None else False
    mu1_text = f"μ1 = {sp.N(mu1, 12)} exactly {_short(mu1)}" if mu1 is not None else \
        "−∇²ℓ(0) does not exist (σ'(0) is not defined)"
    t3 = [("g = −∇ℓ ∈ C² (σ analytic ⇒ σ ∈ C³)", an.holds, an.detail),
          ("g(0) = −∇ℓ(0) = 0 ⇔ σ(0) = 0", s0.holds, s0.detail),
          ("DF(0) = −∇²ℓ(0) symmetric ⇒ diagonalizable", oh is not None or None,
           "a Hessian" if oh is not None else mu1_text),
          ("μ1 > 0", mu1_pos, mu1_text)]
    nums = {}
    if mu1_pos and not pb.assumption_failures():
        num_mu1 = float(pb.mu1)
        num_mu2 = float(pb.mu2)
        nums = dict(mu1_exact=float(sp.N(mu1, 20)), mu1_numeric=num_mu1,
                    mu2_exact=float(sp.N(oh.mu2, 20)) if oh.mu2 is not None else None,
                    mu2_numeric=num_mu2)
        e1 = abs(nums["mu1_exact"] - num_mu1) / num_mu1
        e2 = abs((nums["mu2_exact"] or 0.0) - num_mu2) / num_mu1
        t3.append(("exact μ1, μ2 = the numeric ones used by the limit (≤ 1e-13 rel.)",
                   bool(e1 <= 1e-13 and e2 <= 1e-13), f"rel. diff {e1:.1e}, {e2:.1e}"))
    out["T3"] = t3
    out["T4"] = [("ℓ analytic (σ analytic)", an.holds, an.detail),
                 ("ℓ = ½Σ(f_θ(x_i) − y_i)² ≥ 0", True, "a sum of squares"),
                 ("∇ℓ(0) = 0 (σ(0) = 0)", s0.holds, s0.detail),
                 ("0 a strict saddle: λ_max(−∇²ℓ(0)) = μ1 > 0", mu1_pos, mu1_text)]
    return out, nums


def _short(e):
    s = str(e)
    return s if len(s) < 40 else f"{sp.N(e, 12)}"


def _field_checks(case):
    from theory.problems import FIELD_P, field_sympy

    xs, F = field_sympy(case.mu2_exact)
    X = sp.Matrix(xs)
    poly = all(sp.Poly(f, *xs) is not None for f in F)
    zero = {x: 0 for x in xs}
    F0 = F.subs(zero)
    J = F.jacobian(X).subs(zero)
    diag = bool(J.is_diagonalizable())
    ev = J.eigenvals()
    mu1 = max(ev, key=lambda v: sp.N(v))
    rest = [v for v in ev if v != mu1]
    mu2 = max(rest, key=lambda v: sp.N(v)) if rest else None
    # the JAX field against the sympy expression
    f_np = sp.lambdify(xs, list(F), "numpy")
    rng = np.random.default_rng(0)
    pts = rng.standard_normal((5, FIELD_P))
    err = max(np.linalg.norm(np.asarray(case.field(p)) - np.asarray(f_np(*p), float))
              / max(1.0, np.linalg.norm(np.asarray(f_np(*p), float))) for p in pts)
    checks = [("F polynomial ⇒ C^∞", poly, "polynomial in x"),
              ("F(0) = 0", bool(F0.is_zero_matrix), f"F(0) = {list(F0)}"),
              ("DF(0) diagonalizable", diag, f"eigenvalues {dict(ev)}"),
              ("μ1 > 0", bool(mu1 > 0), f"μ1 = {mu1}, μ2 = {mu2}, J symmetric: "
               f"{J == J.T} (not a gradient field)"),
              ("JAX field = sympy field (≤ 1e-14 rel.)", bool(err <= 1e-14), f"{err:.1e}"),
              ("numeric μ1, μ2 = exact ones (≤ 1e-12)",
               bool(abs(case.system.mu1 - float(mu1)) <= 1e-12
                    and abs(case.system.mu2 - float(mu2)) <= 1e-12),
               f"numeric μ1 = {case.system.mu1:.15g}, μ2 = {case.system.mu2:.15g}")]
    return {"T3": checks}, dict(mu1_exact=float(mu1), mu2_exact=float(mu2))


def checks_of(ctx, case):
    key = ("assumptions", case.name)
    if key not in ctx.cache:
        ctx.cache[key] = _network_checks(case) if case.is_network else _field_checks(case)
    return ctx.cache[key]


def gate(ctx, case, theorem) -> str | None:
    """None if ``theorem``'s hypotheses (and those it builds on) hold for ``case``."""
    checks, _ = checks_of(ctx, case)
    needs = {"T1": ["T1"], "T2": ["T1", "T2"], "T3": ["T3"], "T4": ["T4"]}[theorem]
    if not case.is_network:
        if theorem in ("T1", "T2", "T4"):
            return "a general field, not a network loss: Theorems 1, 2, 4 are about ℓ"
        needs = ["T3"]
    bad = [f"{n}: {d}" for t in needs for n, ok, d in checks.get(t, []) if ok is not True]
    return "hypotheses fail: " + "; ".join(bad) if bad else None


def claim(ctx, case, theorem):
    """The assumption record A.<theorem> for ``case`` (once per run), or []."""
    key = (f"A.{theorem}", case.name)
    if key in ctx.emitted:
        return []
    ctx.emitted.add(key)
    checks, nums = checks_of(ctx, case)
    if theorem not in checks:
        return [not_applicable(f"A.{theorem}", STATEMENTS[theorem], case.name,
                               "not a network loss")]
    items = checks[theorem]
    n_bad = sum(ok is not True for _, ok, _ in items)
    reason = "; ".join(f"{n} — {'holds' if ok else 'FAILS' if ok is False else 'undecided'}"
                       f" ({d})" for n, ok, d in items if ok is not True)
    return [check(f"A.{theorem}", STATEMENTS[theorem], case.name,
                  "number of hypotheses that fail or sympy cannot decide", n_bad, "<=", 0,
                  "exact (symbolic)", reason=reason,
                  details=dict(checks=[dict(name=n, holds=ok, detail=d) for n, ok, d in items],
                               **nums))]

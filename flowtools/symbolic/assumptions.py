"""The theorems' assumptions on σ and the data, checked symbolically — the one check used
by ``Problem``, ``origin_hessian``, the CLI and ``theory/`` (Zhao, Bai, Zhang, section 5.1).

* Theorem 1: (i) σ ∈ C²(ℝ), σ(0) = 0, σ'(0) ≠ 0; (ii) γ = Σ_i y_i x̃_i ≠ 0.
* Theorem 2: in addition σ analytic.

The σ part is computed once per activation (``sigma_checks``, cached); γ is checked per
dataset. σ ∈ C² is decided exactly: between the kinks of σ (the zeros of the arguments of
Abs, sign, Heaviside, Max, Min) σ is elementary and sympy finds its domain of continuity;
at each kink the one-sided limits of σ, σ', σ'' must agree. σ(0), σ'(0) that do not exist
(nan, ±∞, a jump) fail, they never "hold".

    >>> from flowtools.symbolic.assumptions import check_assumptions, theorem1_failures
    >>> print(check_assumptions("Max(0, x)", gamma=[1, 2]))
    [      FAILS] Theorem 1 (i): σ ∈ C²(ℝ): σ' jumps at x = 0 (left limit 0, right limit 1)
    [      holds] Theorem 1 (i): σ(0) = 0: σ(0) = 0
    [      FAILS] Theorem 1 (i): σ'(0) ≠ 0: σ'(0) is not defined for σ(x) = Max(0, x): σ' jumps at 0 (left limit 0, right limit 1).
    [      holds] Theorem 1 (ii): γ ≠ 0: γ = [1, 2]
    [      FAILS] Theorem 2: σ analytic: not C²
    >>> theorem1_failures("tanh", [0.0, 0.0])
    ['Theorem 1 (ii): γ ≠ 0 fails: γ = Σ y_i x̃_i = 0 for these data, so −∇²ℓ(0) = 0: change the data or the target (or add a bias)']
"""  # noqa: E501 (doctest output lines cannot be wrapped)

from __future__ import annotations

import numbers
from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy as sp
from sympy.calculus.util import continuous_domain

from flowtools.activations import (
    NONSMOOTH,
    Activation,
    branch,
    classical,
    finite_real,
    get_activation,
    prime,
    side_limit,
    x,
)
from flowtools.errors import AssumptionError, FlowtoolsError
from flowtools.expressions import evaluate, vanishes

__all__ = ["Check", "AssumptionReport", "check_assumptions", "sigma_checks", "gamma_check",
           "theorem1_failures"]

C2, SIGMA0, DSIGMA0 = ("Theorem 1 (i): σ ∈ C²(ℝ)", "Theorem 1 (i): σ(0) = 0",
                       "Theorem 1 (i): σ'(0) ≠ 0")
GAMMA, ANALYTIC = "Theorem 1 (ii): γ ≠ 0", "Theorem 2: σ analytic"


@dataclass(frozen=True)
class Check:
    """One assumption: ``holds`` is True, False, or None (sympy cannot tell)."""

    name: str
    holds: bool | None
    detail: str

    def __str__(self):
        mark = {True: "holds", False: "FAILS", None: "cannot tell"}[self.holds]
        return f"[{mark:>11}] {self.name}: {self.detail}"


@dataclass(frozen=True)
class AssumptionReport:
    """Theorem 1's assumptions (i) σ ∈ C²(ℝ), σ(0) = 0, σ'(0) ≠ 0, (ii) γ ≠ 0, and
    Theorem 2's σ analytic, each checked symbolically."""

    checks: tuple[Check, ...]

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.holds is False)

    @property
    def theorem1_holds(self) -> bool | None:
        """True / False / None (undecided) for all of Theorem 1's assumptions."""
        t1 = [c.holds for c in self.checks if c.name.startswith("Theorem 1")]
        return False if False in t1 else (None if None in t1 else True)

    def violates(self, label: str) -> bool:
        """Whether a failing check's name contains ``label``, e.g. ``"Theorem 1 (i)"``."""
        return any(label in c.name for c in self.failures)

    def get(self, name: str) -> Check:
        """The check called ``name`` (e.g. ``flowtools.assumptions.SIGMA0``)."""
        return next(c for c in self.checks if c.name == name)

    def __str__(self):
        return "\n".join(map(str, self.checks))


# ------------------------------------------------------------------ σ ∈ C²(ℝ)


def _kinks(e: sp.Expr) -> list | None:
    """The real points where a non-smooth function's argument vanishes (sorted), or None
    if sympy cannot list them (infinitely many, or unsolvable)."""
    pts = set()
    for atom in e.atoms(*NONSMOOTH):
        args = atom.args[:1] if not isinstance(atom, (sp.Max, sp.Min)) else [
            u - v for i, u in enumerate(atom.args) for v in atom.args[i + 1:]]
        for g in args:
            try:
                sol = sp.solveset(g, x, sp.S.Reals)
            except (NotImplementedError, ValueError, TypeError):
                return None
            if sol is sp.S.EmptySet:
                continue
            if not isinstance(sol, sp.FiniteSet):
                return None
            pts |= set(sol)
    return sorted(pts, key=lambda c: float(evaluate(c, what="a kink of σ")))


def _pieces(kinks):
    """The open intervals between the kinks, each with a point inside it."""
    if not kinks:
        return [(sp.S.Reals, sp.S.Zero)]
    ends = [-sp.oo, *kinks, sp.oo]
    out = []
    for a, b in zip(ends[:-1], ends[1:]):
        p = b - 1 if a == -sp.oo else (a + 1 if b == sp.oo else (a + b) / 2)
        out.append((sp.Interval.open(a, b), p))
    return out


def _continuity_gaps(d: sp.Expr, pieces) -> sp.Set | None:
    """Where d is not continuous away from the kinks (EmptySet if nowhere), or None."""
    gaps = sp.S.EmptySet
    for interval, p in pieces:
        b = branch(d, p).replace(lambda e: isinstance(e, sp.erf),  # entire, like atan
                                 lambda e: sp.atan(e.args[0]))
        try:
            dom = continuous_domain(b, x, interval)
        except (NotImplementedError, ValueError, TypeError):
            return None
        gaps = gaps | sp.Complement(interval, dom)
    return gaps


def _c2(e: sp.Expr) -> tuple[bool | None, str]:
    kinks = _kinks(e)
    if kinks is None:
        return None, "sympy cannot locate the kinks of σ (zeros of Abs/sign/Max/… arguments)"
    gaps_ = [b - a for a, b in zip(kinks[:-1], kinks[1:])]
    eps = min([sp.Rational(1, 10**12), *[g / 4 for g in gaps_]],
              key=lambda v: float(evaluate(v, what="the distance between kinks")))
    pieces = _pieces(kinks)
    for k in range(3):
        d = classical(sp.diff(e, x, k))
        gaps = _continuity_gaps(d, pieces)
        if gaps is None:
            return None, f"sympy cannot decide where {prime(k)} is continuous"
        if gaps != sp.S.EmptySet:
            where = str(gaps) if len(str(gaps)) <= 80 else str(gaps)[:77] + "…"
            return False, f"{prime(k)} is not continuous on all of ℝ (not at {where})"
        for c in kinks:
            lo, hi = side_limit(d, c, -1, eps), side_limit(d, c, 1, eps)
            if lo is None or hi is None:
                return None, f"sympy cannot take the limits of {prime(k)} at x = {c}"
            value = e.subs(x, c) if k == 0 else lo
            if not (finite_real(lo) and finite_real(hi)) or not vanishes(lo - hi) \
                    or not vanishes(value - lo):
                extra = f", σ({c}) = {value}" if k == 0 else ""
                return False, (f"{prime(k)} jumps at x = {c} (left limit {lo}, right limit "
                               f"{hi}{extra})")
    where = f" (also at the kinks x = {', '.join(map(str, kinks))})" if kinks else ""
    return True, f"σ, σ', σ'' continuous on ℝ{where}"


def _analytic(e: sp.Expr, c2: tuple[bool | None, str]) -> tuple[bool | None, str]:
    if c2[0] is False:
        return False, "not C²"
    kinks = _kinks(e) if e.has(*NONSMOOTH) else []
    if kinks is None:
        return None, "sympy cannot locate the kinks of σ"
    for (_, p), (_, q), c in zip(_pieces(kinks), _pieces(kinks)[1:], kinks):
        left, right = branch(e, p), branch(e, q)
        if not vanishes(left - right):
            return False, f"not analytic at x = {c}: σ = {left} on the left, {right} on the right"
    if c2[0] is None:
        return None, c2[1]
    elementary = branch(e, _pieces(kinks)[0][1])
    for pw in elementary.atoms(sp.Pow):
        if not pw.exp.is_integer and pw.base.has(x) and not pw.base.is_positive:
            return None, f"{pw}: cannot tell whether the base stays positive"
    return True, "built from analytic functions, without singularities on ℝ"


# ------------------------------------------------------------------ the checks


def _jet(act: Activation, k: int):
    try:
        return act.taylor0(k), None
    except AssumptionError as err:
        return None, str(err)


@cache
def sigma_checks(act: Activation) -> tuple[Check, ...]:
    """The σ part of the assumptions, (σ ∈ C², σ(0) = 0, σ'(0) ≠ 0, σ analytic); computed
    once per activation."""
    e = act.expr
    c2 = _c2(e)
    checks = [Check(C2, *c2)]
    s0, why0 = _jet(act, 0)
    if why0:
        checks.append(Check(SIGMA0, False, why0))
    elif s0 == 0:
        checks.append(Check(SIGMA0, True, "σ(0) = 0"))
    else:
        checks.append(Check(SIGMA0, False, f"σ(0) = {s0} for σ(x) = {e}: the origin is not a "
                            "critical point; subtract σ(0) from σ"))
    s1, why1 = _jet(act, 1)
    if why1:
        checks.append(Check(DSIGMA0, False, why1))
    elif s1 == 0:
        checks.append(Check(DSIGMA0, False, f"σ'(0) = 0 for σ(x) = {e}: −∇²ℓ(0) = 0 has no "
                            "positive eigenvalue, so there is no exponential escape; use an "
                            "activation with σ'(0) ≠ 0"))
    else:
        checks.append(Check(DSIGMA0, True, f"σ'(0) = {s1}"))
    checks.append(Check(ANALYTIC, *_analytic(e, c2)))
    return tuple(checks)


def _number(c, i):
    if isinstance(c, sp.Basic):
        return sp.expand(c)
    if isinstance(c, (bool, np.bool_)) or not isinstance(c, (numbers.Number, np.number)):
        raise FlowtoolsError(f"γ[{i}] = {c!r} is not a number.")
    if isinstance(c, (numbers.Integral, np.integer)):
        return sp.Integer(int(c))
    v = float(c)
    if not np.isfinite(v):
        raise FlowtoolsError(f"γ[{i}] = {c!r} is not finite.")
    return sp.Float(v) if v else sp.S.Zero


def gamma_check(gamma) -> Check:
    """Theorem 1 (ii), γ = Σ y_i x̃_i ≠ 0: ``gamma`` is numbers (floats, exact sympy
    numbers), expressions, or None (no data)."""
    if gamma is None:
        return Check(GAMMA, None, "no data given")
    g = [_number(c, i) for i, c in enumerate(np.ravel(np.asarray(gamma, dtype=object)))]
    if all(c == 0 for c in g):
        return Check(GAMMA, False, "γ = Σ y_i x̃_i = 0 for these data, so −∇²ℓ(0) = 0: change "
                     "the data or the target (or add a bias)")
    if any(c.is_number and c != 0 for c in g):
        shown = [c if c.is_Integer or not c.is_number else evaluate(c, 8, what="γ")
                 for c in g]
        return Check(GAMMA, True, f"γ = {shown}")
    return Check(GAMMA, None, "γ is symbolic: holds for generic data")


def check_assumptions(activation, *, gamma=None, symbolic_derivatives: bool = False
                      ) -> AssumptionReport:
    """Check Theorem 1's assumptions (i) σ twice continuously differentiable, σ(0) = 0,
    σ'(0) ≠ 0 and (ii) γ ≠ 0, and Theorem 2's σ analytic (Zhao, Bai, Zhang, section 5.1).

    ``activation`` is a name, an expression in x, an ``Activation``, or None (a generic σ:
    the σ checks are then undecided). ``gamma`` is γ (numbers or expressions) or None.

        >>> check_assumptions("cos(x) - 1").violates("Theorem 1 (i)")     # σ'(0) = 0
        True
    """
    if activation is None:
        sig = (Check(C2, None, "σ is generic"), Check(SIGMA0, None, "σ is generic"),
               Check(DSIGMA0, None, "σ is generic"), Check(ANALYTIC, None, "σ is generic"))
    else:
        sig = sigma_checks(get_activation(activation))
        if symbolic_derivatives and sig[2].holds:
            sig = (*sig[:2], Check(DSIGMA0, True, f"{sig[2].detail} (kept as the symbol σ_1 "
                                   "in the derivation)"), sig[3])
    return AssumptionReport((*sig[:3], gamma_check(gamma), sig[3]))


def theorem1_failures(activation, gamma) -> list[str]:
    """Theorem 1's assumptions that fail, as sentences (empty if none fails).

    ``activation``: a name, expression or ``Activation``; ``gamma``: γ = Σ y_i x̃_i as
    numbers. Checks that sympy cannot decide are not failures (``check_assumptions``
    reports them as "cannot tell")."""
    if gamma is not None:
        gamma = tuple(float(g) for g in np.ravel(np.asarray(gamma, dtype=float)))
    return list(_theorem1_failures(get_activation(activation), gamma))


@cache
def _theorem1_failures(activation, gamma: tuple) -> tuple[str, ...]:
    """``theorem1_failures`` for one (activation, γ) — asked on every theory quantity of a
    problem (μ1, C(θ), …): decided once (~25 ms of sympy each time otherwise)."""
    rep = check_assumptions(activation, gamma=None if gamma is None else list(gamma))
    return tuple(f"{c.name} fails: {c.detail}" for c in rep.failures
                 if c.name.startswith("Theorem 1"))

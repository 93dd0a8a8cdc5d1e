"""Activation functions, each defined once as a sympy expression in one variable.

The JAX function is generated from the same expression (``lambdify_jax``), so numeric and
symbolic code can never disagree. Strings are read by ``flowtools.expressions`` (a
whitelist parser that never evaluates Python); an expression that cannot work as a real
activation (complex, infinite, unknown functions) is refused when the ``Activation`` is
built. Every activation knows σ^(k)(0) exactly — or raises ``AssumptionError`` when it does
not exist (σ = Max(0, x) has no σ'(0)) — and whether it is odd.

    >>> from flowtools.activations import get_activation
    >>> act = get_activation("tanh")
    >>> act.sigma0, act.dsigma0, act.is_odd
    (0, 1, True)
    >>> custom = get_activation("2*tanh(x)")      # an expression in x
    >>> custom.dsigma0
    2
    >>> get_activation("Max(0, x)").dsigma0  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    flowtools.errors.AssumptionError: σ'(0) is not defined for σ(x) = Max(0, x): σ' jumps at 0 ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import sympy as sp

from flowtools.errors import AssumptionError, FlowtoolsError
from flowtools.expressions import (
    BoundsError,
    check_bounded,
    check_expression,
    evaluate,
    parse_expression,
    vanishes,
    x,
)

__all__ = ["Activation", "available", "get_activation", "register", "lambdify_jax", "x"]

#: Functions with kinks or jumps (and DiracDelta, from differentiating them).
NONSMOOTH = (sp.Abs, sp.sign, sp.Heaviside, sp.Max, sp.Min, sp.DiracDelta)
_NOT_FINITE = (sp.nan, sp.zoo, sp.oo, -sp.oo)


def lambdify_jax(args, expr, **kwargs):
    """``sympy.lambdify`` to JAX. sympy's "jax" module leaves ``erf`` to ``math.erf``
    (scalars only, no tracing); here it is ``jax.scipy.special.erf``."""
    import jax.scipy.special as jsp

    return sp.lambdify(args, expr, modules=[{"erf": jsp.erf}, "jax"], **kwargs)


# ------------------------------------------------------------------ one-sided values


def classical(expr: sp.Expr) -> sp.Expr:
    """The derivative away from kinks: ``DiracDelta`` terms (from differentiating sign,
    Heaviside) dropped."""
    return expr.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.S.Zero)


def _sign_at(u: sp.Expr, point) -> int:
    v = evaluate(u, 50, at={x: point}, what="the sign of a kink's argument")
    return 0 if v == 0 else (1 if v > 0 else -1)


def branch(e: sp.Expr, point) -> sp.Expr:
    """The elementary expression that equals e near ``point`` (on the open interval between
    kinks that contains it): every non-smooth function replaced by its branch there,
    decided by the signs of the arguments at ``point``."""
    if not e.args:
        return e
    args = [branch(a, point) for a in e.args]
    if isinstance(e, (sp.Max, sp.Min)):
        best = args[0]
        for a in args[1:]:
            s = _sign_at(a - best, point)
            if (s > 0) if isinstance(e, sp.Max) else (s < 0):
                best = a
        return best
    if isinstance(e, (sp.Abs, sp.sign, sp.Heaviside, sp.DiracDelta)):
        s = _sign_at(args[0], point)
        if isinstance(e, sp.Abs):
            return s * args[0]
        if isinstance(e, sp.sign):
            return sp.Integer(s)
        if isinstance(e, sp.DiracDelta):
            return sp.S.Zero if s else e.func(*args)
        return sp.Integer(int(s > 0)) if s else e.func(*args)
    return e.func(*args)


def _settled(v: sp.Expr) -> sp.Expr:
    """A value as sympy built it, or 0 when it vanishes (``vanishes``: decided by bounded
    evaluation where it can be; ``simplify`` itself can explode on numbers)."""
    return sp.S.Zero if finite_real(v) and vanishes(v) else v


def side_limit(expr: sp.Expr, c, side: int, eps=sp.Rational(1, 10**12)) -> sp.Expr | None:
    """lim expr(x) as x → c from the left (side −1) or right (+1), exactly: the non-smooth
    functions are replaced by their branch at c ± eps (``eps`` must be smaller than the
    distance to the next kink), then sympy takes the limit of the elementary rest. None
    if sympy cannot."""
    b = branch(expr, c + side * eps)
    check_bounded(b, at={x: c}, what="a one-sided limit")
    v = b.subs(x, c)
    if not v.has(*_NOT_FINITE):
        return _settled(v)
    try:
        return sp.limit(b, x, c, "+" if side > 0 else "-")
    except (NotImplementedError, ValueError, TypeError):
        return None


def finite_real(v) -> bool:
    """Whether v is a finite real number (not nan, ±∞, complex or a DiracDelta)."""
    return (isinstance(v, sp.Expr) and v.is_number and not v.has(*_NOT_FINITE, sp.DiracDelta)
            and v.is_extended_real is not False and v.is_finite is not False
            and not v.has(sp.I))


def prime(k: int) -> str:
    """σ, σ', σ'', σ''', σ^(4), …"""
    return "σ" + ("'" * k if k <= 3 else f"^({k})")


# ------------------------------------------------------------------ activations


@dataclass(frozen=True, eq=False)
class Activation:
    """σ: ℝ → ℝ given by a sympy expression in the real symbol ``x``.

    Attributes:
        name: short name used on the command line and in reports.
        expr: the sympy expression σ(x).
    """

    name: str
    expr: sp.Expr
    _fn: Callable = field(init=False, repr=False, compare=False)
    _jets: dict = field(init=False, repr=False, compare=False)
    _constant: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        try:
            check_expression(self.expr)
        except BoundsError as err:  # a real expression in x, but too large to evaluate
            raise BoundsError(f"activation {self.name!r} cannot be used: {err}") from None
        except FlowtoolsError as err:
            raise FlowtoolsError(
                f"activation {self.name!r} cannot be used: {err}; an activation must be a "
                "real expression in the one variable x, e.g. 'x/(1+x**2)'."
            ) from None
        object.__setattr__(self, "_fn", lambdify_jax(x, self.expr))
        object.__setattr__(self, "_jets", {})
        # lambdify returns a Python scalar exactly when x does not occur (decided once: a
        # structural test, not sympy's is_constant(), which evaluates the expression —
        # ~0.1 s per call, and without end on a power tower)
        object.__setattr__(self, "_constant", x not in self.expr.free_symbols)

    def __call__(self, z):
        """σ(z) elementwise, on JAX arrays (traceable under ``jit``/``grad``)."""
        out = self._fn(z)
        if self._constant:  # lambdify of a constant returns a Python scalar
            import jax.numpy as jnp

            out = jnp.full_like(z, out)
        return out

    def __eq__(self, other):  # structural, cheap: used by jit's static-argument cache
        return isinstance(other, Activation) and sp.srepr(self.expr) == sp.srepr(other.expr)

    def __hash__(self):
        return hash(sp.srepr(self.expr))

    def derivative(self, k: int = 1) -> sp.Expr:
        """The k-th derivative of σ as a sympy expression (k = 0: σ)."""
        return sp.diff(self.expr, x, k) if k else self.expr

    def taylor0(self, k: int) -> sp.Expr:
        """σ^(k)(0), exactly. Raises ``AssumptionError`` if it does not exist: σ^(k) is
        singular at 0 (sin(x)/x gives 0/0 there, in sympy and in JAX), jumps at 0
        (σ' of Max(0, x)), or a lower derivative is not continuous at 0 (sign(x))."""
        value, why = self._jet(k)
        if why:
            raise AssumptionError(f"{prime(k)}(0) is not defined for σ(x) = {self.expr}: "
                                  f"{why}")
        return value

    def _jet(self, k: int):
        """(σ^(k)(0), None), or (None, the reason it does not exist); cached."""
        if k not in self._jets:
            self._jets[k] = self._compute_jet(k)
        return self._jets[k]

    def _compute_jet(self, k: int):
        for j in range(k):  # σ^(k)(0) exists only if σ^(j) is continuous at 0
            value, why = self._jet(j)
            if why:
                return None, why
            d = classical(self.derivative(j))
            if d.has(*NONSMOOTH):
                lo, hi = side_limit(d, 0, -1), side_limit(d, 0, 1)
                if lo is None or hi is None or not vanishes(lo - value) or not vanishes(
                        hi - value):
                    return None, (f"{prime(j)} is not continuous at 0 (left limit {lo}, "
                                  f"right limit {hi}, {prime(j)}(0) = {value}).")
        d = classical(self.derivative(k))
        check_bounded(self.derivative(k), at={x: 0}, what=f"{prime(k)}(0)")
        if k == 0 or not d.has(*NONSMOOTH):
            v = _settled(self.derivative(k).subs(x, 0))
            if not finite_real(v):
                return None, (f"{prime(k)} evaluates to {v} at x = 0 (0/0 or a singularity; "
                              "JAX computes nan or inf there too). Rewrite σ without it.")
            return v, None
        lo, hi = side_limit(d, 0, -1), side_limit(d, 0, 1)
        if lo is None or hi is None:
            return None, f"sympy cannot take the one-sided limits of {prime(k)} at 0."
        if not (finite_real(lo) and finite_real(hi)) or not vanishes(lo - hi):
            return None, f"{prime(k)} jumps at 0 (left limit {lo}, right limit {hi})."
        return lo, None

    @cached_property
    def sigma0(self) -> sp.Expr:
        """σ(0) (``AssumptionError`` if undefined)."""
        return self.taylor0(0)

    @cached_property
    def dsigma0(self) -> sp.Expr:
        """σ'(0) (``AssumptionError`` if undefined)."""
        return self.taylor0(1)

    @cached_property
    def d2sigma0(self) -> sp.Expr:
        """σ''(0) (``AssumptionError`` if undefined)."""
        return self.taylor0(2)

    @cached_property
    def is_odd(self) -> bool:
        """σ(−x) = −σ(x) identically."""
        return sp.simplify(self.expr.subs(x, -x) + self.expr) == 0

    def __repr__(self):
        return f"Activation({self.name!r}, {self.expr})"


_REGISTRY: dict[str, Activation] = {}


def register(name: str, expr: sp.Expr | str, *aliases: str) -> Activation:
    """Add an activation to the registry under ``name`` (and ``aliases``); a string
    ``expr`` is read with the safe parser."""
    if isinstance(expr, str):
        expr = parse_expression(expr, what=f"the activation {name!r}")
    act = Activation(name, expr)
    for key in (name, *aliases):
        _REGISTRY[key] = act
    return act


TANH = register("tanh", sp.tanh(x))
RATIONAL = register("rational", x / (1 + x**2), "x/(1+x^2)", "x/(1+x**2)")
SIN = register("sin", sp.sin(x))
LINEAR = register("linear", x, "identity")


def available() -> list[str]:
    """Names of the registered activations (without aliases)."""
    return sorted({a.name for a in _REGISTRY.values()})


def get_activation(spec: str | sp.Expr | Activation) -> Activation:
    """An ``Activation`` from a registered name, a sympy expression or a string in ``x``.

    Strings are read by ``flowtools.expressions.parse_expression`` (no Python is
    evaluated). Raises ``FlowtoolsError`` for an unknown name that is not a valid
    expression in x, an expression in another variable, or one that cannot work (complex,
    infinite, unsupported functions).
    """
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str) and spec in _REGISTRY:
        return _REGISTRY[spec]
    if isinstance(spec, str):
        try:
            expr = parse_expression(spec, what="the activation")
        except BoundsError:  # a valid expression, too large to evaluate: say only that
            raise
        except FlowtoolsError as err:
            raise FlowtoolsError(
                f"unknown activation {spec!r}: not a registered name ({', '.join(available())})"
                f" and not a valid expression in x — {err}"
            ) from None
        if x not in expr.free_symbols:
            raise FlowtoolsError(
                f"activation {spec!r} is the constant {expr}: give a registered name "
                f"({', '.join(available())}) or an expression in x, e.g. 'x/(1+x**2)'."
            )
        return Activation(spec, expr)
    if isinstance(spec, sp.Expr):
        syms = spec.free_symbols
        if len(syms) > 1:
            raise FlowtoolsError(
                f"activation {spec} has the free symbols {sorted(map(str, syms))}; "
                "give an expression in one variable."
            )
        if syms:
            (s,) = syms
            spec = spec.subs(s, x)
        return Activation(str(spec), spec)
    raise FlowtoolsError(
        f"activation must be a name, a sympy expression or an Activation, got {spec!r}."
    )

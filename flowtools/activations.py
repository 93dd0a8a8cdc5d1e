"""Activation functions, each defined once as a sympy expression in one variable.

The JAX function is generated from the same expression (``sympy.lambdify`` with the
``jax`` module), so numeric and symbolic code can never disagree. Every activation knows
σ(0), σ'(0), σ''(0) exactly and whether it is odd.

    >>> from flowtools.activations import get_activation
    >>> act = get_activation("tanh")
    >>> act.sigma0, act.dsigma0, act.is_odd
    (0, 1, True)
    >>> custom = get_activation("2*tanh(x)")      # any sympy expression in x
    >>> custom.dsigma0
    2
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import sympy as sp

from flowtools.errors import FlowtoolsError

x = sp.Symbol("x", real=True)


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

    def __post_init__(self):
        free = self.expr.free_symbols
        if free - {x}:
            raise FlowtoolsError(
                f"activation {self.name!r}: the expression {self.expr} has the free "
                f"symbols {sorted(map(str, free))}; an activation must be an expression "
                "in the one variable x, e.g. 'x/(1+x**2)'."
            )
        object.__setattr__(self, "_fn", sp.lambdify(x, self.expr, modules="jax"))

    def __call__(self, z):
        """σ(z) elementwise, on JAX arrays (traceable under ``jit``/``grad``)."""
        out = self._fn(z)
        if self.expr.is_constant():  # lambdify of a constant returns a Python scalar
            import jax.numpy as jnp

            out = jnp.full_like(z, out)
        return out

    def __eq__(self, other):  # structural, cheap: used by jit's static-argument cache
        return isinstance(other, Activation) and sp.srepr(self.expr) == sp.srepr(other.expr)

    def __hash__(self):
        return hash(sp.srepr(self.expr))

    def derivative(self, k: int = 1) -> sp.Expr:
        """The k-th derivative of σ as a sympy expression."""
        return sp.diff(self.expr, x, k)

    def taylor0(self, k: int) -> sp.Expr:
        """σ^(k)(0), exactly."""
        return sp.simplify(self.derivative(k).subs(x, 0)) if k else sp.simplify(
            self.expr.subs(x, 0)
        )

    @cached_property
    def sigma0(self) -> sp.Expr:
        """σ(0)."""
        return self.taylor0(0)

    @cached_property
    def dsigma0(self) -> sp.Expr:
        """σ'(0)."""
        return self.taylor0(1)

    @cached_property
    def d2sigma0(self) -> sp.Expr:
        """σ''(0)."""
        return self.taylor0(2)

    @cached_property
    def is_odd(self) -> bool:
        """σ(−x) = −σ(x) identically."""
        return sp.simplify(self.expr.subs(x, -x) + self.expr) == 0

    def __repr__(self):
        return f"Activation({self.name!r}, {self.expr})"


_REGISTRY: dict[str, Activation] = {}


def register(name: str, expr: sp.Expr | str, *aliases: str) -> Activation:
    """Add an activation to the registry under ``name`` (and ``aliases``)."""
    act = Activation(name, sp.sympify(expr, locals={"x": x}))
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

    Raises ``FlowtoolsError`` for an unknown name that is not a valid expression in x,
    or for an expression in more than one variable.
    """
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str) and spec in _REGISTRY:
        return _REGISTRY[spec]
    if isinstance(spec, str):
        try:
            expr = sp.sympify(spec.replace("^", "**"), locals={"x": x})
        except (sp.SympifyError, SyntaxError, TypeError) as err:
            raise FlowtoolsError(
                f"unknown activation {spec!r}: not one of {available()} and not a "
                "sympy expression in x (for example 'x/(1+x**2)')."
            ) from err
        bare_name = spec.strip().isidentifier() and spec.strip() != "x"
        if not isinstance(expr, sp.Expr) or bare_name or expr.free_symbols != {x}:
            extra = sorted(map(str, expr.free_symbols - {x})) if isinstance(expr, sp.Expr) else []
            raise FlowtoolsError(
                f"unknown activation {spec!r}: not one of the registered names "
                f"{available()} and not an expression in the one variable x (for example "
                "'x/(1+x**2)')" + (f"; it contains the symbols {extra}." if extra else ".")
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

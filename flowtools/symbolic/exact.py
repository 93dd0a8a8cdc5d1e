"""Exact data: user data read as sympy numbers or symbols, and the data moments.

The loss ℓ(θ) = ½ Σ_i (f_θ(x_i) − y_i)² enters every derivative at θ = 0 only through the
moments of the augmented data x̃_i (x̃_i = (x_i, 1) with a bias),

    M_e = Σ_i Π_j x̃_ij^{e_j} · y_i^{e_y},   e = (e_1, …, e_d̃, e_y),

e.g. n = M_0 and γ_j = Σ_i y_i x̃_ij. Data come in one of three forms (``parse_data``):
numbers, made exact (0.4 becomes 2/5; strings go through the safe parser
``flowtools.expressions.parse_number``, never ``eval``), ``n`` symbolic samples (symbols
x_{i,j}, y_i), or none (the moments themselves as symbols). A ``Moments`` table belongs to
one derivation: it maps each moment symbol that the derivation produced to its exponents e,
which is all a JAX export needs to evaluate the moments on raw data (X, y).

    >>> from flowtools.symbolic.exact import exact_number, parse_data
    >>> exact_number(0.4, "x"), exact_number("1/3", "x")
    (2/5, 1/3)
    >>> d = parse_data(([[1], [2]], [1, 3]), None, bias=True)
    >>> d.kind, d.n, d.value((1, 0, 1))
    ('numeric', 2, 7)
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import sympy as sp

from flowtools import _validate
from flowtools.errors import FlowtoolsError
from flowtools.expressions import MAX_MAGNITUDE_BITS, BoundsError, check_bounded, parse_number

__all__ = ["N_SYM", "ExactData", "Moments", "exact_number", "moment_symbol", "parse_data"]

#: n, the number of samples when the data are moments
N_SYM = sp.Symbol("n", integer=True, positive=True)


def exact_number(v, where: str) -> sp.Expr:
    """A data value as an exact sympy number: ints exactly, floats via their shortest repr
    (0.4 → 2/5), strings such as '1/3' or 'tanh(1)' through the safe parser
    (``flowtools.expressions.parse_number``: no Python is evaluated), sympy numbers as
    they are. ``where`` names the value in error messages. Every value must be small enough
    to evaluate with bounded precision (``flowtools.expressions.check_bounded``: at most
    2**MAX_MAGNITUDE_BITS = 2**4096 in absolute value, in each of its parts)."""
    if isinstance(v, (bool, np.bool_)):
        raise FlowtoolsError(f"non-numeric data: {where} is the boolean {v!r}.")
    if isinstance(v, (numbers.Integral, np.integer)):
        return _bounded(sp.Integer(int(v)), where)
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(v):
            raise FlowtoolsError(f"{where} is {v!r}: data must be finite numbers.")
        return sp.Rational(repr(float(v)))
    if isinstance(v, numbers.Rational):  # fractions.Fraction
        return _bounded(sp.Rational(v.numerator, v.denominator), where)
    if isinstance(v, str):
        try:
            return parse_number(v, what=where)
        except BoundsError:  # a number, too large to evaluate: the message says so
            raise
        except FlowtoolsError as err:
            raise FlowtoolsError(
                f"non-numeric data: {err} (give numbers, exact strings such as '1/3' or "
                "'tanh(1)', or use data=n for symbolic samples)."
            ) from None
    if isinstance(v, sp.Expr) and v.is_number and not v.free_symbols:
        _bounded(v, where)  # first: sympy's own checks below evaluate v
        if v.has(sp.I) or v.has(sp.nan, sp.zoo, sp.oo, -sp.oo) or v.is_real is False:
            raise FlowtoolsError(f"{where} = {v} is not a finite real number.")
        return sp.nsimplify(v) if isinstance(v, sp.Float) else v
    raise FlowtoolsError(
        f"non-numeric data: {where} = {v!r} is not a number (give numbers, exact strings "
        "such as '1/3', or use data=n for n symbolic samples)."
    )


def _bounded(v: sp.Expr, where: str) -> sp.Expr:
    check_bounded(v, what=where, limit=MAX_MAGNITUDE_BITS)  # as for a number in a string
    return v


def moment_symbol(exps: tuple[int, ...], bias: bool) -> sp.Symbol:
    """The symbol standing for M_e = Σ_i Π_j x̃_ij^e_j · y_i^e_y (exps = (e_1, …, e_d̃, e_y)):
    n, γ_j, or Σ(monomial). With a bias x̃_{i,d̃} = 1, so e_d̃ is ignored."""
    *ex, ey = exps
    if bias:
        ex[-1] = 0
    dt = len(ex)
    if not any(ex) and ey == 0:
        return N_SYM
    if ey == 1 and sum(ex) == 1:
        return sp.Symbol(f"gamma_{ex.index(1) + 1}", real=True)
    if ey == 1 and sum(ex) == 0 and bias:
        return sp.Symbol(f"gamma_{dt}", real=True)
    mono = "·".join([f"x{j + 1}^{e}" if e > 1 else f"x{j + 1}" for j, e in enumerate(ex) if e]
                    + ([f"y^{ey}" if ey > 1 else "y"] if ey else []))
    return sp.Symbol(f"Σ({mono})", real=True)


@dataclass(frozen=True, eq=False)
class Moments:
    """The moment symbols of one derivation and their exponents e (d̃ + 1 integers each),
    sorted by name; ``to_jax`` evaluates them on raw data."""

    dt: int
    bias: bool
    table: tuple[tuple[sp.Symbol, tuple[int, ...]], ...]

    @classmethod
    def of(cls, exps, dt: int, bias: bool) -> Moments:
        """The table of the moments with the given exponent tuples (duplicates merged)."""
        table = {}
        for e in exps:
            *ex, ey = e
            if bias:
                ex[-1] = 0
            table.setdefault(moment_symbol(tuple(e), bias), (*ex, ey))
        return cls(dt, bias, tuple(sorted(table.items(), key=lambda kv: str(kv[0]))))

    @property
    def symbols(self) -> tuple[sp.Symbol, ...]:
        return tuple(s for s, _ in self.table)

    def values(self, data: ExactData) -> dict:
        """{moment symbol: its value on ``data``} (empty when the data are moments)."""
        if data.kind == "moments":
            return {}
        return {s: data.value(e) for s, e in self.table}

    def lambdify(self, exprs, *args, hint: str = ""):
        """JAX function (*args values, X, y) ↦ [expression values] of expressions in
        ``args`` (lists of symbols) and these moments; other free symbols raise (the error
        message ends with ``hint``)."""
        import jax.numpy as jnp

        from flowtools.activations import lambdify_jax
        from flowtools.data import augment

        given = set(self.symbols).union(*map(set, args))
        left = set().union(*(e.free_symbols for e in exprs)) - given
        if left:
            raise FlowtoolsError(f"cannot lambdify: free symbols {sorted(map(str, left))}"
                                 f"{hint}.")
        f = lambdify_jax([*map(list, args), list(self.symbols)], list(exprs), cse=True)
        exps = [jnp.asarray(e[:-1]) for _, e in self.table]
        eys = [e[-1] for _, e in self.table]

        def call(*vals):
            *vals, X, y = vals
            y = jnp.asarray(y)
            Xa = augment(jnp.asarray(X).reshape(len(y), -1), self.bias)
            mom = [jnp.sum(jnp.prod(Xa**ex, axis=1) * y**ey) for ex, ey in zip(exps, eys)]
            return f(*vals, mom)

        return call


@dataclass(frozen=True, eq=False)
class ExactData:
    """Data in one of three forms: moments as symbols, n symbolic samples, or numbers."""

    kind: str  # "moments" | "symbolic" | "numeric"
    dt: int
    bias: bool
    X: sp.Matrix | None = None  # (n, d̃), augmented
    y: sp.Matrix | None = None

    @property
    def n(self):
        return N_SYM if self.X is None else sp.Integer(self.X.shape[0])

    def value(self, exps) -> sp.Expr:
        """M_e on these data (expanded for numbers); the moment symbol for moments."""
        if self.kind == "moments":
            return moment_symbol(tuple(exps), self.bias)
        *ex, ey = exps
        total = sp.Add(*[
            sp.Mul(*[self.X[i, j] ** e for j, e in enumerate(ex) if e]) * self.y[i] ** ey
            for i in range(self.X.shape[0])
        ])
        return sp.expand(total) if self.kind == "numeric" else total


def parse_data(data, dim, bias) -> ExactData:
    """``data`` as ``ExactData``: None (moments as symbols), an int n (n symbolic samples),
    a ``Dataset`` or a pair (X, y) of numbers (made exact); ``dim`` is d (inferred from X)."""
    from flowtools.data import Dataset

    if data is None or (isinstance(data, (int, np.integer)) and not isinstance(data, bool)):
        dt = _validate.dim(dim) + bool(bias)
        if data is None:
            return ExactData("moments", dt, bool(bias))
        n = int(data)
        if n < 1:
            raise FlowtoolsError(
                f"n = {n} symbolic samples: give at least one sample (data=n with n ≥ 1)."
            )
        X = sp.Matrix(n, dt, lambda i, j: 1 if (bias and j == dt - 1)
                      else sp.Symbol(f"x_{i + 1}_{j + 1}", real=True))
        y = sp.Matrix(n, 1, lambda i, j: sp.Symbol(f"y_{i + 1}", real=True))
        return ExactData("symbolic", dt, bool(bias), X, y)
    if isinstance(data, Dataset):
        data = (data.X, data.y)
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise FlowtoolsError(
            "data must be None (moments as symbols), an int n (n symbolic samples), a "
            f"Dataset or a pair (X, y); got {type(data).__name__}."
        )
    Xr, yr = data
    Xr, yr = _validate.samples(np.asarray(Xr, dtype=object), np.asarray(yr, dtype=object))
    if dim is not None and Xr.shape[1] != dim:
        raise FlowtoolsError(f"dim = {dim} but X has {Xr.shape[1]} columns.")
    n, d = Xr.shape
    dt = d + bool(bias)
    X = sp.Matrix(n, dt, lambda i, j: 1 if j == d else exact_number(Xr[i, j], f"X[{i}, {j}]"))
    y = sp.Matrix(n, 1, lambda i, j: exact_number(yr[i], f"y[{i}]"))
    return ExactData("numeric", dt, bool(bias), X, y)

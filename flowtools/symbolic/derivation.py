"""The derivation at θ = 0: one sample, two neurons, σ undefined; then the sum over samples.

For f_θ(x) = Σ_k a_k σ(w_kᵀx̃) every entry of ∇²ℓ(0) involves at most two neurons, and
ℓ = Σ_i ℓ_i. So sympy differentiates the loss ℓ_i = ½(f_θ(x̃) − y)² of ONE sample (x̃, y)
for TWO neurons θ_k = (a_k, w_k) with σ an undefined function, at θ = 0:

    −∇²ℓ_i(0) = [[A_i, B_i], [B_i, A_i]],
    A_i = [[−σ(0)², σ'(0) y x̃ᵀ], [σ'(0) y x̃, 0]],   B_i = −σ(0)² e_a e_aᵀ,

(``sample_blocks``: nothing of this form is assumed, the code only differentiates), σ^(k)(0)
becomes the symbol σ_k (``jets``) and then its value (``sigma_values``), and Σ_i of a
polynomial in (x̃, y) becomes a combination of the data moments (``sum_over_samples``:
Σ_i y_i x̃_i = γ, Σ_i 1 = n).

    >>> from flowtools.symbolic.derivation import sample_blocks, sum_over_samples
    >>> A, B = sample_blocks(1, False)
    >>> A.tolist()
    [[-sigma_0**2, sigma_1*xt_1*y_s], [sigma_1*xt_1*y_s, 0]]
    >>> sum_over_samples(list(A), 1, False)[0]
    [-n*sigma_0**2, gamma_1*sigma_1, gamma_1*sigma_1, 0]
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from flowtools.activations import Activation, get_activation
from flowtools.errors import AssumptionError
from flowtools.symbolic.exact import Moments, moment_symbol

__all__ = ["SIGMA", "jets", "parameter_symbols", "resolve_activation", "sample_blocks",
           "sample_inputs",
           "sample_symbols", "sigma_symbol", "sigma_values", "sum_over_samples"]

#: σ_k := σ^(k)(0), the symbols used when derivatives are kept symbolic (``sigma_symbol(k)``
#: gives the same symbol for any k).
SIGMA = sp.symbols("sigma_0:4", real=True)


def sigma_symbol(k: int) -> sp.Symbol:
    """σ_k, the symbol standing for σ^(k)(0) (``SIGMA[k]`` for k < 4)."""
    return sp.Symbol(f"sigma_{k}", real=True)


def sample_symbols(dt: int):
    """The symbols (x̃_1, …, x̃_d̃) and y of one sample."""
    return sp.symbols(f"xt_1:{dt + 1}", real=True), sp.Symbol("y_s", real=True)


def parameter_symbols(m: int, dt: int) -> tuple[tuple[sp.Symbol, ...], ...]:
    """((a_1, w_1_1, …, w_1_d̃), …, (a_m, …)), the parameters θ_k = (a_k, w_k) per neuron."""
    return tuple((sp.Symbol(f"a_{k + 1}", real=True),
                  *[sp.Symbol(f"w_{k + 1}_{j + 1}", real=True) for j in range(dt)])
                 for k in range(m))


def sample_inputs(dt: int, bias: bool) -> list:
    """The sample's x̃ as it enters the model: (x̃_1, …, x̃_{d̃−1}, 1) with a bias."""
    xs, _ = sample_symbols(dt)
    return list(xs[:-1]) + [sp.S.One] if bias else list(xs)


def sum_over_samples(exprs, dt: int, bias: bool) -> tuple[list, Moments]:
    """[Σ_i e(x̃_i, y_i)] for per-sample expressions e polynomial in (x̃, y), written in
    moment symbols, and the ``Moments`` table of the moments that occur."""
    xs, yv = sample_symbols(dt)
    polys = [sp.Poly(e, *xs, yv) if e != 0 else None for e in map(sp.expand, exprs)]
    moments = Moments.of([m for p in polys if p is not None for m in p.monoms()], dt, bias)

    def total(p):
        if p is None:
            return sp.S.Zero
        return sp.Add(*[c * moment_symbol(m, bias) for m, c in p.terms()])

    return [total(p) for p in polys], moments


def jets(expr: sp.Expr, sig) -> sp.Expr:
    """σ(0) ↦ σ_0 and σ^(k)(0) (a ``Subs`` of a derivative) ↦ σ_k."""
    expr = expr.replace(lambda e: isinstance(e, sp.Subs),
                        lambda e: sigma_symbol(e.expr.derivative_count))
    return expr.subs(sig(0), SIGMA[0])


@cache
def sample_blocks(dt: int, bias: bool):
    """−∇²ℓ_i(0) of ONE sample (x̃, y) for TWO neurons, by differentiating with σ undefined:
    the diagonal block A_i and the coupling block B_i, polynomials in (x̃, y, σ_0, σ_1)."""
    xs, yv = sample_symbols(dt)
    xv = sample_inputs(dt, bias)
    sig = sp.Function("sigma")
    th = [sp.symbols(f"u{k}_0:{dt + 1}", real=True) for k in (1, 2)]
    f = sum(t[0] * sig(sum(t[j + 1] * xv[j] for j in range(dt))) for t in th)
    loss = (f - yv) ** 2 / 2
    zero = {s: 0 for t in th for s in t}
    p = dt + 1

    def entry(u, v):  # the other parameters are set to 0 first: the same value, cheaper
        part = loss.subs({s: 0 for s in zero if s not in (u, v)})
        return -jets(sp.diff(part, u, v).subs(zero), sig)

    A = sp.Matrix(p, p, lambda i, j: entry(th[0][i], th[0][j]))
    B = sp.Matrix(p, p, lambda i, j: entry(th[0][i], th[1][j]))
    return A, B


def sigma_values(act: Activation | None, symbolic: bool, upto: int = 3) -> dict:
    """{σ_0: σ(0)} and, unless ``symbolic``, {σ_k: σ^(k)(0)} for k ≤ ``upto``; raises
    ``AssumptionError`` (saying what is needed) if one of them does not exist."""
    if act is None:
        return {}
    ks = [0] if symbolic else range(upto + 1)
    try:
        return {sigma_symbol(k): act.taylor0(k) for k in ks}
    except AssumptionError as err:
        hint = "" if symbolic else (" (symbolic_derivatives=True, on the command line "
                                    "--symbolic-derivatives, keeps σ'(0), σ''(0), … as symbols)")
        raise AssumptionError(f"the derivation needs σ^(k)(0) for k ≤ {max(ks)}, and {err}"
                              f"{hint}") from None


def resolve_activation(activation) -> Activation | None:
    """The ``Activation`` of a name, expression or ``Activation``; None stays None (σ generic)."""
    return None if activation is None else get_activation(activation)

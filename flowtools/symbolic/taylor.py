"""Taylor terms of the field g = −∇ℓ at θ = 0, of any degree K, derived with sympy.

g(θ) = Σ_{k ≤ K} T_k(θ) + O(‖θ‖^{K+1}) with T_k homogeneous of degree k (T_k(sθ) = s^k T_k(θ);
T_1(θ) = −∇²ℓ(0)θ). With σ(z) = Σ_k σ_k z^k/k! + O(z^{K+1}) and f_q the degree-q part of
f_θ(x̃) in θ, f_q = Σ_j a_j σ_{q−1} (w_jᵀx̃)^{q−1}/(q−1)!, the degree-(K+1) part of ℓ is

    ℓ_{K+1} = Σ_i [½ Σ_{p+q=K+1} f_p f_q − y_i f_{K+1}],   T_K = −∇ℓ_{K+1};

for σ(0) = 0, T_3 = −∇Σ_i [½ (σ'(0) Σ_j a_j w_jᵀx̃_i)² − y_i σ'''(0)/6 Σ_j a_j (w_jᵀx̃_i)³].
The sum over samples is written in data moments (``flowtools.symbolic.exact``); each term
carries its ``Moments`` table, which is what its JAX export evaluates. Needed by the limit
h(θ, t) (Theorem 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from flowtools import _validate
from flowtools.symbolic.derivation import (
    parameter_symbols,
    resolve_activation,
    sample_inputs,
    sample_symbols,
    sigma_symbol,
    sigma_values,
    sum_over_samples,
)
from flowtools.symbolic.exact import Moments, parse_data

__all__ = ["FieldTaylorTerm", "field_taylor_term", "third_order_term"]


@dataclass(frozen=True, eq=False)
class FieldTaylorTerm:
    """The homogeneous Taylor term of degree ``order`` of the field g = −∇ℓ at 0:
    g(θ) = Σ_k T_k(θ) + O(‖θ‖^{K+1}), T_k(sθ) = s^k T_k(θ); T_1(θ) = −∇²ℓ(0)θ.

    Attributes: ``theta`` (the parameter symbols, flat, layout (a_1, w_1, …)), ``expr``
    (p×1 Matrix with the data substituted), ``moment_expr`` (in moment symbols),
    ``moments`` (their exponents); ``to_jax()`` gives (θ, X, y) ↦ T_k(θ).
    """

    order: int
    width: int
    dim: int
    bias: bool
    theta: tuple
    expr: sp.Matrix
    moment_expr: sp.Matrix
    moments: Moments

    def to_jax(self):
        """A jitted JAX function (theta, X, y) ↦ T_k(θ) for data of this d."""
        import jax
        import jax.numpy as jnp

        f = self.moments.lambdify(list(self.moment_expr), list(self.theta))

        def term(theta, X, y):
            out = f(list(jnp.asarray(theta)), X, y)
            return jnp.stack([jnp.broadcast_to(jnp.asarray(o, dtype=float), ()) for o in out])

        return jax.jit(term)


def field_taylor_term(activation, *, width: int, dim: int | None = None, bias: bool = True,
                      data=None, order: int = 3, symbolic_derivatives: bool = False
                      ) -> FieldTaylorTerm:
    """The degree-``order`` Taylor term T_K of the field g = −∇ℓ at 0 (K = 1, 2, 3, …; the
    equation is in the module docstring). The expression has O(m²) terms: meant for small
    widths. Arguments as for ``origin_hessian``.

        >>> T = field_taylor_term("tanh", width=1, dim=1, bias=False, data=([[1]], [1]))
        >>> T.expr.T
        Matrix([[-a_1*w_1_1**2 - w_1_1**3/3, -a_1**2*w_1_1 - a_1*w_1_1**2]])
    """
    act = resolve_activation(activation)
    m = _validate.width(width)
    K = _validate.positive_int(order, "the order K")
    d = parse_data(data, dim, bias)
    sig = sigma_values(act, symbolic_derivatives, upto=K)
    s = [sig.get(sigma_symbol(k), sigma_symbol(k)) for k in range(K + 1)]
    _, yv = sample_symbols(d.dt)
    xv = sample_inputs(d.dt, d.bias)
    theta = parameter_symbols(m, d.dt)
    z = [sum(t[j + 1] * xv[j] for j in range(d.dt)) for t in theta]

    def f(q):  # degree-q part of f_θ(x̃) in θ
        return sum(t[0] * s[q - 1] * zk ** (q - 1) / sp.factorial(q - 1)
                   for t, zk in zip(theta, z))

    deg = K + 1
    part = sp.Rational(1, 2) * sum(f(p) * f(deg - p) for p in range(1, deg)) - yv * f(deg)
    flat = [v for t in theta for v in t]
    (loss_m,), moments = sum_over_samples([part], d.dt, d.bias)
    field_m = sp.Matrix([-sp.diff(loss_m, v) for v in flat])
    if d.kind == "moments":
        expr = field_m
    else:
        expr = field_m.subs(moments.values(d)).applyfunc(sp.expand)
    return FieldTaylorTerm(order=K, width=m, dim=d.dt - d.bias, bias=d.bias,
                           theta=tuple(flat), expr=sp.ImmutableMatrix(expr),
                           moment_expr=sp.ImmutableMatrix(field_m), moments=moments)


def third_order_term(activation, **kwargs) -> FieldTaylorTerm:
    """The cubic Taylor term T_3 of −∇ℓ at 0 (``field_taylor_term`` with order 3)."""
    return field_taylor_term(activation, order=3, **kwargs)

"""The entry functions: h(θ, t) by either method, for any model or any field.

``limit`` takes any model of ``flowtools.models`` (the paper's two-layer ``Problem``, a
``LossModel`` wrapping a JAX loss, …: its gradient-flow field −∇ℓ), ``limit_field`` any
field F (Theorem 3), ``compare_methods`` both methods on one grid. Two independent methods
(``flowtools.limiting.extrapolation`` and ``flowtools.limiting.manifold``):

* ``method="extrapolate"``: flows from α_k θ at the shifted times t + log(1/α_k)/μ1, then
  a generalized Richardson extrapolation to α = 0 with observed exponents;
* ``method="manifold"``: the parametrization method, h(θ, t) = P(e^{μ1 t}·s) from a Taylor
  series, continued beyond its radius by the flow.

Both measure their error (``flowtools.limiting.reference``) and return a ``LimitResult``.

    >>> import flowtools as ft, numpy as np
    >>> pb = ft.example1()
    >>> theta = pb.init_ratio(0.5, 1.0, seed=0)
    >>> res = limit(pb, theta, np.linspace(-2, 10, 50), method="manifold")
    >>> res.thetas.shape
    (50, 6)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from flowtools import _validate as V
from flowtools.errors import FlowtoolsError
from flowtools.limiting import extrapolation, manifold
from flowtools.limiting.results import LimitResult
from flowtools.limiting.system import FlowSystem
from flowtools.models import AbstractModel

_METHODS = {"extrapolate": extrapolation, "manifold": manifold}
METHODS = tuple(_METHODS)


def limit_system(system: FlowSystem, theta, ts, method: str, options: dict) -> LimitResult:
    """h(θ, ts) for a ``FlowSystem`` by ``method`` with its ``options`` (checked first)."""
    V.choice(method, "method", METHODS)
    allowed = _METHODS[method].OPTIONS
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise FlowtoolsError(f"unknown option(s) {', '.join(unknown)} for method={method!r}: "
                             f"use {', '.join(allowed)}.")
    t_start = time.perf_counter()
    res = _METHODS[method].solve(system, theta, ts, **options)
    return replace(res, total_time=time.perf_counter() - t_start)


def limit(model: AbstractModel, theta, ts, *, method: str = "extrapolate",
          **options) -> LimitResult:
    """h(θ, t) = lim_{α→0} φ(αθ, t + log(1/α)/μ1) for the gradient flow of a model
    (Theorem 1 for the two-layer network, Theorem 3 for any other model).

    Args:
        model: any ``flowtools.models.AbstractModel``. For the two-layer ``Problem`` μ1 =
            |σ'(0)|‖γ‖ and the top eigenspace are closed-form; any other model is
            linearized at 0 (``FlowSystem.from_field``: it needs ∇ℓ(0) = 0 and a positive
            top eigenvalue of −∇²ℓ(0), an ``AssumptionError`` otherwise).
        theta: the direction θ (p,), with a component in the top eigenspace (C(θ) ≠ 0).
        ts: one time or a 1-d array of times on the limiting axis (any real numbers).
        method: "extrapolate" (flows from α_k θ + extrapolation to α = 0) or "manifold"
            (parametrization of the unstable manifold, continued by the flow).
        options: extrapolate: ``eps`` (1e-3, in (0, 1): the largest effective scale),
            ``q`` (0.25, in (0, 1): α_{k+1}/α_k), ``levels`` (5, an integer ≥ 2), ``rtol``
            (1e-13, in (0, 1); the error check solves again at rtol/10, so rtol ≳ 1e-14),
            ``solver`` ("dopri8"), ``max_steps`` (100 000); manifold: ``order`` (9, an
            integer ≥ 3), ``rtol``, ``solver``, ``max_steps`` (as above), ``tol`` (1e-17,
            series truncation). Unknown options raise.

    Returns:
        ``LimitResult`` with h, the error estimate, the observed rate and Theorem 3's bound.

    Example:
        >>> import flowtools as ft
        >>> pb = ft.example1()
        >>> r = limit(pb, pb.init_ratio(1.0, 1.0, seed=0), [0.0, 2.0])
        >>> r.rate_bound
        0.5
    """
    return limit_system(FlowSystem.from_model(model), theta, ts, method, options)


def limit_field(field: Callable, theta, ts, *, jacobian=None, method: str = "extrapolate",
                **options) -> LimitResult:
    """h(θ, t) for the flow of any C² field F with F(0) = 0 (Theorem 3): see ``limit``.

    ``field`` must be JAX-traceable (and, for method="manifold", expandable by
    ``jax.experimental.jet``); ``jacobian`` is DF(0) (computed by ``jax.jacfwd`` if None).
    """
    theta = np.asarray(theta, dtype=float)
    system = FlowSystem.from_field(field, theta.shape[-1], jacobian=jacobian)
    return limit_system(system, theta, ts, method, options)


def compare_methods(model_or_system, theta, ts, **options):
    """Both methods on the same grid: (extrapolate result, manifold result, relative
    difference ‖h_e − h_m‖/‖h_m‖ per time). ``options``: a dict of options per method
    (``extrapolate={...}``, ``manifold={...}``)."""
    system = model_or_system
    if not isinstance(system, FlowSystem):
        system = FlowSystem.from_model(system)
    e = limit_system(system, theta, ts, "extrapolate", options.get("extrapolate", {}))
    m = limit_system(system, theta, ts, "manifold", options.get("manifold", {}))
    diff = np.linalg.norm(e.thetas - m.thetas, axis=-1) / np.linalg.norm(m.thetas, axis=-1)
    return e, m, diff

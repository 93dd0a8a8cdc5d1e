"""The manifold method: h on the fast unstable manifold, by the parametrization method.

For a field F: ℝ^p → ℝ^p with F(0) = 0, J = DF(0) diagonalizable and top eigenvalue
μ1 > 0 with eigenspace V1 (p × m), the parametrization P: ℝ^m → ℝ^p,

    F(P(s)) = DP(s)·μ1 s,      P(0) = 0,   DP(0) = V1,

conjugates the flow on the manifold to s' = μ1 s:  φ(P(s), t) = P(e^{μ1 t} s). Writing
P(s) = Σ_k P_k s^k (multi-indices k ∈ ℕ^m), the degree-n part satisfies the homological
equation (n μ1 I − J)·P_k = [F(P) − J P]_k for |k| = n, solvable for n ≥ 2 because
n μ1 > μ1 ≥ every eigenvalue of J (no resonance).

**Ray form.** Because the internal dynamics Λ = μ1·I is a multiple of the identity, the
operator (n μ1 I − J) is the same for every multi-index of degree n. So along a ray
s = τ·σ (σ fixed) the homogeneous parts Q_n(σ) = Σ_{|k|=n} P_k σ^k obey the *vector*
recursion

    (n μ1 I − J)·Q_n = [F(Σ_{j<n} τ^j Q_j)]_n,      Q_1 = V1 σ,

with [·]_n the n-th Taylor coefficient in τ. This gives P(τσ) = Σ_n τ^n Q_n(σ) exactly,
with no multi-index bookkeeping, for any number m of top directions. The Taylor
coefficients of F along the series come from ``jax.experimental.jet`` (one expansion per
degree inside one ``lax.fori_loop``, so one compilation serves all degrees).

The limiting trajectory of Theorem 1 / Theorem 3 (paper, Appendix A) is then

    h(θ, t) = P(e^{μ1 t}·s),    s = W1ᵀθ  (left eigenvectors; W1 = V1 for a gradient field),

a series Σ_n e^{n μ1 t} Q_n(σ)‖s‖^n inside its radius of convergence.

``method="manifold"`` (``solve``): h(θ, t) = P(e^{μ1 t}·s) from the series, evaluated where
its truncation error is ≤ ``tol`` (1e-17) and continued beyond by the flow from P(τ0)
(with the reference solve of ``flowtools.limiting.reference`` for its error). No flow
from a tiny α is ever needed.

    >>> import flowtools as ft, numpy as np
    >>> pb = ft.example1()
    >>> Q = ray_coefficients(pb.field, pb.top_eigvecs @ [0.6, 0.8], pb.mu1, order=5)
    >>> Q.shape
    (5, 6)
"""

from __future__ import annotations

import time
from math import factorial

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import jet

from flowtools import _validate as V
from flowtools.errors import FlowtoolsError
from flowtools.limiting.reference import EPS, REF_GAIN, REF_RATIO, check_memory, reference_flow
from flowtools.limiting.results import ErrorParts, LimitResult, ManifoldSeries
from flowtools.limiting.system import FlowSystem, prepare

DEFAULT_ORDER = 9
OPTIONS = ("order", "rtol", "solver", "tol", "max_steps")


@eqx.filter_jit
def _ray_coefficients(field, q1, J, mu1, order: int):
    p = q1.shape[0]
    fact = jnp.asarray([float(factorial(k)) for k in range(1, order + 1)])
    eye = jnp.eye(p, dtype=q1.dtype)

    def taylor_of_field(Q):
        # jet works with derivative coefficients x_k = k!·Q_k.
        series = [Q[k] * fact[k] for k in range(order)]
        _, ys = jet.jet(field, (jnp.zeros(p, q1.dtype),), (series,))
        return jnp.stack(ys) / fact[:, None]

    def body(n, Q):
        # Q_n is still 0 here, so the n-th coefficient of F(z) is [F(z_{<n}) − J z_{<n}]_n.
        rhs = taylor_of_field(Q)[n - 1]
        return Q.at[n - 1].set(jnp.linalg.solve(n * mu1 * eye - J, rhs))

    Q0 = jnp.zeros((order, p), q1.dtype).at[0].set(q1)
    return jax.lax.fori_loop(2, order + 1, body, Q0)


def ray_coefficients(field, q1, mu1: float, *, jacobian=None, order: int = DEFAULT_ORDER):
    """The homogeneous parts Q_1 … Q_order of the parametrization along one ray.

    Args:
        field: F, a JAX-traceable function ℝ^p → ℝ^p with F(0) = 0 (a ``Problem``'s
            ``field`` or any other field).
        q1: Q_1 = V1·σ, a vector in the μ1-eigenspace of J = DF(0).
        mu1: the top eigenvalue μ1 > 0 of J.
        jacobian: J (computed with ``jax.jacfwd`` at 0 if None).
        order: the degree N of the truncation P_N(τσ) = Σ_{n ≤ N} τ^n Q_n.

    Returns:
        (order, p) array; row n−1 is Q_n, and Σ_n τ^n Q_n solves x' = F(x) with
        x(t) = Σ_n e^{nμ1 t} Q_n up to O(τ^{N+1}).
    """
    order = V.integer(order, "the order of the parametrization", minimum=1)
    mu1 = V.positive_float(mu1, "μ1")
    q1 = jnp.asarray(V.real_array(q1, "q1", ndim=(1,)), dtype=jnp.float64)
    if jacobian is None:
        jacobian = jax.jacfwd(field)(jnp.zeros_like(q1))
    J = jnp.asarray(jacobian, dtype=jnp.float64)
    try:
        Q = _ray_coefficients(field, q1, J, jnp.float64(mu1), int(order))
    except NotImplementedError as err:  # a primitive jet has no Taylor rule for
        raise FlowtoolsError(
            f"the field uses an operation that jax.experimental.jet cannot expand ({err}); "
            "use method='extrapolate' for this field."
        ) from None
    return np.asarray(Q)


def series_radius(Q) -> float:
    """A root-test estimate of the radius of convergence of Σ τ^n Q_n (inf if all Q_n,
    n ≥ 2, vanish)."""
    c = np.linalg.norm(np.asarray(Q), axis=-1)
    n = np.arange(1, len(c) + 1)
    keep = (n >= 2) & (c > 0)
    if not keep.any():
        return np.inf
    # Use the upper half of the available degrees (the root test's tail).
    idx = np.flatnonzero(keep)
    idx = idx[idx >= idx[len(idx) // 2]]
    return float(np.min((c[idx] / c[0]) ** (-1.0 / (n[idx] - 1))))


def safe_radius(Q, tol: float = 1e-17) -> float:
    """The largest τ at which the truncation error of Σ_{n≤N} τ^n Q_n, estimated by the
    last two non-zero terms relative to the first, is ≤ ``tol``."""
    tol = V.positive_float(tol, "tol")
    Q = np.asarray(Q)
    c = np.linalg.norm(Q, axis=-1)
    n = np.arange(1, len(c) + 1)
    nz = np.flatnonzero((n >= 2) & (c > 0))
    if not nz.size:
        return np.inf
    last = nz[-2:]
    return float(np.min((tol * c[0] / c[last]) ** (1.0 / (n[last] - 1))))


def evaluate(Q, log_tau):
    """P(τσ) = Σ_n τ^n Q_n for τ = exp(log_tau) (array of any shape); shape (…, p).

    τ^n is formed as exp(n·log τ), so very negative times do not underflow early."""
    Q = np.asarray(Q)
    n = np.arange(1, Q.shape[0] + 1)
    powers = np.exp(np.multiply.outer(np.asarray(log_tau, dtype=float), n))
    return powers @ Q


def truncation_error(Q, log_tau):
    """An estimate of ‖P(τσ) − P_N(τσ)‖: the size of the last non-zero term times the
    geometric factor of the tail."""
    Q = np.asarray(Q)
    c = np.linalg.norm(Q, axis=-1)
    n = np.arange(1, len(c) + 1)
    nz = np.flatnonzero((n >= 2) & (c > 0))
    if not nz.size:
        return np.zeros_like(np.asarray(log_tau, dtype=float))
    k = nz[-1]
    return c[k] * np.exp(n[k] * np.asarray(log_tau, dtype=float))


# ---------------------------------------------------------------------- the method
def solve(system: FlowSystem, theta, ts, *, order=DEFAULT_ORDER, rtol=1e-13, solver="dopri8",
          tol=1e-17, max_steps=100_000) -> LimitResult:
    """h(θ, ts) by the manifold method (options: see ``flowtools.limiting.limit``)."""
    order = V.integer(order, "order", minimum=3)
    tol = V.in_open_interval(tol, "tol", 0.0, 1.0)
    rtol, max_steps = system.check_flow_options(rtol, solver, max_steps)
    theta, ts, s, ns, nth, log_tau = prepare(system, theta, ts)
    check_memory(1, max(len(ts), 64), system.p)
    mu1 = system.mu1
    tc = time.perf_counter()
    q1 = system.V1 @ (s / ns)
    Q = ray_coefficients(system.field, q1, mu1, jacobian=system.J0, order=order)
    comp = time.perf_counter() - tc
    log_tau0 = np.log(min(safe_radius(Q, tol), 0.5 * series_radius(Q), 1e300))
    t0 = (log_tau0 - np.log(ns)) / mu1
    thetas = np.zeros((len(ts), system.p))
    errors = np.zeros(len(ts))
    flow_err = np.zeros(len(ts))
    inside = ts <= t0
    thetas[inside] = evaluate(Q, log_tau[inside])
    errors[inside] = truncation_error(Q, log_tau[inside])
    # where the series is evaluated, τ = e^{log τ} carries the rounding of log τ
    t_eff = np.abs(log_tau) / mu1
    wall, wall_ref = 0.0, 0.0
    if (~inside).any():
        x0 = evaluate(Q, log_tau0)
        order_t = np.argsort(ts[~inside])
        st = ts[~inside][order_t] - t0
        out, ref, wall, wall_ref, c2 = reference_flow(system, x0[None], st, rtol=rtol,
                                                      solver=solver, max_steps=max_steps)
        comp += c2
        vals = np.empty((len(st), system.p))
        vals[order_t] = out[0]
        dref = np.empty(len(st))
        dref[order_t] = REF_GAIN * np.linalg.norm(out[0] - ref[0], axis=-1)
        thetas[~inside] = vals
        # the start point's series error (relative, carried along) and the flow's error,
        # measured against the reference solve
        flow_err[~inside] = dref
        errors[~inside] = np.linalg.norm(vals, axis=-1) * tol + dref
        t_eff[~inside] = np.abs(log_tau0) / mu1 + np.abs(ts[~inside] - t0)
    dh_dt = system.field_values(thetas)
    floor = EPS * (np.linalg.norm(thetas, axis=-1) + t_eff * np.linalg.norm(dh_dt, axis=-1))
    errors = errors + floor
    return LimitResult(
        ts=ts, thetas=thetas, error=errors, rate=np.full(len(ts), np.nan),
        rate_bound=system.rate_bound, method="manifold", mu1=system.mu1, mu2=system.mu2,
        dh_dt=dh_dt,
        error_parts=ErrorParts(truncation=errors - flow_err - floor, flow=flow_err,
                               round_off=floor),
        series=ManifoldSeries(coefficients=Q, t0=float(t0), tau0=float(np.exp(log_tau0)),
                              radius=series_radius(Q)),
        wall_time=wall + wall_ref, compile_time=comp, reference_wall_time=wall_ref,
        info=dict(order=order, rtol=rtol, solver=solver, tol=tol,
                  reference_rtol=rtol / REF_RATIO))

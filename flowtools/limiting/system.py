"""The system: a field F with F(0) = 0, its linearization J = DF(0) and top eigenspace.

Theorem 1 (paper, section 5.1) and its general form Theorem 3 (Appendix A.1) need a field
F with F(0) = 0, J = DF(0) diagonalizable and a top eigenvalue μ1 > 0; the limit then
depends on θ only through its μ1-eigenspace coordinates s = W1ᵀθ (left eigenvectors W1,
W1ᵀV1 = I; for a network C(θ) = √2‖γ‖·V1ᵀθ), and converges at least as fast as
α^{(μ1−μ2)/(2μ1−μ2)}. ``FlowSystem`` holds what both methods need: F, J, μ1, μ2, V1, W1,
and the flow of F from a batch of initial states (``flowtools.integrate``).

A ``FlowSystem`` comes from any model of ``flowtools.models`` (``from_model``: the
two-layer ``Problem`` with its closed-form μ1 and eigenvectors, any other model through
its field −∇ℓ) or from any field (``from_field``).

    >>> import flowtools as ft
    >>> sy = FlowSystem.from_model(ft.example1())
    >>> round(sy.rate_bound, 6), sy.V1.shape
    (0.5, (6, 2))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from flowtools import _validate as V
from flowtools.errors import AssumptionError, FlowtoolsError
from flowtools.integrate import EXPLICIT, SOLVERS, IntegratorOptions, integrate
from flowtools.models import AbstractModel, Problem
from flowtools.status import Status


@dataclass(frozen=True, eq=False)
class FlowSystem:
    """A field F with its linearization at 0: what both methods need.

    Attributes:
        field: F: ℝ^p → ℝ^p (JAX-traceable).
        p: dimension.
        J0: DF(0).
        mu1, mu2: top and second eigenvalue of J0 (real parts).
        V1: (p, m) orthonormal basis of the μ1-eigenspace.
        W1: (p, m) left coordinates: s = W1ᵀθ, W1ᵀV1 = I, W1ᵀ kills the other eigenvectors.
        problem: the two-layer ``Problem`` if the field is its −∇ℓ (its flows then take
            ``solve_flow``'s settings and solvers), None otherwise.
    """

    field: Callable
    p: int
    J0: np.ndarray
    mu1: float
    mu2: float
    V1: np.ndarray
    W1: np.ndarray
    problem: Problem | None = None

    @classmethod
    def from_model(cls, model: AbstractModel) -> FlowSystem:
        """The gradient flow −∇ℓ of any model: the two-layer ``Problem`` by its closed-form
        spectrum (``from_problem``), any other model by linearizing its field
        (``from_field``: Theorem 3's assumptions checked numerically)."""
        if isinstance(model, Problem):
            return cls.from_problem(model)
        if not isinstance(model, AbstractModel):
            raise FlowtoolsError(f"expected a flowtools model (flowtools.models.AbstractModel, "
                                 f"e.g. a Problem or a LossModel), got {type(model).__name__}.")
        return cls.from_field(model.field, model.n_params)

    @classmethod
    def from_problem(cls, problem: Problem) -> FlowSystem:
        """The two-layer network's flow: μ1 = |σ'(0)|‖γ‖ and V1 = W1 in closed form."""
        if not isinstance(problem, Problem):
            raise FlowtoolsError(f"expected a flowtools Problem, got {type(problem).__name__}.")
        mu1 = problem.mu1  # raises AssumptionError if Theorem 1's assumptions fail
        check_dense(problem.n_params)
        V1 = problem.top_eigvecs
        J0 = -np.asarray(problem.hessian(jnp.zeros(problem.n_params)))
        return cls(problem.field, problem.n_params, J0, mu1, problem.mu2, V1, V1, problem)

    @classmethod
    def from_field(cls, field: Callable, p: int, *, jacobian=None, eig_tol: float = 1e-8):
        """Linearize F at 0 and split off the top eigenspace (Theorem 3's setting)."""
        check_dense(int(p))
        zero = jnp.zeros(int(p))
        f0 = np.asarray(field(zero))
        if f0.shape != (p,):
            raise FlowtoolsError(f"the field must map ℝ^{p} → ℝ^{p}; F(0) has shape {f0.shape}.")
        if np.linalg.norm(f0) > 1e-12:
            raise AssumptionError(
                f"Theorem 3 needs F(0) = 0 (the origin a critical point); ‖F(0)‖ = "
                f"{np.linalg.norm(f0):.3g}."
            )
        J0 = np.asarray(jax.jacfwd(field)(zero) if jacobian is None else jacobian, dtype=float)
        w, R = np.linalg.eig(J0)
        if np.linalg.cond(R) > 1e10:
            raise AssumptionError("Theorem 3 needs DF(0) diagonalizable; its eigenvectors are "
                                  "(numerically) linearly dependent.")
        mu1 = float(np.max(w.real))
        scale = max(1.0, np.max(np.abs(w)))
        top = np.abs(w - mu1) <= eig_tol * scale
        check_mu1(mu1)
        rest = w.real[~top]
        mu2 = float(np.max(rest)) if rest.size else -np.inf
        Rinv = np.linalg.inv(R)
        # Real bases: μ1 is real, so its eigenvectors can be taken real.
        Vt = np.real(R[:, top])
        V1, Rq = np.linalg.qr(Vt)
        W1 = np.real(Rq @ Rinv[top]).T
        return cls(field, int(p), J0, mu1, mu2, V1, W1, None)

    @property
    def rate_bound(self) -> float:
        """Theorem 3's rate (μ1 − μ2)/(2μ1 − μ2) (1 if there is no second eigenvalue)."""
        if not np.isfinite(self.mu2):
            return 1.0
        return (self.mu1 - self.mu2) / (2 * self.mu1 - self.mu2)

    def coords(self, theta) -> np.ndarray:
        """s = W1ᵀθ, the coordinates in the μ1-eigenspace (C(θ)/(√2‖γ‖) for a network)."""
        return np.asarray(theta) @ self.W1

    def field_values(self, X) -> np.ndarray:
        """F(x) for the rows of X (…, p): one compiled program per field and row count,
        the rows padded with zeros to a power of two ≥ 8 (few shapes; F(0) = 0 is not
        used)."""
        X = np.asarray(X, dtype=float)
        rows = X.reshape(-1, X.shape[-1])
        n = len(rows)
        padded = np.zeros((max(8, 1 << max(0, n - 1).bit_length()), rows.shape[1]))
        padded[:n] = rows
        F = np.asarray(_field_rows(self.field, jnp.asarray(padded)))[:n]
        return F.reshape(X.shape)

    def check_flow_options(self, rtol, solver, max_steps):
        """(rtol, max_steps) validated and the solver name checked — before any series or
        flow work, as the flow would."""
        rtol = V.in_open_interval(rtol, "rtol", 0.0, 1.0)
        if self.problem is None:
            V.choice(solver, "solver", EXPLICIT)
        else:
            V.choice(solver, "diffrax solver", SOLVERS)
        return rtol, V.positive_int(max_steps, "max_steps")

    def flow(self, theta0, save_ts, *, rtol, solver, max_steps=100_000, pad_to=0):
        """States (K, S, p) at ``save_ts`` from each row of ``theta0`` (K, p), with wall and
        compile seconds: one call of ``flowtools.integrate.integrate``, in log-norm
        coordinates, the K rows in lockstep, PID(0.4, 0.3) steps landing exactly on the
        saves (the saved states carry the step accuracy: Dopri8's dense interpolant is not
        error-controlled — read between steps, the closed-form field of the tests came out
        300× less accurate, 2e-12 instead of 6e-15 relative at rtol 1e-13, for 30 % fewer
        steps). atol (relative to ‖θ‖) is rtol for a network, as ``solve_flow``'s default,
        and rtol·1e-3 for any other field, which takes the explicit solvers only."""
        save_ts = np.asarray(save_ts, dtype=float)
        S = len(save_ts)
        # Pad to a multiple of 64 saves (repeating the last) — at least ``pad_to``, so that a
        # result and its reference share one shape: fewer shapes, fewer compilations.
        n = max(S, int(pad_to))
        save_ts = np.concatenate([save_ts, np.full(n - S + (-n % 64), save_ts[-1])])
        t1 = float(save_ts[-1]) if save_ts[-1] > 0 else 1e-12
        network = self.problem is not None
        rtol, max_steps = self.check_flow_options(rtol, solver, max_steps)
        theta0 = np.atleast_2d(np.asarray(theta0, dtype=float))
        opts = IntegratorOptions(solver=solver, rtol=rtol, atol=rtol * (1.0 if network else 1e-3),
                                 coords="lognorm", pcoeff=0.4, icoeff=0.3, clip_to_saves=True,
                                 max_steps=max_steps, batch_size=len(theta0), t1=t1)
        sol = integrate(_apply, self.field, theta0, save_ts, opts)
        ok = np.array([Status(int(c)).ok for c in sol.status])
        out = sol.thetas
        bad = ~ok | ~np.all(np.isfinite(out), axis=(-1, -2))
        if bad.any():
            raise FlowtoolsError(
                f"the flow failed before reaching t = {t1:.6g} (beyond the computed range: "
                "the solver stopped, ran out of steps or diverged). Ask for earlier times, "
                "loosen rtol or raise max_steps."
            )
        return out[:, :S], sol.wall_time, sol.compile_time


def _apply(theta, field):
    """The field as ``integrate`` calls it: F(θ) with F passed as the args (traced arrays of
    a model or module, a plain function static)."""
    return field(theta)


def check_mu1(mu1):
    """Theorem 3 (iv): μ1 > 0, or a clear ``AssumptionError``."""
    if not mu1 > 0:
        raise AssumptionError(
            f"the limit h(θ, t) needs a positive top eigenvalue μ1 of DF(0) (Theorem 3 (iv)); "
            f"here μ1 = {mu1:.6g} ≤ 0, so small initializations never leave the origin."
        )


#: p × p matrices a FlowSystem holds or makes at once: J0, the eigenvectors and their
#: inverse (complex: two each) and the eigen-decomposition's workspace
DENSE_COPIES = 8


def check_dense(p: int) -> None:
    """Refuse a linearization whose dense p × p matrices would not fit in memory
    (``flowtools._validate.memory``), before any is formed."""
    V.memory(V.nbytes(DENSE_COPIES, p, p),
             f"the linearization DF(0) of a flow with p = {p:,} parameters (dense {p:,}×{p:,} "
             "matrices and their eigen-decomposition)",
             "h(θ, t) is computed with dense linear algebra: use a smaller model")


def prepare(system: FlowSystem, theta, ts):
    """θ and the times checked; (θ, ts, s = W1ᵀθ, ‖s‖, ‖θ‖, log τ), τ = e^{μ1 t}‖s‖ the
    position on the ray of the limiting trajectory."""
    theta = np.asarray(theta, dtype=float)
    if theta.shape != (system.p,) or not np.all(np.isfinite(theta)):
        raise FlowtoolsError(f"θ must be a finite vector of length {system.p}; got shape "
                             f"{theta.shape}.")
    ts = np.atleast_1d(np.asarray(ts, dtype=float))
    if ts.ndim != 1 or ts.size == 0:
        raise FlowtoolsError("ts must be a time or a 1-d array of times.")
    if np.any(np.isinf(ts)):
        raise FlowtoolsError("t = ±inf is beyond the computed range of a finite-time grid: use "
                             "limit_endpoint(...) for t → ∞.")
    if np.any(np.isnan(ts)):
        raise FlowtoolsError("ts contains NaN.")
    check_mu1(system.mu1)
    s = system.coords(theta)
    ns, nth = float(np.linalg.norm(s)), float(np.linalg.norm(theta))
    if not ns > 1e-13 * nth:
        raise FlowtoolsError(
            "θ has no component in the top eigenspace (C(θ) = 0, i.e. W1ᵀθ = 0): the flow "
            "from αθ never escapes along μ1 and h(θ, t) = 0 is not the small-initialization "
            "limit of Theorem 1. Use a θ with C(θ) ≠ 0 (e.g. Problem.init_ratio)."
        )
    log_tau = system.mu1 * ts + np.log(ns)
    if np.any(log_tau < -700):
        raise FlowtoolsError(
            f"t = {ts.min():.6g} is beyond the computed range: e^(μ1 t)·‖s‖ underflows float64 "
            f"(needs μ1 t + log‖s‖ > −700, μ1 = {system.mu1:.6g})."
        )
    return theta, ts, s, ns, nth, log_tau


@eqx.filter_jit
def _field_rows(field, X):
    return jax.vmap(field)(X)

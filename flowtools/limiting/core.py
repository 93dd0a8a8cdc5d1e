"""The small-initialization limit h(θ, t) = lim_{α→0} φ(αθ, t + log(1/α)/μ1).

Theorem 1 (paper, section 5.1) and its general form Theorem 3 (Appendix A.1): for a field
F with F(0) = 0, J = DF(0) diagonalizable and top eigenvalue μ1 > 0, the limit exists,
depends on θ only through its μ1-eigenspace coordinates s = W1ᵀθ (for a network
C(θ) = √2‖γ‖·V1ᵀθ), and the convergence is at least as fast as α^{(μ1−μ2)/(2μ1−μ2)}.
Corollary 2: h(sθ, t) = h(θ, t + log(s)/μ1); Proposition 1: dh/dt = F(h).

Two independent methods:

* ``method="extrapolate"``: flows from α_k θ, α_k = α_0 q^k, saved at the shifted times
  t + log(1/α_k)/μ1 (one batched solve), then a Richardson-type extrapolation to α = 0
  whose exponents are *estimated from the sequence itself* at each level (generalized
  Richardson / E-algorithm with observed orders). Each time t uses its own window of α_k,
  chosen so that the effective scale α‖θ‖/min(1, e^{μ1 t}‖s‖) runs from ``eps`` down by
  q^levels. Returns the estimate, an error estimate, and the observed rate beside the
  theorem's bound.
* ``method="manifold"``: the parametrization method (``flowtools.limiting.manifold``): h(θ, t) =
  P(e^{μ1 t}·s) from a Taylor series, evaluated where its truncation error is ≤ 1e-17 and
  continued beyond by the flow from P(τ0). No flow from a tiny α is ever needed.

**Error estimates** (``LimitResult.error``) are measured, not assumed. Every flow is solved
twice, at ``rtol`` and at rtol/``REF_RATIO``, the second with an extra step in each of the
longest save intervals (a reference on the same save grid would repeat the result's steps
wherever the grid, not the tolerance, limits them); the reported h is the first, and its
estimate is the sum of

1. the extrapolation's truncation: the last difference of the Richardson column times
   q^r/(1 − q^r) for the next exponent r (extrapolate), or the series' truncation error
   (manifold, inside its radius; ``tol`` relative beyond);
2. the flows' global error: the same extrapolation applied to the reference sequence, and
   the difference of the two values (divided by 1 − REF_RATIO^−0.8: the reference's own
   share, see ``RTOL_ORDER``). This includes the error common to all α_k — the shared
   trajectory after the escape — which the differences of the sequence cannot show;
3. a round-off floor for what both solves share: the rounding of the save times
   t + log(1/α_k)/μ1 and of the α_k, eps·(‖x‖ + |T|·‖F(x)‖) per entry, propagated with the
   extrapolation's weights.

The stopping threshold of the Richardson recursion is the measured noise of the sequence
(the variation over α_k of result − reference), not an assumed multiple of rtol. The
reference costs 1–1.4× the result's flow (dopri8's steps grow as rtol^−1/8, plus the extra
steps), so a call costs ~2× the flows of a single solve. Measured estimate/actual where
the flows' error dominates (rtol ≥ 1e-9 on Example 1, 1e-7 on the closed-form field of
the tests): 0.9–2.5. Where the flows are at round-off (the default rtol 1e-13: ~1e-15
relative on Example 1) the two solves differ by their round-off only: the estimate is then
that noise, typically 1–5× the actual error, whose realization itself varies several-fold
from run to run (and machine to machine).

``limit`` takes a ``Problem``; ``limit_field`` the same for any field F (Theorem 3), with a
small diffrax integrator in log-norm coordinates. ``limit_endpoint`` gives lim_{t→∞} h with
the flow's stopping rules (Theorem 2). ``aligned_times`` puts flows and GD runs from
different initial scales on the limiting time axis (Figures 2 and 5).

    >>> import flowtools as ft, numpy as np
    >>> from flowtools.limiting import limit
    >>> pb = ft.example1()
    >>> theta = pb.init_ratio(0.5, 1.0, seed=0)
    >>> res = limit(pb, theta, np.linspace(-2, 10, 50), method="manifold")
    >>> res.thetas.shape
    (50, 6)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from flowtools import _validate as V
from flowtools._compile import compiled
from flowtools.errors import AssumptionError, FlowtoolsError
from flowtools.flow import SOLVERS, from_lognorm, lognorm_field, solve_flow, to_lognorm
from flowtools.limiting import manifold
from flowtools.models import Problem
from flowtools.trajectory import Status

METHODS = ("extrapolate", "manifold")
# The flows' global error is measured, not assumed: every flow is solved a second time at
# rtol / REF_RATIO, and the difference of the two results (propagated through the same
# extrapolation) is the flow part of the error estimate. The global error of dopri8 with
# the PI controller goes as rtol^p, p = 0.8–1.2 measured on Example 1 (extrapolation and
# manifold continuation, rtol 1e-12 … 1e-8; tests/test_limit.py fits it), so the
# reference carries REF_RATIO^−p ≤ 16 % of the result's error: the difference is divided
# by 1 − REF_RATIO^−RTOL_ORDER (exact when the two errors are aligned, 16 % high when they
# are independent, as at the round-off floor).
REF_RATIO = 10.0
RTOL_ORDER = 0.8
_REF_GAIN = 1.0 / (1.0 - REF_RATIO ** -RTOL_ORDER)
_EPS = float(np.finfo(float).eps)


# ====================================================================== the system
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
        problem: the ``Problem`` if the field is −∇ℓ (flows then use ``solve_flow``).
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
    def from_problem(cls, problem: Problem) -> FlowSystem:
        if not isinstance(problem, Problem):
            raise FlowtoolsError(f"expected a flowtools Problem, got {type(problem).__name__}.")
        mu1 = problem.mu1  # raises AssumptionError if Theorem 1's assumptions fail
        V1 = problem.top_eigvecs
        J0 = -np.asarray(problem.hessian(jnp.zeros(problem.n_params)))
        return cls(problem.field, problem.n_params, J0, mu1, problem.mu2, V1, V1, problem)

    @classmethod
    def from_field(cls, field: Callable, p: int, *, jacobian=None, eig_tol: float = 1e-8):
        """Linearize F at 0 and split off the top eigenspace (Theorem 3's setting)."""
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
        _check_mu1(mu1)
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

    def flow(self, theta0, save_ts, *, rtol, solver, max_steps=100_000, pad_to=0):
        """States (K, S, p) at ``save_ts`` from each row of ``theta0`` (K, p)."""
        save_ts = np.asarray(save_ts, dtype=float)
        S = len(save_ts)
        # Pad to a multiple of 64 saves (repeating the last) — at least ``pad_to``, so that a
        # result and its reference share one shape: fewer shapes, fewer compilations.
        n = max(S, int(pad_to))
        save_ts = np.concatenate([save_ts, np.full(n - S + (-n % 64), save_ts[-1])])
        t1 = float(save_ts[-1]) if save_ts[-1] > 0 else 1e-12
        if self.problem is not None:
            tr = solve_flow(self.problem, theta0, t1=t1, loss_threshold=0.0, gtol=0.0,
                            save_ts=save_ts, rtol=rtol, solver=solver, max_steps=max_steps,
                            batch_size=len(theta0))
            ok = np.array([Status(int(c)).ok for c in np.atleast_1d(tr.status)])
            out, wall, comp = tr.thetas, tr.wall_time, tr.compile_time
        else:
            out, ok, wall, comp = _field_flow(self.field, theta0, save_ts, rtol, solver,
                                              max_steps)
        bad = ~ok | ~np.all(np.isfinite(out), axis=(-1, -2))
        if bad.any():
            raise FlowtoolsError(
                f"the flow failed before reaching t = {t1:.6g} (beyond the computed range: "
                "the solver stopped, ran out of steps or diverged). Ask for earlier times, "
                "loosen rtol or raise max_steps."
            )
        return out[:, :S], wall, comp


def _check_mu1(mu1):
    if not mu1 > 0:
        raise AssumptionError(
            f"the limit h(θ, t) needs a positive top eigenvalue μ1 of DF(0) (Theorem 3 (iv)); "
            f"here μ1 = {mu1:.6g} ≤ 0, so small initializations never leave the origin."
        )


# ------------------------------------------------------------- general-field integrator
_FIELD_SOLVERS = {"tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5, "dopri8": diffrax.Dopri8}


@eqx.filter_jit
def _field_batch(field, theta0s, save_ts, rtol, solver_name, max_steps):
    # Log-norm coordinates θ = e^r ω (as flowtools.flow): relative error control at any scale.
    vf = lognorm_field(lambda theta, args: field(theta))
    # Steps land exactly on the save times (as solve_flow with save_ts): the saved states
    # carry the step accuracy. Dopri8's dense interpolant is not error-controlled: read
    # between steps, the closed-form field of the tests came out 300× less accurate
    # (2e-12 instead of 6e-15 relative at rtol 1e-13), for 30 % fewer steps.
    controller = diffrax.ClipStepSizeController(
        diffrax.PIDController(rtol=rtol, atol=rtol * 1e-3, pcoeff=0.4, icoeff=0.3),
        step_ts=save_ts)

    def one(th0):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(vf), _FIELD_SOLVERS[solver_name](), 0.0, save_ts[-1], None,
            to_lognorm(th0), saveat=diffrax.SaveAt(ts=save_ts, fn=lambda t, y, a: from_lognorm(y)),
            stepsize_controller=controller, max_steps=max_steps, throw=False,
        )
        return sol.ys, sol.result == diffrax.RESULTS.successful

    return jax.vmap(one)(theta0s)


def _field_flow(field, theta0, save_ts, rtol, solver, max_steps):
    V.choice(solver, "solver", _FIELD_SOLVERS)
    args = (field, jnp.asarray(theta0), jnp.asarray(save_ts), jnp.float64(rtol), solver,
            int(max_steps))
    exe, comp = compiled(_field_batch, *args)
    tw = time.perf_counter()
    ys, ok = jax.block_until_ready(exe(*args))
    return np.asarray(ys), np.asarray(ok), time.perf_counter() - tw, comp


# ====================================================================== results
@dataclass(frozen=True, eq=False)
class LimitResult:
    """h(θ, t) on a grid of times.

    Attributes:
        ts: (T,) limiting times t.
        thetas: (T, p) h(θ, t).
        error: (T,) estimated error ‖ĥ − h‖ (2-norm, absolute): truncation + the flows'
            global error measured against a reference solve at rtol/10 + a round-off floor
            (the three in ``info["error_parts"]``; see the module docstring).
        rate: (T,) observed rate of convergence in α (extrapolate; NaN where the sequence
            was at the noise floor, and for the manifold method).
        rate_bound: Theorem 3's rate (μ1 − μ2)/(2μ1 − μ2).
        method: "extrapolate" or "manifold".
        mu1, mu2: the eigenvalues used.
        wall_time, compile_time: seconds (compile time of the flows and of the series).
        info: settings and diagnostics (α grid, series order and radius, …).
    """

    ts: np.ndarray
    thetas: np.ndarray
    error: np.ndarray
    rate: np.ndarray
    rate_bound: float
    method: str
    mu1: float
    mu2: float
    wall_time: float = 0.0
    compile_time: float = 0.0
    info: dict = field(default_factory=dict)

    @property
    def rel_error(self) -> np.ndarray:
        """error / ‖h‖."""
        return self.error / np.linalg.norm(self.thetas, axis=-1)

    @property
    def observed_rate(self) -> float:
        """The median of the per-time observed rates (NaN if none was measurable)."""
        r = self.rate[np.isfinite(self.rate)]
        return float(np.median(r)) if r.size else float("nan")

    def at(self, t) -> np.ndarray:
        """h at time(s) t inside [min ts, max ts] by cubic Hermite interpolation with the
        derivatives dh/dt = F(h) (Proposition 1); an error outside the computed range."""
        t = np.asarray(t, dtype=float)
        lo, hi = float(np.min(self.ts)), float(np.max(self.ts))
        if np.any(~np.isfinite(t)) or np.any(t < lo) or np.any(t > hi):
            raise FlowtoolsError(
                f"t = {t} is beyond the computed range [{lo:.6g}, {hi:.6g}] of this limiting "
                "trajectory; compute h on a grid that contains it (or use limit_endpoint "
                "for t → ∞)."
            )
        from scipy.interpolate import CubicHermiteSpline

        order = np.argsort(self.ts)
        ts, th = self.ts[order], self.thetas[order]
        keep = np.concatenate([[True], np.diff(ts) > 0])
        if keep.sum() == 1:
            return np.broadcast_to(th[0], t.shape + th.shape[-1:]).copy()
        dth = self.info["dh_dt"][order][keep]
        return CubicHermiteSpline(ts[keep], th[keep], dth, axis=0)(t)

    def summary(self) -> str:
        lines = [
            f"h(θ, t) by {self.method}: μ1 = {self.mu1:.6g}, μ2 = {self.mu2:.6g}, rate bound "
            f"(μ1−μ2)/(2μ1−μ2) = {self.rate_bound:.4g}, observed rate "
            f"{self.observed_rate:.4g}; {self.wall_time:.3g} s (+{self.compile_time:.3g} s "
            "compile)",
            f"{'t':>10}  {'‖h‖':>12}  {'rel. error':>10}  {'rate':>7}  h",
        ]
        for t, th, e, r in zip(self.ts, self.thetas, self.rel_error, self.rate, strict=True):
            vals = " ".join(f"{v:+.10e}" for v in th)
            lines.append(f"{t:10.4g}  {np.linalg.norm(th):12.6g}  {e:10.2e}  {r:7.3f}  {vals}")
        return "\n".join(lines)


@dataclass(frozen=True, eq=False)
class LimitEndpoint:
    """lim_{t→∞} h(θ, t) as reached by the flow's stopping rules (Theorem 2).

    Attributes:
        theta, loss: the end point and ℓ there.
        t: the limiting time at which the flow stopped.
        status: the ``Status`` of the flow from the start point (CONVERGED: ℓ ≤ threshold;
            HORIZON: t1 reached first — the end point is then a finite-horizon one;
            STATIONARY: a local minimum above the threshold; failures as in ``Status``).
        start_t, start_theta: where on the limiting trajectory the flow started.
        trajectory: the ``Trajectory`` of that flow (flow time 0 = limiting time start_t).
    """

    theta: np.ndarray
    loss: float
    t: float
    status: Status
    start_t: float
    start_theta: np.ndarray
    method: str
    trajectory: object = None

    @property
    def ok(self) -> bool:
        """True unless the flow failed (``Status.ok``: CONVERGED, HORIZON, STATIONARY)."""
        return Status(self.status).ok

    @property
    def converged(self) -> bool:
        """True if the flow reached ℓ ≤ loss_threshold (a global minimum for ℓ ≥ 0)."""
        return Status(self.status) is Status.CONVERGED

    @property
    def message(self) -> str:
        return Status(self.status).message


# ====================================================================== the two methods
def _prepare(system: FlowSystem, theta, ts):
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
    _check_mu1(system.mu1)
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


def exponent_candidates(system: FlowSystem, max_exponent: float = 8.0) -> np.ndarray:
    """The exponents an α-expansion of φ(αθ, t + log(1/α)/μ1) − h(θ, t) can contain:
    sums i + Σ_j n_j (1 − μ_j/μ1) of integers (the nonlinear terms) and the gaps of the
    lower eigenvalues μ_j of DF(0) (the off-manifold components). For a network with
    σ'(0) ≠ 0 the spectrum is {μ1, 0, −μ1}, so these are the integers."""
    w = np.unique(np.round(np.linalg.eigvals(system.J0).real / system.mu1, 10))
    gaps = [1.0] + [1.0 - x for x in w if x < 1 - 1e-8]
    cands = {0.0}
    frontier = {0.0}
    while frontier:
        new = {round(c + g, 10) for c in frontier for g in gaps if c + g <= max_exponent}
        frontier = new - cands
        cands |= new
    return np.array(sorted(cands - {0.0}))


def _generalized_richardson(A, q, noise, candidates, snap=0.15, carry=()):
    """Extrapolate A_0, A_1, … (errors ~ Σ c_j α^{r_j}, α_k = α_0 q^k) to α = 0.

    At each level the exponent r is *observed* from the two smallest-α differences of the
    current column, then snapped to the nearest admissible exponent if within ``snap``·r
    (an inexact exponent would leave a residual proportional to its error) and eliminated:
    T' = (T_{k+1} − q^r T_k)/(1 − q^r). Admissible: ``candidates`` above the last exponent
    used, or that exponent once more — a resonance (e.g. 2 = 1 − (−μ1)/μ1 = 1 + 1) brings
    α^r log α terms, i.e. (a + b k) q^{rk}, which a repeated elimination removes. Stops
    when the last difference is at the noise floor (``noise``: the measured noise of one
    entry, amplified by the levels so far), keeping two entries for the error estimate.
    The same eliminations are applied to each sequence in ``carry`` (a reference solve,
    or the identity for the weights of the linear combination).

    Returns (value, truncation error estimate, observed first rate or NaN, exponents used,
    the carried sequences' values)."""
    col = np.asarray(A)
    carry = [np.asarray(c) for c in carry]
    used, lq, amp = [], np.log(1.0 / q), 1.0
    r_obs0 = np.nan

    def admissible():
        if not used:
            return candidates
        last = used[-1]
        again = [last] if used.count(last) < 2 else []
        return np.concatenate([again, candidates[candidates > last + 1e-9]])

    while len(col) >= 3:
        d = np.linalg.norm(np.diff(col, axis=0), axis=-1)
        if d[-1] <= 4 * noise * amp:
            break
        r_hat = np.log(d[-2] / d[-1]) / lq if d[-2] > 4 * noise * amp else np.nan
        if not used:
            r_obs0 = r_hat
        c = admissible()
        # Observed rates that fall along the column (towards small α), well above the
        # noise, betray a lower exponent not yet dominant — typically a resonance's
        # α^r log α beside a larger α^{r'} term: eliminate the largest admissible exponent
        # at or below the last observed rate, not the nearest one.
        falling = (len(d) >= 3 and np.isfinite(r_hat) and d[-1] > 100 * noise * amp
                   and np.log(d[-3] / d[-2]) / lq - r_hat > 0.03
                   and np.any(c <= r_hat))
        if falling:
            r = float(np.max(c[c <= r_hat]))
        elif np.isfinite(r_hat) and c.size and np.min(np.abs(c - r_hat)) <= snap * abs(r_hat):
            r = float(c[np.argmin(np.abs(c - r_hat))])
        elif np.isfinite(r_hat) and r_hat > (used[-1] if used else 0.0):
            r = float(r_hat)
        elif c.size:
            r = float(c[0])
        else:
            break
        rho = q**r
        col = (col[1:] - rho * col[:-1]) / (1 - rho)
        carry = [(x[1:] - rho * x[:-1]) / (1 - rho) for x in carry]
        amp *= (1 + rho) / (1 - rho)
        used.append(r)
    d_last = float(np.linalg.norm(col[-1] - col[-2]))
    if carry and np.shape(carry[0]) == np.shape(col):
        # the reference sequence (carry[0]) has the same truncation but less flow noise:
        # its last difference, if smaller, is the better measure of the truncation
        d_last = min(d_last, float(np.linalg.norm(carry[0][-1] - carry[0][-2])))
    c = admissible()
    r_next = float(c[0]) if c.size else (used[-1] if used else 0.0) + 1.0
    if used and len(col) >= 3:
        # the next exponent lies between the last one repeated (a resonance, α^r log α: the
        # conservative choice) and the next new candidate; the final column's observed
        # decay (the reference's, less noisy) decides where, if it is above the noise
        ref_col = carry[0] if carry and np.shape(carry[0]) == np.shape(col) else col
        dd = np.linalg.norm(np.diff(ref_col, axis=0), axis=-1)
        new = c[c > used[-1] + 1e-9]
        if new.size and dd[-1] > 0 and dd[-2] > 4 * noise * amp:
            r_seen = np.log(dd[-2] / dd[-1]) / lq
            r_next = float(min(max(r_seen, r_next), new[0]))
    rho = q**r_next
    # The last difference is dominated by the next term of the expansion (or, at the noise
    # floor, bounds it), q^{r_next}/(1 − q^{r_next}) of it remaining in the value. The
    # flows' errors (noise and the part common to all α_k, invisible in the differences)
    # are measured separately, by the reference solve carried along.
    err = d_last * rho / (1 - rho)
    return col[-1], err, r_obs0, used, [x[-1] for x in carry]


def _reference_grid(save_ts, size):
    """The reference solve's save grid, at most ``size`` points: ``save_ts`` with the
    midpoints of the longest intervals between consecutive saves (and of 0 and the first),
    as many as fit; and where ``save_ts`` lie in it. The steps of both solves land on their
    saves; where the save spacing, not the tolerance, limits the steps, a reference on the
    same grid would repeat the result's steps — and their error, which the difference then
    misses (measured: the manifold method's continuation at rtol 1e-9 and 1e-10 agreed to
    1e-14 where both were 1e-12 off, over its first interval). Two steps per interval make
    the reference 2^8× more accurate there. Short intervals (dense saves) matter least:
    a step much shorter than the tolerance allows is accurate anyway."""
    t = np.concatenate([[0.0], save_ts])
    length = np.diff(t)
    n_free = max(0, int(size) - len(np.unique(save_ts)))
    longest = np.argsort(-length, kind="stable")[:n_free]
    longest = longest[length[longest] > 0]
    mids = 0.5 * (t[longest] + t[longest + 1])
    grid = np.unique(np.concatenate([save_ts, mids]))
    return grid, np.searchsorted(grid, save_ts)


def _reference_flow(system, theta0, save_ts, *, rtol, solver, max_steps, min_saves=64):
    """The result's flow at rtol and the reference's at rtol/REF_RATIO on the refined grid
    (``_reference_grid``), both at ``save_ts``: (result, reference, wall times, compile).
    Both have the result's padded shape — a multiple of 64 saves, at least ``min_saves`` —
    so one compilation serves both, and the reference's extra saves take only the slots the
    result pads anyway."""
    S = len(save_ts)
    n = max(S + (-S % 64), int(min_saves))
    grid, pick = _reference_grid(save_ts, n)
    out, wall, comp = system.flow(theta0, save_ts, rtol=rtol, solver=solver,
                                  max_steps=max_steps, pad_to=n)
    ref, wall_ref, comp_ref = system.flow(theta0, grid, rtol=rtol / REF_RATIO, solver=solver,
                                          max_steps=max_steps, pad_to=n)
    return out, ref[:, pick], wall, wall_ref, comp + comp_ref


def _field_values(system, X):
    """F(x) for the rows of X (…, p)."""
    X = np.asarray(X)
    F = np.asarray(jax.vmap(system.field)(jnp.asarray(X.reshape(-1, X.shape[-1]))))
    return F.reshape(X.shape)


def _extrapolate(system, theta, ts, *, eps=1e-3, q=0.25, levels=5, rtol=1e-13,
                 solver="dopri8", max_steps=100_000):
    eps = V.in_open_interval(eps, "eps", 0.0, 1.0)
    q = V.in_open_interval(q, "q", 0.0, 1.0)
    levels = V.integer(levels, "levels", minimum=2)
    rtol, max_steps = _flow_options(system, rtol, solver, max_steps)
    theta, ts, s, ns, nth, log_tau = _prepare(system, theta, ts)
    mu1, lq = system.mu1, np.log(1.0 / q)
    # Window of each time: effective scale α‖θ‖/min(1, τ) from eps down by q^levels.
    la_top = np.log(eps) + np.minimum(0.0, log_tau) - np.log(nth)
    la_max = la_top.max()
    j0 = np.ceil((la_max - la_top) / lq - 1e-9).astype(int)
    K = int(j0.max()) + levels + 1
    K = -(-K // 4) * 4  # pad the batch to a multiple of 4: fewer recompilations
    log_alpha = la_max - lq * np.arange(K)
    idx = j0[:, None] + np.arange(levels + 1)[None, :]  # (T, L+1) flow index per entry
    T_shift = ts[:, None] - log_alpha[idx] / mu1  # shifted flow times
    if np.any(T_shift < 0):
        raise FlowtoolsError("a shifted time t + log(1/α)/μ1 is negative: lower eps.")
    uniq, inv = np.unique(T_shift.ravel(), return_inverse=True)
    save_ts = uniq
    theta0 = np.exp(log_alpha)[:, None] * theta[None, :]
    # (≥ 128 saves: room for the reference's midpoints of up to 64 save intervals — 8 times
    # × 8 levels, theory's sweeps — in one compiled shape per batch size)
    out, ref, wall, wall_ref, comp = _reference_flow(system, theta0, save_ts, rtol=rtol,
                                                     solver=solver, max_steps=max_steps,
                                                     min_saves=128)
    sel = (idx, inv.reshape(idx.shape))
    A, B = out[sel], ref[sel]  # (T, L+1, p): result and reference sequences
    tw = time.perf_counter()
    # Round-off that both solves share (so that their difference cannot show it): the save
    # times t + log(1/α_k)/μ1 and the α_k are rounded once, which moves each entry by
    # ~eps·(‖x‖ + |T|·‖F(x)‖).
    floor = _EPS * (np.linalg.norm(A, axis=-1)
                    + np.abs(T_shift) * np.linalg.norm(_field_values(system, A[:, -1]),
                                                     axis=-1)[:, None])
    values, errors, rates, all_rates, parts = [], [], [], [], []
    cands = exponent_candidates(system)
    eye = np.eye(levels + 1)
    for a, b, f in zip(A, B, floor, strict=True):
        # the noise of one entry, measured: half the largest difference of consecutive
        # (result − reference) errors (the part of the flow error that varies with α_k)
        noise = max(0.5 * float(np.max(np.linalg.norm(np.diff(a - b, axis=0), axis=-1))),
                    float(np.max(f)))
        v, e_seq, r, rs, (vb, w) = _generalized_richardson(a, q, noise, cands, carry=(b, eye))
        e_flow = _REF_GAIN * float(np.linalg.norm(v - vb))
        e_round = float(np.sqrt(np.sum((w * f) ** 2)))
        values.append(v), rates.append(r), all_rates.append(rs)
        errors.append(e_seq + e_flow + e_round)
        parts.append((e_seq, e_flow, e_round))
    wall += wall_ref + time.perf_counter() - tw
    parts = np.array(parts)
    info = dict(eps=eps, q=q, levels=levels, rtol=rtol, solver=solver, n_flows=K,
                alphas=np.exp(log_alpha), level_rates=all_rates, sequence=A,
                reference_sequence=B, reference_rtol=rtol / REF_RATIO,
                error_parts=dict(sequence=parts[:, 0], flow=parts[:, 1], round_off=parts[:, 2]),
                flow_wall_time=dict(result=wall - wall_ref, reference=wall_ref))
    return np.array(values), np.array(errors), np.array(rates), wall, comp, info


def _manifold(system, theta, ts, *, order=manifold.DEFAULT_ORDER, rtol=1e-13, solver="dopri8",
              tol=1e-17, max_steps=100_000):
    order = V.integer(order, "order", minimum=3)
    tol = V.in_open_interval(tol, "tol", 0.0, 1.0)
    rtol, max_steps = _flow_options(system, rtol, solver, max_steps)
    theta, ts, s, ns, nth, log_tau = _prepare(system, theta, ts)
    mu1 = system.mu1
    tc = time.perf_counter()
    q1 = system.V1 @ (s / ns)
    Q = manifold.ray_coefficients(system.field, q1, mu1, jacobian=system.J0, order=order)
    comp = time.perf_counter() - tc
    log_tau0 = np.log(min(manifold.safe_radius(Q, tol), 0.5 * manifold.series_radius(Q), 1e300))
    t0 = (log_tau0 - np.log(ns)) / mu1
    thetas = np.zeros((len(ts), system.p))
    errors = np.zeros(len(ts))
    flow_err = np.zeros(len(ts))
    inside = ts <= t0
    thetas[inside] = manifold.evaluate(Q, log_tau[inside])
    errors[inside] = manifold.truncation_error(Q, log_tau[inside])
    # where the series is evaluated, τ = e^{log τ} carries the rounding of log τ
    t_eff = np.abs(log_tau) / mu1
    wall, wall_ref = 0.0, 0.0
    if (~inside).any():
        x0 = manifold.evaluate(Q, log_tau0)
        order_t = np.argsort(ts[~inside])
        st = ts[~inside][order_t] - t0
        out, ref, wall, wall_ref, c2 = _reference_flow(system, x0[None], st, rtol=rtol,
                                                       solver=solver, max_steps=max_steps)
        comp += c2
        vals = np.empty((len(st), system.p))
        vals[order_t] = out[0]
        dref = np.empty(len(st))
        dref[order_t] = _REF_GAIN * np.linalg.norm(out[0] - ref[0], axis=-1)
        thetas[~inside] = vals
        # the start point's series error (relative, carried along) and the flow's error,
        # measured against the reference solve
        flow_err[~inside] = dref
        errors[~inside] = np.linalg.norm(vals, axis=-1) * tol + dref
        t_eff[~inside] = np.abs(log_tau0) / mu1 + np.abs(ts[~inside] - t0)
    dh_dt = _field_values(system, thetas)
    floor = _EPS * (np.linalg.norm(thetas, axis=-1) + t_eff * np.linalg.norm(dh_dt, axis=-1))
    errors = errors + floor
    info = dict(order=order, rtol=rtol, solver=solver, coefficients=Q, t0=t0,
                tau0=float(np.exp(log_tau0)), radius=manifold.series_radius(Q), dh_dt=dh_dt,
                reference_rtol=rtol / REF_RATIO,
                error_parts=dict(series=errors - flow_err - floor, flow=flow_err,
                                 round_off=floor),
                flow_wall_time=dict(result=wall, reference=wall_ref))
    return thetas, errors, np.full(len(ts), np.nan), wall + wall_ref, comp, info


def _flow_options(system, rtol, solver, max_steps):
    rtol = V.in_open_interval(rtol, "rtol", 0.0, 1.0)
    if system.problem is None:
        V.choice(solver, "solver", _FIELD_SOLVERS)
    else:  # checked here, before any series or flow work, as solve_flow would
        V.choice(solver, "diffrax solver", SOLVERS)
    return rtol, V.positive_int(max_steps, "max_steps")


_OPTIONS = {"extrapolate": ("eps", "q", "levels", "rtol", "solver", "max_steps"),
            "manifold": ("order", "rtol", "solver", "tol", "max_steps")}


# ====================================================================== public entry points
def _limit_system(system, theta, ts, method, opts):
    V.choice(method, "method", METHODS)
    unknown = sorted(set(opts) - set(_OPTIONS[method]))
    if unknown:
        raise FlowtoolsError(f"unknown option(s) {', '.join(unknown)} for method={method!r}: "
                             f"use {', '.join(_OPTIONS[method])}.")
    t_start = time.perf_counter()
    core = _extrapolate if method == "extrapolate" else _manifold
    thetas, err, rate, wall, comp, info = core(system, theta, ts, **opts)
    if "dh_dt" not in info:
        info["dh_dt"] = _field_values(system, thetas)
    info["total_time"] = time.perf_counter() - t_start
    ts = np.atleast_1d(np.asarray(ts, dtype=float))
    return LimitResult(ts=ts, thetas=thetas, error=err, rate=rate, rate_bound=system.rate_bound,
                       method=method, mu1=system.mu1, mu2=system.mu2, wall_time=wall,
                       compile_time=comp, info=info)


def limit(problem: Problem, theta, ts, *, method: str = "extrapolate", **options) -> LimitResult:
    """h(θ, t) = lim_{α→0} φ(αθ, t + log(1/α)/μ1) for a network problem (Theorem 1).

    Args:
        problem: the ``Problem`` (its field is −∇ℓ, μ1 = |σ'(0)|‖γ‖).
        theta: the direction θ (p,), with C(θ) ≠ 0.
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
        >>> from flowtools.limiting import limit
        >>> pb = ft.example1()
        >>> r = limit(pb, pb.init_ratio(1.0, 1.0, seed=0), [0.0, 2.0])
        >>> r.rate_bound
        0.5
    """
    return _limit_system(FlowSystem.from_problem(problem), theta, ts, method, options)


def limit_field(field: Callable, theta, ts, *, jacobian=None, method: str = "extrapolate",
                **options) -> LimitResult:
    """h(θ, t) for the flow of any C² field F with F(0) = 0 (Theorem 3): see ``limit``.

    ``field`` must be JAX-traceable (and, for method="manifold", expandable by
    ``jax.experimental.jet``); ``jacobian`` is DF(0) (computed by ``jax.jacfwd`` if None).
    """
    theta = np.asarray(theta, dtype=float)
    system = FlowSystem.from_field(field, theta.shape[-1], jacobian=jacobian)
    return _limit_system(system, theta, ts, method, options)


def compare_methods(problem_or_system, theta, ts, **options):
    """Both methods on the same grid: (extrapolate result, manifold result, relative
    difference ‖h_e − h_m‖/‖h_m‖ per time)."""
    system = problem_or_system
    if not isinstance(system, FlowSystem):
        system = FlowSystem.from_problem(system)
    e = _limit_system(system, theta, ts, "extrapolate", options.get("extrapolate", {}))
    m = _limit_system(system, theta, ts, "manifold", options.get("manifold", {}))
    diff = np.linalg.norm(e.thetas - m.thetas, axis=-1) / np.linalg.norm(m.thetas, axis=-1)
    return e, m, diff


def limit_endpoint(problem: Problem, theta, *, method: str = "manifold",
                   loss_threshold: float = 1e-15, t1: float = 1e12, rtol: float = 1e-10,
                   solver: str = "kvaerno5", start_t: float | None = None) -> LimitEndpoint:
    """lim_{t→∞} h(θ, t) (Theorem 2): the flow from a point of the limiting trajectory,
    with ``solve_flow``'s stopping rules (ℓ ≤ ``loss_threshold`` or the horizon ``t1``).

    The start point is h(θ, start_t) by ``method``; by default start_t is where the
    manifold series is still exact to 1e-17 (so no flow from tiny α is involved).
    """

    system = FlowSystem.from_problem(problem)
    V.choice(method, "method", METHODS)
    if start_t is not None:
        start_t = V.real(start_t, "start_t")
    if method == "manifold" and start_t is None:
        res = _limit_system(system, theta, [0.0], "manifold", {})
        if res.info["t0"] < 0:  # start inside the series' range: no flow involved
            start_t = float(res.info["t0"])
            res = _limit_system(system, theta, [start_t], method, {})
        else:
            start_t = 0.0
    else:
        start_t = 0.0 if start_t is None else start_t
        res = _limit_system(system, theta, [start_t], method, {})
    x0 = res.thetas[0]
    tr = solve_flow(problem, x0, t1=t1, loss_threshold=loss_threshold, rtol=rtol, solver=solver)
    return LimitEndpoint(theta=np.asarray(tr.theta_final), loss=float(tr.loss_final),
                         t=start_t + float(tr.t_final), status=Status(int(tr.status)),
                         start_t=start_t, start_theta=x0, method=method, trajectory=tr)


def aligned_times(problem: Problem, ts, theta0=None, *, reference: float = 1.0):
    """Shift flow (or GD) times onto the limiting time axis of the unit-‖C‖ direction.

    For small θ0, φ(θ0, t) ≈ h(θ0, t) = h(θ0/‖C(θ0)‖·r, t + log(‖C(θ0)‖/r)/μ1)
    (Corollary 2, r = ``reference``), so runs from different scales and seeds but equal
    C/‖C‖ fall on one curve when plotted against

        τ = t + log(‖C(θ0)‖ / r) / μ1.

    (The paper's Figures 2 and 5.) ``ts`` may be an array ((…, S), with θ0 (…, p)) or a
    ``Trajectory``, whose θ0 is then its first saved state (its t = 0).

    >>> import flowtools as ft
    >>> pb = ft.example1()
    >>> th0 = pb.init_ratio(0.5, 1e-8, seed=1)
    >>> tau = aligned_times(pb, [0.0, 1.0], th0)
    """
    from flowtools.trajectory import Trajectory

    if isinstance(ts, Trajectory):
        traj = ts
        ts = np.asarray(traj.ts)
        if theta0 is None:
            if not np.all(ts[..., 0] == 0):
                raise FlowtoolsError("the trajectory's first save is not t = 0: pass theta0.")
            theta0 = np.asarray(traj.thetas)[..., 0, :]
    if theta0 is None:
        raise FlowtoolsError("aligned_times needs θ0 (or a Trajectory saved from t = 0).")
    if not reference > 0:
        raise FlowtoolsError(f"reference must be positive, got {reference}.")
    C = np.linalg.norm(problem.imbalance(theta0), axis=-1)
    if np.any(C == 0):
        raise FlowtoolsError("C(θ0) = 0: this run has no limiting time axis (Theorem 1 (iii)).")
    shift = np.log(C / reference) / problem.mu1
    ts = np.asarray(ts, dtype=float)
    return ts + (shift[..., None] if np.ndim(shift) else shift)

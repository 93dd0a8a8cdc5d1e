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
* ``method="manifold"``: the parametrization method (``flowtools.manifold``): h(θ, t) =
  P(e^{μ1 t}·s) from a Taylor series, evaluated where its truncation error is ≤ 1e-17 and
  continued beyond by the flow from P(τ0). No flow from a tiny α is ever needed.

``limit`` takes a ``Problem``; ``limit_field`` the same for any field F (Theorem 3), with a
small diffrax integrator in log-norm coordinates. ``limit_endpoint`` gives lim_{t→∞} h with
the flow's stopping rules (Theorem 2). ``aligned_times`` puts flows and GD runs from
different initial scales on the limiting time axis (Figures 2 and 5).

    >>> import flowtools as ft, numpy as np
    >>> from flowtools.limit import limit
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

from flowtools import manifold
from flowtools._compile import compiled
from flowtools.errors import AssumptionError, FlowtoolsError
from flowtools.flow import from_lognorm, lognorm_field, solve_flow, to_lognorm
from flowtools.problem import Problem

METHODS = ("extrapolate", "manifold")


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

    def flow(self, theta0, save_ts, *, rtol, solver, max_steps=100_000):
        """States (K, S, p) at ``save_ts`` from each row of ``theta0`` (K, p)."""
        save_ts = np.asarray(save_ts, dtype=float)
        S = len(save_ts)
        # Pad to a multiple of 64 saves (repeating the last): fewer shapes, fewer compilations.
        save_ts = np.concatenate([save_ts, np.full(-S % 64, save_ts[-1])])
        t1 = float(save_ts[-1]) if save_ts[-1] > 0 else 1e-12
        if self.problem is not None:
            from flowtools.trajectory import Status

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

    def one(th0):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(vf), _FIELD_SOLVERS[solver_name](), 0.0, save_ts[-1], None,
            to_lognorm(th0), saveat=diffrax.SaveAt(ts=save_ts, fn=lambda t, y, a: from_lognorm(y)),
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=rtol * 1e-3,
                                                      pcoeff=0.4, icoeff=0.3),
            max_steps=max_steps, throw=False,
        )
        return sol.ys, sol.result == diffrax.RESULTS.successful

    return jax.vmap(one)(theta0s)


def _field_flow(field, theta0, save_ts, rtol, solver, max_steps):
    if solver not in _FIELD_SOLVERS:
        solver = "dopri8"
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
        error: (T,) estimated error ‖ĥ − h‖ (2-norm, absolute).
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
        status: ``Status`` code of the flow from the start point (CONVERGED: ℓ ≤ threshold;
            HORIZON: t1 reached first — the end point is then a finite-horizon one).
        start_t, start_theta: where on the limiting trajectory the flow started.
        trajectory: the ``Trajectory`` of that flow (flow time 0 = limiting time start_t).
    """

    theta: np.ndarray
    loss: float
    t: float
    status: int
    start_t: float
    start_theta: np.ndarray
    method: str
    trajectory: object = None

    @property
    def message(self) -> str:
        from flowtools.trajectory import Status

        return Status(int(self.status)).message


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


def _generalized_richardson(A, q, noise, candidates, snap=0.15):
    """Extrapolate A_0, A_1, … (errors ~ Σ c_j α^{r_j}, α_k = α_0 q^k) to α = 0.

    At each level the exponent r is *observed* from the two smallest-α differences of the
    current column, then snapped to the nearest admissible exponent if within ``snap``·r
    (an inexact exponent would leave a residual proportional to its error) and eliminated:
    T' = (T_{k+1} − q^r T_k)/(1 − q^r). Admissible: ``candidates`` above the last exponent
    used, or that exponent once more — a resonance (e.g. 2 = 1 − (−μ1)/μ1 = 1 + 1) brings
    α^r log α terms, i.e. (a + b k) q^{rk}, which a repeated elimination removes. Stops at
    the noise floor, keeping two entries for the error estimate.

    Returns (value, error estimate, observed first rate or NaN, exponents used)."""
    col = np.asarray(A)
    used, lq, amp = [], np.log(1.0 / q), 1.0
    r_obs0 = np.nan

    def admissible():
        if not used:
            return candidates
        last = used[-1]
        again = [last] if used.count(last) < 2 else []
        return np.concatenate([again, candidates[candidates > last + 1e-9]])

    at_noise = False
    while len(col) >= 3:
        d = np.linalg.norm(np.diff(col, axis=0), axis=-1)
        if d[-1] <= 4 * noise * amp:
            at_noise = True
            break
        r_hat = np.log(d[-2] / d[-1]) / lq if d[-2] > 4 * noise * amp else np.nan
        if not used:
            r_obs0 = r_hat
        c = admissible()
        if np.isfinite(r_hat) and c.size and np.min(np.abs(c - r_hat)) <= snap * abs(r_hat):
            r = float(c[np.argmin(np.abs(c - r_hat))])
        elif np.isfinite(r_hat) and r_hat > (used[-1] if used else 0.0):
            r = float(r_hat)
        elif c.size:
            r = float(c[0])
        else:
            break
        rho = q**r
        col = (col[1:] - rho * col[:-1]) / (1 - rho)
        amp *= (1 + rho) / (1 - rho)
        used.append(r)
    d_last = float(np.linalg.norm(col[-1] - col[-2]))
    c = admissible()
    r_next = float(c[0]) if c.size else (used[-1] if used else 0.0) + 1.0
    rho = q**r_next
    # At the noise floor the last difference measures the noise itself; otherwise it is
    # dominated by the next term of the expansion, q^{r_next}/(1 − q^{r_next}) of it remaining.
    # Flow errors common to all α_k (the shared trajectory after the escape) do not show in
    # the differences: an a-priori floor of half the assumed noise (amplified) covers them.
    err = max(d_last if at_noise else d_last * rho / (1 - rho), 0.5 * noise * amp)
    return col[-1], err, r_obs0, used


def _noise_factor(system, noise_factor):
    # The flows' error in units of rtol·‖h‖, measured against the manifold method on
    # Example 1 (solve_flow, dopri8: ~0.1) and on the closed-form field of the tests
    # (the log-norm diffrax integrator of this module: ~1).
    if noise_factor is not None:
        return float(noise_factor)
    return 0.1 if system.problem is not None else 1.0


def _extrapolate(system, theta, ts, *, eps=1e-3, q=0.25, levels=5, rtol=1e-13,
                 solver="dopri8", noise_factor=None, max_steps=100_000):
    theta, ts, s, ns, nth, log_tau = _prepare(system, theta, ts)
    if not 0 < q < 1 or levels < 2 or not 0 < eps < 1:
        raise FlowtoolsError("need 0 < q < 1, levels ≥ 2 and 0 < eps < 1.")
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
    out, wall, comp = system.flow(theta0, save_ts, rtol=rtol, solver=solver,
                                  max_steps=max_steps)
    A = out[idx, inv.reshape(idx.shape)]  # (T, L+1, p)
    tw = time.perf_counter()
    values, errors, rates, all_rates = [], [], [], []
    cands = exponent_candidates(system)
    noise_factor = _noise_factor(system, noise_factor)
    for a in A:
        noise = noise_factor * rtol * np.linalg.norm(a[-1])
        v, e, r, rs = _generalized_richardson(a, q, noise, cands)
        values.append(v), errors.append(e), rates.append(r), all_rates.append(rs)
    wall += time.perf_counter() - tw
    info = dict(eps=eps, q=q, levels=levels, rtol=rtol, solver=solver, n_flows=K,
                alphas=np.exp(log_alpha), level_rates=all_rates, sequence=A)
    return np.array(values), np.array(errors), np.array(rates), wall, comp, info


def _manifold(system, theta, ts, *, order=manifold.DEFAULT_ORDER, rtol=1e-13, solver="dopri8",
              tol=1e-17, noise_factor=None, max_steps=100_000):
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
    inside = ts <= t0
    thetas[inside] = manifold.evaluate(Q, log_tau[inside])
    errors[inside] = manifold.truncation_error(Q, log_tau[inside])
    wall = 0.0
    if (~inside).any():
        x0 = manifold.evaluate(Q, log_tau0)
        order_t = np.argsort(ts[~inside])
        st = ts[~inside][order_t] - t0
        out, wall, c2 = system.flow(x0[None], st, rtol=rtol, solver=solver, max_steps=max_steps)
        comp += c2
        vals = np.empty((len(st), system.p))
        vals[order_t] = out[0]
        thetas[~inside] = vals
        nrm = np.linalg.norm(vals, axis=-1)
        errors[~inside] = nrm * (tol + _noise_factor(system, noise_factor) * rtol)
    info = dict(order=order, rtol=rtol, solver=solver, coefficients=Q, t0=t0,
                tau0=float(np.exp(log_tau0)), radius=manifold.series_radius(Q))
    return thetas, errors, np.full(len(ts), np.nan), wall, comp, info


# ====================================================================== public entry points
def _limit_system(system, theta, ts, method, opts):
    if method not in METHODS:
        raise FlowtoolsError(f"unknown method {method!r}; use one of {METHODS}.")
    t_start = time.perf_counter()
    core = _extrapolate if method == "extrapolate" else _manifold
    thetas, err, rate, wall, comp, info = core(system, theta, ts, **opts)
    info["dh_dt"] = np.asarray(jax.vmap(system.field)(jnp.asarray(thetas)))
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
        options: extrapolate: ``eps`` (1e-3), ``q`` (0.25), ``levels`` (5), ``rtol``
            (1e-13), ``solver`` ("dopri8"), ``noise_factor`` (0.1: the flows' noise floor
            assumed when stopping the extrapolation, in units of rtol·‖h‖); manifold:
            ``order`` (9), ``rtol`` (1e-13), ``solver`` ("dopri8"), ``tol`` (1e-17, series
            truncation).

    Returns:
        ``LimitResult`` with h, the error estimate, the observed rate and Theorem 3's bound.

    Example:
        >>> import flowtools as ft
        >>> from flowtools.limit import limit
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
    if method not in METHODS:
        raise FlowtoolsError(f"unknown method {method!r}; use one of {METHODS}.")
    if method == "manifold" and start_t is None:
        res = _limit_system(system, theta, [0.0], "manifold", {})
        start_t = min(0.0, float(res.info["t0"]))
    elif start_t is None:
        start_t = 0.0
    res = _limit_system(system, theta, [start_t], method, {})
    x0 = res.thetas[0]
    tr = solve_flow(problem, x0, t1=t1, loss_threshold=loss_threshold, rtol=rtol, solver=solver)
    return LimitEndpoint(theta=np.asarray(tr.theta_final), loss=float(tr.loss_final),
                         t=start_t + float(tr.t_final), status=int(tr.status),
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

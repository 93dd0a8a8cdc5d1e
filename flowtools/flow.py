"""Gradient flow dθ/dt = −∇ℓ(θ), θ(0) = θ0, integrated in float64 to huge horizons.

Two backends behind one function, ``solve_flow``:

* ``backend="diffrax"`` (default): any diffrax solver (implicit ``kvaerno3/4/5`` for the
  stiff, slow tail; explicit ``tsit5``/``dopri5``/``dopri8``), jitted and batched.
* ``backend="scipy"``: ``scipy.integrate.solve_ivp`` (Radau, BDF or LSODA) with the exact
  Hessian as Jacobian — an independent cross-check, ~100× slower.

**Log-norm coordinates (diffrax backend).** Starting at scale α (down to 1e-20) the state
grows by 1/α before anything happens, so component-wise error control with a fixed
absolute tolerance either steps over the saddle escape (atol ≳ α·rtol) or, later, forces
relative control on components that decay to zero at a minimum (steps then never grow).
The diffrax backend therefore integrates θ = e^r·ω with

    r' = ωᵀĝ / ‖ω‖²,     ω' = ĝ − r'·ω,     ĝ = −∇ℓ(e^r ω)·e^{−r},

which is the same flow (θ' = e^r(r'ω + ω') = −∇ℓ(θ) exactly) and keeps ‖ω‖ = ‖ω0‖ = 1
invariant. Errors are then controlled relative to ‖θ‖ at every scale: one tolerance pair
serves α = 1 and α = 1e-20, and implicit steps grow geometrically once the state rests.
The scipy backend integrates θ itself with ``atol = atol_rel·‖θ0‖``.

Stopping: at ℓ ≤ ``loss_threshold`` (default 1e-15, the paper's rule; located by a root
find on log ℓ − log threshold), at a stationary point to working precision
(‖∇ℓ(θ)‖ ≤ ``gtol``·‖θ‖: status STATIONARY, the state is then constant in float64 up to
any horizon), or at ``t1``, whichever comes first. Saves at ``n_save``
log-spaced times in (0, t1] plus t = 0 and the end point.

    >>> import flowtools as ft
    >>> pb = ft.example1()
    >>> traj = ft.solve_flow(pb, pb.init_gaussian(1e-8, seed=[0, 1, 2]))
    >>> traj.summary()  # doctest: +SKIP
"""

from __future__ import annotations

import time

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from flowtools._compile import compiled
from flowtools.errors import FlowtoolsError
from flowtools.problem import Problem
from flowtools.trajectory import Status, Trajectory

SOLVERS = {
    "kvaerno3": diffrax.Kvaerno3,
    "kvaerno4": diffrax.Kvaerno4,
    "kvaerno5": diffrax.Kvaerno5,
    "tsit5": diffrax.Tsit5,
    "dopri5": diffrax.Dopri5,
    "dopri8": diffrax.Dopri8,
}
IMPLICIT = {"kvaerno3", "kvaerno4", "kvaerno5"}
# Field evaluations per step (explicit: stages, FSAL counted once; implicit: stages
# counted once per Newton iteration — we count 2 — plus a Jacobian of p columns).
_STAGES = {"kvaerno3": 4, "kvaerno4": 5, "kvaerno5": 7, "tsit5": 6, "dopri5": 6, "dopri8": 12}
SCIPY_METHODS = ("Radau", "BDF", "LSODA")


def default_save_times(t1: float, n_save: int, t_first: float = 1e-2) -> np.ndarray:
    """0 followed by ``n_save − 1`` log-spaced times from ``t_first`` to ``t1``."""
    t_first = min(t_first, t1)
    return np.concatenate([[0.0], np.geomspace(t_first, t1, n_save - 1)])


def _check_options(t1, loss_threshold, rtol, n_save):
    if not np.isfinite(t1) or t1 <= 0:
        raise FlowtoolsError(f"the horizon t1 must be positive and finite, got {t1!r}.")
    if not loss_threshold >= 0:
        raise FlowtoolsError(f"loss_threshold must be ≥ 0, got {loss_threshold!r}.")
    if not 0 < rtol < 1:
        raise FlowtoolsError(f"rtol must lie in (0, 1), got {rtol!r}.")
    if n_save < 2:
        raise FlowtoolsError(f"n_save must be at least 2, got {n_save!r}.")


def solve_flow(
    problem: Problem,
    theta0,
    *,
    t1: float = 1e12,
    loss_threshold: float = 1e-15,
    gtol: float = 1e-15,
    backend: str = "diffrax",
    solver: str = "kvaerno5",
    rtol: float = 1e-10,
    atol_rel: float = 1.0,
    n_save: int = 200,
    save_ts=None,
    max_steps: int = 50_000,
    batch_size: int = 1,
) -> Trajectory:
    """Integrate dθ/dt = −∇ℓ(θ) from ``theta0`` ((p,) or a batch (B, p)).

    Args:
        problem: the ``Problem``.
        theta0: initial state(s).
        t1: time horizon (up to 1e12 and beyond).
        loss_threshold: stop as soon as ℓ(θ) ≤ this (0 disables the stop).
        gtol: stop as stationary once ‖∇ℓ(θ)‖ ≤ gtol·‖θ‖ (diffrax backend). At a minimum
            this relative gradient sits at its round-off floor (~2e-16 on Example 1),
            where the state no longer moves in float64 and a step controller would see
            only noise; 0 disables the stop.
        backend: ``"diffrax"`` or ``"scipy"``.
        solver: diffrax: one of ``SOLVERS``; scipy: one of ``SCIPY_METHODS``.
        rtol: relative tolerance; ``atol = rtol·atol_rel`` in log-norm coordinates
            (diffrax) or ``atol = rtol·atol_rel·‖θ0‖`` (scipy).
        n_save: number of saved times (0 and log-spaced up to t1) if ``save_ts`` is None.
        save_ts: explicit increasing save times in [0, t1]; the diffrax solver then steps
            exactly onto them (saved states carry the step accuracy, not the dense
            interpolant's). The default log-spaced saves are interpolated.
        max_steps: step budget per trajectory (diffrax; compile-time constant).
        batch_size: trajectories integrated in lockstep per chunk (diffrax). A chunk runs
            until its slowest member ends, so 1 (each trajectory takes its own steps) is
            fastest for heterogeneous batches such as many seeds (400 seeds of Example 1:
            16 s at 1, 18 s at 8, 23 s at 32); similar members (the α sequence of
            ``flowtools.limit``) gain from larger chunks.

    Returns:
        A ``Trajectory`` (batched if ``theta0`` is (B, p)); check ``status``.
    """
    theta0 = problem.check_theta(theta0)
    _check_options(t1, loss_threshold, rtol, n_save)
    step_to_saves = save_ts is not None
    if save_ts is None:
        save_ts = default_save_times(t1, n_save)
    save_ts = np.asarray(save_ts, dtype=float)
    if save_ts.ndim != 1 or np.any(np.diff(save_ts) < 0) or save_ts[0] < 0 or save_ts[-1] > t1:
        raise FlowtoolsError("save_ts must be a 1-d increasing array inside [0, t1].")
    if np.any(np.linalg.norm(np.atleast_2d(theta0), axis=-1) == 0):
        raise FlowtoolsError(
            "θ0 = 0 is a critical point (the flow stays there); start from a non-zero θ0."
        )
    info = dict(t1=t1, loss_threshold=loss_threshold, rtol=rtol, atol_rel=atol_rel)
    if backend == "diffrax":
        if solver not in SOLVERS:
            raise FlowtoolsError(
                f"unknown diffrax solver {solver!r}; use one of {sorted(SOLVERS)}."
            )
        return _solve_diffrax(problem, theta0, t1, loss_threshold, gtol, solver, rtol, atol_rel,
                              save_ts, max_steps, batch_size, step_to_saves, info)
    if backend == "scipy":
        if solver not in SCIPY_METHODS:
            solver = "Radau"
        return _solve_scipy(problem, theta0, t1, loss_threshold, solver, rtol, atol_rel,
                            save_ts, info)
    raise FlowtoolsError(f"unknown backend {backend!r}; use 'diffrax' or 'scipy'.")


# ---------------------------------------------------------------------- diffrax backend
def to_lognorm(theta):
    """θ ↦ y = (r, ω) with θ = e^r ω, ‖ω‖ = 1."""
    nrm = jnp.linalg.norm(theta)
    return jnp.concatenate([jnp.log(nrm)[None], theta / nrm])


def from_lognorm(y):
    """y = (r, ω) ↦ θ = e^r ω."""
    return jnp.exp(y[0]) * y[1:]


def lognorm_field(field):
    """A field F(θ, args) as a diffrax vector field in log-norm coordinates y = (r, ω):
    r' = ωᵀĝ/‖ω‖², ω' = ĝ − r'ω with ĝ = F(e^r ω)·e^{−r} (so that (e^r ω)' = F)."""

    def vf(t, y, args):
        r, om = y[0], y[1:]
        g = field(jnp.exp(r) * om, args) * jnp.exp(-r)
        dr = jnp.dot(om, g) / jnp.dot(om, om)
        return jnp.concatenate([dr[None], g - dr * om])

    return vf


_lognorm_field = lognorm_field(lambda theta, problem: problem.field(theta))


def _log_loss_gap(t, y, problem, threshold, **kwargs):
    # finite everywhere (ℓ may be exactly 0 at a minimum); threshold 0: never fires
    loss = jnp.maximum(problem.loss(from_lognorm(y)), 1e-300)
    return jnp.where(threshold > 0, jnp.log(loss) - jnp.log(jnp.maximum(threshold, 1e-300)),
                     1.0)


def _log_grad_gap(t, y, problem, gtol):
    # ‖∇ℓ(θ)‖/‖θ‖ = ‖ĝ‖ (‖ω‖ = 1): the relative gradient, ~1e-16 at a minimum
    g = problem.grad(from_lognorm(y)) * jnp.exp(-y[0])
    gap = jnp.log(jnp.linalg.norm(g) + 1e-300) - jnp.log(jnp.maximum(gtol, 1e-300))
    return jnp.where(gtol > 0, gap, 1.0)  # gtol 0: never fires


def _save_fn(t, y, problem):
    theta = from_lognorm(y)
    return theta, problem.loss(theta)


class _TimeBisection(optx.Bisection):
    """Bisection that stops on the width of the time bracket alone: optimistix's also asks
    |cond| < atol, which a condition with a jump (or round-off noise) never meets."""

    def terminate(self, fn, y, args, options, state, tags):
        width = jnp.abs(state.lower - state.upper)
        return width < self.atol + self.rtol * jnp.abs(y), optx.RESULTS.successful


def _make_solver(name, rtol, atol):
    if name in IMPLICIT:
        # Newton (chord) iterations accepted at kappa = 1 times the step tolerance: tighter
        # kappa multiplies rejected steps without changing the solution beyond rtol.
        return SOLVERS[name](root_finder=diffrax.VeryChord(rtol=rtol, atol=atol, kappa=1.0))
    return SOLVERS[name]()


@eqx.filter_jit
def _diffrax_batch(problem, theta0s, t1, threshold, gtol, rtol, atol, save_ts, solver_name,
                   max_steps, batch_size, step_to_saves):
    solver = _make_solver(solver_name, rtol, atol)
    term = diffrax.ODETerm(_lognorm_field)
    # A PI controller (Söderlind's (0.4, 0.3)) keeps rejections near 10 % where the
    # default I controller rejected ~45 % of Kvaerno5's steps on Example 1.
    controller = diffrax.PIDController(rtol=rtol, atol=atol, pcoeff=0.4, icoeff=0.3)
    if step_to_saves:
        # Steps land exactly on the save times, so saved states carry the step accuracy
        # rather than the (third-order Hermite, for Kvaerno) interpolant's. Not the default
        # for log-spaced saves: with clipped steps the controller was seen to stall at
        # t ~ 1e10 in the slow polynomial tail of Example 1.
        controller = diffrax.ClipStepSizeController(controller, step_ts=save_ts)
    # One scalar condition (the root finder takes one): log ℓ − log threshold, switched to
    # −1 once the relative gradient is at its floor. Bisection on time alone locates either.
    event = diffrax.Event(
        lambda t, y, args, **kw: jnp.where(_log_grad_gap(t, y, args, gtol) <= 0, -1.0,
                                           _log_loss_gap(t, y, args, threshold)),
        # conditions go from > 0 to ≤ 0: flip=True fixes the bracket's orientation, so
        # round-off noise at the ends can neither raise nor send the search outside it
        root_finder=_TimeBisection(rtol=1e-12, atol=1e-6, flip=True),
    )

    def one(theta0):
        sol = diffrax.diffeqsolve(
            term, solver, 0.0, t1, None, to_lognorm(theta0), args=problem,
            saveat=diffrax.SaveAt(ts=save_ts, t1=True, fn=_save_fn),
            stepsize_controller=controller, event=event, max_steps=max_steps,
            adjoint=diffrax.ForwardMode(), throw=False,
        )
        thetas, losses = sol.ys
        # sol.result: successful / event_occurred / max_steps_reached / other failures
        res = sol.result
        status = jnp.where(
            res == diffrax.RESULTS.event_occurred,
            Status.CONVERGED,  # or STATIONARY: told apart from the final loss below
            jnp.where(res == diffrax.RESULTS.successful, Status.HORIZON,
                      jnp.where(res == diffrax.RESULTS.max_steps_reached, Status.MAX_STEPS,
                                Status.SOLVER_FAILED)))
        stats = sol.stats
        return (sol.ts, thetas, losses, status, stats["num_accepted_steps"],
                stats["num_rejected_steps"])

    return jax.lax.map(one, theta0s, batch_size=batch_size)


def _solve_diffrax(problem, theta0, t1, threshold, gtol, solver, rtol, atol_rel, save_ts,
                   max_steps, batch_size, step_to_saves, info):
    single = theta0.ndim == 1
    batch = np.atleast_2d(theta0)
    batch_size = int(min(batch_size, len(batch)))
    args = (problem, jnp.asarray(batch), jnp.float64(t1), jnp.float64(threshold),
            jnp.float64(gtol), jnp.float64(rtol), jnp.float64(rtol * atol_rel),
            jnp.asarray(save_ts),
            solver, max_steps, batch_size, step_to_saves)
    exe, compile_time = compiled(_diffrax_batch, *args)
    tw = time.perf_counter()
    out = exe(*args)
    out = jax.block_until_ready(out)
    wall = time.perf_counter() - tw
    ts, thetas, losses, status, acc, rej = map(np.asarray, out)
    # diffrax writes the end point (SaveAt t1=True) right after the last save made before
    # the end, and pads with inf: the end point is the last finite entry of each row.
    S = len(save_ts)
    rows = np.arange(len(ts))
    last = np.isfinite(ts).sum(axis=1) - 1
    tf, thf, lf = ts[rows, last], thetas[rows, last], losses[rows, last]
    dead = np.arange(S + 1)[None, :] >= last[:, None]
    dead[:, -1] = True
    ts, thetas, losses = ts.copy(), thetas.copy(), losses.copy()
    ts[dead], thetas[dead], losses[dead] = np.nan, np.nan, np.nan
    ts_s, th_s, ls_s = ts[:, :S], thetas[:, :S], losses[:, :S]
    status = np.where(np.isfinite(lf) | (status == Status.MAX_STEPS), status, Status.NONFINITE)
    # the event fires for ℓ ≤ threshold or ‖∇ℓ‖ ≤ gtol‖θ‖: the final loss says which
    status = np.where((status == Status.CONVERGED) & (lf > threshold * (1 + 1e-5)),
                      Status.STATIONARY, status)
    p = problem.n_params
    per_step = _STAGES[solver] * (2 if solver in IMPLICIT else 1)
    evals = (acc + rej) * per_step + (acc + rej) * p * (solver in IMPLICIT)
    traj = Trajectory(
        ts=ts_s, thetas=th_s, losses=ls_s, t_final=tf, theta_final=thf,
        loss_final=lf, status=status.astype(np.int8), steps=acc,
        grad_evals=evals, wall_time=wall, compile_time=compile_time,
        method=f"diffrax:{solver}", info=dict(info, rejected_steps=rej.tolist(),
                                              grad_evals="estimate: steps×stages"),
    )
    return traj[0] if single else traj


# ---------------------------------------------------------------------- scipy backend
def _solve_scipy(problem, theta0, t1, threshold, method, rtol, atol_rel, save_ts, info):
    from scipy.integrate import solve_ivp

    f = jax.jit(lambda y: problem.field(y))
    jac = jax.jit(lambda y: -problem.hessian(y))
    loss = jax.jit(lambda y: problem.loss(y))
    single = theta0.ndim == 1
    batch = np.atleast_2d(theta0)
    tc = time.perf_counter()
    jax.block_until_ready((f(batch[0]), jac(batch[0]), loss(batch[0])))
    compile_time = time.perf_counter() - tc

    def event(t, y):
        return np.log(max(float(loss(y)), 1e-300)) - np.log(threshold) if threshold > 0 else 1.0

    event.terminal = True
    event.direction = -1
    rows = []
    tw = time.perf_counter()
    for th0 in batch:
        atol = rtol * atol_rel * np.linalg.norm(th0)
        sol = solve_ivp(lambda t, y: np.asarray(f(y)), (0.0, t1), th0, method=method,
                        t_eval=save_ts, events=event, rtol=rtol, atol=atol,
                        jac=lambda t, y: np.asarray(jac(y)))
        S = len(save_ts)
        ts = np.full(S, np.nan)
        th = np.full((S, len(th0)), np.nan)
        ts[: sol.t.size], th[: sol.t.size] = sol.t, sol.y.T
        ls = np.array([float(loss(v)) if np.isfinite(v).all() else np.nan for v in th])
        if sol.status == 1:
            st, tf, yf = Status.CONVERGED, sol.t_events[0][0], sol.y_events[0][0]
        elif sol.status == 0:
            st, tf, yf = Status.HORIZON, sol.t[-1], sol.y[:, -1]
        else:
            st, tf, yf = Status.SOLVER_FAILED, sol.t[-1] if sol.t.size else 0.0, (
                sol.y[:, -1] if sol.t.size else th0)
        if not np.all(np.isfinite(yf)):
            st = Status.NONFINITE
        rows.append((ts, th, ls, tf, yf, float(loss(yf)), int(st), sol.nfev + sol.njev * len(th0),
                     sol.nfev))
    wall = time.perf_counter() - tw
    cols = list(zip(*rows, strict=True))
    traj = Trajectory(
        ts=np.stack(cols[0]), thetas=np.stack(cols[1]), losses=np.stack(cols[2]),
        t_final=np.array(cols[3]), theta_final=np.stack(cols[4]), loss_final=np.array(cols[5]),
        status=np.array(cols[6], dtype=np.int8), steps=np.array(cols[8]),
        grad_evals=np.array(cols[7]), wall_time=wall, compile_time=compile_time,
        method=f"scipy:{method}", info=dict(info, steps="scipy nfev (no step count exposed)"),
    )
    return traj[0] if single else traj

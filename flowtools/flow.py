"""Gradient flow dθ/dt = −∇ℓ(θ), θ(0) = θ0, integrated in float64 to huge horizons.

Two backends behind one function, ``solve_flow``:

* ``backend="diffrax"`` (default): any diffrax solver (implicit ``kvaerno3/4/5`` for the
  stiff, slow tail; explicit ``tsit5``/``dopri5``/``dopri8``), jitted and batched.
* ``backend="scipy"``: ``scipy.integrate.solve_ivp`` (Radau, BDF or LSODA) with the exact
  Hessian as Jacobian — an independent cross-check, ~100× slower
  (``flowtools.integrate.scipy_backend``).

**Log-norm coordinates (diffrax backend).** The diffrax backend integrates θ = e^r·ω
(‖ω‖ = 1) through the integrator core (``flowtools.integrate``; the mathematics is in
``flowtools.integrate.coords``): errors are controlled relative to ‖θ‖ at every scale, so
one tolerance pair serves α = 1 and α = 1e-20, and implicit steps grow geometrically once
the state rests. The scipy backend integrates θ itself with ``atol = atol_rel·rtol·‖θ0‖``.

Any model of ``flowtools.models`` (the paper's ``Problem``, a ``LossModel`` wrapping a JAX
loss, …) can be integrated: the flow needs only ``loss`` and its autodiff gradient.

Stopping: at ℓ ≤ ``loss_threshold`` (default 1e-15, the paper's rule; located by a root
find on log ℓ − log threshold, aimed 1 % below it so that round-off cannot put the reported
ℓ_final above it: CONVERGED always means ℓ_final ≤ threshold,
``flowtools.status.decide_status``), at a stationary point to working precision
(‖∇ℓ(θ)‖ ≤ ``gtol``·‖θ‖: status STATIONARY, the state is then constant in float64 up to
any horizon), or at ``t1``, whichever comes first. By default there is no horizon
(``t1=None``): a flow runs until its loss threshold, a certified stationary end or
``max_steps`` — slow tails cost steps like log t (implicit steps grow in proportion to t), not
like t, so no horizon needs guessing. Saves at ``n_save`` log-spaced times in (0, t1] (to
``SAVE_T_MAX`` = 1e12 without a horizon) plus t = 0 and the end point.

    >>> import flowtools as ft
    >>> pb = ft.example1()
    >>> traj = ft.solve_flow(pb, pb.init_gaussian(1e-8, seed=[0, 1, 2]))
    >>> [ft.Status(int(s)).name for s in traj.status]
    ['CONVERGED', 'CONVERGED', 'CONVERGED']
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from flowtools import _validate as V
from flowtools.certify import certify_ends, splice, stack_rows
from flowtools.errors import FlowtoolsError
from flowtools.integrate import SOLVERS, IntegratorOptions, integrate
from flowtools.integrate.coords import norm as _norm
from flowtools.integrate.core import _bucket
from flowtools.integrate.options import UNBOUNDED_T1
from flowtools.integrate.scipy_backend import SCIPY_METHODS, SCIPY_T1, solve_scipy
from flowtools.models import AbstractModel
from flowtools.models.base import check_model
from flowtools.status import Status
from flowtools.trajectory import Trajectory

# "auto" picks the implicit Kvaerno5 up to this many parameters, Dopri8 above it
IMPLICIT_MAX_PARAMS = 256
# The last default save time of a flow without a horizon (t1=None): the old default horizon,
# so that such a flow is saved on the grid it always was (its end point, however late, is
# ``Trajectory.t_final`` / ``theta_final``).
SAVE_T_MAX = 1e12
# Without a horizon, a flow resumed after a stationarity stop that was no end (a degenerate
# tail, ``flowtools.certify``) has no stationarity stop of its own: it runs in stages of this
# factor in time, each stage end checked like a stop, so that one that settles at a minimum
# (the scale-1e100 plateau of Example 1: ℓ = 0.819 from t ≈ 1e16) ends STATIONARY rather
# than resting until ``max_steps``.
RESUME_SPAN = 1e4


def default_save_times(t1: float | None, n_save: int, t_first: float = 1e-2) -> np.ndarray:
    """0 followed by ``n_save − 1`` log-spaced times from ``t_first`` to ``t1`` (None: no
    horizon, to ``SAVE_T_MAX``).

        >>> default_save_times(None, 4).tolist()
        [0.0, 0.01, 100000.0, 1000000000000.0]
    """
    t1 = SAVE_T_MAX if t1 is None else t1
    t_first = min(t_first, t1)
    return np.concatenate([[0.0], np.geomspace(t_first, t1, n_save - 1)])


def solve_flow(
    problem: AbstractModel,
    theta0,
    *,
    t1: float | None = None,
    t0=0.0,
    loss_threshold: float = 1e-15,
    gtol: float = 1e-15,
    backend: str = "diffrax",
    solver: str = "auto",
    newton: str = "stage",
    rtol: float = 1e-10,
    atol_rel: float = 1.0,
    n_save: int = 200,
    save_ts=None,
    max_steps: int = 50_000,
    batch_size: int | None = None,
    workers: int | None = None,
) -> Trajectory:
    """Integrate dθ/dt = −∇ℓ(θ) from ``theta0`` ((p,) or a batch (B, p)).

    Args:
        problem: the model (any ``flowtools.models.AbstractModel``).
        theta0: initial state(s).
        t1: the time horizon: a flow that has not reached its loss threshold (or a
            stationary end) by then ends there, HORIZON. None (the default): no horizon —
            the flow runs until its loss threshold, a certified stationary end or
            ``max_steps`` (diffrax integrates to ``UNBOUNDED_T1`` = 1e300, a bound of float64
            time, not a time scale); the scipy backend, which has neither the stationarity
            stop nor a step budget, then stops at ``SCIPY_T1`` = 1e12. With both stops
            disabled (``loss_threshold=0, gtol=0``) give a horizon, or the flow runs to
            ``max_steps``.
        t0: the start time, a float or one per member ((B,), in [0, t1)); default 0. The
            field is autonomous, so a later start only shifts time: a flow continued from
            another's end point (``t0=tr.t_final``, ``theta0=tr.theta_final``) is the same
            flow, saved on the same time grid (saves before t0 are NaN), its ``t_final``
            the time on the whole flow (``flowtools.certify.splice`` joins the two). A
            start after the last save time runs in its own time t − t0 (from t0 ≈ 1e15 on,
            an O(1) step is below t0's float64 spacing and would not advance t). diffrax
            only.
        loss_threshold: stop as soon as ℓ(θ) ≤ this (0 disables the stop). A start at or
            below it ends at once: CONVERGED at t = t0 with 0 steps.
        gtol: stop once ‖∇ℓ(θ)‖ ≤ gtol·‖θ‖ (diffrax backend). At a minimum this relative
            gradient sits at its round-off floor (~2e-16 on Example 1), where the state no
            longer moves in float64 and a step controller would see only noise; 0 disables
            the stop. Such an end is then checked (``flowtools.certify``): STATIONARY if
            ∇²ℓ is positive semi-definite, Newton's step predicts no decrease of the loss
            beyond round-off and the loss no longer falls on the time scale reached (a
            minimum); NOT_MINIMUM (a failure) at a saddle; and where the loss is still
            falling (a degenerate tail, ℓ ∝ t^{−k}) the stop is no end: the flow is
            resumed from there without it (``info["resumed"]``: members, stop time and
            loss; steps add up) — without a horizon in stages of ``RESUME_SPAN`` = 1e4 in
            time, each stage end checked like a stop. The numbers are in
            ``info["stationary_check"]``.
        backend: ``"diffrax"`` or ``"scipy"``.
        solver: diffrax: "auto" (the default: ``kvaerno5``, implicit with the exact Hessian,
            up to ``IMPLICIT_MAX_PARAMS`` parameters; ``dopri8``, explicit with memory and
            cost O(p) per stage, above — a dense p × p Jacobian per Newton iterate is what
            made width 1000 take minutes) or one of ``SOLVERS``; scipy: one of
            ``SCIPY_METHODS``.
        newton: the implicit solvers' stage iteration: "stage" (the exact Hessian at the
            start of each stage; steps grow in proportion to t in slow tails), "full"
            (Newton: a Hessian at every iterate) or "step" (one per step: 160× more steps
            on the Figure-4 tail). See ``flowtools.integrate.IntegratorOptions``.
        rtol: relative tolerance; ``atol = rtol·atol_rel`` in log-norm coordinates
            (diffrax) or ``atol = rtol·atol_rel·‖θ0‖`` (scipy).
        n_save: number of saved times if ``save_ts`` is None: 0 and log-spaced from 1e-2
            up to t1 (without a horizon, up to ``SAVE_T_MAX`` = 1e12), see
            ``default_save_times``; the end point is saved in any case.
        save_ts: explicit non-decreasing save times in [0, t1]; the diffrax solver then
            steps exactly onto them (saved states carry the step accuracy, not the dense
            interpolant's). The default log-spaced saves are interpolated.
        max_steps: step budget per trajectory (diffrax; compile-time constant).
        batch_size: trajectories integrated in lockstep per chunk (diffrax; each member
            keeps its own step sizes, masked once it has ended). A chunk runs until its
            slowest member ends, but a lockstep step costs far less per member: on Example
            1 (one core, identical members) 128 µs per member-step at 1, 61 at 8, 33 at 64,
            34 at 256. None (the default): 64 up to ``IMPLICIT_MAX_PARAMS`` parameters
            (the spread of step counts of 400 seeds, max/median 1.8, costs less than
            lockstep saves), 1 above (a wide model's step is compute-bound, so lockstep
            saves nothing and one member per call lets the workers share a small batch).
            1 lets every trajectory take its own time (a batch with a few very slow
            members).
        workers: threads integrating parts of a batch at once (diffrax; default: the
            machine's cores). The result does not depend on it.

    Returns:
        A ``Trajectory`` (batched if ``theta0`` is (B, p)); check ``status``.

    Raises:
        FlowtoolsError: for an invalid option (before any work), or when an implicit
            solver's dense Jacobian would not fit in memory (use an explicit solver).
    """
    theta0 = check_model(problem, "solve_flow").check_theta(theta0)
    backend = V.choice(backend, "backend", ("diffrax", "scipy"))
    horizon = t1  # None: no horizon
    if t1 is None:
        t1 = SCIPY_T1 if backend == "scipy" else UNBOUNDED_T1
    else:
        t1 = V.positive_float(t1, "the horizon t1")
    rtol = V.in_open_interval(rtol, "rtol", 0.0, 1.0)
    atol_rel = V.positive_float(atol_rel, "atol_rel")
    n_save = V.integer(n_save, "n_save", minimum=2)
    if backend == "diffrax":
        # every integrator setting validated once (unknown solver names raise)
        if solver == "auto":
            solver = "kvaerno5" if problem.n_params <= IMPLICIT_MAX_PARAMS else "dopri8"
        solver = V.choice(solver, "diffrax solver", ("auto", *SOLVERS))
        if batch_size is None:
            batch_size = 64 if problem.n_params <= IMPLICIT_MAX_PARAMS else 1
        opts = IntegratorOptions(solver=solver,
                                 newton=newton, rtol=rtol, workers=workers, atol=rtol * atol_rel,
                                 clip_to_saves=save_ts is not None, max_steps=max_steps,
                                 batch_size=batch_size, t1=t1,
                                 loss_threshold=loss_threshold, gtol=gtol)
        loss_threshold, gtol = opts.loss_threshold, opts.gtol
    else:
        solver = V.choice("Radau" if solver == "auto" else solver, "scipy solver",
                          SCIPY_METHODS)
        loss_threshold = V.loss_threshold(loss_threshold)
        gtol = V.nonnegative_float(gtol, "gtol", hint=" (0 disables the stationarity stop)")
        # the diffrax-only options are checked by the one validator all the same
        IntegratorOptions(newton=newton, max_steps=max_steps, workers=workers,
                          batch_size=1 if batch_size is None else batch_size)
        p = problem.n_params
        V.memory(8.0 * p * p * 6, f"the implicit solver scipy:{solver} (dense {p}×{p} "
                 "Jacobians)", "use the diffrax backend with an explicit solver "
                 "(solver='dopri8' or 'tsit5': memory O(p) per trajectory), or a smaller model")
    if save_ts is None:
        save_ts = default_save_times(horizon, n_save)  # SCIPY_T1 is SAVE_T_MAX
    save_ts = V.increasing_times(save_ts, "save_ts", 0.0, t1)
    info = dict(t1=t1, loss_threshold=loss_threshold, gtol=gtol, rtol=rtol, atol_rel=atol_rel)
    single = theta0.ndim == 1
    batch = np.atleast_2d(theta0)
    t0s = _start_times(t0, len(batch), t1, backend)
    # Stops that hold at the start (events fire only on a crossing): end there, 0 steps.
    loss0, relg0 = (np.asarray(v) for v in _start_values(problem, jnp.asarray(batch)))
    at_start = np.where(loss0 <= loss_threshold, Status.CONVERGED,
                        np.where((relg0 <= gtol) & (backend == "diffrax"),
                                 Status.STATIONARY, -1))
    overflow = ~(np.isfinite(loss0) & np.isfinite(relg0))
    if overflow.any():  # a rule for every model: the flow is defined only where ℓ is finite
        i = int(np.flatnonzero(overflow)[0])
        top = float(np.max(np.abs(batch[i])))  # ‖θ0‖ without overflowing its squares
        size = top * float(np.linalg.norm(batch[i] / top)) if top > 0 else 0.0
        raise FlowtoolsError(
            f"ℓ(θ0) or ∇ℓ(θ0) overflows float64 at {int(overflow.sum())} start(s) (the first, "
            f"member {i}: ‖θ0‖ = {size:.3g}, ℓ(θ0) = "
            f"{float(loss0[i]):.3g}): the flow cannot start there; use a smaller initial scale "
            "(or a ratio c nearer 1), or check that the model's own constants fit in "
            "float64.")
    run = at_start < 0
    if np.any(np.max(np.abs(batch[run]), axis=-1) == 0):
        raise FlowtoolsError(
            "θ0 = 0 is a critical point (the flow stays there); start from a non-zero θ0."
        )
    if run.any():
        if backend == "diffrax":
            traj = _solve_diffrax(problem, batch[run], t0s[run], opts, save_ts, info)
        else:
            traj = solve_scipy(problem, batch[run], t1, loss_threshold, solver, rtol,
                               atol_rel, save_ts, info)
    else:
        traj = None
    traj = _merge_start(traj, batch, t0s, run, at_start, loss0, save_ts, backend, solver,
                        info)
    resume = (None if backend != "diffrax"
              else lambda tr, rows: _resume(problem, tr, rows, opts, save_ts, horizon))
    traj = certify_ends(problem, traj, loss_threshold, resume, max_steps)
    return traj[0] if single else traj


@jax.jit
def _start_values(problem, batch):
    """(ℓ(θ0), ‖∇ℓ(θ0)‖/‖θ0‖) per member."""

    def one(theta):
        loss, g = jax.value_and_grad(problem.loss)(theta)
        nrm = _norm(theta)
        return loss, _norm(g) / jnp.where(nrm > 0, nrm, 1.0)

    return jax.vmap(one)(batch)


def _start_times(t0, B: int, t1: float, backend: str) -> np.ndarray:
    """``solve_flow``'s ``t0`` as (B,) start times in [0, t1), checked."""
    t0s = np.asarray(t0, dtype=float)
    if t0s.ndim > 1 or (t0s.ndim == 1 and len(t0s) != B):
        raise FlowtoolsError(f"t0 must be a number or one start time per member ({B}), got "
                             f"shape {t0s.shape}.")
    t0s = np.broadcast_to(t0s, (B,)).copy()
    if not np.all((t0s >= 0) & (t0s < t1)):
        raise FlowtoolsError(f"the start time t0 must lie in [0, t1 = {t1:g}), got "
                             f"{np.min(t0s):g} … {np.max(t0s):g}.")
    if backend != "diffrax" and np.any(t0s > 0):
        raise FlowtoolsError("a start time t0 > 0 needs the diffrax backend (continue a "
                             "scipy flow from its end point with t0 = 0 and add the times).")
    return t0s


def _merge_start(traj, batch, t0s, run, at_start, loss0, save_ts, backend, solver, info):
    """The integrated members (``traj``, in order) and those that ended at their start
    (t = t0), merged into one batched ``Trajectory`` in the order of ``batch``."""
    if traj is not None and run.all():
        return traj
    B, S, p = len(batch), len(save_ts), batch.shape[1]
    ts = np.full((B, S), np.nan)
    thetas = np.full((B, S, p), np.nan)
    losses = np.full((B, S), np.nan)
    first = (save_ts[0] == 0) & (t0s == 0)
    ts[:, 0] = np.where(first, 0.0, np.nan)
    thetas[:, 0] = np.where(first[:, None], batch, np.nan)
    losses[:, 0] = np.where(first, loss0, np.nan)
    out = dict(ts=ts, thetas=thetas, losses=losses, t_final=t0s.copy(),
               theta_final=batch.copy(), loss_final=np.asarray(loss0, dtype=float).copy(),
               status=np.where(run, Status.HORIZON, at_start).astype(np.int8),
               steps=np.zeros(B, dtype=np.int64), grad_evals=np.ones(B, dtype=np.int64))
    extra = {}
    if traj is not None:
        for name in out:
            out[name][run] = getattr(traj, name)
        extra = {k: v for k, v in traj.info.items() if k not in info}
        if "rejected_steps" in extra:
            rej = np.zeros(B, dtype=np.int64)
            rej[run] = extra["rejected_steps"]
            extra["rejected_steps"] = rej.tolist()
    method = traj.method if traj is not None else f"{backend}:{solver}"
    return Trajectory(**out, wall_time=traj.wall_time if traj is not None else 0.0,
                      compile_time=traj.compile_time if traj is not None else 0.0,
                      method=method, info=dict(info, **extra))


def _resume(problem, traj, rows, opts: IntegratorOptions, save_ts, horizon):
    """Members ``rows`` of a batched ``traj`` continued from their end points (at their end
    times) without the stationarity stop, spliced in (``flowtools.certify.splice``): to the
    horizon, or without one (``horizon`` None) for a stage of ``RESUME_SPAN`` times the
    latest start (``certify_ends`` checks a stage end as a stop). The options differ only
    in traced numbers: the compiled program is reused."""
    # the first call's chunk: the continuation runs the program compiled for it
    chunk = traj.info.get("chunk")
    t0s = traj.t_final[rows]
    opts = dataclasses.replace(opts, gtol=0.0)
    if horizon is not None:
        more = integrate(_model_field, problem, traj.theta_final[rows], save_ts, opts,
                         loss=_model_loss, t0s=t0s, chunk=chunk)
        return splice(traj, rows, more)
    # A start after the last save runs in its own time t − t0 (the field is autonomous): the
    # first step (O(1) whatever t0) would be below t0's float64 spacing from t0 ≈ 1e15 on,
    # and the steps would not advance t. Such a run has no saves to make.
    late = t0s > save_ts[-1]
    for part in (~late, late):
        if not part.any():
            continue
        sub = rows[part]
        end = min(opts.t1, RESUME_SPAN * max(float(np.max(t0s[part])), 1.0))
        if part is late:
            length = end - float(np.max(t0s[part]))
            more = integrate(_model_field, problem, traj.theta_final[sub], save_ts,
                             dataclasses.replace(opts, t1=length), loss=_model_loss,
                             chunk=chunk)
            blank = np.full_like(more.ts, np.nan)
            more = dataclasses.replace(more, t_final=more.t_final + t0s[part], ts=blank,
                                       losses=blank, thetas=np.full_like(more.thetas, np.nan))
        else:
            more = integrate(_model_field, problem, traj.theta_final[sub], save_ts,
                             dataclasses.replace(opts, t1=end), loss=_model_loss,
                             t0s=t0s[part], chunk=chunk)
        traj = splice(traj, sub, more)
    return traj


# ---------------------------------------------------------------------- diffrax backend
def _model_field(theta, model):
    return model.field(theta)


def _model_loss(theta, model):
    return model.loss(theta)


def _solve_diffrax(problem, theta0, t0s, opts: IntegratorOptions, save_ts, info):
    """The members from their start times ``t0s`` (``solve_flow``'s ``t0``); a start after
    the last save time runs in its own time t − t0 (those members one batch). The raw status:
    CONVERGED means a stop fired (decided in ``certify_ends``)."""
    late = t0s > save_ts[-1]
    if not late.any():
        sol = integrate(_model_field, problem, theta0, save_ts, opts, loss=_model_loss,
                        t0s=t0s if t0s.any() else None)
        return dataclasses.replace(sol, info=dict(info, **sol.info))
    chunk = min(opts.batch_size, _bucket(len(theta0)))  # as integrate's default
    parts = []
    if (~late).any():
        parts.append((np.flatnonzero(~late), integrate(
            _model_field, problem, theta0[~late], save_ts, opts, loss=_model_loss,
            t0s=t0s[~late], chunk=chunk)))
    # the late members in one batch, each in its own time, to the longest of their
    # horizons t1 − t0; one that ran past its own (it had not ended there) runs again alone
    # to it — so every member stops at its own horizon (a call per member padded to the
    # chunk cost 16× the work of a lockstep chunk of 16)
    idx = np.flatnonzero(late)
    length = opts.t1 - t0s[idx]
    more = integrate(_model_field, problem, theta0[idx], save_ts,
                     dataclasses.replace(opts, t1=float(length.max())), loss=_model_loss,
                     chunk=chunk)
    for j in np.flatnonzero(more.t_final > length):  # the later part overwrites row j
        more = stack_rows(len(idx), [(np.arange(len(idx)), more), (np.array([j]), integrate(
            _model_field, problem, theta0[idx[j]:idx[j] + 1], save_ts,
            dataclasses.replace(opts, t1=float(length[j])), loss=_model_loss, chunk=chunk))])
    blank = np.full_like(more.ts, np.nan)
    parts.append((idx, dataclasses.replace(
        more, t_final=more.t_final + t0s[idx], ts=blank, losses=blank,
        thetas=np.full_like(more.thetas, np.nan))))
    sol = stack_rows(len(theta0), parts)
    return dataclasses.replace(sol, info=dict(info, **sol.info))

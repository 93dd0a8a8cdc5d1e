"""The integrator core: ``integrate``, the one place where flowtools calls diffrax.

    dθ/dt = F(θ),  θ(0) = θ0  for every row of a batch, saved at given times,

in log-norm coordinates (``coords``) or in θ, with optional stops on a scalar loss ℓ:
ℓ ≤ ``loss_threshold`` (located by bisection in time on log ℓ − log threshold) and
‖F(θ)‖ ≤ ``gtol``·‖θ‖ (the relative gradient at its round-off floor, where a step
controller would see only noise). ``solve_flow`` (F = −∇ℓ), the small-initialization
limit (any F with F(0) = 0) and the GD comparison (stacked modified flows) all call it.

A batch runs as compiled calls of one chunk each (``batch_size`` trajectories, vmapped:
they step in lockstep, each with its own step sizes, until the slowest ends), the calls
shared out over ``workers`` threads. One compilation serves every call with the same field
function, static options and chunk: tolerances, horizon, thresholds and start times are
traced, and the batch size enters only through the number of calls.

    >>> import jax.numpy as jnp, numpy as np
    >>> from flowtools.integrate import IntegratorOptions, integrate
    >>> def decay(theta, rate):            # θ' = −rate·θ, θ(t) = e^{−rate t}θ0
    ...     return -rate * theta
    >>> sol = integrate(decay, jnp.float64(2.0), np.ones((1, 2)), np.array([0.0, 1.0]),
    ...                 IntegratorOptions(solver="dopri8", rtol=1e-12, atol=1e-12))
    >>> bool(np.allclose(sol.thetas[0, 1], np.exp(-2.0), rtol=1e-10))
    True
"""

from __future__ import annotations

import functools
import time
from concurrent.futures import ThreadPoolExecutor

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from flowtools import _validate as V
from flowtools._compile import compiled
from flowtools.errors import FlowtoolsError
from flowtools.integrate.coords import (
    from_lognorm,
    lognorm_field,
    relative_field_norm,
    to_lognorm,
)
from flowtools.integrate.linear import SmallLU
from flowtools.integrate.options import IMPLICIT, SOLVERS, STAGES, IntegratorOptions
from flowtools.status import Status
from flowtools.trajectory import Trajectory


def integrate(vf, args, theta0s, save_ts, options: IntegratorOptions, *,
              loss=None, t0s=None, chunk=None) -> Trajectory:
    """Integrate dθ/dt = ``vf(θ, args)`` from each row of ``theta0s`` (B, p), started at
    t = 0 or at the times ``t0s`` (the field is autonomous; a later start resumes a flow).

    Returns a batched ``Trajectory`` (B members, S saves; NaN after a member's end; losses
    NaN without a loss) whose ``status`` is HORIZON (reached t1), CONVERGED (a stop fired:
    the loss stop or the relative-field floor — the caller tells them apart by the loss,
    ``flowtools.status.decide_status``: this raw status is no promise that ℓ ≤ threshold),
    MAX_STEPS, SOLVER_FAILED or NONFINITE; ``steps`` counts accepted steps, ``grad_evals``
    estimates evaluations of F (steps × stages, with Jacobians of p columns for an
    implicit solver), ``info["rejected_steps"]`` the rejected ones; wall and compile time apart.

    Args:
        vf: the field, JAX-traceable; a static part of the compiled program (pass a
            module-level function and put what varies in ``args``).
        args: a pytree passed to ``vf`` and ``loss`` (arrays traced, other leaves static,
            as ``equinox.filter_jit`` treats them).
        theta0s: (B, p) initial states.
        save_ts: (S,) non-decreasing save times in [0, t1].
        options: ``IntegratorOptions`` (validated when built).
        loss: optional ``loss(θ, args)`` → scalar, saved along and used by the stops.
        t0s: optional (B,) start times in [0, t1) (default 0); saves before a member's
            start are NaN. A traced argument: resuming reuses the compiled program.
        chunk: members per compiled call (default: ``options.batch_size``, or for a
            smaller batch the power of two ≥ B); a continuation passes its first call's
            chunk to reuse that program. Members agree across chunk sizes to round-off
            (a vmapped solve rounds by its width), bitwise across ``workers``.

    Raises:
        FlowtoolsError: when an implicit solver's dense Jacobians would not fit in memory.
    """
    if not isinstance(options, IntegratorOptions):
        raise FlowtoolsError(f"options must be IntegratorOptions, got {type(options).__name__}.")
    theta0s = np.atleast_2d(np.asarray(theta0s, dtype=float))
    save_ts = np.asarray(save_ts, dtype=float)
    if options.loss_threshold > 0 and loss is None:
        raise FlowtoolsError("a loss threshold needs a loss: pass loss=.")
    B, p = theta0s.shape
    workers = min(options.workers, B)
    if chunk is None:  # not a function of workers: the result does not depend on them
        chunk = min(options.batch_size, _bucket(B))
    chunk = V.positive_int(chunk, "chunk")
    pieces = _pieces(B, chunk)
    workers = min(workers, len(pieces))
    if options.implicit:  # every worker holds its chunk's Jacobians at once
        V.memory(8.0 * p * p * 4 * chunk * workers,
                 f"the implicit solver {options.solver} (dense {p}×{p} Jacobians, "
                 f"batch_size {chunk}, {workers} worker(s))",
                 "use an explicit solver (solver='dopri8' or 'tsit5': memory O(p) per "
                 "trajectory), a smaller batch_size, fewer workers, or a smaller model")
    t1 = float(save_ts[-1]) if options.t1 is None else options.t1
    t0s = np.zeros(B) if t0s is None else np.broadcast_to(
        np.asarray(t0s, dtype=float), (B,)).copy()
    if not np.all((t0s >= 0) & (t0s < t1)):
        raise FlowtoolsError(f"start times t0s must lie in [0, t1 = {t1:g}); got "
                             f"{t0s.min():g} … {t0s.max():g}.")
    dyn = tuple(jnp.float64(v) for v in (t1, options.rtol, options.atol,
                                         options.loss_threshold, options.gtol))
    static = options.static(loss is not None)
    calls = [(vf, loss, args, jnp.asarray(theta0s[idx]), jnp.asarray(t0s[idx]),
              jnp.asarray(save_ts), dyn, static) for idx in pieces]
    exe, compile_time = compiled(_solve, *calls[0])  # the pieces share one shape
    tw = time.perf_counter()
    if workers == 1:
        outs = [jax.block_until_ready(exe(*c)) for c in calls]
    else:  # the threads take the next piece as they finish one: slow pieces spread out
        with ThreadPoolExecutor(workers) as pool:
            outs = list(pool.map(lambda c: jax.block_until_ready(exe(*c)), calls))
    wall = time.perf_counter() - tw
    # the pieces cover 0, 1, …, B − 1 in order, then repeat members as padding
    ts, thetas, losses, status, acc, rej = (
        np.concatenate([np.asarray(o[k]) for o in outs])[:B] for k in range(6))
    # diffrax writes the end point (SaveAt t1=True) right after the last save made before
    # the end, and pads with inf: the end point is the last finite entry of each row.
    S = len(save_ts)
    rows = np.arange(B)
    last = np.isfinite(ts).sum(axis=1) - 1
    tf, thf, lf = ts[rows, last], thetas[rows, last], losses[rows, last]
    dead = np.arange(S + 1)[None, :] >= last[:, None]
    dead[:, -1] = True
    dead[:, :S] |= save_ts[None, :] < t0s[:, None]  # saves before a member's start
    ts, thetas, losses = ts.copy(), thetas.copy(), losses.copy()
    ts[dead], thetas[dead], losses[dead] = np.nan, np.nan, np.nan
    finite = np.all(np.isfinite(thf), axis=-1) & (np.isfinite(lf) if loss is not None else True)
    status = np.where(finite | (status == Status.MAX_STEPS), status, Status.NONFINITE)
    steps = acc + rej
    # estimate: explicit, stages per step; implicit, 2 iterations per stage, with a
    # Jacobian of p columns at every iterate (full), per stage (stage) or per step (step)
    stages = STAGES[options.solver]
    jacobians = {"full": 2 * stages, "stage": stages, "step": 1}[options.newton]
    evals = steps * stages * (2 if options.implicit else 1)
    evals = evals + steps * p * jacobians * options.implicit
    return Trajectory(ts=ts[:, :S], thetas=thetas[:, :S], losses=losses[:, :S], t_final=tf,
                      theta_final=thf, loss_final=lf, status=status.astype(np.int8),
                      steps=acc, grad_evals=evals, wall_time=wall, compile_time=compile_time,
                      method=f"diffrax:{options.solver}",
                      info=dict(rejected_steps=rej.tolist(), chunk=chunk,
                                grad_evals="estimate: steps×stages"))


def _bucket(n: int) -> int:
    """The power of two ≥ n: chunk sizes from a few buckets, so that batches of nearby
    sizes share one compiled program."""
    return 1 << max(0, int(n) - 1).bit_length()


def _pieces(B: int, chunk: int) -> list[np.ndarray]:
    """Member indices of the compiled calls: 0 … B − 1 in order, ``chunk`` per call, the
    last call padded by repeating the first members (their results are dropped)."""
    n = -(-B // chunk)
    idx = np.resize(np.arange(B), n * chunk)
    return [idx[k * chunk:(k + 1) * chunk] for k in range(n)]


class _TimeBisection(optx.Bisection):
    """Bisection that stops on the width of the time bracket alone: optimistix's also asks
    |cond| < atol, which a condition with a jump (or round-off noise) never meets."""

    def terminate(self, fn, y, args, options, state, tags):
        width = jnp.abs(state.lower - state.upper)
        return width < self.atol + self.rtol * jnp.abs(y), optx.RESULTS.successful

    def postprocess(self, fn, y, aux, args, options, state, tags, result):
        # The end of the bracket after the crossing (with flip=True the condition is ≤ 0
        # at `upper`): the end point then satisfies its stopping rule (ℓ ≤ threshold), so
        # a flow restarted from it ends at once.
        return state.upper, aux, {}


class _StageChord(optx.Chord):
    """optimistix's Chord: a Jacobian at the start of each stage's iteration. diffrax's
    DIRK step also asks the root finder's ``init`` for a Jacobian of its own, twice per step
    (before the stages and at the second stage, with ``options={}``), and hands it to the
    root find as ``options["init_state"]``, which Chord ignores: its ``init``, called by
    ``optx.root_find`` with those options, computes the one it uses. Those two calls get
    no Jacobian here — the same iterations, two Jacobians and LU factorizations fewer to
    trace and compile (and to evaluate, where XLA did not remove them)."""

    def init(self, fn, y, args, options, f_struct, aux_struct, tags):
        if "init_state" not in options:  # diffrax's own call: its result goes unused
            return None
        return super().init(fn, y, args, options, f_struct, aux_struct, tags)


@eqx.filter_jit
def _step_once(solver, *step_args):
    return super(type(solver), solver).step(*step_args)


def _traced_step(self, *step_args):
    return _step_once(self, *step_args)


@functools.cache
def _traced_once(cls):
    """``cls`` whose step is traced once per program: diffeqsolve traces its loop body up
    to four times (three shape checks, then the loop), and a jitted step is traced only
    the first time (JAX's trace cache: same function, static parts and shapes), the later
    calls reusing its program — also when vmap batches the loop. XLA inlines the call:
    the same arithmetic (results bitwise unchanged)."""
    return type(cls.__name__, (cls,), {"step": _traced_step, "__module__": __name__,
                                       "__qualname__": f"_traced_once.{cls.__name__}"})


def _make_solver(name, newton, rtol, atol):
    # scan_kind="lax": what diffrax's ForwardMode sets inside its loop; set here, the step
    # that diffeqsolve traces before the loop (for the event's shapes) is the same solver,
    # and one trace serves both
    solver = functools.partial(_traced_once(SOLVERS[name]), scan_kind="lax")
    if name not in IMPLICIT:
        return solver()
    if newton == "stage":
        # the exact Jacobian at the start of each stage's iteration: in slow tails steps
        # are large (h·‖J‖ ≫ 1) and one Jacobian per step stops converging, which rejected
        # steps until h/t fell to 1e-4 (see IntegratorOptions.newton)
        return solver(root_finder=_StageChord(rtol=rtol, atol=atol, linear_solver=SmallLU()))
    if newton == "full":
        return solver(root_finder=optx.Newton(rtol=rtol, atol=atol, linear_solver=SmallLU()))
    # one Jacobian per step, iterations accepted at kappa = 1 times the step tolerance
    return solver(root_finder=diffrax.VeryChord(rtol=rtol, atol=atol, kappa=1.0))


# The loss stop aims at ℓ ≤ (1 − STOP_MARGIN)·threshold, not at the threshold itself: ℓ
# near a minimum is evaluated with a relative round-off of order ε·|f|/|r| (residuals r of
# 1e-12 on outputs f of 1 at ℓ = 1e-24: 1e-4 to 1e-3), which differs between CPUs (AVX-512
# or not) and between programs (padded, batched, the host's re-evaluation). Aiming 1 %
# below keeps the reported ℓ_final ≤ threshold wherever that round-off is below 1 %; where it
# is not (ℓ at its float64 floor), the status rule (``flowtools.status.decide_status``) still
# grants CONVERGED only for ℓ_final ≤ threshold.
STOP_MARGIN = 1e-2


def _stop_event(vf, loss, threshold, gtol, coords):
    """One scalar condition (the root finder takes one): log ℓ − log((1 − STOP_MARGIN)·
    threshold), switched to −1 once the relative field ‖F‖/‖θ‖ is at or below gtol
    (log-norm coordinates only: ``IntegratorOptions`` refuses gtol > 0 in θ). Bisection on
    time alone locates either."""
    lognorm = coords == "lognorm"
    log_target = jnp.log(jnp.maximum(threshold, 1e-300)) + np.log1p(-STOP_MARGIN)

    def cond(t, y, args, **kwargs):
        return _stop_value(y, args, log_target, threshold, gtol, vf, loss, lognorm)

    # conditions go from > 0 to ≤ 0: flip=True fixes the bracket's orientation, so round-off
    # noise at the ends can neither raise nor send the search outside it
    return diffrax.Event(cond, root_finder=_TimeBisection(rtol=1e-12, atol=1e-6, flip=True))


@eqx.filter_jit
def _stop_value(y, args, log_target, threshold, gtol, vf, loss, lognorm):
    """The stop condition at y: jitted, so that its five uses in the program (the start,
    the loop body that diffeqsolve traces three times, the root find) trace it once."""
    theta = from_lognorm(y) if lognorm else y
    ell = jnp.maximum(loss(theta, args), 1e-300)  # ℓ may be exactly 0
    gap = jnp.where(threshold > 0, jnp.log(ell) - log_target, 1.0)
    if not lognorm:
        return gap
    floor = jnp.log(relative_field_norm(vf, y, args) + 1e-300) - jnp.log(
        jnp.maximum(gtol, 1e-300))
    return jnp.where((gtol > 0) & (floor <= 0), -1.0, gap)


def _theta_field(vf):
    return lambda t, y, args: vf(y, args)


def _identity(theta):
    return theta


@eqx.filter_jit
def _solve(vf, loss, args, theta0s, t0s, save_ts, dyn, static):
    t1, rtol, atol, threshold, gtol = dyn
    if static.coords == "lognorm":
        term, y_of, theta_of = diffrax.ODETerm(lognorm_field(vf)), to_lognorm, from_lognorm
    else:
        term, y_of, theta_of = diffrax.ODETerm(_theta_field(vf)), _identity, _identity
    solver = _make_solver(static.solver, static.newton, rtol, atol)
    controller = diffrax.PIDController(rtol=rtol, atol=atol, pcoeff=static.pcoeff,
                                       icoeff=static.icoeff)
    if static.clip_to_saves:
        controller = diffrax.ClipStepSizeController(controller, step_ts=save_ts)
    event = _stop_event(vf, loss, threshold, gtol, static.coords) if static.events else None

    def save(t, y, args):
        theta = theta_of(y)
        return theta, (loss(theta, args) if loss is not None else jnp.full((), jnp.nan))

    def one(start):
        theta0, t0 = start
        sol = diffrax.diffeqsolve(
            term, solver, t0, t1, None, y_of(theta0), args=args,
            # saves before the start are made at t0 and blanked by the caller
            saveat=diffrax.SaveAt(ts=jnp.maximum(save_ts, t0), t1=True, fn=save),
            stepsize_controller=controller, event=event, max_steps=static.max_steps,
            adjoint=diffrax.ForwardMode(), throw=False,
        )
        thetas, losses = sol.ys
        res = sol.result
        status = jnp.where(
            res == diffrax.RESULTS.event_occurred, Status.CONVERGED,
            jnp.where(res == diffrax.RESULTS.successful, Status.HORIZON,
                      jnp.where(res == diffrax.RESULTS.max_steps_reached, Status.MAX_STEPS,
                                Status.SOLVER_FAILED)))
        return (sol.ts, thetas, losses, status, sol.stats["num_accepted_steps"],
                sol.stats["num_rejected_steps"])

    if theta0s.shape[0] == 1:  # one member: no batching rules in the program
        return jax.tree_util.tree_map(lambda a: a[None], one((theta0s[0], t0s[0])))
    return jax.vmap(one)((theta0s, t0s))

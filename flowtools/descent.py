"""Gradient descent θ_{k+1} = θ_k − lr·∇ℓ(θ_k), the paper's protocol, jitted and batched.

Protocol (Zhao, Bai, Zhang, section 3.3 and Appendix C): fixed learning rate; stop as soon
as ℓ(θ_k) ≤ ``loss_threshold`` (default 1e-15) or after ``max_iter`` iterations. Iterate k
is reported at flow time t = k·lr, in the same ``Trajectory`` type as the flow, so the two
compare on one axis. States are recorded at log-spaced iterations plus the end.

    >>> import flowtools as ft
    >>> pb = ft.example1()
    >>> gd = ft.run_gd(pb, pb.init_gaussian(1e-8, seed=[0, 1]), lr=0.05, max_iter=10**5)
    >>> [ft.Status(int(s)).name for s in gd.status]   # seed 0 is on the slow Q1 branch
    ['HORIZON', 'CONVERGED']
"""

from __future__ import annotations

import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from flowtools import _validate as V
from flowtools._compile import compiled
from flowtools.errors import FlowtoolsError
from flowtools.models import AbstractModel
from flowtools.models.base import check_model
from flowtools.status import Status
from flowtools.trajectory import Trajectory


def record_iterations(max_iter: int, n_save: int) -> np.ndarray:
    """0 and about ``n_save − 1`` log-spaced distinct iterations in [1, max_iter]."""
    ks = np.round(np.geomspace(1, max_iter, max(n_save - 1, 2))).astype(np.int64)
    return np.unique(np.concatenate([[0], ks, [max_iter]]))


# ---------------------------------------------------------------------- work estimates
#: The most GD iterations (summed over learning rates and batch members) a call starts
#: unless its caller raises the limit (``compare(max_gd_steps=...)``, the CLI's
#: ``--max-gd-steps``): 1e8 iterations of the paper's small networks are minutes on one
#: core; what takes longer is asked for by name, not started by a typo in t1 or lr.
GD_STEP_LIMIT = 10**8
#: No limit may be raised beyond this: GD counts its iterations in 64-bit integers.
GD_STEP_CEILING = 10**18


def gd_iterations(horizon, lrs, batch: int = 1) -> float:
    """At most how many GD iterations reaching flow time ``horizon`` takes at each learning
    rate of ``lrs`` for ``batch`` initial states: Σ_η ⌈horizon/η⌉ · batch (runs that reach
    their loss threshold stop earlier). A float, computed without overflow: ``inf`` when
    the count is beyond floating point.

        >>> gd_iterations(10.0, [0.001, 0.01])
        11000.0
        >>> gd_iterations(1e300, [1e-300], batch=9)
        inf
    """
    with np.errstate(over="ignore", invalid="ignore"):
        per_rate = np.ceil(float(horizon) / np.asarray(lrs, dtype=float).ravel())
        return float(np.sum(per_rate) * float(batch))


def gd_step_limit(value) -> float:
    """A limit of GD iterations: a number in [1, ``GD_STEP_CEILING``]."""
    limit = V.positive_float(value, "the limit of GD iterations")
    if not 1 <= limit <= GD_STEP_CEILING:
        raise FlowtoolsError(f"the limit of GD iterations must lie in [1, "
                             f"{GD_STEP_CEILING:.0e}] (GD counts iterations in 64-bit "
                             f"integers), got {limit:g}.")
    return limit


def check_gd_iterations(count: float, limit: float, what: str, advice: str,
                        option: str) -> None:
    """Refuse work of more than ``limit`` GD iterations (``count`` from ``gd_iterations``,
    before anything runs), saying how to go on (raise ``option``); a count beyond
    ``GD_STEP_CEILING`` (or beyond floating point) is refused under any limit.

        >>> check_gd_iterations(gd_iterations(1e8, [0.001]), GD_STEP_LIMIT, "the run",
        ...                     "lower t1", "--max-gd-steps")
        Traceback (most recent call last):
        ...
        flowtools.errors.FlowtoolsError: the run would take up to 1e+11 GD iterations, ...
    """
    limit = gd_step_limit(limit)
    if count <= limit:
        return
    if count <= GD_STEP_CEILING:
        raise FlowtoolsError(f"{what} would take up to {count:.3g} GD iterations, more than "
                             f"the limit of {limit:.3g}: {advice}; or raise {option} to "
                             f"{count:.3g} to go on.")
    shown = f"{count:.3g}" if np.isfinite(count) else "more than 1e308"
    raise FlowtoolsError(f"{what} would take up to {shown} GD iterations, more than GD can "
                         f"count ({GD_STEP_CEILING:.0e}): {advice}.")


@eqx.filter_jit
def _gd_batch(problem, theta0s, lr, threshold, record_at, max_iter):
    value_and_grad = jax.vmap(jax.value_and_grad(problem.loss))
    loss = jax.vmap(problem.loss)
    B = theta0s.shape[0]

    def step(c):
        theta, k, done, kstop, status, lstop = c
        ell, g = value_and_grad(theta)
        hit = ~done & (ell <= threshold)
        bad = ~done & ~jnp.isfinite(ell)
        stop = hit | bad
        status = jnp.where(hit, Status.CONVERGED, jnp.where(bad, Status.NONFINITE, status))
        kstop = jnp.where(stop, k, kstop)
        lstop = jnp.where(stop, ell, lstop)  # the loss that decided: reported as is
        done = done | stop
        theta = jnp.where(done[:, None], theta, theta - lr * g)
        return theta, k + 1, done, kstop, status, lstop

    def segment(c, k_target):
        c = jax.lax.while_loop(lambda c: (c[1] < k_target) & ~jnp.all(c[2]), step, c)
        theta, done = c[0], c[2]
        # members still running sit at iterate k_target: record them, NaN for ended ones
        rec = jnp.where(done[:, None], jnp.nan, theta)
        return c, (rec, jnp.where(done, jnp.nan, loss(theta)))

    init = (theta0s, jnp.int64(0), jnp.zeros(B, bool), jnp.full(B, max_iter, jnp.int64),
            jnp.full(B, Status.HORIZON, jnp.int8), jnp.full(B, jnp.nan))
    c, (rec_theta, rec_loss) = jax.lax.scan(segment, init, record_at)
    # records may end before max_iter: the iterations after the last one still run
    c = jax.lax.while_loop(lambda c: (c[1] < max_iter) & ~jnp.all(c[2]), step, c)
    theta, k, done, kstop, status, lstop = c
    # the last recorded iterate is max_iter: check it against the threshold, no update.
    # The reported loss is the very number the status was decided by (a re-evaluation by
    # another program can differ at round-off, on either side of the threshold).
    ell = jnp.where(done, lstop, loss(theta))
    status = jnp.where(done, status, jnp.where(
        ell <= threshold, Status.CONVERGED,
        jnp.where(jnp.isfinite(ell), Status.HORIZON, Status.NONFINITE)))
    return rec_theta, rec_loss, theta, ell, kstop, status


def run_gd(
    problem: AbstractModel,
    theta0,
    lr: float,
    *,
    max_iter: int = 10**6,
    loss_threshold: float = 1e-15,
    n_save: int = 200,
    record_at=None,
) -> Trajectory:
    """Gradient descent from ``theta0`` ((p,) or (B, p)) with learning rate ``lr``.

    Args:
        problem: the model (any ``flowtools.models.AbstractModel``).
        theta0: initial state(s).
        lr: learning rate η > 0 (the paper uses 0.001–0.5).
        max_iter: iteration limit (the paper's "iterations", e.g. 1e6 for Figure 3).
        loss_threshold: stop at the first iterate with ℓ ≤ this (0 disables).
        n_save: about this many recorded iterates, log-spaced in k, plus the end.
        record_at: explicit non-decreasing iterations in [0, max_iter] to record instead
            (repeats allowed: padding to a fixed length keeps one compilation).

    Returns:
        A ``Trajectory`` with times t = k·lr, ``steps`` = iterations done, status
        CONVERGED, HORIZON (max_iter reached) or NONFINITE (diverged: lower ``lr``).
    """
    theta0 = check_model(problem, "run_gd").check_theta(theta0)
    lr = V.learning_rate(lr)
    max_iter = V.positive_int(max_iter, "max_iter")
    loss_threshold = V.loss_threshold(loss_threshold)
    single = theta0.ndim == 1
    batch = np.atleast_2d(theta0)
    if record_at is None:
        ks = record_iterations(max_iter, V.integer(n_save, "n_save", minimum=2))
    else:
        ks = V.increasing_times(record_at, "record_at", 0, max_iter)
        if np.any(ks != np.round(ks)):
            raise FlowtoolsError("record_at must hold whole iteration numbers, got "
                                 f"{ks[ks != np.round(ks)][:3].tolist()}.")
        ks = ks.astype(np.int64)
    args = (problem, jnp.asarray(batch), jnp.float64(lr), jnp.float64(loss_threshold),
            jnp.asarray(ks), jnp.int64(max_iter))
    exe, compile_time = compiled(_gd_batch, *args)
    tw = time.perf_counter()
    out = jax.block_until_ready(exe(*args))
    wall = time.perf_counter() - tw
    rec_theta, rec_loss, thf, lf, kstop, status = map(np.asarray, out)
    ts = np.where(np.isfinite(rec_loss.T), ks[None, :] * lr, np.nan)
    traj = Trajectory(
        ts=ts, thetas=np.swapaxes(rec_theta, 0, 1), losses=rec_loss.T, t_final=kstop * lr,
        theta_final=thf, loss_final=lf, status=status, steps=kstop, grad_evals=kstop + 1,
        wall_time=wall, compile_time=compile_time, method="gd", lr=float(lr),
        info=dict(max_iter=int(max_iter), loss_threshold=loss_threshold),
    )
    return traj[0] if single else traj

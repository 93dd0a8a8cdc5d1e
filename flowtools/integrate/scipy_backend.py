"""The scipy backend of ``solve_flow``: ``scipy.integrate.solve_ivp`` (Radau, BDF or LSODA)
with the exact Hessian as Jacobian, in the flow's own coordinates θ — an independent
cross-check of the diffrax core (``flowtools.integrate.core``), ~100× slower.

    >>> import flowtools as ft
    >>> pb = ft.example1()
    >>> tr = ft.solve_flow(pb, pb.init_gaussian(1e-4, seed=0), backend="scipy",
    ...                    loss_threshold=1e-8, t1=1e6)
    >>> tr.method, ft.Status(int(tr.status)).name
    ('scipy:Radau', 'CONVERGED')
"""

from __future__ import annotations

import time

import jax
import numpy as np

from flowtools.integrate.core import STOP_MARGIN
from flowtools.status import Status
from flowtools.trajectory import Trajectory

SCIPY_METHODS = ("Radau", "BDF", "LSODA")
# This backend's horizon when ``solve_flow`` is given none (t1=None): solve_ivp has neither
# the stationarity stop nor a step budget, so a flow that never reaches its loss threshold
# would run to whatever horizon it is given. Measured (a 2-parameter flow
# drifting on the plateau ℓ = 1 + 1/(1 + ‖θ‖²)): Radau to 1e12 21 172 evaluations (10 s),
# to 1e300 581 768 (254 s); LSODA 1827 against 42 889. So the default stays finite here.
SCIPY_T1 = 1e12


def solve_scipy(problem, theta0, t1, threshold, method, rtol, atol_rel, save_ts, info):
    """Integrate dθ/dt = −∇ℓ(θ) from ``theta0`` ((p,) or a batch (B, p), one member after
    another) with ``scipy.integrate.solve_ivp(method=method)`` (one of ``SCIPY_METHODS``),
    the exact Hessian as Jacobian and ``atol = rtol·atol_rel·‖θ0‖``, saving at ``save_ts``
    up to ``t1``. Arguments are validated by the caller (``solve_flow``).

    The loss stop is an event on log ℓ − log target, aimed ``STOP_MARGIN`` below
    ``threshold`` (none if ``threshold`` is 0). The status is raw, as the diffrax core's:
    CONVERGED says the stop fired (``flowtools.status.decide_status`` decides), HORIZON,
    SOLVER_FAILED or NONFINITE. ``steps`` are scipy's ``nfev`` (no step count is exposed).
    """
    from scipy.integrate import solve_ivp

    f = jax.jit(lambda y: problem.field(y))
    jac = jax.jit(lambda y: -problem.hessian(y))
    loss = jax.jit(lambda y: problem.loss(y))
    single = theta0.ndim == 1
    batch = np.atleast_2d(theta0)
    tc = time.perf_counter()
    jax.block_until_ready((f(batch[0]), jac(batch[0]), loss(batch[0])))
    compile_time = time.perf_counter() - tc

    # aimed STOP_MARGIN below the threshold, as the diffrax backend's stop
    log_target = np.log(threshold) + np.log1p(-STOP_MARGIN) if threshold > 0 else 0.0

    def event(t, y):
        return np.log(max(float(loss(y)), 1e-300)) - log_target if threshold > 0 else 1.0

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

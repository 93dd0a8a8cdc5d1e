"""End-point certification: is a flow's stop an end?

The relative-gradient stop (‖∇ℓ‖ ≤ gtol·‖θ‖) fires at minima, at saddles and in degenerate
tails where the loss still falls like a power of t. ``stationary_check`` tells them apart
(a minimum to working precision, a saddle, a flow still moving); ``certify_ends`` decides the
final status of every member of a run (``flowtools.status.decide_status``), checks its
STATIONARY candidates and has the moving ones resumed without the stop (``splice`` puts a
continuation in place). ``solve_flow`` calls it on every run.

    >>> import flowtools as ft
    >>> from flowtools.certify import stationary_check
    >>> pb = ft.example1()
    >>> stationary_check(pb, pb.init_gaussian(1e-8, seed=0))["minimum"]
    False
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from flowtools.curvature import hessian_extremes, hvp_operator
from flowtools.models import AbstractModel
from flowtools.status import Status, decide_status


def certify_ends(problem, traj, threshold: float, resume=None, max_steps=None):
    """The final status of every member (``decide_status``), with STATIONARY ends checked:
    a STATIONARY end must be a minimum whose loss has settled.

    The relative-gradient stop also fires in degenerate tails (the loss falling like a
    power of t towards 0, where ‖∇ℓ‖ ~ ℓ^{3/4} is tiny but exact). Such a stop is no end:
    ``stationary_check`` finds the loss still moving (Newton's step predicts a decrease
    beyond the threshold), and the flow is resumed from there with the stop switched off
    (``resume``: diffrax; ``info["resumed"]`` lists the members and where they were
    stopped) to the loss threshold or the horizon; the continuation's status is decided by
    the same rule, and a STATIONARY candidate among them is checked but not resumed again.
    A saddle, or an unsettled stop without ``resume``, is NOT_MINIMUM.

    Without a horizon (``solve_flow(t1=None)``) a continuation, which has no stationarity
    stop, runs in stages (``flowtools.flow.RESUME_SPAN``): a stage end before the horizon
    (raw HORIZON at ``t_final < info["t1"]``) is checked as a stop is — a settled minimum
    ends STATIONARY, anything else is resumed again — until the members' steps reach
    ``max_steps`` (then MAX_STEPS).
    """
    status = decide_status(traj.status, traj.loss_final, threshold)
    theta_f = np.atleast_2d(traj.theta_final)
    t_f = np.atleast_1d(traj.t_final)
    checks = {int(i): stationary_check(problem, theta_f[i], threshold, t_f[i])
              for i in np.flatnonzero(status == Status.STATIONARY)}
    moving = [i for i, c in checks.items() if c["moving"]]
    info = dict(traj.info)
    horizon = info.get("t1", np.inf)
    resumed = {}
    while resume is not None and moving:
        for i in moving:  # where each member was first stopped
            loss = checks.pop(i)["loss"]
            resumed.setdefault(i, dict(t=float(t_f[i]), loss=loss))
        rows = np.array(moving)
        traj = resume(traj, rows)
        status[rows] = decide_status(traj.status, traj.loss_final, threshold)[rows]
        theta_f = np.atleast_2d(traj.theta_final)
        t_f = np.atleast_1d(traj.t_final)
        steps = np.atleast_1d(traj.steps)
        moving = []
        for i in rows.tolist():
            if status[i] == Status.STATIONARY:  # checked, not resumed again
                checks[i] = stationary_check(problem, theta_f[i], threshold, t_f[i])
            elif status[i] == Status.HORIZON and t_f[i] < horizon:  # a stage end
                check = stationary_check(problem, theta_f[i], threshold, t_f[i])
                if check["minimum"]:
                    status[i], checks[i] = Status.STATIONARY, check
                elif max_steps is not None and steps[i] >= max_steps:
                    status[i] = Status.MAX_STEPS
                else:
                    checks[i] = check
                    moving.append(i)
    if resumed:
        info["resumed"] = resumed
    for i, check in checks.items():
        if not check["minimum"]:
            status[i] = Status.NOT_MINIMUM
    if checks:
        info["stationary_check"] = checks
    return dataclasses.replace(traj, status=status.reshape(np.shape(traj.status)), info=info)


def splice(traj, rows, more):
    """``traj`` (batched) with its members ``rows`` continued by ``more`` (one member per
    row, run from their end points at their end times): later saves, end point, status
    and steps from the continuation (steps and rejected steps add up; wall and compile
    times add)."""
    out = {name: np.array(getattr(traj, name)) for name in
           ("ts", "thetas", "losses", "t_final", "theta_final", "loss_final", "status",
            "steps", "grad_evals")}
    later = np.isfinite(more.ts)
    for name in ("ts", "losses"):
        out[name][rows] = np.where(later, getattr(more, name), out[name][rows])
    out["thetas"][rows] = np.where(later[..., None], more.thetas, out["thetas"][rows])
    for name in ("t_final", "theta_final", "loss_final", "status"):
        out[name][rows] = getattr(more, name)
    out["steps"][rows] += more.steps
    out["grad_evals"][rows] += more.grad_evals
    info = dict(traj.info)
    if "rejected_steps" in info:
        rej = np.array(info["rejected_steps"])
        rej[rows] += np.array(more.info["rejected_steps"])
        info["rejected_steps"] = rej.tolist()
    return dataclasses.replace(traj, **out, info=info,
                               wall_time=traj.wall_time + more.wall_time,
                               compile_time=traj.compile_time + more.compile_time)


def stack_rows(B: int, parts) -> object:
    """One batched trajectory of ``B`` members from ``parts``, pairs (rows, trajectory of
    len(rows) members) that cover 0 … B − 1; wall and compile times add, the info is the
    first part's with the rejected steps of every member."""
    first = parts[0][1]
    out = {}
    for name in ("ts", "thetas", "losses", "t_final", "theta_final", "loss_final", "status",
                 "steps", "grad_evals"):
        a = np.asarray(getattr(first, name))
        out[name] = np.zeros((B,) + a.shape[1:], dtype=a.dtype)
    rej = np.zeros(B, dtype=np.int64)
    for rows, tr in parts:
        for name in out:
            out[name][rows] = getattr(tr, name)
        rej[rows] = tr.info.get("rejected_steps", 0)
    info = dict(first.info, rejected_steps=rej.tolist())
    return dataclasses.replace(first, **out, info=info,
                               wall_time=sum(tr.wall_time for _, tr in parts),
                               compile_time=sum(tr.compile_time for _, tr in parts))


def stationary_check(problem: AbstractModel, theta, loss_threshold: float = 0.0,
                     t: float = 0.0) -> dict:
    """Is a point where the flow stopped by ‖∇ℓ‖ ≤ gtol‖θ‖ (at time ``t``) a minimum to
    working precision?

    With g = ∇ℓ(θ) and H = ∇²ℓ(θ) (eigenvalues λ_j), and the floor φ = ``loss_threshold``
    (without a threshold, 0: φ = 1e-15·ℓ(0), 1e-15 of the loss at the origin — ½Σy_i² for
    a network, the data's own scale), it is a minimum iff

    * λ_min ≥ −1e-9·max|λ_j| (no direction of negative curvature: not a saddle);
    * Newton's predicted decrease d = ½ gᵀH⁺g (pseudo-inverse, |λ| ≤ 1e-12·max|λ| dropped)
      is negligible: d ≤ max(1e-3·ℓ(θ), φ); and
    * the loss has stopped falling on the time scale reached, or is at the floor:
      ℓ ≤ φ or r = t·‖g‖²/ℓ ≤ 1e-3. Along the flow dℓ/dt = −‖g‖², so r is the loss's
      relative decrease per e-fold of time: a power-law tail ℓ ∝ t^{−k} has r = k, a
      minimum at a positive loss r at round-off.

    The second test catches plateaus where ‖∇ℓ‖/‖θ‖ is tiny only because ‖θ‖ is huge
    (θ0 of scale 1e100: ℓ ≈ 1e169, H ⪰ 0, d ≈ ℓ). The third catches degenerate tails,
    where the loss falls like a power of t along directions of near-zero curvature that
    the pseudo-inverse drops (measured on the Figure-4 grid, n = 5 and 6 Gaussian samples:
    stops at ℓ ≈ 4e-19–4e-18 with d ≈ 1e-30, r of order 1). Along a degenerate
    direction (the Q1 manifold of Example 1, where the loss falls like t⁻²) a certified point
    may still be ``newton_step`` = ‖H⁺g‖ away from the flow's limit in θ while its loss is
    within d of the limit's. Returns a dict with ``minimum`` (bool), ``lambda_min``,
    ``lambda_max``, ``predicted_decrease``, ``newton_step``, ``rate`` (r), ``loss``,
    ``loss_at_origin``, ``reason`` and ``moving`` (no saddle, but the loss is still
    falling: ``solve_flow`` resumes such a flow).
    """
    theta = jnp.asarray(theta, dtype=float)
    loss, g, loss_origin = (np.asarray(v) for v in _grads_at(problem, theta))
    finite = np.isfinite(loss) and np.all(np.isfinite(g))
    # dense eigh up to DENSE_MAX parameters, Lanczos and MINRES on ∇²ℓ·v above
    spec = hessian_extremes(problem, theta, vectors=True) if finite else None
    if spec is None or not np.isfinite(spec.abs_max):
        return dict(minimum=False, lambda_min=np.nan, lambda_max=np.nan,
                    predicted_decrease=np.nan, newton_step=np.nan, rate=np.nan,
                    loss=float(loss), loss_at_origin=float(loss_origin), moving=False,
                    reason="ℓ, ∇ℓ or ∇²ℓ is not finite in float64 there (overflow): no "
                    "certificate is possible; start from a smaller scale")
    lam_min, lam_max = spec.lam_min, spec.abs_max
    if spec.dense:
        lam, U = spec.eigenvalues, spec.eigenvectors
        keep = np.abs(lam) > 1e-12 * max(lam_max, 1e-300)
        c = U[:, keep].T @ g
        d = 0.5 * float(np.sum(c * c / lam[keep]))
        step = float(np.linalg.norm(c / lam[keep]))
    else:
        d, step = _newton_matrix_free(problem, theta, g)
    saddle = lam_min < -1e-9 * max(lam_max, 1e-300)
    floor = loss_threshold if loss_threshold > 0 else 1e-15 * float(loss_origin)
    allowed = max(1e-3 * float(loss), floor)
    rate = float(t) * float(np.dot(g, g)) / max(float(loss), 1e-300)
    settled = d <= allowed and (float(loss) <= floor or rate <= 1e-3)
    if saddle:
        reason = (f"∇²ℓ has the negative eigenvalue {lam_min:.3g} (largest |λ| {lam_max:.3g}):"
                  " a saddle, which the flow leaves under any perturbation")
    elif d > allowed:
        reason = (f"Newton's step predicts a further loss decrease of {d:.3g} from ℓ = "
                  f"{float(loss):.3g} (negligible would be ≤ {allowed:.3g}): the flow is "
                  "still moving (solve_flow resumes such a flow; gtol=0 disables the stop)")
    elif not settled:
        reason = (f"the loss ℓ = {float(loss):.3g} still falls by a fraction "
                  f"t·‖∇ℓ‖²/ℓ = {rate:.3g} per e-fold of time at t = {float(t):.3g} "
                  "(settled would be ≤ 1e-3): a slow tail, not an end (solve_flow resumes "
                  "such a flow; gtol=0 disables the stop)")
    else:
        reason = ("∇²ℓ ⪰ 0 and the loss can fall by at most "
                  f"{d:.3g} (≤ {allowed:.3g}): a minimum to working precision")
    return dict(minimum=bool(not saddle and settled), lambda_min=lam_min, lambda_max=lam_max,
                predicted_decrease=d, newton_step=step, rate=rate, loss=float(loss),
                loss_at_origin=float(loss_origin), reason=reason,
                moving=bool(not saddle and not settled))


@jax.jit
def _grads_at(problem, theta):
    loss, g = jax.value_and_grad(problem.loss)(theta)
    return loss, g, problem.loss(jnp.zeros_like(theta))


def _newton_matrix_free(problem, theta, g):
    """½gᵀH⁺g and ‖H⁺g‖ by MINRES on Hessian-vector products."""
    from scipy.sparse.linalg import minres

    x, _ = minres(hvp_operator(problem, theta), np.asarray(g), rtol=1e-10,
                  maxiter=10 * theta.shape[-1])
    return 0.5 * float(np.dot(g, x)), float(np.linalg.norm(x))

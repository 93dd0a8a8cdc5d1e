"""Gradient flow versus gradient descent: aligned gaps, their orders in lr, modified
equations, the escape rate, the stability edge and branch maps.

GD θ_{k+1} = θ_k − η∇ℓ(θ_k) is aligned with flow time t = kη. Over a fixed horizon T
(Euler's method on dθ/dt = −∇ℓ, Hairer–Lubich–Wanner, *Geometric Numerical Integration*,
IX.1):

    sup_{kη ≤ T} ‖θ_k − θ_flow(kη)‖ = O(η)                        order 1
    modified flow, first order  F1 = −∇(ℓ + (η/4)‖∇ℓ‖²)           order 2
        (Barrett & Dherin 2021, "Implicit gradient regularization")
    modified flow, second order F2 = F1 + η²(f''(f,f)/12 + f'f'f/3)  order 3
        with f = −∇ℓ: f'f'f = −H²g and f''(f,f) = −∇³ℓ[g,g] (g = ∇ℓ, H = ∇²ℓ);
        this η² term is not a gradient in general.

Near the origin −∇²ℓ(0) has top eigenvalue μ1, so the flow escapes like e^{μ1 t} while GD
multiplies the top mode by (1 + ημ1) per step, i.e. escapes at rate

    ρ(η) = log(1 + ημ1)/η = μ1 − ημ1²/2 + η²μ1³/3 − …            (``escape_rate``)

and leaves a neighbourhood of radius R later by ≈ log(R/‖P1θ0‖)(1/ρ − 1/μ1) (P1: projection
onto the top eigenspace; this linear estimate ignores the nonlinear part of the escape).

Near an end point θ* GD follows the flow only if η < 2/λ_max(∇²ℓ(θ*)) (``stability_edge``);
beyond it the iterates cannot settle there. Every function here reports that as a status
(and a ``GDStabilityWarning``) instead of presenting NaN or oscillating iterates as results.

Settings of ``compare`` and why: gaps are measured over a short horizon (default T = 10)
from a moderate initial scale (default 1e-2 in the CLI and demo). The GD–flow gap is then
dominated by the O(η) local error, not by the exponential sensitivity of a long escape
from 1e-8 (where an O(η) change of the escape rate becomes an O(η·log(1/α)) time shift and
the gap saturates at O(1) already for moderate η). The flows are integrated together
with diffrax's 8th-order Dopri8 at rtol 1e-13 in θ-coordinates (no log-norm transform is
needed at these scales), so that the O(η³) gap of the second-order modified flow stays
far above the integration error down to η = 1e-3.

    >>> import flowtools as ft
    >>> from flowtools.discretization import compare
    >>> pb = ft.example1()
    >>> cmp = compare(pb, pb.init_gaussian(1e-2, seed=0), [0.004, 0.008, 0.016, 0.032])
    >>> [round(float(q), 1) for q in cmp.orders]   # GD vs the flow, modified flows 1, 2
    [1.0, 2.0, 3.0]
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from flowtools import _validate as V
from flowtools.branches import classify
from flowtools.descent import run_gd
from flowtools.errors import FlowtoolsError
from flowtools.models import Problem

DEFAULT_LRS = (1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1)
PAPER_LRS = (0.01, 0.05, 0.25, 0.5)  # the paper's learning rates (Appendix C)


class GDStabilityWarning(UserWarning):
    """GD at this learning rate cannot follow the flow (beyond 2/λ_max) or diverged."""


# ----------------------------------------------------------------------------- fields
def _grad_terms(problem, theta):
    g = problem.grad(theta)
    _, Hg = jax.jvp(problem.grad, (theta,), (g,))
    return g, Hg


def modified_field(problem: Problem, lr: float, order: int = 1):
    """The field of GD's modified (backward-error) flow of the given order, θ ↦ dθ/dt.

    order 0: −g;  order 1: −g − (η/2)Hg = −∇(ℓ + (η/4)‖g‖²);
    order 2: order 1 − η²(∇³ℓ[g,g]/12 + H²g/3)   (g = ∇ℓ, H = ∇²ℓ).

    GD stays within O(η^{order+1}) of this flow over a fixed horizon.

        >>> import jax.numpy as jnp, flowtools as ft
        >>> pb = ft.example1(); th = jnp.array([0.3, 0.5, -0.2, 0.1, 0.4, 0.2])
        >>> F = modified_field(pb, 0.01, 1)
        >>> bool(jnp.allclose(F(th), -jax.grad(modified_loss(pb, 0.01))(th)))
        True
    """
    if isinstance(order, bool) or order not in (0, 1, 2):
        raise FlowtoolsError(f"the modified flow's order must be 0, 1 or 2, got {order!r}.")

    def F(theta):
        g, Hg = _grad_terms(problem, theta)
        out = -g
        if order >= 1:
            out = out - 0.5 * lr * Hg
        if order >= 2:
            # ∇³ℓ[g,g] = d/dε H(θ + εg)g at ε = 0 with g held fixed; H²g = H(Hg)
            T3 = jax.jvp(lambda th: jax.jvp(problem.grad, (th,), (g,))[1], (theta,), (g,))[1]
            _, H2g = jax.jvp(problem.grad, (theta,), (Hg,))
            out = out - lr**2 * (T3 / 12.0 + H2g / 3.0)
        return out

    return F


def modified_loss(problem: Problem, lr: float):
    """ℓ̃(θ) = ℓ(θ) + (η/4)‖∇ℓ(θ)‖², whose gradient flow GD follows to O(η²)."""

    def L(theta):
        g = problem.grad(theta)
        return problem.loss(theta) + 0.25 * lr * jnp.dot(g, g)

    return L


# ----------------------------------------------------------------------------- escape
def escape_rate(problem: Problem, lr: float) -> float:
    """GD's escape rate from the origin, log(1 + ημ1)/η (→ μ1 as η → 0)."""
    lr = V.learning_rate(lr)
    mu1 = problem.mu1
    return math.log1p(lr * mu1) / lr


def linearized_gd_rate(problem: Problem, lr: float, *, n_iter: int | None = None,
                       theta0=None) -> float:
    """The escape rate of GD on the linearized system θ_{k+1} = θ_k − η∇²ℓ(0)θ_k, measured
    from the growth of ‖θ_k‖ over the last step of ``n_iter`` iterations (the Hessian at 0
    comes from ``jax.hessian``, μ1 is not used). Equals ``escape_rate`` up to round-off.

    The default ``n_iter`` makes the other modes 1e-18 of the top one:
    ⌈42/log(1 + η‖∇²ℓ(0)‖₂)⌉."""
    lr = V.learning_rate(lr)
    if n_iter is not None:
        n_iter = V.positive_int(n_iter, "n_iter")
    p = problem.n_params
    _require_dense_hessian(problem, "the linearized GD rate")
    H0 = np.asarray(problem.hessian(jnp.zeros(p)))
    if n_iter is None:
        n_iter = math.ceil(42.0 / math.log1p(lr * np.linalg.norm(H0, 2)))
    x = np.ones(p) if theta0 is None else problem.check_theta(theta0).astype(float)
    for _ in range(n_iter):
        x = x - lr * (H0 @ x)
        x = x / np.linalg.norm(x)  # renormalize: only the growth of the last step counts
    return math.log(np.linalg.norm(x - lr * (H0 @ x))) / lr


def escape_time(ts, thetas, radius: float) -> float:
    """First time ‖θ(t)‖ reaches ``radius`` (log-linear interpolation between records);
    NaN if it never does or starts beyond it."""
    nrm = np.linalg.norm(thetas, axis=-1)
    if not np.isfinite(nrm[0]) or nrm[0] >= radius:
        return float("nan")
    above = np.flatnonzero(nrm >= radius)
    if above.size == 0:
        return float("nan")
    j = above[0]
    l0, l1 = np.log(nrm[j - 1]), np.log(nrm[j])
    return float(ts[j - 1] + (np.log(radius) - l0) / (l1 - l0) * (ts[j] - ts[j - 1]))


# ----------------------------------------------------------------------------- stability
@dataclass(frozen=True, eq=False)
class StabilityEdge:
    """GD's stability edge at a point θ*: lr_edge = 2/λ_max(∇²ℓ(θ*)).

    ``lr_measured`` is the edge found independently by bisection on GD started at
    θ* + ε·v_max (the top eigenvector): the largest η for which GD returns within ε
    of θ* (None if not measured; NaN if the bracket [edge/2, 2·edge] did not hold).
    """

    theta: np.ndarray
    lam_max: float
    lr_edge: float
    lr_measured: float | None
    eigvec: np.ndarray
    loss: float


def stability_edge(problem: Problem, theta, *, measure: bool = True, eps: float = 1e-7,
                   n_iter: int = 4000, rtol: float = 1e-4) -> StabilityEdge:
    """The largest learning rate for which GD still settles at θ (an end point of the flow).

    Args:
        problem: the ``Problem``.
        theta: (p,) the point, normally a minimum (e.g. the flow's end point).
        measure: also bisect for the edge with GD itself (independent of the eigenvalue).
        eps, n_iter: size of the perturbation along v_max and iterations per trial.
        rtol: relative resolution of the bisection.

    Returns:
        A ``StabilityEdge``. At a Q1 point of Example 1 (n = 6) lr_edge ≈ 0.265–0.271,
        at a Q2 point at most ≈ 0.47: the paper's lr = 0.5 is beyond both.
    """
    theta = problem.check_theta(theta)
    if theta.ndim != 1:
        raise FlowtoolsError("stability_edge takes one point θ of shape (p,).")
    measure = V.flag(measure, "measure")
    eps = V.positive_float(eps, "eps")
    n_iter = V.positive_int(n_iter, "n_iter")
    rtol = V.in_open_interval(rtol, "rtol", 0.0, 1.0)
    th = jnp.asarray(theta)
    _require_dense_hessian(problem, "the stability edge")
    lam, vec = np.linalg.eigh(np.asarray(problem.hessian(th)))
    lam_max, v = float(lam[-1]), vec[:, -1]
    if lam_max <= 0:
        raise FlowtoolsError("∇²ℓ(θ) has no positive eigenvalue: θ is not near a minimum.")
    edge = 2.0 / lam_max
    measured = None
    if measure:
        run = _perturbed_gd(problem)

        def decays(lr):
            x = np.asarray(run(th + eps * jnp.asarray(v), jnp.float64(lr), n_iter))
            return bool(np.all(np.isfinite(x))) and np.linalg.norm(x - theta) < eps

        lo, hi = 0.5 * edge, 2.0 * edge
        if not decays(lo) or decays(hi):
            measured = float("nan")
        else:
            while hi - lo > rtol * lo:
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if decays(mid) else (lo, mid)
            measured = 0.5 * (lo + hi)
    return StabilityEdge(theta=theta, lam_max=lam_max, lr_edge=edge, lr_measured=measured,
                         eigvec=v, loss=float(problem.loss(th)))


def _perturbed_gd(problem):
    def run(theta, lr, n_iter):
        gd = run_gd(problem, np.asarray(theta), float(lr), max_iter=int(n_iter),
                    loss_threshold=0, n_save=2)
        return gd.theta_final

    return run


# ----------------------------------------------------------------------------- alignment
def _gd_records(problem, theta0, lr, stride, n_rec):
    """θ_{j·stride} for j = 0…n_rec (one compilation for every lr and stride)."""
    ks = np.arange(n_rec + 1) * stride
    gd = run_gd(problem, np.asarray(theta0), float(lr), max_iter=int(ks[-1]),
                loss_threshold=0, record_at=ks)
    return gd.thetas


def _stacked_field(t, y, args):
    problem, lr = args
    th = y.reshape(3, -1)
    return jnp.concatenate([modified_field(problem, lr, q)(th[q]) for q in range(3)])


@eqx.filter_jit
def _flows(problem, theta0, lr, save_ts, rtol, atol, max_steps):
    y0 = jnp.tile(theta0, 3)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(_stacked_field), diffrax.Dopri8(), 0.0, save_ts[-1], None, y0,
        args=(problem, lr), saveat=diffrax.SaveAt(ts=save_ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol, pcoeff=0.0,
                                                  icoeff=1.0),
        max_steps=max_steps, throw=False,
    )
    return sol.ys.reshape(save_ts.shape[0], 3, -1), sol.result == diffrax.RESULTS.successful


@dataclass(frozen=True, eq=False)
class Alignment:
    """GD iterates and the flows (order 0 = the gradient flow, 1 and 2 = modified flows)
    at the same flow times t = kη.

    Attributes:
        lr: η.
        ts: (J,) record times kη (every ``stride``-th iterate).
        gd: (J, p) GD iterates.
        flows: (3, J, p) the order-0/1/2 flows at ``ts``.
        gd_loss, flow_loss: (J,) ℓ along GD and along the gradient flow.
        finite: GD stayed finite.
        solver_ok: the flow integration succeeded.
    """

    lr: float
    ts: np.ndarray
    gd: np.ndarray
    flows: np.ndarray
    gd_loss: np.ndarray
    flow_loss: np.ndarray
    finite: bool
    solver_ok: bool

    def gap(self, order: int = 0) -> float:
        """sup_t ‖θ_GD(t) − θ_order(t)‖ over the records (NaN if GD diverged)."""
        if not self.finite:
            return float("nan")
        return float(np.max(np.linalg.norm(self.gd - self.flows[order], axis=-1)))

    @property
    def loss_gap(self) -> float:
        """sup_t |ℓ(θ_GD(t)) − ℓ(θ_flow(t))|."""
        if not self.finite:
            return float("nan")
        return float(np.max(np.abs(self.gd_loss - self.flow_loss)))


def align(problem: Problem, theta0, lr: float, *, t1: float = 10.0, n_rec: int = 2000,
          rtol: float = 1e-13, max_steps: int = 200_000) -> Alignment:
    """GD at learning rate ``lr`` and the order-0/1/2 flows from ``theta0``, recorded at the
    same times t = kη ≤ t1 (every ⌈(t1/η)/n_rec⌉-th iterate).

    One compilation serves every learning rate and horizon (η, the record times and the
    tolerances are traced; ``n_rec`` fixes the shapes).
    """
    theta0 = problem.check_theta(theta0)
    if theta0.ndim != 1:
        raise FlowtoolsError("align takes one initial state θ0 of shape (p,).")
    lr = V.learning_rate(lr)
    t1 = V.positive_float(t1, "the horizon t1")
    n_rec = V.positive_int(n_rec, "n_rec")
    rtol = V.in_open_interval(rtol, "rtol", 0.0, 1.0)
    max_steps = V.positive_int(max_steps, "max_steps")
    V.memory(8.0 * problem.n_params * (n_rec + 1) * 8,
             f"recording GD and three flows at {n_rec + 1} times (p = {problem.n_params})",
             "lower n_rec or use a smaller model")
    K = int(np.floor(t1 / lr + 1e-9))
    if K < 1:
        raise FlowtoolsError(f"the horizon t1 = {t1} is shorter than one step lr = {lr}.")
    stride = max(1, math.ceil(K / n_rec))
    J = K // stride
    ks = np.arange(J + 1) * stride
    ts = ks * lr
    save = np.concatenate([ts, np.full(n_rec - J, ts[-1])])
    th0 = jnp.asarray(theta0)
    gd = _gd_records(problem, th0, lr, stride, n_rec)[: J + 1]
    scale = min(1.0, float(np.linalg.norm(theta0)))
    flows, ok = _flows(problem, th0, jnp.float64(lr), jnp.asarray(save), jnp.float64(rtol),
                       jnp.float64(rtol * scale), max_steps)
    flows = np.asarray(flows)[: J + 1].transpose(1, 0, 2)
    loss = jax.vmap(problem.loss)
    finite = bool(np.all(np.isfinite(gd)))
    with np.errstate(all="ignore"):
        gd_loss = np.asarray(loss(jnp.asarray(gd)))
    finite = finite and bool(np.all(np.isfinite(gd_loss)))
    return Alignment(lr=float(lr), ts=ts, gd=gd, flows=flows, gd_loss=gd_loss,
                     flow_loss=np.asarray(loss(jnp.asarray(flows[0]))), finite=finite,
                     solver_ok=bool(ok))


# ----------------------------------------------------------------------------- comparison
def fit_order(lrs, gaps) -> float:
    """Least-squares slope of log(gap) against log(lr) over the finite, positive gaps."""
    lrs, gaps = np.asarray(lrs, float), np.asarray(gaps, float)
    keep = np.isfinite(gaps) & (gaps > 0)
    if keep.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(lrs[keep]), np.log(gaps[keep]), 1)[0])


@dataclass(frozen=True, eq=False)
class Comparison:
    """Flow versus GD for one problem and initial state over a set of learning rates.

    Per learning rate (arrays over ``lrs``): ``gap[q]`` = sup_t ‖θ_GD − θ_q‖ against the
    order-q flow (q = 0: the gradient flow; 1, 2: modified flows), ``loss_gap``,
    ``escape_gd`` (first t with ‖θ_GD‖ ≥ ``radius``), ``status`` ("ok", "beyond_edge" —
    η ≥ 2/λ_max somewhere on the flow's path or at its end point, so GD need not follow —,
    or "diverged"). ``orders[q]`` = fitted slope of gap[q] over the "ok" rates.

    End points (if ``endpoint_t1`` was given): GD (``run_gd``, same loss threshold) and the
    flow (``solve_flow``) at flow time ``endpoint_t1``; ``endpoint_diff``, their branches
    (``classify`` at that finite horizon) and ``same_branch``.
    """

    lrs: np.ndarray
    t1: float
    gap: np.ndarray  # (3, L)
    loss_gap: np.ndarray
    orders: np.ndarray  # (3,)
    status: np.ndarray
    escape_flow: float
    escape_gd: np.ndarray
    escape_pred_shift: np.ndarray
    radius: float
    lr_edge_path: float
    lr_edge_end: float | None = None
    endpoint_t1: float | None = None
    flow_branch: str | None = None
    flow_end_loss: float | None = None
    gd_branch: np.ndarray | None = None
    gd_end_loss: np.ndarray | None = None
    endpoint_diff: np.ndarray | None = None
    same_branch: np.ndarray | None = None
    alignments: list = field(default_factory=list, repr=False)

    def table(self) -> str:
        """A plain-text report."""
        lines = [
            f"flow vs GD over t ≤ {self.t1:g} (t = k·lr); fitted orders of the gap in lr: "
            f"flow {self.orders[0]:.3f}, modified-1 {self.orders[1]:.3f}, "
            f"modified-2 {self.orders[2]:.3f}",
            f"stability edge 2/λ_max: along the flow's path {self.lr_edge_path:.4g}"
            + (f", at its end point {self.lr_edge_end:.4g}" if self.lr_edge_end else ""),
            f"escape (‖θ‖ ≥ {self.radius:g}): flow t = {self.escape_flow:.5g}",
            f"{'lr':>8} {'status':>11} {'gap flow':>10} {'gap mod1':>10} {'gap mod2':>10} "
            f"{'gap loss':>10} {'esc. shift':>10} {'predicted':>10}",
        ]
        for i, lr in enumerate(self.lrs):
            lines.append(
                f"{lr:8.4g} {self.status[i]:>11} {self.gap[0, i]:10.3e} {self.gap[1, i]:10.3e} "
                f"{self.gap[2, i]:10.3e} {self.loss_gap[i]:10.3e} "
                f"{self.escape_gd[i] - self.escape_flow:10.3e} {self.escape_pred_shift[i]:10.3e}"
            )
        if self.endpoint_t1 is not None:
            lines.append(f"end points at t = {self.endpoint_t1:g} (finite-horizon branches): "
                         f"flow {self.flow_branch} (loss {self.flow_end_loss:.2e})")
            for i, lr in enumerate(self.lrs):
                lines.append(
                    f"{lr:8.4g} GD {self.gd_branch[i]:>5} (loss {self.gd_end_loss[i]:.2e}) "
                    f"‖Δθ_end‖ = {self.endpoint_diff[i]:.3e} same branch: "
                    f"{bool(self.same_branch[i])}"
                )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-ready summary (no trajectories)."""
        out = {}
        for k, v in self.__dict__.items():
            if k == "alignments":
                continue
            out[k] = v.tolist() if isinstance(v, np.ndarray) else v
        return out


def compare(problem: Problem, theta0, lrs=DEFAULT_LRS, *, t1: float = 10.0,
            n_rec: int = 2000, rtol: float = 1e-13, radius: float = 0.5,
            endpoint_t1: float | None = None, loss_threshold: float = 1e-15,
            tol: float = 0.1, keep: bool = False) -> Comparison:
    """Measure how far GD is from the flow on ``problem`` from ``theta0``.

    Args:
        problem: the ``Problem``.
        theta0: (p,) initial state; a moderate scale (1e-2…1e-1) keeps the gap
            dominated by the lr-error (see the module docstring).
        lrs: learning rates.
        t1: horizon of the aligned comparison (flow time).
        n_rec: records per run (every ⌈(t1/η)/n_rec⌉-th iterate).
        rtol: tolerance of the flow integrations (Dopri8).
        radius: escape radius for the escape times.
        endpoint_t1: if given, also run GD (``run_gd``) and the flow (``solve_flow``) to
            this flow time (or ``loss_threshold``) and compare end points and branches.
        tol: branch tolerance for ``classify``.
        keep: keep the ``Alignment`` of every rate in ``alignments``.

    Returns:
        A ``Comparison``. Rates with η ≥ 2/λ_max on the flow's path (or at its end point)
        get status "beyond_edge", GD runs that overflowed "diverged" (gaps NaN); both
        raise a ``GDStabilityWarning`` and are left out of the fitted orders.
    """
    theta0 = problem.check_theta(theta0)
    if theta0.ndim != 1:
        raise FlowtoolsError("compare takes one initial state θ0 of shape (p,).")
    lrs = _check_lrs(lrs)
    t1 = V.positive_float(t1, "the horizon t1")
    radius = V.positive_float(radius, "the escape radius")
    if endpoint_t1 is not None:
        endpoint_t1 = V.positive_float(endpoint_t1, "endpoint_t1")
    loss_threshold = V.loss_threshold(loss_threshold)
    tol = V.positive_float(tol, "the branch tolerance tol")
    keep = V.flag(keep, "keep")
    _require_dense_hessian(problem, "compare's stability edge")
    al = [align(problem, theta0, lr, t1=t1, n_rec=n_rec, rtol=rtol) for lr in lrs]
    if not all(a.solver_ok for a in al):
        raise FlowtoolsError("the flow integration failed (max_steps): lower t1 or raise rtol.")
    # λ_max along the flow's path (records of the densest run, ≤ 200 points)
    dense = al[int(np.argmin(lrs))]
    idx = np.unique(np.linspace(0, len(dense.ts) - 1, 200).astype(int))
    lam_path = _lam_max(problem, dense.flows[0][idx])
    edge_path = 2.0 / float(np.max(lam_path))
    gap = np.array([[a.gap(q) for a in al] for q in range(3)])
    loss_gap = np.array([a.loss_gap for a in al])
    status = np.array(["ok"] * lrs.size, dtype=object)
    status[lrs >= edge_path] = "beyond_edge"
    status[[not a.finite for a in al]] = "diverged"
    # escape
    mu1 = problem.mu1 if not problem.assumption_failures() else float("nan")
    esc_flow = escape_time(dense.ts, dense.flows[0], radius)
    esc_gd = np.array([escape_time(a.ts, a.gd, radius) if a.finite else np.nan for a in al])
    with np.errstate(all="ignore"):
        rho = np.log1p(lrs * mu1) / lrs
        top = np.linalg.norm(problem.top_eigvecs.T @ theta0) if np.isfinite(mu1) else np.nan
        pred = np.log(radius / top) * (1.0 / rho - 1.0 / mu1)
    res = dict(lrs=lrs, t1=float(t1), gap=gap, loss_gap=loss_gap, status=status,
               escape_flow=esc_flow, escape_gd=esc_gd, escape_pred_shift=pred, radius=radius,
               lr_edge_path=edge_path)
    if endpoint_t1 is not None:
        res.update(_endpoints(problem, theta0, lrs, endpoint_t1, loss_threshold, tol, status))
    ok = status == "ok"
    orders = np.array([fit_order(lrs[ok], gap[q, ok]) for q in range(3)])
    for lr, st in zip(lrs, status, strict=True):
        if st != "ok":
            warnings.warn(_stability_message(lr, st, edge_path, res.get("lr_edge_end")),
                          GDStabilityWarning, stacklevel=2)
    return Comparison(orders=orders, alignments=al if keep else [], **res)


def _stability_message(lr, st, edge_path, edge_end):
    if st == "diverged":
        return (f"GD at lr = {lr:g} diverged (NaN/inf): its gaps are NaN, not results. "
                f"Use lr < {edge_path:.4g} (2/λ_max along the flow's path).")
    edge = edge_path if edge_end is None else min(edge_path, edge_end)
    return (f"lr = {lr:g} is at or beyond GD's stability edge 2/λ_max = {edge:.4g} (on the "
            "flow's path or at its end point): GD cannot settle where the flow goes, so "
            "its gaps are reported but left out of the fitted orders.")


def _lam_max(problem, thetas):
    """λ_max(∇²ℓ) at each of ``thetas`` (K, p): dense Hessians, all at once when they fit in
    a quarter of the available memory, one at a time otherwise."""
    thetas = jnp.asarray(thetas)
    p = problem.n_params
    _require_dense_hessian(problem, "λ_max along the path")
    if 8.0 * p * p * len(thetas) <= 0.25 * V.available_memory():
        H = jax.vmap(problem.hessian)(thetas)
        return np.linalg.eigvalsh(np.asarray(H))[:, -1]
    return np.array([np.linalg.eigvalsh(np.asarray(problem.hessian(th)))[-1] for th in thetas])


def _require_dense_hessian(problem, what):
    p = problem.n_params
    V.memory(3 * 8.0 * p * p, f"{what} (a dense {p}×{p} Hessian and its eigen-decomposition)",
             "compare flow and GD on a smaller model (the dense Hessian is what the stability "
             "edge 2/λ_max is computed from)")


def _endpoints(problem, theta0, lrs, T, loss_threshold, tol, status):
    from flowtools.flow import solve_flow

    flow = solve_flow(problem, theta0, t1=T, loss_threshold=loss_threshold)
    cf = classify(problem, flow.theta_final, tol=tol)
    lam = _lam_max(problem, flow.theta_final[None])[0]
    edge_end = 2.0 / lam if lam > 0 else float("inf")
    gd_branch, gd_loss, diff = [], [], []
    for lr in lrs:
        gd = run_gd(problem, theta0, lr, max_iter=max(1, int(round(T / lr))),
                    loss_threshold=loss_threshold, n_save=3)
        if np.all(np.isfinite(gd.theta_final)) and np.isfinite(gd.loss_final):
            gd_branch.append(str(classify(problem, gd.theta_final, tol=tol).branch))
            diff.append(float(np.linalg.norm(gd.theta_final - flow.theta_final)))
        else:
            gd_branch.append("diverged")
            diff.append(float("nan"))
        gd_loss.append(float(gd.loss_final))
    gd_branch = np.array(gd_branch, dtype=object)
    status[(lrs >= edge_end) & (status == "ok")] = "beyond_edge"
    status[gd_branch == "diverged"] = "diverged"
    return dict(lr_edge_end=edge_end, endpoint_t1=float(T), flow_branch=str(cf.branch),
                flow_end_loss=float(flow.loss_final), gd_branch=gd_branch,
                gd_end_loss=np.array(gd_loss), endpoint_diff=np.array(diff),
                same_branch=gd_branch == str(cf.branch))


def _check_lrs(lrs) -> np.ndarray:
    """A non-empty 1-d array of learning rates, each positive and finite."""
    lrs = V.real_array(lrs, "lrs", finite=False).ravel()
    if lrs.size == 0:
        raise FlowtoolsError("give at least one learning rate.")
    return np.array([V.learning_rate(lr) for lr in lrs])

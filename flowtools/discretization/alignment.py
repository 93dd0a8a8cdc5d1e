"""The alignment: GD's iterates and the flows at the same flow times t = kη.

GD at learning rate η is recorded at t = kη (every ``stride``-th iterate) beside the
order-0/1/2 flows (the gradient flow and the modified flows of
``flowtools.discretization.modified_flow``) from the same θ0, so that the sup-gaps
sup_t ‖θ_GD(t) − θ_q(t)‖ can be read off one record. The three flows are integrated as one
stacked system y = (θ_0, θ_1, θ_2), one trajectory of the integrator core
(``flowtools.integrate``): diffrax's 8th-order Dopri8 at rtol 1e-13, atol = rtol·min(1, ‖θ0‖),
the classical I controller, in θ-coordinates (no log-norm transform is needed at the
moderate scales compared here), so that the O(η³) gap of the second-order modified flow
stays far above the integration error down to η = 1e-3. Any
``flowtools.models.AbstractModel`` can be aligned.

    >>> import flowtools as ft
    >>> from flowtools.discretization import align
    >>> pb = ft.example1()
    >>> a = align(pb, pb.init_gaussian(1e-2, seed=0), 0.01, t1=1.0, n_rec=100)
    >>> a.ts.shape, a.flows.shape, bool(a.gap(2) < a.gap(1) < a.gap(0))
    ((101,), (3, 101, 6), True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from flowtools import _validate as V
from flowtools.descent import run_gd
from flowtools.discretization.modified_flow import modified_field
from flowtools.errors import FlowtoolsError
from flowtools.integrate import IntegratorOptions, integrate
from flowtools.models import AbstractModel
from flowtools.status import Status

__all__ = ["Alignment", "align"]


def _gd_records(model, theta0, lr, stride, n_rec):
    """θ_{j·stride} for j = 0…n_rec (one compilation for every lr and stride)."""
    ks = np.arange(n_rec + 1) * stride
    gd = run_gd(model, np.asarray(theta0), float(lr), max_iter=int(ks[-1]),
                loss_threshold=0, record_at=ks)
    return gd.thetas


def _stacked_field(y, args):
    """The order-0/1/2 modified fields side by side on y = (θ_0, θ_1, θ_2)."""
    model, lr = args
    th = y.reshape(3, -1)
    return jnp.concatenate([modified_field(model, lr, q)(th[q]) for q in range(3)])


def _flows(model, theta0, lr, save_ts, rtol, atol, max_steps):
    """The three flows from θ0 at ``save_ts`` (one trajectory of the integrator core, in
    θ-coordinates, Dopri8 with the classical I controller) and whether it reached the end."""
    opts = IntegratorOptions(solver="dopri8", rtol=rtol, atol=atol, coords="theta",
                             pcoeff=0.0, icoeff=1.0, max_steps=max_steps)
    sol = integrate(_stacked_field, (model, jnp.float64(lr)), np.tile(theta0, 3)[None],
                    save_ts, opts)
    return sol.thetas[0].reshape(len(save_ts), 3, -1), int(sol.status[0]) == Status.HORIZON


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


def align(model: AbstractModel, theta0, lr: float, *, t1: float = 10.0, n_rec: int = 2000,
          rtol: float = 1e-13, max_steps: int = 200_000) -> Alignment:
    """GD at learning rate ``lr`` and the order-0/1/2 flows from ``theta0``, recorded at the
    same times t = kη ≤ t1 (every ⌈(t1/η)/n_rec⌉-th iterate).

    One compilation serves every learning rate and horizon (η, the record times and the
    tolerances are traced; ``n_rec`` fixes the shapes).
    """
    theta0 = model.check_theta(theta0, single="align")
    lr = V.learning_rate(lr)
    t1 = V.positive_float(t1, "the horizon t1")
    n_rec = V.positive_int(n_rec, "n_rec")
    rtol = V.in_open_interval(rtol, "rtol", 0.0, 1.0)
    max_steps = V.positive_int(max_steps, "max_steps")
    V.memory(8.0 * model.n_params * (n_rec + 1) * 8,
             f"recording GD and three flows at {n_rec + 1} times (p = {model.n_params})",
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
    gd = _gd_records(model, th0, lr, stride, n_rec)[: J + 1]
    # atol = rtol·min(1, ‖θ0‖): relative to the initial scale (rtol itself from θ0 = 0)
    scale = min(1.0, float(np.linalg.norm(theta0))) or 1.0
    flows, ok = _flows(model, theta0, lr, save, rtol, rtol * scale, max_steps)
    flows = flows[: J + 1].transpose(1, 0, 2)
    loss = jax.vmap(model.loss)
    finite = bool(np.all(np.isfinite(gd)))
    with np.errstate(all="ignore"):
        gd_loss = np.asarray(loss(jnp.asarray(gd)))
    finite = finite and bool(np.all(np.isfinite(gd_loss)))
    return Alignment(lr=float(lr), ts=ts, gd=gd, flows=flows, gd_loss=gd_loss,
                     flow_loss=np.asarray(loss(jnp.asarray(flows[0]))), finite=finite,
                     solver_ok=bool(ok))

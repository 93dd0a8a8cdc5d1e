"""The escape from the origin: GD's escape rate and the time a run leaves a ball.

Near the origin −∇²ℓ(0) has top eigenvalue μ1, so the flow escapes like e^{μ1 t} while GD
multiplies the top mode by (1 + ημ1) per step, i.e. escapes at rate

    ρ(η) = log(1 + ημ1)/η = μ1 − ημ1²/2 + η²μ1³/3 − …            (``escape_rate``)

and leaves a neighbourhood of radius R later by ≈ log(R/‖P1θ0‖)(1/ρ − 1/μ1) (P1: projection
onto the top eigenspace; this linear estimate ignores the nonlinear part of the escape).
μ1 is a quantity of the paper's theory (the two-layer family); ``linearized_gd_rate``
measures the same rate from the Hessian at 0 of any model, and ``escape_time`` reads the
escape off any recorded run.

    >>> import flowtools as ft
    >>> from flowtools.discretization import escape_rate, linearized_gd_rate
    >>> pb = ft.example1()
    >>> rho = escape_rate(pb, 0.01)
    >>> bool(rho < pb.mu1), abs(rho - linearized_gd_rate(pb, 0.01)) < 1e-10
    (True, True)
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from flowtools import _validate as V
from flowtools.discretization.stability import _require_dense_hessian
from flowtools.models import AbstractModel

__all__ = ["escape_rate", "escape_time", "linearized_gd_rate"]


def escape_rate(model: AbstractModel, lr: float) -> float:
    """GD's escape rate from the origin, log(1 + ημ1)/η (→ μ1 as η → 0).

    Needs the paper's theory (μ1): a model outside it raises its ``AssumptionError``."""
    lr = V.learning_rate(lr)
    model.require_theory()
    return math.log1p(lr * model.mu1) / lr


def linearized_gd_rate(model: AbstractModel, lr: float, *, n_iter: int | None = None,
                       theta0=None) -> float:
    """The escape rate of GD on the linearized system θ_{k+1} = θ_k − η∇²ℓ(0)θ_k, measured
    from the growth of ‖θ_k‖ over the last step of ``n_iter`` iterations (the Hessian at 0
    comes from ``jax.hessian``, μ1 is not used). Equals ``escape_rate`` up to round-off.

    The default ``n_iter`` makes the other modes 1e-18 of the top one:
    ⌈42/log(1 + η‖∇²ℓ(0)‖₂)⌉."""
    lr = V.learning_rate(lr)
    if n_iter is not None:
        n_iter = V.positive_int(n_iter, "n_iter")
    p = model.n_params
    _require_dense_hessian(model, "the linearized GD rate")
    H0 = np.asarray(model.hessian(jnp.zeros(p)))
    if n_iter is None:
        n_iter = math.ceil(42.0 / math.log1p(lr * np.linalg.norm(H0, 2)))
    x = np.ones(p) if theta0 is None else model.check_theta(theta0).astype(float)
    for _ in range(n_iter):
        x = x - lr * (H0 @ x)
        x = x / np.linalg.norm(x)  # renormalize: only the growth of the last step counts
    return math.log(np.linalg.norm(x - lr * (H0 @ x))) / lr


def escape_time(ts, thetas, radius: float = 1.0) -> float:
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

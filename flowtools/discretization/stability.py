"""The stability edge: the largest learning rate at which GD can settle where the flow goes.

Near an end point θ* GD follows the flow only if η < 2/λ_max(∇²ℓ(θ*)) (``stability_edge``);
beyond it the iterates cannot settle there. ``compare`` and the branch map report such rates
as ``Regime.BEYOND_EDGE`` (and a ``GDStabilityWarning``) instead of presenting NaN or
oscillating iterates as results. λ_max comes from ``flowtools.curvature`` (dense Hessians
up to its ``DENSE_MAX`` parameters, Lanczos on Hessian-vector products above); a model whose
dense Hessian would exhaust memory is refused with the reason.

    >>> import numpy as np, flowtools as ft
    >>> from flowtools.discretization import stability_edge
    >>> e = stability_edge(ft.example1(), np.array([0.5, 1, 1, 0.5, 1, 1.0]), measure=False)
    >>> bool(e.lr_edge < 0.3)          # the paper's lr = 0.5 is beyond this Q1 point's edge
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from flowtools import _validate as V
from flowtools.curvature import hessian_extremes, lam_max_at
from flowtools.descent import run_gd
from flowtools.errors import FlowtoolsError
from flowtools.models import AbstractModel

__all__ = ["GDStabilityWarning", "StabilityEdge", "lam_max", "stability_edge"]


class GDStabilityWarning(UserWarning):
    """GD at this learning rate cannot follow the flow (beyond 2/λ_max) or diverged."""


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


def stability_edge(model: AbstractModel, theta, *, measure: bool = True, eps: float = 1e-7,
                   n_iter: int = 4000, rtol: float = 1e-4) -> StabilityEdge:
    """The largest learning rate for which GD still settles at θ (an end point of the flow).

    Args:
        model: any ``AbstractModel``.
        theta: (p,) the point, normally a minimum (e.g. the flow's end point).
        measure: also bisect for the edge with GD itself (independent of the eigenvalue).
        eps: size of the perturbation along v_max.
        n_iter: GD iterations per trial.
        rtol: relative resolution of the bisection.

    Returns:
        A ``StabilityEdge``. At a Q1 point of Example 1 (n = 6) lr_edge ≈ 0.265–0.271,
        at a Q2 point at most ≈ 0.47: the paper's lr = 0.5 is beyond both.
    """
    theta = model.check_theta(theta, single="stability_edge")
    measure = V.flag(measure, "measure")
    eps = V.positive_float(eps, "eps")
    n_iter = V.positive_int(n_iter, "n_iter")
    rtol = V.in_open_interval(rtol, "rtol", 0.0, 1.0)
    th = jnp.asarray(theta)
    _require_dense_hessian(model, "the stability edge")
    top = hessian_extremes(model, th, vectors=True)
    lam_top, v = top.lam_max, top.vec_max
    if lam_top <= 0:
        raise FlowtoolsError("∇²ℓ(θ) has no positive eigenvalue: θ is not near a minimum.")
    edge = 2.0 / lam_top
    measured = None
    if measure:

        def decays(lr):
            gd = run_gd(model, np.asarray(th + eps * jnp.asarray(v)), float(lr),
                        max_iter=n_iter, loss_threshold=0, n_save=2)
            x = np.asarray(gd.theta_final)
            return bool(np.all(np.isfinite(x))) and np.linalg.norm(x - theta) < eps

        lo, hi = 0.5 * edge, 2.0 * edge
        if not decays(lo) or decays(hi):
            measured = float("nan")
        else:
            while hi - lo > rtol * lo:
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if decays(mid) else (lo, mid)
            measured = 0.5 * (lo + hi)
    return StabilityEdge(theta=theta, lam_max=lam_top, lr_edge=edge, lr_measured=measured,
                         eigvec=v, loss=float(model.loss(th)))


def lam_max(model: AbstractModel, thetas) -> np.ndarray:
    """λ_max(∇²ℓ) at each of ``thetas`` (K, p) (``flowtools.curvature.lam_max_at``): dense
    Hessians, all at once when they fit in a quarter of the available memory, one at a time
    otherwise; Lanczos on Hessian-vector products above ``curvature.DENSE_MAX``
    parameters."""
    _require_dense_hessian(model, "λ_max along the path")
    return lam_max_at(model, thetas)


def _require_dense_hessian(model, what):
    p = model.n_params
    V.memory(3 * 8.0 * p * p, f"{what} (a dense {p}×{p} Hessian and its eigen-decomposition)",
             "compare flow and GD on a smaller model (the dense Hessian is what the stability "
             "edge 2/λ_max is computed from)")

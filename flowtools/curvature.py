"""The extreme eigenvalues of ∇²ℓ(θ): dense for small p, matrix-free Lanczos on
Hessian-vector products above.

Up to ``DENSE_MAX`` parameters the Hessian is formed (``model.hessian``, jitted) and
decomposed by ``np.linalg.eigh``; above, ``scipy.sparse.linalg.eigsh`` (implicitly restarted
Lanczos, ARPACK) runs on a ``LinearOperator`` of ``model.hvp`` and never forms a p × p
matrix. The Lanczos start vector is fixed (a seeded Gaussian), so repeated calls agree.
Users: the end-point certification (``certify.stationary_check``), GD's stability edge
(``discretization.stability_edge`` and ``lam_max``) and the CNN phase diagram's λ_max(θ0).

    >>> import numpy as np
    >>> from flowtools import example1
    >>> e = hessian_extremes(example1(), np.array([1.0, 1.0, 1.0, 0.0, 0.3, -0.2]))
    >>> bool(e.lam_min > -1e-12 and e.lam_max > 1)   # a minimum of Example 1
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from flowtools import _validate as V

__all__ = ["DENSE_MAX", "HessianExtremes", "hessian_extremes", "hvp_operator",
           "lam_max_at"]

DENSE_MAX = 3000  # parameters: a dense Hessian and eigh up to here, Lanczos on ∇²ℓ·v above


@dataclass(frozen=True, eq=False)
class HessianExtremes:
    """λ_min and λ_max of ∇²ℓ(θ).

    ``vec_max`` is the unit eigenvector of λ_max (only when asked for). The dense path also
    keeps the whole spectrum: ``eigenvalues`` (ascending) and, when vectors were asked
    for, ``eigenvectors`` (columns); both are None on the matrix-free path. A Hessian that
    is not finite in float64 gives NaN extremes.
    """

    lam_min: float
    lam_max: float
    vec_max: np.ndarray | None = None
    eigenvalues: np.ndarray | None = None
    eigenvectors: np.ndarray | None = None

    @property
    def abs_max(self) -> float:
        """max_j |λ_j| = max(|λ_min|, |λ_max|)."""
        return max(abs(self.lam_min), abs(self.lam_max))

    @property
    def dense(self) -> bool:
        return self.eigenvalues is not None


def hessian_extremes(model, theta, *, vectors: bool = False, dense_max: int = DENSE_MAX,
                     tol: float = 1e-6) -> HessianExtremes:
    """λ_min and λ_max of ∇²ℓ(θ) for a model (``hessian`` and ``hvp``) at one θ (p,).

    Args:
        model: any ``AbstractModel``.
        theta: (p,) the point.
        vectors: also the top eigenvector (and, dense, all eigenvectors).
        dense_max: dense ``eigh`` up to this many parameters, Lanczos above.
        tol: the relative accuracy asked of Lanczos (ARPACK's ``tol``; 0: machine
            precision). The dense path is exact to round-off.
    """
    theta = jnp.asarray(theta, dtype=float)
    p = theta.shape[-1]
    if p <= dense_max:
        H = np.asarray(_hessian(model, theta))
        if not np.all(np.isfinite(H)):
            return HessianExtremes(np.nan, np.nan)
        if not vectors:
            lam = np.linalg.eigvalsh(H)
            return HessianExtremes(float(lam[0]), float(lam[-1]), eigenvalues=lam)
        lam, U = np.linalg.eigh(H)
        return HessianExtremes(float(lam[0]), float(lam[-1]), vec_max=U[:, -1],
                               eigenvalues=lam, eigenvectors=U)
    from scipy.sparse.linalg import eigsh

    op = hvp_operator(model, theta)
    v0 = np.random.default_rng(0).standard_normal(p)
    top = eigsh(op, k=1, which="LA", return_eigenvectors=vectors, tol=tol, v0=v0)
    lam_min = float(eigsh(op, k=1, which="SA", return_eigenvectors=False, tol=tol, v0=v0)[0])
    if vectors:
        return HessianExtremes(lam_min, float(top[0][0]), vec_max=top[1][:, 0])
    return HessianExtremes(lam_min, float(top[0]))


def lam_max_at(model, thetas, *, dense_max: int = DENSE_MAX) -> np.ndarray:
    """λ_max(∇²ℓ) at each of ``thetas`` (K, p). Dense (up to ``dense_max`` parameters): all
    Hessians at once when they fit in a quarter of the available memory, one at a time
    otherwise; Lanczos above."""
    thetas = jnp.asarray(thetas, dtype=float)
    p = thetas.shape[-1]
    if p <= dense_max and 8.0 * p * p * len(thetas) <= 0.25 * V.available_memory():
        H = jax.vmap(model.hessian)(thetas)
        return np.linalg.eigvalsh(np.asarray(H))[:, -1]
    return np.array([hessian_extremes(model, th, dense_max=dense_max).lam_max
                     for th in thetas])


def hvp_operator(model, theta):
    """∇²ℓ(θ) as a ``scipy.sparse.linalg.LinearOperator`` (p × p) of ``model.hvp``."""
    from scipy.sparse.linalg import LinearOperator

    theta = jnp.asarray(theta, dtype=float)
    p = theta.shape[-1]
    return LinearOperator((p, p), dtype=float,
                          matvec=lambda v: np.asarray(_hvp(model, theta, jnp.asarray(v))))


@jax.jit
def _hessian(model, theta):
    return model.hessian(theta)


@jax.jit
def _hvp(model, theta, v):
    return model.hvp(theta, v.reshape(theta.shape))

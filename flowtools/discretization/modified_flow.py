"""Modified flows: the backward-error fields that gradient descent follows to higher order.

GD θ_{k+1} = θ_k − η∇ℓ(θ_k) is Euler's method on dθ/dt = −∇ℓ, aligned with flow time
t = kη. Over a fixed horizon T (Hairer–Lubich–Wanner, *Geometric Numerical Integration*,
IX.1):

    sup_{kη ≤ T} ‖θ_k − θ_flow(kη)‖ = O(η)                        order 1
    modified flow, first order  F1 = −∇(ℓ + (η/4)‖∇ℓ‖²)           order 2
        (Barrett & Dherin 2021, "Implicit gradient regularization")
    modified flow, second order F2 = F1 + η²(f''(f,f)/12 + f'f'f/3)  order 3
        with f = −∇ℓ: f'f'f = −H²g and f''(f,f) = −∇³ℓ[g,g] (g = ∇ℓ, H = ∇²ℓ);
        this η² term is not a gradient in general.

The fields use only ∇ℓ and forward-mode derivatives of it, so they exist for any
``flowtools.models.AbstractModel``.

    >>> import jax, jax.numpy as jnp, flowtools as ft
    >>> from flowtools.discretization import modified_field, modified_loss
    >>> pb = ft.example1(); th = jnp.array([0.3, 0.5, -0.2, 0.1, 0.4, 0.2])
    >>> F = modified_field(pb, 0.01, 1)
    >>> bool(jnp.allclose(F(th), -jax.grad(modified_loss(pb, 0.01))(th)))
    True
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from flowtools.errors import FlowtoolsError
from flowtools.models import AbstractModel

__all__ = ["modified_field", "modified_loss"]


def _grad_terms(model, theta):
    g = model.grad(theta)
    _, Hg = jax.jvp(model.grad, (theta,), (g,))
    return g, Hg


def modified_field(model: AbstractModel, lr: float, order: int = 1):
    """The field of GD's modified (backward-error) flow of the given order, θ ↦ dθ/dt.

    order 0: −g;  order 1: −g − (η/2)Hg = −∇(ℓ + (η/4)‖g‖²);
    order 2: order 1 − η²(∇³ℓ[g,g]/12 + H²g/3)   (g = ∇ℓ, H = ∇²ℓ).

    GD stays within O(η^{order+1}) of this flow over a fixed horizon.
    """
    if isinstance(order, bool) or order not in (0, 1, 2):
        raise FlowtoolsError(f"the modified flow's order must be 0, 1 or 2, got {order!r}.")

    def F(theta):
        g, Hg = _grad_terms(model, theta)
        out = -g
        if order >= 1:
            out = out - 0.5 * lr * Hg
        if order >= 2:
            # ∇³ℓ[g,g] = d/dε H(θ + εg)g at ε = 0 with g held fixed; H²g = H(Hg)
            T3 = jax.jvp(lambda th: jax.jvp(model.grad, (th,), (g,))[1], (theta,), (g,))[1]
            _, H2g = jax.jvp(model.grad, (theta,), (Hg,))
            out = out - lr**2 * (T3 / 12.0 + H2g / 3.0)
        return out

    return F


def modified_loss(model: AbstractModel, lr: float):
    """ℓ̃(θ) = ℓ(θ) + (η/4)‖∇ℓ(θ)‖², whose gradient flow GD follows to O(η²)."""

    def L(theta):
        g = model.grad(theta)
        return model.loss(theta) + 0.25 * lr * jnp.dot(g, g)

    return L

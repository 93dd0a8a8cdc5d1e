"""Log-norm coordinates θ = e^r·ω (‖ω‖ = 1): relative error control at every scale.

Starting at scale α (down to 1e-20) the state grows by 1/α before anything happens, so
component-wise error control with a fixed absolute tolerance either steps over the saddle
escape (atol ≳ α·rtol) or, later, forces relative control on components that decay to zero
at a minimum (steps then never grow). Integrating y = (r, ω) with

    r' = ωᵀĝ / ‖ω‖²,     ω' = ĝ − r'·ω,     ĝ = F(e^r ω)·e^{−r},

is the same flow ((e^r ω)' = e^r(r'ω + ω') = F exactly), keeps ‖ω‖ = ‖ω0‖ = 1 invariant,
and controls errors relative to ‖θ‖: one tolerance pair serves α = 1 and α = 1e-20, and
implicit steps grow geometrically once the state rests.

    >>> import jax.numpy as jnp
    >>> y = to_lognorm(jnp.array([3e-200, 4e-200]))      # no underflow of ‖θ‖²
    >>> print(f"{float(jnp.exp(y[0])):.12g}", [round(float(v), 12) for v in y[1:]])
    5e-200 [0.6, 0.8]
"""

from __future__ import annotations

import jax.numpy as jnp


def norm(v):
    """‖v‖ without underflow or overflow of the squares (v of scale 1e-200 or 1e200)."""
    scale = jnp.max(jnp.abs(v))
    safe = jnp.where(scale > 0, scale, 1.0)
    return safe * jnp.linalg.norm(v / safe) * (scale > 0)


def to_lognorm(theta):
    """θ ↦ y = (r, ω) with θ = e^r ω, ‖ω‖ = 1."""
    nrm = norm(theta)
    return jnp.concatenate([jnp.log(nrm)[None], theta / nrm])


def from_lognorm(y):
    """y = (r, ω) ↦ θ = e^r ω."""
    return jnp.exp(y[0]) * y[1:]


def lognorm_field(vf):
    """A field ``vf(θ, args)`` as a diffrax vector field ``(t, y, args)`` in y = (r, ω)."""

    def field(t, y, args):
        r, om = y[0], y[1:]
        g = vf(jnp.exp(r) * om, args) * jnp.exp(-r)
        dr = jnp.dot(om, g) / jnp.dot(om, om)
        return jnp.concatenate([dr[None], g - dr * om])

    return field


def relative_field_norm(vf, y, args):
    """‖F(θ)‖/‖θ‖ = ‖ĝ‖ at y = (r, ω) (‖ω‖ = 1): for F = −∇ℓ the relative gradient."""
    return jnp.linalg.norm(vf(from_lognorm(y), args) * jnp.exp(-y[0]))

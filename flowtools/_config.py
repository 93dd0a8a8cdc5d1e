"""Float64 set-up, done once at import.

flowtools needs float64 everywhere: losses are driven to 1e-15 and initial scales go down
to 1e-20. ``jax_enable_x64`` is switched on globally when flowtools is imported (never via
the context manager under ``jit``), and the switch is checked so that a JAX build without
float64 support fails here with a clear message instead of silently computing in float32.
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)


class Float64Unavailable(RuntimeError):
    """Raised when JAX cannot compute in float64."""


def check_float64() -> None:
    import jax.numpy as jnp

    if jnp.zeros(()).dtype != jnp.float64:
        raise Float64Unavailable(
            "flowtools needs float64 but JAX computes in "
            f"{jnp.zeros(()).dtype}: `jax_enable_x64` could not be enabled. Set the "
            "environment variable JAX_ENABLE_X64=1 before importing jax, and do not "
            "import flowtools inside a `jax.experimental.disable_x64()` block."
        )


check_float64()

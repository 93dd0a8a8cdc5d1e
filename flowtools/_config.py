"""Float64 set-up, done once at import.

flowtools needs float64 everywhere: losses are driven to 1e-15 and initial scales go down
to 1e-20. ``jax_enable_x64`` is switched on globally when flowtools is imported (never via
the context manager under ``jit``), and the switch is checked so that a JAX build without
float64 support fails here with a clear message instead of silently computing in float32.
"""

from __future__ import annotations

import os

# equinox's runtime checks (inside diffrax) are host callbacks by default, and JAX's
# persistent compilation cache refuses executables that contain host callbacks: every
# process (every Dask worker) would recompile the solvers. With EQX_ON_ERROR=nan a failed
# check yields NaN instead (flowtools reads solver failures from `sol.result` and reports
# NONFINITE / SOLVER_FAILED), and the executables are cached. Set before equinox is
# imported; a value the user chose is kept.
os.environ.setdefault("EQX_ON_ERROR", "nan")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
# Compiling a stiff diffrax solver takes seconds: keep compilations across processes.
_cache = os.environ.get("FLOWTOOLS_JAX_CACHE", os.path.expanduser("~/.cache/flowtools/jax"))
if _cache and _cache.lower() != "off":
    jax.config.update("jax_compilation_cache_dir", _cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


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

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
#
# FLOWTOOLS_JAX_CACHE: JAX's persistent compilation cache (XLA executables), default
#   ~/.cache/flowtools/jax; "off" (or empty) disables it and the export cache below.
# FLOWTOOLS_EXPORT_CACHE: flowtools' cache of traced and lowered programs (``jax.export``,
#   see ``flowtools._compile``), so that a new process skips tracing diffrax as well;
#   default JAX_CACHE/flowtools-export; "off" disables only this one.
# FLOWTOOLS_LOADED_PROGRAMS: how many compiled programs one process keeps loaded (default
#   32; fewer near Linux's memory-map limit; ``flowtools._compile``).
# FLOWTOOLS_COMPILE_TIMES=1 prints one line per compilation to stderr (trace+lower, load,
#   XLA compile, and whether the export cache hit).
_cache = os.environ.get("FLOWTOOLS_JAX_CACHE", os.path.expanduser("~/.cache/flowtools/jax"))
JAX_CACHE_DIR = _cache if _cache and _cache.lower() != "off" else None
if JAX_CACHE_DIR is not None:  # its executables are run: a folder only the user can write
    from flowtools._io import private_folder  # noqa: E402

    if (_why := private_folder(JAX_CACHE_DIR)) is not None:
        import warnings  # noqa: E402

        from flowtools._compile import CacheNotUsed  # noqa: E402

        warnings.warn(f"the compilation cache {JAX_CACHE_DIR!r} is not used: {_why} "
                      "(FLOWTOOLS_JAX_CACHE names another folder).", CacheNotUsed, stacklevel=2)
        JAX_CACHE_DIR = None
if JAX_CACHE_DIR is not None:
    jax.config.update("jax_compilation_cache_dir", JAX_CACHE_DIR)
    # every executable, the small jits too (start values, stationarity checks, plots): at
    # JAX's 0.5 s floor they were recompiled in every process, 0.6 s of a warm
    # `flowtools run` (bench_cold_warm: warm/cold 0.40 → 0.33)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def export_cache_dir() -> str | None:
    """The folder of the export cache, or None when it is switched off (read each call)."""
    value = os.environ.get("FLOWTOOLS_EXPORT_CACHE")
    if value is not None:
        return value if value and value.lower() != "off" else None
    return None if JAX_CACHE_DIR is None else os.path.join(JAX_CACHE_DIR, "flowtools-export")


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

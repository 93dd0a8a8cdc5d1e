"""Sweeps: a grid of named axes, computed on an executor, stored as each task finishes.

- ``Grid`` (``Grid.from_toml``)     — axes over problem, initialization and integrator
                                      parameters; validated with line numbers
- ``Family``, ``register``, ``get_family`` — what a cell is: the model family's keys, model,
                                      initialization and stored results (``two_layer``,
                                      the default, and ``relu_cnn``; ``sweep.family``)
- ``run_sweep``                     — compute the missing cells (in-process or on Dask);
                                      ``run_sweeps``: several grids/stores, one executor
- ``refine``                        — per row, where a variable crosses a level along one
                                      axis: multisection rounds, each stored (resumable)
- ``open_results``, ``export_netcdf`` — the zarr store as an ``xarray.Dataset``; netCDF
- ``summarize``                     — what ``flowtools sweep show STORE`` prints
- ``InProcessExecutor``, ``DaskExecutor`` — where tasks run

See the guide page "Sweeps and Dask" (``docs/guide/sweeps.md``) for the command line and
the Dask cluster route.
"""

from flowtools.errors import GridError
from flowtools.sweep.cells import compute_task, plan
from flowtools.sweep.executors import (
    AbstractExecutor,
    DaskExecutor,
    InProcessExecutor,
    make_executor,
)
from flowtools.sweep.family import Family, get_family, register
from flowtools.sweep.grid import Axis, Grid
from flowtools.sweep.refine import refine
from flowtools.sweep.run import (
    SweepResult,
    default_store,
    run_sweep,
    run_sweeps,
    summarize,
)
from flowtools.sweep.store import (
    StoreBusy,
    StoreDamaged,
    StoreMismatch,
    SweepStore,
    check_store,
    export_netcdf,
    open_results,
    store_lock,
)

__all__ = [
    "AbstractExecutor",
    "Axis",
    "DaskExecutor",
    "Family",
    "Grid",
    "GridError",
    "InProcessExecutor",
    "StoreBusy",
    "StoreDamaged",
    "StoreMismatch",
    "SweepResult",
    "SweepStore",
    "check_store",
    "compute_task",
    "default_store",
    "export_netcdf",
    "get_family",
    "make_executor",
    "open_results",
    "plan",
    "refine",
    "register",
    "run_sweep",
    "run_sweeps",
    "store_lock",
    "summarize",
]

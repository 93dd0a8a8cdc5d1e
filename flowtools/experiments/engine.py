"""Where a figure's grids run: the experiments' one way onto the sweep engine.

A figure declares its computations as sweep grids (dicts of tables, as ``flowtools sweep``
reads them) and asks an ``Engine`` for their results. The engine keeps each grid in its
own store, ``STORE_DIR/<grid name>-<key>.zarr`` (the key: the first 12 hex digits of the
grid definition's and the library versions' SHA-256, so another grid or version never
reads a stale store), runs what is missing there — all of a call's grids through one
executor, ``flowtools.sweep.run_sweeps`` — and returns the results as xarray Datasets.

So a figure resumes after ``kill -9`` (the stores keep every finished chunk), runs on Dask
with ``executor="dask"`` (or a scheduler's address) and ``workers``, and two figures that
declare the same grid share its results through the store path, not through an
in-process cache.

    >>> import tempfile
    >>> eng = Engine(tempfile.mkdtemp(), log=lambda line: None)
    >>> tables = {"sweep": {"name": "doc"}, "init": {"scale": 1e-4},
    ...           "integrator": {"dynamics": "gd", "lr": 0.05, "max_iter": 50}}
    >>> ds, = eng.results(tables)
    >>> eng.store(tables).name.startswith("doc-"), int(ds.status)
    (True, 1)
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Engine"]


@dataclass(frozen=True)
class Engine:
    """Stores under ``store_dir``; cells run by ``executor`` ("local", the default: one task
    at a time; "threads": ``workers`` threads of this process; "dask": a LocalCluster of
    ``workers`` processes; or a Dask scheduler's address), as in
    ``flowtools.sweep.run_sweep``; ``log`` gets one line per grid."""

    store_dir: pathlib.Path
    executor: object = "local"
    workers: int | None = None
    log: Callable = field(default=print, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "store_dir", pathlib.Path(self.store_dir))

    def under(self, name: str) -> Engine:
        """The same engine with its stores in ``store_dir/name``."""
        return Engine(self.store_dir / name, self.executor, self.workers, self.log)

    def store(self, tables) -> pathlib.Path:
        """The store of a grid (``tables``: a dict of tables or a ``Grid``)."""
        from flowtools.sweep.grid import load_grid
        from flowtools.sweep.store import library_versions

        grid = load_grid(tables)
        return self.store_dir / f"{grid.name}-{grid.key(library_versions())[:12]}.zarr"

    def results(self, *grids) -> list:
        """Run (or resume) every grid into its store, all through one executor, and return
        their results (``open_results``, loaded), in order. Raises ``FlowtoolsError`` when
        a grid did not finish (a task raised, or cells are missing): its stored cells are
        kept, so a rerun computes only the rest. Cells whose run failed (a status that is
        not ok) are results, as in any sweep."""
        from flowtools.errors import FlowtoolsError
        from flowtools.sweep import open_results, run_sweeps
        from flowtools.sweep.grid import load_grid

        loaded = [load_grid(g) for g in grids]
        stores = [self.store(g) for g in loaded]
        self.store_dir.mkdir(parents=True, exist_ok=True)
        out = run_sweeps(list(zip(loaded, stores, strict=True)), executor=self.executor,
                         workers=self.workers, resume=True, progress=False)
        for grid, store, res in zip(loaded, stores, out, strict=True):
            self.log(f"  {grid.name}: {res.computed} cell(s) computed, {res.cached} from the "
                     f"store ({res.wall_time:.0f} s; {store})")
            if res.errors or res.missing:
                raise FlowtoolsError(f"the sweep into {str(store)!r} did not finish: "
                                     f"{res.summary()}")
        return [open_results(s, lazy=False) for s in stores]

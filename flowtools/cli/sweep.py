"""Run a grid of flows (or GD runs) declared in a TOML file, or summarize its results.

  flowtools sweep GRID.toml [--store STORE] [--executor local|dask|ADDRESS] [--workers N]
                            [--resume] [--netcdf OUT.nc] [--check]
  flowtools sweep show STORE [--cells]
  flowtools sweep export STORE OUT.nc

The grid is validated first (an unknown key, a bad value or a wrong type exits 2 with the
file, the line and the valid choices). Each finished task is written to the zarr STORE
(default out/sweep/NAME.zarr) at once; a sweep that is interrupted — Ctrl-C, kill -9 —
resumes with --resume and computes only the missing cells. A store in use by another
sweep, or holding another grid, is refused. `xarray.open_zarr(STORE)` (or
`flowtools.sweep.open_results(STORE)`) opens the results with the axes as dimensions.

Executors: local (this process; the default), threads (this process, --workers threads,
default one per core: compiled programs run outside the GIL), dask (a LocalCluster of
--workers single-threaded processes, default one per core; the default when --workers >
1), or the address
of a running Dask scheduler (tcp://HOST:8786; start one with `dask scheduler` and workers
with `dask worker tcp://HOST:8786`). A scheduler that does not answer within
--connect-timeout seconds (default 10) is reported with its address (exit 2).

Progress: a bar on a terminal; elsewhere (a cluster job's log, nohup, a file) one line
with cells done, failures, rate and ETA every --progress-interval seconds (default 30).

Damage: a checksum of every chunk file is recorded when its cells are marked done. `show`
lists cells whose files no longer match (truncated, garbled, deleted) and exits 1;
`--resume` computes them again and restores damaged metadata from its intact copies;
`export` (and `open_results`) refuse a damaged store, naming the variables and cells. A
store whose root zarr.json is unreadable cannot be repaired (exit 2: delete it).

Exit status: 0 when every cell is stored with an ok status, 1 when some cell failed (for
example MAX_STEPS), a task raised (its cells stay missing: --resume retries them) or `show`
finds damage, 2 for bad input (a damaged store for `export`), 130 when interrupted.

Examples:
  flowtools sweep demos/grids/fig4_quick.toml --workers 2
  flowtools sweep demos/grids/fig4.toml --store out/fig4.zarr --resume --netcdf out/fig4.nc
  flowtools sweep show out/fig4.zarr
"""

from __future__ import annotations

import argparse
import sys

from flowtools.cli._common import positive_float, positive_int

NAME = "sweep"
HELP = "run a grid of flows/GD runs from a TOML file into a zarr store; `sweep show STORE`"

_MODES = ("show", "export")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="GRID.toml | show | export",
                   help="the grid file to run, or `show STORE` / `export STORE OUT.nc`")
    p.add_argument("paths", nargs="*", metavar="PATH", help=argparse.SUPPRESS)
    g = p.add_argument_group("running a grid")
    g.add_argument("--store", default=None,
                   help="the zarr results folder (default out/sweep/NAME.zarr)")
    g.add_argument("--executor", default="auto", metavar="local|threads|dask|ADDRESS",
                   help="where tasks run (default: dask if --workers > 1, else local)")
    g.add_argument("--workers", type=positive_int("--workers"), default=None,
                   help="worker processes of the Dask LocalCluster, or threads (default: one "
                        "per core)")
    g.add_argument("--resume", action="store_true",
                   help="compute only the cells missing from an existing store")
    g.add_argument("--netcdf", default=None, metavar="OUT.nc",
                   help="also export the results to this netCDF file at the end")
    g.add_argument("--check", action="store_true",
                   help="validate the grid and print the plan; compute nothing")
    g.add_argument("--fsync", action="store_true",
                   help="flush each file to disk before its cells are marked done (power "
                        "loss; a killed process does not need it)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    g.add_argument("--progress-interval", type=positive_float("--progress-interval"),
                   default=None, metavar="SECONDS",
                   help="seconds between progress lines when stderr is not a terminal "
                        "(default 30)")
    g.add_argument("--connect-timeout", type=positive_float("--connect-timeout"),
                   default=None, metavar="SECONDS",
                   help="seconds to wait for the Dask scheduler at ADDRESS (default 10)")
    s = p.add_argument_group("show")
    s.add_argument("--cells", action="store_true", help="one line per computed cell")


def run(args) -> int:
    from flowtools.errors import FlowtoolsError

    if args.target in _MODES:
        want = 1 if args.target == "show" else 2
        if len(args.paths) != want:
            usage = "show STORE" if args.target == "show" else "export STORE OUT.nc"
            raise FlowtoolsError(f"usage: flowtools sweep {usage}")
        return _show(args) if args.target == "show" else _export(args)
    if args.paths:
        raise FlowtoolsError(f"unexpected argument(s) {' '.join(args.paths)}: give one grid "
                             "file (or `show STORE`, `export STORE OUT.nc`).")
    return _run(args)


def _run(args) -> int:
    from flowtools._io import check_output_file
    from flowtools.sweep import Grid, default_store, export_netcdf, plan, run_sweep
    from flowtools.sweep.executors import CONNECT_TIMEOUT, resolve_executor
    from flowtools.sweep.progress import LINE_INTERVAL

    grid = Grid.from_toml(args.target)  # exits 2 on a bad grid, before anything runs
    connect_timeout = args.connect_timeout or CONNECT_TIMEOUT
    # checks the arguments (a scheduler address too), starts and contacts nothing
    resolve_executor(args.executor, args.workers, connect_timeout=connect_timeout)
    if args.netcdf:
        check_output_file(args.netcdf, what="--netcdf")
    store = args.store or default_store(grid)
    if args.check:
        print(grid.describe())
        tasks = plan(grid)
        print(f"{len(tasks)} task(s) of up to {grid.cells_per_task} cells (chunks "
              f"{grid.chunks}); store {store}")
        return 0
    res = run_sweep(grid, store, executor=args.executor, workers=args.workers,
                    resume=args.resume, progress=False if args.no_progress else None,
                    fsync=args.fsync, log=lambda line: print(line, flush=True),
                    connect_timeout=connect_timeout,
                    progress_interval=args.progress_interval or LINE_INTERVAL)
    if args.netcdf:
        out = export_netcdf(store, args.netcdf)
        print(f"wrote {out}")
    print(f"results: {store} (flowtools sweep show {store})")
    for e in res.errors:
        print(f"error: {e}", file=sys.stderr)
    done, failed = _counts(store)
    if failed:
        print(f"{failed} stored cell(s) have a failed status (see flowtools sweep show "
              f"{store})", file=sys.stderr)
    return 0 if (not res.errors and done == grid.size and not failed) else 1


def _counts(store):
    import numpy as np

    from flowtools.status import Status
    from flowtools.sweep.store import check_store, read_results

    # one check of the store (open_results would hash every chunk again), only `status` read
    ds = read_results(check_store(store), ["status"])
    done = np.asarray(ds["done"].values, dtype=bool)
    status = np.asarray(ds["status"].values)[done]
    return int(done.sum()), int(sum(not Status(int(s)).ok for s in status))


def _show(args) -> int:
    from flowtools.sweep import summarize
    from flowtools.sweep.store import check_store

    check = check_store(args.paths[0])  # a root zarr.json that cannot be read: exit 2
    print(summarize(args.paths[0], cells=args.cells, check=check))
    if check.ok:
        return 0
    print(f"the store is damaged ({check.damaged_cells} cell(s), {len(check.metadata)} "
          f"metadata file(s)): {check.repair}", file=sys.stderr)
    return 1


def _export(args) -> int:
    from flowtools.sweep import export_netcdf

    out = export_netcdf(args.paths[0], args.paths[1])
    print(f"wrote {out}")
    return 0

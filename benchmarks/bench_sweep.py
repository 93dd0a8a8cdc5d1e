"""Sweeps on the paper's Figure-4 grid: 2 Dask workers, 1 Dask worker, a plain loop.

The grid is ``demos/grids/fig4.toml``: Example 1 on n = 3, 4, 5, 6 standard-Gaussian
samples (data seeds 0–4), ``init_ratio(c̃, 1e-20, seed=0)`` for 50 values of c̃, the flow
(Kvaerno5) to ℓ ≤ 1e-20 or ``max_steps`` solver steps — 1000 cells. In one invocation:

1. ``run_sweep`` on a Dask ``LocalCluster`` of 2 single-threaded worker processes,
2. the same on a LocalCluster of 1 worker,
3. a plain Python loop over the cells in this process (``make_problem``, ``init_ratio``,
   ``solve_flow`` and the derived quantities cell by cell, no store),

each from a cold start of its processes (cluster start-up, compiling or loading the compiled
programs from the disk caches that the runs before it filled — clear ``~/.cache/flowtools``
first for a cold compile — and the store's writes included). Prints the wall times side
by side, the ratios (target: 1 worker / 2 workers ≥ 1.8) and whether the three give
bit-identical cells.

    python benchmarks/bench_sweep.py [--quick] [--max-steps 2000] [--json OUT.json]

``--quick``: n = 3, 4, data seeds 0, 1, 10 values of c̃, max_steps 1000 (40 cells).
At n = 5, 6 many flows sit on loss plateaus for ~1e5 steps (see the design notes): they
stop at ``max_steps`` with status MAX_STEPS, counted in the output.
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
import time
import tomllib

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
COMPARED = ("theta0", "theta_final", "loss_final", "t_final", "status", "steps",
            "grad_evals", "branch", "dist_Q1", "dist_Q2", "gen_error")


def fig4_grid(quick: bool, max_steps: int | None, n_ctilde: int | None):
    from flowtools.sweep import Grid

    tables = tomllib.loads((ROOT / "demos" / "grids" / "fig4.toml").read_text())
    if quick:
        tables["problem"]["n"] = [3, 4]
        tables["problem"]["data_seed"] = [0, 1]
        tables["init"]["c_tilde"] = {"linspace": [0.1, 1.0, 10]}
        tables["integrator"]["max_steps"] = 1000
        tables["sweep"]["name"] = "fig4_bench_quick"
    if max_steps is not None:
        tables["integrator"]["max_steps"] = max_steps
    if n_ctilde is not None:
        tables["init"]["c_tilde"] = {"linspace": [0.02, 1.0, n_ctilde]}
    return Grid.from_dict(tables, source="demos/grids/fig4.toml (benchmark)")


def plain_loop(grid) -> tuple[dict, float, float, int]:
    """Every cell by hand, in grid order: the reference the sweeps must match bit for bit."""
    import flowtools as ft
    from flowtools.branches import classify, generalization_error
    from flowtools.sweep.two_layer import BRANCH_CODES

    t0 = time.perf_counter()
    out = {k: np.empty(grid.shape + ((grid.p_max,) if k.startswith("theta") else ()),
                       dtype=np.int64 if k in ("status", "steps", "grad_evals", "branch")
                       else float) for k in COMPARED}
    o = grid.outputs
    X_test = np.random.default_rng(o["test_seed"]).standard_normal((o["n_test"], 1))
    compile_s, compiles = 0.0, 0
    problems = {}
    for index in np.ndindex(*grid.shape):
        c = grid.cell(index)
        key = (c["n"], c["data_seed"])
        if key not in problems:
            problems[key] = ft.make_problem(c["n"], sampling=c["sampling"], seed=c["data_seed"])
        pb = problems[key]
        th0 = pb.init_ratio(c["c_tilde"], c["scale"], seed=c["seed"])
        tr = ft.solve_flow(pb, th0, t1=c["t1"], loss_threshold=c["loss_threshold"],
                           gtol=c["gtol"], solver=c["solver"], rtol=c["rtol"],
                           atol_rel=c["atol_rel"], max_steps=c["max_steps"], n_save=2)
        compile_s += tr.compile_time
        compiles += tr.compile_time > 0
        r = classify(pb, tr.theta_final, tol=o["branch_tol"])
        row = dict(theta0=th0, theta_final=tr.theta_final, loss_final=tr.loss_final,
                   t_final=tr.t_final, status=tr.status, steps=tr.steps,
                   grad_evals=tr.grad_evals, branch=BRANCH_CODES[str(r.branch)],
                   dist_Q1=r.dist_Q1, dist_Q2=r.dist_Q2,
                   gen_error=generalization_error(pb, tr.theta_final, X_test=X_test))
        for k, v in row.items():
            out[k][index] = v
    return out, time.perf_counter() - t0, compile_s, compiles


def run_dask(grid, workers: int, folder: pathlib.Path):
    from flowtools.sweep import open_results, run_sweep

    store = folder / f"fig4_{workers}w.zarr"
    t0 = time.perf_counter()
    res = run_sweep(grid, store, executor="dask", workers=workers, progress=False)
    wall = time.perf_counter() - t0
    ds = open_results(store).load()
    return {k: ds[k].values for k in COMPARED}, wall, res


def same(a: dict, b: dict) -> list[str]:
    """Names of the quantities that differ (bitwise, NaN = NaN)."""
    return [k for k in COMPARED if not np.array_equal(np.asarray(a[k]).astype(b[k].dtype),
                                                      b[k], equal_nan=True)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="40 cells instead of 1000")
    ap.add_argument("--max-steps", type=int, default=None,
                    help="solver steps per cell (default: the grid file's 2000)")
    ap.add_argument("--n-ctilde", type=int, default=None, help="values of c̃ (default 50)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--keep", default=None, help="keep the stores in this folder")
    args = ap.parse_args(argv)

    import flowtools  # noqa: F401  (float64, cache settings, as on the workers)
    from flowtools.status import Status

    grid = fig4_grid(args.quick, args.max_steps, args.n_ctilde)
    print(grid.describe().splitlines()[0] + f"; max_steps {grid.fixed['max_steps']}, "
          f"{len(list(grid.blocks()))} tasks of ≤ {grid.cells_per_task} cells", flush=True)
    folder = pathlib.Path(args.keep or tempfile.mkdtemp(prefix="bench_sweep-"))
    folder.mkdir(parents=True, exist_ok=True)
    rows, results = [], {}
    for workers in (2, 1):
        arrays, wall, res = run_dask(grid, workers, folder)
        comp = sum(s["compile_s"] for s in res.workers.values())
        ncomp = sum(s["compiles"] for s in res.workers.values())
        rows.append((f"Dask LocalCluster, {workers} worker(s)", wall, comp, ncomp))
        results[workers] = arrays
        print(f"  {rows[-1][0]}: {wall:.1f} s; " + "; ".join(
            f"worker {w}: {s['tasks']} tasks, {s['cells']} cells, {s['compiles']} "
            f"compilations ({s['compile_s']:.1f} s)" for w, s in sorted(res.workers.items())),
            flush=True)
    loop, loop_wall, loop_compile, loop_compiles = plain_loop(grid)
    rows.append(("plain Python loop (this process)", loop_wall, loop_compile, loop_compiles))
    print(f"  plain loop: {loop_wall:.1f} s", flush=True)

    print(f"\n{'run':36s} {'wall s':>9s} {'compile s':>10s} {'compiles':>9s} {'cells/s':>8s}")
    for name, wall, comp, ncomp in rows:
        print(f"{name:36s} {wall:9.1f} {comp:10.1f} {ncomp:9d} {grid.size / wall:8.2f}")
    w2, w1, lp = (r[1] for r in rows)
    print(f"\nratios: 1 worker / 2 workers = {w1 / w2:.2f} (target ≥ 1.8); loop / 2 workers "
          f"= {lp / w2:.2f}; loop / 1 worker = {lp / w1:.2f}")
    print("  excluding compilation (sum over workers, divided by the worker count): "
          f"1 worker / 2 workers = {(w1 - rows[1][2]) / (w2 - rows[0][2] / 2):.2f}")
    diff2, diff1 = same(loop, results[2]), same(loop, results[1])
    print(f"identical to the loop, bit for bit: 2 workers {'yes' if not diff2 else diff2}; "
          f"1 worker {'yes' if not diff1 else diff1}")
    codes, counts = np.unique(loop["status"], return_counts=True)
    print("statuses: " + ", ".join(f"{Status(int(c)).name.lower()} {k}"
                                   for c, k in zip(codes, counts, strict=True)))
    if args.json:
        from flowtools._io import write_json

        write_json(args.json, {
            "grid": grid.definition(), "cells": grid.size,
            "runs": [dict(name=n, wall_s=w, compile_s=c, compilations=k)
                     for n, w, c, k in rows],
            "ratio_1w_over_2w": w1 / w2, "ratio_loop_over_2w": lp / w2,
            "identical": {"2_workers": not diff2, "1_worker": not diff1},
            "statuses": {Status(int(c)).name.lower(): int(k)
                         for c, k in zip(codes, counts, strict=True)}})
        print(f"wrote {args.json}")
    return 0 if not (diff1 or diff2) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Run a figure of the paper: compute its data, check its claims, write PNG + netCDF + claims.

A figure is a module of ``flowtools.experiments.figures`` (named in ``FIGURES``) with

    TITLE: str                    one line, e.g. "Figure 4: generalization error against c̃"
    GD: bool                      whether the paper made it with GD (then ``gd=True`` adds
                                  the paper's GD protocol on the same axes)
    FULL_TIME: str                the measured full-mode wall time, for ``--list``
    compute(*, quick, gd, log)    → xarray.Dataset of **all** plotted data (named dims; the
                                  settings as attributes); a figure on the sweep engine
                                  also takes ``engine`` (``flowtools.experiments.engine``:
                                  its stores under ``OUT/stores``, so a rerun with the same
                                  --out resumes them, even after ``kill -9``; its cells run
                                  by the executor and workers given to ``reproduce``)
    plot(ds)                      → matplotlib Figure laid out and lettered like the paper's
    claims(ds)                    → list[flowtools.experiments.claims.Claim]

``reproduce(name)`` runs one and writes, as one set (``_io.staged_outputs``: the three
files replace the old ones together), ``OUT/<name>.png``, ``OUT/<name>.nc``
(netCDF through xarray; attributes: the settings, the mode, the flowtools version, the wall
time, the claims as strict JSON) and ``OUT/<name>_claims.json``; ``reproduce_all`` runs every
figure in order and adds ``OUT/claims.md`` (one table of every claim) and
``OUT/reproduce_all.json`` (the wall times). A figure that fails is reported and the others
still run; nothing half-written is left behind.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pathlib
import time
import traceback
from dataclasses import dataclass

from flowtools._io import (
    check_output_dir,
    savefig,
    staged_outputs,
    write_json,
    write_netcdf,
    write_text,
)
from flowtools.experiments.claims import Claim, claims_json, claims_markdown, print_claims

__all__ = ["FIGURES", "FigureRun", "demo_main", "figure_module", "reproduce", "reproduce_all"]

# name → module of flowtools.experiments.figures, in the order of `reproduce all`
FIGURES = {
    "fig1": "fig1", "fig2": "fig2", "fig3": "fig3", "fig4": "fig4", "fig5": "fig5",
    "fig6": "fig6", "fig7": "fig7", "fig8": "fig8", "fig9": "fig9", "fig10": "fig10",
    "fig11": "fig11", "table1": "table1", "lr-puzzle": "lr_puzzle", "cstar": "cstar",
    "thresholds": "thresholds",
}


def figure_module(name: str):
    """The module of figure ``name`` (imported on use)."""
    return importlib.import_module(f"flowtools.experiments.figures.{FIGURES[name]}")


@dataclass
class FigureRun:
    """What ``reproduce`` made: the dataset, the claims, the files and the wall time."""

    name: str
    dataset: object
    claims: list
    files: list
    wall_time_s: float


def on_engine(name: str) -> bool:
    """Whether figure ``name`` runs its cells on the sweep engine (its ``compute`` takes an
    ``engine``): such a figure resumes from its stores and takes an executor."""
    return "engine" in inspect.signature(figure_module(name).compute).parameters


def reproduce(name: str, *, quick: bool = False, gd: bool = False, out="out/reproduce",
              log=print, dpi: int = 110, executor="local", workers: int | None = None,
              stores=None) -> FigureRun:
    """Compute figure ``name``, write its PNG, netCDF and claims into ``out``; return them.

    A figure on the sweep engine (``on_engine``) keeps its grids' stores under ``stores``
    (default ``out/stores``) and runs their cells by ``executor`` ("local", the default:
    one task at a time; "threads": ``workers`` threads of this process; "dask" or a Dask
    scheduler's address) with ``workers``, as ``flowtools sweep`` does; the other figures
    compute in this process."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from flowtools import __version__

    out = check_output_dir(out, what="--out")
    mod = figure_module(name)
    t0 = time.perf_counter()
    log(f"{name}: {mod.TITLE} ({'quick' if quick else 'full'} mode"
        f"{', with the paper GD protocol' if gd and mod.GD else ''})")
    kwargs = {}
    if on_engine(name):  # sweep stores: resumable, and an executor
        from flowtools.experiments.engine import Engine

        kwargs["engine"] = Engine(out / "stores" if stores is None else stores, executor,
                                  workers, log)
    elif executor not in ("local", "threads") or workers is not None:
        log(f"{name}: not on the sweep engine yet, computed in this process "
            "(--executor/--workers apply to the figures on it)")
    ds = mod.compute(quick=quick, gd=bool(gd and mod.GD), log=log, **kwargs)
    claims = list(mod.claims(ds))
    if not all(isinstance(c, Claim) for c in claims):
        raise TypeError(f"{name}.claims must return Claim objects")
    fig = mod.plot(ds)
    png, nc, cj = (out / f"{name}{suffix}" for suffix in (".png", ".nc", "_claims.json"))
    # one set: the three files replace the old ones together, the claims last (the marker)
    with staged_outputs(out, [png.name, nc.name, cj.name]) as stage:
        try:
            savefig(fig, stage / png.name, dpi=dpi)
        finally:
            plt.close(fig)
        wall = time.perf_counter() - t0
        ds.attrs.update(figure=name, title=mod.TITLE, run_mode="quick" if quick else "full",
                        gd_protocol=bool(gd and mod.GD), flowtools_version=__version__,
                        wall_time_s=wall, claims=claims_json(claims),
                        command=f"flowtools reproduce {name}{' --quick' if quick else ''}"
                                f"{' --gd' if gd and mod.GD else ''}")
        write_netcdf(ds, stage / nc.name)
        write_json(stage / cj.name, {"figure": name, "title": mod.TITLE,
                                     "mode": ds.attrs["run_mode"], "wall_time_s": wall,
                                     "claims": json.loads(claims_json(claims))})
    print_claims(name, claims)
    log(f"wrote {png}, {nc} and {cj} in {wall:.1f} s")
    return FigureRun(name, ds, claims, [png, nc, cj], wall)


# Figures that read another figure's sweep stores (``fig11`` reads fig4's flows, ``fig8``
# and ``fig10`` fig9's, fig3 cstar's c̃*, ``table1`` fig1's): one worker runs each group,
# in ``FIGURES`` order, so the first computes what the others read (a store has
# one writer at a time: two figures writing it at once would not wait for each other).
GROUPS = (("fig1", "table1"), ("fig3", "cstar"), ("fig4", "fig11"),
          ("fig8", "fig9", "fig10"))


def _seconds(full_time: str) -> float:
    """The measured full-mode seconds at the start of a figure's ``FULL_TIME``."""
    head = full_time.split()[0] if full_time else "0"
    try:
        return float(head)
    except ValueError:
        return 0.0


def _run_one(name, *, quick, gd, out, log, executor="local", workers=None):
    """(FigureRun or None, error message or None): one figure, its failure reported."""
    try:
        return reproduce(name, quick=quick, gd=gd, out=out, log=log, executor=executor,
                         workers=workers), None
    except KeyboardInterrupt:
        raise
    except Exception as err:  # noqa: BLE001 - one figure's failure must not stop the rest
        msg = f"{type(err).__name__}: {err}"
        log(f"{name} FAILED: {msg}\n{traceback.format_exc()}")
        return None, msg


def _run_group(names, quick, gd, out, executor="local", workers=None):
    """A worker process's task: the figures of one group, in order."""
    return [(name, *_run_one(name, quick=quick, gd=gd, out=out, log=print,
                             executor=executor, workers=workers))
            for name in names]


def _groups(names) -> list[list[str]]:
    """``names`` in groups that share in-process results, the costliest group first."""
    groups, seen = [], set()
    for name in names:
        if name in seen:
            continue
        group = next((g for g in GROUPS if name in g), (name,))
        members = [n for n in names if n in group]
        seen.update(members)
        groups.append(members)
    return sorted(groups, key=lambda g: -sum(_seconds(figure_module(n).FULL_TIME)
                                             for n in g))


def reproduce_all(*, quick: bool = False, gd: bool = False, out="out/reproduce", log=print,
                  names=None, jobs: int | None = 1, executor="local",
                  workers: int | None = None) -> tuple[list[FigureRun], dict]:
    """Every figure (``names``: a subset, in ``FIGURES`` order) into ``out``; also
    ``out/claims.md`` and ``out/reproduce_all.json``. Returns the runs and the failures
    (name → error message). ``jobs``: worker processes (1: this process; None: one per
    core), each running whole groups of figures (``GROUPS``: those that share in-process
    results stay together), the costliest first; the files and claims are the same.
    ``executor``/``workers``: where the cells of the figures on the sweep engine run
    (``reproduce``)."""
    from flowtools import _validate as V
    from flowtools.integrate.options import available_cores

    out = check_output_dir(out, what="--out")
    names = list(FIGURES) if names is None else [n for n in FIGURES if n in set(names)]
    jobs = available_cores() if jobs is None else V.positive_int(jobs, "jobs")
    groups = _groups(names)
    jobs = min(jobs, len(groups))
    done: dict = {}
    t0 = time.perf_counter()
    if jobs <= 1:
        for name in names:
            done[name] = _run_one(name, quick=quick, gd=gd, out=out, log=log,
                                  executor=executor, workers=workers)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        log(f"reproduce: {len(names)} figures in {jobs} worker processes")
        pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))
        try:
            futures = [pool.submit(_run_group, g, quick, gd, out, executor, workers)
                       for g in groups]
            for fut in as_completed(futures):
                for name, run, msg in fut.result():
                    done[name] = (run, msg)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    runs = [done[n][0] for n in names if done[n][0] is not None]
    failed = {n: done[n][1] for n in names if done[n][1] is not None}
    total = time.perf_counter() - t0
    parts = [f"# Claims of the paper, checked by `flowtools reproduce all"
             f"{' --quick' if quick else ''}`\n",
             f"Total wall time {total:.0f} s ({total / 60:.1f} min).\n",
             "| figure | title | claims agreeing | wall time (s) |", "|---|---|---|---|"]
    for r in runs:
        n_ok = sum(c.agree is True for c in r.claims)
        parts.append(f"| {r.name} | {figure_module(r.name).TITLE} | {n_ok}/{len(r.claims)} | "
                     f"{r.wall_time_s:.0f} |")
    for name, msg in failed.items():
        parts.append(f"| {name} | FAILED: {msg} | – | – |")
    for r in runs:
        parts += ["", f"## {r.name}: {figure_module(r.name).TITLE}", "",
                  claims_markdown(r.claims)]
    write_text(out / "claims.md", "\n".join(parts) + "\n")
    write_json(out / "reproduce_all.json", {
        "mode": "quick" if quick else "full", "total_wall_time_s": total, "jobs": jobs,
        "figures": {r.name: {"wall_time_s": r.wall_time_s, "claims": len(r.claims),
                             "agree": sum(c.agree is True for c in r.claims),
                             "disagree": sum(c.agree is False for c in r.claims)}
                    for r in runs},
        "failed": failed})
    log(f"reproduce all: {len(runs)} figures in {total:.0f} s; wrote {out / 'claims.md'}"
        + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return runs, failed


def demo_main(name: str, argv=None, *, doc: str | None = None) -> FigureRun:
    """The whole body of a thin ``demos/`` script: ``--out`` (default ``out/demos/``),
    ``--quick`` and ``--gd`` on the command line, then ``reproduce(name, …)``."""
    import argparse
    import sys

    from flowtools.errors import FlowtoolsError

    mod = figure_module(name)
    ap = argparse.ArgumentParser(
        description=(doc or mod.TITLE).strip().splitlines()[0]
        + f" (the same as `flowtools reproduce {name}`)")
    ap.add_argument("--out", default="out/demos/", help="output folder (default out/demos/)")
    ap.add_argument("--quick", action="store_true", help="the CI-sized version")
    if mod.GD:
        ap.add_argument("--gd", action="store_true",
                        help="also run the paper's GD protocol on the same axes")
    args = ap.parse_args(argv)
    try:
        return reproduce(name, quick=args.quick, gd=getattr(args, "gd", False), out=args.out)
    except FlowtoolsError as err:
        print(f"{pathlib.Path(sys.argv[0]).name}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None

"""Reproduce the figures and tables of the papers: compute, check the claims, write files.

  flowtools reproduce FIGURE [FIGURE ...] [--quick] [--gd] [--out OUT]
  flowtools reproduce all [--quick] [--out OUT]
  flowtools reproduce --list

FIGURE is fig1 … fig11, table1 (Zhao, Bai & Zhang), lr-puzzle (the paper's GD learning
rates under the sum and the mean loss), cstar (the Q1/Q2 demarcation c̃* by bisection on the
α → 0 limit), thresholds (the optimistic and separation sample sizes predicted from the
model beside recovery rates from the sweep engine; its sweep stores under OUT/stores make a
rerun with the same --out resume), or cnn-phase (Shang, Meng, Cao & Zou 2024; not part of
`all`). `--list` prints each with its title and full-mode wall time.

Each writes, atomically, OUT/<figure>.png (laid out and lettered like the paper's),
OUT/<figure>.nc (all plotted data; xarray.open_dataset reads it back with named dims; the
settings, the flowtools version and the claims are attributes) and
OUT/<figure>_claims.json (the paper's claims, what was measured, agree/disagree and the
evidence), and prints the claims. `all` also writes OUT/claims.md and
OUT/reproduce_all.json (wall times). The gradient flow is the default; --gd adds the
paper's GD protocol (its learning rate and iteration count) on the same axes, for the
figures the paper made with GD. OUT (default out/reproduce) is checked before any work.

Examples:
  flowtools reproduce --list
  flowtools reproduce fig4 --quick --out /tmp/fig4
  flowtools reproduce all
"""

from __future__ import annotations

NAME = "reproduce"
HELP = ("compute the paper's figures and tables (fig1…fig11, table1, lr-puzzle, cstar, "
        "thresholds, all, cnn-phase) and check their claims")

EXTRA = ("cnn-phase",)


def add_arguments(p):
    from flowtools.cli._common import positive_int
    from flowtools.experiments.reproduce import FIGURES

    p.add_argument("figure", nargs="*", metavar="FIGURE",
                   help=f"one or more of {', '.join(FIGURES)}, all, cnn-phase")
    p.add_argument("--list", action="store_true", help="list the figures and stop")
    p.add_argument("--quick", action="store_true",
                   help="a coarse grid and fewer seeds (seconds to a minute each; for CI)")
    p.add_argument("--gd", action="store_true",
                   help="also run the paper's GD protocol on the same axes (figures the "
                        "paper made with GD)")
    p.add_argument("--out", default="out/reproduce", help="output folder (default out/reproduce)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="worker processes for several figures (default 1: one after another "
                        "in this process; the figures' flows already use every core)")
    p.add_argument("--executor", default="auto", metavar="local|threads|dask|ADDRESS",
                   help="where the sweep cells of the figures on the sweep engine run: this "
                        "process (local: one task at a time; threads: --workers threads), a "
                        "local Dask cluster of --workers processes, or a Dask scheduler's "
                        "address (default: dask if --workers > 1, else local)")
    p.add_argument("--workers", type=positive_int("--workers"), default=None, metavar="N",
                   help="threads, or Dask workers for --executor dask (default one per "
                        "core)")


def _list() -> int:
    from flowtools.experiments.reproduce import FIGURES, figure_module

    print(f"{'figure':10s} {'GD':3s} {'full mode':>12s}  title")
    for name in FIGURES:
        m = figure_module(name)
        print(f"{name:10s} {'yes' if m.GD else '-':3s} {m.FULL_TIME:>12s}  {m.TITLE}")
    print(f"{'cnn-phase':10s} {'yes':3s} {'see docs':>12s}  Shang et al. (2024): ReLU CNN "
          "phase diagram and phase law (not part of `all`)")
    return 0


def run(args) -> int:
    from flowtools._io import check_output_dir
    from flowtools.errors import FlowtoolsError
    from flowtools.experiments.reproduce import FIGURES, reproduce, reproduce_all

    if args.list:
        return _list()
    names = list(args.figure)
    if not names:
        raise FlowtoolsError("name a figure (or `all`); `flowtools reproduce --list` lists them.")
    unknown = [n for n in names if n not in FIGURES and n not in EXTRA and n != "all"]
    if unknown:
        raise FlowtoolsError(f"unknown figure {', '.join(map(repr, unknown))}: use one of "
                             f"{', '.join(FIGURES)}, all, cnn-phase (--list).")
    executor = args.executor
    if executor == "auto":
        executor = "dask" if (args.workers or 1) > 1 else "local"
    check_output_dir(args.out, what="--out")  # before any work: a FlowtoolsError exits 2
    if executor != "local" or args.workers is not None:  # bad arguments: exit 2 at once
        from flowtools.sweep.executors import resolve_executor

        resolve_executor(executor, args.workers)
    if "cnn-phase" in names:
        from flowtools.experiments.figures import cnn_phase

        # its large GD batches in processes, not threads (memory: 11 GB peak in full mode
        # one at a time): local, or dask with --workers > 1
        cnn_executor = args.executor if args.executor != "auto" else (
            "dask" if (args.workers or 1) > 1 else "local")
        cnn_phase.main(quick=args.quick, out=args.out, executor=cnn_executor,
                       workers=args.workers)
        names = [n for n in names if n != "cnn-phase"]
        if not names:
            return 0
    if names == ["all"] or len(names) > 1:
        _, failed = reproduce_all(quick=args.quick, gd=args.gd, out=args.out,
                                  names=None if "all" in names else names, jobs=args.jobs,
                                  executor=executor, workers=args.workers)
        return 1 if failed else 0
    reproduce(names[0], quick=args.quick, gd=args.gd, out=args.out, executor=executor,
              workers=args.workers)
    return 0

"""``python -m theory``: verify every theorem, corollary and proposition of the paper.

Prints a claim-by-claim table, writes ``report.md``, ``results.json`` and the figures to
the output folder (default ``out/theory``), and exits with status 1 if a claim fails, 2 for
bad input (one line on stderr), 130 when interrupted (Ctrl-C).

The output folder is checked (created, writable) before any work. The report is built in a
hidden staging folder inside it and moved into place at the end (``figures/`` swapped
whole, then ``results.json``, then ``report.md`` last — the marker; an existing report.md is
removed first). Interrupted or failed runs leave the folder as it was; whenever report.md
exists, results.json and figures/ beside it are from the same run.
"""

from __future__ import annotations

import argparse
import sys

from theory.runner import MODULES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true",
                   help="fewer problems and points (CI; < 2 min) instead of the full run")
    p.add_argument("--out", default="out/theory",
                   help="output folder for report.md, results.json, figures/ "
                   "(default out/theory)")
    p.add_argument("--only", nargs="+", metavar="NAME", choices=MODULES,
                   help=f"run only these modules: {', '.join(MODULES)}")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="worker processes for the modules (default: one per core, at most "
                   "one per module; 1 runs everything in this process)")
    p.add_argument("--activation", default=None, metavar="EXPR",
                   help="replace σ in every network problem (e.g. 'x**3': σ'(0) = 0, or "
                   "'1 + tanh(x)': σ(0) ≠ 0) to see the checks fail / become n/a")


OUTPUTS = ("figures", "results.json", "report.md")  # the order they are moved into place


def run(args) -> int:
    from flowtools._io import check_output_dir, staged_outputs
    from theory import runner

    out = check_output_dir(args.out, what="--out")  # before any work
    with staged_outputs(out, OUTPUTS) as stage:  # nothing partial on Ctrl-C or a crash
        report = runner.run(quick=args.quick, out=str(stage), only=args.only,
                            activation=args.activation, jobs=args.jobs)
    print(report.table())
    print(f"report: {out / 'report.md'}  ({report.timings['total']:.1f} s)")
    return 0 if report.ok else 1


def main(argv=None) -> int:
    from _flowtools_launcher import interrupts_not_lost  # the CLI's Ctrl-C rule, below both
    from flowtools.errors import FlowtoolsError

    p = argparse.ArgumentParser(prog="python -m theory", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    try:
        args = p.parse_args(argv)
    except SystemExit as done:  # --help (0) or a usage error (2), already printed
        return done.code if isinstance(done.code, int) else int(done.code is not None)
    try:
        with interrupts_not_lost():
            return run(args)
    except FlowtoolsError as err:
        print(f"{p.prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{p.prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

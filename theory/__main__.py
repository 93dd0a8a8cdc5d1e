"""``python -m theory``: verify every theorem, corollary and proposition of the paper.

Prints a claim-by-claim table, writes ``report.md``, ``results.json`` and the figures to
the output folder (default ``out/theory``), and exits with status 1 if a claim fails.
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
    p.add_argument("--activation", default=None, metavar="EXPR",
                   help="replace σ in every network problem (e.g. 'x**3': σ'(0) = 0, or "
                   "'1 + tanh(x)': σ(0) ≠ 0) to see the checks fail / become n/a")


def run(args) -> int:
    from theory.runner import run as run_all

    report = run_all(quick=args.quick, out=args.out, only=args.only,
                     activation=args.activation)
    print(report.table())
    print(f"report: {args.out}/report.md  ({report.timings['total']:.1f} s)")
    return 0 if report.ok else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m theory", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

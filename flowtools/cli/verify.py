"""Verify the paper's Theorems 1–4, Corollaries 1–3 and Proposition 1 numerically — the
same as ``python -m theory``: a table claim by claim, report.md + results.json + figures in
the output folder, exit status 1 if a claim fails.

    flowtools verify --quick --out out/theory
"""

from __future__ import annotations

NAME = "verify"
HELP = "check every theorem, corollary and proposition of the paper (python -m theory)"


def add_arguments(parser) -> None:
    from theory.__main__ import add_arguments as add

    add(parser)


def run(args) -> int:
    from theory.__main__ import run as run_theory

    return run_theory(args)

"""Command-line options shared by subcommands: the problem, the initial state, and the
argparse ``type=`` functions that validate every numeric option while parsing.

Each type function is built on ``flowtools._validate`` and named by what it checks; a bad
value makes argparse print the usage line and ``argument --OPTION: <what is wrong>`` and
exit with status 2, before any work:

    >>> positive_int("the sample size n")("6")
    6
    >>> positive_int("the sample size n")("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: the sample size n must be a positive integer, got 0.
    >>> nonzero_real("the ratio c")("inf")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: the ratio c must be finite and non-zero, got inf.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np

from _flowtools_launcher import interrupts_not_lost  # noqa: F401  (the Ctrl-C rule, re-exported)
from flowtools import _validate as V
from flowtools.errors import FlowtoolsError


# ---------------------------------------------------------------------- option types
def _number(text: str, name: str):
    """An int if the text is one (exact for large values), else a float."""
    s = text.strip()
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}.") from None


def _arg_type(name: str, check: Callable, label: str) -> Callable[[str], object]:
    def parse(text: str):
        value = _number(text, name)
        try:
            return check(value, name)
        except FlowtoolsError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    parse.__name__ = label  # argparse names the type by it in some messages
    return parse


def positive_int(name: str):
    """An integer ≥ 1 ("3", also "1e3"; not "2.5", "0", "nan")."""
    return _arg_type(name, V.positive_int, "positive integer")


def nonnegative_int(name: str):
    """An integer ≥ 0 (seeds)."""
    return _arg_type(name, V.nonnegative_int, "non-negative integer")


def positive_float(name: str):
    """A finite number > 0."""
    return _arg_type(name, V.positive_float, "positive number")


def nonnegative_float(name: str, hint: str = ""):
    """A finite number ≥ 0."""
    return _arg_type(name, lambda v, n: V.nonnegative_float(v, n, hint=hint),
                     "non-negative number")


def finite_float(name: str):
    """Any finite real number."""
    return _arg_type(name, V.real, "finite number")


def open_interval(name: str, lo: float, hi: float):
    """A number in (lo, hi)."""
    return _arg_type(name, lambda v, n: V.in_open_interval(v, n, lo, hi), "number")


def nonzero_real(name: str):
    """A finite number ≠ 0 (``Problem.init_ratio``'s ratio c = C1/C2)."""
    def check(v, n):
        if not (np.isfinite(v) and v != 0):
            raise FlowtoolsError(f"{n} must be finite and non-zero, got {v!r}.")
        return V.real(v, n)

    return _arg_type(name, check, "non-zero number")


def gd_step_limit(name: str):
    """A limit of GD iterations, a number in [1, 1e18] (``flowtools.descent.gd_step_limit``:
    GD counts its iterations in 64-bit integers)."""
    def check(v, n):
        from flowtools.descent import gd_step_limit as limit

        return limit(v)

    return _arg_type(name, check, "number of GD iterations")


def half_open_unit(name: str):
    """A number in (0, 1] (c̃ = min(|c|, 1/|c|))."""
    def check(v, n):
        v = V.positive_float(v, n)
        if v > 1:
            raise FlowtoolsError(f"{n} must lie in (0, 1], got {v!r}.")
        return v

    return _arg_type(name, check, "number in (0, 1]")


class TimeRange(argparse.Action):
    """``--t-range T0 T1 N``: finite T0, T1 (values parsed by ``type=finite_float``) and an
    integer N ≥ 1; stored as the tuple (T0, T1, N)."""

    def __call__(self, parser, namespace, values, option_string=None):
        t0, t1, n = values
        if n != int(n) or n < 1:
            raise argparse.ArgumentError(self, f"N (the number of times) must be a positive "
                                         f"integer, got {n!r}.")
        setattr(namespace, self.dest, (float(t0), float(t1), int(n)))


# ---------------------------------------------------------------------- shared options
def add_problem_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("problem (default: the paper's Example 1)")
    g.add_argument("--n", type=positive_int("the sample size n"), default=6,
                   help="sample size (default 6)")
    g.add_argument("--sampling", default="grid", choices=["grid", "gaussian", "uniform"],
                   help="inputs: evenly spaced on [-2, 2], standard Gaussian, or uniform "
                   "on [-2, 2]^d (default grid)")
    add_model_arguments(g)
    g.add_argument("--data-seed", type=nonnegative_int("the data seed"), default=0,
                   help="seed of random inputs (an integer ≥ 0)")
    g.add_argument("--loss", default="sum", choices=["sum", "mean"],  # LOSS_CONVENTIONS
                   help="loss convention: sum ½Σ(f − y)² as the paper states, or mean "
                        "½·(1/n)Σ (rates and μ1 scale by 1/n; default sum)")


def add_model_arguments(g) -> None:
    """The architecture options: --activation, --width/-m, --dim/-d, --no-bias."""
    g.add_argument("--activation", default="tanh",
                   help="registered name (tanh, rational, sin, linear) or a sympy "
                   "expression in x, e.g. 'x/(1+x**2)' (default tanh)")
    g.add_argument("--width", "-m", type=positive_int("the width m"), default=2,
                   help="width m (default 2)")
    g.add_argument("--dim", "-d", type=positive_int("the input dimension d"), default=1,
                   help="input dimension d (default 1)")
    g.add_argument("--no-bias", action="store_true", help="no bias (default: bias)")


def problem_from_args(args):
    from flowtools.models import make_problem

    return make_problem(args.n, sampling=args.sampling, activation=args.activation,
                        width=args.width, dim=args.dim, bias=not args.no_bias,
                        seed=args.data_seed, loss_convention=getattr(args, "loss", "sum"))


def add_init_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("initial state θ0")
    g.add_argument("--scale", type=positive_float("the initialization scale"), default=1e-8,
                   help="Gaussian initialization scale σ > 0 (default 1e-8)")
    g.add_argument("--seed", type=nonnegative_int("the seed"), nargs="+", default=[0],
                   help="initialization seed(s), integers ≥ 0; several give a batch "
                   "(default 0)")
    g.add_argument("--ratio", "-c", type=nonzero_real("the ratio c = C1/C2"), default=None,
                   help="rescale the second neuron so that c = C1/C2 takes this value, "
                   "finite and non-zero (m = 2, the paper's Figure 2 protocol)")


def theta0_from_args(problem, args) -> np.ndarray:
    seeds = args.seed if len(args.seed) > 1 else args.seed[0]
    if args.ratio is not None:
        return problem.init_ratio(args.ratio, args.scale, seeds)
    return problem.init_gaussian(args.scale, seeds)

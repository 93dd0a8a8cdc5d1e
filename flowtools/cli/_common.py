"""Command-line options shared by subcommands: the problem and the initial state."""

from __future__ import annotations

import argparse

import numpy as np


def add_problem_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("problem (default: the paper's Example 1)")
    g.add_argument("--n", type=int, default=6, help="sample size (default 6)")
    g.add_argument("--sampling", default="grid", choices=["grid", "gaussian", "uniform"],
                   help="inputs: evenly spaced on [-2, 2], standard Gaussian, or uniform "
                   "on [-2, 2]^d (default grid)")
    g.add_argument("--activation", default="tanh",
                   help="registered name (tanh, rational, sin, linear) or a sympy "
                   "expression in x, e.g. 'x/(1+x**2)' (default tanh)")
    g.add_argument("--width", "-m", type=int, default=2, help="width m (default 2)")
    g.add_argument("--dim", "-d", type=int, default=1, help="input dimension d (default 1)")
    g.add_argument("--no-bias", action="store_true", help="no bias (default: bias)")
    g.add_argument("--data-seed", type=int, default=0, help="seed of random inputs")


def problem_from_args(args):
    from flowtools.problem import make_problem

    return make_problem(args.n, sampling=args.sampling, activation=args.activation,
                        width=args.width, dim=args.dim, bias=not args.no_bias,
                        seed=args.data_seed)


def add_init_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("initial state θ0")
    g.add_argument("--scale", type=float, default=1e-8,
                   help="Gaussian initialization scale σ (default 1e-8)")
    g.add_argument("--seed", type=int, nargs="+", default=[0],
                   help="initialization seed(s); several give a batch (default 0)")
    g.add_argument("--ratio", "-c", type=float, default=None,
                   help="rescale the second neuron so that c = C1/C2 takes this value "
                   "(m = 2, the paper's Figure 2 protocol)")


def theta0_from_args(problem, args) -> np.ndarray:
    seeds = args.seed if len(args.seed) > 1 else args.seed[0]
    theta0 = problem.init_gaussian(args.scale, seeds)
    if args.ratio is not None:
        problem._require_width2("--ratio")
        theta0 = problem.with_ratios(theta0, 1.0 / args.ratio)
    return theta0

"""Flow versus gradient descent on one initial state: the sup-gap between GD (aligned at
t = k·lr) and the gradient flow and its modified flows, their fitted orders in lr, the
escape shift, the stability edge 2/λ_max, and (with --endpoint-t1) end points and branches.
With --branch-map, the final branch over c̃ for the flow and for GD (width 2).

The GD work is estimated before anything runs: up to Σ ⌈t1/lr⌉ (+ Σ ⌈endpoint-t1/lr⌉)
iterations, or Σ ⌈horizon/lr⌉ per c̃ value with --branch-map. Above --max-gd-steps (default
1e8, minutes on one core) the command exits 2 with the numbers; raise it to go on.

Examples:
  flowtools compare --scale 1e-2 --lrs 1e-3 3e-3 1e-2 3e-2 1e-1
  flowtools compare --scale 1e-2 --lrs 0.01 0.05 --endpoint-t1 1e3 --json out.json
  flowtools compare --branch-map --c-tilde 0.3 0.7 0.72 0.76 0.9 --lrs 0.01 0.05 0.25 0.5
"""

from __future__ import annotations

import warnings

NAME = "compare"
HELP = "flow versus gradient descent: gaps, orders, modified flows, stability edge, branches"


NULL_MEANS = ("a number that is not finite (NaN: undefined or not measured, e.g. an order "
              "that cannot be fitted or a run that diverged; or ±infinity)")


def add_arguments(p) -> None:
    from flowtools.cli._common import (
        add_init_arguments,
        add_problem_arguments,
        gd_step_limit,
        half_open_unit,
        positive_float,
    )
    from flowtools.descent import GD_STEP_LIMIT

    add_problem_arguments(p)
    add_init_arguments(p)
    g = p.add_argument_group("comparison")
    g.add_argument("--lrs", type=positive_float("a learning rate"), nargs="+", default=None,
                   help="learning rates > 0 (default 1e-3 … 1e-1; with --branch-map the "
                   "paper's 0.01 0.05 0.25 0.5)")
    g.add_argument("--t1", type=positive_float("the horizon t1"), default=10.0,
                   help="horizon of the aligned comparison in flow time, > 0 (default 10)")
    g.add_argument("--radius", type=positive_float("the escape radius"), default=0.5,
                   help="escape radius > 0 (default 0.5)")
    g.add_argument("--endpoint-t1", type=positive_float("the end-point horizon"),
                   default=None, help="also compare end points and branches at this flow "
                   "time (> 0)")
    g.add_argument("--branch-map", action="store_true",
                   help="final branch over c̃ (uses --scale, first --seed) instead")
    g.add_argument("--c-tilde", type=half_open_unit("c̃"), nargs="+",
                   default=[0.3, 0.6, 0.7, 0.72, 0.74, 0.76, 0.8, 0.9, 1.0],
                   help="c̃ values in (0, 1] for --branch-map")
    g.add_argument("--horizon", type=positive_float("the GD horizon"), default=5e4,
                   help="GD's flow-time horizon for --branch-map, > 0 (default 5e4)")
    g.add_argument("--max-gd-steps", type=gd_step_limit("--max-gd-steps"),
                   default=GD_STEP_LIMIT, metavar="N",
                   help=f"refuse when the GD runs would take more than N iterations in all "
                   f"(default {GD_STEP_LIMIT:.0e}; at most 1e18); estimated before anything "
                   "runs")
    g.add_argument("--json", default=None,
                   help="write the results to this JSON file (strict JSON; null stands for "
                   "a non-finite number)")


def run(args) -> int:
    from flowtools._io import check_output_file, write_json
    from flowtools.cli._common import problem_from_args, theta0_from_args
    from flowtools.discretization import DEFAULT_LRS, GDStabilityWarning, compare
    from flowtools.experiments.branch_maps import EX1_LRS, branch_map

    if args.json:
        check_output_file(args.json, what="--json")  # before any work
    problem = problem_from_args(args)
    if args.branch_map:
        res = branch_map(problem, args.c_tilde, args.lrs or EX1_LRS, scale=args.scale,
                         seed=args.seed[0], horizon=args.horizon,
                         max_gd_steps=args.max_gd_steps)
    else:
        if len(args.seed) > 1:
            from flowtools.errors import FlowtoolsError

            raise FlowtoolsError("compare takes one initial state: give one --seed.")
        theta0 = theta0_from_args(problem, args)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", GDStabilityWarning)
            res = compare(problem, theta0, args.lrs or DEFAULT_LRS, t1=args.t1,
                          radius=args.radius, endpoint_t1=args.endpoint_t1,
                          max_gd_steps=args.max_gd_steps)
        for w in caught:
            print(f"warning: {w.message}")
    print(res.table())
    if args.json:
        write_json(args.json, res.to_dict(), indent=1, default=str, null_means=NULL_MEANS)
    return 0

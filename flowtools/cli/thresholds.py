"""The branches of the target set Q* and the sample-size thresholds of a two-layer model.

For a two-layer network with a single-neuron target (the paper's neuron a_0 = 1, w_0 = 1,
b_0 = 1 under the network's activation), prints each branch of Q* = {θ : f_θ ≡ f*} (its
groups of neurons, dimension, tangent rank, separation sample size and how that size was
derived) and the optimistic and separation sample sizes (Zhang et al. 2023a, b; the main
paper's §3.2 and Table 1). The rule and its derivation: ``flowtools.thresholds``. The data
are not used: thresholds are properties of the model and the target.

--check also computes each branch's dimension from the zero set of f_θ − f* (linear
slices), and the model rank numerically; exit 1 if one disagrees with the structure.

examples:
  flowtools thresholds                         # Example 1: tanh, m = 2, d = 1, bias
  flowtools thresholds -d 3 --check            # Figure 9's case, with the numerical checks
  flowtools thresholds -m 3 --activation sin --json
"""

from __future__ import annotations

from flowtools.cli._common import positive_int

NAME = "thresholds"
HELP = "branches of the target set and the optimistic and separation sample sizes"


def add_arguments(p) -> None:
    g = p.add_argument_group("model (default: the paper's Example 1)")
    g.add_argument("--activation", default="tanh",
                   help="registered name (tanh, rational, sin) or a sympy expression in x "
                   "with σ(0) = 0 and σ'(0) ≠ 0 (default tanh)")
    g.add_argument("--width", "-m", type=positive_int("the width m"), default=2,
                   help="width m (default 2)")
    g.add_argument("--dim", "-d", type=positive_int("the input dimension d"), default=1,
                   help="input dimension d (default 1)")
    g.add_argument("--no-bias", action="store_true", help="no bias (default: bias)")
    o = p.add_argument_group("output")
    o.add_argument("--check", action="store_true",
                   help="also compute dimensions, tangent ranks and the model rank "
                   "numerically and compare")
    o.add_argument("--json", action="store_true", help="print strict JSON instead of a table")


def run(args) -> int:
    from flowtools._io import dumps_json
    from flowtools.thresholds import problem_for, thresholds

    pb = problem_for(args.activation, args.width, args.dim, not args.no_bias)
    th = thresholds(pb, check=args.check)
    print(dumps_json(th.to_dict()) if args.json else th.table())
    return 0 if not args.check or th.checks["agree"] else 1

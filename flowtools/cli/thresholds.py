"""The branches of the target set Q* and the sample-size thresholds of a two-layer model.

For a two-layer network with a single-neuron target (the paper's neuron a_0 = 1, w_0 = 1,
b_0 = 1 under the network's activation), prints each branch of Q* = {θ : f_θ ≡ f*} (its
groups of neurons, dimension, tangent rank, separation sample size and how that size was
derived) and the optimistic and separation sample sizes (Zhang et al. 2023a, b; the main
paper's §3.2 and Table 1). The rule and its derivation: ``flowtools.thresholds``. The data
are not used: thresholds are properties of the model and the target.

--check also computes each branch's dimension from the zero set of f_θ − f* (linear
slices), and the model rank numerically; exit 1 if one disagrees with the structure.

--samples N asks about one dataset (N uniform inputs on [-2, 2]^d, --data-seed): for each
branch, whether it is separated for these samples by the rule (the tangent cone against
the samples' kernel, ``leading_order_separated``) and by the numerical test of Definition 1
that uses no rule (``flowtools.separation.separation_test``: zero-loss points outside Q*
on small spheres around the branch); exit 1 if the two disagree.

examples:
  flowtools thresholds                         # Example 1: tanh, m = 2, d = 1, bias
  flowtools thresholds -d 3 --check            # Figure 9's case, with the numerical checks
  flowtools thresholds -m 3 --activation sin --json
  flowtools thresholds --samples 4 --data-seed 3   # which branches separate for this data
"""

from __future__ import annotations

from flowtools.cli._common import add_model_arguments, nonnegative_int, positive_int

NAME = "thresholds"
HELP = "branches of the target set and the optimistic and separation sample sizes"


def add_arguments(p) -> None:
    add_model_arguments(p.add_argument_group("model (default: the paper's Example 1; σ(0) = 0 "
                                             "and σ'(0) ≠ 0, not a polynomial)"))
    d = p.add_argument_group("one dataset")
    d.add_argument("--samples", type=positive_int("the sample size"), default=None,
                   metavar="N", help="test separation for N uniform samples on [-2, 2]^d")
    d.add_argument("--data-seed", type=nonnegative_int("the data seed"), default=0,
                   help="seed of the samples (default 0)")
    o = p.add_argument_group("output")
    o.add_argument("--check", action="store_true",
                   help="also compute dimensions, tangent ranks and the model rank "
                   "numerically and compare")
    o.add_argument("--json", action="store_true", help="print strict JSON instead of a table")


def run(args) -> int:
    from flowtools._io import dumps_json
    from flowtools.thresholds import problem_for, thresholds

    pb = problem_for(args.activation, args.width, args.dim, not args.no_bias,
                     n=args.samples, seed=args.data_seed)
    th = thresholds(pb, check=args.check)
    out = th.to_dict()
    ok = not args.check or th.checks["agree"]
    rows = _on_data(pb, th) if args.samples else None
    if rows is not None:
        out["samples"] = {"n": args.samples, "data_seed": args.data_seed, "branches": rows}
        ok = ok and all(r["rule"] is None or r["test"] == "undecided"
                        or r["rule"] == (r["test"] == "separated") for r in rows)
    if args.json:
        print(dumps_json(out))
        return 0 if ok else 1
    print(th.table())
    if rows is not None:
        print(f"\nseparated for these {args.samples} samples (uniform on [-2, 2]^{args.dim}, "
              f"data seed {args.data_seed})?")
        print(f"{'branch':<12} {'rule (leading order)':<22} numerical test (Definition 1)")
        for r in rows:
            rule = {True: "separated", False: "not separated", None: "no rule"}[r["rule"]]
            print(f"{r['branch']:<12} {rule:<22} {r['test']}")
    return 0 if ok else 1


def _on_data(pb, th) -> list[dict]:
    """Each branch on the problem's samples: the rule's verdict and the numerical test's."""
    from flowtools.separation import separation_test
    from flowtools.thresholds import leading_order_separated

    rows = []
    for b in th.branches:
        rule, _ = leading_order_separated(pb, b)
        test = separation_test(pb, b)
        rows.append({"branch": b.code, "rule": rule, "test": test.verdict,
                     "test_reason": test.reason})
    return rows

"""Branches of Q* and the sample-size thresholds (flowtools.thresholds): the values the paper
quotes, the structure against independent numerical computations, and the command."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from flowtools.cli import main
from flowtools.errors import FlowtoolsError
from flowtools.models import make_problem
from flowtools.models.network import SingleNeuron, forward
from flowtools.thresholds import (
    leading_order_separated,
    numerical_dimension,
    numerical_optimistic,
    problem_for,
    tangent_rank,
    target_branches,
    thresholds,
)

EXAMPLE1 = problem_for()                 # tanh, m = 2, d = 1, bias
FIG9 = problem_for(dim=3)                # Appendix B: m = 2, d = 3, bias
WIDTH3 = problem_for(width=3)
NO_BIAS = problem_for(width=3, bias=False)


def _f(pb, theta, X):
    return np.asarray(forward(pb.activation, jnp.asarray(theta), jnp.asarray(X), pb.width))


def _Xa(pb, n=300, seed=1):
    from flowtools.branches import test_inputs
    from flowtools.data import augment

    return augment(test_inputs(pb, n, seed=seed), pb.bias)


# ---------------------------------------------------------------- the paper's seven values
def test_example1_values_quoted_by_the_paper():
    th = thresholds(EXAMPLE1)
    assert th.optimistic == 3
    assert th.branch("Q2").separation == 4 and th.branch("Q1").separation == 5
    assert th.separation == 4
    # Table 1: Q* = ℓ⁻¹(0) from n = 6 = p; the dimension count guarantees it for almost all
    # data from p + 1 (at n = p isolated spurious minima are possible)
    assert th.n_params == 6 and th.to_dict()["all_minima_in_target_from"] == 7


def test_figure9_values_quoted_by_the_paper():
    th = thresholds(FIG9)
    assert (th.optimistic, th.branch("Q2").separation, th.branch("Q1").separation) == (5, 6, 9)


def test_example1_branches_include_the_null_line_the_paper_omits():
    codes = [(b.code, b.paper_name, b.dimension, b.rule) for b in target_branches(EXAMPLE1)]
    assert codes == [("T2", "Q1", 1, "second order"), ("T1+S", "Q2", 2, "clean"),
                     ("T1+N", None, 1, "clean")]
    # T1+N: neuron 2 has w = 0 and any a: f_θ = f* although a_2 ≠ 0 (not in Q1 ∪ Q2)
    theta = np.array([1.0, 1.0, 1.0, 0.7, 0.0, 0.0])
    X = _Xa(EXAMPLE1)
    np.testing.assert_allclose(_f(EXAMPLE1, theta, X), np.tanh(X @ np.array([1.0, 1.0])),
                               rtol=0, atol=1e-15)


# ---------------------------------------------------------------- structure, in general
@pytest.mark.parametrize("pb", [EXAMPLE1, FIG9, WIDTH3, NO_BIAS, problem_for(width=4),
                                problem_for(width=8), problem_for(width=7, bias=False)],
                         ids=["ex1", "fig9", "m3", "m3-nobias", "m4", "m8", "m7-nobias"])
def test_counts_are_consistent(pb):
    """For every branch: p − rank − dim is the kernel's excess over the branch (0 exactly
    for clean branches), the rule's separation size is the codimension, the optimistic size
    d̃ + 1 is at most every separation size."""
    th = thresholds(pb)
    dt = pb.dim + pb.bias
    assert th.optimistic == dt + 1
    for b in th.branches:
        excess = th.n_params - b.rank - b.dimension
        assert excess >= 0
        assert (excess == 0) == (b.rule == "clean")
        assert b.separation == th.n_params - b.dimension
        assert b.separation >= th.optimistic
        if b.rule == "second order":       # the rank-one cone adds d̃ to the tangent rank
            assert b.separation == b.rank + dt


def test_many_equal_groups_and_the_size_limit():
    """Width 7: T1 with two C3 groups (equal groups are counted apart: dimension
    2·(d̃ + 2), excess 2·d̃); beyond MAX_BRANCHES a clear error, not a hang."""
    b = next(b for b in target_branches(problem_for(width=7)) if b.code == "T1+C3+C3")
    assert (b.dimension, b.rank, b.rule) == (8, 9, "conjectured")
    assert b.rank + b.dimension + 2 * 2 == 21                 # p = 7·3
    with pytest.raises(FlowtoolsError, match="branches"):
        target_branches(problem_for(width=20))


def test_ill_conditioned_ranks_are_reported_not_refused():
    """Width 7 without a bias: many tanh(w x) on one input dimension are independent but
    their singular values decay geometrically below the rank tolerance; the structure is
    kept and those branches are listed, never a false refusal."""
    th = thresholds(problem_for(width=7, bias=False))
    assert "T1+S+S+S+S+S+S" in th.unverified
    assert "tangent rank not verifiable in float64" in th.table()
    assert set(th.unverified) <= {b.code for b in th.branches}


def test_width3_branches():
    codes = sorted(b.code for b in target_branches(WIDTH3))
    assert codes == sorted(["T3", "T2+S", "T2+N", "T1+C2", "T1+S+S", "T1+S+N", "T1+K2"])
    assert thresholds(WIDTH3).separation == 5          # T1+S+S, codimension 9 − 4
    # without a bias there are no bias-only constants: two null neurons form a branch
    assert "T1+N2" in [b.code for b in target_branches(NO_BIAS)]


@pytest.mark.parametrize("pb", [EXAMPLE1, FIG9, WIDTH3, NO_BIAS], ids=["ex1", "fig9", "m3",
                                                                       "m3-nobias"])
def test_points_tangents_and_normals(pb):
    """Every branch point reproduces f* to round-off; moving along the tangent basis keeps
    f = f* (to second order on the curved K branch, exactly on the affine ones); the
    tangent and normal bases are orthonormal and complementary."""
    X = _Xa(pb)
    rng = np.random.default_rng(3)
    for b in target_branches(pb):
        for degenerate in (False, True):
            th = b.point(rng, degenerate=degenerate)
            ystar = _f(pb, th, X)
            target = pb.target.a0 * np.asarray(pb.activation(jnp.asarray(
                X @ np.r_[pb.target.w0, [pb.target.b0 or 0.0] * pb.bias])))
            np.testing.assert_allclose(ystar, target, rtol=0, atol=1e-14)
        T, N = b.tangent(th), b.normal(th)
        assert T.shape == (th.size, b.dimension) and N.shape == (th.size, b.codimension)
        np.testing.assert_allclose(np.c_[T, N].T @ np.c_[T, N], np.eye(th.size), atol=1e-12)
        for t in (1e-2, 1e-3):
            moved = _f(pb, th + t * T.sum(axis=1), X) - ystar
            bound = 1e-13 if "K" not in b.code else 50 * t**2
            assert np.max(np.abs(moved)) <= bound, (b.code, t)


# ---------------------------------------------------------------- two ways agree
@pytest.mark.parametrize("pb", [EXAMPLE1, FIG9, problem_for(dim=2), WIDTH3, NO_BIAS],
                         ids=["ex1", "fig9", "d2", "m3", "m3-nobias"])
def test_tangent_rank_numerical_equals_structure(pb):
    for b in target_branches(pb):
        for seed in range(2):
            rank, sv = tangent_rank(pb, b.point(seed))
            assert rank == b.rank, b.code
            # a clear gap: the numerical rank does not sit at the tolerance's edge
            assert sv[rank - 1] > 1e-6 * sv[0] and (rank == sv.size or sv[rank] < 1e-12 * sv[0])


@pytest.mark.parametrize("pb", [EXAMPLE1, FIG9, WIDTH3], ids=["ex1", "fig9", "m3"])
def test_optimistic_size_is_the_numerical_model_rank(pb):
    assert numerical_optimistic(pb) == thresholds(pb).optimistic


@pytest.mark.parametrize("pb", [EXAMPLE1, FIG9, problem_for(dim=2)], ids=["ex1", "fig9", "d2"])
def test_branch_dimension_from_the_zero_set(pb):
    """The local dimension of Q* at a generic branch point from the zero set of f_θ − f*
    alone (linear slices) equals the structural dimension — also on the degenerate Q1,
    where the kernel of the tangent map is larger than the branch."""
    for b in target_branches(pb):
        for seed in (0, 1):
            dim, ev = numerical_dimension(pb, b, seed=seed)
            assert dim == b.dimension, (b.code, seed, ev["residuals"])


def test_branch_dimension_width3_clean_branches():
    for b in target_branches(WIDTH3):
        if b.rule == "clean":
            assert numerical_dimension(WIDTH3, b, seed=0)[0] == b.dimension, b.code


# ---------------------------------------------------------------- the rule on given data
@pytest.mark.parametrize("dim, sizes", [(1, {"Q2": 4, "Q1": 5, "T1+N": 5}),
                                        (3, {"Q2": 6, "Q1": 9, "T1+N": 9})], ids=["ex1", "fig9"])
def test_leading_order_separation_switches_at_the_predicted_size(dim, sizes):
    """On random data the leading-order test (the samples' kernel against the tangent cone)
    says "not separated" one sample below each branch's separation size and "separated"
    from it on — the paper's four separation sizes, dataset by dataset."""
    for name, n_sep in sizes.items():
        for seed in range(3):
            for n, expected in ((n_sep - 1, False), (n_sep, True), (n_sep + 1, True)):
                pb = problem_for(dim=dim, n=n, seed=seed)
                branch = next(b for b in target_branches(pb) if name in (b.code, b.paper_name))
                verdict, _ = leading_order_separated(pb, branch)
                assert verdict is expected, (name, n, seed)


def test_leading_order_q1_at_n4_is_the_sign_of_one_quadratic_form():
    """Example 1, Q1 at n = 4 = D − 1: independently of J, p spans the functions of the
    samples orthogonal to (σ, xσ', σ')(x_i + 1), and Q1 is separated at leading order
    iff S = Σ p_i σ''(x_i + 1) x̃_i x̃_iᵀ is definite."""
    for seed in range(6):
        pb = problem_for(n=4, seed=seed)
        x = pb.X[:, 0]
        z = x + 1
        t = np.tanh(z)
        s1, s2 = 1 - t**2, -2 * t * (1 - t**2)
        E1 = np.c_[t, x * s1, s1]
        p = np.linalg.svd(E1.T)[2][-1]               # the null vector of E1ᵀ
        Xt = np.c_[x, np.ones(4)]
        S = np.einsum("i,i,ij,ik->jk", p, s2, Xt, Xt)
        verdict, _ = leading_order_separated(pb, target_branches(pb)[0])   # T2 = Q1
        assert verdict == bool(np.linalg.det(S) > 0), seed


# ---------------------------------------------------------------- refusals
def test_refusals():
    with pytest.raises(FlowtoolsError, match="polynomial"):
        thresholds(problem_for("linear"))
    with pytest.raises(FlowtoolsError, match="σ'\\(0\\)"):
        thresholds(problem_for("x**2 + sin(x)**3 - x**2"))     # σ'(0) = 0
    with pytest.raises(FlowtoolsError, match="differs from the network"):
        thresholds(make_problem(6, activation="sin"))          # tanh target, sin network
    with pytest.raises(FlowtoolsError, match="no target"):
        from flowtools.data import Dataset
        from flowtools.models import Problem

        thresholds(Problem.create(Dataset(np.zeros((3, 1)), np.zeros(3))))
    with pytest.raises(FlowtoolsError, match="bias b0"):
        thresholds(make_problem(6, bias=False, target=SingleNeuron("tanh", 1.0, [1.0], 1.0)))


# ---------------------------------------------------------------- the command
def test_command_on_example1(capsys):
    assert main(["thresholds"]) == 0
    out = capsys.readouterr().out
    assert "optimistic sample size       n = 3" in out
    assert "separation sample size       n = 4" in out
    rows = {line.split()[0]: line.split()[1:5] for line in out.splitlines()
            if line[:2] in ("T2", "T1")}
    assert rows == {"T2": ["Q1", "1", "3", "5"], "T1+S": ["Q2", "2", "4", "4"],
                    "T1+N": ["-", "1", "5", "5"]}


def test_command_json_and_errors(capsys):
    assert main(["thresholds", "-d", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["optimistic"] == 5 and data["separation"] == 6
    assert {b["paper_name"]: b["separation"] for b in data["branches"]
            if b["paper_name"]} == {"Q1": 9, "Q2": 6}
    assert main(["thresholds", "--activation", "x**3 + x"]) == 2
    assert "polynomial" in capsys.readouterr().err


def test_command_on_one_dataset(capsys):
    """--samples: the rule and the numerical test of Definition 1 agree branch by branch
    (Example 1 at n = 4: only Q2 is separated)."""
    assert main(["thresholds", "--samples", "4", "--data-seed", "3", "--json"]) == 0
    rows = {r["branch"]: (r["rule"], r["test"])
            for r in json.loads(capsys.readouterr().out)["samples"]["branches"]}
    assert rows == {"T2": (False, "not separated"), "T1+S": (True, "separated"),
                    "T1+N": (False, "not separated")}

"""The symbolic origin Hessian against jax.hessian, the paper's closed forms, and errors."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import flowtools as ft
from flowtools.errors import AssumptionError, FlowtoolsError
from flowtools.symbolic import (
    SIGMA,
    OriginHessian,
    check_assumptions,
    field_taylor_term,
    origin_hessian,
    sigma_symbol,
    third_order_term,
)
from flowtools.symbolic.assumptions import ANALYTIC, C2, DSIGMA0, SIGMA0, theorem1_failures

USER = "atan(x) + x**3/5"  # user-defined, σ'(0) = 1, not odd-symmetric in form
ACTIVATIONS = ["tanh", "rational", "sin", USER]
# (width m, dim d, bias): m = 1–5, d = 1–4, each activation with and without a bias
SHAPES = [(1, 1, True), (2, 2, False), (3, 3, True), (4, 4, False), (5, 2, True), (2, 1, False)]


@eqx.filter_jit
def _jax_hessian(pb, theta):
    return pb.hessian(theta)


def _H0(pb):
    """∇²ℓ(0) by jax.hessian of the problem's loss (jitted: eager tracing is slow)."""
    return np.asarray(_jax_hessian(pb, jnp.zeros(pb.n_params)))


def _problem(act, m, d, bias, n=5, seed=0):
    return ft.make_problem(n, sampling="uniform", activation=act, width=m, dim=d, bias=bias,
                           seed=seed)


def _flat(oh):
    return [s for th in oh.theta_symbols for s in th]


# ------------------------------------------------------------------ Hessian = jax.hessian


@pytest.mark.parametrize("m,d,bias", SHAPES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_hessian_matches_jax(act, m, d, bias):
    pb = _problem(act, m, d, bias, seed=m + d)
    oh = OriginHessian.from_problem(pb)
    H = _H0(pb)
    assert np.max(np.abs(oh.numeric() - H)) <= 1e-12 * max(1.0, np.abs(H).max())
    # the lambdified derivation (moment form), on these data and on fresh data
    f = oh.to_jax()
    assert np.max(np.abs(np.asarray(f(pb.X, pb.y)) - H)) <= 1e-12 * max(1.0, np.abs(H).max())
    pb2 = _problem(act, m, d, bias, seed=99)
    H2 = _H0(pb2)
    assert np.max(np.abs(np.asarray(f(pb2.X, pb2.y)) - H2)) <= 1e-12 * max(1.0, np.abs(H2).max())


def _max_rel_err(f, pb):
    H = _H0(pb)
    return np.max(np.abs(np.asarray(f(pb.X, pb.y)) - H)) / max(1.0, np.abs(H).max())


def test_exports_are_independent_of_each_other_and_of_caches():
    """Each OriginHessian and FieldTaylorTerm carries the moments its JAX export evaluates:
    objects of different data and dimensions, built in any order, export correctly after
    sympy's and the derivation's caches are cleared (what the benchmark does between runs;
    a module-level registry of moments used to be cleared with them, breaking to_jax)."""
    import importlib

    from flowtools.symbolic import derivation

    pb1 = _problem("tanh", 2, 1, True, n=4, seed=1)
    pb2 = _problem("tanh(x) + 1/2", 3, 2, False, n=6, seed=2)  # coupled, other d, no bias
    oh1, oh2 = OriginHessian.from_problem(pb1), OriginHessian.from_problem(pb2)
    data1 = (np.asarray(pb1.X), np.asarray(pb1.y))
    T1 = field_taylor_term("tanh", width=2, dim=1, data=data1, order=3)
    derivation.sample_blocks.cache_clear()
    sp.core.cache.clear_cache()
    oh3 = origin_hessian("sin", width=2, dim=1, bias=True, data=7)  # same d̃ as oh1
    pb3 = _problem("sin", 2, 1, True, n=7, seed=3)
    for oh, pb in [(oh2, pb2), (oh1, pb1), (oh3, pb3), (oh1, pb3), (oh2, pb2)]:
        assert _max_rel_err(oh.to_jax(), pb) <= 1e-12
    theta = jnp.asarray(pb1.init_gaussian(1.0, seed=4))
    ref = np.asarray(_jets(pb1, theta)[2])
    got = np.asarray(T1.to_jax()(theta, pb1.X, pb1.y))
    assert np.max(np.abs(got - ref)) <= 1e-12 * max(1.0, np.abs(ref).max())
    for name in ("exact", "derivation", "spectrum", "hessian", "taylor"):  # no registries
        mod = importlib.import_module(f"flowtools.symbolic.{name}")
        assert not [k for k, v in vars(mod).items()
                    if not k.startswith("__") and isinstance(v, (dict, list, set))], name


@pytest.mark.parametrize("act", ["tanh(x) + 1/2", "cos(x)", "exp(x)"])
def test_coupled_hessian_when_sigma0_nonzero(act):
    """σ(0) ≠ 0 couples the neurons: still equal to jax.hessian, and the spectrum from the
    two blocks equals numpy's eigenvalues of the full matrix."""
    pb = _problem(act, 3, 2, True)
    oh = OriginHessian.from_problem(pb)
    assert not oh.block_diagonal
    H = _H0(pb)
    np.testing.assert_allclose(oh.numeric(), H, rtol=0, atol=1e-12 * np.abs(H).max())
    ev = np.sort(np.linalg.eigvalsh(-H))[::-1]
    mine = np.sort(np.concatenate([[float(lam)] * k for lam, k in oh.eigenvalues.items()]))
    np.testing.assert_allclose(mine[::-1], ev, atol=1e-11)
    V = np.array(oh.top_basis.evalf(17).tolist(), dtype=float)
    np.testing.assert_allclose(V.T @ V, np.eye(V.shape[1]), atol=1e-14)
    np.testing.assert_allclose(-H @ V, float(oh.mu1) * V, atol=1e-12)


# ------------------------------------------------------------------ closed forms of the paper


@pytest.mark.parametrize("act,ds0", [("tanh", 1), ("2*tanh(x)", 2), ("-tanh(x)", -1)])
@pytest.mark.parametrize("bias", [True, False])
def test_mu1_and_top_eigenvectors(act, ds0, bias):
    pb = _problem(act, 3, 2, bias)
    oh = OriginHessian.from_problem(pb)
    g = sp.Matrix(oh.gamma)
    ng = sp.sqrt(sum(c**2 for c in g))
    assert sp.simplify(oh.mu1 - abs(ds0) * ng) == 0
    assert oh.eigenvalues[oh.mu1] == pb.width  # one direction per neuron
    (v,) = oh.top_block_vectors
    expect = sp.Matrix([ng, *(sp.sign(ds0) * g)]) / (sp.sqrt(2) * ng)
    assert all(sp.simplify(a - b) == 0 for a, b in zip(v, expect))
    assert oh.block == ds0 * sp.Matrix(sp.BlockMatrix([[sp.zeros(1), g.T],
                                                       [g, sp.zeros(len(g))]]))
    # against numpy on the float Hessian: eigenvalue, multiplicity, projector
    H = -_H0(pb)
    w, U = np.linalg.eigh(H)
    assert abs(w[-1] - pb.mu1) < 1e-12 and abs(float(oh.mu1) - w[-1]) < 1e-12
    top = U[:, w > w[-1] - 1e-9]
    assert top.shape[1] == pb.width
    V = np.array(oh.top_basis.evalf(17).tolist(), dtype=float)
    np.testing.assert_allclose(V @ V.T, top @ top.T, atol=1e-12)
    np.testing.assert_allclose(V, pb.top_eigvecs, atol=1e-14)
    assert abs(float(oh.mu2) - pb.mu2) < 1e-12


@pytest.mark.parametrize("act", ["tanh", "-tanh(x)", "2*sin(x)"])
def test_imbalance_is_problem_imbalance(act):
    pb = _problem(act, 3, 2, True)
    oh = OriginHessian.from_problem(pb)
    theta = pb.init_gaussian(1.0, seed=[1, 2])
    sub = [dict(zip(_flat(oh), th)) for th in theta]
    C = np.array([[float(c.subs(s)) for c in oh.imbalance] for s in sub])
    np.testing.assert_allclose(C, pb.imbalance(theta), rtol=1e-13, atol=1e-13)
    # C = √2‖γ‖·V1ᵀθ: coordinates in the top eigenspace
    V = np.array(oh.top_basis.evalf(17).tolist(), dtype=float)
    np.testing.assert_allclose(C, math.sqrt(2) * np.linalg.norm(pb.gamma) * theta @ V,
                               rtol=1e-13)


def test_generic_moments_closed_form():
    """With γ, n and σ'(0) symbolic the derivation reproduces D = σ'(0)[[0, γᵀ], [γ, 0]],
    μ1 = |σ'(0)|‖γ‖, μ2 = 0 (d̃ ≥ 2) and C_k = a_k‖γ‖ + sign(σ'(0)) w_kᵀγ."""
    oh = origin_hessian("tanh", width=2, dim=2, bias=True, symbolic_derivatives=True)
    s1 = SIGMA[1]
    g = sp.Matrix(oh.gamma)
    assert all(c.is_Symbol for c in g)
    ng = sp.sqrt(sum(c**2 for c in g))
    assert oh.block == s1 * sp.Matrix(sp.BlockMatrix([[sp.zeros(1), g.T],
                                                      [g, sp.zeros(3)]]))
    assert sp.simplify(oh.mu1 - sp.Abs(s1) * ng) == 0 and oh.mu2 == 0
    assert oh.eigenvalues == {oh.mu1: 2, 0: 4, -oh.mu1: 2}
    a, *w = oh.theta_symbols[0]
    expect = a * ng + sp.sign(s1) * sum(wi * gi for wi, gi in zip(w, g))
    assert sp.simplify(oh.imbalance[0] - expect) == 0
    # d̃ = 1: μ2 = −μ1
    oh1 = origin_hessian("sin", width=1, dim=1, bias=False, symbolic_derivatives=True)
    assert sp.simplify(oh1.mu2 + oh1.mu1) == 0


def test_symbolic_samples_agree_with_numbers():
    """n symbolic samples, evaluated at numbers, equal the derivation on those numbers."""
    oh = origin_hessian("sin", width=2, dim=2, bias=True, data=3)
    X = [[1, 2], [sp.Rational(1, 3), -1], [0, 5]]
    y = [2, -1, sp.Rational(7, 2)]
    sub = {sp.Symbol(f"x_{i + 1}_{j + 1}", real=True): X[i][j] for i in range(3)
           for j in range(2)}
    sub.update({sp.Symbol(f"y_{i + 1}", real=True): y[i] for i in range(3)})
    ref = origin_hessian("sin", width=2, dim=2, bias=True, data=(X, y))
    assert sp.simplify(oh.mu1.subs(sub) - ref.mu1) == 0
    assert (sp.Matrix(oh.matrix).subs(sub) - sp.Matrix(ref.matrix)).is_zero_matrix
    assert sp.simplify(oh.imbalance.subs(sub) - ref.imbalance).is_zero_matrix


def test_exact_rationals_and_wide_networks():
    oh = origin_hessian("tanh", width=1000, dim=1, bias=False, data=([0.4, 1.5], [1, 2]))
    assert oh.gamma[0] == sp.Rational(2, 5) + 3  # 0.4 is read as 2/5, not a binary float
    assert oh.mu1 == sp.Rational(17, 5) and oh.eigenvalues == {oh.mu1: 1000, -oh.mu1: 1000}
    assert oh.top_basis.shape == (2000, 1000)
    m = 40
    big = origin_hessian("rational", width=m, dim=2, bias=True, data=([[1, 0], [0, 1]], [1, 1]))
    V = sp.Matrix(big.top_basis)
    assert V.T * V == sp.eye(m)
    assert (sp.Matrix(big.matrix) * V - big.mu1 * V).applyfunc(sp.simplify).is_zero_matrix


# ------------------------------------------------------------------ assumptions


def test_assumption_checks():
    assert check_assumptions("tanh", gamma=[1]).theorem1_holds is True
    r = check_assumptions("tanh(x) + 1", gamma=[1])
    assert r.violates("Theorem 1 (i)") and "σ(0) = 0" in r.failures[0].name
    assert check_assumptions("cos(x) - 1", gamma=[1]).violates("σ'(0) ≠ 0")
    assert check_assumptions("Max(0, x)").violates("C²")  # ReLU: σ' jumps at 0
    assert check_assumptions("tanh", gamma=[0, 0]).violates("Theorem 1 (ii)")
    assert check_assumptions("1/(x - 1) + 1").violates("C²")
    assert check_assumptions("sin").get(ANALYTIC).holds is True
    abs3 = check_assumptions("Abs(x)**3")  # C², but not analytic at 0
    assert abs3.get(C2).holds is True and abs3.get(ANALYTIC).holds is False
    oh = origin_hessian("tanh(x) + 1/2", width=2, dim=1, data=([[1], [2]], [1, 1]))
    assert oh.assumptions.violates("Theorem 1 (i)")
    with pytest.raises(AssumptionError, match="σ\\(0\\) = 0"):
        oh.imbalance
    with pytest.raises(AssumptionError, match="not known to be 0"):
        origin_hessian(None, width=2, dim=1).imbalance


# (activation, the Theorem 1 checks that must fail): non-smooth σ fail C² (and σ'(0) where it
# does not exist); singular, 0/0 or undefined values fail, they never "hold"
BROKEN = [
    ("Max(0, x)", {C2, DSIGMA0}),  # σ' jumps: no σ'(0) (sympy's Heaviside(0) = 1/2 is no σ'(0))
    ("sign(x)", {C2, DSIGMA0}),  # σ jumps at 0
    ("Heaviside(x)", {C2, SIGMA0, DSIGMA0}),
    ("Abs(x)", {C2, DSIGMA0}),
    ("x + x*Abs(x)", {C2}),  # σ'' jumps, σ'(0) = 1 exists
    ("sin(x)/x", {C2, SIGMA0, DSIGMA0}),  # 0/0 at 0 (nan in JAX too)
    ("1/x", {C2, SIGMA0, DSIGMA0}),
    ("x**3", {DSIGMA0}),
]


@pytest.mark.parametrize("act,failing", BROKEN)
def test_broken_activations_fail_the_one_check(act, failing):
    rep = check_assumptions(act, gamma=[1, 2])
    assert {c.name for c in rep.failures if c.name.startswith("Theorem 1")} == failing
    assert rep.theorem1_holds is False
    fails = theorem1_failures(act, np.array([1.0, 2.0]))  # what Problem uses: the same check
    assert sorted(f.split(" fails:")[0] for f in fails) == sorted(failing)
    if DSIGMA0 in failing and act != "x**3":
        assert "not defined" in rep.get(DSIGMA0).detail
        with pytest.raises(AssumptionError, match=r"σ'\(0\) is not defined"):
            ft.get_activation(act).dsigma0


@pytest.mark.parametrize("act", ["x + Max(0, x)**3", "Abs(x)**3 + x", "x + Heaviside(x)*x**3",
                                 "x + Min(0, x)**3", "x + sign(x)*x**4"])
def test_kinks_that_are_c2_pass_theorem1_but_not_theorem2(act):
    rep = check_assumptions(act, gamma=[1])
    assert rep.theorem1_holds is True and theorem1_failures(act, [1.0]) == []
    assert rep.get(ANALYTIC).holds is False and "x = 0" in rep.get(ANALYTIC).detail


def test_kinks_away_from_zero():
    rep = check_assumptions("x + Max(x - 1, 0)**2", gamma=[1])  # σ'' jumps at x = 1
    assert rep.violates("C²") and "x = 1" in rep.get(C2).detail
    assert not rep.violates("σ'(0)")  # σ is smooth near 0
    assert check_assumptions("tan(x)").violates("C²")  # poles at π/2 + kπ


def test_no_hessian_when_sigma_is_not_differentiable_at_0():
    with pytest.raises(AssumptionError, match=r"σ'\(0\) is not defined"):
        origin_hessian("Max(0, x)", width=2, dim=1, data=([[1], [2]], [1, 3]))
    oh = origin_hessian("Max(0, x)", width=2, dim=1, data=([[1], [2]], [1, 3]),
                        symbolic_derivatives=True)  # σ'(0) kept as a symbol: fine
    assert SIGMA[1] in oh.mu1.free_symbols and oh.assumptions.violates("C²")
    with pytest.raises(AssumptionError, match=r"σ'''\(0\) is not defined"):
        field_taylor_term("x + Max(0, x)**3", width=1, dim=1, data=([[1]], [1]), order=3)


# ------------------------------------------------------------------ Taylor terms of the field


@eqx.filter_jit
def _jets(pb, theta):
    """(1/k!) d^k/dt^k (−∇ℓ)(tθ) at t = 0, k = 1, 2, 3, by nested forward differentiation."""
    g1 = jax.jacfwd(lambda t: pb.field(t * theta))
    g2 = jax.jacfwd(g1)
    g3 = jax.jacfwd(g2)
    return g1(0.0), g2(0.0) / 2, g3(0.0) / 6


@pytest.mark.parametrize("act", ["tanh", "rational", "sin", "tanh(x) + 1/2"])
def test_field_taylor_terms_match_jax(act):
    pb = _problem(act, 2, 2, True)
    data = (np.asarray(pb.X), np.asarray(pb.y))
    theta = jnp.asarray(pb.init_gaussian(1.0, seed=3))
    refs = [np.asarray(r) for r in _jets(pb, theta)]
    for K in (1, 2, 3):
        T = field_taylor_term(act, width=2, dim=2, data=data, order=K)
        ref = refs[K - 1]
        tol = 1e-12 * max(1.0, np.abs(ref).max())
        assert np.max(np.abs(np.asarray(T.to_jax()(theta, pb.X, pb.y)) - ref)) <= tol
        ex = np.array([float(e.subs(dict(zip(T.theta, np.asarray(theta))))) for e in T.expr])
        assert np.max(np.abs(ex - ref)) <= tol
    # T_1(θ) = −∇²ℓ(0)θ exactly: two symbolic derivations agree
    T1 = field_taylor_term(act, width=2, dim=2, data=data, order=1)
    oh = origin_hessian(act, width=2, dim=2, data=data)
    assert (T1.expr - sp.Matrix(oh.matrix) * sp.Matrix(T1.theta)).applyfunc(
        sp.expand).is_zero_matrix


@eqx.filter_jit
def _jets_upto(pb, theta, K):
    """[(1/k!) d^k/dt^k (−∇ℓ)(tθ) at t = 0 for k = 1…K], nested forward differentiation."""
    fs = [lambda t: pb.field(t * theta)]
    for _ in range(K):
        fs.append(jax.jacfwd(fs[-1]))
    return [fs[k](0.0) / math.factorial(k) for k in range(1, K + 1)]


@pytest.mark.parametrize("act", ["tanh", "exp(x) - 1", "tanh(x) + 1/2", "erf(x)"])
def test_field_taylor_terms_of_any_order(act):
    """Orders 4 and 5 need σ^(4)(0), σ^(5)(0) (a table of 4 derivatives used to stop at 3).
    (For an odd σ with σ(0) = 0 the even orders vanish.)"""
    odd = ft.get_activation(act).is_odd
    pb = _problem(act, 2, 1, True)
    data = (np.asarray(pb.X), np.asarray(pb.y))
    theta = jnp.asarray(pb.init_gaussian(1.0, seed=5))
    refs = [np.asarray(r) for r in _jets_upto(pb, theta, 5)]
    for K in (4, 5):
        T = field_taylor_term(act, width=2, dim=1, data=data, order=K)
        ref = refs[K - 1]
        assert (np.abs(ref).max() > 1e-3) == (K == 5 or not odd)  # non-trivial term
        got = np.asarray(T.to_jax()(theta, pb.X, pb.y))
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-11 * max(1.0, np.abs(ref).max()))
    Ts = field_taylor_term(None, width=1, dim=1, data=2, order=5)
    assert {sigma_symbol(4), sigma_symbol(5)} <= Ts.expr.free_symbols


def test_third_order_term_closed_form():
    """σ(0) = 0: T_3 = −∇Σ_i[½(σ'(0) Σ_k a_k w_kᵀx̃_i)² − y_i σ'''(0)/6 Σ_k a_k (w_kᵀx̃_i)³]."""
    T = third_order_term("tanh", width=1, dim=1, bias=False, data=([[2]], [3]))
    a, w = T.theta
    ell4 = sp.Rational(1, 2) * (a * w * 2) ** 2 - 3 * sp.Rational(-2, 6) * a * (2 * w) ** 3
    expect = sp.Matrix([-sp.diff(ell4, a), -sp.diff(ell4, w)])
    assert (T.expr - expect).applyfunc(sp.expand).is_zero_matrix
    Ts = third_order_term(None, width=2, dim=1, bias=True, data=2)
    assert SIGMA[3] in Ts.expr.free_symbols


# ------------------------------------------------------------------ bad input


def test_bad_input():
    with pytest.raises(FlowtoolsError, match="unknown activation 'tanhh'"):
        origin_hessian("tanhh", width=2, dim=1)
    with pytest.raises(FlowtoolsError, match="free symbols"):
        origin_hessian(sp.Symbol("x") * sp.Symbol("y"), width=2, dim=1)
    with pytest.raises(FlowtoolsError, match="non-numeric"):
        origin_hessian("tanh", width=2, data=([["a"]], [1]))
    with pytest.raises(FlowtoolsError, match="non-numeric"):
        origin_hessian("tanh", width=2, data=([[1]], ["z + 1"]))
    with pytest.raises(FlowtoolsError, match="n = 0"):
        origin_hessian("tanh", width=2, dim=1, data=0)
    with pytest.raises(FlowtoolsError, match="n = 0"):
        origin_hessian("tanh", width=2, data=(np.zeros((0, 1)), np.zeros(0)))
    with pytest.raises(FlowtoolsError, match="width"):
        origin_hessian("tanh", width=0, dim=1)
    with pytest.raises(FlowtoolsError, match="finite"):
        origin_hessian("tanh", width=1, data=([[np.nan]], [1.0]))


def test_cli(capsys):
    from flowtools.cli import main

    assert main(["hessian", "--activation", "2*tanh(x)", "-m", "2", "--X", "1", "2",
                 "--y", "1", "3", "--no-bias"]) == 0
    out = capsys.readouterr().out
    assert "μ1 = 14" in out and "(×2)" in out and "\\left[" in out and "FAILS" not in out
    assert main(["hessian", "--activation", "tanh(x) + 1", "--moments", "-d", "2"]) == 0
    out = capsys.readouterr().out
    assert "FAILS] Theorem 1 (i): σ(0) = 0" in out
    assert main(["hessian", "--activation", "tanhh"]) == 2
    assert main(["hessian", "--X", "1", "--y", "abc"]) == 2
    assert main(["hessian", "--symbolic-data", "0"]) == 2
    assert "error" in capsys.readouterr().err

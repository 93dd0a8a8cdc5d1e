"""Activations, network layout, data, problem quantities and input validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import flowtools as ft
from flowtools.activations import get_activation, x
from flowtools.data import Dataset, gaussian, grid, uniform
from flowtools.errors import AssumptionError, FlowtoolsError


@pytest.mark.parametrize("name", ["tanh", "rational", "sin", "linear", "x - x**3/3"])
def test_activation_jax_equals_sympy(name):
    act = get_activation(name)
    z = np.linspace(-3, 3, 13)
    exact = np.array([float(act.expr.subs(x, sp.Float(v, 30))) for v in z])
    np.testing.assert_allclose(np.asarray(act(jnp.asarray(z))), exact, rtol=1e-14, atol=1e-15)
    # derivative of the JAX function = sympy derivative at a point
    d_jax = jax.grad(lambda v: act(v))(0.7)
    assert float(d_jax) == pytest.approx(float(act.derivative(1).subs(x, 0.7)), rel=1e-13)


def test_activation_facts():
    assert (get_activation("tanh").sigma0, get_activation("tanh").dsigma0) == (0, 1)
    assert get_activation("rational").is_odd and get_activation("sin").is_odd
    assert not get_activation("x + x**2").is_odd
    assert get_activation("2*tanh(x)").dsigma0 == 2
    assert get_activation("cos(x)").sigma0 == 1


@pytest.mark.parametrize("bad", ["tanhh", "x*y", "1 +", 3])
def test_activation_errors(bad):
    with pytest.raises(FlowtoolsError):
        get_activation(bad)


def test_parameter_layout_matches_the_paper():
    """θ = (a1, w1, b1, a2, w2, b2): f = a1 tanh(w1 x + b1) + a2 tanh(w2 x + b2)."""
    pb = ft.example1()
    th = np.array([0.3, -1.2, 0.5, 2.0, 0.7, -0.1])
    X = np.linspace(-2, 2, 6)
    manual = 0.3 * np.tanh(-1.2 * X + 0.5) + 2.0 * np.tanh(0.7 * X - 0.1)
    np.testing.assert_allclose(np.asarray(pb.predict(th)), manual, rtol=1e-15)
    y = np.tanh(X + 1)
    assert float(pb.loss(th)) == pytest.approx(0.5 * np.sum((manual - y) ** 2), rel=1e-14)


@pytest.mark.parametrize("act, m, d, bias", [("tanh", 2, 1, True), ("2*tanh(x)", 3, 2, False),
                                             ("-tanh(x)", 2, 3, True), ("rational", 4, 1, True)])
def test_origin_spectrum_mu1_eigvecs_and_imbalance(act, m, d, bias):
    sampling = "grid" if d == 1 else "uniform"
    pb = ft.make_problem(7, sampling=sampling, activation=act, width=m, dim=d, bias=bias)
    H = np.asarray(pb.hessian(np.zeros(pb.n_params)))
    ev, V = np.linalg.eigh(-H)
    assert ev[-1] == pytest.approx(pb.mu1, rel=1e-12)
    assert pb.mu1 == pytest.approx(abs(pb.dsigma0) * np.linalg.norm(pb.gamma), rel=1e-14)
    # the top eigenspace (multiplicity m) equals span(V1)
    assert np.sum(np.isclose(ev, pb.mu1, rtol=1e-10)) == m
    V1 = pb.top_eigvecs
    P_num = V[:, -m:] @ V[:, -m:].T
    np.testing.assert_allclose(V1 @ V1.T, P_num, atol=1e-12)
    second = ev[~np.isclose(ev, pb.mu1, rtol=1e-10)].max()
    assert second == pytest.approx(pb.mu2, abs=1e-12)
    # C(θ) = √2‖γ‖·V1ᵀθ: the coordinates of θ in the top eigenspace
    th = np.random.default_rng(0).standard_normal(pb.n_params)
    np.testing.assert_allclose(pb.imbalance(th),
                               np.sqrt(2) * np.linalg.norm(pb.gamma) * V1.T @ th, rtol=1e-12)


def test_init_ratio_and_with_ratios():
    pb = ft.example1()
    th = pb.init_ratio(0.5, 1e-8, seed=3)
    assert pb.ratio(th) == pytest.approx(0.5, rel=1e-12)
    assert pb.ratio_tilde(th) == pytest.approx(0.5, rel=1e-12)
    # the first neuron is untouched, the second only rescaled
    base = pb.init_gaussian(1e-8, seed=3)
    np.testing.assert_array_equal(th[:3], base[:3])
    s = th[3:] / base[3:]
    assert np.ptp(s) < 1e-12 * abs(s[0])
    wide = ft.make_problem(6, activation="rational", width=5)
    r = 1.5 + 0.0015 * np.arange(4)
    thw = wide.with_ratios(wide.init_gaussian(1e-6, seed=0), r)
    C = wide.imbalance(thw)
    np.testing.assert_allclose(C[1:] / C[0], r, rtol=1e-12)


def test_init_gaussian_reproducible_and_batched():
    pb = ft.example1()
    a = pb.init_gaussian(1e-3, seed=[4, 5])
    np.testing.assert_array_equal(a[1], pb.init_gaussian(1e-3, seed=5))
    assert a.shape == (2, 6) and np.std(pb.init_gaussian(1.0, seed=range(200))) == pytest.approx(
        1.0, rel=0.05)


def test_datasets_reproducible():
    tgt = ft.SingleNeuron("tanh", 1.0, [1.0, 1.0, 1.0], 1.0)
    np.testing.assert_array_equal(uniform(10, tgt, dim=3, seed=2).X, uniform(10, tgt, dim=3,
                                                                             seed=2).X)
    g = gaussian(5, ft.SingleNeuron("tanh", 1.0, [1.0], 1.0), seed=1)
    np.testing.assert_allclose(g.y, np.tanh(g.X[:, 0] + 1), rtol=1e-15)
    np.testing.assert_allclose(grid(6, lambda X: np.sin(X[:, 0])).X.ravel(), np.linspace(-2, 2, 6))


def test_bad_data_errors():
    with pytest.raises(FlowtoolsError, match="NaN"):
        Dataset(np.array([[0.0], [np.nan]]), np.zeros(2))
    with pytest.raises(FlowtoolsError, match="infinite"):
        Dataset(np.zeros((2, 1)), np.array([1.0, np.inf]))
    with pytest.raises(FlowtoolsError, match="shape"):
        Dataset(np.zeros((3, 1)), np.zeros(2))
    with pytest.raises(FlowtoolsError, match="empty"):
        Dataset(np.zeros((0, 1)), np.zeros(0))
    pb = ft.example1()
    with pytest.raises(FlowtoolsError, match="shape"):
        ft.solve_flow(pb, np.zeros(5) + 1e-3)
    with pytest.raises(FlowtoolsError, match="horizon"):
        ft.solve_flow(pb, np.ones(6) * 1e-3, t1=-1.0)
    with pytest.raises(FlowtoolsError, match="learning rate"):
        ft.run_gd(pb, np.ones(6) * 1e-3, lr=0.0)
    with pytest.raises(FlowtoolsError, match="learning rate"):
        ft.run_gd(pb, np.ones(6) * 1e-3, lr=-0.1)


def test_theory_quantities_refuse_when_assumptions_fail_but_flow_runs():
    shifted = ft.make_problem(6, activation="tanh(x) + 1/2")
    with pytest.raises(AssumptionError, match="σ\\(0\\) = 0"):
        shifted.mu1
    with pytest.raises(AssumptionError):
        shifted.imbalance(np.ones(6))
    tr = ft.solve_flow(shifted, np.full(6, 1e-3), t1=5.0, loss_threshold=0)
    assert tr.status == ft.Status.HORIZON and np.isfinite(tr.loss_final)
    flat = ft.make_problem(6, activation="x**3")
    with pytest.raises(AssumptionError, match="σ'\\(0\\)"):
        flat.mu1
    zero_gamma = ft.Problem.create(Dataset(np.linspace(-1, 1, 4), np.zeros(4)))
    with pytest.raises(AssumptionError, match="γ"):
        zero_gamma.top_eigvecs


def test_float64_check_detects_float32():
    from flowtools._config import Float64Unavailable, check_float64

    check_float64()
    with jax.enable_x64(False):
        with pytest.raises(Float64Unavailable, match="JAX_ENABLE_X64"):
            check_float64()


@pytest.mark.parametrize("act", ["Max(0, x)", "sign(x)", "sin(x)/x"])
def test_one_assumption_check_for_problems(act):
    """Problem, check_assumptions and theory/ share one check: Max(0, x) gave [] and
    μ1 = 2.81 (σ'(0) = ½ from Heaviside(0)); sign(x) [] then a sympy TypeError; sin(x)/x
    σ(0) = nan reported as 'holds'."""
    from flowtools.symbolic import check_assumptions

    pb = ft.make_problem(6, activation=act)
    fails = pb.assumption_failures()
    assert fails and all("Theorem 1" in f for f in fails)
    assert check_assumptions(act, gamma=pb.gamma).theorem1_holds is False
    with pytest.raises(AssumptionError):
        pb.mu1
    with pytest.raises(AssumptionError):
        pb.imbalance(pb.init_gaussian(1e-3, seed=0))

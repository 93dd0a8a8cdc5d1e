"""The model interface: models flowtools does not ship run through the public API.

* A linear least-squares ``LossModel``: the flow θ(t) = θ* + e^{−Ht}(θ0 − θ*) and GD
  θ_k = θ* + (I − ηH)^k(θ0 − θ*) (H = XᵀX) have closed forms; the modified flows of
  ``compare`` are then exact to their order (GD's exact modified field is log(I − ηH)/η),
  so the fitted orders are 1, 2, 3.
* A three-layer tanh network in equinox (22 parameters): diffrax against scipy's Radau,
  GD against the flow at order 1, saving and loading, the stationarity check.
* Theory quantities refuse a model outside the two-layer family with a clear error.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import expm

import flowtools as ft
from flowtools.errors import AssumptionError, FlowtoolsError


def least_squares(theta, data):
    X, y = data
    r = X @ theta - y
    return 0.5 * jnp.dot(r, r)


@pytest.fixture(scope="module")
def linear():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((20, 12)) / np.sqrt(20)
    y = rng.standard_normal(20)
    model = ft.LossModel(least_squares, (X, y), n_params=12)
    H = X.T @ X
    star = np.linalg.solve(H, X.T @ y)
    return model, H, star, 0.3 * rng.standard_normal(12)


def test_linear_flow_has_its_closed_form(linear):
    model, H, star, theta0 = linear
    ts = np.array([0.0, 0.5, 2.0, 10.0, 50.0])
    tr = ft.solve_flow(model, theta0, t1=50.0, save_ts=ts, rtol=1e-12, loss_threshold=0.0,
                       gtol=0.0, solver="dopri8")
    exact = np.stack([star + expm(-H * t) @ (theta0 - star) for t in ts])
    err = np.max(np.linalg.norm(tr.thetas - exact, axis=-1) / np.linalg.norm(exact, axis=-1))
    assert err < 1e-9
    assert ft.Status(int(tr.status)) is ft.Status.HORIZON
    # the default call runs to the loss threshold ... which this model cannot reach (the
    # residual of an overdetermined fit stays): it ends at the minimum, certified
    tr = ft.solve_flow(model, theta0)
    assert ft.Status(int(tr.status)) is ft.Status.STATIONARY
    np.testing.assert_allclose(tr.theta_final, star, rtol=1e-6)


def test_linear_gd_has_its_closed_form(linear):
    model, H, star, theta0 = linear
    lr, K = 0.1, 300
    gd = ft.run_gd(model, theta0, lr, max_iter=K, loss_threshold=0.0, record_at=[0, 100, K])
    step = np.eye(12) - lr * H
    exact = np.stack([star + np.linalg.matrix_power(step, k) @ (theta0 - star)
                      for k in (0, 100, K)])
    np.testing.assert_allclose(gd.thetas, exact, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(gd.ts, [0.0, 100 * lr, K * lr])


def test_compare_on_a_linear_model_fits_orders_1_2_3(linear):
    model, H, star, theta0 = linear
    lrs = [0.004, 0.008, 0.016, 0.032]
    cmp = ft.compare(model, theta0, lrs, t1=5.0, n_rec=500)
    np.testing.assert_allclose(cmp.orders, [1.0, 2.0, 3.0], atol=0.05)
    # no two-layer theory: the predicted escape shift (needs μ1) is not a number
    assert np.all(np.isnan(cmp.escape_pred_shift))
    assert all(ft.Regime(r) is ft.Regime.FOLLOWS for r in cmp.regime)


class _MLP:
    """A three-layer tanh network in equinox with its data and a squared loss."""

    @staticmethod
    def mse(net, data):
        X, y = data
        return 0.5 * jnp.sum((jax.vmap(net)(X)[:, 0] - y) ** 2)


@pytest.fixture(scope="module")
def mlp():
    net = eqx.nn.MLP(1, 1, 3, 2, activation=jnp.tanh, key=jax.random.key(1))
    X = jnp.linspace(-2.0, 2.0, 8)[:, None]
    y = jnp.sin(X[:, 0])
    model, theta0 = ft.LossModel.from_equinox(net, _MLP.mse, (X, y))
    return model, theta0, net


def test_equinox_model_layout(mlp):
    model, theta0, net = mlp
    assert model.n_params == 22 == theta0.size
    rebuilt = model.to_module(theta0)
    X = jnp.linspace(-1, 1, 3)[:, None]
    np.testing.assert_array_equal(jax.vmap(rebuilt)(X), jax.vmap(net)(X))
    assert model.param_names[:2] == ("θ1", "θ2")


def test_equinox_model_flow_against_scipy_radau(mlp):
    model, theta0, _ = mlp
    ts = np.array([0.0, 1.0, 5.0, 20.0])
    kw = dict(t1=20.0, save_ts=ts, rtol=1e-11, loss_threshold=0.0, gtol=0.0)
    dx = ft.solve_flow(model, theta0, **kw)
    sp = ft.solve_flow(model, theta0, backend="scipy", solver="Radau", **kw)
    err = np.linalg.norm(dx.thetas - sp.thetas, axis=-1) / np.linalg.norm(sp.thetas, axis=-1)
    assert np.max(err) < 1e-7
    assert np.all(np.diff(dx.losses) < 0)  # the loss decreases along the flow


def test_equinox_model_gd_converges_to_the_flow_at_order_1(mlp, tmp_path):
    model, theta0, _ = mlp
    T = 2.0
    flow = ft.solve_flow(model, theta0, t1=T, save_ts=[0.0, T], rtol=1e-12,
                         loss_threshold=0.0, gtol=0.0)
    gaps = []
    lrs = np.array([0.01, 0.005, 0.0025])
    for lr in lrs:
        gd = ft.run_gd(model, theta0, lr, max_iter=int(round(T / lr)), loss_threshold=0.0)
        gaps.append(np.linalg.norm(gd.theta_final - flow.thetas[-1]))
    order = np.polyfit(np.log(lrs), np.log(gaps), 1)[0]
    assert abs(order - 1.0) < 0.05
    # the result type round-trips for any model
    path = flow.save(tmp_path / "mlp")
    back = ft.Trajectory.load(path)
    np.testing.assert_array_equal(back.thetas, flow.thetas)


def test_theory_refuses_models_outside_the_family(linear):
    model = linear[0]
    with pytest.raises(AssumptionError, match="two-layer"):
        model.require_theory()
    with pytest.raises(AssumptionError, match="two-layer"):
        ft.escape_rate(model, 0.1)
    with pytest.raises(AssumptionError, match="two-layer"):
        ft.aligned_times(model, [0.0, 1.0], linear[3])


def test_bad_models_are_refused():
    with pytest.raises(FlowtoolsError, match="scalar"):
        ft.LossModel(lambda th, d: th * 2, None, n_params=3)
    with pytest.raises(FlowtoolsError, match="one name per parameter"):
        ft.LossModel(least_squares, (np.eye(2), np.ones(2)), n_params=2, names=["a"])
    with pytest.raises(FlowtoolsError, match="callable"):
        ft.LossModel("x**2", None, n_params=1)
    with pytest.raises(FlowtoolsError, match="flowtools model"):
        ft.solve_flow(lambda th: th, np.ones(2))
    with pytest.raises(FlowtoolsError, match="flowtools model"):
        ft.run_gd(object(), np.ones(2), 0.1)
    model = ft.LossModel(least_squares, (np.eye(2), np.ones(2)), n_params=2)
    with pytest.raises(FlowtoolsError, match=r"shape \(2,\)"):
        ft.solve_flow(model, np.ones(3))

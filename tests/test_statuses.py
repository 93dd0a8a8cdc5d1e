"""Statuses never lie (issue 9, §2): each status is checked against what the flow does.

A stop that holds at the start ends there (events fire only on a crossing); a run whose
end loss is below the threshold is CONVERGED; a stop by the stationarity test counts as a
success only at a certified minimum — and where it is refused, continuing the flow shows
that the point was not one.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import flowtools as ft
from flowtools import Status
from flowtools.certify import stationary_check
from flowtools.cli import main
from flowtools.integrate import to_lognorm


@pytest.fixture(scope="module")
def pb():
    return ft.example1()


@pytest.fixture(scope="module")
def end(pb):
    return ft.solve_flow(pb, pb.init_gaussian(1e-8, seed=1))


def test_restart_from_a_converged_end_point(pb, end):
    """solve_flow(pb, solve_flow(pb, θ).theta_final) ran 29 434 steps into MAX_STEPS."""
    assert end.status == Status.CONVERGED and end.loss_final <= 1e-15
    for kw in (dict(), dict(backend="scipy", solver="Radau")):
        again = ft.solve_flow(pb, end.theta_final, **kw)
        assert again.status == Status.CONVERGED, kw
        assert again.t_final == 0 and again.steps == 0
        np.testing.assert_array_equal(again.theta_final, end.theta_final)


def test_batch_member_that_starts_converged(pb, end):
    th0 = pb.init_gaussian(1e-8, seed=1)
    batch = ft.solve_flow(pb, np.stack([end.theta_final, th0]))
    np.testing.assert_array_equal(batch.status, [Status.CONVERGED, Status.CONVERGED])
    np.testing.assert_array_equal(batch.steps, [0, end.steps])
    assert batch.t_final[0] == 0
    # the integrated member is the same flow as on its own
    np.testing.assert_allclose(batch.theta_final[1], end.theta_final, rtol=1e-12, atol=1e-14)
    assert batch.t_final[1] == pytest.approx(float(end.t_final), rel=1e-12)


def test_zero_labels_start_converged():
    """y ≡ 0: the loss starts at ~1e-33 and the flow said HORIZON 'loss still above'."""
    X = np.linspace(-2, 2, 6)
    pb0 = ft.Problem.create(ft.Dataset(X, np.zeros(6)))
    tr = ft.solve_flow(pb0, pb0.init_gaussian(1e-8, seed=0))
    assert tr.status == Status.CONVERGED and tr.steps == 0 and tr.loss_final < 1e-30
    # even θ0 = 0 (a critical point) is fine here: nothing needs integrating
    assert ft.solve_flow(pb0, np.zeros(6)).status == Status.CONVERGED


def test_loss_threshold_above_the_start_exits_zero(tmp_path):
    """`flowtools run --loss-threshold 2` exited 1: the start (ℓ ≈ 1.82) is below it."""
    assert main(["run", "--loss-threshold", "2", "--out", str(tmp_path / "o")]) == 0


def test_huge_scale_plateau_is_not_an_end(pb):
    """Scale 1e100: ‖∇ℓ‖/‖θ‖ ≤ 1e-15 only because the saturated w's make ‖θ‖ huge; the
    loss is 1e169 and H ⪰ 0. It used to end STATIONARY and count as ok; the check finds
    Newton's step predicting a decrease of the order of the loss itself, and the flow is
    resumed without the stop: the loss collapses, and the status says the horizon (t1 =
    1e12; without a horizon it settles at ℓ = 0.819, STATIONARY: tests/test_horizon.py)."""
    tr = ft.solve_flow(pb, pb.init_gaussian(1e100, seed=0), t1=1e12)
    stop = tr.info["resumed"][0]
    assert stop["loss"] > 1e160 and 0 < stop["t"] < float(tr.t_final)
    c = stationary_check(pb, _stopped_at(pb), 1e-15, stop["t"])
    assert c["moving"] and not c["minimum"] and c["lambda_min"] >= 0
    assert c["predicted_decrease"] > 0.5 * c["loss"]
    assert tr.status == Status.HORIZON and float(tr.t_final) == 1e12
    assert tr.loss_final < 1e-100 * stop["loss"]


def _stopped_at(pb):
    """Where the relative-gradient stop fires for the scale-1e100 start (no resume)."""
    from flowtools.flow import _model_field, _model_loss
    from flowtools.integrate import IntegratorOptions, integrate

    opts = IntegratorOptions(loss_threshold=1e-15, gtol=1e-15, t1=1e12)
    sol = integrate(_model_field, pb, pb.init_gaussian(1e100, seed=0)[None], [0.0, 1e12],
                    opts, loss=_model_loss)
    return sol.theta_final[0]


def _two_neuron_target():
    X = np.linspace(-2, 2, 6)
    return ft.Problem.create(ft.Dataset(X, np.tanh(X + 1) + 0.5 * np.tanh(0.5 - 2 * X)))


def test_saddle_is_not_a_minimum():
    """Neuron 2 = 0 is invariant: the flow converges to the best one-neuron fit, a saddle
    of the two-neuron loss (loss ≈ 0.09 > 0, ∇²ℓ has a negative eigenvalue)."""
    pb = _two_neuron_target()
    th0 = pb.init_gaussian(0.1, seed=3)
    th0[3:] = 0.0
    tr = ft.solve_flow(pb, th0)
    assert tr.status == Status.NOT_MINIMUM and not Status(int(tr.status)).ok
    check = tr.info["stationary_check"][0]
    H = np.asarray(pb.hessian(tr.theta_final))
    lam, vec = np.linalg.eigh(H)
    assert check["lambda_min"] == pytest.approx(lam[0], rel=1e-10) and lam[0] < -0.1
    with pytest.raises(RuntimeError):
        tr.raise_on_failure()
    # truthful: a perturbation along the negative-curvature direction leaves the saddle
    out = ft.solve_flow(pb, tr.theta_final + 1e-6 * vec[:, 0], t1=1e4)
    assert out.loss_final < 0.5 * check["loss"]


def test_certified_minima_are_stationary(pb):
    """Seed 1 (Q2, exponential convergence) and seed 0 (Q1, polynomial tail) with the
    loss stop off end STATIONARY: ∇²ℓ ⪰ 0 and the loss can fall by < 1e-15·ℓ(0)."""
    for seed in (1, 0):
        tr = ft.solve_flow(pb, pb.init_gaussian(1e-8, seed=seed), loss_threshold=0)
        assert tr.status == Status.STATIONARY, seed
        check = tr.info["stationary_check"][0]
        assert check["minimum"] and check["predicted_decrease"] <= 1e-15 * check[
            "loss_at_origin"]
    # the check on its own agrees with an exact minimum of Example 1 (Q2: neuron 2 off)
    q2 = np.array([1.0, 1.0, 1.0, 0.0, 0.3, -0.2])
    c = stationary_check(pb, q2)
    assert c["minimum"] and c["loss"] < 1e-30


def test_tiny_scales_do_not_underflow(pb):
    """Scale 1e-200: ‖θ0‖² underflows to 0 and the flow said 'θ0 = 0 is a critical
    point'. The escape time obeys t(α) − log(1/α)/μ1 = const (Theorem 1) down to there."""
    u = pb.init_gaussian(1.0, seed=2)
    r = float(to_lognorm(jnp.asarray(1e-200 * u))[0])
    assert r == pytest.approx(np.log(1e-200) + np.log(np.linalg.norm(u)), rel=1e-14)
    shifted = []
    for alpha in (1e-100, 1e-200):
        tr = ft.solve_flow(pb, alpha * u, loss_threshold=1.0, t1=1e4, rtol=1e-12)
        assert tr.status == Status.CONVERGED
        shifted.append(float(tr.t_final) - np.log(1 / alpha) / pb.mu1)
    assert shifted[0] == pytest.approx(shifted[1], abs=1e-6)


def test_implicit_solver_memory_guard():
    """Width 10⁶ (p = 3·10⁶) aborted the interpreter inside XLA (a dense 3e6² Jacobian)."""
    big = ft.make_problem(6, width=10**6)
    with pytest.raises(ft.FlowtoolsError, match="dopri8"):
        ft.solve_flow(big, big.init_gaussian(1e-8, seed=0), solver="kvaerno5")
    with pytest.raises(ft.FlowtoolsError, match="explicit"):
        ft.solve_flow(big, big.init_gaussian(1e-8, seed=0), backend="scipy", solver="Radau")


def test_dense_hessian_memory_guard():
    """GD-versus-flow comparisons need dense Hessians (the stability edge): refused, with
    the reason, before any work at width 10⁶."""
    from flowtools.discretization import compare, stability_edge

    big = ft.make_problem(6, width=10**6)
    th = big.init_gaussian(1e-8, seed=0)
    for call in (lambda: compare(big, th, [0.01]), lambda: stability_edge(big, th)):
        with pytest.raises(ft.FlowtoolsError, match="GiB"):
            call()


def test_auto_solver_follows_the_size():
    """solver="auto" (the default): implicit Kvaerno5 up to IMPLICIT_MAX_PARAMS
    parameters, explicit Dopri8 above (no dense p × p Jacobian)."""
    from flowtools.flow import IMPLICIT_MAX_PARAMS

    small, wide = ft.example1(), ft.make_problem(6, width=100)
    assert small.n_params <= IMPLICIT_MAX_PARAMS < wide.n_params
    for pb, method in ((small, "diffrax:kvaerno5"), (wide, "diffrax:dopri8")):
        tr = ft.solve_flow(pb, pb.init_gaussian(1e-2, seed=0), t1=1.0)
        assert tr.method == method
    assert ft.solve_flow(small, small.init_gaussian(1e-2, seed=0), t1=1.0,
                         backend="scipy").method == "scipy:Radau"

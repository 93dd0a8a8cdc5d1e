"""Gradient descent: the Euler recurrence, closed forms, order 1 towards the flow, stops."""

import jax
import numpy as np
import pytest

import flowtools as ft
from flowtools.data import Dataset
from flowtools.status import Status


def test_gd_is_the_explicit_euler_recurrence():
    pb = ft.example1()
    th0 = pb.init_gaussian(0.1, seed=2)
    lr, K = 0.05, 300
    gd = ft.run_gd(pb, th0, lr, max_iter=K, loss_threshold=0, n_save=10_000)
    assert np.array_equal(gd.ts, np.arange(K + 1) * lr)  # every iterate recorded here
    step = jax.jit(lambda th: th - lr * pb.grad(th))
    th, ref = th0.copy(), [th0]
    for _ in range(K):
        th = np.asarray(step(th))
        ref.append(th)
    ref = np.array(ref)
    # same operations, compiled separately (batched vs single): equal to a few ulps
    np.testing.assert_array_max_ulp(gd.thetas, ref, maxulp=64)
    np.testing.assert_array_max_ulp(gd.theta_final, ref[-1], maxulp=64)
    assert gd.status == Status.HORIZON and gd.steps == K


def test_gd_closed_form_linear_neuron():
    """f = a·w·x, a = w = u: GD is u ↦ u + lr·u(γ − S u²) exactly."""
    X = np.linspace(-1.0, 2.0, 5)
    pb = ft.Problem.create(Dataset(X, 0.7 * X), activation="linear", width=1, bias=False)
    gamma, S = float(X @ (0.7 * X)), float(X @ X)
    lr, K, u = 0.01, 2000, 1e-6
    gd = ft.run_gd(pb, [u, u], lr, max_iter=K, loss_threshold=0)
    for _ in range(K):
        u = u + lr * u * (gamma - S * u * u)
    np.testing.assert_allclose(gd.theta_final, [u, u], rtol=1e-13)


def test_gd_converges_to_the_flow_with_order_one():
    pb = ft.example1()
    th0 = pb.init_gaussian(0.1, seed=0)
    T = 3.0
    flow = ft.solve_flow(pb, th0, t1=T, save_ts=[0.0, T], loss_threshold=0, rtol=1e-12)
    lrs = np.array([0.02, 0.01, 0.005, 0.0025])
    gaps = [np.linalg.norm(ft.run_gd(pb, th0, lr, max_iter=int(round(T / lr)),
                                     loss_threshold=0).theta_final - flow.theta_final)
            for lr in lrs]
    slope = np.polyfit(np.log(lrs), np.log(gaps), 1)[0]
    assert slope == pytest.approx(1.0, abs=0.1)


def test_gd_stops_at_the_first_iterate_below_threshold():
    pb = ft.example1()
    th0 = pb.init_gaussian(1e-8, seed=[1, 3, 0])
    gd = ft.run_gd(pb, th0, 0.05, max_iter=200_000)
    conv = gd.status == Status.CONVERGED
    assert conv.sum() >= 1 and np.all(gd.loss_final[conv] <= 1e-15)
    i = int(np.flatnonzero(conv)[0])
    k = int(gd.steps[i])
    before = ft.run_gd(pb, th0[i], 0.05, max_iter=k - 1)
    assert before.status == Status.HORIZON and before.loss_final > 1e-15
    # members that did not converge ran the full budget
    assert np.all(gd.steps[~conv] == 200_000)
    # the record holds NaN after each member's end, never stale values
    assert np.all(np.isnan(gd.losses[i][gd.ts[i] > k * 0.05]) | ~np.isfinite(gd.ts[i][
        gd.ts[i] > k * 0.05]))


def test_gd_divergence_is_a_status_not_numbers():
    pb = ft.example1()
    gd = ft.run_gd(pb, pb.init_gaussian(0.5, seed=[0, 1]), lr=5.0, max_iter=1000)
    assert np.all(gd.status == Status.NONFINITE)
    assert "lower the learning rate" in gd.messages[0]
    with pytest.raises(RuntimeError, match="NaN or infinite"):
        gd.raise_on_failure()


def test_records_that_end_early_do_not_stop_gd():
    """record_at = [0, 1] with max_iter = 1000 stopped after one iteration but reported
    1000 steps and HORIZON; the end point must be iterate 1000 whatever is recorded."""
    pb = ft.example1()
    th0 = pb.init_gaussian(1e-2, seed=0)
    full = ft.run_gd(pb, th0, 0.05, max_iter=1000, loss_threshold=0)
    early = ft.run_gd(pb, th0, 0.05, max_iter=1000, loss_threshold=0, record_at=[0, 1])
    assert early.steps == 1000 and early.t_final == pytest.approx(50.0)
    np.testing.assert_array_equal(early.theta_final, full.theta_final)

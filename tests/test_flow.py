"""Gradient flow: closed form, backend agreement, escape time, stopping rules."""

import numpy as np
import pytest

import flowtools as ft
from flowtools.data import Dataset
from flowtools.status import Status


def linear_neuron():
    """m = 1, d = 1, no bias, σ(x) = x: f = a·w·x. With a = w = u the flow is
    u' = u(γ − S u²), so v = u² solves the logistic equation v' = 2v(γ − S v)."""
    X = np.linspace(-1.0, 2.0, 5)
    y = 0.7 * X
    return ft.Problem.create(Dataset(X, y), activation="linear", width=1, bias=False), X, y


def logistic(u0, gamma, S, t):
    K = gamma / S
    v = K / (1 + (K / u0**2 - 1) * np.exp(-2 * gamma * t))
    return np.sqrt(v)


@pytest.mark.parametrize("u0", [1e-1, 1e-8, 1e-16, 1e-20])
def test_closed_form_logistic(u0):
    pb, X, y = linear_neuron()
    gamma, S = float(X @ y), float(X @ X)
    mu1 = pb.mu1
    assert mu1 == pytest.approx(gamma, rel=1e-14)
    t_esc = np.log(1 / u0) / gamma
    ts = np.linspace(0, t_esc + 10 / gamma, 60)
    tr = ft.solve_flow(pb, [u0, u0], t1=ts[-1], save_ts=ts, loss_threshold=0, rtol=1e-12)
    assert tr.status == Status.HORIZON
    exact = logistic(u0, gamma, S, ts)
    rel = np.abs(tr.thetas - exact[:, None]) / exact[:, None]
    assert rel.max() < 1e-10


def test_backends_agree_example1():
    pb = ft.example1()
    th0 = pb.init_gaussian(1e-8, seed=3)
    ts = np.concatenate([[0.0], np.linspace(1, 40, 40)])
    kw = dict(t1=ts[-1], save_ts=ts, loss_threshold=0)
    a = ft.solve_flow(pb, th0, rtol=1e-11, **kw)
    b = ft.solve_flow(pb, th0, backend="scipy", solver="Radau", rtol=1e-12, **kw)
    scale = np.linalg.norm(b.thetas, axis=-1, keepdims=True)
    assert np.max(np.abs(a.thetas - b.thetas) / scale) < 1e-8


def test_escape_time_shift_is_independent_of_alpha():
    """t_esc(α) − log(1/α)/μ1 → const: the time at which ℓ falls to half of ℓ(0),
    located by the event root find, for α = 1e-4 … 1e-16."""
    pb = ft.example1()
    direction = pb.init_gaussian(1.0, seed=1)
    alphas = 10.0 ** -np.arange(4, 18, 2)
    ell0 = float(pb.loss(np.zeros(pb.n_params)))
    tr = ft.solve_flow(pb, alphas[:, None] * direction, t1=100.0, loss_threshold=ell0 / 2)
    assert np.all(tr.status == Status.CONVERGED)
    shift = tr.t_final - np.log(1 / alphas) / pb.mu1
    # over 12 decades of α the escape time grows by log(1e12)/μ1 ≈ 4.9 while the shift
    # stays put to the event's time resolution (bisection atol 1e-6)
    assert 0 < shift.mean() < 10
    assert np.ptp(shift) < 1e-5
    # a wrong rate is detected: with 1.001·μ1 the shift drifts by ~5e-3
    wrong = tr.t_final - np.log(1 / alphas) / (1.001 * pb.mu1)
    assert np.ptp(wrong) > 1e-3


def test_batch_matches_single_and_no_recompile():
    pb = ft.example1()
    th = pb.init_gaussian(1e-6, seed=[0, 1, 2])
    batch = ft.solve_flow(pb, th, t1=50.0, loss_threshold=0)
    single = ft.solve_flow(pb, th[1], t1=50.0, loss_threshold=0)
    assert single.theta_final.shape == (pb.n_params,)
    assert batch.theta_final.shape == (3, pb.n_params)
    # same solve up to round-off-driven step choices (vmapped code fuses differently)
    np.testing.assert_allclose(batch.theta_final[1], single.theta_final, rtol=1e-8)
    again = ft.solve_flow(pb, th[1] * 2, t1=60.0, loss_threshold=0)  # new t1, θ0: no compile
    assert again.compile_time == 0.0


def test_loss_threshold_stop_example1():
    pb = ft.example1()
    tr = ft.solve_flow(pb, pb.init_gaussian(1e-8, seed=[0, 1]))
    assert np.all(tr.status == Status.CONVERGED)
    assert np.allclose(tr.loss_final, 1e-15, rtol=1e-3)
    # the saved losses are non-increasing along the flow (a gradient flow)
    for member in tr:
        _, _, ls = member.valid()
        assert np.all(np.diff(ls) <= 1e-12 * ls[:-1])


def test_horizon_without_stalling_at_a_minimum():
    """At an exponentially attracting minimum (seed 1 ends on the Q2 branch) the state
    reaches the round-off floor of the relative gradient in a few hundred steps; the run
    then stops as STATIONARY instead of integrating noise up to t1 = 1e12. On a plain
    horizon the implicit steps grow geometrically: t from 1e3 to 1e12 costs few steps."""
    pb = ft.example1()
    th0 = pb.init_gaussian(1e-8, seed=1)
    tr = ft.solve_flow(pb, th0, t1=1e12, loss_threshold=0)
    assert tr.status == Status.STATIONARY
    assert tr.loss_final < 1e-24
    assert tr.steps < 2000
    g = np.linalg.norm(pb.grad(tr.theta_final)) / np.linalg.norm(tr.theta_final)
    assert g < 1e-14
    # with the stationarity stop switched off, a fresh Jacobian per implicit stage rests at
    # the minimum up to t1 = 1e12 in a few more steps and the same point; one Jacobian
    # per step (newton="step") stalls on the noise instead
    rest = ft.solve_flow(pb, th0, t1=1e12, loss_threshold=0, gtol=0.0, max_steps=3000)
    assert rest.status == Status.HORIZON and rest.t_final == 1e12
    assert np.linalg.norm(rest.theta_final - tr.theta_final) < 1e-12
    stall = ft.solve_flow(pb, th0, t1=1e12, loss_threshold=0, gtol=0.0, max_steps=3000,
                          newton="step")
    assert stall.status == Status.MAX_STEPS


def test_polynomial_tail_to_huge_times_is_cheap():
    """Seed 0 ends on the Q1 branch, where the loss falls only polynomially (~t⁻²): the
    implicit steps grow with t, so t ~ 1e10 costs about a thousand steps in all."""
    pb = ft.example1()
    tr = ft.solve_flow(pb, pb.init_gaussian(1e-8, seed=0), t1=1e12, loss_threshold=0)
    assert tr.status in (Status.STATIONARY, Status.HORIZON)
    assert tr.t_final > 1e9
    assert tr.loss_final < 1e-17
    assert tr.steps < 3000


def test_trajectory_save_load(tmp_path):
    pb = ft.example1()
    tr = ft.solve_flow(pb, pb.init_gaussian(1e-4, seed=[0, 1]), t1=30.0)
    tr.save(tmp_path / "t.npz")
    back = ft.Trajectory.load(tmp_path / "t.npz")
    np.testing.assert_array_equal(back.thetas, tr.thetas)
    assert back.method == tr.method and back[1].t_final == tr[1].t_final


def test_workers_do_not_change_the_result():
    """A batch dealt over threads (``workers``) runs the same program per member: the
    trajectories are bitwise those of one worker, in the caller's order."""
    pb = ft.example1()
    th0 = pb.init_gaussian(1e-8, seed=[0, 1, 2, 3, 4])
    one = ft.solve_flow(pb, th0, workers=1)
    for w in (2, 3):
        many = ft.solve_flow(pb, th0, workers=w)
        for name in ("thetas", "ts", "theta_final", "t_final", "status", "steps"):
            np.testing.assert_array_equal(getattr(many, name), getattr(one, name))


def _decay(theta, rate):
    return -rate * theta


def test_integrate_resumes_from_a_later_start():
    """A start at t0 > 0 (the field is autonomous): θ(t) = e^{−rate(t − t0)}θ0 for t ≥ t0,
    NaN saves before t0, and a different t0 reuses the compiled program."""
    import jax.numpy as jnp

    from flowtools.integrate import IntegratorOptions, integrate

    opts = IntegratorOptions(solver="dopri8", rtol=1e-12, atol=1e-12, coords="theta",
                             clip_to_saves=True)
    save_ts = np.arange(6.0)
    th0 = np.array([[1.0, -2.0], [0.5, 3.0]])
    t0s = np.array([2.5, 0.0])
    sol = integrate(_decay, jnp.float64(0.7), th0, save_ts, opts, t0s=t0s)
    for k, t0 in enumerate(t0s):
        later = save_ts >= t0
        assert np.all(np.isnan(sol.ts[k, ~later])) and np.all(np.isnan(sol.thetas[k, ~later]))
        exact = np.exp(-0.7 * (save_ts[later] - t0))[:, None] * th0[k]
        np.testing.assert_allclose(sol.thetas[k, later], exact, rtol=1e-10)
        assert sol.t_final[k] == 5.0
    again = integrate(_decay, jnp.float64(0.7), th0, save_ts, opts, t0s=[1.0, 4.0])
    assert again.compile_time == 0.0
    np.testing.assert_allclose(again.theta_final, np.exp(-0.7 * np.array([4.0, 1.0]))[:, None]
                               * th0, rtol=1e-10)
    with pytest.raises(ft.FlowtoolsError, match="t0s"):
        integrate(_decay, jnp.float64(0.7), th0, save_ts, opts, t0s=[0.0, 5.0])


def test_loss_stop_in_theta_coordinates():
    """The loss threshold in θ coordinates (the stop used to read θ as log-norm y):
    θ' = −θ with ℓ = ½‖θ‖² reaches the stop's aim ℓ = (1 − STOP_MARGIN)·1e-6 at
    t = ½ log(ℓ0/((1 − STOP_MARGIN)·1e-6)), located to the bisection's time bracket
    (1e-6 + 1e-12·t)."""
    import jax.numpy as jnp

    from flowtools.integrate import IntegratorOptions, integrate
    from flowtools.integrate.core import STOP_MARGIN

    opts = IntegratorOptions(solver="dopri8", rtol=1e-12, atol=1e-14, coords="theta",
                             loss_threshold=1e-6, t1=100.0)
    th0 = np.array([[3.0, 4.0]])
    sol = integrate(_decay, jnp.float64(1.0), th0, np.array([0.0, 100.0]), opts,
                    loss=lambda th, rate: 0.5 * jnp.sum(th**2))
    assert sol.status[0] == Status.CONVERGED
    aim = (1 - STOP_MARGIN) * 1e-6
    assert sol.t_final[0] == pytest.approx(0.5 * np.log(12.5 / aim), abs=1.1e-6)
    assert sol.loss_final[0] <= 1e-6

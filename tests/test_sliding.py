"""The event-driven Filippov integrator (``flowtools.integrate.sliding``): 2-D flows with a
known Filippov solution (sliding, a transversal crossing, entering and leaving a sliding
mode, sliding on a curved kink), and the ReLU CNN's flow against GD (η → 0) and dopri5."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq

import flowtools as ft
from flowtools.errors import FlowtoolsError
from flowtools.fitting import fit_slope
from flowtools.integrate.sliding import Switched, integrate_sliding, relu_cnn_switched
from flowtools.models.relu_cnn import PatchData, ReluCNN


def _on_x(gated_loss):
    """One kink, h = x (θ = (x, y))."""
    return Switched(kinks=lambda th: th[:1], gated_loss=gated_loss, n_kinks=1)


# ---------------------------------------------------------------------- 2-D, exact
def test_slides_on_the_kink_to_the_exact_end_point():
    # L = 2·ReLU(x) − x + y: ẋ = −1 for x > 0, +1 for x < 0, ẏ = −1; from x0 = 0.5 the
    # kink is reached at t = 0.5 and x slides on 0 (s = 1/2): the end (0, −2) exactly
    sw = _on_x(lambda th, s: 2 * th[0] * s[0] - th[0] + th[1])
    r = integrate_sliding(sw, np.array([0.5, 0.0]), 2.0, rtol=1e-10)
    assert np.max(np.abs(r.theta - np.array([0.0, -2.0]))) <= 1e-15
    assert r.t == 2.0 and list(r.sliding) == [0]
    assert r.events == dict(cross=0, enter=1, exit=0, recheck=0)
    assert abs(r.log[0][0] - 0.5) < 1e-14
    assert r.steps <= 6  # the field is constant on each piece


def test_crosses_a_kink_transversally():
    # L = ReLU(x) + x/2 + y²/2: ẋ = −3/2 (x > 0), −1/2 (x < 0), ẏ = −y; from (0.6, 1):
    # the crossing at t = 0.4, x(2) = −0.5·1.6, y(2) = e⁻²
    sw = _on_x(lambda th, s: th[0] * s[0] + th[0] / 2 + th[1] ** 2 / 2)
    r = integrate_sliding(sw, np.array([0.6, 1.0]), 2.0, rtol=1e-12)
    assert np.max(np.abs(r.theta - np.array([-0.8, np.exp(-2.0)]))) < 1e-13
    assert r.events == dict(cross=1, enter=0, exit=0, recheck=0) and r.sliding.size == 0
    assert abs(r.log[0][0] - 0.4) < 1e-14
    assert r.steps <= 20


def test_enters_and_leaves_a_sliding_mode():
    # L = 2·ReLU(x) − x·y − y: x < 0: ẋ = y, ẏ = x + 1; x > 0: ẋ = y − 2, ẏ = x + 1.
    # From (−0.5, 0): x + 1 = cosh(t)/2, y = sinh(t)/2 until x = 0 at t_in = arccosh 2;
    # then it slides (s = y/2 ∈ [0, 1]) with y = y_in + (t − t_in) until s = 1 (y = 2),
    # and leaves to x > 0 tangentially: x = cosh(τ) − 1, y = 2 + sinh(τ)
    sw = _on_x(lambda th, s: 2 * th[0] * s[0] - th[0] * th[1] - th[1])
    t_in = np.arccosh(2.0)
    t_out = t_in + 2.0 - np.sinh(t_in) / 2
    tau = 0.7
    r = integrate_sliding(sw, np.array([-0.5, 0.0]), t_out + tau, rtol=1e-12)
    exact = np.array([np.cosh(tau) - 1.0, 2.0 + np.sinh(tau)])
    assert np.max(np.abs(r.theta - exact)) < 1e-11
    assert [e[1] for e in r.log] == ["enter", "exit"]
    assert abs(r.log[0][0] - t_in) < 1e-11 and abs(r.log[1][0] - t_out) < 1e-11
    assert r.sliding.size == 0


def test_slides_on_two_coupled_kinks_at_once():
    # h1 = x, h2 = x + y, L = 2·ReLU(h1) + 2·ReLU(h2) − 2.5·x − y + z: ẋ = 2.5 − 2s1 − 2s2,
    # ẏ = 1 − 2s2, ż = −1. From (0.3, 0.5): x reaches 0 at t = 0.2 and slides (s1 = 1/4),
    # x + y = y reaches 0 at t = 0.5 and both slide (the coupled controls s2 = 1/2,
    # s1 = 3/4: a 2 × 2 equivalent-control system with off-diagonal terms); the end is
    # (0, 0, −1)
    sw = Switched(kinks=lambda th: jnp.stack([th[0], th[0] + th[1]]),
                  gated_loss=lambda th, s: (2 * s[0] * th[0] + 2 * s[1] * (th[0] + th[1])
                                            - 2.5 * th[0] - th[1] + th[2]), n_kinks=2)
    r = integrate_sliding(sw, np.array([0.3, 0.5, 0.0]), 1.0, rtol=1e-10)
    assert np.max(np.abs(r.theta - np.array([0.0, 0.0, -1.0]))) < 1e-14
    assert [(e[1], e[2]) for e in r.log] == [("enter", 0), ("enter", 1)]
    assert abs(r.log[0][0] - 0.2) < 1e-14 and abs(r.log[1][0] - 0.5) < 1e-14
    assert list(r.sliding) == [0, 1]


def test_slides_on_a_curved_kink_from_the_start():
    # h = x − y²/2, L = 2·ReLU(h) − h + y, started on the kink at (1/2, 1): it slides with
    # s = 1/2 + y/(2(1 + y²)) ∈ [0, 1] and ẏ = −1/(1 + y²), so y + y³/3 = 4/3 − t, x = y²/2
    def h(th):
        return th[:1] - th[1:] ** 2 / 2

    sw = Switched(kinks=h, gated_loss=lambda th, s: (2 * s[0] - 1) * h(th)[0] + th[1],
                  n_kinks=1)
    r = integrate_sliding(sw, np.array([0.5, 1.0]), 1.0, rtol=1e-12)
    y = brentq(lambda v: v + v**3 / 3 - 1 / 3, 0.0, 1.0, xtol=1e-16)
    assert np.max(np.abs(r.theta - np.array([y**2 / 2, y]))) < 1e-11
    assert list(r.sliding) == [0] and r.log == []  # settled at the start, no event


def test_refuses_bad_input():
    sw = _on_x(lambda th, s: th[0] * s[0])
    with pytest.raises(FlowtoolsError, match="t1 > 0"):
        integrate_sliding(sw, np.array([1.0, 0.0]), 0.0)
    with pytest.raises(FlowtoolsError, match="one finite state"):
        integrate_sliding(sw, np.array([np.nan, 0.0]), 1.0)


# ---------------------------------------------------------------------- the ReLU CNN
def _cnn():
    data = PatchData.draw(n=6, d=20, mu_norm=3.0, sigma_p=1.0, seed=0, n_test=10)
    model = ReluCNN(data, width=2)
    return model, model.init(0.01, 0.1, seed=0)


def test_relu_cnn_gated_loss_is_the_loss_off_the_kinks():
    model, _ = _cnn()
    sw = relu_cnn_switched(model)
    theta = jnp.asarray(model.init(0.3, 0.2, seed=1))
    h = np.asarray(jax.jit(sw.kinks)(theta))
    assert h.shape == (sw.n_kinks,) == (2 * 2 * (6 + 1),) and np.all(h != 0)
    s = (h > 0).astype(float)
    (l1, g1), (l2, g2) = (jax.jit(jax.value_and_grad(sw.gated_loss))(theta, s),
                          jax.jit(jax.value_and_grad(model.loss))(theta))
    assert abs(float(l1) - float(l2)) < 1e-15
    assert np.max(np.abs(np.asarray(g1) - np.asarray(g2))) < 1e-15
    # the kinks are the preactivations: signal y_i·⟨w, µ⟩, noise ⟨w, ξ_i⟩
    pre = np.asarray(model.preactivations(theta))  # (n, 2, m, 2)
    y = np.asarray(model.y)
    assert np.allclose(pre[:, :, :, 0], y[:, None, None] * h[:4].reshape(2, 2)[None],
                       rtol=0, atol=1e-15)
    assert np.allclose(pre[:, :, :, 1], h[4:].reshape(2, 2, 6).transpose(2, 0, 1),
                       rtol=0, atol=1e-15)


def test_relu_cnn_flow_is_the_limit_of_gd_and_of_dopri5():
    """σ0 = 0.01, t ≤ 2: noise preactivations slide. GD's gap to the sliding integrator's
    end point falls at order 1 in η (measured 2.00× per halving), dopri5's at order 1 in
    rtol here (its chattering; measured 8.4e-4, 9.6e-5, 9.4e-6 at rtol 1e-5, 1e-6, 1e-7)."""
    model, theta0 = _cnn()
    sw = relu_cnn_switched(model)
    ref = integrate_sliding(sw, theta0, 2.0, rtol=1e-11)
    assert ref.events["enter"] >= 3 and ref.sliding.size >= 3
    # the Filippov flow conserves ‖W‖² − ‖V‖² too (the gates multiply both sides' terms)
    assert abs(model.imbalance(ref.theta) - model.imbalance(theta0)) < 1e-11  # 2.5e-13
    coarse = integrate_sliding(sw, theta0, 2.0, rtol=1e-6)
    assert np.max(np.abs(coarse.theta - ref.theta)) < 1e-6  # measured 3.9e-8
    assert coarse.steps <= 20  # measured 13; dopri5 takes 587 at rtol 1e-6
    lrs = np.array([4e-3, 2e-3, 1e-3])
    gaps = [np.max(np.abs(ft.run_gd(model, theta0, lr=lr, max_iter=int(round(2.0 / lr)),
                                    loss_threshold=0.0, record_at=[0]).theta_final
                          - ref.theta)) for lr in lrs]
    fit = fit_slope(lrs, gaps)
    assert abs(fit.slope - 1.0) < 0.05, (fit, gaps)
    rtols = np.array([1e-6, 1e-7])
    dgaps = [np.max(np.abs(np.asarray(ft.solve_flow(
        model, theta0, t1=2.0, loss_threshold=0.0, gtol=0.0, solver="dopri5", rtol=rt,
        n_save=2, max_steps=100_000).theta_final) - ref.theta)) for rt in rtols]
    assert 5 < dgaps[0] / dgaps[1] < 20 and dgaps[1] < 3e-5, dgaps

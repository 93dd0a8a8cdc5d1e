"""The ReLU CNN in span coordinates (``ReluCNN.span``/``reduce``/``lift``) is the same model.

The loss depends on each filter w only through ⟨w, µ⟩ and ⟨w, ξ_i⟩, so with Q an
orthonormal basis of S = span{µ, ξ_i} and C = QᵀW: L_S(C, V) = L(W, V) for every θ (not only
on S), ∇_W L = Q ∇_C L_S, GD on (C, V) is GD on θ with W = W0 + Q(C − C0), and the nonzero
Hessian spectrum is the same. Checked here to round-off, for GD step by step, for the flow
to its tolerance, and through the sweep engine's coordinate hook (``coordinates = "span"``
against ``"full"``).
"""

from __future__ import annotations

import numpy as np
import pytest

import flowtools as ft
from flowtools.errors import FlowtoolsError
from flowtools.models.relu_cnn import PatchData, ReluCNN, ReluCNNSpan

EPS = np.finfo(float).eps


def _model(n=10, d=60, m=3, mu=3.0, seed=0, n_test=200, direction=None):
    data = PatchData.draw(n=n, d=d, mu_norm=mu, sigma_p=1.0, seed=seed, n_test=n_test,
                          direction=direction)
    return ReluCNN(data, width=m)


def _off_span(model, seed=1, batch=None):
    """A random θ with W spread over all of ℝ^d (not in S) and random V."""
    rng = np.random.default_rng(seed)
    shape = (model.n_params,) if batch is None else (batch, model.n_params)
    return rng.standard_normal(shape) * 0.3


# ---------------------------------------------------------------------- the identity
def test_loss_and_training_preactivations_are_those_of_the_full_model_off_the_span():
    rng = np.random.default_rng(7)
    model = _model(direction=rng.standard_normal(60))  # µ not along a coordinate axis
    span = model.span()
    assert isinstance(span, ReluCNNSpan) and not isinstance(span, ReluCNN)
    assert span.n_params == 2 * 3 * (10 + 1) + 4 * 3 and span.dim == 11
    for seed in range(4):
        th = _off_span(model, seed)
        phi = model.reduce(th)
        assert phi.shape == (span.n_params,)
        # the full W is not in S: the reduction drops most of it, the loss does not see it
        W, _ = model.split(th)
        W_in_S, _ = model.split(model.lift(phi, np.zeros(model.n_params)))
        assert np.linalg.norm(np.asarray(W) - np.asarray(W_in_S)) > 0.5 * np.linalg.norm(W)
        scale = float(np.max(np.abs(model.preactivations(th))))
        np.testing.assert_allclose(span.preactivations(phi), model.preactivations(th),
                                   rtol=0, atol=100 * EPS * scale * np.sqrt(60))
        assert abs(float(span.loss(phi)) - float(model.loss(th))) <= 1e3 * EPS
        assert span.train_error(phi) == model.train_error(th)
    # batches
    ths = _off_span(model, 9, batch=5)
    assert model.reduce(ths).shape == (5, span.n_params)
    np.testing.assert_array_equal(span.train_error(model.reduce(ths)), model.train_error(ths))


def test_full_gradient_is_Q_times_the_span_gradient():
    """∇_W L = Q ∇_C L_S, ∇_V equal: lift(∇_span, 0) = (Q∇_C, ∇_V) is the full gradient."""
    model = _model(seed=3)
    span = model.span()
    zero = np.zeros(model.n_params)
    for seed in range(3):
        th = _off_span(model, seed)
        g_full = np.asarray(model.grad(th))
        g_span = np.asarray(span.grad(model.reduce(th)))
        lifted = model.lift(g_span, zero)
        np.testing.assert_allclose(lifted, g_full, rtol=0,
                                   atol=1e3 * EPS * np.max(np.abs(g_full)))
        # norms of updates agree (Q has orthonormal columns)
        assert np.linalg.norm(g_span) == pytest.approx(np.linalg.norm(g_full), rel=1e-12)


def test_nonzero_hessian_spectrum_is_the_same():
    model = _model(n=5, d=30, m=2, seed=2)
    span = model.span()
    th = _off_span(model, 4)
    ev_full = np.linalg.eigvalsh(np.asarray(model.hessian(th)))
    ev_span = np.linalg.eigvalsh(np.asarray(span.hessian(model.reduce(th))))
    top = np.sort(ev_full[np.argsort(-np.abs(ev_full))[:span.n_params]])
    np.testing.assert_allclose(top, ev_span, rtol=0, atol=1e-12 * np.max(np.abs(ev_full)))
    # the rest of the full spectrum is zero (directions orthogonal to S in W)
    rest = ev_full[np.argsort(-np.abs(ev_full))[span.n_params:]]
    assert np.max(np.abs(rest)) <= 1e-12 * np.max(np.abs(ev_full))


def test_lift_inverts_reduce_and_broadcasts_over_saved_states():
    model = _model(seed=5)
    th0 = model.init(sigma0=0.1, v0=0.2, seed=[0, 1])
    phi0 = model.reduce(th0)
    np.testing.assert_array_equal(model.lift(phi0, th0), th0)  # C = C0: W0 exactly
    # saved states (B, S, q) with θ0 (B, 1, p)
    rng = np.random.default_rng(0)
    phis = phi0[:, None, :] + 0.01 * rng.standard_normal((2, 4, phi0.shape[-1]))
    lifted = model.lift(phis, th0[:, None, :])
    assert lifted.shape == (2, 4, model.n_params)
    for b in range(2):
        for s in range(4):
            np.testing.assert_array_equal(lifted[b, s], model.lift(phis[b, s], th0[b]))
    np.testing.assert_allclose(model.reduce(lifted), phis, rtol=0, atol=1e-14)


def test_span_constructors_and_refusals():
    data = PatchData.draw(n=6, d=20, mu_norm=2.0, seed=1, n_test=10)
    model = ReluCNN(data, width=2)
    a, b = model.span(), ReluCNNSpan(data, width=2)
    np.testing.assert_array_equal(np.asarray(a.xi), np.asarray(b.xi))
    assert a.param_names[0] == "c[+1,1]_1" and a.param_names[-1] == "v[-1,2,2]"
    assert len(a.param_names) == a.n_params and "span{µ, ξ_1..ξ_6}" in a.layout
    with pytest.raises(FlowtoolsError, match="width"):
        ReluCNNSpan(data)
    with pytest.raises(FlowtoolsError, match="ReluCNN"):
        ReluCNNSpan("data", width=2)
    with pytest.raises(FlowtoolsError, match="reduce takes θ of length"):
        model.reduce(np.zeros(5))
    with pytest.raises(FlowtoolsError, match="lift takes θ_span"):
        model.lift(np.zeros(model.n_params), np.zeros(model.n_params))
    # S needs n + 1 independent vectors: ξ ⊥ µ has d − 1 dimensions, so d = n fails
    small = ReluCNN(PatchData.draw(n=8, d=8, mu_norm=1.0, seed=0, n_test=5), width=2)
    for call in (small.span, lambda: small.reduce(np.zeros(small.n_params))):
        with pytest.raises(FlowtoolsError, match="linearly dependent"):
            call()


# ---------------------------------------------------------------------- the dynamics
def test_gd_in_span_coordinates_is_gd_on_the_full_model():
    """200 GD steps: lifted span run == full run to round-off. Each step adds a relative
    error of a few eps (the two evaluate the same sums in different orders); the map
    θ ↦ θ − η∇L has Lipschitz constant 1 + ηλ ≤ 1.1 here, so after K steps the relative
    gap is at most ~K·c·eps·1.1^… — measured ~1e-14; 1e-10 leaves a wide margin."""
    model = _model(n=12, d=300, m=4, seed=1)
    span = model.span()
    th0 = model.init(sigma0=0.01, v0=0.1, seed=[0, 1, 2])
    full = ft.run_gd(model, th0, lr=0.05, max_iter=200, loss_threshold=0.0)
    red = ft.run_gd(span, model.reduce(th0), lr=0.05, max_iter=200, loss_threshold=0.0)
    lifted = model.lift(red.theta_final, th0)
    rel = np.max(np.abs(lifted - full.theta_final)) / np.max(np.abs(full.theta_final))
    assert rel <= 1e-10, rel
    np.testing.assert_allclose(red.loss_final, full.loss_final, rtol=1e-10)
    assert np.all(full.loss_final < np.asarray([model.loss(t) for t in th0]))  # it trained
    np.testing.assert_array_equal(model.test_error(lifted), model.test_error(full.theta_final))


def test_flow_in_span_coordinates_agrees_to_the_tolerance():
    """dopri5 at rtol 1e-8 in both coordinates: the step-size control sees different
    vectors, so the end points agree to the tolerance's order, not to round-off. This
    instance has sliding modes (the module docstring's): measured gap 2.1e-5, where the
    full model's own end point moves by 4.7e-5 from rtol 1e-7 to 1e-8."""
    model = _model(n=10, d=50, m=4, seed=0)
    span = model.span()
    th0 = model.init(sigma0=0.01, v0=0.1, seed=0)
    kw = dict(t1=2.0, loss_threshold=0.0, solver="dopri5", rtol=1e-8, max_steps=200_000)
    full = ft.solve_flow(model, th0, **kw)
    red = ft.solve_flow(span, model.reduce(th0), **kw)
    assert ft.Status(int(full.status)) == ft.Status(int(red.status)) == ft.Status.HORIZON
    lifted = model.lift(red.theta_final, th0)
    rel = np.max(np.abs(lifted - full.theta_final)) / np.max(np.abs(full.theta_final))
    assert rel <= 1e-4, rel
    assert float(red.loss_final) == pytest.approx(float(full.loss_final), rel=1e-4)


def test_large_d_trains_in_span_coordinates():
    """d = 50 000: the span model has 2m(n+1) + 4m parameters whatever d (a smoke run;
    the lifted state's full loss is the span loss)."""
    model = _model(n=10, d=50_000, m=3, seed=0, n_test=10)
    span = model.span()
    assert span.n_params == 2 * 3 * 11 + 12
    th0 = model.init(sigma0=1e-3, v0=0.1, seed=0)
    gd = ft.run_gd(span, model.reduce(th0), lr=0.01, max_iter=100, loss_threshold=0.0)
    lifted = model.lift(gd.theta_final, th0)
    assert float(model.loss(lifted)) == pytest.approx(float(gd.loss_final), rel=1e-12)
    assert float(gd.loss_final) < float(model.loss(th0))


# ---------------------------------------------------------------------- the sweep hook
def _cnn_grid(**integrator) -> dict:
    """A small relu_cnn grid (GD, trained protocol: η_v0 and max_iter depend on v0)."""
    return {"sweep": {"family": "relu_cnn", "cells_per_task": 3},
            "problem": {"n": 8, "dim": 200, "width": 3, "n_test": 300, "data_seed": [0, 1],
                        "mu_norm": [1.0, 5.0]},
            "init": {"sigma0": 1e-3, "v0": [0.05, 0.6, 2.0]},
            "integrator": {"dynamics": "gd", "lr": 0.05, "stable_v0": 0.3, "max_time": 15.0,
                           "loss_threshold": 0.05, **integrator}}


def test_sweep_span_and_full_coordinates_store_the_same_results(tmp_path):
    from flowtools.sweep import Grid, open_results, run_sweep
    from flowtools.sweep.cells import plan

    span = Grid.from_dict(_cnn_grid())
    full = Grid.from_dict(_cnn_grid(coordinates="full"))
    assert span.fixed["coordinates"] == "span" and span.key() != full.key()
    # tasks of the two coordinates do not share a compiled program
    assert plan(span)[0].compile_key != plan(full)[0].compile_key
    for g, name in ((span, "span.zarr"), (full, "full.zarr")):
        assert run_sweep(g, tmp_path / name).ok
    a, b = (open_results(tmp_path / p).load() for p in ("span.zarr", "full.zarr"))
    for name in ("test_error", "train_error", "steps", "status", "t_final"):
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    for name in ("loss_final", "dv", "dW", "layer_change_ratio", "balance_ratio"):
        np.testing.assert_allclose(a[name].values, b[name].values, rtol=1e-10, err_msg=name)
    assert np.all(a["test_error"].values < 0.5)  # trained cells, not a trivial agreement


def test_integrand_lifts_end_points_and_saved_states():
    from flowtools.sweep.family import Integrand

    model = _model(seed=4)
    target = Integrand(model.span(), reduce=model.reduce, lift=model.lift)
    th0 = model.init(sigma0=0.1, v0=0.3, seed=[0, 1])
    phi0 = target.start(th0)
    rng = np.random.default_rng(2)
    runs = {"theta_final": phi0 + 0.1, "thetas": phi0[:, None, :] + rng.random((2, 3, 1)),
            "loss_final": np.array([0.1, 0.2])}
    out = target.lift_runs(runs, th0)
    assert out["loss_final"] is runs["loss_final"] and out["thetas"].shape == (2, 3, len(th0[0]))
    np.testing.assert_array_equal(out["theta_final"], model.lift(phi0 + 0.1, th0))
    np.testing.assert_array_equal(out["thetas"][1, 2], model.lift(runs["thetas"][1, 2], th0[1]))
    assert Integrand.of(model).start(th0) is th0 and Integrand.of(target) is target


def test_error_counts_are_those_of_the_network_output():
    """train/test_error use a lean margin (no k × 2 × d stacked input): the same counts as
    y·output(θ, y, ξ) ≤ 0, trained and random states."""
    model = _model(n=10, d=80, m=3, seed=6, n_test=400)
    th0 = model.init(1e-3, 0.1, seed=[0, 1])
    gd = ft.run_gd(model, th0, lr=0.05, max_iter=300, loss_threshold=0.0)
    states = np.concatenate([th0, gd.theta_final, _off_span(model, 3, batch=3)])
    for y, xi, err in ((model.y, model.xi, model.train_error),
                       (model.y_test, model.xi_test, model.test_error)):
        want = [np.mean(np.asarray(y * model.output(th, y, xi)) <= 0) for th in states]
        np.testing.assert_allclose(err(states), want, rtol=1e-6)  # float32 mean

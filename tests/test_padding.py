"""Per-sample weights and ``Problem.padded``: zero-weight rows change nothing, for either loss
convention, σ(0) ≠ 0, with and without a bias — and every n ≤ n_rows runs one program.

Tolerances. A padded problem evaluates the same sums as the real one with exact zeros
added (weight 0 times a finite residual is +0.0, and x + 0.0 = x): the only freedom left is
the order in which XLA adds the terms. Two orders of one sum of N terms t_i differ by at
most 2(N − 1)·u·Σ|t_i| (u = 2⁻⁵³, recursive summation bound for each), so each quantity is
compared with ``RTOL_SUM``·Σ|t_i|, its terms' absolute sum (per sample, per entry).
"""

import equinox as eqx
import jax
import jax.monitoring
import jax.numpy as jnp
import numpy as np
import pytest

import flowtools as ft
import flowtools._compile as C
from flowtools.errors import FlowtoolsError

ROWS = 7
U = 2.0**-53
RTOL_SUM = 2 * (ROWS - 1) * U  # two summation orders of ROWS terms (module docstring)

CASES = [(conv, act, bias) for conv in ("sum", "mean")
         for act in ("tanh", "1 + tanh(x)") for bias in (True, False)]


@eqx.filter_jit
def _terms(pb, th):
    """(|ℓ_i|, |∇ℓ_i|, |∇²ℓ_i|) summed over the (real) samples: the terms' absolute sums."""
    def per_sample(t):
        r = pb.residual(t)
        return 0.5 * pb.loss_weight * r * r

    return (jnp.sum(jnp.abs(per_sample(th))), jnp.sum(jnp.abs(jax.jacobian(per_sample)(th)), 0),
            jnp.sum(jnp.abs(jax.hessian(per_sample)(th)), 0))


@eqx.filter_jit
def _derivatives(model, th):
    """ℓ, ∇ℓ, ∇²ℓ in one program (as the solvers run them)."""
    return model.loss(th), model.grad(th), model.hessian(th)


@pytest.mark.parametrize("conv,act,bias", CASES)
def test_padded_loss_gradient_hessian_equal(conv, act, bias):
    pb = ft.make_problem(4, sampling="gaussian", activation=act, bias=bias,
                         loss_convention=conv, seed=3)
    pp = pb.padded(ROWS)
    assert pp.n == pb.n == 4 and pp.X.shape == (ROWS, 1)
    assert (pp.bias, pp.width, pp.target, pp.loss_convention) == (bias, 2, pb.target, conv)
    assert pp.loss_weight == pb.loss_weight  # 1, or 1/Σw = 1/n exactly
    for seed in range(2):
        th = jnp.asarray(pb.init_gaussian(0.7, seed=seed))
        bound = [RTOL_SUM * np.asarray(t) for t in _terms(pb, th)]
        for got, want, tol in zip(_derivatives(pp, th), _derivatives(pb, th), bound,
                                  strict=True):
            assert np.all(np.abs(np.asarray(got) - np.asarray(want)) <= tol)
    # eager evaluation too (the host's re-evaluation of ℓ)
    assert abs(float(pp.loss(th)) - float(pb.loss(th))) <= bound[0]


@pytest.mark.parametrize("conv", ["sum", "mean"])
def test_padded_theory_quantities_equal(conv):
    pb = ft.make_problem(5, sampling="gaussian", loss_convention=conv, seed=1)
    pp = pb.padded(ROWS)
    terms = np.abs(np.asarray(pb.y))[:, None] * np.abs(np.asarray(pb.Xa))
    assert np.all(np.abs(pp.gamma - pb.gamma) <= RTOL_SUM * terms.sum(0))
    assert pp.mu1 == pytest.approx(pb.mu1, rel=4 * RTOL_SUM)
    th = pb.init_gaussian(1e-3, seed=[0, 1])
    np.testing.assert_allclose(pp.imbalance(th), pb.imbalance(th), rtol=4 * RTOL_SUM,
                               atol=0)
    np.testing.assert_allclose(pp.top_eigvecs, pb.top_eigvecs, rtol=0, atol=4 * RTOL_SUM)
    assert pp.assumption_failures() == pb.assumption_failures()
    # the data themselves (symbolic, separation): the real rows
    ds = pp.samples("a test")
    np.testing.assert_array_equal(ds.X, np.asarray(pb.X))
    np.testing.assert_array_equal(ds.y, np.asarray(pb.y))


def test_weights_are_the_weighted_loss():
    pb = ft.make_problem(3, sampling="gaussian", loss_convention="mean", seed=2)
    w = np.array([0.5, 2.0, 1.0])
    pw = ft.Problem.create((np.asarray(pb.X), np.asarray(pb.y)), weights=w, target=pb.target,
                           loss_convention="mean")
    th = pb.init_gaussian(0.5, seed=0)
    r = np.asarray(pb.residual(th))
    assert float(pw.loss(th)) == pytest.approx(0.5 * np.sum(w * r**2) / w.sum(), rel=1e-14)
    np.testing.assert_allclose(pw.gamma, (w * np.asarray(pb.y)) @ np.asarray(pb.Xa),
                               rtol=1e-14)
    assert pw.loss_weight == 1 / w.sum() and pw.n == 3
    with pytest.raises(FlowtoolsError, match="unweighted"):
        pw.samples("the symbolic origin Hessian")
    for bad in ([1.0, -1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0]):
        with pytest.raises(FlowtoolsError, match="sample weights"):
            ft.Problem.create((np.asarray(pb.X), np.asarray(pb.y)), weights=bad)


def test_padding_refuses_fewer_rows():
    with pytest.raises(FlowtoolsError, match="below the problem's n = 6"):
        ft.example1(6).padded(5)
    assert ft.example1(3).padded(6).padded(6).n == 3


# an explicit solver (the cheapest program to compile); a moderate start, to ℓ ≤ 1e-12
FLOW = dict(t1=1e5, loss_threshold=1e-12, max_steps=20_000, n_save=4, solver="tsit5")


def _shifted(n, seed):
    """σ(0) = 1 ≠ 0, the mean loss: what the old padding (zero rows) could not keep."""
    return ft.make_problem(n, sampling="gaussian", activation="1 + tanh(x)",
                           loss_convention="mean", seed=seed)


def test_padded_flow_ends_at_the_same_point():
    pb = _shifted(4, 0)
    th0 = pb.init_gaussian(0.3, seed=[0, 1])
    a = ft.solve_flow(pb, th0, **FLOW)
    b = ft.solve_flow(pb.padded(6), th0, **FLOW)
    np.testing.assert_array_equal(a.status, b.status)
    # the solver's tolerance (rtol 1e-10 per step) on the end point
    np.testing.assert_allclose(b.theta_final, a.theta_final, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(b.loss_final, a.loss_final, rtol=1e-6, atol=1e-14)


def test_padded_sizes_share_one_program(monkeypatch):
    # the disk caches off: a program comes from this process's cache or is compiled
    monkeypatch.setenv("FLOWTOOLS_EXPORT_CACHE", "off")
    compiles = []

    def listen(name, secs, **kw):
        if name == "/jax/core/compile/backend_compile_duration":
            compiles.append(secs)

    p3, p5 = _shifted(3, 1).padded(6), _shifted(5, 2).padded(6)
    th3, th5 = p3.init_gaussian(0.3, seed=[0, 1]), p5.init_gaussian(0.3, seed=[2, 3])
    ft.solve_flow(p3, th3, **FLOW)  # compiles, or reuses the program of the test above
    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        second = ft.solve_flow(p5, th5, **FLOW)
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    assert second.compile_time == 0.0  # flowtools._compile: a hit in its cache
    assert compiles == []              # and XLA compiled nothing else
    assert C._CACHE  # (the cache that served it)

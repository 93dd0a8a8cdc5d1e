"""h(θ, t) = lim_{α→0} φ(αθ, t + log(1/α)/μ1): two independent methods, the paper's
identities (Theorem 1 (ii), Corollary 2, Proposition 1), Theorem 3's rate on a system with
a closed-form limit, alignment, bad input."""

import jax.numpy as jnp
import numpy as np
import pytest

import flowtools as ft
from flowtools.errors import AssumptionError, FlowtoolsError
from flowtools.limit import (
    FlowSystem,
    aligned_times,
    compare_methods,
    exponent_candidates,
    limit,
    limit_field,
)

TS = np.array([-2.0, 0.0, 2.0, 10.0])


@pytest.fixture(scope="module")
def pb():
    return ft.example1()


def _direction(pb, c):
    return pb.init_gaussian(1.0, seed=7) if c is None else pb.init_ratio(c, 1.0, seed=3)


def _check_agreement(pb, c):
    e, m, diff = compare_methods(pb, _direction(pb, c), TS)
    actual = np.linalg.norm(e.thetas - m.thetas, axis=-1)
    assert np.all(diff < 1e-9), diff
    # the extrapolation's error estimate is within a factor 10 of the actual difference
    ratio = e.error / actual
    assert np.all((ratio > 0.1) & (ratio < 10)), ratio
    # observed rate (where measurable) beside Theorem 3's bound 1/2: here it is 1
    assert e.rate_bound == pytest.approx(0.5)
    r = e.rate[np.isfinite(e.rate)]
    assert r.size >= 3 and np.all(np.abs(r - 1) < 0.05) and np.all(r >= e.rate_bound)


@pytest.mark.parametrize("c", [0.5, None])
def test_methods_agree_example1(pb, c):
    _check_agreement(pb, c)


@pytest.mark.slow
@pytest.mark.parametrize("c", [1.0, 2.0, -3.0])
def test_methods_agree_example1_more_directions(pb, c):
    _check_agreement(pb, c)


def test_depends_on_C_only(pb):
    """Theorem 1 (ii): θ1, θ2 with C(θ1) = C(θ2) but different off the top eigenspace."""
    th1 = _direction(pb, 0.5)
    V1 = pb.top_eigvecs
    u = np.random.default_rng(1).standard_normal(pb.n_params)
    th2 = th1 + 0.7 * (u - V1 @ (V1.T @ u))
    np.testing.assert_allclose(pb.imbalance(th1), pb.imbalance(th2), rtol=1e-13)
    assert np.linalg.norm(th2 - th1) > 0.3
    h1, h2 = limit(pb, th1, TS), limit(pb, th2, TS)
    d = np.linalg.norm(h1.thetas - h2.thetas, axis=-1)
    assert np.all(d <= 3 * (h1.error + h2.error)), (d, h1.error, h2.error)
    assert np.all(d / np.linalg.norm(h1.thetas, axis=-1) < 1e-12)


def test_scaling_corollary2(pb):
    """Corollary 2: h(sθ, t) = h(θ, t + log(s)/μ1), both sides by α-extrapolation."""
    th, s = _direction(pb, 2.0), 3.0
    a = limit(pb, s * th, TS)
    b = limit(pb, th, TS + np.log(s) / pb.mu1)
    d = np.linalg.norm(a.thetas - b.thetas, axis=-1) / np.linalg.norm(a.thetas, axis=-1)
    assert np.all(d < 1e-12), d


def test_dh_dt_is_the_field(pb):
    """Proposition 1: dh/dt = −∇ℓ(h), by central differences across the series/flow seam."""
    th = _direction(pb, 0.5)
    centres = np.array([-1.5, -0.5, 0.5, 3.0, 8.0])
    dt = 1e-4
    ts = np.sort(np.concatenate([centres - dt, centres + dt]))
    res = limit(pb, th, ts, method="manifold")
    assert res.info["t0"] > centres[0] and res.info["t0"] < centres[-1]  # both regimes
    h = res.thetas.reshape(-1, 2, pb.n_params)
    fd = (h[:, 1] - h[:, 0]) / (2 * dt)
    mid = h.mean(axis=1)
    F = np.array([np.asarray(pb.field(jnp.asarray(x))) for x in mid])
    rel = np.linalg.norm(fd - F, axis=-1) / np.linalg.norm(F, axis=-1)
    assert np.all(rel < 1e-6), rel


# ------------------------------------------------- a field with a closed-form limit
MU = (1.0, 0.5, -1.0)
BETA = 0.3
M = np.array([[1.0, 0.4, 0.1], [0.2, 1.0, -0.3], [0.0, 0.5, 1.0]])  # not orthogonal
MINV = np.linalg.inv(M)


def _field(x):
    """ẏ1 = μ1y1, ẏ2 = μ2y2 + βy1², ẏ3 = μ3y3 + βy1y2 in coordinates y = M⁻¹x."""
    y = jnp.asarray(MINV) @ x
    dy = jnp.array([MU[0] * y[0], MU[1] * y[1] + BETA * y[0] ** 2,
                    MU[2] * y[2] + BETA * y[0] * y[1]])
    return jnp.asarray(M) @ dy


def _h_exact(theta, ts):
    s = (MINV @ theta)[0]
    e = np.exp(MU[0] * ts)
    c2 = BETA / (2 * MU[0] - MU[1])
    c3 = BETA * c2 / (3 * MU[0] - MU[2])
    y = np.stack([s * e, c2 * (s * e) ** 2, c3 * (s * e) ** 3], axis=-1)
    return y @ M.T


def test_closed_form_field_and_rate():
    """Theorem 3 beyond gradients: J(0) = M diag(1, 0.5, −1) M⁻¹. The limit is
    y = (se^t, c2 s²e^{2t}, c3 s³e^{3t}); the error of φ(αθ, ·) is ∝ α^{1 − μ2/μ1} = α^{1/2},
    above the theorem's bound (μ1 − μ2)/(2μ1 − μ2) = 1/3."""
    theta = np.array([0.8, -0.5, 1.1])
    ts = np.array([-1.0, 0.0, 1.0])
    exact = _h_exact(theta, ts)
    nrm = np.linalg.norm(exact, axis=-1)
    m = limit_field(_field, theta, ts, method="manifold")
    np.testing.assert_allclose(m.thetas, exact, rtol=1e-12, atol=1e-13 * nrm.max())
    e = limit_field(_field, theta, ts, method="extrapolate")
    assert e.rate_bound == pytest.approx(1 / 3)
    assert np.all(np.abs(e.rate - 0.5) < 0.02), e.rate
    err = np.linalg.norm(e.thetas - exact, axis=-1)
    assert np.all(err / nrm < 1e-9), err / nrm
    assert np.all((e.error / err > 0.1) & (e.error / err < 10)), e.error / err


def test_exponent_candidates_are_the_integers_for_networks(pb):
    c = exponent_candidates(FlowSystem.from_problem(pb), max_exponent=4)
    np.testing.assert_allclose(c, [1, 2, 3, 4])


def test_left_eigenvectors_of_a_nonsymmetric_field():
    sy = FlowSystem.from_field(_field, 3)
    assert sy.mu1 == pytest.approx(1.0) and sy.mu2 == pytest.approx(0.5)
    theta = np.array([0.3, 0.2, -0.7])
    # s = W1ᵀθ is the μ1-coordinate: the spectral projection of θ is V1 s
    proj = M[:, :1] @ (MINV[:1] @ theta)
    np.testing.assert_allclose(sy.V1 @ sy.coords(theta), proj, atol=1e-14)


# ------------------------------------------------- alignment
def test_aligned_times_put_small_flows_on_h(pb):
    """φ(θ0, t) ≈ h(θ0/‖C(θ0)‖, t + log‖C(θ0)‖/μ1) up to O(scale) (Figures 2, 5)."""
    sy = FlowSystem.from_problem(pb)
    unit = _direction(pb, 0.5)
    unit = unit / np.linalg.norm(pb.imbalance(unit))
    ts = np.array([3.0, 4.0, 6.0])
    for scale, seed in [(1e-6, 1), (1e-7, 2)]:
        th0 = pb.init_ratio(0.5, scale, seed=seed)  # another seed, same c = C1/C2 …
        th0 *= np.sign(pb.imbalance(th0)[1] * pb.imbalance(unit)[1])  # … and same C/‖C‖
        out, _, _ = sy.flow(th0[None], ts, rtol=1e-13, solver="dopri8")
        tau = aligned_times(pb, ts, th0)
        h = limit(pb, unit, tau, method="manifold").thetas
        rel = np.linalg.norm(out[0] - h, axis=-1) / np.linalg.norm(h, axis=-1)
        assert np.all(rel < 100 * scale), rel
        assert np.all(rel > 1e-3 * scale)  # not trivially equal: the O(α) error is visible


# ------------------------------------------------- bad input
def test_no_component_in_top_eigenspace(pb):
    V1 = pb.top_eigvecs
    u = np.random.default_rng(0).standard_normal(pb.n_params)
    u -= V1 @ (V1.T @ u)
    for method in ("extrapolate", "manifold"):
        with pytest.raises(FlowtoolsError, match="C\\(θ\\) = 0"):
            limit(pb, u, [0.0], method=method)


def test_mu1_not_positive():
    with pytest.raises(AssumptionError, match="μ1"):
        limit_field(lambda x: -x + x**2, np.ones(2), [0.0])
    zero_data = ft.Dataset(np.linspace(-2, 2, 6)[:, None], np.zeros(6))
    with pytest.raises(AssumptionError):
        limit(ft.Problem.create(zero_data), np.ones(6), [0.0])


def test_times_beyond_the_computed_range(pb):
    th = _direction(pb, 1.0)
    with pytest.raises(FlowtoolsError, match="limit_endpoint"):
        limit(pb, th, [0.0, np.inf])
    with pytest.raises(FlowtoolsError, match="beyond the computed range"):
        limit(pb, th, [-500.0])
    res = limit(pb, th, np.linspace(-1, 1, 9), method="manifold")
    np.testing.assert_allclose(res.at(res.ts[3]), res.thetas[3], rtol=1e-14)
    with pytest.raises(FlowtoolsError, match="beyond the computed range"):
        res.at(1.5)
    with pytest.raises(FlowtoolsError, match="unknown method"):
        limit(pb, th, [0.0], method="naive")


def test_cli(pb, capsys):
    from flowtools.cli import main

    assert main(["limit", "--ratio", "0.5", "--times", "-1", "1", "--method", "manifold"]) == 0
    out = capsys.readouterr().out
    assert "manifold" in out and "rate bound" in out
    assert main(["limit", "--seed", "1", "2", "--times", "0"]) == 2


@pytest.mark.slow
def test_endpoint_both_methods_and_neuron_swap(pb):
    """Theorem 2: lim_{t→∞} h by the flow's stopping rule from a point of h found by either
    method; c ↔ 1/c swaps the two neurons (Q2 branch for c = 2 and c = 1/2)."""
    from flowtools.limit import limit_endpoint
    from flowtools.trajectory import Status

    th = _direction(pb, 2.0)
    a = limit_endpoint(pb, th, method="manifold")
    b = limit_endpoint(pb, th, method="extrapolate")
    assert a.status == Status.CONVERGED and a.loss <= 1e-15 * (1 + 1e-6)  # event located
    np.testing.assert_allclose(a.theta, b.theta, atol=1e-6)
    swapped = th.reshape(2, 3)[::-1].ravel()  # C1/C2 = 1/2, same C up to the swap
    c = limit_endpoint(pb, swapped, method="manifold")
    np.testing.assert_allclose(c.theta.reshape(2, 3)[::-1].ravel(), a.theta, atol=1e-6)


@pytest.mark.slow
def test_width3_and_d2_methods_agree():
    """m = 3 top directions (and d = 2 inputs): the ray form of the parametrization needs no
    multi-index bookkeeping; both methods agree."""
    pb3 = ft.make_problem(8, sampling="gaussian", width=3, dim=2, seed=1)
    th = pb3.init_gaussian(1.0, seed=4)
    e, m, diff = compare_methods(pb3, th, np.array([-1.0, 0.0, 1.0, 4.0]))
    assert np.all(diff < 1e-9), diff
    assert e.rate_bound == pytest.approx(0.5)

"""flowtools.curvature: the extreme eigenvalues of ∇²ℓ(θ), dense and matrix-free."""

import jax.numpy as jnp
import numpy as np
import pytest

import flowtools as ft
from flowtools.curvature import DENSE_MAX, hessian_extremes, lam_max_at
from flowtools.discretization import lam_max
from flowtools.models import LossModel


def _quadratic_loss(theta, data):
    A, c = data
    r = theta - c
    return 0.5 * r @ (A @ r)


def _saddle_loss(theta, data):
    return 0.5 * (theta[0] ** 2 - theta[1] ** 2)


def _overflowing_loss(theta, data):
    return jnp.sum(jnp.exp(theta) ** 2)


def _quadratic(spectrum, seed=0):
    """ℓ(θ) = ½(θ − c)ᵀA(θ − c) with A = Q diag(spectrum) Qᵀ: ∇²ℓ = A everywhere."""
    lam = np.asarray(spectrum, float)
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(lam), len(lam))))
    c = np.random.default_rng(seed + 1).standard_normal(len(lam))
    return LossModel(_quadratic_loss, ((Q * lam) @ Q.T, c), n_params=len(lam)), Q


@pytest.mark.parametrize("dense_max", [DENSE_MAX, 0], ids=["dense", "lanczos"])
def test_quadratic_with_a_known_spectrum(dense_max):
    spectrum = np.concatenate([[-2.5], np.linspace(0.1, 3.0, 38), [7.25]])
    model, Q = _quadratic(spectrum)
    th = np.random.default_rng(5).standard_normal(len(spectrum))
    e = hessian_extremes(model, th, vectors=True, dense_max=dense_max, tol=0)
    assert e.dense == (dense_max > 0)
    assert e.lam_min == pytest.approx(-2.5, abs=1e-12)
    assert e.lam_max == pytest.approx(7.25, abs=1e-12)
    assert e.abs_max == pytest.approx(7.25, abs=1e-12)
    assert abs(abs(float(e.vec_max @ Q[:, -1])) - 1) < 1e-10
    assert lam_max_at(model, np.stack([th, 2 * th]), dense_max=dense_max) == pytest.approx(
        [7.25, 7.25], abs=1e-12)


def test_dense_and_lanczos_agree_on_example1():
    pb = ft.example1()
    th = np.random.default_rng(3).standard_normal(pb.n_params)
    dense = hessian_extremes(pb, th, vectors=True)
    free = hessian_extremes(pb, th, vectors=True, dense_max=0, tol=0)
    assert dense.dense and not free.dense
    assert free.lam_min == pytest.approx(dense.lam_min, rel=1e-10)
    assert free.lam_max == pytest.approx(dense.lam_max, rel=1e-10)
    assert abs(abs(float(free.vec_max @ dense.vec_max)) - 1) < 1e-8
    H = np.asarray(pb.hessian(th))
    assert dense.lam_max == pytest.approx(np.linalg.eigvalsh(H)[-1], rel=1e-12)
    assert lam_max(pb, th[None])[0] == pytest.approx(dense.lam_max, rel=1e-12)


def test_a_saddle_has_a_negative_lam_min():
    """ℓ = ½(x² − y²): the origin is a saddle, λ_min = −1, λ_max = 1 on both paths."""
    model = LossModel(_saddle_loss, n_params=2)
    for dense_max in (DENSE_MAX, 0):
        e = hessian_extremes(model, np.zeros(2), dense_max=dense_max, tol=0)
        assert e.lam_min == pytest.approx(-1.0, abs=1e-12)
        assert e.lam_max == pytest.approx(1.0, abs=1e-12)


def test_non_finite_hessian_gives_nan():
    model = LossModel(_overflowing_loss, n_params=3)
    e = hessian_extremes(model, np.full(3, 400.0))
    assert np.isnan(e.lam_min) and np.isnan(e.lam_max)

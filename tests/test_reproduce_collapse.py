"""The collapse figures (2, 5, 6, 7) through ``reproduce(NAME, quick=True)``: one run per
figure (module-scoped), then the mathematics of what it stored.

Tolerances follow from the mathematics: identities that hold by construction are checked to
round-off; the collapse is checked against Theorem 3's order ‖C‖^{1/2} (a bound: the measured
order must be at least that); end points against the stopping loss (|f(x_i) − y_i| ≤ √(2ℓ)
for the sum loss ℓ = ½Σ(f − y)²)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import flowtools as ft
from flowtools.experiments.claims import claims_from_json
from flowtools.experiments.outcomes import decode
from flowtools.experiments.reproduce import reproduce


def _run(name, tmp_path_factory, gd):
    out = tmp_path_factory.mktemp(name)
    run = reproduce(name, quick=True, gd=gd, out=out, log=lambda *a: None)
    ds = xr.open_dataset(out / f"{name}.nc", engine="scipy").load()
    assert (out / f"{name}.png").stat().st_size > 20_000
    claims = claims_from_json(ds.attrs["claims"])
    assert [c.claim for c in claims] == [c.claim for c in run.claims]
    assert ds.attrs["run_mode"] == "quick" and "criterion" in ds.attrs
    return ds, claims


@pytest.fixture(scope="module")
def fig2(tmp_path_factory):
    return _run("fig2", tmp_path_factory, gd=True)


@pytest.fixture(scope="module")
def fig5(tmp_path_factory):
    return _run("fig5", tmp_path_factory, gd=True)


@pytest.fixture(scope="module")
def fig6(tmp_path_factory):
    return _run("fig6", tmp_path_factory, gd=False)


@pytest.fixture(scope="module")
def fig7(tmp_path_factory):
    return _run("fig7", tmp_path_factory, gd=False)


def _collapse_checks(ds, rule="flow"):
    """Deviation from the smallest-scale trial falls with ‖C(θ0)‖ at least as fast as
    Theorem 3's ‖C‖^{1/2} between every pair of trials above the floor."""
    C = ds.norm_C0.values[..., :-1]
    dev = ds[f"dev_param_{rule}"].values[..., :-1]
    assert np.all(dev < 1e-2)
    for i in range(len(dev) - 1):
        if dev[i + 1] > ds.attrs["collapse_floor"]:
            assert dev[i] / dev[i + 1] >= (C[i] / C[i + 1]) ** 0.5, (dev, C)


def test_fig2_collapse_and_shift(fig2):
    """c = C1/C2 = 0.5 exactly in every trial; the stored shift is log‖C‖/μ1; the deviations
    fall faster than ‖C‖^{1/2} (measured order ≥ 1/2); GD's own escape rate aligns the escapes
    to < 1e-3 while the flow's μ1 leaves them > 0.05 apart (log‖C‖(1/ρ − 1/μ1) spans ~0.1);
    every trial ends in Q2 (c̃ = 0.5 is below Figure 3's demarcation 0.74) at ℓ ≤ 1e-15."""
    ds, claims = fig2
    assert set(ds.theta_flow.dims) == {"trial", "tau", "param"}
    assert list(ds.param.values) == list(ft.example1().param_names)
    C0 = ds.C0.values
    np.testing.assert_allclose(C0[:, 0] / C0[:, 1], 0.5, rtol=1e-12)
    np.testing.assert_allclose(ds.shift_flow.values, np.log(ds.norm_C0.values) / ds.mu1,
                               rtol=1e-12)
    _collapse_checks(ds)
    _collapse_checks(ds, "gd")
    assert ds.order_flow >= 0.5 and ds.order_gd >= 0.5
    esc_rho, esc_mu1 = ds.escape_tau_gd_rate.values, ds.escape_tau_mu1_shift.values
    assert np.ptp(esc_rho) < 1e-3 < 0.05 < np.ptp(esc_mu1)
    assert set(decode(ds.outcome_flow.values)) == {"Q2"}
    assert np.all(ds.loss_end_flow.values <= 1e-15)
    assert claims[0].agree and claims[1].agree


def test_fig5_ratios_and_collapse(fig5):
    """C_k/C_1 = 1.5 + 0.0015(k − 1) for k ≥ 2 to round-off in every trial (the caption),
    so C/‖C‖ is shared; the trials collapse (order ≥ 1/2) for the flow and for GD."""
    ds, claims = fig5
    C0 = ds.C0.values
    k = ds.neuron.values[1:]
    np.testing.assert_allclose(C0[:, 1:] / C0[:, :1],
                               np.broadcast_to(1.5 + 0.0015 * (k - 1), C0[:, 1:].shape),
                               rtol=1e-10)
    assert list(ds.param.values) == ["a1", "w1", "b1", "a2", "w2", "b2"]
    _collapse_checks(ds)
    _collapse_checks(ds, "gd")
    assert ds.order_flow >= 0.5
    assert np.ptp(ds.escape_tau_gd_rate.values) < 1e-3
    assert claims[0].agree


def test_fig6_targets_interpolation_and_largest_neuron(fig6):
    """The target curve is the problem's stored target tanh(x + 1); every run reaches
    ℓ ≤ 1e-15, so at the training points |f − y| ≤ √(2ℓ); for m = 10 the neuron with the
    largest |C_k| ends the largest and the magnitudes follow |C_k| (Eq. (2))."""
    ds, claims = fig6
    assert ft.example1(3).target == ft.models.two_layer.default_target()
    xs = ds.x.values
    np.testing.assert_allclose(ds.f_target.values, np.tanh(xs + 1), atol=1e-14)
    assert np.all(ds.loss_end.values <= 1e-15) and np.all(ds.status.values == 0)
    idx = [int(np.argmin(np.abs(xs - x))) for x in ds.x_train.values]
    np.testing.assert_allclose(xs[idx], ds.x_train.values, atol=1e-12)
    resid = np.abs(ds.f_learned.values[..., idx] - ds.y_train.values)
    assert np.all(resid <= np.sqrt(2 * 1e-15) * (1 + 1e-6))
    j = list(ds.width.values).index(10)
    C, mag = ds.abs_C0.values[j, :10], ds.magnitude.values[0, j, :10]
    assert np.argmax(mag) == np.argmax(C)
    assert np.all(np.isnan(ds.magnitude.values[0, 0, 2:]))  # m = 2 padded
    assert claims[0].agree


def test_fig7_fixed_c_collapse(fig7):
    """c = C1/C2 fixed per subfigure (c̃ = 0.25 and 0.9 exactly, to round-off); the trials of
    one c collapse faster than ‖C‖^{1/2}; different c end at different points."""
    ds, claims = fig7
    assert ds.sizes["c"] == 2 and set(ds.theta_flow.dims) == {"c", "trial", "tau_index",
                                                              "param"}
    ratio = ds.C0.values[..., 0] / ds.C0.values[..., 1]
    np.testing.assert_allclose(ratio, np.broadcast_to(ds.c.values[:, None], ratio.shape),
                               rtol=1e-12)
    np.testing.assert_allclose(ds.c_tilde.values, [[0.25] * ds.sizes["trial"],
                                                   [0.9] * ds.sizes["trial"]], rtol=1e-12)
    for i in range(2):
        _collapse_checks(ds.isel(c=i))
    assert all(c.agree for c in claims)

"""The phase-law analysis of ``flowtools.experiments.cnn_law`` on edges with known answers:
the logarithmic form's root, local slopes of a power law, the collapse of a K-only edge,
the verdicts, and the two forms' fits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flowtools.experiments.cnn_law import (
    LawSettings,
    collapse,
    compare_forms,
    local_slopes,
    log_form_x,
    verdict,
)


def _law(edge_of, s: LawSettings, dns, ms, seeds=(0, 1, 2), noise=0.0):
    """A dataset like ``edges`` with edge = edge_of(dn, m, v0, K) (times seed noise)."""
    import xarray as xr

    K = np.asarray(s.Ks)
    rng = np.random.default_rng(0)
    e = np.empty((len(dns), len(ms), len(seeds), len(K)))
    v = np.empty_like(e)
    for a, dn in enumerate(dns):
        for b, m in enumerate(ms):
            v0 = s.v0s(dn, m)
            v[a, b] = v0
            e[a, b] = edge_of(dn, m, v0, K) * np.exp(noise * rng.standard_normal(
                (len(seeds), len(K))))
    dims = ("dn", "m", "seed", "K")
    return xr.Dataset({"edge": (dims, e), "v0": (dims, v)},
                      coords=dict(dn=np.asarray(dns, float), m=np.asarray(ms),
                                  seed=np.asarray(seeds), K=K))


def test_log_form_root_inverts_the_equation():
    """K built from x by log(1/K) = log(A·x)/(1 − x) gives x back to round-off."""
    A = 2.5
    x = np.array([0.05, 0.2, 0.39, 0.41, 0.6, 0.9, 0.99])  # K > 1 below x = 1/A, < 1 above
    K = np.exp(-np.log(A * x) / (1 - x))
    np.testing.assert_allclose(log_form_x(K, A), x, rtol=1e-12)


def test_local_slopes_of_a_power_law_are_its_exponent():
    s = LawSettings()
    law = _law(lambda dn, m, v0, K: 3.0 * v0 ** -0.7, s, [50], [10])
    sl = local_slopes(law, 50, 10)
    np.testing.assert_allclose(sl["mean"], -0.7, rtol=1e-12)
    np.testing.assert_allclose(sl["stderr"], 0.0, atol=1e-12)
    assert sl["steepest"] == pytest.approx(-0.7, rel=1e-12) and sl["seeds"] == 3


def test_local_slopes_find_the_steep_interval_with_seed_noise():
    """edge = v0^-1 on one interval, flat elsewhere: the steepest slope is −1 (± its s.e.)."""
    s = LawSettings()

    def edge(dn, m, v0, K):
        lv = np.log(v0)
        mid = lv[5:7]
        return np.exp(-np.clip(lv, mid[0], mid[1]))

    law = _law(edge, s, [500], [10], noise=0.002)
    sl = local_slopes(law, 500, 10)
    assert abs(sl["steepest"] + 1) < 4 * sl["steepest_stderr"] + 0.02
    assert abs(sl["mean"][0]) < 0.05


def test_an_edge_of_K_alone_collapses_and_one_of_v0_does_not():
    s = LawSettings()
    law = _law(lambda dn, m, v0, K: math.sqrt(dn) * (1 + 1 / (1 + K)), s, [50], [3, 10, 40])
    c = collapse(law, 50)
    assert c["at_equal_K"] == pytest.approx(0.0, abs=1e-12) and c["at_equal_v0"] > 0.1
    law = _law(lambda dn, m, v0, K: math.sqrt(dn) * (1 + 1 / (1 + 100 * v0)), s, [50],
               [3, 10, 40])
    c = collapse(law, 50)
    assert c["at_equal_v0"] < 1e-2 < c["at_equal_K"]


@pytest.mark.parametrize(("steepest", "se", "prev", "expect"), [
    (-0.98, 0.03, -0.9, "consistent with −1"),
    (-0.52, 0.02, -0.50, "levels near −0.5"),
    (-0.75, 0.02, -0.6, "−1 not reached at d/n ≤ 10000"),
])
def test_verdicts(steepest, se, prev, expect):
    assert verdict(steepest, se, prev, 10000) == expect


def test_the_log_form_fits_its_own_edges_better_than_a_power_law():
    s = LawSettings()
    A = 1.7

    def edge(dn, m, v0, K):
        return math.sqrt(dn) * log_form_x(K, A)

    law = _law(edge, s, [500], [10])
    f = compare_forms(law, 500, 10, 1.0)
    assert f["A"] == pytest.approx(A, rel=1e-8)
    assert f["rms_log"] < 1e-8 < f["power_rms_log"]


def test_m_identical_filters_are_one_filter_at_sqrt_m_v0():
    """Why the edge depends on m and v0 through m·v0²: m filters started identical stay
    identical, and (W, v) of m copies act as one filter with √m·w and √m·v (F and the
    gradient steps agree): GD on both gives the same outputs to round-off."""
    import flowtools as ft
    from flowtools.models.relu_cnn import PatchData, ReluCNN

    data = PatchData.draw(n=8, d=40, mu_norm=3.0, seed=1, n_test=50)
    m, v0 = 4, 0.05
    w = 0.01 * np.random.default_rng(2).standard_normal((2, 1, 40))
    one, many = ReluCNN(data, width=1), ReluCNN(data, width=m)
    th1 = one.join(math.sqrt(m) * w, np.full((2, 1, 2), math.sqrt(m) * v0))
    thm = many.join(np.repeat(w, m, axis=1), np.full((2, m, 2), v0))
    np.testing.assert_allclose(one.output(th1, data.y_test, data.xi_test),
                               many.output(thm, data.y_test, data.xi_test), rtol=1e-13,
                               atol=1e-16)
    g1 = ft.run_gd(one, th1, lr=0.05, max_iter=400, loss_threshold=0.0)
    gm = ft.run_gd(many, thm, lr=0.05, max_iter=400, loss_threshold=0.0)
    f1 = np.asarray(one.output(g1.theta_final, data.y_test, data.xi_test))
    fm = np.asarray(many.output(gm.theta_final, data.y_test, data.xi_test))
    assert np.max(np.abs(f1)) > 1.0  # trained: the outputs moved far from 0
    np.testing.assert_allclose(f1, fm, rtol=1e-10, atol=1e-10 * np.max(np.abs(f1)))
    clear = np.abs(f1) > 1e-8 * np.max(np.abs(f1))  # the sign is decided off round-off
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(np.sign(f1[clear]), np.sign(fm[clear]))

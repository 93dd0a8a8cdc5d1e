"""The experiments layer and the project's one slope fitter (``flowtools.fitting``)."""

from __future__ import annotations

import numpy as np
import pytest

from flowtools.fitting import fit_slope


# ----------------------------------------------------------------------------- fit_slope
@pytest.mark.parametrize("p, c", [(2.0, 3.0), (-1.0, 0.5), (0.37, 1e-8)])
def test_fit_slope_exact_power_laws(p, c):
    x = np.logspace(-6, 2, 9)
    f = fit_slope(x, c * x**p)
    assert abs(f.slope - p) < 1e-12 and abs(np.exp(f.intercept) / c - 1) < 1e-10
    assert f.n == 9 and f.stderr < 1e-12
    np.testing.assert_allclose(f.line(x), c * x**p, rtol=1e-10)


def test_fit_slope_linear_axes_and_semilog():
    x = np.linspace(-3, 5, 7)
    f = fit_slope(x, 4.0 - 2.5 * x, logx=False, logy=False)
    assert abs(f.slope + 2.5) < 1e-13 and abs(f.intercept - 4.0) < 1e-13
    g = fit_slope(x, 2.0 * np.exp(0.7 * x), logx=False)  # exponential: semilog slope = rate
    assert abs(g.slope - 0.7) < 1e-13 and abs(np.exp(g.intercept) - 2.0) < 1e-12


def test_fit_slope_stderr_matches_polyfit_covariance():
    """se(s)² = Σr²/(N−2)/Σ(u−ū)², numpy.polyfit's scaled covariance; weights w ↔ polyfit's
    w = √w; the standard error is invariant to scaling the weights."""
    rng = np.random.default_rng(0)
    x = np.linspace(0.0, 1.0, 12)
    y = 1.5 * x + 0.2 + 0.05 * rng.standard_normal(x.size)
    f = fit_slope(x, y, logx=False, logy=False)
    coef, cov = np.polyfit(x, y, 1, cov=True)
    assert abs(f.slope - coef[0]) < 1e-13 and abs(f.intercept - coef[1]) < 1e-13
    assert abs(f.stderr - np.sqrt(cov[0, 0])) < 1e-13
    w = rng.uniform(0.5, 2.0, x.size)
    fw = fit_slope(x, y, logx=False, logy=False, weights=w)
    coef, cov = np.polyfit(x, y, 1, w=np.sqrt(w), cov=True)
    assert abs(fw.slope - coef[0]) < 1e-13 and abs(fw.stderr - np.sqrt(cov[0, 0])) < 1e-13
    assert abs(fit_slope(x, y, logx=False, logy=False, weights=7 * w).stderr
               - fw.stderr) < 1e-14


def test_fit_slope_groups_share_one_slope():
    """Lines of slope 2 with different intercepts: one slope, one intercept each; a group
    with a single usable point is dropped (it carries no slope information)."""
    x = np.tile(np.logspace(-3, 0, 5), 3)
    g = np.repeat([0, 1, 2], 5)
    y = np.array([1.0, 10.0, 0.1])[g] * x**2
    y[10:14] = np.nan  # group 2 keeps one point
    f = fit_slope(x, y, groups=g)
    assert abs(f.slope - 2) < 1e-12 and f.n == 10 and len(f.intercepts) == 2
    np.testing.assert_allclose(np.exp(f.intercepts), [1.0, 10.0], rtol=1e-10)
    assert np.isnan(f.intercept)
    # one line of slope 1 through two groups: a single-intercept fit would see no line
    u = np.array([0.0, 1.0, 10.0, 11.0])
    v = np.array([0.0, 1.0, -5.0, -4.0])
    assert abs(fit_slope(u, v, logx=False, logy=False, groups=[0, 0, 1, 1]).slope - 1) < 1e-14


def test_fit_slope_nan_and_degenerate_inputs():
    nan = fit_slope([1.0, 2.0, 3.0], [1.0, np.nan, -2.0])  # one usable point on log axes
    assert np.isnan(nan.slope) and np.isnan(nan.stderr) and nan.n == 0
    assert np.isnan(fit_slope([], []).slope)
    assert np.isnan(fit_slope([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]).slope)  # all x equal
    two = fit_slope([1.0, 10.0], [1.0, 100.0])  # exact through two points
    assert abs(two.slope - 2) < 1e-14 and two.stderr == np.inf and two.n == 2
    f = fit_slope([1.0, 2.0, 4.0, 0.0, np.inf], [1.0, 2.0, 4.0, 5.0, 6.0])
    assert f.n == 3 and abs(f.slope - 1) < 1e-14
    with pytest.raises(ValueError, match="same number"):
        fit_slope([1.0, 2.0], [1.0])

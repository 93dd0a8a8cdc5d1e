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


# ----------------------------------------------------------------------------- alignment
def test_gd_time_shift_uses_gds_own_escape_rate():
    """Linearized GD multiplies the top mode by (1 + ημ1) per iteration, so ‖C(θ_k)‖ =
    (1 + ημ1)^k‖C(θ0)‖ and log‖C(θ_k)‖ = ρ·τ_k with τ_k = kη + s(θ0), ρ = log(1 + ημ1)/η:
    aligned GD times of runs from different scales and seeds agree to round-off while θ is
    small, where the flow's μ1 shift leaves them log‖C‖·(1/ρ − 1/μ1) apart."""
    import flowtools as ft
    from flowtools.experiments import time_shift

    pb, lr = ft.example1(), 0.1
    theta0 = np.stack([pb.init_ratio(0.5, 1e-14, seed=0), pb.init_ratio(0.5, 1e-22, seed=3)])
    gd = ft.run_gd(pb, theta0, lr, max_iter=200, n_save=201, loss_threshold=0.0)
    s = time_shift(pb, theta0, lr=lr)
    rho = ft.escape_rate(pb, lr)
    for i in range(2):
        ts, th, _ = gd[i].valid()
        small = np.linalg.norm(th, axis=-1) < 1e-7  # the linear phase (relative error ‖θ‖²)
        assert small.sum() > 20
        logC = np.log(np.linalg.norm(pb.imbalance(th[small]), axis=-1))
        assert np.max(np.abs(logC / rho - (ts[small] + s[i]))) < 1e-10
    mu_shift = time_shift(pb, theta0)
    assert abs(np.diff(s - mu_shift)[0]) > 0.5  # the μ1 shift would misalign them
    np.testing.assert_allclose(mu_shift, ft.aligned_times(pb, np.zeros((2, 1)), theta0)[:, 0],
                               rtol=1e-14)


def test_aligned_gd_runs_coincide_on_the_aligned_grid():
    """The same statement through ``aligned_gd``: in the linear phase the resampled runs
    from scales 1e-14 and 1e-22 have ‖C(θ(τ))‖ = e^{ρτ} for both (to the resampling error)."""
    import flowtools as ft
    from flowtools.experiments import aligned_gd, time_shift

    pb, lr = ft.example1(), 0.01  # the spline's error on e^{ρt} is ~(ρη)⁴/384 ≈ 1e-8
    theta0 = np.stack([pb.init_ratio(0.5, 1e-14, seed=0), pb.init_ratio(0.5, 1e-22, seed=3)])
    taus = np.linspace(time_shift(pb, theta0, lr=lr).max(), -4.0, 50)  # ‖C‖ = e^{ρτ} < 1e-7
    runs = aligned_gd(pb, theta0, lr, taus, n_save=2000)
    logC = np.log(np.linalg.norm(pb.imbalance(runs.thetas.reshape(-1, 6)), axis=-1))
    np.testing.assert_allclose(logC.reshape(2, -1), np.broadcast_to(runs.rate * taus, (2, 50)),
                               atol=1e-7)


def test_resample_is_exact_for_cubics_and_blank_outside():
    from flowtools.experiments import resample

    ts = np.linspace(0.0, 2.0, 9)
    th = np.stack([1 + ts, ts**3 - ts], axis=-1)
    taus = np.array([-1.0, 0.5, 1.3, 2.2, 3.0, 5.0])
    out, ls = resample(ts, th, np.exp(-ts), 1.0, taus)  # τ = t + 1 ∈ [1, 3]
    t = taus - 1.0
    inside = (t >= 0) & (t <= 2)
    np.testing.assert_allclose(out[inside], np.stack([1 + t, t**3 - t], -1)[inside], atol=1e-13)
    np.testing.assert_allclose(ls[inside], np.exp(-t[inside]), rtol=1e-13)
    assert np.isnan(out[~inside]).all() and np.isnan(ls[~inside]).all()


def test_escape_time_of_exponential_growth():
    from flowtools.discretization import escape_time

    ts = np.linspace(0.0, 10.0, 11)
    th = 1e-3 * np.exp(0.9 * ts)[:, None] * np.array([0.6, 0.8])
    assert abs(escape_time(ts, th) - np.log(1e3) / 0.9) < 1e-12
    assert abs(escape_time(ts, th, radius=2e-3) - np.log(2.0) / 0.9) < 1e-12
    assert np.isnan(escape_time(ts, th, radius=1e-3))  # starts there: no escape to time
    assert np.isnan(escape_time(ts, th, radius=1e9))


# ----------------------------------------------------------------------------- collapse
def test_collapse_deviation_identical_and_shifted():
    """Identical runs deviate by 0; θ(τ) = e^{τ+δ} against e^{τ} on τ ≤ W deviates by
    e^W(e^δ − 1) in θ, and with ℓ = e^{−2θ} by 2e^W(e^δ − 1)/ln 10 in log10 ℓ."""
    from flowtools.experiments import collapse_deviation, collapse_order

    taus = np.linspace(-2.0, 3.0, 501)
    th = np.stack([np.exp(taus + d)[:, None] for d in (0.2, 0.0, 0.0)])
    ls = np.exp(-2.0 * th[..., 0])
    dev = collapse_deviation(taus, th, ls, window=1.0, loss_floor=0.0)
    assert dev.param[1] == 0 and dev.param[2] == 0 and dev.log10_loss[2] == 0
    assert abs(dev.param[0] - np.e * (np.exp(0.2) - 1)) < 1e-12
    assert abs(dev.log10_loss[0] - 2 * np.e * (np.exp(0.2) - 1) / np.log(10)) < 1e-12
    # a power law of the deviation in ‖C‖ is read back by collapse_order
    C = np.array([1e-2, 1e-4, 1e-6, 1e-8])
    fit = collapse_order(C, 3.0 * C**1.8, floor=1e-16)
    assert abs(fit.slope - 1.8) < 1e-12 and fit.n == 4
    assert np.isnan(collapse_order(C, np.array([1e-3, 1e-9, 1e-14, 0.0]), floor=1e-8).slope)


def test_plot_helpers_draw(tmp_path):
    """The (w, b, a) end-point panel puts both neurons of Q1/Q2 end points on the target's
    geometry (from ``problem.target``); plot_collapse draws one line per run × parameter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import flowtools as ft
    from flowtools.errors import FlowtoolsError
    from flowtools.experiments import AlignedRuns, plot_collapse, plot_endpoints_3d

    pb = ft.example1()
    ends = np.array([[0.3, 1, 1, 0.7, 1, 1], [1, 1, 1, 0, 0.4, -2.0], [-1, -1, -1, 0, 0.4, -2]])
    fig = plt.figure()
    ax = fig.add_subplot(1, 2, 1, projection="3d")
    sc = plot_endpoints_3d(ax, pb, ends, color=np.array([0.9, 0.1, 0.2]), origin=True)
    xyz = np.array(sc._offsets3d).T  # neuron 2 of each end point (the last scatter)
    np.testing.assert_allclose(xyz[0], [1, 1, 0.7])  # on Q1's line w = w0, b = b0
    assert xyz[1, 2] == 0 and np.array_equal(xyz[1], xyz[2])  # Q2's silent neuron; θ ~ −θ
    with pytest.raises(FlowtoolsError, match="Example 1's layout"):
        plot_endpoints_3d(ax, ft.make_problem(6, width=3), np.zeros((1, 9)), color=[0.5])
    taus = np.linspace(0, 10, 20)
    runs = AlignedRuns(taus, np.ones((2, 20, 6)), np.ones((2, 20)), np.zeros(2), 1.0, None, [])
    ax_l, ax_p = fig.add_subplot(2, 2, 2), fig.add_subplot(2, 2, 4)
    plot_collapse(ax_l, ax_p, runs, labels=["a", "b"], names=pb.param_names, linthresh=5.0,
                  xlabel="τ")
    assert len(ax_l.lines) == 2 and len(ax_p.lines) == 12
    plt.close(fig)

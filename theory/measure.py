"""Measurements shared by the theorem modules, built on ``flowtools.limiting``.

* ``limit_of``: h(θ, t) by α-extrapolation (flows from α_k θ, α_k = α_0 4^{−k}, at the
  shifted times t + log(1/α_k)/μ1), with one fixed set of options so that one compiled
  flow serves every call on a problem: ``levels = 7`` (8 flows) and at most 8 times, all
  with e^{μ1 t}‖W1ᵀθ‖ ≥ 1 (then every time uses the same α window).
* ``cauchy``: the Cauchy differences ‖φ(α_{k+1}θ, ·) − φ(α_kθ, ·)‖ of that sequence, and
  ``fit_rate``: their exponent in α (least squares with one intercept per time).
* ``agreement``: max_t ‖h_A − h_B‖/‖h_B‖ against 10 × the two error estimates (the limit
  methods' own, which measure the flows' global error with a reference solve; no
  per-problem calibration). ``error_factor`` reports how the extrapolation's estimate
  compares with the independent manifold method on a direction no claim uses — a check
  printed in the report, used in no tolerance.
* ``curve_distance``: an upper bound of the distance from points to the curve
  {h(θ_B, τ) : τ ∈ ℝ}, found without assuming any time shift (Gauss–Newton on τ, each
  iterate's h(θ_B, τ) recomputed by the limit method).
* ``endpoint``: lim_{t→∞} h(θ, t) by ``flowtools.limiting.limit_endpoint`` with an error
  estimate from a second run at a 100× tighter tolerance.
"""

from __future__ import annotations

import numpy as np

from flowtools.fitting import fit_slope
from flowtools.limiting import LimitResult, limit_endpoint
from flowtools.limiting.entry import limit_system

LEVELS = 7
MAX_TIMES = 8
SAFETY = 10.0  # tolerances are SAFETY × the methods' own error estimates


def limit_of(case, theta, ts, *, method="extrapolate", cache=None):
    """h(case, θ, ts) (a ``LimitResult``), memoized in ``cache`` (a dict) if given."""
    ts = np.atleast_1d(np.asarray(ts, dtype=float))
    key = (case.name, np.asarray(theta).tobytes(), ts.tobytes(), method)
    if cache is not None and key in cache:
        return cache[key]
    opts = dict(levels=LEVELS) if method == "extrapolate" else {}
    if len(ts) > MAX_TIMES and method == "extrapolate":
        parts = [limit_of(case, theta, ts[i:i + MAX_TIMES], method=method, cache=cache)
                 for i in range(0, len(ts), MAX_TIMES)]
        res = LimitResult.concatenate(parts)
    else:  # the case's FlowSystem, built once (what limit / limit_field would build)
        res = limit_system(case.system, theta, ts, method, opts)
    if cache is not None:
        cache[key] = res
    return res


def earliest_time(case, theta) -> float:
    """The earliest t with e^{μ1 t}‖W1ᵀθ‖ ≥ 1 (the extrapolation windows then coincide)."""
    s = np.linalg.norm(case.system.coords(theta))
    return max(0.0, -np.log(s) / case.system.mu1) + 1e-9


# ---------------------------------------------------------------------- Cauchy
def cauchy(res):
    """(alphas (L+1,), diffs (T, L) absolute, noise (T,)) of an extrapolate result.

    Every time uses the same window α_0 … α_L (see ``limit_of``); noise is the flows'
    measured error per entry, max_k ‖φ_rtol − φ_rtol/10‖ over the sequence (the limit's
    reference solve), below which differences carry no information."""
    seq = res.sequence  # (T, L+1, p)
    alphas = res.alphas[0]  # (L+1,): the same window at every time
    diffs = np.linalg.norm(np.diff(seq, axis=1), axis=-1)
    ref = res.reference_sequence
    noise = np.max(np.linalg.norm(seq - ref, axis=-1), axis=1)
    return alphas, diffs, noise


def fit_rate(alphas, diffs, noise, *, floor=100.0):
    """Exponent r of diffs ≈ c_t α^r: least squares over the points above floor × noise,
    with one intercept per time (``flowtools.fitting.fit_slope`` with groups). Returns
    (r, standard error, number of points used)."""
    diffs = np.atleast_2d(diffs)
    noise = np.atleast_1d(noise)
    keep = diffs > floor * noise[:, None]
    x = np.broadcast_to(alphas[:-1], diffs.shape)
    groups = np.broadcast_to(np.arange(len(diffs))[:, None], diffs.shape)
    fit = fit_slope(x, np.where(keep, diffs, np.nan), groups=groups)
    return fit.slope, fit.stderr, fit.n


def cauchy_figure(ax, alphas, diffs, noise, ts, rate, bound, title):
    """Cauchy differences against α (log–log) with the fitted and the theorem's slopes."""
    a = alphas[:-1]
    for d, t in zip(diffs, ts, strict=True):
        ax.loglog(a, d, "o-", ms=3, label=f"t = {round(t, 6):.3g}")
    ref_i = int(np.argmax(diffs[:, 0]))
    d0 = diffs[ref_i, 0]
    if np.isfinite(rate):
        ax.loglog(a, d0 * (a / a[0]) ** rate, "k--", lw=1, label=f"fitted slope {rate:.3f}")
    ax.loglog(a, d0 * (a / a[0]) ** bound, "r:", lw=1.5,
              label=f"theorem's slope (μ1−μ2)/(2μ1−μ2) = {bound:.3f}")
    ax.axhline(np.max(noise), color="grey", lw=0.8, ls="-.",
               label="flow error (measured: rtol vs rtol/10)")
    ax.set_xlabel("α (initial scale of θ)")
    ax.set_ylabel("‖φ(α_{k+1}θ, t+log(1/α_{k+1})/μ1) − φ(α_kθ, …)‖")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)


# ---------------------------------------------------------------------- comparisons
def error_factor(case, *, cache=None) -> float:
    """A check of the error estimates, reported, used in no tolerance: max_t ‖h_e − h_m‖ /
    (err_e + err_m) for the two independent methods on a direction no claim uses (seed 99).
    ≤ 1: the estimates bound the difference (much below 1 where both sit at round-off);
    > 1: they were optimistic by that factor. (It was once a calibration κ multiplying the
    tolerances; the limit methods now measure the flows' error themselves.)"""
    key = ("error_factor", case.name)
    if cache is not None and key in cache:
        return cache[key]
    v = case.direction(seed=99)
    ts = earliest_time(case, v) + np.array([0.0, 0.5, 1.0, 2.0, 4.0, 8.0]) / case.system.mu1
    e = limit_of(case, v, ts, cache=cache)
    m = limit_of(case, v, ts, method="manifold", cache=cache)
    ratio = float(np.max(np.linalg.norm(e.thetas - m.thetas, axis=-1) / (e.error + m.error)))
    if cache is not None:
        cache[key] = ratio
    return ratio


def agreement(a, b):
    """(max_t ‖a − b‖/‖b‖, SAFETY × max_t (err_a + err_b)/‖b‖) for two LimitResults on
    the same times (or arrays with errors: (thetas, errors))."""
    ta, ea = (a.thetas, a.error) if hasattr(a, "thetas") else a
    tb, eb = (b.thetas, b.error) if hasattr(b, "thetas") else b
    nb = np.linalg.norm(tb, axis=-1)
    rel = np.linalg.norm(ta - tb, axis=-1) / nb
    return float(np.max(rel)), float(SAFETY * np.max((ea + eb) / nb))


def curve_distance(case, points, errors, theta_b, tau0_grid, *, cache=None, iters=8):
    """Upper bounds of dist(points_j, T_b), T_b = {h(θ_b, τ)}, with their error bars.

    τ starts at the nearest point of h(θ_b, ·) on ``tau0_grid`` and is refined by
    Gauss–Newton, τ ← τ + (x − h)·F(h)/‖F(h)‖² (dh/dτ = F(h)); the reported distance is
    ‖x_j − h(θ_b, τ_j)‖ with h recomputed at the final τ_j, so it bounds the set distance
    from above without assuming where on T_b the point lies. Returns
    (distances (J,), error bars (J,) = SAFETY·(err_x + err_h), τ (J,))."""
    t_min = earliest_time(case, theta_b)
    grid = limit_of(case, theta_b, np.maximum(tau0_grid, t_min), cache=cache)
    dist0 = np.linalg.norm(points[:, None, :] - grid.thetas[None], axis=-1)
    tau = grid.ts[np.argmin(dist0, axis=1)]
    for _ in range(iters):
        res = limit_of(case, theta_b, tau, cache=cache)
        r = points - res.thetas
        F = res.dh_dt
        step = np.sum(r * F, axis=-1) / np.maximum(np.sum(F * F, axis=-1), 1e-300)
        new = np.maximum(tau + step, t_min)
        moved = np.abs(new - tau) * np.linalg.norm(F, axis=-1)
        tau = new
        if np.all(moved <= 0.01 * (errors + res.error)):
            break
    res = limit_of(case, theta_b, tau, cache=cache)
    d = np.linalg.norm(points - res.thetas, axis=-1)
    return d, SAFETY * (errors + res.error), tau


# ---------------------------------------------------------------------- end points
def endpoint(case, theta, *, start_t=0.5, rtol=1e-10, start_theta=None):
    """lim_{t→∞} h(θ, t): h(θ, start_t) by extrapolation (or ``start_theta``), then the
    flow to ℓ ≤ 1e-15."""
    return limit_endpoint(case.problem, theta, method="extrapolate", start_t=start_t,
                          rtol=rtol, start_theta=start_theta)


def endpoint_with_error(case, theta, *, start_t=0.5):
    """(end point, error estimate = ‖E(rtol 1e-10) − E(rtol 1e-12)‖, the LimitEndpoint):
    one start point h(θ, start_t), the flow from it at both tolerances."""
    e2 = endpoint(case, theta, start_t=start_t, rtol=1e-12)
    e1 = endpoint(case, theta, start_t=start_t, rtol=1e-10, start_theta=e2.start_theta)
    return e2.theta, float(np.linalg.norm(e1.theta - e2.theta)), e2

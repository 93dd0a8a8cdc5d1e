"""Slopes: the one least-squares line fitter of the project (orders, exponents, rates).

``fit_slope(x, y)`` fits y ≈ s·x + b (by default on log–log axes, log y ≈ s·log x + b) by
(weighted) least squares over the usable points and returns a ``SlopeFit`` with the slope,
the intercept, the standard error of the slope and the number of points used. With
``groups`` it fits one common slope and one intercept per group (a "fixed-effects" line:
Cauchy differences at several times, each time with its own constant).

Formulas (u = log x or x, v = log y or y; weights w_i, default 1; ū_g, v̄_g the weighted
means over group g):

    s  = Σ w (u − ū_g)(v − v̄_g) / S,      S = Σ w (u − ū_g)²,
    b_g = v̄_g − s·ū_g,
    se(s)² = Σ w r² / (N − G − 1) / S,   r = v − b_g − s·u,

N points in G groups (G = 1 without ``groups``). This is numpy.polyfit's scaled covariance
(``cov=True``) for one group; the weights multiply squared residuals (polyfit's ``w`` is
their square root). Used points: finite x, y and weights, weights > 0, x > 0 on a log x
axis and y > 0 on a log y axis; groups with fewer than 2 such points carry no slope
information and are dropped. Fewer than 2 points (or all u equal): slope NaN. No residual
degree of freedom (N = G + 1, e.g. two points): the line is exact and se is ``inf`` (its
uncertainty is unknown, not zero).

>>> import numpy as np
>>> x = np.array([1.0, 2.0, 4.0, 8.0])
>>> f = fit_slope(x, 3 * x**2)
>>> round(f.slope, 12), round(float(np.exp(f.intercept)), 12), f.n
(2.0, 3.0, 4)
>>> fit_slope([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], logx=False, logy=False).slope
2.0
>>> bool(np.isnan(fit_slope([1.0, 2.0], [1.0, np.nan]).slope))
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SlopeFit", "fit_slope"]


@dataclass(frozen=True)
class SlopeFit:
    """A fitted line v ≈ slope·u + intercept (u, v the possibly log-transformed data).

    ``stderr`` is the standard error of the slope (``inf`` with no residual degree of
    freedom, NaN when no slope was fitted); ``n`` the number of points used. With groups,
    ``intercepts`` holds one intercept per group used (in sorted group order) and
    ``intercept`` is NaN unless exactly one group was used. ``logx``/``logy``: the axes
    of the fit, which ``line`` uses.
    """

    slope: float
    intercept: float
    stderr: float
    n: int
    intercepts: tuple[float, ...] = ()
    logx: bool = True
    logy: bool = True

    def line(self, x):
        """The fitted line at x, y = e^b x^s on log–log axes (b + s·x on linear ones)."""
        u = np.log(x) if self.logx else np.asarray(x, float)
        v = self.slope * u + self.intercept
        return np.exp(v) if self.logy else v


def fit_slope(x, y, *, logx=True, logy=True, weights=None, groups=None) -> SlopeFit:
    """Least-squares slope of y against x (log–log by default); see the module docstring.

    ``x``, ``y``: arrays of one shape (any shape: they are flattened). ``weights``: the
    same shape, multiplying the squared residuals. ``groups``: labels of the same shape,
    one intercept per label. Points that are not usable (non-finite, or non-positive on a
    log axis) are ignored, so NaN marks a point to leave out.
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same number of points, got {x.size} and "
                         f"{y.size}.")
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float).ravel()
    g = np.zeros(x.shape, dtype=int) if groups is None else np.asarray(groups).ravel()
    if w.shape != x.shape or g.shape != x.shape:
        raise ValueError("`weights` and `groups` must have the same number of points as x.")
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(w) & (w > 0)
    if logx:
        keep &= x > 0
    if logy:
        keep &= y > 0
    labels, counts = np.unique(g[keep], return_counts=True)
    labels = labels[counts >= 2]
    keep &= np.isin(g, labels)
    nan = SlopeFit(float("nan"), float("nan"), float("nan"), 0, (), logx, logy)
    if keep.sum() < 2:
        return nan
    u = np.log(x[keep]) if logx else x[keep]
    v = np.log(y[keep]) if logy else y[keep]
    w, g = w[keep], g[keep]
    du, dv, means = np.empty_like(u), np.empty_like(v), []
    for lab in labels:
        k = g == lab
        mu, mv = np.average(u[k], weights=w[k]), np.average(v[k], weights=w[k])
        du[k], dv[k] = u[k] - mu, v[k] - mv
        means.append((mu, mv))
    S = float(np.sum(w * du * du))
    if not S > 0:
        return nan
    s = float(np.sum(w * du * dv) / S)
    intercepts = tuple(float(mv - s * mu) for mu, mv in means)
    dof = u.size - len(labels) - 1
    r = dv - s * du
    se = float(np.sqrt(np.sum(w * r * r) / dof / S)) if dof > 0 else float("inf")
    return SlopeFit(slope=s, intercept=intercepts[0] if len(labels) == 1 else float("nan"),
                    stderr=se, n=int(u.size), intercepts=intercepts, logx=logx, logy=logy)

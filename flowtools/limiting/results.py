"""Typed results of the limit: ``LimitResult`` (h on a time grid) and ``LimitEndpoint``.

A ``LimitResult`` carries h(θ, t), its derivative dh/dt = F(h) (Proposition 1: the
limiting trajectory is a trajectory of the flow), the error estimate with its three parts
(``ErrorParts``), the observed rate beside Theorem 3's bound, and each method's own data
as typed fields: the α-sequence of the extrapolation (``sequence``, ``reference_sequence``,
``alphas``, ``exponents``), the series of the manifold method (``series``: a
``ManifoldSeries``). ``info`` keeps only the settings. A ``LimitEndpoint`` is lim_{t→∞} h
as reached by the flow's stopping rules, with the flow's ``Status``.

    >>> import flowtools as ft, numpy as np
    >>> from flowtools.limiting import limit
    >>> pb = ft.example1()
    >>> res = limit(pb, pb.init_ratio(0.5, 1.0, seed=0), [0.0, 1.0], method="manifold")
    >>> res.dh_dt.shape, res.sequence is None, res.series.t0 < 0
    ((2, 6), True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np

from flowtools.errors import FlowtoolsError
from flowtools.status import Status


@dataclass(frozen=True, eq=False)
class ErrorParts:
    """The three parts of ``LimitResult.error`` (each (T,), absolute, 2-norm; they add up).

    Attributes:
        truncation: the method's own truncation — the extrapolation's last Richardson
            difference times q^r/(1 − q^r), or the series' truncation error (manifold).
        flow: the flows' global error, measured against a reference solve at
            rtol/``REF_RATIO`` (``flowtools.limiting.reference``).
        round_off: the floor of what both solves share (rounded save times and α_k).
    """

    truncation: np.ndarray
    flow: np.ndarray
    round_off: np.ndarray


@dataclass(frozen=True, eq=False)
class ManifoldSeries:
    """The parametrization P(τσ) = Σ_n τ^n Q_n of the manifold method, along one ray.

    Attributes:
        coefficients: (order, p), row n−1 is Q_n (``flowtools.limiting.manifold``).
        t0: the limiting time up to which h is the series (beyond: the flow from P(τ0)).
        tau0: τ at t0 (truncation error ≤ ``tol`` there, and at most half the radius).
        radius: the root-test estimate of the series' radius of convergence in τ.
    """

    coefficients: np.ndarray
    t0: float
    tau0: float
    radius: float


@dataclass(frozen=True, eq=False)
class LimitResult:
    """h(θ, t) on a grid of times.

    Attributes:
        ts: (T,) limiting times t.
        thetas: (T, p) h(θ, t).
        error: (T,) estimated error ‖ĥ − h‖ (2-norm, absolute): truncation + the flows'
            global error measured against a reference solve at rtol/10 + a round-off floor
            (``error_parts``; see ``flowtools.limiting.reference``).
        rate: (T,) observed rate of convergence in α (extrapolate; NaN where the sequence
            was at the noise floor, and for the manifold method).
        rate_bound: Theorem 3's rate (μ1 − μ2)/(2μ1 − μ2).
        method: "extrapolate" or "manifold".
        mu1, mu2: the eigenvalues used.
        dh_dt: (T, p) F(h), the derivative of h (Proposition 1).
        error_parts: the three parts of ``error`` (``ErrorParts``).
        sequence: (T, L+1, p) the flows φ(α_j θ, t + log(1/α_j)/μ1) that were extrapolated
            (extrapolate; None for the manifold method).
        reference_sequence: the same at rtol/``REF_RATIO`` (extrapolate; None otherwise).
        alphas: (T, L+1) the α_j of each entry of ``sequence`` (extrapolate; None
            otherwise). Each time has its own window of α.
        exponents: the exponents eliminated at each time, one tuple per time (extrapolate;
            None otherwise).
        series: the manifold method's ``ManifoldSeries`` (None for extrapolate).
        wall_time, compile_time: seconds (compile time of the flows and of the series).
        reference_wall_time: the part of ``wall_time`` spent on the reference solves.
        total_time: seconds of the whole call.
        info: the settings (tolerances, α grid, series order, …).
    """

    ts: np.ndarray
    thetas: np.ndarray
    error: np.ndarray
    rate: np.ndarray
    rate_bound: float
    method: str
    mu1: float
    mu2: float
    dh_dt: np.ndarray
    error_parts: ErrorParts
    sequence: np.ndarray | None = None
    reference_sequence: np.ndarray | None = None
    alphas: np.ndarray | None = None
    exponents: tuple | None = None
    series: ManifoldSeries | None = None
    wall_time: float = 0.0
    compile_time: float = 0.0
    reference_wall_time: float = 0.0
    total_time: float = 0.0
    info: dict = field(default_factory=dict)

    @property
    def rel_error(self) -> np.ndarray:
        """error / ‖h‖."""
        return self.error / np.linalg.norm(self.thetas, axis=-1)

    @property
    def observed_rate(self) -> float:
        """The median of the per-time observed rates (NaN if none was measurable)."""
        r = self.rate[np.isfinite(self.rate)]
        return float(np.median(r)) if r.size else float("nan")

    @classmethod
    def concatenate(cls, parts) -> LimitResult:
        """One result from results of one method for one θ on consecutive time grids (the
        per-time arrays joined; times, settings and the series are those of the parts)."""
        parts = list(parts)
        if not parts:
            raise FlowtoolsError("concatenate needs at least one LimitResult.")
        first = parts[0]
        if any(p.method != first.method or p.mu1 != first.mu1 for p in parts):
            raise FlowtoolsError("concatenate joins results of one method on one system.")

        def cat(name):
            vals = [getattr(p, name) for p in parts]
            return None if vals[0] is None else np.concatenate(vals)

        per_time = {k: cat(k) for k in ("ts", "thetas", "error", "rate", "dh_dt", "sequence",
                                        "reference_sequence", "alphas")}
        parts_err = ErrorParts(*(np.concatenate([getattr(p.error_parts, f.name) for p in parts])
                                 for f in fields(ErrorParts)))
        exps = None if first.exponents is None else sum((p.exponents for p in parts), ())
        return replace(first, **per_time, error_parts=parts_err, exponents=exps,
                       **{k: sum(getattr(p, k) for p in parts)
                          for k in ("wall_time", "compile_time", "reference_wall_time",
                                    "total_time")})

    def at(self, t) -> np.ndarray:
        """h at time(s) t inside [min ts, max ts] by cubic Hermite interpolation with the
        derivatives dh/dt = F(h) (Proposition 1); an error outside the computed range."""
        t = np.asarray(t, dtype=float)
        lo, hi = float(np.min(self.ts)), float(np.max(self.ts))
        if np.any(~np.isfinite(t)) or np.any(t < lo) or np.any(t > hi):
            raise FlowtoolsError(
                f"t = {t} is beyond the computed range [{lo:.6g}, {hi:.6g}] of this limiting "
                "trajectory; compute h on a grid that contains it (or use limit_endpoint "
                "for t → ∞)."
            )
        from scipy.interpolate import CubicHermiteSpline

        order = np.argsort(self.ts)
        ts, th = self.ts[order], self.thetas[order]
        keep = np.concatenate([[True], np.diff(ts) > 0])
        if keep.sum() == 1:
            return np.broadcast_to(th[0], t.shape + th.shape[-1:]).copy()
        dth = self.dh_dt[order][keep]
        return CubicHermiteSpline(ts[keep], th[keep], dth, axis=0)(t)

    def summary(self) -> str:
        lines = [
            f"h(θ, t) by {self.method}: μ1 = {self.mu1:.6g}, μ2 = {self.mu2:.6g}, rate bound "
            f"(μ1−μ2)/(2μ1−μ2) = {self.rate_bound:.4g}, observed rate "
            f"{self.observed_rate:.4g}; {self.wall_time:.3g} s (+{self.compile_time:.3g} s "
            "compile)",
            f"{'t':>10}  {'‖h‖':>12}  {'rel. error':>10}  {'rate':>7}  h",
        ]
        for t, th, e, r in zip(self.ts, self.thetas, self.rel_error, self.rate, strict=True):
            vals = " ".join(f"{v:+.10e}" for v in th)
            lines.append(f"{t:10.4g}  {np.linalg.norm(th):12.6g}  {e:10.2e}  {r:7.3f}  {vals}")
        return "\n".join(lines)


@dataclass(frozen=True, eq=False)
class LimitEndpoint:
    """lim_{t→∞} h(θ, t) as reached by the flow's stopping rules (Theorem 2).

    Attributes:
        theta, loss: the end point and ℓ there.
        t: the limiting time at which the flow stopped.
        status: the ``Status`` of the flow from the start point (CONVERGED: ℓ ≤ threshold;
            HORIZON: t1 reached first — the end point is then a finite-horizon one;
            STATIONARY: a local minimum above the threshold; failures as in ``Status``).
            An integer code is converted to its ``Status`` (an unknown code raises).
        start_t, start_theta: where on the limiting trajectory the flow started.
        method: the method that gave the start point.
        trajectory: the ``Trajectory`` of that flow (flow time 0 = limiting time start_t).
    """

    theta: np.ndarray
    loss: float
    t: float
    status: Status
    start_t: float
    start_theta: np.ndarray
    method: str
    trajectory: object = None

    def __post_init__(self):
        object.__setattr__(self, "status", Status(int(self.status)))

    @property
    def ok(self) -> bool:
        """True unless the flow failed (``Status.ok``: CONVERGED, HORIZON, STATIONARY)."""
        return self.status.ok

    @property
    def converged(self) -> bool:
        """True if the flow reached ℓ ≤ loss_threshold (a global minimum for ℓ ≥ 0)."""
        return self.status is Status.CONVERGED

    @property
    def message(self) -> str:
        return self.status.message

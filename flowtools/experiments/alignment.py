"""Aligned time: runs from different initial scales on one time axis (Figures 2 and 5).

Near the origin the top mode of the two-layer network grows like e^{ρt}: ρ = μ1 for the
gradient flow, and for GD at learning rate η, whose top mode is multiplied by (1 + ημ1) per
iteration (t = kη), ρ = log(1 + ημ1)/η (``flowtools.discretization.escape_rate``). A run
from θ0 therefore reaches a given size at t ≈ log(1/‖C(θ0)‖)/ρ, and runs with the same
C/‖C‖ fall on one curve against the aligned time

    τ = t + s(θ0),   s(θ0) = log‖C(θ0)‖ / ρ        (``time_shift``)

(Theorem 1 for the flow, where s is ``flowtools.limiting.aligned_times`` at t = 0; for GD
the same statement with GD's own rate — the flow's μ1 would leave GD's runs misaligned by
log‖C‖·(1/ρ − 1/μ1)). ``aligned_flow`` and ``aligned_gd`` run a batch of initial states and
return their states and losses on one common τ grid (``AlignedRuns``); when a run first
reaches a radius is ``flowtools.discretization.escape_time``.

>>> import numpy as np
>>> import flowtools as ft
>>> pb = ft.example1()
>>> th0 = pb.init_ratio(0.5, 1e-8, seed=1)
>>> s = time_shift(pb, th0)
>>> bool(abs(s - ft.aligned_times(pb, 0.0, th0)) < 1e-12)
True
>>> bool(time_shift(pb, th0, lr=0.1) < s < 0)   # GD escapes more slowly: a larger shift
True
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from flowtools.descent import run_gd
from flowtools.discretization import escape_rate
from flowtools.flow import solve_flow

__all__ = ["AlignedRuns", "aligned_flow", "aligned_gd", "resample",
           "tau_grid", "time_shift"]


def growth_rate(problem, lr: float | None = None) -> float:
    """ρ: μ1 for the flow (``lr`` None), log(1 + ημ1)/η for GD at learning rate η."""
    return float(problem.mu1) if lr is None else escape_rate(problem, lr)


def time_shift(problem, theta0, *, lr: float | None = None):
    """s(θ0) = log‖C(θ0)‖/ρ (an array over a batch θ0 (B, p)): the aligned time is t + s.

    ρ is μ1 for the flow and GD's escape rate log(1 + ημ1)/η when ``lr`` = η is given. Needs
    the imbalance C(θ) of the two-layer network (``Problem.imbalance``)."""
    C = np.asarray(problem.imbalance(np.asarray(theta0, dtype=float)))
    return np.log(np.linalg.norm(C, axis=-1)) / growth_rate(problem, lr)


def tau_grid(tau0: float, window: float, tau_end: float, *, n_lin: int = 600,
             n_log: int = 200) -> np.ndarray:
    """Aligned save times: ``n_lin`` linear on [tau0, window], then ``n_log`` log-spaced to
    ``tau_end`` (none if ``tau_end`` ≤ ``window``)."""
    lin = np.linspace(tau0, window, n_lin)
    if tau_end <= window:
        return lin
    return np.concatenate([lin, np.geomspace(window, tau_end, n_log + 1)[1:]])


def resample(ts, thetas, losses, shift: float, taus):
    """A record (ts (S,), θ (S, p), ℓ (S,)) on the aligned grid ``taus``: cubic splines in
    τ = t + shift through θ and through log ℓ; NaN outside the record's τ range."""
    from scipy.interpolate import CubicSpline

    taus = np.asarray(taus, dtype=float)
    tau = np.asarray(ts, dtype=float) + shift
    keep = (taus >= tau[0]) & (taus <= tau[-1])
    th = np.full((len(taus), np.shape(thetas)[1]), np.nan)
    ls = np.full(len(taus), np.nan)
    th[keep] = CubicSpline(tau, thetas)(taus[keep])
    logl = np.log(np.maximum(np.asarray(losses, dtype=float), 1e-300))
    ls[keep] = np.exp(CubicSpline(tau, logl)(taus[keep]))
    return th, ls


@dataclass(frozen=True, eq=False)
class AlignedRuns:
    """A batch of runs on one aligned time grid.

    Attributes:
        taus: (S,) the aligned times τ = t + shift.
        thetas: (B, S, p) states at τ (NaN where a run has no record: before its t = 0 or
            after it stopped).
        losses: (B, S) losses at τ.
        shifts: (B,) s(θ0) = log‖C(θ0)‖/rate.
        rate: ρ, μ1 (flow) or log(1 + ημ1)/η (GD).
        lr: GD's learning rate, None for the flow.
        runs: the flow's ``Trajectory`` per member (a list) or GD's batched ``Trajectory``.
    """

    taus: np.ndarray
    thetas: np.ndarray
    losses: np.ndarray
    shifts: np.ndarray
    rate: float
    lr: float | None
    runs: object = field(repr=False)

    def flipped(self, signs) -> AlignedRuns:
        """The runs with member i's states multiplied by signs[i] (for an odd σ, θ and −θ
        run along mirror images: show each in one orientation)."""
        signs = np.asarray(signs, dtype=float)
        return replace(self, thetas=self.thetas * signs[:, None, None])


def aligned_flow(problem, theta0, taus, *, loss_threshold: float = 1e-15,
                 max_steps: int = 100_000, **solve_options) -> AlignedRuns:
    """The gradient flow from each θ0 (B, p), saved exactly at t = τ − s(θ0) (NaN where that
    t < 0). One solve per member, one compilation; ``solve_options`` go to ``solve_flow``."""
    theta0 = np.atleast_2d(np.asarray(theta0, dtype=float))
    taus = np.asarray(taus, dtype=float)
    shifts = time_shift(problem, theta0)
    thetas = np.full((len(theta0), len(taus), theta0.shape[1]), np.nan)
    losses = np.full((len(theta0), len(taus)), np.nan)
    runs = []
    for i, (th0, s) in enumerate(zip(theta0, shifts, strict=True)):
        before = taus - s < 0  # saved at t = 0 (one shape for every member), then blanked
        ts = np.maximum(taus - s, 0.0)
        tr = solve_flow(problem, th0, t1=float(ts[-1]), save_ts=ts,
                        loss_threshold=loss_threshold, max_steps=max_steps, **solve_options)
        thetas[i], losses[i] = tr.thetas, tr.losses
        thetas[i, before], losses[i, before] = np.nan, np.nan
        runs.append(tr)
    return AlignedRuns(taus, thetas, losses, shifts, growth_rate(problem), None, runs)


def aligned_gd(problem, theta0, lr: float, taus, *, max_iter: int | None = None,
               n_save: int = 20_000, loss_threshold: float = 1e-15) -> AlignedRuns:
    """GD at learning rate ``lr`` from each θ0 (B, p) (iterate k at t = k·lr), shifted with
    GD's own escape rate and resampled onto ``taus`` (``resample``). ``max_iter`` defaults
    to the iterations that reach the last τ for every member."""
    theta0 = np.atleast_2d(np.asarray(theta0, dtype=float))
    taus = np.asarray(taus, dtype=float)
    shifts = time_shift(problem, theta0, lr=lr)
    if max_iter is None:
        max_iter = int(np.ceil((taus[-1] - shifts.min()) / lr)) + 1
    gd = run_gd(problem, theta0, lr, max_iter=max_iter, loss_threshold=loss_threshold,
                n_save=n_save)
    rows = [resample(*gd[i].valid(), shifts[i], taus) for i in range(len(theta0))]
    thetas, losses = (np.stack(v) for v in zip(*rows, strict=True))
    return AlignedRuns(taus, thetas, losses, shifts, growth_rate(problem, lr), float(lr), gd)

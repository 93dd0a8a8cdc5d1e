"""The time axis: flows and GD runs from any initial scale placed on the limit's time axis.

For small θ0, φ(θ0, t) ≈ h(θ0, t) = h(θ0/‖C(θ0)‖·r, t + log(‖C(θ0)‖/r)/μ1) (Corollary 2:
h(sθ, t) = h(θ, t + log(s)/μ1)), so runs from different scales and seeds but equal C/‖C‖
fall on one curve when plotted against τ = t + log(‖C(θ0)‖/r)/μ1 (the paper's Figures 2
and 5). C(θ) and μ1 are those of the two-layer family.
"""

from __future__ import annotations

import numpy as np

from flowtools.errors import FlowtoolsError
from flowtools.models import AbstractModel
from flowtools.trajectory import Trajectory


def aligned_times(problem, ts, theta0=None, *, reference: float = 1.0):
    """Shift flow (or GD) times onto the limiting time axis of the unit-‖C‖ direction:

        τ = t + log(‖C(θ0)‖ / r) / μ1,      r = ``reference``.

    ``ts`` may be an array ((…, S), with θ0 (…, p)) or a ``Trajectory``, whose θ0 is then
    its first saved state (its t = 0). ``problem`` must be the two-layer network (C(θ) and
    μ1 are its theory quantities; other models are refused with an ``AssumptionError``).

    >>> import flowtools as ft
    >>> pb = ft.example1()
    >>> th0 = pb.init_ratio(0.5, 1e-8, seed=1)
    >>> tau = aligned_times(pb, [0.0, 1.0], th0)
    """
    if not isinstance(problem, AbstractModel):
        raise FlowtoolsError(f"aligned_times needs a flowtools model (the two-layer Problem), "
                             f"got {type(problem).__name__}.")
    problem.require_theory()
    if isinstance(ts, Trajectory):
        traj = ts
        ts = np.asarray(traj.ts)
        if theta0 is None:
            if not np.all(ts[..., 0] == 0):
                raise FlowtoolsError("the trajectory's first save is not t = 0: pass theta0.")
            theta0 = np.asarray(traj.thetas)[..., 0, :]
    if theta0 is None:
        raise FlowtoolsError("aligned_times needs θ0 (or a Trajectory saved from t = 0).")
    if not reference > 0:
        raise FlowtoolsError(f"reference must be positive, got {reference}.")
    C = np.linalg.norm(problem.imbalance(theta0), axis=-1)
    if np.any(C == 0):
        raise FlowtoolsError("C(θ0) = 0: this run has no limiting time axis (Theorem 1 (iii)).")
    shift = np.log(C / reference) / problem.mu1
    ts = np.asarray(ts, dtype=float)
    return ts + (shift[..., None] if np.ndim(shift) else shift)

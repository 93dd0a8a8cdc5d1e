"""The outcome vocabulary: ``Status`` (how a flow or GD run ended) and ``Regime`` (GD at one
learning rate against the flow), and the one rule that grants CONVERGED (``decide_status``).

Outcome codes are data, not exceptions: each comes with a message saying what happened and
what to do, and ``ok`` tells a result from a failure.

    >>> from flowtools.status import Regime, Status
    >>> Status.CONVERGED.ok, Status.NOT_MINIMUM.ok, Regime.DIVERGED.ok
    (True, False, False)
    >>> Status.CONVERGED.message
    'reached loss ≤ threshold'
"""

from __future__ import annotations

import enum

import numpy as np


class Outcome(enum.IntEnum):
    """An outcome code (data, not an exception) with a message that says what happened and
    what to do, and whether it is a result (``ok``) or a failure. Its family: ``Status``
    (how a flow or GD run ended) and ``Regime`` (GD at one learning rate against the flow).
    """

    @property
    def message(self) -> str:
        return _OUTCOME_MESSAGES[type(self).__name__, self.name]

    @property
    def ok(self) -> bool:
        return self.name in _OK[type(self).__name__]

    @classmethod
    def flags(cls, missing: str | None = None) -> dict:
        """The codes as CF flag attributes of a stored variable (``flag_values``,
        ``flag_meanings``); ``missing``: the meaning of −1 (a cell not computed), if any.

            >>> Status.flags("not_computed")["flag_meanings"].split()[:3]
            ['not_computed', 'converged', 'horizon']
        """
        values = ([-1] if missing else []) + [int(s) for s in cls]
        names = ([missing] if missing else []) + [s.name.lower() for s in cls]
        return {"flag_values": values, "flag_meanings": " ".join(names)}


class Status(Outcome):
    """How a flow or GD run ended (``Trajectory.status``)."""

    CONVERGED = 0
    HORIZON = 1
    MAX_STEPS = 2
    NONFINITE = 3
    SOLVER_FAILED = 4
    STATIONARY = 5
    NOT_MINIMUM = 6


_MESSAGES = {
    Status.CONVERGED: "reached loss ≤ threshold",
    Status.HORIZON: "reached the time horizon (or the iteration limit) with the loss "
    "still above the threshold: raise `t1` (solve_flow: or leave it None, no "
    "horizon) / `max_iter` if the loss is still falling",
    Status.STATIONARY: "reached a local minimum to working precision (‖∇ℓ‖ ≤ gtol·‖θ‖, "
    "∇²ℓ positive semi-definite, no further decrease predicted by Newton's step, the loss "
    "no longer falling on the time scale reached) with the loss above the threshold: "
    "θ(t) = θ_final up to the horizon (a non-global minimum if the loss is not small)",
    Status.NOT_MINIMUM: "failed: stopped by the stationarity test (‖∇ℓ‖ ≤ gtol·‖θ‖) at a "
    "point that is not a minimum — ∇²ℓ has a negative eigenvalue, a saddle (see "
    "info['stationary_check']; stops where the loss is still falling are not ends: the "
    "flow is resumed, info['resumed']); the flow does not end there: perturb θ0, or lower "
    "`gtol` (0 disables the test)",
    Status.MAX_STEPS: "failed: the solver ran out of steps before the horizon (or, with "
    "none, before a stop); raise `max_steps` or loosen `rtol`, or set a horizon `t1`",
    Status.NONFINITE: "failed: the state became NaN or infinite (diverged); for GD lower "
    "the learning rate below 2/λ_max(∇²ℓ), for the flow tighten `rtol`",
    Status.SOLVER_FAILED: "failed: the step size collapsed or the implicit solve did not "
    "converge; try another solver (e.g. solver='kvaerno5' or backend='scipy')",
}


class Regime(Outcome):
    """How gradient descent at one learning rate relates to the flow (``compare``,
    ``branch_map``): the second member of the outcome vocabulary, beside ``Status``."""

    FOLLOWS = 0
    BEYOND_EDGE = 1
    DIVERGED = 2


_REGIME_MESSAGES = {
    Regime.FOLLOWS: "GD follows the flow: η is below the stability edge 2/λ_max on the "
    "flow's path and at its end point, and GD stayed finite; its gaps are results",
    Regime.BEYOND_EDGE: "η is at or beyond GD's stability edge 2/λ_max (on the flow's path "
    "or at its end point): GD cannot settle where the flow goes, so its gaps are not "
    "discretization errors; lower the learning rate below the edge",
    Regime.DIVERGED: "GD overflowed (NaN or inf): nothing it produced is a result; lower "
    "the learning rate below 2/λ_max",
}
_OUTCOME_MESSAGES = {(type(k).__name__, k.name): v
                     for table in (_MESSAGES, _REGIME_MESSAGES) for k, v in table.items()}
_OK = {"Status": {"CONVERGED", "HORIZON", "STATIONARY"}, "Regime": {"FOLLOWS"}}


def decide_status(raw, loss_final, threshold: float) -> np.ndarray:
    """The one rule that grants CONVERGED: ``loss_final ≤ threshold``, the reported ℓ_final
    compared as it is, with no slack. Every path of ``solve_flow`` (a stop in the first
    run, a resumed tail, members of a batch, padded problems, the scipy backend) ends here,
    so CONVERGED always means ``trajectory.loss_final ≤ threshold``.

    ``raw`` is the integrator's status: CONVERGED there says only that a stop fired (the
    loss stop or the relative-gradient stop). A fired stop with ℓ_final above the threshold
    — the gradient floor at a minimum whose loss is positive, or the loss stop landing above
    the threshold at round-off, which differs between CPUs and programs (see
    ``flowtools.integrate.core.STOP_MARGIN``) — becomes a STATIONARY candidate, certified or
    refused by ``stationary_check``; the horizon reached with ℓ_final ≤ threshold is
    CONVERGED. NaN losses are never below a threshold.

        >>> S = Status
        >>> [S(int(v)).name for v in decide_status([S.CONVERGED, S.CONVERGED, S.HORIZON],
        ...                                        [1e-24, 1.0001e-24, 5e-25], 1e-24)]
        ['CONVERGED', 'STATIONARY', 'CONVERGED']
    """
    raw = np.array(np.atleast_1d(raw), dtype=np.int8)
    below = np.atleast_1d(np.asarray(loss_final, dtype=float)) <= threshold
    out = raw.copy()
    out[(raw == Status.CONVERGED) & ~below] = Status.STATIONARY
    out[(raw == Status.HORIZON) & below] = Status.CONVERGED
    return out

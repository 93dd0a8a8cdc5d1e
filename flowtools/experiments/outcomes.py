"""Where a run ended, by one rule for every figure: Q1, Q2, another global minimum, not
converged, or diverged — and whether that holds at a finite horizon or as t → ∞.

The rule (``outcome``), applied to an end point θ with training loss ℓ and generalization
error e (``flowtools.branches.generalization_error``, of the figure's ``kind``):

1. θ or ℓ not finite (or ℓ above 1e30)                      → "diverged"
2. ℓ > ``loss_tol`` (the run did not reach the stopping loss) → "not converged"
3. e > ``floor`` (a zero-loss point with a non-zero error)      → "global min outside Q*"
4. otherwise θ computes the target up to the floor: it lies in Q* = Q1 ∪ Q2, and the
   nearer of the two (``flowtools.branches.classify``'s distances, minimized over neuron
   swaps and sign flips) names it                               → "Q1" or "Q2"

Step 3 decides "global minimum outside Q*" by the error at the figure's recovery floor,
which is decidable only if the stopping loss is low enough that an end point in Q* lies
below the floor. A run of the gradient flow that reached a certified
end point (``Trajectory.converged``) is decided **as t → ∞**; a run stopped at the paper's
iteration count or horizon is decided **at that finite horizon** (``decided_at``): a Q1-bound
run that is still t^{-1/2} from Q1 there may be "not converged" at the horizon.

    >>> import numpy as np, flowtools as ft
    >>> pb = ft.example1()
    >>> crit = Criterion(kind="rms", floor=1e-8, loss_tol=1e-20)
    >>> th = np.array([[0.3, 1, 1, 0.7, 1, 1], [1, 1, 1, 0, 0.4, -2.0], [np.nan] * 6])
    >>> [str(o) for o in outcome(pb, th, np.array([0.0, 0.0, np.nan]), crit)]
    ['Q1', 'Q2', 'diverged']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flowtools import _validate as V
from flowtools.branches import ERROR_KINDS, classify, generalization_error

__all__ = ["FLAGS", "OUTCOMES", "Criterion", "decode", "encode", "outcome", "outcome_counts"]

OUTCOMES = ("Q1", "Q2", "global min outside Q*", "not converged", "diverged")
#: how every figure stores outcomes: int8 codes (the index in ``OUTCOMES``; −1: none) with
#: these CF flag attributes, as the sweep stores keep ``status`` and ``branch``
FLAGS = {"flag_values": list(range(-1, len(OUTCOMES))),
         "flag_meanings": " ".join(["none"] + [o.replace(" ", "_") for o in OUTCOMES])}


def encode(labels) -> np.ndarray:
    """Outcome labels (any shape; "" or None: none) as int8 codes, the index in
    ``OUTCOMES`` (−1: none).

        >>> encode(["Q2", "diverged", ""]).tolist(), decode([1, 4, -1]).tolist()
        ([1, 4, -1], ['Q2', 'diverged', ''])
    """
    labels = np.asarray(labels, dtype=object)
    out = np.full(labels.shape, -1, dtype=np.int8)
    for k, o in enumerate(OUTCOMES):
        out[labels == o] = k
    unknown = (out < 0) & ~np.isin(labels, ("", None))
    if unknown.any():
        raise ValueError(f"not an outcome: {labels[unknown].ravel()[0]!r} (one of {OUTCOMES})")
    return out


def decode(codes) -> np.ndarray:
    """Int codes (``encode``) back to their labels (object array; −1: "")."""
    codes = np.asarray(codes).astype(int)
    return np.asarray([""] + list(OUTCOMES), dtype=object)[codes + 1]


@dataclass(frozen=True)
class Criterion:
    """A figure's recovery criterion: the error ``kind`` ("rms" or "mse"), the recovery
    ``floor`` (an error at or below it counts as recovery and is drawn at it), and the
    training loss ``loss_tol`` at which a run counts as converged."""

    kind: str = "rms"
    floor: float = 1e-8
    loss_tol: float = 1e-15

    def __post_init__(self):
        V.choice(self.kind, "kind", ERROR_KINDS)
        V.positive_float(self.floor, "floor")
        V.positive_float(self.loss_tol, "loss_tol")

    @property
    def label(self) -> str:
        """How the figure states it, e.g. 'recovery: RMS error ≤ 1e-08 (runs to ℓ ≤ 1e-20)'."""
        return (f"recovery: {self.kind.upper()} error ≤ {self.floor:.0e} "
                f"(runs to ℓ ≤ {self.loss_tol:.0e})")

    def errors(self, problem, theta, *, X_test=None) -> np.ndarray:
        return np.asarray(generalization_error(problem, theta, X_test=X_test, kind=self.kind))

    def as_attrs(self) -> dict:
        return {"error_kind": self.kind, "recovery_floor": self.floor,
                "loss_tol": self.loss_tol, "criterion": self.label}


def outcome(problem, theta, loss, criterion: Criterion, *, errors=None, X_test=None):
    """The outcome (one of ``OUTCOMES``) of each end point θ (B, p) with loss ℓ (B,),
    by the rule of this module's docstring. ``errors``: the generalization errors if
    already computed (else computed on ``X_test``)."""
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    loss = np.atleast_1d(np.asarray(loss, dtype=float))
    finite = np.all(np.isfinite(theta), axis=-1) & np.isfinite(loss) & (loss < 1e30)
    safe = np.where(finite[:, None], theta, 0.0)
    err = criterion.errors(problem, safe, X_test=X_test) if errors is None else \
        np.atleast_1d(np.asarray(errors, dtype=float))
    br = classify(problem, safe, tol=1e300)  # only the distances are used
    in_q = np.where(np.asarray(br.dist_Q1) <= np.asarray(br.dist_Q2), "Q1", "Q2")
    out = np.where(err <= criterion.floor, in_q, "global min outside Q*")
    out = np.where(loss > criterion.loss_tol, "not converged", out)
    out = np.where(finite, out, "diverged")
    return out.astype(object)


def outcome_counts(labels) -> dict[str, int]:
    """How many of each outcome (every key of ``OUTCOMES``, zeros included)."""
    labels = np.asarray(labels, dtype=object).ravel()
    return {k: int(np.sum(labels == k)) for k in OUTCOMES}

"""Exceptions raised for bad input: each message names what is wrong and what to do."""

from __future__ import annotations


class FlowtoolsError(ValueError):
    """Base class of flowtools' input errors."""


class AssumptionError(FlowtoolsError):
    """A theorem's assumption does not hold, so a theory-dependent quantity is undefined.

    For example μ1 and C(θ) rest on Theorem 1's assumptions (i) σ(0) = 0, σ'(0) ≠ 0 and
    (ii) γ ≠ 0. The flow itself may still be integrated.
    """


class GridError(FlowtoolsError):
    """A sweep grid definition that cannot run: the message names the file, line and
    parameter (``flowtools.sweep.grid``)."""

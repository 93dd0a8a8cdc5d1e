"""``IntegratorOptions``: every setting of the integrator core, validated once.

The settings split in two: those that shape the compiled program (solver, coordinates,
controller coefficients, step clipping, step budget, batch chunk, whether a stop event is
built) and the numbers that vary in a sweep (tolerances, horizon, thresholds), which are
passed as traced arguments so that one compilation serves a whole grid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import NamedTuple

import diffrax

from flowtools import _validate as V
from flowtools.errors import FlowtoolsError

SOLVERS = {
    "kvaerno3": diffrax.Kvaerno3,
    "kvaerno4": diffrax.Kvaerno4,
    "kvaerno5": diffrax.Kvaerno5,
    "tsit5": diffrax.Tsit5,
    "dopri5": diffrax.Dopri5,
    "dopri8": diffrax.Dopri8,
}
IMPLICIT = frozenset({"kvaerno3", "kvaerno4", "kvaerno5"})
EXPLICIT = tuple(s for s in SOLVERS if s not in IMPLICIT)
# Field evaluations per step (explicit: stages, FSAL counted once; implicit: stages counted
# once per Newton iteration — we count 2 — plus a Jacobian of p columns).
STAGES = {"kvaerno3": 4, "kvaerno4": 5, "kvaerno5": 7, "tsit5": 6, "dopri5": 6, "dopri8": 12}
COORDS = ("lognorm", "theta")
NEWTON = ("stage", "full", "step")
# The horizon of a flow without one (``solve_flow(t1=None)``): a bound of float64 time, not
# a time scale of the flow, so that only the stops and ``max_steps`` end it. diffrax takes
# t1 = inf but never reaches it (t + h overflows to inf and the steps stall until
# ``max_steps``); 1e300 leaves room for the controller's tenfold step growth below 1.8e308.
UNBOUNDED_T1 = 1e300


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class Static(NamedTuple):
    """The part of the options that shapes the compiled program (hashable)."""

    solver: str
    newton: str
    coords: str
    pcoeff: float
    icoeff: float
    clip_to_saves: bool
    max_steps: int
    events: bool


@dataclass(frozen=True)
class IntegratorOptions:
    """Settings of ``flowtools.integrate.integrate``.

    Attributes:
        solver: one of ``SOLVERS`` (implicit Kvaerno3/4/5 with a chord Newton iteration
            and diffrax's automatic Jacobian, or explicit Tsit5/Dopri5/Dopri8).
        newton: how the implicit stage equations are solved: "stage" (the default: a chord
            iteration with the exact Jacobian at the start of each stage, optimistix's
            Chord), "full" (Newton, a Jacobian at every iterate) or "step" (diffrax's
            VeryChord: one Jacobian per step). Measured on the Figure-4 slow tail (Example
            1, n = 6 Gaussian samples, c̃ = 0.1, scale 1e-20, to ℓ ≤ 1e-20): "step"
            211 902 accepted + 112 136 rejected Kvaerno5 steps, "full" 941 + 33, "stage"
            1317 + 19 — one Jacobian per step, not the error estimate, kept the steps from
            growing in proportion to t. On the Figure-3 batch (100 seeds, a shared
            machine) "stage" took 0.43–0.73× the wall time of "full" (two runs) and
            0.58× that of "step" (one run).
        rtol, atol: step-size control (in log-norm coordinates atol is relative to ‖θ‖).
        coords: "lognorm" (θ = e^r ω, ``flowtools.integrate.coords``) or "theta".
        pcoeff, icoeff: PID controller coefficients (0.4, 0.3: Söderlind's PI controller;
            0, 1: the classical I controller).
        clip_to_saves: steps land exactly on the save times (saved states then carry the
            step accuracy rather than the dense interpolant's).
        max_steps: step budget per trajectory.
        batch_size: trajectories integrated in lockstep per compiled call (vmapped; the
            chunk of a smaller batch is the power of two ≥ B).
        workers: threads that integrate chunks of a batch at once (one compiled program;
            a thread takes the next chunk when it finishes one); the result does not
            depend on it. Default: the machine's cores.
        t1: the horizon (None: the last save time; ``UNBOUNDED_T1`` for none).
        loss_threshold: stop at ℓ ≤ this (0: no stop); needs a loss.
        gtol: stop at ‖F(θ)‖ ≤ gtol·‖θ‖ (0: no stop); needs a loss, log-norm coordinates.
    """

    solver: str = "kvaerno5"
    newton: str = "stage"
    rtol: float = 1e-10
    atol: float = 1e-10
    coords: str = "lognorm"
    pcoeff: float = 0.4
    icoeff: float = 0.3
    clip_to_saves: bool = False
    max_steps: int = 50_000
    batch_size: int = 1
    workers: int | None = None
    t1: float | None = None
    loss_threshold: float = 0.0
    gtol: float = 0.0

    def __post_init__(self):
        checked = dict(
            solver=V.choice(self.solver, "solver", SOLVERS),
            newton=V.choice(self.newton, "newton", NEWTON),
            rtol=V.in_open_interval(self.rtol, "rtol", 0.0, 1.0),
            atol=V.positive_float(self.atol, "atol"),
            coords=V.choice(self.coords, "coords", COORDS),
            pcoeff=V.nonnegative_float(self.pcoeff, "pcoeff"),
            icoeff=V.nonnegative_float(self.icoeff, "icoeff"),
            clip_to_saves=V.flag(self.clip_to_saves, "clip_to_saves"),
            max_steps=V.positive_int(self.max_steps, "max_steps"),
            batch_size=V.positive_int(self.batch_size, "batch_size"),
            workers=(available_cores() if self.workers is None
                     else V.positive_int(self.workers, "workers")),
            t1=None if self.t1 is None else V.positive_float(self.t1, "the horizon t1"),
            loss_threshold=V.loss_threshold(self.loss_threshold),
            gtol=V.nonnegative_float(self.gtol, "gtol",
                                     hint=" (0 disables the stationarity stop)"),
        )
        if checked["gtol"] > 0 and checked["coords"] != "lognorm":
            raise FlowtoolsError("the stationarity stop (gtol > 0) is defined in log-norm "
                                 "coordinates: use coords='lognorm' or gtol=0.")
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @property
    def implicit(self) -> bool:
        return self.solver in IMPLICIT

    def static(self, has_loss: bool) -> Static:
        events = has_loss and (self.loss_threshold > 0 or self.gtol > 0)
        return Static(self.solver, self.newton, self.coords, float(self.pcoeff), float(self.icoeff),
                      bool(self.clip_to_saves), int(self.max_steps), bool(events))

"""The error estimates: every flow solved twice, the second as a measured reference.

**Error estimates** (``LimitResult.error``) are measured, not assumed. Every flow is solved
twice, at ``rtol`` and at rtol/``REF_RATIO``, the second with an extra step in each of the
longest save intervals (a reference on the same save grid would repeat the result's steps
wherever the grid, not the tolerance, limits them); the reported h is the first, and its
estimate is the sum of (``LimitResult.error_parts``)

1. the method's truncation: the last difference of the Richardson column times
   q^r/(1 − q^r) for the next exponent r (extrapolate), or the series' truncation error
   (manifold, inside its radius; ``tol`` relative beyond);
2. the flows' global error: the same extrapolation applied to the reference sequence, and
   the difference of the two values (divided by 1 − REF_RATIO^−0.8: the reference's own
   share, see ``RTOL_ORDER``). This includes the error common to all α_k — the shared
   trajectory after the escape — which the differences of the sequence cannot show;
3. a round-off floor for what both solves share: the rounding of the save times
   t + log(1/α_k)/μ1 and of the α_k, eps·(‖x‖ + |T|·‖F(x)‖) per entry, propagated with the
   extrapolation's weights.

The reference costs 1–1.4× the result's flow (dopri8's steps grow as rtol^−1/8, plus the
extra steps), so a call costs ~2× the flows of a single solve. Measured estimate/actual
where the flows' error dominates (rtol ≥ 1e-9 on Example 1, 1e-7 on the closed-form field
of the tests): 0.9–2.5. Where the flows are at round-off (the default rtol 1e-13: ~1e-15
relative on Example 1) the two solves differ by their round-off only: the estimate is then
that noise, typically 1–5× the actual error, whose realization itself varies several-fold
from run to run (and machine to machine).

    >>> grid, pick = reference_grid(np.array([1.0, 2.0, 6.0]), 5)
    >>> grid.tolist(), pick.tolist()
    ([0.5, 1.0, 2.0, 4.0, 6.0], [1, 2, 4])
"""

from __future__ import annotations

import numpy as np

from flowtools import _validate as V

# The flows' global error is measured, not assumed: every flow is solved a second time at
# rtol / REF_RATIO, and the difference of the two results (propagated through the same
# extrapolation) is the flow part of the error estimate. The global error of dopri8 with
# the PI controller goes as rtol^p, p = 0.8–1.2 measured on Example 1 (extrapolation and
# manifold continuation, rtol 1e-12 … 1e-8; tests/test_limit.py fits it), so the
# reference carries REF_RATIO^−p ≤ 16 % of the result's error: the difference is divided
# by 1 − REF_RATIO^−RTOL_ORDER (exact when the two errors are aligned, 16 % high when they
# are independent, as at the round-off floor).
REF_RATIO = 10.0
RTOL_ORDER = 0.8
REF_GAIN = 1.0 / (1.0 - REF_RATIO ** -RTOL_ORDER)
EPS = float(np.finfo(float).eps)


def check_memory(flows: int, saves: int, p: int) -> None:
    """Refuse a computation of h whose flows would not fit in memory
    (``flowtools._validate.memory``), from its declared sizes and before anything is
    allocated: ``flows`` flows of p parameters saved at ``saves`` times, each solved twice
    (the result and its reference), each with a device and a host copy."""
    V.memory(4 * V.nbytes(flows, saves, p),
             f"h(θ, t) from {flows:,} flow(s) of p = {p:,} parameters saved at {saves:,} "
             "times (the result and its reference)",
             "ask for fewer times (--t-range N, --times) or fewer levels")


def reference_grid(save_ts, size):
    """The reference solve's save grid, at most ``size`` points: ``save_ts`` with the
    midpoints of the longest intervals between consecutive saves (and of 0 and the first),
    as many as fit; and where ``save_ts`` lie in it. The steps of both solves land on their
    saves; where the save spacing, not the tolerance, limits the steps, a reference on the
    same grid would repeat the result's steps — and their error, which the difference then
    misses (measured: the manifold method's continuation at rtol 1e-9 and 1e-10 agreed to
    1e-14 where both were 1e-12 off, over its first interval). Two steps per interval make
    the reference 2^8× more accurate there. Short intervals (dense saves) matter least:
    a step much shorter than the tolerance allows is accurate anyway."""
    t = np.concatenate([[0.0], save_ts])
    length = np.diff(t)
    n_free = max(0, int(size) - len(np.unique(save_ts)))
    longest = np.argsort(-length, kind="stable")[:n_free]
    longest = longest[length[longest] > 0]
    mids = 0.5 * (t[longest] + t[longest + 1])
    grid = np.unique(np.concatenate([save_ts, mids]))
    return grid, np.searchsorted(grid, save_ts)


def reference_flow(system, theta0, save_ts, *, rtol, solver, max_steps, min_saves=64):
    """The result's flow at rtol and the reference's at rtol/REF_RATIO on the refined grid
    (``reference_grid``), both at ``save_ts``: (result, reference, wall times, compile).
    Both have the result's padded shape — a multiple of 64 saves, at least ``min_saves`` —
    so one compilation serves both, and the reference's extra saves take only the slots the
    result pads anyway."""
    S = len(save_ts)
    n = max(S + (-S % 64), int(min_saves))
    grid, pick = reference_grid(save_ts, n)
    out, wall, comp = system.flow(theta0, save_ts, rtol=rtol, solver=solver,
                                  max_steps=max_steps, pad_to=n)
    ref, wall_ref, comp_ref = system.flow(theta0, grid, rtol=rtol / REF_RATIO, solver=solver,
                                          max_steps=max_steps, pad_to=n)
    return out, ref[:, pick], wall, wall_ref, comp + comp_ref

"""The end point: lim_{t→∞} h(θ, t) by the flow's stopping rules (Theorem 2).

The flow is started from a point h(θ, start_t) of the limiting trajectory (found by either
method; by default where the manifold series is still exact to 1e-17, so that no flow from
a tiny α is involved) and run with ``solve_flow``'s stopping rules (ℓ ≤ ``loss_threshold``,
a stationary point, or the horizon). The result's ``status`` is the flow's ``Status``: a
HORIZON end point is a finite-horizon one, not the limit t → ∞.
"""

from __future__ import annotations

import numpy as np

from flowtools import _validate as V
from flowtools.errors import FlowtoolsError
from flowtools.flow import solve_flow
from flowtools.limiting.entry import METHODS, limit_system
from flowtools.limiting.results import LimitEndpoint
from flowtools.limiting.system import FlowSystem
from flowtools.models import AbstractModel, Problem


def limit_endpoint(problem: Problem, theta, *, method: str = "manifold",
                   loss_threshold: float = 1e-15, t1: float | None = None, rtol: float = 1e-10,
                   solver: str = "kvaerno5", start_t: float | None = None,
                   start_theta=None) -> LimitEndpoint:
    """lim_{t→∞} h(θ, t) (Theorem 2) for the two-layer network: the flow from a point of
    the limiting trajectory, with ``solve_flow``'s stopping rules (ℓ ≤ ``loss_threshold``
    or a horizon ``t1``: none by default, as ``solve_flow``). Other models are refused
    (``require_theory``): Theorem 2 is a statement about the two-layer family.

    The start point is h(θ, start_t) by ``method``; by default start_t is where the
    manifold series is still exact to 1e-17 (so no flow from tiny α is involved).
    ``start_theta`` (with ``start_t``): a start point already computed — e.g. an earlier
    result's ``start_theta`` — so that only the flow runs (the same start at another
    ``rtol``: the flow's own error, measured).
    """
    if isinstance(problem, AbstractModel):
        problem.require_theory()
    system = FlowSystem.from_problem(problem)
    V.choice(method, "method", METHODS)
    if start_t is not None:
        start_t = V.real(start_t, "start_t")
    if start_theta is not None:
        if start_t is None:
            raise FlowtoolsError("start_theta needs its start_t (the limiting time of the "
                                 "start point).")
        x0 = problem.check_theta(start_theta, single="limit_endpoint's start_theta")
        tr = solve_flow(problem, x0, t1=t1, loss_threshold=loss_threshold, rtol=rtol,
                        solver=solver)
        return _result(tr, start_t, x0, method)
    if method == "manifold" and start_t is None:
        res = limit_system(system, theta, [0.0], "manifold", {})
        if res.series.t0 < 0:  # start inside the series' range: no flow involved
            start_t = float(res.series.t0)
            res = limit_system(system, theta, [start_t], method, {})
        else:
            start_t = 0.0
    else:
        start_t = 0.0 if start_t is None else start_t
        res = limit_system(system, theta, [start_t], method, {})
    x0 = res.thetas[0]
    tr = solve_flow(problem, x0, t1=t1, loss_threshold=loss_threshold, rtol=rtol, solver=solver)
    return _result(tr, start_t, x0, method)


def _result(tr, start_t, x0, method) -> LimitEndpoint:
    return LimitEndpoint(theta=np.asarray(tr.theta_final), loss=float(tr.loss_final),
                         t=start_t + float(tr.t_final), status=tr.status, start_t=start_t,
                         start_theta=x0, method=method, trajectory=tr)

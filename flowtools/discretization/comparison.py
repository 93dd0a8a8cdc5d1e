"""The comparison: how far gradient descent is from the flow, and whether it follows it.

For each learning rate η, GD and the order-0/1/2 flows are aligned at t = kη
(``flowtools.discretization.alignment``); the sup-gaps against the gradient flow and the
modified flows fall like η, η², η³ (``flowtools.discretization.modified_flow``), and
``compare`` fits these orders as slopes on log–log axes. Each rate gets a
``flowtools.status.Regime``: FOLLOWS, BEYOND_EDGE (η ≥ 2/λ_max on the flow's path or at
its end point, ``flowtools.discretization.stability``) or DIVERGED; only the rates where
GD follows the flow enter the fitted orders. The escape times of GD and the flow are set
beside the shift the escape rate predicts (``flowtools.discretization.escape``).

Settings of ``compare`` and why: gaps are measured over a short horizon (default T = 10)
from a moderate initial scale (default 1e-2 in the CLI and demo). The GD–flow gap is then
dominated by the O(η) local error, not by the exponential sensitivity of a long escape
from 1e-8 (where an O(η) change of the escape rate becomes an O(η·log(1/α)) time shift and
the gap saturates at O(1) already for moderate η).

    >>> import flowtools as ft
    >>> from flowtools.discretization import compare
    >>> pb = ft.example1()
    >>> cmp = compare(pb, pb.init_gaussian(1e-2, seed=0), [0.004, 0.008, 0.016, 0.032])
    >>> [round(float(q), 1) for q in cmp.orders]   # GD vs the flow, modified flows 1, 2
    [1.0, 2.0, 3.0]
    >>> [r.name for r in cmp.regime]
    ['FOLLOWS', 'FOLLOWS', 'FOLLOWS', 'FOLLOWS']
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from flowtools import _validate as V
from flowtools._io import named
from flowtools.branches import classify
from flowtools.descent import GD_STEP_LIMIT, check_gd_iterations, gd_iterations, run_gd
from flowtools.discretization.alignment import align
from flowtools.discretization.escape import escape_time
from flowtools.discretization.stability import (
    GDStabilityWarning,
    _require_dense_hessian,
    lam_max,
)
from flowtools.errors import FlowtoolsError
from flowtools.fitting import fit_slope
from flowtools.models import AbstractModel, Problem
from flowtools.status import Regime

__all__ = ["DEFAULT_LRS", "Comparison", "compare", "fit_order"]

DEFAULT_LRS = (1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1)


def fit_order(lrs, gaps) -> float:
    """Least-squares slope of log(gap) against log(lr) over the finite, positive gaps
    (``flowtools.fitting.fit_slope``; NaN from fewer than two)."""
    return fit_slope(lrs, gaps).slope


@dataclass(frozen=True, eq=False)
class Comparison:
    """Flow versus GD for one model and initial state over a set of learning rates.

    Per learning rate (arrays over ``lrs``): ``gap[q]`` = sup_t ‖θ_GD − θ_q‖ against the
    order-q flow (q = 0: the gradient flow; 1, 2: modified flows), ``loss_gap``,
    ``escape_gd`` (first t with ‖θ_GD‖ ≥ ``radius``), ``regime`` (a ``Regime`` per rate:
    FOLLOWS, BEYOND_EDGE — η ≥ 2/λ_max somewhere on the flow's path or at its end point,
    so GD need not follow —, or DIVERGED). ``orders[q]`` = fitted slope of gap[q] over the
    FOLLOWS rates. ``escape_pred_shift`` needs the paper's theory (μ1, the top
    eigenspace): NaN for a model outside it.

    End points (if ``endpoint_t1`` was given): GD (``run_gd``, same loss threshold) and the
    flow (``solve_flow``) at flow time ``endpoint_t1``; ``endpoint_diff``, their branches
    (``classify`` at that finite horizon; "" where GD diverged) and ``same_branch``. The
    branches need the two-layer family with a stored target: for other models the labels
    are "" and ``same_branch`` is None.
    """

    lrs: np.ndarray
    t1: float
    gap: np.ndarray  # (3, L)
    loss_gap: np.ndarray
    orders: np.ndarray  # (3,)
    regime: np.ndarray  # (L,) Regime
    escape_flow: float
    escape_gd: np.ndarray
    escape_pred_shift: np.ndarray
    radius: float
    lr_edge_path: float
    lr_edge_end: float | None = None
    endpoint_t1: float | None = None
    flow_branch: str | None = None
    flow_end_loss: float | None = None
    gd_branch: np.ndarray | None = None
    gd_end_loss: np.ndarray | None = None
    endpoint_diff: np.ndarray | None = None
    same_branch: np.ndarray | None = None
    alignments: list = field(default_factory=list, repr=False)

    def table(self) -> str:
        """A plain-text report."""
        lines = [
            f"flow vs GD over t ≤ {self.t1:g} (t = k·lr); fitted orders of the gap in lr: "
            f"flow {self.orders[0]:.3f}, modified-1 {self.orders[1]:.3f}, "
            f"modified-2 {self.orders[2]:.3f}",
            f"stability edge 2/λ_max: along the flow's path {self.lr_edge_path:.4g}"
            + (f", at its end point {self.lr_edge_end:.4g}" if self.lr_edge_end else ""),
            f"escape (‖θ‖ ≥ {self.radius:g}): flow t = {self.escape_flow:.5g}",
            f"{'lr':>8} {'regime':>11} {'gap flow':>10} {'gap mod1':>10} {'gap mod2':>10} "
            f"{'gap loss':>10} {'esc. shift':>10} {'predicted':>10}",
        ]
        for i, lr in enumerate(self.lrs):
            lines.append(
                f"{lr:8.4g} {self.regime[i].name:>11} {self.gap[0, i]:10.3e} "
                f"{self.gap[1, i]:10.3e} {self.gap[2, i]:10.3e} {self.loss_gap[i]:10.3e} "
                f"{self.escape_gd[i] - self.escape_flow:10.3e} {self.escape_pred_shift[i]:10.3e}"
            )
        if self.endpoint_t1 is not None:
            lines.append(f"end points at t = {self.endpoint_t1:g} (finite-horizon branches): "
                         f"flow {self.flow_branch or '—'} (loss {self.flow_end_loss:.2e})")
            for i, lr in enumerate(self.lrs):
                same = "—" if self.same_branch is None else bool(self.same_branch[i])
                label = self.gd_branch[i] or (self.regime[i].name if not self.regime[i].ok
                                              else "—")
                lines.append(
                    f"{lr:8.4g} GD {label:>5} (loss {self.gd_end_loss[i]:.2e}) "
                    f"‖Δθ_end‖ = {self.endpoint_diff[i]:.3e} same branch: {same}"
                )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-ready summary (no trajectories; regimes by their names)."""
        return {k: named(v) for k, v in self.__dict__.items() if k != "alignments"}


def compare(model: AbstractModel, theta0, lrs=DEFAULT_LRS, *, t1: float = 10.0,
            n_rec: int = 2000, rtol: float = 1e-13, radius: float = 0.5,
            endpoint_t1: float | None = None, loss_threshold: float = 1e-15,
            tol: float = 0.1, keep: bool = False,
            max_gd_steps: float = GD_STEP_LIMIT) -> Comparison:
    """Measure how far GD is from the flow on ``model`` from ``theta0``.

    Args:
        model: any ``AbstractModel`` (e.g. a ``Problem`` or a ``LossModel``).
        theta0: (p,) initial state; a moderate scale (1e-2…1e-1) keeps the gap
            dominated by the lr-error (see the module docstring).
        lrs: learning rates.
        t1: horizon of the aligned comparison (flow time).
        n_rec: records per run (every ⌈(t1/η)/n_rec⌉-th iterate).
        rtol: tolerance of the flow integrations (Dopri8).
        radius: escape radius for the escape times.
        endpoint_t1: if given, also run GD (``run_gd``) and the flow (``solve_flow``) to
            this flow time (or ``loss_threshold``) and compare end points and branches.
        tol: branch tolerance for ``classify``.
        keep: keep the ``Alignment`` of every rate in ``alignments``.
        max_gd_steps: refuse, before anything runs, when the GD runs would take more
            iterations than this in all (Σ ⌈t1/η⌉, plus Σ ⌈endpoint_t1/η⌉; default
            ``flowtools.descent.GD_STEP_LIMIT``, 1e8): a long horizon at a small rate is
            asked for by raising it, not started by mistake.

    Returns:
        A ``Comparison``. Rates with η ≥ 2/λ_max on the flow's path (or at its end point)
        get ``Regime.BEYOND_EDGE``, GD runs that overflowed ``Regime.DIVERGED`` (gaps NaN);
        both raise a ``GDStabilityWarning`` and are left out of the fitted orders.
    """
    theta0 = model.check_theta(theta0, single="compare")
    lrs = V.learning_rates(lrs)
    t1 = V.positive_float(t1, "the horizon t1")
    radius = V.positive_float(radius, "the escape radius")
    if endpoint_t1 is not None:
        endpoint_t1 = V.positive_float(endpoint_t1, "endpoint_t1")
    loss_threshold = V.loss_threshold(loss_threshold)
    tol = V.positive_float(tol, "the branch tolerance tol")
    keep = V.flag(keep, "keep")
    _check_work(lrs, t1, endpoint_t1, max_gd_steps)
    _require_dense_hessian(model, "compare's stability edge")
    al = [align(model, theta0, lr, t1=t1, n_rec=n_rec, rtol=rtol) for lr in lrs]
    if not all(a.solver_ok for a in al):
        raise FlowtoolsError("the flow integration failed (max_steps): lower t1 or raise rtol.")
    # λ_max along the flow's path (records of the densest run, ≤ 200 points)
    dense = al[int(np.argmin(lrs))]
    idx = np.unique(np.linspace(0, len(dense.ts) - 1, 200).astype(int))
    edge_path = 2.0 / float(np.max(lam_max(model, dense.flows[0][idx])))
    gap = np.array([[a.gap(q) for a in al] for q in range(3)])
    loss_gap = np.array([a.loss_gap for a in al])
    regime = np.array([Regime.FOLLOWS] * lrs.size, dtype=object)
    regime[lrs >= edge_path] = Regime.BEYOND_EDGE
    regime[[not a.finite for a in al]] = Regime.DIVERGED
    # escape; the predicted shift needs the theory's μ1 and top eigenspace
    theory = not model.assumption_failures()
    mu1 = model.mu1 if theory else float("nan")
    esc_flow = escape_time(dense.ts, dense.flows[0], radius)
    esc_gd = np.array([escape_time(a.ts, a.gd, radius) if a.finite else np.nan for a in al])
    with np.errstate(all="ignore"):
        rho = np.log1p(lrs * mu1) / lrs
        top = np.linalg.norm(model.top_eigvecs.T @ theta0) if theory else np.nan
        pred = np.log(radius / top) * (1.0 / rho - 1.0 / mu1)
    res = dict(lrs=lrs, t1=float(t1), gap=gap, loss_gap=loss_gap, regime=regime,
               escape_flow=esc_flow, escape_gd=esc_gd, escape_pred_shift=pred, radius=radius,
               lr_edge_path=edge_path)
    if endpoint_t1 is not None:
        res.update(_endpoints(model, theta0, lrs, endpoint_t1, loss_threshold, tol, regime))
    ok = regime == Regime.FOLLOWS
    orders = np.array([fit_order(lrs[ok], gap[q, ok]) for q in range(3)])
    for lr, st in zip(lrs, regime, strict=True):
        if st is not Regime.FOLLOWS:
            warnings.warn(_stability_message(lr, st, edge_path, res.get("lr_edge_end")),
                          GDStabilityWarning, stacklevel=2)
    return Comparison(orders=orders, alignments=al if keep else [], **res)


def _check_work(lrs, t1, endpoint_t1, max_gd_steps) -> None:
    """The one work estimate of ``compare``: its GD iterations against ``max_gd_steps``."""
    horizons = [("t1", t1)] + ([("endpoint_t1", endpoint_t1)] if endpoint_t1 else [])
    count = sum(gd_iterations(T, lrs) for _, T in horizons)
    name, T = max(horizons, key=lambda h: h[1])
    lr = float(np.min(lrs))
    with np.errstate(over="ignore"):
        worst = T / lr
    check_gd_iterations(
        count, max_gd_steps, "this comparison",
        f"its longest GD run is {name}/lr = {T:g}/{lr:g} = {worst:.3g} iterations; shorten "
        f"{name} or raise the learning rates", "max_gd_steps (--max-gd-steps)")


def _stability_message(lr, st, edge_path, edge_end):
    if st is Regime.DIVERGED:
        return (f"GD at lr = {lr:g} diverged (NaN/inf): its gaps are NaN, not results. "
                f"Use lr < {edge_path:.4g} (2/λ_max along the flow's path).")
    edge = edge_path if edge_end is None else min(edge_path, edge_end)
    return (f"lr = {lr:g} is at or beyond GD's stability edge 2/λ_max = {edge:.4g} (on the "
            "flow's path or at its end point): GD cannot settle where the flow goes, so "
            "its gaps are reported but left out of the fitted orders.")


def _branch_labels(model, thetas, tol):
    """classify's labels, or None for a model outside the two-layer family with a target."""
    if not (isinstance(model, Problem) and model.target is not None):
        return None
    return np.asarray(classify(model, thetas, tol=tol).branch, dtype=object)


def _endpoints(model, theta0, lrs, T, loss_threshold, tol, regime):
    from flowtools.flow import solve_flow

    flow = solve_flow(model, theta0, t1=T, loss_threshold=loss_threshold)
    lam = lam_max(model, flow.theta_final[None])[0]
    edge_end = 2.0 / lam if lam > 0 else float("inf")
    ends, gd_loss = [], []
    for lr in lrs:
        gd = run_gd(model, theta0, lr, max_iter=max(1, int(round(T / lr))),
                    loss_threshold=loss_threshold, n_save=3)
        ends.append(gd.theta_final)
        gd_loss.append(float(gd.loss_final))
    ends, gd_loss = np.array(ends), np.array(gd_loss)
    finite = np.all(np.isfinite(ends), -1) & np.isfinite(gd_loss)
    diff = np.where(finite, np.linalg.norm(np.where(finite[:, None], ends, 0.0)
                                           - flow.theta_final, axis=-1), np.nan)
    regime[(lrs >= edge_end) & (regime == Regime.FOLLOWS)] = Regime.BEYOND_EDGE
    regime[~finite] = Regime.DIVERGED
    flow_label = _branch_labels(model, flow.theta_final, tol)
    gd_branch = np.full(lrs.size, "", dtype=object)
    same = None
    if flow_label is not None:
        flow_label = str(flow_label[()])
        if finite.any():
            gd_branch[finite] = _branch_labels(model, ends[finite], tol)
        same = gd_branch == flow_label
    return dict(lr_edge_end=edge_end, endpoint_t1=float(T), flow_branch=flow_label or "",
                flow_end_loss=float(flow.loss_final), gd_branch=gd_branch,
                gd_end_loss=gd_loss, endpoint_diff=diff, same_branch=same)



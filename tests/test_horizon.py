"""No arbitrary horizon (issue 22, item 5): ``solve_flow`` runs by default until its loss
threshold, a certified stationary end or ``max_steps``; an explicit ``t1`` still ends a flow
that has not converged by then as HORIZON.

The issue's flows: Figure 4, n = 6 Gaussian samples (data seeds 0 and 1), c̃ = 0.9, scale
1e-20, ℓ ≤ 1e-20. With the old default t1 = 1e12 they ended HORIZON at ℓ = 4.5e-20 and
2.3e-19; they converge at t = 2.1e12 and 4.8e12 in 1451 and 2017 steps (implicit steps
grow in proportion to t in these tails, so the step count grows like log t).
"""

import jax.numpy as jnp
import numpy as np
import pytest

import flowtools as ft
from flowtools.flow import SAVE_T_MAX, default_save_times
from flowtools.integrate.options import UNBOUNDED_T1
from flowtools.integrate.scipy_backend import SCIPY_T1
from flowtools.status import Status, decide_status

THRESHOLD = 1e-20


def _issue_flow(seed):
    pb = ft.example1(6, sampling="gaussian", seed=seed)
    return pb, pb.init_c_tilde([0.9], 1e-20, seed=0)


@pytest.fixture(scope="module")
def issue_flows():
    out = {}
    for seed in (0, 1):
        pb, th0 = _issue_flow(seed)
        out[seed] = ft.solve_flow(pb, th0, loss_threshold=THRESHOLD)
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_issue_flows_converge_with_the_defaults(issue_flows, seed):
    tr = issue_flows[seed][0]
    assert tr.status == Status.CONVERGED
    assert tr.loss_final <= THRESHOLD  # what CONVERGED promises, read from the Trajectory
    assert tr.t_final > 1e12  # beyond the old default horizon
    assert tr.steps <= 2100  # 1451 and 2017 measured
    assert tr.info["t1"] == UNBOUNDED_T1
    # saved on the default grid up to 1e12; the end point comes apart (t_final)
    ts = tr.ts[np.isfinite(tr.ts)]
    assert np.all(np.diff(ts) > 0) and ts[-1] <= SAVE_T_MAX
    assert np.array_equal(ts, default_save_times(None, 200)[: ts.size])


def test_converged_implies_the_threshold(issue_flows):
    """CONVERGED means ℓ_final ≤ threshold on every path: the one rule decides it."""
    for tr in issue_flows.values():
        conv = np.atleast_1d(tr.status) == Status.CONVERGED
        assert np.all(np.atleast_1d(tr.loss_final)[conv] <= THRESHOLD)
    raw = [Status.CONVERGED, Status.CONVERGED, Status.HORIZON, Status.HORIZON]
    out = decide_status(raw, [1e-21, 2e-20, 1e-20, 1.0000001e-20], THRESHOLD)
    assert [Status(int(s)).name for s in out] == ["CONVERGED", "STATIONARY", "CONVERGED",
                                                  "HORIZON"]


def test_an_explicit_horizon_still_ends_there():
    """The same flow with t1 = 1e12 (the old default; t1 is traced: the same program)."""
    pb, th0 = _issue_flow(0)
    tr = ft.solve_flow(pb, th0, t1=1e12, loss_threshold=THRESHOLD)[0]
    assert tr.status == Status.HORIZON and tr.t_final == 1e12
    assert 4e-20 < tr.loss_final < 5e-20  # 4.45e-20: still above the threshold
    assert tr.info["t1"] == 1e12


def test_default_save_times():
    ts = default_save_times(None, 200)
    assert ts.shape == (200,) and np.all(np.isfinite(ts)) and np.all(np.diff(ts) > 0)
    assert ts[0] == 0.0 and ts[1] == 1e-2 and ts[-1] == SAVE_T_MAX
    # without a horizon: the grid of the old default t1 = 1e12, bit for bit
    assert np.array_equal(ts, default_save_times(1e12, 200))
    # an explicit horizon keeps its own grid (Figure 4: T1 = 1e18)
    assert np.array_equal(default_save_times(1e18, 120),
                          np.concatenate([[0.0], np.geomspace(1e-2, 1e18, 119)]))
    assert default_save_times(1e-3, 3).tolist() == [0.0, 1e-3, 1e-3]


def _plateau(theta, data):  # ℓ = 1 + 1/(1 + ‖θ‖²) ≥ 1: drifts to infinity, never converges
    return 1.0 + 1.0 / (1.0 + jnp.dot(theta, theta))


def test_a_flow_that_never_converges_still_stops():
    """Both stops off (gtol = 0, the threshold unreachable): only the bound of float64 time
    ends it, and steps growing with t reach it cheaply (3739 Dopri8 steps measured, 200 to
    t = 1e12); with the defaults the stationarity stop ends the drift (not a minimum)."""
    model = ft.LossModel(_plateau, None, n_params=2)
    th0 = np.array([0.3, 0.4])
    tr = ft.solve_flow(model, th0, solver="dopri8", gtol=0.0)
    assert tr.status == Status.HORIZON and tr.t_final == UNBOUNDED_T1
    assert tr.steps < 5000 and tr.loss_final >= 1.0
    tr = ft.solve_flow(model, th0, solver="dopri8")
    assert tr.status == Status.NOT_MINIMUM and tr.t_final < 1e16 and tr.steps < 500


def test_scipy_keeps_a_finite_default():
    """solve_ivp has neither the stationarity stop nor a step budget: its default horizon
    stays 1e12 (the drift above costs 23× more evaluations to 1e300 with LSODA)."""
    model = ft.LossModel(_plateau, None, n_params=2)
    tr = ft.solve_flow(model, np.array([0.3, 0.4]), backend="scipy", solver="LSODA")
    assert tr.status == Status.HORIZON and tr.t_final == SCIPY_T1 == tr.info["t1"]
    assert np.array_equal(tr.ts[np.isfinite(tr.ts)], default_save_times(None, 200))


def test_a_resumed_tail_runs_in_stages_to_its_end():
    """Without a horizon a resumed tail (no stationarity stop of its own) runs in stages:
    a stage end is checked like a stop. The scale-1e100 plateau of Example 1 (stopped at t
    ≈ 18 at ℓ ≈ 1e169, resumed) settles at ℓ = 0.819 from t ≈ 1e16: STATIONARY (with t1 =
    1e12 it ended HORIZON at ℓ = 8.5e21; resting there until max_steps took 50 000 steps)."""
    pb = ft.example1()
    tr = ft.solve_flow(pb, pb.init_gaussian(1e100, seed=0))
    assert 0 in tr.info["resumed"] and tr.status == Status.STATIONARY
    assert abs(tr.loss_final - 0.819) < 1e-3 and tr.t_final < 1e15 and tr.steps < 300
    assert tr.info["stationary_check"][0]["minimum"]


def test_a_stage_that_starts_late_advances():
    """A stage started after t ≈ 1e15 (beyond the saves) runs in its own time t − t0: its
    O(1) first step would not advance t in float64. The issue's flow to ℓ ≤ 1e-28: stopped
    at t = 2.8e11, a first stage to 2.8e15, then a late one that converges at t = 2.1e16."""
    pb, th0 = _issue_flow(0)
    tr = ft.solve_flow(pb, th0, loss_threshold=1e-28)[0]
    assert tr.status == Status.CONVERGED and tr.loss_final <= 1e-28
    assert 3e15 < tr.t_final < 1e17 and tr.steps < 2500
    ts = tr.ts[np.isfinite(tr.ts)]
    assert np.array_equal(ts, default_save_times(None, 200))

"""Flow versus GD: gap orders, modified flows, escape rate, stability edge, branch map."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowtools as ft
from flowtools.discretization import (
    GDStabilityWarning,
    align,
    compare,
    escape_rate,
    fit_order,
    linearized_gd_rate,
    modified_field,
    modified_loss,
    stability_edge,
)
from flowtools.errors import FlowtoolsError
from flowtools.experiments.branch_maps import branch_map
from flowtools.status import Regime, Status

LRS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


@pytest.fixture(scope="module")
def pb():
    return ft.example1()


@pytest.fixture(scope="module")
def cmp(pb):
    # Example 1, moderate scale 1e-2 (gap dominated by the lr-error), horizon t ≤ 10
    return compare(pb, pb.init_gaussian(1e-2, seed=0), LRS, t1=10.0, keep=True)


def test_gap_orders(cmp):
    assert list(cmp.regime) == [Regime.FOLLOWS] * len(LRS)
    assert cmp.orders[0] == pytest.approx(1.0, abs=0.1)
    assert cmp.orders[1] == pytest.approx(2.0, abs=0.2)
    assert cmp.orders[2] == pytest.approx(3.0, abs=0.3)
    # each modified flow is closer to GD than the one before it, at every rate
    assert np.all(cmp.gap[1] < cmp.gap[0]) and np.all(cmp.gap[2] < cmp.gap[1])
    # the loss gap is first order too
    assert fit_order(cmp.lrs, cmp.loss_gap) == pytest.approx(1.0, abs=0.1)


def test_flow_matches_solve_flow(pb, cmp):
    # the Dopri8 flow in compare and solve_flow (log-norm coordinates) are independent
    a = cmp.alignments[2]
    idx = np.linspace(0, len(a.ts) - 1, 30).astype(int)
    fl = ft.solve_flow(pb, a.gd[0], t1=float(a.ts[-1]), loss_threshold=0, save_ts=a.ts[idx],
                       solver="tsit5", rtol=1e-11)
    np.testing.assert_allclose(fl.thetas, a.flows[0][idx], atol=1e-7)


def test_gd_records_match_run_gd(pb, cmp):
    a = cmp.alignments[3]  # lr = 0.03
    gd = ft.run_gd(pb, a.gd[0], a.lr, max_iter=int(round(a.ts[-1] / a.lr)), loss_threshold=0,
                   n_save=50)
    np.testing.assert_allclose(gd.theta_final, a.gd[-1], rtol=1e-12, atol=1e-14)
    assert gd.t_final == pytest.approx(a.ts[-1])


def test_modified_field_is_gradient_of_modified_loss(pb):
    th = jnp.array([0.3, 0.5, -0.2, 0.1, 0.4, 0.2])
    for lr in (0.01, 0.2):
        F = modified_field(pb, lr, 1)(th)
        np.testing.assert_allclose(F, -jax.grad(modified_loss(pb, lr))(th), rtol=1e-13)
    # the η² term against finite differences of the Hessian-vector product
    g = pb.grad(th)
    H = pb.hessian(th)
    h = 1e-4
    T3 = (pb.hessian(th + h * g) @ g - pb.hessian(th - h * g) @ g) / (2 * h)
    expect = -g - 0.05 * H @ g - 0.1**2 * (T3 / 12 + H @ H @ g / 3)
    np.testing.assert_allclose(modified_field(pb, 0.1, 2)(th), expect, rtol=1e-7, atol=1e-9)


def test_escape_rate_linearized_round_off(pb):
    for lr in (1e-3, 1e-2, 0.05, 0.3):
        rho = escape_rate(pb, lr)
        assert abs(linearized_gd_rate(pb, lr) - rho) < 50 * np.finfo(float).eps / lr
        # series μ1 − ημ1²/2 + η²μ1³/3: the modified flows' rates to O(η³)
        mu = pb.mu1
        assert abs(rho - (mu - lr * mu**2 / 2 + lr**2 * mu**3 / 3)) < 2 * (lr * mu) ** 3 * mu


def test_escape_shift_scales_with_log_scale(pb):
    # GD's escape is delayed by log(R/‖P1θ0‖)(1/ρ − 1/μ1) + a term independent of the scale:
    # the shift's slope in log(1/α) is (1/ρ − 1/μ1) (θ0 along the top eigenvector)
    v = pb.top_eigvecs.sum(1)
    lr, shifts = 0.01, []
    for alpha in (1e-3, 1e-6):
        a = align(pb, alpha * v, lr, t1=5.0)
        from flowtools.discretization import escape_time
        shifts.append(escape_time(a.ts, a.gd, 0.5) - escape_time(a.ts, a.flows[0], 0.5))
    slope = (shifts[1] - shifts[0]) / np.log(1e3)
    expect = 1 / escape_rate(pb, lr) - 1 / pb.mu1
    assert slope == pytest.approx(expect, rel=0.05)


def test_stability_edge(pb):
    for th in ([0.5, 1, 1, 0.5, 1, 1], [1, 1, 1, 0, 0.3, -0.2]):
        e = stability_edge(pb, np.array(th, float))
        lam = np.linalg.eigvalsh(np.asarray(pb.hessian(jnp.array(th, float))))[-1]
        assert e.lr_edge == pytest.approx(2 / lam, rel=1e-14)
        assert e.lr_measured == pytest.approx(e.lr_edge, rel=1e-3)
    # the paper's lr = 0.5 is beyond every Q1 point's edge on Example 1 (n = 6)
    assert stability_edge(pb, np.array([0.5, 1, 1, 0.5, 1, 1.0]), measure=False).lr_edge < 0.3


def test_beyond_edge_is_flagged_not_nan(pb):
    th0 = pb.init_gaussian(1e-2, seed=0)
    with pytest.warns(GDStabilityWarning) as rec:
        c = compare(pb, th0, [0.01, 0.02, 0.35, 0.6], t1=10.0)
    assert list(c.regime[:2]) == [Regime.FOLLOWS, Regime.FOLLOWS]
    assert set(c.regime[2:]) <= {Regime.BEYOND_EDGE, Regime.DIVERGED}
    assert any("stability edge" in str(w.message) or "diverged" in str(w.message) for w in rec)
    # the fitted order uses the FOLLOWS rates only, so it stays the first-order slope
    assert c.orders[0] == pytest.approx(fit_order(c.lrs[:2], c.gap[0, :2]), rel=1e-14)
    assert c.orders[0] == pytest.approx(1.0, abs=0.1)
    # diverged rates have NaN gaps *and* a regime saying so
    for st, g in zip(c.regime, c.gap[0], strict=True):
        assert np.isfinite(g) or st is Regime.DIVERGED
    assert c.to_dict()["regime"][:2] == ["FOLLOWS", "FOLLOWS"]
    assert "BEYOND_EDGE" in c.table() or "DIVERGED" in c.table()


def test_bad_input(pb):
    th0 = pb.init_gaussian(1e-2, seed=0)
    for lr in (0.0, -1.0, np.nan):
        with pytest.raises(FlowtoolsError, match="learning rate"):
            compare(pb, th0, [lr])
    with pytest.raises(FlowtoolsError, match="order"):
        modified_field(pb, 0.1, 3)
    with pytest.raises(FlowtoolsError, match="shorter"):
        align(pb, th0, 0.5, t1=0.1)
    with pytest.raises(FlowtoolsError, match="c̃"):
        branch_map(pb, [1.5])


def test_branch_map_small(pb):
    # c̃ far from the boundary (~0.71 for the flow): GD at η = 0.05 and the flow agree;
    # η = 0.5 is beyond every end point's edge and is reported so
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bm = branch_map(pb, [0.3, 0.95], [0.05, 0.5], horizon=2e3)
    assert list(bm.flow) == ["Q2", "Q1"]
    assert list(bm.gd_limit[0]) == ["Q2", "Q1"]
    assert list(bm.gd_regime[0]) == [Regime.FOLLOWS] * 2
    # label arrays hold labels only: GD beyond the edge (or diverged) has none, its regime
    # (and, where it overflowed, the run's status) says why
    assert list(bm.gd_limit[1]) == ["", ""]
    assert set(bm.gd_regime[1]) <= {Regime.BEYOND_EDGE, Regime.DIVERGED}
    for lab, reg, st in zip(bm.gd_T[1], bm.gd_regime[1], bm.gd_status[1], strict=True):
        assert (lab == "") == (reg is Regime.DIVERGED) == (st is Status.NONFINITE)
    assert set(bm.flow_status) == {Status.CONVERGED}
    assert all(lab in ("Q1", "Q2", "other", "") for lab in bm.gd_T.ravel())
    d = bm.to_dict()
    assert d["flow_status"] == ["CONVERGED", "CONVERGED"] and d["gd_regime"][0] == ["FOLLOWS"] * 2
    assert np.all(bm.flow_edge < 0.5)
    assert [d[0] for d in bm.disagree] == [0.5, 0.5]


@pytest.mark.slow
def test_branch_map_boundary_shift(pb):
    # near the boundary GD at larger η lands on Q2 where the flow reaches Q1
    bm = branch_map(pb, [0.70, 0.72, 0.74, 0.76], [0.01, 0.05, 0.25])
    assert list(bm.flow) == ["Q2", "Q1", "Q1", "Q1"]
    assert list(bm.gd_limit[2]) == ["Q2", "Q2", "Q2", "Q1"]


def _least_squares(theta, data):
    X, y = data
    r = X @ theta - y
    return 0.5 * jnp.dot(r, r)


def test_compare_any_model_linear_least_squares():
    # ℓ = ½‖Xθ − y‖² (a LossModel, no theory): with e = θ − θ*, H = XᵀX, GD is
    # e_k = (I − ηH)^k e0 and the flow e(t) = exp(−Ht) e0, so the gap has a closed form
    X = np.array([[1.0, 0.0, 0.5], [1.0, 1.0, -0.5], [1.0, 2.0, 0.0], [0.5, -1.0, 1.0]])
    star = np.array([0.5, -1.0, 2.0])
    model = ft.LossModel(_least_squares, (X, X @ star), n_params=3)
    lam, V = np.linalg.eigh(X.T @ X)
    th0 = np.array([1.0, 0.5, -0.5])
    lrs = [0.004, 0.008, 0.016, 0.032]
    c = compare(model, th0, lrs, t1=2.0, n_rec=400, endpoint_t1=3.0, loss_threshold=0.0,
                keep=True)
    e0 = V.T @ (th0 - star)
    for a, g in zip(c.alignments, c.gap[0], strict=True):
        k = np.round(a.ts / a.lr)[:, None]
        gd = (1 - a.lr * lam) ** k * e0
        flow = np.exp(-lam * a.ts[:, None]) * e0
        np.testing.assert_allclose(a.gd, gd @ V.T + star, rtol=0, atol=1e-12)
        np.testing.assert_allclose(a.flows[0], flow @ V.T + star, rtol=0, atol=1e-10)
        assert g == pytest.approx(np.max(np.linalg.norm(gd - flow, axis=-1)), rel=1e-8)
    assert list(c.regime) == [Regime.FOLLOWS] * 4
    assert c.lr_edge_path == pytest.approx(2 / lam[-1], rel=1e-12)
    np.testing.assert_allclose(c.orders, [1.0, 2.0, 3.0], atol=0.05)
    assert np.all(np.isnan(c.escape_pred_shift))  # needs the theory's μ1: NaN, not a guess
    # end points: GD after round(T/η) steps against exp(−HT); no branches for this model
    for lr, d in zip(lrs, c.endpoint_diff, strict=True):
        K = round(3.0 / lr)
        expect = np.linalg.norm((1 - lr * lam) ** K * e0 - np.exp(-3.0 * lam) * e0)
        assert d == pytest.approx(expect, rel=1e-6)
    assert c.flow_branch == "" and list(c.gd_branch) == [""] * 4 and c.same_branch is None
    assert "FOLLOWS" in c.table()
    with pytest.raises(ft.AssumptionError):
        escape_rate(model, 0.01)
    with pytest.raises(FlowtoolsError, match="two-layer"):
        branch_map(model, [0.5])

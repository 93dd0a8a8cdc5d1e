"""The reproduce frame: claims, the one outcome rule, the runner's files, the CLI, and the
loss convention (sum vs mean) that the learning-rate puzzle rests on."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
import xarray as xr

import flowtools as ft
from flowtools.branches import generalization_error
from flowtools.cli import main
from flowtools.errors import FlowtoolsError
from flowtools.experiments import reproduce as R
from flowtools.experiments.claims import Claim, claims_from_json, claims_json, claims_markdown
from flowtools.experiments.outcomes import Criterion, outcome, outcome_counts

Q1_POINT = np.array([0.3, 1, 1, 0.7, 1, 1])  # a1 + a2 = 1, w = b = 1: f = tanh(x + 1)
Q2_POINT = np.array([-1.0, -1, -1, 0, 0.4, -2.0])  # neuron 1 flipped, neuron 2 silent


# ---------------------------------------------------------------- claims
def test_claims_round_trip_and_markdown_escapes_pipes():
    cs = [Claim("n = 6 | all recover", "135/135", True),
          Claim("c̃* = 0.74", "0.71", False, "bisection on the limit"),
          Claim("quick run", "3 seeds", None)]
    back = claims_from_json(claims_json(cs))
    assert back == cs
    assert [c["verdict"] for c in json.loads(claims_json(cs))] == ["agree", "DISAGREE",
                                                                   "undecided"]
    md = claims_markdown(cs, figure="fig4").splitlines()
    assert len(md) == 2 + len(cs)
    assert md[2].count(" | ") == 4  # the claim's own "|" is escaped, not a column
    with pytest.raises(TypeError):
        Claim("x", "y", "yes")


# ---------------------------------------------------------------- the outcome rule
def test_outcome_rule_on_points_of_known_type():
    pb = ft.example1(6)
    crit = Criterion(kind="rms", floor=1e-8, loss_tol=1e-20)
    # a global minimum outside Q* needs data it fits exactly: n = 2 points, a neuron that
    # interpolates them but is not the target
    pb2 = ft.example1(2)
    x, y = np.asarray(pb2.X)[:, 0], np.asarray(pb2.y)
    # a1 tanh(w x + b) through both points with w = 2: solve for b, a1 by bisection
    from scipy.optimize import brentq

    w = 2.0
    b = brentq(lambda b: y[0] * np.tanh(w * x[1] + b) - y[1] * np.tanh(w * x[0] + b), -5, 5)
    a1 = y[0] / np.tanh(w * x[0] + b)
    other = np.array([a1, w, b, 0.0, 0.3, 0.2])
    assert float(pb2.loss(other)) < 1e-28
    got = outcome(pb2, other[None], np.array([float(pb2.loss(other))]), crit)
    assert list(got) == ["global min outside Q*"]
    theta = np.stack([Q1_POINT, Q2_POINT, Q1_POINT + 1e-3, np.full(6, np.inf)])
    loss = np.array([0.0, 0.0, float(pb.loss(Q1_POINT + 1e-3)), np.inf])
    labels = outcome(pb, theta, loss, crit)
    assert list(labels) == ["Q1", "Q2", "not converged", "diverged"]
    counts = outcome_counts(labels)
    assert counts["Q1"] == counts["Q2"] == counts["diverged"] == 1 and sum(counts.values()) == 4
    assert "RMS error ≤ 1e-08" in crit.label
    with pytest.raises(FlowtoolsError):
        Criterion(kind="max")


def test_mse_is_the_square_of_the_rms():
    pb = ft.example1(6)
    th = pb.init_gaussian(0.5, seed=3)[None]
    rms = generalization_error(pb, th)
    mse = generalization_error(pb, th, kind="mse")
    np.testing.assert_allclose(mse, rms**2, rtol=1e-14)
    with pytest.raises(FlowtoolsError):
        generalization_error(pb, th, kind="l1")


# ---------------------------------------------------------------- loss convention
def test_mean_loss_is_the_sum_loss_over_n_and_gd_rescales_its_rate():
    n = 6
    ps, pm = ft.example1(n), ft.example1(n, loss_convention="mean")
    th = ps.init_gaussian(0.3, seed=1)
    np.testing.assert_allclose(float(pm.loss(th)) * n, float(ps.loss(th)), rtol=1e-15)
    np.testing.assert_allclose(pm.mu1 * n, ps.mu1, rtol=1e-15)
    np.testing.assert_allclose(pm.ratio(th), ps.ratio(th), rtol=0)  # C's direction
    # GD on the mean loss at rate η is GD on the sum loss at rate η/n, iterate by iterate
    gm = ft.run_gd(pm, th[None], lr=0.5, max_iter=2000, loss_threshold=0)
    gs = ft.run_gd(ps, th[None], lr=0.5 / n, max_iter=2000, loss_threshold=0)
    scale = np.linalg.norm(gs.theta_final)
    assert np.linalg.norm(gm.theta_final - gs.theta_final) <= 1e-12 * scale
    with pytest.raises(FlowtoolsError, match="loss_convention"):
        ft.example1(n, loss_convention="average")
    with pytest.raises(FlowtoolsError, match="sum loss"):
        ft.OriginHessian.from_problem(pm)


def test_mean_loss_flow_is_the_sum_flow_at_time_over_n():
    """φ_mean(θ, t) = φ_sum(θ, t/n): the mean-loss field is the sum field over n."""
    n = 4
    ps, pm = ft.example1(n), ft.example1(n, loss_convention="mean")
    th = ps.init_gaussian(0.2, seed=2)[None]
    T = 30.0
    fs = ft.solve_flow(ps, th, t1=T, loss_threshold=0, gtol=0)
    fm = ft.solve_flow(pm, th, t1=n * T, loss_threshold=0, gtol=0)
    gap = np.linalg.norm(fs.theta_final - fm.theta_final) / np.linalg.norm(fs.theta_final)
    assert gap < 1e-7  # both at the default tolerances (rtol 1e-10): far below this


# ---------------------------------------------------------------- the runner
@pytest.fixture
def fake_figure(monkeypatch):
    mod = types.ModuleType("flowtools.experiments.figures.fake_test")
    mod.TITLE = "Fake: a parabola"
    mod.GD = False
    mod.FULL_TIME = "1 s"

    def compute(*, quick, gd, log):
        x = np.linspace(0, 1, 5 if quick else 50)
        return xr.Dataset({"y": ("x", x**2)}, coords={"x": x},
                          attrs={"settings": {"n": x.size}, "ok": True, "none": None,
                                 "mode": "a name scipy's writer reserves"})

    def plot(ds):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.plot(ds.x, ds.y)
        return fig

    def claims(ds):
        return [Claim("y = x²", f"max |y − x²| = {float(abs(ds.y - ds.x**2).max()):.1e}",
                      bool(abs(ds.y - ds.x**2).max() == 0))]

    mod.compute, mod.plot, mod.claims = compute, plot, claims
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setattr(R, "FIGURES", {"fake": "fake_test"})
    return mod


def test_reproduce_writes_png_netcdf_and_claims(fake_figure, tmp_path):
    run = R.reproduce("fake", quick=True, out=tmp_path, log=lambda *a: None)
    assert [p.name for p in run.files] == ["fake.png", "fake.nc", "fake_claims.json"]
    assert all(p.stat().st_size > 0 for p in run.files)
    with xr.open_dataset(tmp_path / "fake.nc") as ds:
        assert ds.y.dims == ("x",) and ds.sizes["x"] == 5
        assert ds.attrs["run_mode"] == "quick" and ds.attrs["flowtools_version"] == ft.__version__
        assert json.loads(ds.attrs["settings"]) == {"n": 5} and ds.attrs["ok"] == 1
        assert ds.attrs["attr_mode"].startswith("a name")
        assert claims_from_json(ds.attrs["claims"])[0].agree is True
    js = json.loads((tmp_path / "fake_claims.json").read_text())
    assert js["claims"][0]["verdict"] == "agree"
    assert not list(tmp_path.glob("*.tmp*"))  # atomic writes leave no temporaries
    assert not list(tmp_path.glob(".flowtools-staging-*"))  # the set was moved in whole


def test_reproduce_all_keeps_going_after_a_failure(fake_figure, monkeypatch, tmp_path):
    broken = types.ModuleType("flowtools.experiments.figures.broken_test")
    broken.TITLE, broken.GD, broken.FULL_TIME = "Broken", False, "-"

    def compute(**kw):
        raise FlowtoolsError("this figure needs something it does not have")

    broken.compute = compute
    monkeypatch.setitem(sys.modules, broken.__name__, broken)
    monkeypatch.setattr(R, "FIGURES", {"broken": "broken_test", "fake": "fake_test"})
    runs, failed = R.reproduce_all(quick=True, out=tmp_path, log=lambda *a: None)
    assert [r.name for r in runs] == ["fake"] and list(failed) == ["broken"]
    assert not (tmp_path / "broken.png").exists() and not (tmp_path / "broken.nc").exists()
    summary = json.loads((tmp_path / "reproduce_all.json").read_text())
    assert summary["failed"]["broken"].startswith("FlowtoolsError")
    md = (tmp_path / "claims.md").read_text()
    assert "| fake |" in md and "FAILED" in md


def test_cli_rejects_unknown_and_missing_figures(capsys):
    assert main(["reproduce", "fig99"]) == 2
    assert "fig99" in capsys.readouterr().err
    assert main(["reproduce"]) == 2


def test_cli_list_names_every_registered_figure(capsys):
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    for name in R.FIGURES:
        assert f"\n{name} " in out or out.startswith(f"{name} ")


def test_init_c_tilde_hits_the_grid_including_zero_and_one():
    pb = ft.example1(6)
    cts = np.array([0.0, 0.3, 1.0])
    th = pb.init_c_tilde(cts, 1e-8, seed=4)
    np.testing.assert_allclose(pb.ratio_tilde(th)[1:], cts[1:], rtol=1e-12)
    C = pb.imbalance(th[0])
    g = np.linalg.norm(pb.gamma)
    assert abs(C[0]) <= 1e-14 * np.linalg.norm(th[0]) * g  # C1 = 0 to round-off
    assert float(pb.ratio_tilde(th[0])) == abs(C[0] / C[1])  # no division warning at 0
    # the rest of the draw is kept: only neuron 1's v1 component is removed
    v1 = pb.top_eigvecs[:, 0]
    base = pb.init_gaussian(1e-8, seed=4)
    np.testing.assert_allclose(th[0] + (base @ v1) * v1, base, rtol=0, atol=1e-22)
    with pytest.raises(FlowtoolsError, match=r"\[0, 1\]"):
        pb.init_c_tilde([0.5, 1.5], 1e-8)


def test_padded_problem_refuses_what_it_cannot_keep():
    pb = ft.example1(6)
    with pytest.raises(FlowtoolsError, match="below"):
        pb.padded(4)
    # zero-weight rows keep the mean loss and σ(0) ≠ 0 too (tests/test_padding.py)
    assert ft.example1(6, loss_convention="mean").padded(8).n == 6
    assert ft.make_problem(3, activation="tanh(x) + 1").padded(8).n == 3

"""Figures 8, 9, 10 (Appendix B, d = 3) through ``reproduce`` in quick mode: the files, and
the mathematics of the runs (c̃ = 0 and 1 exactly, one outcome rule, the recovery floor,
the padded loss identity, Figures 8 and 10 reading Figure 9's store)."""

import json
import re

import numpy as np
import pytest
import xarray as xr

import flowtools as ft
from flowtools.experiments.claims import claims_from_json
from flowtools.experiments.figures import fig9
from flowtools.experiments.outcomes import outcome
from flowtools.experiments.reproduce import reproduce

RECOVERED = ("Q1", "Q2")


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("d3")


@pytest.fixture(scope="module")
def run9(out):
    return reproduce("fig9", quick=True, out=out, log=lambda *a: None)


def _logged(name, out):
    lines = []
    return reproduce(name, quick=True, gd=True, out=out, log=lines.append), lines


@pytest.fixture(scope="module")
def run8(out, run9):
    return _logged("fig8", out)


@pytest.fixture(scope="module")
def run10(out, run9):
    return _logged("fig10", out)


def _read(run, name):
    nc = [f for f in run.files if f.suffix == ".nc"][0]
    with xr.open_dataset(nc, engine="scipy") as ds:
        return ds.load()


def test_padded_loss_is_the_problem_loss():
    # zero-weight rows add exactly nothing: the same ℓ and ∇ℓ for every n
    rng = np.random.default_rng(1)
    for n in (5, 8, 10):
        pb = fig9.problem(n, 0)
        model = pb.padded(fig9.N_MAX)
        th = rng.standard_normal((3, pb.n_params))
        for t in th:
            assert float(model.loss(t)) == pytest.approx(float(pb.loss(t)), rel=1e-13)


def test_initial_states_hit_c_tilde_exactly():
    pb = fig9.problem(6, 0)
    cts = np.array([0.0, 0.3, 1.0])
    th = pb.init_c_tilde(cts, fig9.SCALE, seed=0)  # the grids' init.c_tilde
    C = pb.imbalance(th)
    # C1 = 0 to round-off: |C1| ≤ a few ulps of the terms a1‖γ‖, w1ᵀγ that cancel
    scale = np.abs(th[0, :5]).max() * np.linalg.norm(pb.gamma)
    assert abs(C[0, 0]) <= 1e-14 * scale
    assert pb.ratio_tilde(th[1:]) == pytest.approx([0.3, 1.0], rel=1e-12)
    assert np.linalg.norm(th, axis=1).max() < 1e-18  # scale 1e-20, p = 10


@pytest.mark.parametrize("name", ["fig8", "fig9", "fig10"])
def test_files_read_back(name, run8, run9, run10):
    run = {"fig8": run8[0], "fig9": run9, "fig10": run10[0]}[name]
    assert {f.suffix for f in run.files} == {".png", ".nc", ".json"}
    ds = _read(run, name)
    assert "c_tilde" in ds.dims and "param" in ds.dims
    assert list(ds["param"].values)[:2] == ["a1", "w1^1"]
    cl = claims_from_json(ds.attrs["claims"])
    assert len(cl) == len(run.claims) >= 3
    assert ds.attrs["decided_at"] == "t → ∞ (certified end points)"
    assert ds.attrs["recovery_floor"] == 1e-7
    cj = json.loads([f for f in run.files if f.name.endswith("_claims.json")][0].read_text())
    assert cj["mode"] == "quick"


def _check_rule(pb, ds_theta, loss, err, lab):
    """The stored outcomes are outcomes.outcome's; recovered ⇔ error ≤ 1e-7 at ℓ ≤ 1e-15."""
    again = outcome(pb, ds_theta, loss, fig9.CRITERION, errors=err)
    assert list(again) == list(lab)
    rec = np.isin(lab, RECOVERED)
    assert np.all(err[rec] <= 1e-7)
    assert np.all((err[~rec] > 1e-7) | (loss[~rec] > 1e-15))


def test_fig8_facts(run8):
    ds = _read(run8[0], "fig8")
    cts = ds["c_tilde"].values
    lab = ds["outcome"].values.astype(str)
    pb = fig9.problem(10, 0)
    _check_rule(pb, ds["theta_end"].values, ds["loss_end"].values, ds["error_rms"].values, lab)
    assert np.all(np.isin(lab, RECOVERED))               # n = 10 ≥ 9: every c̃ recovers
    assert lab[cts == 1.0][0] == "Q1" and lab[cts == 0.0][0] == "Q2"
    e, m = ds["error_rms"].values, ds["error_mse"].values
    np.testing.assert_allclose(m, e**2, rtol=1e-10)     # MSE = RMS²
    # stopped at ℓ ≤ 1e-15: training RMS residual √(2ℓ/n) ≤ 1.42e-8
    assert np.all(ds["loss_1e15"].values <= 1e-15)
    assert np.all(ds["error_mse_1e15"].values < 1e-7)
    # the stop at ℓ = 1e-15 is the flow stopped there (one flow serves both)
    tr = ft.solve_flow(pb.padded(fig9.N_MAX), ds["theta0"].values, t1=1e16,
                       loss_threshold=1e-15, max_steps=100_000)
    np.testing.assert_allclose(ds["theta_1e15"].values, tr.theta_final, rtol=0, atol=1e-7)
    np.testing.assert_allclose(ds["loss_1e15"].values, tr.loss_final, rtol=1e-6)
    # the certified ends are far lower than the paper's stopping loss
    assert np.all(ds["loss_end"].values < 1e-17)
    # GD at lr 0.5 with the sum loss diverges: 0.5 > 2/λ_max near every end point
    assert np.all(ds["gd_outcome"].values.astype(str) == "diverged")


def test_fig9_facts(run9):
    ds = _read(run9, "fig9")
    cts = ds["c_tilde"].values
    ns = list(ds["n"].values)
    lab = ds["outcome"].values.astype(str)
    for k, n in enumerate(ns):
        pb = fig9.problem(n, 0)
        _check_rule(pb, ds["theta_end"].values[k, 0], ds["loss_end"].values[k, 0],
                    ds["error_rms"].values[k, 0], lab[k, 0])
    i1, i0 = int(np.flatnonzero(cts == 1.0)[0]), int(np.flatnonzero(cts == 0.0)[0])
    assert ds["c_tilde_measured"].values[:, :, i1] == pytest.approx(1.0, rel=1e-12)
    assert np.all(ds["c_tilde_measured"].values[:, :, i0] < 1e-12)
    # c̃ = 1: the neurons stay proportional — a single neuron fits, Q1 for every n ≥ 5
    assert np.all(lab[:, 0, i1] == "Q1")
    # c̃ = 0: C1 = 0 leaves neuron 1 silent — Q2 (its origin) for every n ≥ 5
    assert np.all(lab[:, 0, i0] == "Q2")
    assert np.all(np.isin(lab[ns.index(10), 0], RECOVERED))
    # recovered runs sit well below the floor, failures far above: the floor decides
    e = ds["error_rms"].values
    rec = np.isin(lab, RECOVERED)
    assert e[rec].max() < 1e-7 / 3 and e[~rec].min() > 1e-5


def _from_store(lines, grid):
    """(computed, from the store) of ``grid`` in an engine's log."""
    found = [re.match(rf"\s*{grid}: (\d+) cell\(s\) computed, (\d+) from the store", x)
             for x in lines]
    (m,) = [m for m in found if m]
    return int(m[1]), int(m[2])


def test_fig8_fig10_read_fig9s_store(run9, run8, run10):
    d9 = _read(run9, "fig9")
    cells = d9["theta_end"].values[..., 0].size
    for run, lines in (run8, run10):
        # the same grid, the same store: nothing recomputed
        assert _from_store(lines, "fig9_quick_flow") == (0, cells)
        np.testing.assert_array_equal(
            _read(run, "")["theta_end"].values,
            d9["theta_end"].values if run.name == "fig10" else
            d9["theta_end"].sel(n=10, data_seed=0).values)
    assert _from_store(run8[1], "fig8_quick_gd") == (len(d9["c_tilde"]), 0)  # its own GD


def test_fig10_neuron_norms(run10):
    d10 = _read(run10[0], "fig10")
    cts = d10["c_tilde"].values
    i0 = int(np.flatnonzero(cts == 0.0)[0])
    # the C = 0 neuron stays at the origin of Q2 (its init scale is 1e-20; the flow moves it
    # only by round-off of the other neuron's growth)
    assert np.all(d10["neuron_norm"].values[:, 0, i0].min(-1) < 1e-6)
    nn = d10["neuron_norm"].values
    np.testing.assert_allclose(
        nn, np.linalg.norm(d10["theta_end"].values.reshape(nn.shape + (5,)), axis=-1))


def test_fig10_imperfect_global_minima_near_c0(run10):
    ds = _read(run10[0], "fig10")
    cts = ds["c_tilde"].values
    ns = list(ds["n"].values)
    j = int(np.flatnonzero(cts == 0.1)[0])
    for n in (6, 7, 8):
        k = ns.index(n)
        # c̃ = 0.1 (near 0, not 0): zero training loss, yet not the target — a global
        # minimum outside Q*, with both neurons away from the origin
        assert str(ds["outcome"].values[k, 0, j]) == "global min outside Q*"
        assert ds["loss_end"].values[k, 0, j] < 1e-20
        assert ds["neuron_norm"].values[k, 0, j].min() > 1e-2

"""`flowtools reproduce thresholds` in quick mode: the dataset's layout, predictions from
``flowtools.thresholds``, recovery rates from the sweep engine's stores (resumed, not
recomputed), and claims whose verdicts follow the data."""

import json

import numpy as np
import pytest
import xarray as xr

import flowtools as ft
from flowtools.experiments.claims import claims_from_json
from flowtools.experiments.figures import thresholds as T
from flowtools.experiments.reproduce import FIGURES, reproduce


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    return tmp_path_factory.mktemp("thr_stores")


@pytest.fixture(scope="module")
def quick(stores):
    lines = []
    ds = T.compute(quick=True, log=lines.append, store_dir=stores)
    return ds, lines


def _claim(claims, key, part):
    title = str(dict((c.key, c.title) for c in T.CASES)[key])
    hits = [c for c in claims if c.claim.startswith(title) and part in c.claim]
    assert len(hits) == 1, [c.claim for c in claims]
    return hits[0]


def test_registered():
    assert FIGURES["thresholds"] == "thresholds"


def test_sample_sizes_span_the_thresholds():
    pred = {"optimistic": 3, "separation": 5,
            "branches": [("T1+S+S", "", 4, 5, "clean"), ("T3", "", 2, 7, "conjectured")]}
    assert T.sample_sizes(pred, quick=False) == [2, 3, 4, 5, 6, 7]
    assert T.sample_sizes(pred, quick=True) == [2, 3, 5]


def test_grids_special_only_for_width_two_and_stores_keyed_by_grid(tmp_path):
    s = T.settings(False)
    m3 = [c for c in T.CASES if c.width == 3][0]
    ex1 = T.CASES[0]
    assert set(T.grids(m3, [3], s, "full")) == {"random"}
    g = T.grids(ex1, [3, 4], s, "full")
    assert set(g) == {"random", "special"}
    assert g["special"]["init"]["c_tilde"][-1] == 1.0
    # another grid (other n) → another store: results are never mixed
    a = T.store_path(g["random"], tmp_path)
    b = T.store_path(T.grids(ex1, [3], s, "full")["random"], tmp_path)
    assert a != b and a.parent == b.parent == tmp_path


def test_dataset_layout_and_predictions(quick):
    ds, _ = quick
    assert ds["gen_error"].dims == ("case", "n", "data_seed", "seed")
    assert ds["gen_error_special"].dims == ("case", "n", "data_seed", "c_tilde")
    assert list(ds["case"].values) == [c.key for c in T.CASES]
    s = T.settings(True)
    assert ds.sizes["data_seed"] == len(s["data_seeds"]) and ds.sizes["seed"] == len(s["seeds"])
    # the predictions are flowtools.thresholds' (Table 1 for Example 1)
    from flowtools.thresholds import thresholds

    for c in T.CASES:
        th = thresholds(T.problem(c))
        sel = ds.sel(case=c.key)
        assert int(sel["optimistic"]) == th.optimistic
        assert int(sel["separation"]) == th.separation
    ex1 = ds.sel(case="ex1")
    assert (int(ex1["optimistic"]), int(ex1["separation"])) == (3, 4)
    # quick: Example 1 at N − 1, N, S; every other case not computed (all NaN)
    assert list(ds["n"].values) == [2, 3, 4]
    assert [int(v) for v in ds["computed"].values] == [1, 0, 0, 0]
    assert np.isfinite(ex1["gen_error"].values).all()
    assert np.isnan(ds["gen_error"].sel(case="m3").values).all()
    # every run certified: the loss stop reached
    assert (ex1["loss_final"].values <= T.LOSS_STOP).all()


def test_recovery_is_the_tolerance_applied_to_the_errors(quick):
    ds, _ = quick
    e = ds["gen_error"].sel(case="ex1").values
    np.testing.assert_array_equal(ds["recovered"].sel(case="ex1").values,
                                  (e <= T.TOL).astype(float))
    np.testing.assert_allclose(ds["recovery_rate"].sel(case="ex1").values,
                               (e <= T.TOL).mean(axis=(1, 2)))


def test_no_recovery_below_the_optimistic_size(quick):
    # n = 2 < 3: the zero set of ℓ has dimension ≥ p − n = 4 > dim Q*; a flow ending in
    # Q* is a measure-zero event — no cell, random or prescribed c̃, recovers
    ds, _ = quick
    ex1 = ds.sel(case="ex1", n=2)
    assert not np.any(ex1["gen_error"].values <= T.TOL)
    assert not np.any(ex1["gen_error_special"].values <= T.TOL)
    cl = _claim(T.claims(ds), "ex1", "(i) below")
    assert cl.agree is True


def test_claims_follow_the_data(quick):
    ds, _ = quick
    claims = T.claims(ds)
    assert all(c.agree is None for c in claims if "not computed" in c.measured)
    # the paper's Table 1 values, from the predictions
    assert [c.agree for c in claims if "the paper's sizes" in c.claim] == [True, True]
    # a recovery planted below N turns (i) into a disagreement
    bad = ds.copy(deep=True)
    bad["gen_error"].loc[dict(case="ex1", n=2, data_seed=0, seed=0)] = 0.0
    bad["recovered"] = (bad["gen_error"].dims, T.recovered(bad["gen_error"].values))
    assert _claim(T.claims(bad), "ex1", "(i) below").agree is False
    # no recovery at S turns (iii) into a disagreement, naming n
    none = ds.copy(deep=True)
    none["recovered"].loc[dict(case="ex1", n=4)] = 0.0
    cl = _claim(T.claims(none), "ex1", "(iii)")
    assert cl.agree is False and "n = 4" in cl.evidence
    # (ii) random half: decided from the counts at N
    two = _claim(claims, "ex1", "recovery has measure zero")
    k = int(np.nansum(ds["recovered"].sel(case="ex1", n=3).values))
    assert two.agree is (k == 0)
    assert f"n=3: {k}/" in two.measured


def test_rerun_resumes_from_the_stores(quick, stores):
    ds, lines = quick
    assert any("cell(s) computed, 0 from the store" in ln for ln in lines)
    again = []
    ds2 = T.compute(quick=True, log=again.append, store_dir=stores)
    sweeps = [ln for ln in again if "cell(s) computed" in ln]
    assert sweeps and all(ln.lstrip().split(": ")[1].startswith("0 cell(s) computed")
                          for ln in sweeps)
    xr.testing.assert_identical(ds, ds2)


def test_reproduce_writes_the_figure(quick, stores, tmp_path, monkeypatch):
    monkeypatch.setattr(T, "STORE_DIR", stores)  # the quick stores: nothing recomputed
    run = reproduce("thresholds", quick=True, out=tmp_path, log=lambda *a: None)
    assert {f.suffix for f in run.files} == {".png", ".nc", ".json"}
    nc = [f for f in run.files if f.suffix == ".nc"][0]
    with xr.open_dataset(nc, engine="scipy") as back:
        back = back.load()
    assert back["gen_error"].dims == ("case", "n", "data_seed", "seed")
    assert back.attrs["recovery_tol"] == T.TOL
    assert len(claims_from_json(back.attrs["claims"])) == len(run.claims)
    cj = json.loads([f for f in run.files if f.name.endswith("_claims.json")][0].read_text())
    assert cj["mode"] == "quick"


def test_problem_matches_the_sweep_family():
    # the predictions are made for the problem the sweep cells build
    from flowtools.sweep.two_layer import problem_from

    c = T.CASES[1]
    a = T.problem(c, 7)
    b = problem_from(dict(n=7, sampling=T.SAMPLING, activation="tanh", width=c.width,
                          dim=c.dim, bias=True, data_seed=0))
    np.testing.assert_array_equal(np.asarray(a.Xa), np.asarray(b.Xa))
    assert a.n_params == b.n_params == ft.make_problem(7, dim=3, sampling="uniform").n_params


# ------------------------------------------------- the sweep family's pad_to (used above)
_PAD_GRID = """
[problem]
n = [3, 5]
sampling = "uniform"
data_seed = 1
{pad}
[init]
scale = 1e-3
seed = [0, 1]
[integrator]
dynamics = "gd"
lr = 0.05
max_iter = 300
"""


def test_sweep_pad_to_one_compilation_same_results(tmp_path):
    from flowtools.sweep import Grid, open_results, run_sweep

    plain = Grid.from_text(_PAD_GRID.format(pad=""))
    padded = Grid.from_text(_PAD_GRID.format(pad="pad_to = 5"))
    # a grid without pad_to (or with 0) keeps its definition, hence its stores
    assert "pad_to" not in plain.definition()["fixed"]
    assert Grid.from_text(_PAD_GRID.format(pad="pad_to = 0")).key() == plain.key()
    assert padded.definition()["fixed"]["pad_to"] == 5
    ra = run_sweep(plain, tmp_path / "a.zarr")
    rb = run_sweep(padded, tmp_path / "b.zarr")
    assert sum(w["compiles"] for w in ra.workers.values()) == 2      # one per n
    assert sum(w["compiles"] for w in rb.workers.values()) == 1      # every n ≤ 5
    a, b = open_results(ra.store), open_results(rb.store)
    # zero rows add nothing (tanh(0) = 0): the same GD iterates up to round-off
    np.testing.assert_allclose(b.theta_final.values, a.theta_final.values, rtol=0,
                               atol=1e-12)
    np.testing.assert_allclose(b.loss_final.values, a.loss_final.values, rtol=1e-9)


def test_sweep_pad_to_refused_where_it_cannot_hold():
    from flowtools.sweep import Grid, GridError

    with pytest.raises(GridError, match="pad_to.*below the problem's n = 5"):
        Grid.from_text(_PAD_GRID.format(pad="pad_to = 4"))
    with pytest.raises(GridError, match="σ\\(0\\) = 0"):
        Grid.from_text(_PAD_GRID.format(pad='pad_to = 5\nactivation = "cos(x)"'))

"""`flowtools reproduce thresholds` in quick mode: the dataset's layout, predictions from
``flowtools.thresholds``, recovery rates from the sweep engine's stores (resumed, not
recomputed), and claims whose verdicts follow the data."""

import json

import numpy as np
import pytest
import xarray as xr

import flowtools as ft
from flowtools.experiments.claims import claims_from_json
from flowtools.experiments.engine import Engine
from flowtools.experiments.figures import thresholds as T
from flowtools.experiments.reproduce import FIGURES, reproduce


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    return tmp_path_factory.mktemp("thr_stores")


@pytest.fixture(scope="module")
def quick(stores):
    lines = []
    ds = T.compute(quick=True, log=lines.append, engine=Engine(stores, log=lines.append))
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
    eng = Engine(tmp_path)
    a = eng.store(g["random"])
    b = eng.store(T.grids(ex1, [3], s, "full")["random"])
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
    ds2 = T.compute(quick=True, log=again.append, engine=Engine(stores, log=again.append))
    sweeps = [ln for ln in again if "cell(s) computed" in ln]
    assert sweeps and all(ln.lstrip().split(": ")[1].startswith("0 cell(s) computed")
                          for ln in sweeps)
    # the netCDF caches (separation test, zero-loss search) are read, not recomputed
    for what in ("separation test", "zero-loss search"):
        assert any(f"{what}: read" in ln for ln in again), again
        assert not any(f"{what}: read" in ln for ln in lines)
    xr.testing.assert_identical(ds, ds2)


def test_reproduce_writes_the_figure(quick, stores, tmp_path, monkeypatch):
    run = reproduce("thresholds", quick=True, out=tmp_path, log=lambda *a: None,
                    stores=stores)  # the quick stores: nothing recomputed
    assert {f.suffix for f in run.files} == {".png", ".nc", ".json"}
    nc = [f for f in run.files if f.suffix == ".nc"][0]
    with xr.open_dataset(nc, engine="scipy") as back:
        back = back.load()
    assert back["gen_error"].dims == ("case", "n", "data_seed", "seed")
    assert back.attrs["recovery_tol"] == T.TOL
    assert back["zero_search_outside"].dims == ("zero_search_n", "zero_search_data")
    assert len(claims_from_json(back.attrs["claims"])) == len(run.claims)
    cj = json.loads([f for f in run.files if f.name.endswith("_claims.json")][0].read_text())
    assert cj["mode"] == "quick"


def test_cached_netcdf_keyed_by_settings(tmp_path):
    calls, lines = [], []

    def run():
        calls.append(1)
        return xr.Dataset({"v": ("k", np.arange(3))}, coords={"k": ["a", "b", "c"]}), "3 v"

    ex1 = T.CASES[0]
    a = T.cached_netcdf("demo", ex1, {"x": 1}, tmp_path, lines.append, "demo", run)
    b = T.cached_netcdf("demo", ex1, {"x": 1}, tmp_path, lines.append, "demo", run)
    assert len(calls) == 1 and "demo: 3 v" in lines[0] and "demo: read" in lines[1]
    xr.testing.assert_identical(a, b)              # the first run returns what is read
    T.cached_netcdf("demo", ex1, {"x": 2}, tmp_path, lines.append, "demo", run)
    T.cached_netcdf("demo", T.CASES[1], {"x": 1}, tmp_path, lines.append, "demo", run)
    assert len(calls) == 3 and len(list(tmp_path.glob("demo_*.nc"))) == 3


# ------------------------------------------------- Table 1: Q* = ℓ⁻¹(0) at n = 6
_ZDIMS = ("zero_search_n", "zero_search_data")


def _table1(ds):
    return _claim(T.claims(ds), "ex1", "Table 1: Q* = ℓ⁻¹(0) at n = 6")


def test_zero_search_counts_in_the_dataset(quick):
    ds, _ = quick
    zs = T.zero_search_settings(True)
    assert ds.attrs["zero_search_case"] == "ex1"
    assert ds.attrs["zero_search_starts"] == zs["options"]["starts"]
    assert list(ds["zero_search_n"].values) == [5, 6]
    assert list(ds["zero_search_data"].values) == (
        [f"uniform {s}" for s in zs["data_seeds"]] + ["grid"])
    get = {k: ds[f"zero_search_{k}"].transpose(*_ZDIMS).values
           for k in ("found", "in_target", "outside", "distinct", "ambiguous", "capped")}
    assert all(v.dtype.kind == "i" for v in get.values())
    assert (get["found"] + get["capped"] <= zs["options"]["starts"]).all()
    assert (get["in_target"] + get["outside"] + get["ambiguous"] == get["found"]).all()
    assert (get["distinct"] <= get["outside"]).all()
    assert ((get["distinct"] > 0) == (get["outside"] > 0)).all()
    # one cell again, directly: the stored counts belong to the labelled data (uniform
    # seed 0 at n = 5, where zeros outside Q* are found) — the same program, seed, starts
    from flowtools.separation import zero_loss_search

    z = zero_loss_search(T.problem(T.CASES[0], 5, data_seed=zs["data_seeds"][0]),
                         pad_to=max(zs["ns"]), **zs["options"])
    cell = ds.sel(zero_search_n=5, zero_search_data=f"uniform {zs['data_seeds'][0]}")
    assert (int(cell["zero_search_found"]), int(cell["zero_search_outside"]),
            int(cell["zero_search_distinct"])) == (z.n_zero, z.n_outside,
                                                   z.n_distinct_outside)


def test_table1_claim_follows_the_counts(quick):
    ds, _ = quick
    out = ds["zero_search_outside"].transpose(*_ZDIMS)
    K = ds.sizes["zero_search_data"]
    cl = _table1(ds)
    k5, k6 = (int((out.sel(zero_search_n=n).values > 0).sum()) for n in (5, 6))
    assert f"n=5: {k5}/{K}" in cl.measured and f"n=6: {k6}/{K}" in cl.measured
    assert cl.agree is (k6 == 0)
    if cl.agree:
        assert "not a proof" in cl.evidence
    # a zero planted outside Q* at n = 6 on the grid data refutes it, naming the data
    bad = ds.copy(deep=True)
    bad["zero_search_outside"].loc[dict(zero_search_n=6, zero_search_data="grid")] = 1
    cl = _table1(bad)
    k6_bad = int((bad["zero_search_outside"].sel(zero_search_n=6).values > 0).sum())
    assert cl.agree is False and "grid" in cl.evidence and f"n=6: {k6_bad}/" in cl.measured
    # none outside, but an ambiguous zero at n = 6: undecided
    amb = ds.copy(deep=True)
    amb["zero_search_outside"].loc[dict(zero_search_n=6)] = 0
    amb["zero_search_ambiguous"].loc[dict(zero_search_n=6, zero_search_data="grid")] = 1
    assert _table1(amb).agree is None
    # the verdict is about n = 6 only; without zeros outside Q* at n = 5 the evidence says
    # that the search's power is not shown
    weak = ds.copy(deep=True)
    weak["zero_search_outside"].loc[dict(zero_search_n=6)] = 0
    weak["zero_search_outside"].loc[dict(zero_search_n=5)] = 0
    cl = _table1(weak)
    assert cl.agree is True and "power" in cl.evidence and f"n=5: 0/{K}" in cl.measured
    # no search in the dataset: not computed, no verdict
    none = ds.drop_vars([v for v in ds.data_vars if str(v).startswith("zero_search_")])
    assert _table1(none).agree is None


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
    # σ(0) ≠ 0 pads exactly (zero-weight rows): accepted
    Grid.from_text(_PAD_GRID.format(pad='pad_to = 5\nactivation = "cos(x)"'))

"""flowtools.sweep.refine: multisection rounds on stored sweeps (brackets, resume, errors),
on a synthetic family with known crossings and on a tiny ReLU CNN."""

from __future__ import annotations

import functools
import json
import math
import shutil

import numpy as np
import pytest

from flowtools import _validate as V
from flowtools.errors import FlowtoolsError, GridError
from flowtools.sweep import Grid, InProcessExecutor, open_results, run_sweep, run_sweeps
from flowtools.sweep.family import (
    REQUIRED,
    WALL_TIME,
    Family,
    Param,
    Variable,
    register,
    run_columns,
    run_variables,
)
from flowtools.sweep.refine import _bracket, _tables, refine, row_name, subgrid

X0 = 0.3  # row r crosses at x* = X0 · 2^r


def crossings(kind: str, row: int) -> list[float]:
    """Where the synthetic value falls through 0.5 (kind "smooth"), or the step edges of
    kind "bump": above below x1, below on [x1, x2), above on [x2, x3), below after."""
    xs = X0 * 2.0 ** row
    return [xs] if kind == "smooth" else [xs, 2 * xs, 4 * xs]


def value(x: float, row: int, kind: str) -> float:
    if kind == "smooth":  # 1/(1 + (x/x*)^4): 0.5 at x*, decreasing
        return 1.0 / (1.0 + (x / crossings(kind, row)[0]) ** 4)
    x1, x2, x3 = crossings(kind, row)
    return 1.0 if x < x1 or x2 <= x < x3 else 0.0


def _params():
    P = Param
    return [
        P("x", "problem", V.positive_float, REQUIRED, doc="the searched parameter"),
        P("row", "problem", V.nonnegative_int, 0, doc="the crossing is at X0·2^row"),
        P("kind", "problem", lambda v, n: V.choice(v, n, ("smooth", "bump")), "smooth"),
        P("shift", "problem", V.real, 0.0, doc="unused (a parameter that may be ≤ 0)"),
        P("seed", "init", V.nonnegative_int, 0, doc="unused"),
    ]


@functools.lru_cache(maxsize=1)
def _model():
    import flowtools as ft

    return ft.example1(4)


def _measure(model, theta0, runs, spec):
    pb = spec["problem"]
    v = value(pb["x"], pb["row"], pb["kind"])
    return {"value": np.full(len(theta0), v), **run_columns(runs)}


register(Family(
    name="refine_test", parameters=_params, build=lambda pb: _model(),
    init=lambda model, init, pb: model.init_gaussian(1e-3, seed=init["seed"]),
    variables=lambda outputs: {"value": Variable("value", (), "float64", np.nan, {}),
                               **run_variables("loss"), "wall_time": WALL_TIME},
    measure=_measure, n_params=lambda pb: 6))


def synthetic(x=(0.01, 100.0, 5), rows=(0, 1, 2, 3), kind="smooth", **extra) -> Grid:
    problem = {"x": {"geomspace": list(x)}, "row": list(rows), "kind": kind}
    problem.update(extra)
    return Grid.from_dict({"sweep": {"family": "refine_test"}, "problem": problem,
                           "integrator": {"dynamics": "gd", "lr": 0.01, "max_iter": 1}})


class Counting(InProcessExecutor):
    """In-process, counting the tasks run, the run() calls and close() calls."""

    def __init__(self):
        self.tasks = self.runs = self.closed = 0

    def run(self, fn, tasks):
        self.runs += 1
        self.tasks += len(tasks)
        return super().run(fn, tasks)

    def close(self):
        self.closed += 1


def test_brackets_shrink_by_points_plus_one(tmp_path):
    grid = synthetic()
    ex, lines = Counting(), []
    ds = refine(grid, "x", "value", 0.5, tmp_path / "r", rounds=3, points=2, executor=ex,
                log=lines.append)
    xstar = np.array([crossings("smooth", r)[0] for r in ds.row.values])
    lo, hi, est = ds.lo.values, ds.hi.values, ds.estimate.values
    assert np.all(lo <= xstar) and np.all(xstar < hi)  # value(lo) ≥ 0.5 > value(hi)
    assert np.all((lo <= est) & (est <= hi))
    # round 0's spacing is one decade; each round divides it by points + 1 = 3
    np.testing.assert_allclose(np.log(hi / lo), math.log(10.0) / 3 ** 3, rtol=1e-9)
    assert ds.rounds_done.values.tolist() == [3, 3, 3, 3]
    # 20 cells in round 0, then 4 rows × 2 probes per round; one run() per round
    assert ex.tasks == 20 + 3 * 8 and ex.runs == 4 and ex.closed == 0
    assert ds.probe_along.shape == (4, 5 + 3 * 2)
    assert (ds.probe_round.values[:, 5:] == np.repeat([1, 2, 3], 2)).all()
    got = ds.probe_value.values
    want = np.vectorize(value)(ds.probe_along.values, ds.row.values[:, None], "smooth")
    np.testing.assert_array_equal(got, want)
    assert ds.attrs["variable"] == "value" and ds.attrs["crossing"] == "last"
    assert ds.attrs["along"] == "x" and ds.attrs["points"] == 2
    assert json.loads((tmp_path / "r" / "refine.json").read_text())["level"] == 0.5
    assert len(list((tmp_path / "r" / "round3").glob("*.zarr"))) == 4
    assert lines[0].startswith("refine value through 0.5 (falls, last) along x: round 0, 4 "
                               "row(s), 4 with a crossing; 20 cell(s): 20 computed")
    assert lines[-1].startswith("round 3: 4 row(s) refined, 8 cell(s): 8 computed, 0 from")

    # a second call computes nothing and gives the same dataset
    again = Counting()
    ds2 = refine(grid, "x", "value", 0.5, tmp_path / "r", rounds=3, executor=again)
    assert again.tasks == 0
    assert ds2.identical(ds)
    # more rounds: only the new round is computed
    more = Counting()
    ds4 = refine(grid, "x", "value", 0.5, tmp_path / "r", rounds=4, executor=more)
    assert more.tasks == 8 and ds4.rounds_done.values.tolist() == [4] * 4
    np.testing.assert_allclose(np.log(ds4.hi / ds4.lo), math.log(10.0) / 3 ** 4, rtol=1e-9)


def test_killed_rounds_are_recomputed_alone(tmp_path):
    grid = synthetic(rows=(0, 1))
    ds = refine(grid, "x", "value", 0.5, tmp_path / "r", rounds=3, executor=Counting())
    shutil.rmtree(tmp_path / "r" / "round2")  # a round lost
    one = sorted((tmp_path / "r" / "round1").glob("*.zarr"))[0]
    shutil.rmtree(one)  # and one row's store of another
    ex = Counting()
    ds2 = refine(grid, "x", "value", 0.5, tmp_path / "r", rounds=3, executor=ex)
    assert ex.tasks == 2 * 2 + 2  # round 2's two rows, one row of round 1
    assert ds2.identical(ds)


def test_first_and_last_on_a_non_monotone_row(tmp_path):
    grid = synthetic(x=(0.1, 10.0, 41), rows=(0,), kind="bump")
    x1, x2, x3 = crossings("bump", 0)
    for crossing, want in (("first", x1), ("last", x3)):
        ds = refine(grid, "x", "value", 0.5, tmp_path / crossing, rounds=2,
                    crossing=crossing, spacing="linear", points=3)
        lo, hi = float(ds.lo[0]), float(ds.hi[0])
        assert lo < want <= hi, (crossing, lo, hi)
        step = np.diff(grid.axis("x").values)
        assert np.any(np.isclose(hi - lo, step / 16, rtol=1e-6))  # linear, (3 + 1)²
    # rising through the level: x2 (below → above) is the only rise
    ds = refine(grid, "x", "value", 0.5, tmp_path / "rises", rounds=1, direction="rises")
    assert float(ds.lo[0]) < x2 <= float(ds.hi[0])


def test_rows_without_a_crossing_are_not_refined(tmp_path):
    grid = synthetic(x=(0.01, 0.1, 3), rows=(0, 4))  # crossings at 0.3 and 4.8: outside
    ex = Counting()
    ds = refine(grid, "x", "value", 0.5, tmp_path / "r", rounds=2, executor=ex)
    assert np.isnan(ds.lo.values).all() and np.isnan(ds.estimate.values).all()
    assert ds.rounds_done.values.tolist() == [0, 0] and ex.tasks == 6
    assert not (tmp_path / "r" / "round1").exists()


def test_bracket_rules():
    s = {"level": 0.5, "direction": "falls", "crossing": "last"}
    xs = np.arange(6.0)
    ys = np.array([1.0, 0.0, 1.0, np.nan, 0.0, 1.0])  # NaN skipped: 2 → 4 falls
    assert _bracket(xs, ys, s) == (2.0, 1.0, 4.0, 0.0)
    assert _bracket(xs, ys, dict(s, crossing="first")) == (0.0, 1.0, 1.0, 0.0)
    assert _bracket(xs, ys, dict(s, direction="rises")) == (4.0, 0.0, 5.0, 1.0)
    assert _bracket(xs, np.full(6, 0.5), s) is None  # equal to the level is above
    assert _bracket(xs, np.full(6, np.nan), s) is None


def test_tables_round_trip_and_subgrids():
    grids = [
        synthetic(),
        Grid.from_text('[problem]\nn = [4, 5]\n[init]\nscale = 1e-4\nseed = [0, 1]\n'
                       '[integrator]\ndynamics = "gd"\nlr = 0.05\nmax_iter = 100\n'),
        Grid.from_dict(_cnn_tables()),
    ]
    for g in grids:
        assert Grid.from_dict(_tables(g)).definition() == g.definition()
    sub = subgrid(grids[2], "mu_norm", [0.5, 0.7], {"data_seed": 1})
    assert sub.dims == ("mu_norm",) and sub.fixed["data_seed"] == 1
    assert sub.axis("mu_norm").values == (0.5, 0.7) and sub.family == "relu_cnn"
    assert row_name({"seed": 1, "dynamics": "g/d"}).startswith("seed=1,dynamics=g_d-")
    assert row_name({}) != row_name({"a": 1}) and len(row_name({"a": "x" * 500})) < 100


def test_errors(tmp_path):
    g = synthetic()
    cases = [
        (dict(along="y"), GridError, "not an axis of the grid"),
        (dict(along="row"), GridError, "not all real numbers"),
        (dict(variable="values"), FlowtoolsError, "not stored by the family"),
        (dict(points=0), FlowtoolsError, "points must be a positive integer"),
        (dict(rounds=-1), FlowtoolsError, "rounds must be a non-negative integer"),
        (dict(spacing="log"), FlowtoolsError, "unknown spacing 'log'"),
        (dict(crossing="all"), FlowtoolsError, "unknown crossing"),
        (dict(direction="down"), FlowtoolsError, "unknown direction"),
        (dict(level=float("nan")), FlowtoolsError, "level must be a finite real number"),
        (dict(executor="nope"), FlowtoolsError, "unknown executor"),
    ]
    for change, err, match in cases:
        kw = dict(along="x", variable="value", level=0.5, rounds=1)
        kw.update(change)
        with pytest.raises(err, match=match):
            refine(g, kw.pop("along"), kw.pop("variable"), kw.pop("level"),
                   tmp_path / "e", **kw)
    assert not (tmp_path / "e").exists()  # refused before anything is written
    one = Grid.from_dict({"sweep": {"family": "refine_test"}, "problem": {"x": [1.0]},
                          "integrator": {"dynamics": "gd", "lr": 0.01, "max_iter": 1}})
    with pytest.raises(GridError, match="a bracket needs at least 2"):
        refine(one, "x", "value", 0.5, tmp_path / "e", rounds=1)
    with pytest.raises(GridError, match="needs values > 0"):
        refine(synthetic(shift=[-1.0, 1.0]), "shift", "value", 0.5, tmp_path / "e",
               rounds=1)
    # a store made with other settings is refused
    small = synthetic(rows=(0,))
    refine(small, "x", "value", 0.5, tmp_path / "s", rounds=0)
    with pytest.raises(FlowtoolsError, match="other settings .*level: 0.5 there, 0.4 now"):
        refine(small, "x", "value", 0.4, tmp_path / "s", rounds=0)


def test_run_sweeps_shares_one_executor(tmp_path):
    ex = Counting()
    grids = [synthetic(rows=(r,)) for r in range(3)]
    res = run_sweeps([(g, tmp_path / f"{i}.zarr") for i, g in enumerate(grids)], executor=ex)
    assert [r.computed for r in res] == [5, 5, 5] and ex.runs == 1 and ex.closed == 0
    assert open_results(tmp_path / "1.zarr").value.shape == (5, 1)
    with pytest.raises(FlowtoolsError, match="given to 2 grids"):
        run_sweeps([(grids[0], tmp_path / "x.zarr"), (grids[1], tmp_path / "x.zarr")])
    # run_sweep leaves an executor it was given open (its owner closes it)
    run_sweep(synthetic(rows=(5,)), tmp_path / "5.zarr", executor=ex)
    assert ex.runs == 2 and ex.closed == 0


# ---------------------------------------------------------------------- the ReLU CNN
def _cnn_tables(mu=None):
    return {"sweep": {"family": "relu_cnn"},
            "problem": {"n": 4, "dim": 20, "width": 2, "n_test": 100, "sigma_p": 1.0,
                        "mu_norm": mu or {"geomspace": [0.1, 30.0, 4]},
                        "data_seed": [0, 1]},
            "init": {"sigma0": 0.01, "v0": 0.1},
            "integrator": {"dynamics": "gd", "lr": 0.1, "max_iter": 50}}


def test_relu_cnn_edge_against_a_brute_force_grid(tmp_path):
    """The benign edge (test error falling through 0.25 for the last time) of a tiny CNN:
    a brute-force grid over every ‖µ‖ the refinement evaluated gives the same bracket
    (the same cells, bit for bit) and its ``edge_mu`` lies in it."""
    from flowtools.experiments.figures.cnn_phase import edge_mu

    grid = Grid.from_dict(_cnn_tables())
    ds = refine(grid, "mu_norm", "test_error", 0.25, tmp_path / "r", rounds=2)
    assert ds.rounds_done.values.tolist() == [2, 2]
    for j, seed in enumerate(ds.data_seed.values):
        valid = ds.probe_round.values[j] >= 0
        xs, vals = ds.probe_along.values[j][valid], ds.probe_value.values[j][valid]
        order = np.argsort(xs)
        mus = xs[order]
        tables = _cnn_tables(mu=[float(m) for m in mus])
        tables["problem"]["data_seed"] = int(seed)
        res = run_sweep(Grid.from_dict(tables), tmp_path / f"brute{seed}.zarr")
        err = open_results(res.store).test_error.values
        np.testing.assert_array_equal(err, vals[order])  # the same cells, bit for bit
        b = _bracket(mus, err, {"level": 0.25, "direction": "falls", "crossing": "last"})
        assert (b[0], b[2]) == (float(ds.lo[j]), float(ds.hi[j]))
        edge = float(edge_mu(err, mus, 0.25))
        assert float(ds.lo[j]) <= edge <= float(ds.hi[j])
        assert edge == pytest.approx(float(ds.estimate[j]), rel=1e-12)
        assert np.log(ds.hi[j] / ds.lo[j]) == pytest.approx(np.log(300.0) / 3 / 9)


def test_a_function_of_the_dataset_as_the_variable(tmp_path):
    """``variable`` may be computed from each store's dataset (here 1 − value rising
    through 0.5 is value falling through it)."""
    grid = synthetic(rows=(1,))

    def complement(ds):
        return 1.0 - ds["value"]

    a = refine(grid, "x", "value", 0.5, tmp_path / "a", rounds=2)
    b = refine(grid, "x", complement, 0.5, tmp_path / "b", rounds=2, direction="rises")
    assert (float(a.lo[0]), float(a.hi[0])) == (float(b.lo[0]), float(b.hi[0]))
    assert b.attrs["variable"] == "complement"
    np.testing.assert_allclose(b.probe_value, 1.0 - a.probe_value)


LR_GRID = '''
[problem]
n = [4, 5]
[init]
scale = 0.1
[integrator]
dynamics = "gd"
lr = {geomspace = [1e-3, 0.1, 3]}
max_iter = 200
'''


def test_one_dask_cluster_serves_every_round(tmp_path, monkeypatch):
    import flowtools.sweep.executors as E

    started = []

    class Counted(E.DaskExecutor):
        def __init__(self, *a, **k):
            started.append(1)
            super().__init__(*a, **k)

    monkeypatch.setattr(E, "DaskExecutor", Counted)
    grid = Grid.from_text(LR_GRID)
    local = refine(grid, "lr", "loss_final", 0.01, tmp_path / "local", rounds=2)
    ds = refine(grid, "lr", "loss_final", 0.01, tmp_path / "dask", rounds=2,
                executor="dask", workers=2)
    assert started == [1]  # one LocalCluster for the three rounds
    assert ds.identical(local.assign_attrs(store=ds.attrs["store"]))
    refine(grid, "lr", "loss_final", 0.01, tmp_path / "dask", rounds=2, executor="dask",
           workers=2)
    assert started == [1]  # everything stored: no cluster started

"""``outputs.save_times``: a grid's saves at exact times, the flow stepping onto them and GD
recording iteration t/lr; the stored saves are those of a direct call, bitwise."""

from __future__ import annotations

import numpy as np
import pytest

import flowtools as ft
from flowtools.errors import GridError
from flowtools.sweep import Grid, open_results, run_sweep

TIMES = [0.0, 0.5, 5.0, 50.0, 500.0]
TABLES = {"sweep": {"name": "saves", "cells_per_task": 2},
          "problem": {"n": 6},
          "init": {"scale": 1e-4, "seed": [0, 1]},
          "integrator": {"dynamics": ["flow", "gd"], "lr": 0.05, "max_iter": 10**4,
                         "loss_threshold": 1e-15},
          "outputs": {"save_times": TIMES}}


def test_stored_saves_are_the_direct_ones(tmp_path):
    res = run_sweep(TABLES, tmp_path / "s.zarr", progress=False)
    assert not res.errors and not res.missing
    ds = open_results(tmp_path / "s.zarr", lazy=False)
    assert ds.sizes["save"] == len(TIMES)
    pb = ft.example1()
    th0 = pb.init_gaussian(1e-4, seed=np.arange(2))
    flow = ds.sel(dynamics="flow").transpose("seed", ...)
    gd = ds.sel(dynamics="gd").transpose("seed", ...)
    np.testing.assert_array_equal(flow.theta0.values, th0)
    for i in range(2):
        d = ft.solve_flow(pb, th0[i], loss_threshold=1e-15, save_ts=TIMES)
        np.testing.assert_array_equal(flow.ts.values[i], d.ts)
        np.testing.assert_array_equal(flow.thetas.values[i], d.thetas)
        np.testing.assert_array_equal(flow.losses.values[i], d.losses)
    # the flow stepped onto the times: they are stored exactly
    np.testing.assert_array_equal(flow.ts.values[0], TIMES)
    g = ft.run_gd(pb, th0, 0.05, max_iter=10**4, loss_threshold=1e-15,
                  record_at=[0, 10, 100, 1000, 10**4])  # the task's cells: one batch
    np.testing.assert_array_equal(gd.thetas.values, g.thetas)
    np.testing.assert_array_equal(gd.losses.values, g.losses)
    np.testing.assert_allclose(gd.ts.values, np.broadcast_to(TIMES, (2, 5)), rtol=1e-15)
    # GD's saves are iterates: its last is the end point at max_iter
    np.testing.assert_array_equal(gd.thetas.values[:, -1], gd.theta_final.values)


def test_a_grid_without_save_times_keeps_its_definition():
    plain = dict(TABLES, outputs={"trajectory_points": 5})
    assert "save_times" not in Grid.from_dict(plain).definition()["outputs"]
    assert Grid.from_dict(TABLES).key() != Grid.from_dict(plain).key()


@pytest.mark.parametrize("outputs, integrator, words", [
    ({"save_times": [0.0, 5.0, 1.0]}, {}, "must increase"),
    ({"save_times": [-1.0, 5.0]}, {}, "save_times"),
    ({"save_times": 5.0}, {}, "list of times"),
    ({"save_times": [0.0, 0.52]}, {}, "multiples of GD's lr"),
    ({"save_times": [0.0, 1e4]}, {}, "lr·max_iter"),
    ({"save_times": [0.0, 1e4]}, {"dynamics": "flow", "t1": 100.0}, "horizon t1"),
    ({"save_times": [0.0, 1.0], "trajectory_points": 5}, {}, "replaces trajectory_points"),
    ({"save_times": [0.0, 1.0], "stages": [1e-10]}, {"dynamics": "flow"}, "stages"),
])
def test_bad_save_times_are_refused(outputs, integrator, words):
    it = dict(TABLES["integrator"], **integrator)
    if it["dynamics"] == "flow":
        it = {k: v for k, v in it.items() if k not in ("lr", "max_iter")}
    with pytest.raises(GridError, match=words) as err:
        Grid.from_dict(dict(TABLES, outputs=outputs, integrator=it))
    assert "save_times" in str(err.value)

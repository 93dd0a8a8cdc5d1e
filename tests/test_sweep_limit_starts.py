"""``[init] start = "limit"``: cells that start on the α → 0 limit (the manifold series'
start point for the cell's c̃), the start ``branch_maps.limit_start_points`` gives."""

from __future__ import annotations

import numpy as np
import pytest

import flowtools as ft
from flowtools.errors import GridError
from flowtools.experiments.branch_maps import limit_start_points
from flowtools.sweep import Grid, open_results, run_sweep

CS = [0.0, 0.3, 1.0]


def _grid(**init):
    return Grid.from_dict({"problem": {"n": 4},
                           "init": {"start": "limit", "c_tilde": CS, **init},
                           "integrator": {"dynamics": "flow", "t1": 50.0}})


def test_stored_theta0_is_the_limit_start_point(tmp_path):
    """theta0 of every cell equals limit_start_points' start for its c̃, bitwise; the flow
    starts there and moves."""
    store = tmp_path / "s.zarr"
    run_sweep(_grid(), store, progress=False)
    ds = open_results(store, lazy=False)
    pb = ft.example1(4)
    want, _ = limit_start_points(pb, CS)
    got = ds.theta0.transpose("c_tilde", ...).values
    assert np.array_equal(got, want)
    assert np.all(ds.t_final.values > 0)
    assert not np.array_equal(ds.theta_final.transpose("c_tilde", ...).values, want)


def test_definition_unchanged_without_start_and_scale_seed_left_out():
    plain = {"init": {"scale": 1e-3, "c_tilde": CS}}
    assert "start" not in Grid.from_dict(plain).definition()["fixed"]
    explicit = {"init": {"scale": 1e-3, "c_tilde": CS, "start": "gaussian"}}
    assert Grid.from_dict(explicit).definition() == Grid.from_dict(plain).definition()
    fixed = _grid().definition()["fixed"]
    assert fixed["start"] == "limit" and "scale" not in fixed and "seed" not in fixed


@pytest.mark.parametrize("init, words", [
    ({"start": "limit"}, "give init.c_tilde"),
    ({"start": "limit", "c_tilde": 0.5, "scale": 1e-3}, "init.scale does not apply"),
    ({"start": "limit", "c_tilde": 0.5, "seed": 1}, "init.seed does not apply"),
    ({"start": "limit", "ratio": 2.0}, "init.ratio does not apply"),
    ({"seed": 1}, "needs 'scale'"),
    ({"start": "limt", "c_tilde": 0.5}, "use one of gaussian, limit"),
])
def test_bad_combinations_refused(init, words):
    with pytest.raises(GridError, match=words):
        Grid.from_dict({"init": init})


def test_limit_needs_width_two():
    with pytest.raises(GridError, match="width 2"):
        Grid.from_dict({"problem": {"width": 3}, "init": {"start": "limit", "c_tilde": 0.5}})

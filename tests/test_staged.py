"""A flow continued from a later start (``solve_flow``'s ``t0``) and the sweep engine's
staged cells (``outputs.stages``): one flow stopped at a loss level and continued."""

import numpy as np
import pytest

import flowtools as ft
from flowtools.certify import splice
from flowtools.errors import FlowtoolsError, GridError
from flowtools.status import Status
from flowtools.sweep import Grid, open_results, run_sweep


@pytest.fixture(scope="module")
def pb():
    return ft.example1(6, sampling="gaussian", seed=0)


@pytest.fixture(scope="module")
def starts(pb):
    return pb.init_c_tilde(np.array([0.3, 0.7]), 1e-20, seed=0)


def test_a_later_start_only_shifts_time(pb, starts):
    """The field is autonomous: a start at t0 is the flow from t = 0 shifted by t0. A start
    after the last save runs in its own time: the same compiled run, one member per call
    (a vmapped solve rounds by its batch, so to round-off, not bitwise)."""
    a = ft.solve_flow(pb, starts, loss_threshold=1e-15, n_save=20)
    own = ft.solve_flow(pb, a.theta_final, loss_threshold=1e-24, n_save=20)
    late = ft.solve_flow(pb, a.theta_final, t0=1e13, loss_threshold=1e-24, n_save=20)
    np.testing.assert_allclose(late.theta_final, own.theta_final, rtol=1e-9,
                               atol=1e-9 * np.abs(own.theta_final).max())
    # the stop time of a slow exponential tail is ill-conditioned (ℓ changes little per
    # unit of t there): to 1e-3, where the states agree to 1e-9
    np.testing.assert_allclose(late.t_final - 1e13, own.t_final, rtol=1e-3)
    assert np.all(late.status == Status.CONVERGED)
    assert np.all(np.isnan(late.ts))   # every save time lies before the start


def test_late_starts_run_as_one_batch_each_to_its_own_horizon(pb, starts):
    """Starts after the last save run in their own time as one batch, to the longest of
    their horizons t1 − t0; the member whose horizon is shorter, and that had not ended
    there, runs again alone to it: every member ends at t1 (HORIZON) as alone, to
    round-off (a vmapped solve rounds by its width)."""
    t1, t0 = 2010.0, np.array([1000.0, 2000.0])  # own horizons 1010 and 10
    both = ft.solve_flow(pb, starts, t0=t0, t1=t1, n_save=2, loss_threshold=1e-300, gtol=0.0)
    assert np.all(both.status == Status.HORIZON)
    np.testing.assert_allclose(both.t_final, t1, rtol=1e-14)
    for i in range(2):
        alone = ft.solve_flow(pb, starts[i], t0=t0[i], t1=t1, n_save=2,
                              loss_threshold=1e-300, gtol=0.0)
        np.testing.assert_allclose(both.theta_final[i], alone.theta_final, rtol=1e-9,
                                   atol=1e-9 * np.abs(alone.theta_final).max())
        assert abs(int(both.steps[i]) - int(alone.steps)) <= 2
    assert np.all(np.isnan(both.ts))  # every save lies before the starts


def test_a_continued_flow_is_the_one_flow(pb, starts):
    """Stopped at ℓ = 1e-15 and continued from there (t0 = the stop time) to 1e-24: the
    same flow as one run to 1e-24, to the integration tolerance, on the same save grid."""
    one = ft.solve_flow(pb, starts, loss_threshold=1e-24, n_save=40)
    a = ft.solve_flow(pb, starts, loss_threshold=1e-15, n_save=40)
    b = ft.solve_flow(pb, a.theta_final, t0=a.t_final, loss_threshold=1e-24, n_save=40)
    assert np.all(b.status == Status.CONVERGED) and np.all(b.loss_final <= 1e-24)
    assert np.all(b.t_final > a.t_final)
    both = splice(a, np.arange(len(starts)), b)
    # the saves: the same times, the earlier ones from the first run, later from the second
    np.testing.assert_array_equal(np.isnan(both.ts), np.isnan(one.ts))
    fin = np.isfinite(one.ts)
    np.testing.assert_allclose(both.ts[fin], one.ts[fin], rtol=1e-12)
    np.testing.assert_allclose(both.theta_final, one.theta_final,
                               rtol=1e-6, atol=1e-6 * np.abs(one.theta_final).max())
    np.testing.assert_allclose(both.t_final, one.t_final, rtol=1e-3)
    assert np.all(both.steps == a.steps + b.steps)


def test_a_start_below_the_threshold_ends_at_its_start_time(pb, starts):
    a = ft.solve_flow(pb, starts[0], loss_threshold=1e-15)
    tr = ft.solve_flow(pb, a.theta_final, t0=a.t_final, loss_threshold=1e-10)
    assert tr.status == Status.CONVERGED and tr.steps == 0 and tr.t_final == a.t_final


@pytest.mark.parametrize("t0, words", [(-1.0, "[0, t1"), ([1.0, 2.0, 3.0], "one start time"),
                                       (2.0, "[0, t1")])
def test_bad_start_times_are_refused(pb, starts, t0, words):
    with pytest.raises(FlowtoolsError, match=words.replace("[", r"\[")):
        ft.solve_flow(pb, starts, t0=t0, t1=1.0)


def test_scipy_refuses_a_later_start(pb, starts):
    with pytest.raises(FlowtoolsError, match="diffrax"):
        ft.solve_flow(pb, starts[0], t0=1.0, backend="scipy")


TABLES = {"sweep": {"name": "staged", "cells_per_task": 2},
          "problem": {"n": 6, "sampling": "gaussian", "data_seed": 0},
          "init": {"scale": 1e-20, "seed": 0, "c_tilde": [0.0, 0.7]},
          "integrator": {"dynamics": "flow", "loss_threshold": 1e-24},
          "outputs": {"stages": [1e-10, 1e-15], "trajectory_points": 8}}


def test_staged_cells_store_each_stage_of_one_flow(tmp_path, pb):
    res = run_sweep(TABLES, tmp_path / "s.zarr", progress=False)
    assert not res.errors and not res.missing
    ds = open_results(tmp_path / "s.zarr", lazy=False)
    assert ds.stage_t.dims == ("c_tilde", "stage")
    assert ds.stage_t.attrs["stage_levels"] == [1e-10, 1e-15]
    th0 = pb.init_c_tilde(ds.c_tilde.values, 1e-20, seed=0)
    np.testing.assert_array_equal(ds.theta0.values, th0)
    # the first stage is the flow stopped at 1e-10: the same program, bitwise
    first = ft.solve_flow(pb, th0, loss_threshold=1e-10, n_save=8)
    for i in range(2):
        direct = ft.solve_flow(pb, th0[i], loss_threshold=1e-10, n_save=8)
        np.testing.assert_array_equal(ds.stage_theta.values[i, 0], direct.theta_final)
        assert ds.stage_t.values[i, 0] == direct.t_final
    assert np.all(ds.stage_loss.values <= np.array([1e-10, 1e-15]))
    assert np.all(np.diff(ds.stage_t.values, axis=1) > 0)
    assert np.all(ds.t_final.values > ds.stage_t.values[:, -1])
    assert np.all(ds.status.values == Status.CONVERGED) and np.all(ds.loss_final <= 1e-24)
    assert np.all(np.diff(ds.stage_steps.values, axis=1) > 0)
    assert np.all(ds.steps.values > ds.stage_steps.values[:, -1])
    # the error at each stage is the family's generalization error of the stored state
    from flowtools.branches import generalization_error, test_inputs
    X = test_inputs(pb, 1000, seed=0)
    want = generalization_error(pb, ds.stage_theta.values[1, 1], X_test=X)
    np.testing.assert_allclose(ds.stage_gen_error.values[1, 1], want, rtol=1e-12)
    # and the end is the flow from the last stage, continued
    assert first.loss_final.max() <= 1e-10


def test_a_grid_without_stages_keeps_its_definition():
    plain = {k: v for k, v in TABLES.items() if k != "outputs"}
    g = Grid.from_dict(plain)
    assert "stages" not in g.definition()["outputs"]
    assert Grid.from_dict(TABLES).key() != g.key()


@pytest.mark.parametrize("outputs, integrator, words", [
    ({"stages": [1e-30]}, {}, "above integrator.loss_threshold"),
    ({"stages": [1e-15, 1e-10]}, {}, "must decrease"),
    ({"stages": 1e-15}, {}, "list of loss levels"),
    ({"stages": [1e-15]}, {"dynamics": "gd", "lr": 0.1}, "dynamics 'flow' only"),
])
def test_bad_stages_are_refused(outputs, integrator, words):
    tables = dict(TABLES, outputs=outputs, integrator=dict(TABLES["integrator"], **integrator))
    with pytest.raises(GridError, match=words):
        Grid.from_dict(tables)


def test_lockstep_cells_are_one_batched_flow(tmp_path, pb, starts):
    """``integrator.lockstep``: a task's flow cells run as one lockstep batch — the stored
    end points are those of one batched solve_flow (bitwise), staged or not; without it
    each cell is its own solve_flow (bitwise too)."""
    tables = dict(TABLES, sweep={"name": "lock", "cells_per_task": 2},
                  init={"scale": 1e-20, "seed": 0, "c_tilde": [0.3, 0.7]},
                  integrator=dict(TABLES["integrator"], lockstep=True),
                  outputs={"trajectory_points": 8})
    run_sweep(tables, tmp_path / "l.zarr", progress=False)
    ds = open_results(tmp_path / "l.zarr", lazy=False)
    batch = ft.solve_flow(pb, starts, loss_threshold=1e-24, n_save=8)
    np.testing.assert_array_equal(ds.theta_final.values, batch.theta_final)
    np.testing.assert_array_equal(ds.steps.values, batch.steps)
    np.testing.assert_array_equal(ds.losses.values, batch.losses)
    staged = dict(tables, sweep={"name": "lock2", "cells_per_task": 2},
                  outputs={"stages": [1e-15]})
    run_sweep(staged, tmp_path / "s.zarr", progress=False)
    st = open_results(tmp_path / "s.zarr", lazy=False)
    first = ft.solve_flow(pb, starts, loss_threshold=1e-15, n_save=2)
    np.testing.assert_array_equal(st.stage_theta.values[:, 0], first.theta_final)
    rest = ft.solve_flow(pb, first.theta_final, t0=first.t_final, loss_threshold=1e-24,
                         n_save=2)
    np.testing.assert_array_equal(st.theta_final.values, rest.theta_final)
    assert Grid.from_dict(tables).key() != Grid.from_dict(
        dict(tables, integrator=TABLES["integrator"])).key()
    # batch_size: the task's batch in lockstep chunks of that many (here each member its
    # own chunk), as solve_flow's batch_size
    small = dict(tables, sweep={"name": "lock3", "cells_per_task": 2},
                 integrator=dict(tables["integrator"], batch_size=1))
    run_sweep(small, tmp_path / "b.zarr", progress=False)
    b1 = open_results(tmp_path / "b.zarr", lazy=False)
    alone = ft.solve_flow(pb, starts, loss_threshold=1e-24, n_save=8, batch_size=1)
    np.testing.assert_array_equal(b1.theta_final.values, alone.theta_final)
    np.testing.assert_array_equal(b1.steps.values, alone.steps)
    assert Grid.from_dict(small).key() != Grid.from_dict(tables).key()
    with pytest.raises(GridError, match="batch_size"):
        Grid.from_dict(dict(small, integrator=dict(small["integrator"], batch_size=0)))

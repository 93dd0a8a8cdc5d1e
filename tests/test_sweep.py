"""flowtools.sweep: grids validated with line numbers; the zarr store opens in xarray with
the axes as dims (and its netCDF export too); a store is refused to a second sweep and to
another grid; in-process and a 2-worker Dask LocalCluster give bit-identical cells; a sweep
killed with SIGKILL — at a random moment, in the middle of a chunk write, or between a
task's data and its done mark — resumes to exactly the uninterrupted result."""

import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import xarray as xr

from flowtools.cli import main
from flowtools.errors import FlowtoolsError
from flowtools.sweep import (
    Grid,
    GridError,
    StoreBusy,
    StoreMismatch,
    compute_task,
    export_netcdf,
    open_results,
    plan,
    run_sweep,
    store_lock,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]

# flow (tsit5: cheap to compile) and GD on two datasets and three c̃: 12 cells, 8 tasks
SMALL = """\
[sweep]
name = "small"
cells_per_task = 2

[problem]
n = 4
sampling = "gaussian"
data_seed = [0, 1]

[init]
scale = 1e-4
c_tilde = [0.3, 0.6, 0.9]

[integrator]
dynamics = ["flow", "gd"]
solver = "tsit5"
t1 = 200.0
loss_threshold = 1e-8
lr = 0.05
max_iter = 4000

[outputs]
trajectory_points = 4
"""

# GD only (its executables are kept by JAX's persistent cache: quick in a fresh process),
# one cell per task, each ~0.15–0.5 s: long enough to be killed part-way
KILLABLE = """\
[sweep]
name = "killable"
cells_per_task = 1

[problem]
n = 4

[init]
scale = 1e-4
seed = {range = [0, 10]}

[integrator]
dynamics = "gd"
lr = 0.05
max_iter = 1000000
loss_threshold = 0.0
"""

VARS_COMPARED = ("theta0", "theta_final", "loss_final", "t_final", "status", "steps",
                 "grad_evals", "branch", "dist_Q1", "dist_Q2", "gen_error", "done")


def _write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def _assert_same(a, b, names=VARS_COMPARED):
    a, b = open_results(a).load(), open_results(b).load()
    assert a.sizes == b.sizes
    for name in names:
        assert a[name].dtype == b[name].dtype, name
        assert np.array_equal(a[name].values, b[name].values, equal_nan=True), name


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """SMALL computed in this process."""
    folder = tmp_path_factory.mktemp("ref")
    grid = _write(folder / "small.toml", SMALL)
    res = run_sweep(grid, folder / "small.zarr")
    assert res.ok and res.computed == 12
    return folder / "small.zarr"


@pytest.fixture(scope="module")
def killable_reference(tmp_path_factory):
    """KILLABLE computed without interruption in this process."""
    folder = tmp_path_factory.mktemp("killref")
    res = run_sweep(_write(folder / "k.toml", KILLABLE), folder / "k.zarr")
    assert res.ok
    ds = open_results(folder / "k.zarr")
    # every iteration ran: 1e6 GD steps at lr 0.05 from scale 1e-4 reach a tiny loss
    assert np.all(ds["steps"].values == 10**6) and np.all(ds["loss_final"].values < 1e-12)
    return folder / "k.zarr"


# ---------------------------------------------------------------------- grids
def test_example_grids_validate():
    files = sorted((ROOT / "demos" / "grids").glob("*.toml"))
    assert files
    for f in files:
        g = Grid.from_toml(f)
        assert g.size >= 1 and g.dims
    fig4 = Grid.from_toml(ROOT / "demos" / "grids" / "fig4.toml")
    assert fig4.dims == ("n", "data_seed", "c_tilde") and fig4.shape == (4, 5, 50)
    assert fig4.fixed["scale"] == 1e-20 and fig4.fixed["loss_threshold"] == 1e-20


def test_axes_spacings_and_defaults():
    g = Grid.from_text(
        '[problem]\nn = 3\n[init]\nscale = {geomspace = [1e-8, 1e-2, 4]}\n'
        'seed = {range = [0, 6, 2]}\n[integrator]\nmax_steps = 2e3\n')
    assert g.dims == ("scale", "seed") and g.axis("seed").values == (0, 2, 4)
    np.testing.assert_allclose(g.axis("scale").values, [1e-8, 1e-6, 1e-4, 1e-2])
    assert g.fixed["max_steps"] == 2000 and isinstance(g.fixed["max_steps"], int)
    assert g.fixed["solver"] == "auto" and g.fixed["rtol"] == 1e-10  # solve_flow's
    assert g.chunks == (2, 3)  # up to cells_per_task = 8 cells, innermost axis first


@pytest.mark.parametrize("text, line, words", [
    ("[problem]\nn = 3\n[init]\nscale = 1e-4\nc_tlide = 0.5\n", 5,
     ["unknown key 'c_tlide'", "did you mean 'c_tilde'", "scale, seed, c_tilde, ratio"]),
    ("[problem]\nn = 3\n\n[inits]\nscale = 1\n", 4, ["unknown table [inits]", "[init]"]),
    ("[init]\nscale = 1e-4\nc_tilde = [0.5,\n  1.5]\n", 3, ["init.c_tilde[1]", "[0, 1]"]),
    ('[problem]\nn = "six"\n[init]\nscale = 1e-4\n', 2,
     ["problem.n must be a positive integer", "'six'"]),
    ("[problem]\nbias = 1\n[init]\nscale = 1e-4\n", 2, ["bias must be True or False"]),
    ('[problem]\nsampling = "gauss"\n[init]\nscale = 1e-4\n', 2,
     ["unknown problem.sampling 'gauss'", "gaussian, grid, uniform"]),
    ('[init]\nscale = 1e-4\n[integrator]\nsolver = ["tsit5", "rk4"]\n', 4,
     ["'rk4'", "kvaerno5", "dopri8"]),
    ("[init]\nscale = 1e-4\n[outputs]\nn_test = [10, 20]\n", 4, ["a setting, not an axis"]),
    ("[problem]\nn = [3, 4, 3]\n[init]\nscale = 1e-4\n", 2, ["lists 3 twice"]),
    ("[problem]\nwidth = 3\n[init]\nscale = 1e-4\nc_tilde = 0.5\n", 5, ["width 2"]),
    ("[init]\nscale = 1e-4\n[integrator]\nlr = 0.1\n", 4, ["dynamics 'gd' only"]),
    ('[init]\nscale = 1e-4\n[integrator]\ndynamics = "gd"\n', 3, ["needs 'lr'"]),
    ("[problem]\ndata_seed = [0, 1]\n[init]\nscale = 1e-4\n", 2, ["no effect with sampling"]),
    ('[problem]\ndim = [1, 2]\n[init]\nscale = 1e-4\n', 1, ["dim = 2", "'grid' sampling"]),
    ("n = 3\n[init]\nscale = 1e-4\n", 1, ["put it under [problem]"]),
    ("[init]\nscale = {logspace = [1, 2, 3]}\n", 2, ["linspace, geomspace, range"]),
    ("[init]\nscale = 1e-4\nseed = 0 0\n", 3, ["not valid TOML"]),
])
def test_bad_grid_names_line_and_choices(text, line, words):
    with pytest.raises(GridError) as info:
        Grid.from_text(text, source="bad.toml")
    msg = str(info.value)
    assert f"bad.toml:{line}" in msg, msg
    for w in words:
        assert w in msg, (w, msg)


def test_cli_rejects_bad_grid_before_anything_runs(tmp_path, capsys):
    bad = _write(tmp_path / "bad.toml", "[problem]\nn = 3\n[init]\nscale = -1\n")
    store = tmp_path / "s.zarr"
    assert main(["sweep", str(bad), "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml:4:" in err and "positive" in err
    assert not store.exists()
    assert main(["sweep", str(tmp_path / "missing.toml")]) == 2
    assert main(["sweep", str(_write(tmp_path / "ok.toml", "[init]\nscale = 1e-4\n")),
                 "--executor", "nowhere"]) == 2
    assert "unknown executor" in capsys.readouterr().err


def test_repeated_cells_are_computed_once():
    g = Grid.from_text('[problem]\nn = 4\n[init]\nscale = 1e-4\nseed = [0, 1]\n'
                       '[integrator]\ndynamics = ["flow", "gd"]\nlr = [0.05, 0.1]\n')
    tasks = plan(g)
    # flow cells do not depend on lr: one flow task fills both lr chunks
    flow = [t for t in tasks if t.spec["integrator"]["dynamics"] == "flow"]
    assert len(flow) == 1 and len(flow[0].blocks) == 2 and "lr" not in flow[0].spec[
        "integrator"]
    assert len(tasks) == 3


# ---------------------------------------------------------------------- store
def test_store_opens_in_xarray_and_exports_netcdf(reference, tmp_path):
    ds = xr.open_zarr(reference)
    assert ds["loss_final"].dims == ("data_seed", "c_tilde", "dynamics")
    assert ds["theta_final"].dims == ("data_seed", "c_tilde", "dynamics", "param")
    assert ds["thetas"].dims == ("data_seed", "c_tilde", "dynamics", "save", "param")
    assert list(ds["c_tilde"].values) == [0.3, 0.6, 0.9]
    assert [str(v) for v in ds["dynamics"].values] == ["flow", "gd"]
    assert ds.attrs["flowtools_version"] and ds.attrs["solver"] == "tsit5"
    assert ds.attrs["loss_threshold"] == 1e-8 and ds.attrs["grid_key"]
    assert bool(ds["done"].all())
    # one task = one chunk: the arrays are chunked like the tasks
    assert ds["status"].encoding["chunks"] == (1, 2, 1)
    sel = ds.sel(dynamics="gd", data_seed=1)
    assert sel["status"].shape == (3,)
    # the end point is the last saved state, and θ0 has the prescribed c̃
    from flowtools.sweep.two_layer import problem_from

    pb = problem_from(Grid.from_text(SMALL).cell((0, 0, 0)))
    th0 = ds["theta0"].sel(data_seed=0, dynamics="flow").values
    np.testing.assert_allclose(pb.ratio_tilde(th0), [0.3, 0.6, 0.9], rtol=1e-12)
    nc = export_netcdf(reference, tmp_path / "small.nc")
    back = xr.open_dataset(nc)
    assert back["loss_final"].dims == ("data_seed", "c_tilde", "dynamics")
    np.testing.assert_array_equal(back["theta_final"].values, ds["theta_final"].values)
    assert [str(v) for v in back["dynamics"].values] == ["flow", "gd"]
    back.close()


def test_show_and_export_on_the_command_line(reference, tmp_path, capsys):
    assert main(["sweep", "show", str(reference), "--cells"]) == 0
    out = capsys.readouterr().out
    assert "cells: 12 = data_seed[2] × c_tilde[3] × dynamics[2]; done 12, missing 0" in out
    assert "status:" in out and "wall time:" in out and "by data_seed:" in out
    assert out.count("dynamics=gd:") == 6
    nc = tmp_path / "cli.nc"
    assert main(["sweep", "export", str(reference), str(nc)]) == 0
    with xr.open_dataset(nc) as back:
        assert back["status"].dims == ("data_seed", "c_tilde", "dynamics")
    assert main(["sweep", "show", str(tmp_path / "nowhere.zarr")]) == 2


def test_rerun_needs_resume_and_computes_nothing(reference):
    with pytest.raises(FlowtoolsError, match="already holds 12 of the 12 cells"):
        run_sweep(Grid.from_text(SMALL), reference)
    res = run_sweep(Grid.from_text(SMALL), reference, resume=True)
    assert res.cached == 12 and res.computed == 0 and res.ok


def test_other_grid_is_refused_with_differences(reference):
    other = SMALL.replace("c_tilde = [0.3, 0.6, 0.9]", "c_tilde = [0.3, 0.6]").replace(
        "lr = 0.05", "lr = 0.1")
    with pytest.raises(StoreMismatch) as info:
        run_sweep(Grid.from_text(other), reference, resume=True)
    msg = str(info.value)
    assert "axis c_tilde: store 3 values [0.3, 0.6, 0.9], grid 2 values [0.3, 0.6]" in msg
    assert "lr: store 0.05, grid 0.1" in msg


def test_same_shape_shares_one_compilation(reference):
    g = Grid.from_text(SMALL)
    flow = [t for t in plan(g) if t.spec["integrator"]["dynamics"] == "flow"]
    seeds = {t.spec["problem"]["data_seed"] for t in flow}
    assert seeds == {0, 1}
    for t in flow:  # SMALL ran in this process already: no task compiles again
        assert compute_task(t.spec)["_meta"]["compile_time"] == 0.0


def test_progress_silent_when_not_a_terminal(tmp_path, capsys):
    g = Grid.from_text('[problem]\nn = 4\n[init]\nscale = 1e-4\nseed = [0, 1]\n'
                       '[integrator]\ndynamics = "gd"\nlr = 0.05\nmax_iter = 100\n')
    run_sweep(g, tmp_path / "p.zarr")
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


# ---------------------------------------------------------------------- writers
def test_second_sweep_on_a_store_is_refused(tmp_path, capsys):
    grid = _write(tmp_path / "k.toml", KILLABLE)
    store = tmp_path / "k.zarr"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from flowtools.sweep import store_lock\n"
         f"with store_lock({str(store)!r}, note='test holder'):\n"
         "    print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreBusy) as info:
            run_sweep(grid, store)
        assert f"pid {holder.pid}" in str(info.value) and "test holder" in str(info.value)
        assert main(["sweep", str(grid), "--store", str(store)]) == 2
        assert "in use by another sweep" in capsys.readouterr().err
        with pytest.raises(StoreBusy):  # the lock also refuses this process's own second use
            with store_lock(store):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()
    # the kernel released the dead holder's lock: nothing stale to clean up
    with store_lock(store):
        pass


def _done_count(store):
    """Cells marked done (cheap enough to poll: one file per done chunk of one cell)."""
    folder = pathlib.Path(store) / "done" / "c"
    return len([f for f in folder.iterdir() if not f.name.startswith(".")]) \
        if folder.is_dir() else 0


def test_sigkill_part_way_then_resume(tmp_path, killable_reference):
    grid = _write(tmp_path / "k.toml", KILLABLE)
    store = tmp_path / "k.zarr"
    proc = subprocess.Popen([sys.executable, "-m", "flowtools.cli", "sweep", str(grid),
                             "--store", str(store), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env())
    t0 = time.monotonic()
    while _done_count(store) < 3 and proc.poll() is None and time.monotonic() - t0 < 60:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stderr = proc.stderr.read()
    proc.stderr.close()
    before = _done_count(store)
    assert 3 <= before < 10, (before, stderr)
    assert before == int(open_results(store, masked=False)["done"].values.sum())
    # the killed sweep's cells read back fine; missing ones are masked
    ds = open_results(store).load()
    assert int((ds["status"] >= 0).sum()) == before
    res = run_sweep(grid, store, resume=True)
    assert res.cached == before and res.computed == 10 - before and res.ok
    _assert_same(store, killable_reference)
    assert not list(store.rglob("*.partial"))


KILLER = """
import os, signal, sys
import flowtools.sweep.store as S
from flowtools.sweep import run_sweep
where = sys.argv[3]
calls = {"n": 0}
if where == "chunk":
    real = S._write_all
    def half_then_die(fh, data):
        if "/c/" in fh.name:
            calls["n"] += 1
            if calls["n"] == 20:  # in the second task: write half the chunk, then die
                data = bytes(data)
                fh.write(data[: len(data) // 2]); fh.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        real(fh, data)
    S._write_all = half_then_die
else:
    real = S.SweepStore._mark_done
    def die_before_done(self, block, shape):
        calls["n"] += 1
        if calls["n"] == 3:  # the third task's data is written, its done mark is not
            os.kill(os.getpid(), signal.SIGKILL)
        real(self, block, shape)
    S.SweepStore._mark_done = die_before_done
run_sweep(sys.argv[1], sys.argv[2])
"""


@pytest.mark.parametrize("where", ["chunk", "done"])
def test_sigkill_inside_a_write_then_resume(tmp_path, killable_reference, where):
    grid = _write(tmp_path / "k.toml", KILLABLE)
    store = tmp_path / "k.zarr"
    script = _write(tmp_path / "killer.py", KILLER)
    proc = subprocess.run([sys.executable, str(script), str(grid), str(store), where],
                          capture_output=True, text=True, env=_env(), timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    before = _done_count(store)
    assert before == (1 if where == "chunk" else 2)
    if where == "chunk":  # the half-written temporary is there; no chunk file is damaged
        assert len(list(store.rglob("*.partial"))) == 1
    raw = xr.open_zarr(store).load()  # every chunk decodes
    if where == "done":  # the third cell's data are in place but it is not done: masked
        assert int(raw["status"].values[2]) >= 0 and not bool(raw["done"].values[2])
        assert int(open_results(store)["status"].values[2]) == -1
    res = run_sweep(grid, store, resume=True)
    assert res.cached == before and res.computed == 10 - before and res.ok
    _assert_same(store, killable_reference)
    assert not list(store.rglob("*.partial"))


# ---------------------------------------------------------------------- executors
def test_local_cluster_gives_identical_cells(reference, tmp_path):
    grid = _write(tmp_path / "small.toml", SMALL)
    res = run_sweep(grid, tmp_path / "dask.zarr", executor="dask", workers=2)
    assert res.ok and res.computed == 12 and "LocalCluster" in res.executor
    assert len(res.workers) == 2 and os.getpid() not in {
        int(w.split(":")[1]) for w in res.workers}
    _assert_same(tmp_path / "dask.zarr", reference, VARS_COMPARED + ("ts", "losses", "thetas"))


def test_a_task_that_raises_leaves_its_cells_missing(tmp_path, monkeypatch):
    import flowtools.sweep.run as R

    g = Grid.from_text('[sweep]\ncells_per_task = 1\n[problem]\nn = 4\n[init]\nscale = 1e-4\n'
                       'seed = [0, 1, 2]\n[integrator]\ndynamics = "gd"\nlr = 0.05\n'
                       'max_iter = 100\n')
    real = R.compute_task

    def flaky(spec):
        if spec["inits"][0]["seed"] == 1:
            raise RuntimeError("worker trouble")
        return real(spec)

    monkeypatch.setattr(R, "compute_task", flaky)
    res = run_sweep(g, tmp_path / "f.zarr", fsync=True)
    assert res.computed == 2 and res.missing == 1 and not res.ok
    assert "seed = 1" in res.errors[0] and "worker trouble" in res.errors[0]
    assert open_results(tmp_path / "f.zarr")["done"].values.tolist() == [True, False, True]
    monkeypatch.setattr(R, "compute_task", real)
    res = run_sweep(g, tmp_path / "f.zarr", resume=True)
    assert res.cached == 2 and res.computed == 1 and res.ok


# ---------------------------------------------------------------------- model families
CNN = """\
[sweep]
family = "relu_cnn"
cells_per_task = 3

[problem]
n = 8
dim = 40
width = 3
n_test = 200
data_seed = [0, 1]
mu_norm = [1.0, 5.0]

[init]
sigma0 = 1e-3
v0 = [0.05, 0.6, 2.0]

[integrator]
dynamics = "gd"
lr = 0.05
stable_v0 = 0.3
max_time = 15.0
loss_threshold = 0.05
"""


def test_cnn_family_cells_equal_run_gd_on_the_same_cell(tmp_path):
    """Every stored number of a relu_cnn cell is what run_gd gives on that cell alone: the
    model from PatchData.draw(seed), θ0 from seed + 2**20, η_v0 = min(lr, lr·(0.3/v0)²)
    and max_iter = ⌈15/η_v0⌉ — to round-off (the sweep batches the v0 sharing an η)."""
    from flowtools.descent import run_gd
    from flowtools.models.relu_cnn import PatchData, ReluCNN

    grid = Grid.from_text(CNN)
    res = run_sweep(grid, tmp_path / "cnn.zarr")
    assert res.ok and res.computed == 8 * 3 // 2
    ds = open_results(tmp_path / "cnn.zarr").load()
    assert ds["test_error"].dims == ("data_seed", "mu_norm", "v0")
    for seed in (0, 1):
        for mu in (1.0, 5.0):
            model = ReluCNN(PatchData.draw(n=8, d=40, mu_norm=mu, seed=seed, n_test=200),
                            width=3)
            for v0 in (0.05, 0.6, 2.0):
                lr = 0.05 * min(1.0, (0.3 / v0) ** 2)
                th0 = model.init(1e-3, v0, seed=seed + 2**20)
                tr = run_gd(model, th0, lr, max_iter=int(np.ceil(15.0 / lr)),
                            loss_threshold=0.05)
                cell = ds.sel(data_seed=seed, mu_norm=mu, v0=v0)
                W, V = (np.asarray(a) for a in model.split(tr.theta_final))
                W0, V0 = (np.asarray(a) for a in model.split(th0))
                dv, dw = np.linalg.norm(V - V0), np.linalg.norm(W - W0)
                br = np.median(np.abs(model.balance_ratio(tr.theta_final)))
                assert float(cell.lr) == pytest.approx(lr, rel=1e-15)
                assert int(cell.steps) == tr.steps and int(cell.status) == tr.status
                for name, want in (("loss_final", tr.loss_final), ("t_final", tr.t_final),
                                   ("dv", dv), ("dW", dw), ("layer_change_ratio", dv / dw),
                                   ("balance_ratio", br),
                                   ("test_error", model.test_error(tr.theta_final)),
                                   ("train_error", model.train_error(tr.theta_final))):
                    assert float(cell[name]) == pytest.approx(float(want), rel=1e-9,
                                                              abs=1e-14), name
    # the learning rate depends on v0: v0 = 0.6 and 2 run at η < lr, and stopped at the
    # loss target or the flow time 15
    assert np.all(ds["lr"].sel(v0=2.0) < 0.05) and np.all(ds["t_final"] <= 15.0 + 1e-12)


def test_cnn_family_resume_computes_nothing_new_and_continues_an_interrupted_run(
        tmp_path, monkeypatch):
    import flowtools.sweep.run as R

    grid = Grid.from_text(CNN)
    real = R.compute_task
    calls = []

    def flaky(spec):  # the second task dies, as a killed worker would
        calls.append(spec)
        if len(calls) == 2:
            raise RuntimeError("worker lost")
        return real(spec)

    monkeypatch.setattr(R, "compute_task", flaky)
    first = run_sweep(grid, tmp_path / "cnn.zarr")
    assert first.computed == 9 and first.missing == 3 and len(first.errors) == 1
    monkeypatch.setattr(R, "compute_task", real)
    again = run_sweep(grid, tmp_path / "cnn.zarr", resume=True)
    assert (again.computed, again.cached) == (3, 9) and again.ok
    last = run_sweep(grid, tmp_path / "cnn.zarr", resume=True)
    assert (last.computed, last.cached) == (0, 12)
    # and the continued store equals one computed in a single run
    run_sweep(grid, tmp_path / "whole.zarr")
    a, b = (open_results(tmp_path / p).load() for p in ("cnn.zarr", "whole.zarr"))
    for name in ("test_error", "loss_final", "dv", "dW", "steps"):
        np.testing.assert_array_equal(a[name].values, b[name].values)


@pytest.mark.parametrize("edit, where, words", [
    (('family = "relu_cnn"', 'family = "relu_cn"'), ":2:", ["sweep.family", "relu_cnn",
                                                           "two_layer", "did you mean"]),
    (("sigma0 = 1e-3", "scale = 1e-3"), ":14:", ["unknown key 'scale'", "[init]",
                                                 "family 'two_layer'", "sigma0, v0, seed"]),
    (("max_time = 15.0", "max_time = 15.0\nmax_iter = 100"), ":21:",
     ["max_time", "max_iter", "not both"]),
    (("dim = 40", "dim = 8"), ":7:", ["problem.dim must exceed n"]),
    (("v0 = [0.05, 0.6, 2.0]", "v0 = [0.05, -0.6]"), ":15:", ["init.v0[1]"]),
])
def test_cnn_family_bad_grids_name_the_key_and_line(edit, where, words):
    with pytest.raises(GridError) as err:
        Grid.from_text(CNN.replace(*edit), source="cnn.toml")
    msg = str(err.value)
    assert msg.startswith("cnn.toml" + where), msg
    for w in words:
        assert w in msg, msg


def test_two_layer_definitions_do_not_name_the_family():
    """Stores of the default family keep their keys (definitions unchanged)."""
    g = Grid.from_text(SMALL)
    assert g.family == "two_layer" and "family" not in g.definition()
    assert Grid.from_text(CNN).definition()["family"] == "relu_cnn"
    named = SMALL.replace("[sweep]\n", '[sweep]\nfamily = "two_layer"\n')
    assert Grid.from_text(named).key() == g.key()


def test_demo_cnn_grid_is_the_quick_reproduce_grid():
    """demos/grids/cnn_phase.toml and `reproduce cnn-phase --quick` share one definition
    (main grid, trained protocol), so either resumes the other's store."""
    from flowtools.experiments.figures.cnn_phase import CNNPhaseSettings, grids

    demo = Grid.from_toml(ROOT / "demos" / "grids" / "cnn_phase.toml")
    quick = Grid.from_dict(grids(CNNPhaseSettings.quick())["main", "trained"])
    assert demo.definition() == quick.definition()
    assert demo.size == 126 and demo.chunks == (1, 1, 7)


def test_threads_executor_gives_the_in_process_results(tmp_path, reference):
    """``executor="threads"``: the tasks on threads of this process (JAX runs compiled
    programs outside the GIL) — every cell bit for bit as one task after the other, a
    task that raises reported as an error of its own."""
    from flowtools.sweep.executors import ThreadExecutor, make_executor

    ex = make_executor("threads", 2)
    assert isinstance(ex, ThreadExecutor) and ex.n_workers == 2 and "2 thread" in ex.describe()
    grid = _write(tmp_path / "small.toml", SMALL)
    res = run_sweep(grid, tmp_path / "t.zarr", executor="threads", workers=2)
    assert res.ok and res.computed == 12
    _assert_same(tmp_path / "t.zarr", reference)
    tasks = plan(Grid.from_toml(grid))

    def boom(spec):
        if spec is tasks[1].spec:
            raise ValueError("boom")
        return "ok"

    out = dict((t.number, r) for t, r in ThreadExecutor(2).run(boom, tasks))
    assert sorted(out) == [t.number for t in tasks]
    assert isinstance(out[tasks[1].number], ValueError)
    assert sum(r == "ok" for r in out.values()) == len(tasks) - 1

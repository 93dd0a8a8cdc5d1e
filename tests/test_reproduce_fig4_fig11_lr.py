"""`flowtools reproduce fig4`, `fig11` and `lr-puzzle` in quick mode: the files read back
with named dimensions and their claims, and the mathematics of the runs (exact c̃ = 0 / 1,
the gradient flow's monotone loss and its escape time, RMS² = MSE, n = 3's recovery only
at c̃ ∈ {0, 1}, n = 6 at the floor, the mean loss's Hessian 1/n of the sum's, GD settling
only where its stability edge exceeds the learning rate)."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

import flowtools as ft
from flowtools.experiments.claims import claims_from_json
from flowtools.experiments.figures import fig4 as F4
from flowtools.experiments.outcomes import OUTCOMES, outcome
from flowtools.experiments.reproduce import reproduce

Q1, Q2, OUTSIDE = (OUTCOMES.index(k) for k in ("Q1", "Q2", "global min outside Q*"))


def _run(name, tmp_path_factory, stores=None, log=None):
    out = tmp_path_factory.mktemp(name.replace("-", "_"))
    run = reproduce(name, quick=True, out=out, log=log or (lambda *a: None), stores=stores)
    return run, xr.open_dataset(out / f"{name}.nc", engine="scipy")


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    return tmp_path_factory.mktemp("fig4_stores")


@pytest.fixture(scope="module")
def fig4(tmp_path_factory, stores):
    return _run("fig4", tmp_path_factory, stores)


FIG11_LOG = []


@pytest.fixture(scope="module")
def fig11(tmp_path_factory, fig4, stores):  # after fig4: reads its store
    return _run("fig11", tmp_path_factory, stores, FIG11_LOG.append)


@pytest.fixture(scope="module")
def lr(tmp_path_factory):
    return _run("lr-puzzle", tmp_path_factory)


def test_files_dims_and_claims(fig4, fig11, lr):
    for (run, ds), dims in ((fig4, {"n", "data_seed", "c_tilde", "t_save", "param"}),
                            (fig11, {"n", "data_seed", "c_tilde", "t_save"}),
                            (lr, {"run", "convention", "c_tilde", "param"})):
        assert all(p.stat().st_size > 0 for p in run.files)
        assert dims <= set(ds.dims)
        assert ds.attrs["run_mode"] == "quick" and "decided_at" in ds.attrs
        assert "criterion" in ds.attrs
        assert [c.claim for c in claims_from_json(ds.attrs["claims"])] == \
            [c.claim for c in run.claims]


def test_fig4_initial_ratios_exact(fig4):
    _, ds = fig4
    ct = ds.c_tilde.values
    assert ct[0] == 0.0 and ct[-1] == 1.0
    meas = ds.c_tilde_init.values                      # (n, seed, c̃) measured from θ0
    pos = ct > 0
    np.testing.assert_allclose(meas[..., pos], np.broadcast_to(ct[pos], meas[..., pos].shape),
                               rtol=1e-12)
    # C1 = 0 is exact up to the round-off of a_1‖γ‖ + w_1ᵀγ at the scale 1e-20
    assert np.all(np.abs(ds.C1_over_C2_init.values[..., 0]) < 1e-14)
    pb = ft.example1(3, sampling="gaussian", seed=0)
    C = pb.imbalance(F4.initial_states(pb, [0.0])[0])
    assert abs(C[0]) <= 1e-14 * abs(C[1]) and abs(C[1]) > 0


def test_fig4_decided_at_infinity_and_flow_mathematics(fig4):
    _, ds = fig4
    assert ds.attrs["decided_at"] == "t → ∞ (certified end points)"
    assert np.all(np.isin(ds.status.values, (0, 5)))
    assert np.all(ds.loss_final.values <= F4.LOSS_STOP)
    # dℓ/dt = −‖∇ℓ‖² ≤ 0: the saved losses never rise (beyond the solver's rtol 1e-10)
    loss = ds.loss.values
    rise = np.diff(loss, axis=-1) / loss[..., :-1]
    assert np.nanmax(rise) <= 1e-6
    # the same flow stopped at ℓ = 1e-15 stops earlier, and not before the escape from
    # scale 1e-20, which takes ≈ log(1/α)/μ1 (Eq. 2)
    assert np.all(ds.t_paper_stop.values <= ds.t_final.values)
    for n in ds.n.values:
        for s in ds.data_seed.values:
            mu1 = ft.example1(int(n), sampling="gaussian", seed=int(s)).mu1
            assert np.all(ds.t_paper_stop.sel(n=n, data_seed=s).values
                          > 0.5 * np.log(1 / F4.SCALE) / mu1)
    # the stored MSE is the mean squared error of the end point, computed directly
    pb = ft.example1(6, sampling="gaussian", seed=0)
    th = ds.theta_final.sel(n=6, data_seed=0).values
    mse = ft.generalization_error(pb, th, X_test=F4.test_points(), kind="mse")
    np.testing.assert_allclose(ds.gen_error_mse.sel(n=6, data_seed=0).values, mse, rtol=1e-12)


def test_fig4_paper_claims_n6(fig4):
    _, ds = fig4
    ct = ds.c_tilde.values
    o6 = ds.outcome.sel(n=6).values                     # (seed, c̃)
    # n = 6: every run recovers; at ℓ ≤ 1e-24 the RMS error is below the floor
    assert np.all(o6 <= Q2)
    assert np.all(ds.gen_error.sel(n=6).values <= F4.FLOOR)
    assert np.all(o6[:, ct == 1.0] == Q1)               # c̃ = 1: the neurons stay balanced
    assert np.all(o6[:, ct == 0.0] == Q2)               # c̃ = 0: the first neuron silent
    # at the paper's stop ℓ = 1e-15 the MSE is below 1e-8 for every n = 6 run
    assert np.all(ds.gen_error_mse_at_paper_stop.sel(n=6).values <= F4.FLOOR)
    (c6,) = [c for c in fig4[0].claims if "n = 6 the network recovers" in c.claim]
    assert c6.agree is True


@pytest.mark.slow
def test_fig4_n3_recovers_only_at_0_and_1():
    """§6, Fig. 4(a) (full mode computes it; here one data seed, one compilation)."""
    ct = np.array([0.0, 0.5, 1.0])
    pb = ft.example1(3, sampling="gaussian", seed=0)
    tr = ft.solve_flow(pb, F4.initial_states(pb, ct), t1=F4.T1, loss_threshold=F4.LOSS_STOP,
                       max_steps=F4.MAX_STEPS)
    err = F4.CRITERION.errors(pb, tr.theta_final, X_test=F4.test_points())
    lab = list(outcome(pb, tr.theta_final, tr.loss_final, F4.CRITERION, errors=err))
    assert lab == ["Q2", "global min outside Q*", "Q1"]
    assert err[1] > 1e-3                                # zero loss, far from the target


def test_fig11_reads_the_fig4_flows(fig4, fig11):
    _, d4 = fig4
    _, d11 = fig11
    assert list(d11.n.values) == [6]                    # quick mode: n = 6 computed
    np.testing.assert_array_equal(d11.loss.values, d4.loss.sel(n=[6]).values)
    np.testing.assert_array_equal(d11.t_paper_stop.values, d4.t_paper_stop.sel(n=[6]).values)
    # read from fig4's store, not redone
    assert any("fig4_quick_flow: 0 cell(s) computed" in ln for ln in FIG11_LOG), FIG11_LOG


def test_lr_puzzle_mathematics(lr):
    run, ds = lr
    conv = list(ds.convention.values)
    s_, m_ = conv.index("sum"), conv.index("mean")
    edge, at = ds.edge.values, ds.edge_at.values
    n = ds.n_samples.values[:, None]
    # at the same end point the mean loss's Hessian is 1/n of the sum's: edge × n
    same = (at[:, s_] == 1) & (at[:, m_] == 0) | (at[:, s_] == 0) & (at[:, m_] == 1)
    assert same.any()
    np.testing.assert_allclose((edge[:, m_] / edge[:, s_])[same],
                               np.broadcast_to(n, same.shape)[same], rtol=1e-8)
    # GD settles (reaches ℓ ≤ 1e-15) only where lr ≤ 2/λ_max, up to the end point's
    # distance from the minimum
    lr_ = ds.lr.values[:, None, None]
    settled = (ds.outcome.values <= OUTSIDE) & (at == 0)
    assert settled.any()
    assert np.all(edge[settled] >= np.broadcast_to(lr_, edge.shape)[settled] * (1 - 1e-3))
    # Figure 8 at lr 0.5 with the sum loss: every edge is below 0.5 and GD diverges
    f8 = ds.case.values == "fig8"
    assert np.all(edge[f8, s_][np.isfinite(edge[f8, s_])] < 0.5)
    assert np.all(ds.outcome.values[f8, s_] == OUTCOMES.index("diverged"))
    assert not np.any(ds.outcome.values[:, m_] == OUTCOMES.index("diverged"))


def test_fig4_killed_mid_run_resumes_with_only_the_missing_flows(fig4, tmp_path):
    """`flowtools reproduce fig4 --quick` killed with SIGKILL part-way; the rerun computes
    only the flows its store lacks, and the figure's data equal an uninterrupted run's
    (each flow runs alone: its bits do not depend on which run computed it)."""
    out = tmp_path / "out"
    # its own compilation caches: the killed process writes none of the session's entries
    env = dict(os.environ, JAX_PLATFORMS="cpu", FLOWTOOLS_JAX_CACHE=str(tmp_path / "cache"))
    proc = subprocess.Popen([sys.executable, "-m", "flowtools.cli", "reproduce", "fig4",
                             "--quick", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)

    def done():
        folders = list((out / "stores").glob("fig4_quick_flow-*.zarr/done/c"))
        return sum(1 for f in folders[0].rglob("*") if f.is_file()) if folders else 0

    t0 = time.monotonic()
    while done() < 2 and proc.poll() is None and time.monotonic() - t0 < 300:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stderr = proc.stderr.read()
    proc.stderr.close()
    before = done()
    assert 2 <= before < 5, (before, stderr)
    assert not (out / "fig4.nc").exists()         # nothing half-written: no figure yet
    lines = []
    run = reproduce("fig4", quick=True, out=out, log=lines.append)
    (line,) = [ln for ln in lines if "fig4_quick_flow:" in ln]
    assert f"{5 - before} cell(s) computed, {before} from the store" in line, line
    with xr.open_dataset(out / "fig4.nc", engine="scipy") as again:
        again = again.load()
    ref = fig4[1]
    for name in ("theta_final", "loss", "t_final", "t_paper_stop", "gen_error", "outcome"):
        np.testing.assert_array_equal(again[name].values, ref[name].values)
    assert [c.agree for c in run.claims] == [c.agree for c in fig4[0].claims]
    assert pathlib.Path(out / "fig4_claims.json").is_file()


def test_fig4_on_a_dask_cluster_equals_the_in_process_run(fig4, tmp_path):
    """`reproduce fig4 --quick --executor dask --workers 2`: the same figure data as the
    in-process run (each flow runs alone, GD one batch per c̃ row: bits do not depend on
    the process), bit for bit."""
    pytest.importorskip("distributed")
    lines = []
    run = reproduce("fig4", quick=True, gd=True, out=tmp_path, log=lines.append,
                    executor="dask", workers=2)
    assert any("fig4_quick_flow: 5 cell(s) computed" in ln for ln in lines), lines
    ref = fig4[1]
    with xr.open_dataset(tmp_path / "fig4.nc", engine="scipy") as ds:
        for name in ref.data_vars:
            np.testing.assert_array_equal(ds[name].values, ref[name].values, err_msg=name)
    assert [c.agree for c in run.claims][:len(fig4[0].claims)] == \
        [c.agree for c in fig4[0].claims]

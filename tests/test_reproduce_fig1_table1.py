"""`flowtools reproduce fig1` and `table1` in quick mode: the files, and the mathematics the
runs must show (one run per figure, shared by the tests of this module)."""

import json

import numpy as np
import pytest

import flowtools as ft
from flowtools.experiments.claims import claims_from_json
from flowtools.experiments.figures import fig1 as F1
from flowtools.experiments.figures import table1 as T1
from flowtools.experiments.outcomes import outcome
from flowtools.experiments.reproduce import reproduce


@pytest.fixture(scope="module")
def fig1_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fig1")
    return reproduce("fig1", quick=True, out=out, log=lambda *a: None), out


@pytest.fixture(scope="module")
def table1_run(fig1_run):
    """Table 1 after Figure 1, into the same output folder (and stores): its log too."""
    lines = []
    out = fig1_run[1]
    return reproduce("table1", quick=True, out=out, log=lines.append), out, lines


def _read(out, name):
    import xarray as xr

    return xr.open_dataset(out / f"{name}.nc", engine="scipy").load()


def test_padding_leaves_loss_gradient_and_hessian_unchanged():
    """Zero-weight rows (x = 0, y = 0) add nothing, so ℓ, ∇ℓ and ∇²ℓ agree with the real
    problem (to round-off) for grid and Gaussian data of every n ≤ 8."""
    import jax

    theta = np.random.default_rng(0).standard_normal((3, 6))
    for pb in (ft.example1(3), ft.example1(8, sampling="gaussian", seed=4)):
        pp = pb.padded(F1.N_PAD)
        assert pp.X.shape[0] == F1.N_PAD and pp.n == pb.n and pp.n_params == pb.n_params
        for th in theta:
            assert abs(float(pp.loss(th)) - float(pb.loss(th))) <= 1e-13 * float(pb.loss(th))
            g, gp = (np.asarray(jax.grad(p.loss)(th)) for p in (pb, pp))
            np.testing.assert_allclose(gp, g, rtol=1e-12, atol=1e-14)
            h, hp = (np.asarray(jax.hessian(p.loss)(th)) for p in (pb, pp))
            np.testing.assert_allclose(hp, h, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(pp.gamma, pb.gamma, rtol=1e-14)


def test_fig1_files_dims_and_claims(fig1_run):
    run, out = fig1_run
    ds = _read(out, "fig1")
    assert ds.rms_error.dims == ("n", "stop_loss", "scale", "seed")
    assert ds.rms_error_f.dims == ("n_f", "stop_loss_f", "scale_f", "seed_f")
    # every panel of the paper, quick mode included: (a)–(e) are n = 2…6
    assert list(ds.n.values) == [2, 3, 4, 5, 6]
    assert [p.decode() if isinstance(p, bytes) else p for p in ds.panel.values] == list("abcde")
    assert ds.sizes["n_f"] >= 2 and ds.sizes["scale"] >= 2
    cl = claims_from_json(ds.attrs["claims"])
    assert len(cl) == len(run.claims) >= 6
    assert json.loads((out / "fig1_claims.json").read_text())["figure"] == "fig1"
    assert "decided_at" in ds.attrs and ds.attrs["error_kind"] == "rms"
    assert (out / "fig1.png").stat().st_size > 30_000


def test_fig1_stops_and_error_definitions(fig1_run):
    ds = _read(fig1_run[1], "fig1")
    stops = ds.stop_loss.values
    # each stage stopped at its loss, and every run reached the last one
    for name, st in (("loss", stops), ("loss_f", ds.stop_loss_f.values)):
        lo = ds[name].values
        assert np.all(lo <= st[None, :, None, None]), name
    # the stops are stages of one flow: the steps up to them grow
    assert np.all(np.diff(ds.steps.values, axis=1) >= 0)
    assert np.all(ds.status.values == 0)


def test_fig1_n6_errors_at_the_stopping_loss_floor(fig1_run):
    """n = 6: every run ends in Q*; the error is then set by the stopping loss alone: near a
    minimum the residual on the n training points is ~√(2ℓ/n) and the test error has that
    size — at ℓ = 1e-8 it is far above the 1e-8 floor (RMS), at ℓ = 1e-24 far below, and
    from ℓ = 1e-15 to 1e-8 it grows by √(1e7) ≈ 3162 (quadratic basin)."""
    ds = _read(fig1_run[1], "fig1")
    e = ds.rms_error.sel(n=6).values                     # (stop, scale, seed)
    oc = ds.outcome.sel(n=6).values.astype(str)
    assert np.isin(oc, ("Q1", "Q2")).all()
    for k, s in enumerate(ds.stop_loss.values[:2]):
        pred = np.sqrt(2 * s / 6)
        assert np.all((e[k] > pred / 3) & (e[k] < 3 * pred)), (s, e[k])
    ratio = e[0] / e[1]
    assert np.all((ratio > 3162 / 3) & (ratio < 3 * 3162))
    assert np.all(e[-1] <= ds.attrs["recovery_floor"])


def test_fig1_sample_sizes_below_and_at_the_optimistic_size(fig1_run):
    """n = 2 (below the optimistic size 3: infinitely many single-neuron interpolants) never
    recovers; at n = 3 a Gaussian draw (c̃ ∈ (0, 1) almost surely) interpolates (ℓ ≤ 1e-24)
    without recovering, at every scale."""
    ds = _read(fig1_run[1], "fig1")
    for n in (2, 3):
        oc = ds.outcome.sel(n=n).values.astype(str)
        assert (oc == "global min outside Q*").all(), (n, oc)
        assert np.all(ds.rms_error.sel(n=n).values[-1] > 1e-5)
    # (f): more Gaussian samples, lower mean error (the paper's Figure 1(f))
    mf = ds.rms_error_f.values[:, 0].mean(-1)            # (n_f, scale_f) at ℓ ≤ 1e-15
    assert np.all(mf[-1] < 1e-2 * mf[0])


def test_table1_reads_fig1s_store(fig1_run, table1_run):
    """Table 1's random rows are Figure 1's σ = 1e-8 column: read from its store (no cell
    computed again), equal to Figure 1's values at the stops both have."""
    _, out, lines = table1_run
    grid = F1.grids(True)["grid"]["sweep"]["name"]
    line = next(x for x in lines if x.strip().startswith(grid + ":"))
    st = F1.settings(True)
    n_cells = len(st["ns"]) * len(st["scales"]) * st["seeds"]
    assert f"0 cell(s) computed, {n_cells} from the store" in line, line
    t, f = _read(out, "table1"), _read(out, "fig1").sel(scale=T1.SCALE)
    rnd = t.kind.values.astype(str) == "random"
    for n in t.n.values:
        for stop in t.stop_loss.values:
            np.testing.assert_array_equal(t.rms_error.sel(n=n, stop_loss=stop).values[rnd],
                                          f.rms_error.sel(n=n, stop_loss=stop).values)
        assert (t.outcome.sel(n=n).values[rnd] == f.outcome.sel(n=n).values).all()


def test_table1_files_and_exact_cases(table1_run):
    run, out, _ = table1_run
    ds = _read(out, "table1")
    assert ds.rms_error.dims == ("n", "stop_loss", "run")
    assert ds.theta_end.dims == ("n", "run", "param")
    assert claims_from_json(ds.attrs["claims"])[0].claim == run.claims[0].claim
    kind = ds.kind.values.astype(str)
    ct = ds.c_tilde.values
    assert np.all(ct[:, kind == "theta1 = 0"] == 0.0)
    assert np.all(ct[:, kind == "theta1 = theta2"] == 1.0)
    np.testing.assert_allclose(ct[:, kind == "C1 = C2"], 1.0, atol=1e-12)
    # C1 = 0 holds only to round-off
    assert np.all(ds.abs_C1_over_normC.values[:, kind == "C1 = 0"] < 1e-14)
    rnd = kind == "random"
    assert np.all((ct[:, rnd] > 0) & (ct[:, rnd] < 1))
    assert np.all(ds.loss.values[:, -1] <= T1.STOPS[-1])


def test_table1_rows(table1_run):
    """n = 3: no random seed recovers, the invariant one-neuron cases (θ1 = 0 → Q2,
    θ1 = θ2 → Q1, the end point keeping θ1 = θ2) do; n = 4: random seeds recover only to
    Q2 (Q1 is not separated; the exact c̃ = 1 cases still reach Q1);
    n = 6: every run recovers."""
    ds = _read(table1_run[1], "table1")
    kind = ds.kind.values.astype(str)
    oc = {int(n): ds.outcome.sel(n=n).values.astype(str) for n in ds.n.values}
    assert (oc[3][kind == "random"] == "global min outside Q*").all()
    assert (oc[3][kind == "theta1 = 0"] == "Q2").all()
    assert (oc[3][kind == "theta1 = theta2"] == "Q1").all()
    th = ds.theta_end.sel(n=3).values[kind == "theta1 = theta2"]
    np.testing.assert_allclose(th[:, :3], th[:, 3:], atol=1e-10)
    assert np.all(ds.theta_end.values[:, kind == "theta1 = 0", :3] == 0.0)  # tanh(0) = 0
    assert not np.any(oc[4][kind == "random"] == "Q1")
    assert np.isin(oc[6], ("Q1", "Q2")).all()


def test_table1_criterion_needs_the_low_stop(table1_run):
    """At ℓ ≤ 1e-15 an end point in Q* with n = 6 has an RMS error ≈ √(2ℓ/n) ≈ 1.8e-8,
    above the 1e-8 floor (the criterion is not decidable there); at ℓ ≤ 1e-24 it is ~1e-12."""
    ds = _read(table1_run[1], "table1")
    e = ds.rms_error.sel(n=6).values
    pred = np.sqrt(2e-15 / 6)
    assert np.all((e[0] > pred / 3) & (e[0] < 3 * pred))
    assert np.all(e[1] <= 1e-10)


def test_outcome_rule_on_exact_points():
    """Ported from the earlier Table-1 test: exact Q1/Q2 points and their mirror images are
    recoveries at the floor 1e-8; a 1e-3 perturbation of w1 is not (error > 1e-5)."""
    pb = ft.example1(6)
    on_q = np.array([[0.3, 1, 1, 0.7, 1, 1], [1, 1, 1, 0, 0.4, -2.0],
                     [-1, -1, -1, 0, 0.4, -2.0], [0.5, 1, 1, -0.5, -1, -1]])
    zero = np.zeros(len(on_q))
    lab = outcome(pb, on_q, zero, F1.CRITERION).astype(str)
    assert lab.tolist() == ["Q1", "Q2", "Q2", "Q1"]
    off = on_q + 1e-3 * np.eye(6)[1]
    assert (outcome(pb, off, zero, F1.CRITERION) == "global min outside Q*").all()
    assert np.min(F1.CRITERION.errors(pb, off)) > 1e-5


def test_init_tie_puts_the_draw_on_an_invariant_set():
    """``init.tie`` (Table 1's θ1 = 0 and θ1 = θ2): the Gaussian draw of the cell's seed with
    the first neuron zeroed, or copied to the others; refused beside a prescribed c̃."""
    from flowtools.errors import GridError
    from flowtools.sweep.grid import load_grid
    from flowtools.sweep.two_layer import initial_state

    pb = ft.example1(4)
    th = pb.init_gaussian(1e-8, seed=3)
    z = initial_state(pb, {"scale": 1e-8, "seed": 3, "tie": "zero_first"})
    e = initial_state(pb, {"scale": 1e-8, "seed": 3, "tie": "equal"})
    assert np.all(z[:3] == 0) and np.array_equal(z[3:], th[3:])
    assert np.array_equal(e, np.concatenate([th[:3], th[:3]]))
    with pytest.raises(GridError, match="init.c_tilde or init.tie"):
        load_grid({"init": {"scale": 1e-8, "c_tilde": 0.5, "tie": "equal"}})

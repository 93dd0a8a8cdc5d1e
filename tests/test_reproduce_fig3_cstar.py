"""`flowtools reproduce fig3` and `cstar` in quick mode: the files read back, and the
mathematics of the runs (exact c̃ = 0 / 1 members, Theorem 1's ratio invariance of the
α → 0 start points, the multisection's monotone brackets, finite α against α → 0)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import xarray as xr

import flowtools as ft
from flowtools.experiments.branch_maps import demarcation, limit_start_points, nearer_branch
from flowtools.experiments.claims import claims_from_json
from flowtools.experiments.reproduce import reproduce


def _s(a):
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in np.ravel(a)])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """cstar, then fig3 into the same folder: fig3 reads c̃* from cstar's stores."""
    out = tmp_path_factory.mktemp("fig3_cstar")
    lines = {"cstar": [], "fig3": []}
    cs = reproduce("cstar", quick=True, out=out, log=lines["cstar"].append)
    f3 = reproduce("fig3", quick=True, out=out, log=lines["fig3"].append)
    return out, lines, cs, f3


@pytest.fixture(scope="module")
def fig3(runs):
    out, _, _, run = runs
    return run, xr.open_dataset(out / "fig3.nc", engine="scipy")


@pytest.fixture(scope="module")
def cstar(runs):
    out, _, run, _ = runs
    return run, xr.open_dataset(out / "cstar.nc", engine="scipy")


def test_fig3_reads_cstar_stores_without_computing(runs, fig3, cstar):
    """cstar's coarse grid and every refinement round are stores (the rounds under the
    bracket's folder); fig3 finds all of them there (no cell computed) and reports the
    same c̃* and evaluations."""
    out, lines, _, _ = runs
    stores = out / "stores"
    (coarse,) = stores.glob("cstar_grid_n6-*.zarr")
    (rounds,) = (p for p in stores.glob("cstar_grid_n6-*") if p.is_dir() and
                 (p / "refine.json").exists())
    assert (rounds / "round0.zarr").is_dir() and list(rounds.glob("round1/*.zarr"))
    counts = [int(m) for line in lines["cstar"] for m in re.findall(r"(\d+) (?:cell\(s\) )?"
                                                                    r"computed", line)]
    assert sum(counts) > 0
    counts = [int(m) for line in lines["fig3"] if "fig3_" not in line
              for m in re.findall(r"(\d+) (?:cell\(s\) )?computed", line)]
    assert counts and sum(counts) == 0, lines["fig3"]
    # fig3's own flows and GD are grids of their own (seeds, c̃ = 1, c̃ = 0; flow and GD)
    assert len(list(stores.glob("fig3_quick_*.zarr"))) == 6
    _, f3 = fig3
    _, cs = cstar
    assert f3.attrs["c_star"] == cs.c_star.values[0]
    np.testing.assert_array_equal(np.sort(f3.cstar_eval_c_tilde.values),
                                  np.sort(cs.eval_c_tilde.values[0]))
    assert coarse.is_dir()


def test_fig3_files_and_named_dims(fig3):
    run, ds = fig3
    assert all(p.stat().st_size > 0 for p in run.files)
    assert {"member", "T_gd", "T_flow", "param"} <= set(ds.dims)
    assert ds.flow_state_T.dims == ("member", "T_flow", "param")
    cl = claims_from_json(ds.attrs["claims"])
    assert len(cl) == len(run.claims) >= 5
    assert "RMS" in ds.attrs["criterion"] and ds.attrs["decided_at"].startswith("flow: t → ∞")


def test_fig3_exact_members(fig3):
    """c̃ = 1 is C1 = C2 exactly and ends on Q1: at finite α only the top-eigenspace parts
    of the two neurons agree, so the end is a point of Q1 (both neurons at ±(w, b) = (1, 1),
    a1 + a2 = ±1, to the 1e-6 the polynomial approach along Q1 leaves at ℓ = 1e-15), not
    two identical neurons; c̃ = 0 is C1 = 0 to round-off (neuron 1 starts ⊥ its top
    eigenvector) and ends on Q2."""
    _, ds = fig3
    pb, n = ft.example1(), int(ds.attrs["seeds"])  # the grids' θ0: the paper's starts
    want = np.vstack([pb.init_gaussian(1e-8, seed=np.arange(n)),
                      pb.init_ratio(1.0, 1e-8, seed=n)[None],
                      pb.init_c_tilde(0.0, 1e-8, seed=n + 1)])
    np.testing.assert_array_equal(ds.theta0.values, want)
    C = ds.C.values
    assert abs(C[-2, 0] - C[-2, 1]) <= 1e-14 * abs(C[-2, 1])
    assert abs(C[-1, 0]) <= 1e-12 * abs(C[-1, 1])
    out = _s(ds.flow_outcome.values)
    assert out[-2] == "Q1" and out[-1] == "Q2"
    a1, w1, b1, a2, w2, b2 = ds.flow_end.values[-2]
    np.testing.assert_allclose(np.abs([w1, b1, w2, b2]), 1.0, atol=1e-6)
    assert abs(abs(a1 * np.sign(w1) + a2 * np.sign(w2)) - 1.0) < 1e-6


def test_fig3_t_infinity_decided_and_near_the_limit(fig3, cstar):
    """Every flow reaches ℓ ≤ 1e-15 on Q1 or Q2 (decided at t → ∞), and the finite-α
    (1e-8) seeds agree with the α → 0 limit away from c̃*: Theorem 3 bounds the difference
    by O(α^{1/2}) = O(1e-4) in the trajectory, so seeds more than 0.05 from c̃* go the
    limit's way; the demarcation recomputed from the stored labels is the stored one."""
    _, ds = fig3
    out = _s(ds.flow_outcome.values)
    assert set(out) <= {"Q1", "Q2"}
    assert np.all(ds.flow_loss_end.values <= 1e-15)
    cs = ds.attrs["c_star"]
    assert 0.6 < cs < 0.8
    ct = ds.c_tilde.values
    assert np.all(out[ct > cs + 0.05] == "Q1") and np.all(out[ct < cs - 0.05] == "Q2")
    n = int(ds.attrs["seeds"])
    d = demarcation(ct[:n], out[:n])
    assert d.c_tilde == pytest.approx(ds.attrs["demarcation_flow_inf"])
    assert d.bracket[0] < d.c_tilde < d.bracket[1]


def test_fig3_horizon_states(fig3):
    """The flow's state at a horizon is the saved state (or the end point if it ended
    earlier): its loss is the loss evaluated at that state; the nearer-branch labels are
    reproducible from the stored states."""
    _, ds = fig3
    pb = ft.example1()
    th = ds.flow_state_T.values[:, -1]
    loss = np.array([float(pb.loss(t)) for t in th])
    np.testing.assert_allclose(loss, ds.flow_loss_T.values[:, -1],
                               rtol=1e-8, atol=1e-300)
    near = nearer_branch(pb, ds.gd_state_T.values[:, -1])
    assert np.all(_s(ds.gd_nearer_T.values[:, -1]) == near)
    assert np.all(np.isfinite(ds.demarcation_gd_T.values))


def test_cstar_map_and_brackets(cstar):
    """The n = 6 grid switches once, Q2 below and Q1 above, with a bracket ≤ the quick
    tolerance 5e-3; every evaluated c̃ below the bracket is Q2 and above it Q1 (a monotone
    map, as the multisection assumes); c̃ = 0 (C1 = 0: neuron 1 stays at 0) is Q2 and c̃ = 1
    (swap-symmetric) is Q1."""
    _, ds = cstar
    names = list(_s(ds.dataset.values))
    i = names.index("grid n=6")
    lo, hi = ds.bracket_lo.values[i], ds.bracket_hi.values[i]
    assert 0 < hi - lo <= 5e-3 and lo < ds.c_star.values[i] < hi
    assert _s(ds.branch_below.values)[i] == "Q2" and int(ds.n_switches.values[i]) == 1
    c = ds.eval_c_tilde.values[i]
    b = _s(ds.eval_branch.values[i])
    ok = np.isfinite(c)
    assert np.all(b[ok & (c <= lo)] == "Q2") and np.all(b[ok & (c >= hi)] == "Q1")
    assert b[ok & (c == 0.0)][0] == "Q2" and b[ok & (c == 1.0)][0] == "Q1"
    assert json.loads(ds.attrs["claims"])[0]["claim"].startswith("Fig. 3(b)")


def test_limit_start_points_keep_the_ratio():
    """Theorem 1: the α → 0 limit depends on θ0 only through C(θ0). The start points on the
    manifold series keep C1/C2 = c̃ up to the series' second term, relative τ0·‖Q2‖/‖Q1‖
    (≲ 1e-4 at ‖x0‖ ≈ 1e-3); c̃ = 0 keeps neuron 1 exactly at 0, c̃ = 1 is exactly symmetric."""
    pb = ft.example1()
    cs = np.array([0.0, 0.3, 0.74, 1.0])
    x0, tau = limit_start_points(pb, cs)
    r = np.asarray(pb.ratio(x0))
    np.testing.assert_allclose(r, cs, atol=1e-4 * 1.0)
    assert np.all(x0[0, :3] == 0.0) and np.all(x0[3, :3] == x0[3, 3:])
    assert np.all((tau > 0) & (np.linalg.norm(x0, axis=1) < 1e-1))


def test_demarcation_rule():
    """The best threshold: the midpoint of the gap with the fewest misordered labels; other
    labels ignored; no change → NaN."""
    d = demarcation([0.1, 0.3, 0.5, 0.6, 0.9], ["Q2", "Q1", "Q2", "x", "Q1"])
    assert d.misordered == 1 and d.n_q1 == 2 and d.n_q2 == 2
    assert np.isnan(demarcation([0.1, 0.2], ["Q1", "Q1"]).c_tilde)


def test_cstar_follows_every_outcome_change(tmp_path, monkeypatch):
    """The multisection (``refine`` per bracket of the coarse grid) against a known map:
    outcomes relabelled by thresholds 0.3 (Q2 → other) and 0.61 (other → Q1) on short
    flows; each bracket ends narrower than the tolerance around its threshold, no Q2 ↔ Q1
    bracket means no c̃*, and a dataset refined for 0 rounds keeps the coarse brackets
    (the datasets' transitions and evaluations padded to one table)."""
    from flowtools.experiments.engine import Engine
    from flowtools.experiments.figures import cstar as C

    def labels(pb, ds):
        c = ds.c_tilde.values
        return np.where(c < 0.3, "Q2", np.where(c < 0.61, "global min outside Q*", "Q1"))

    short = C.grid

    def grid(*args):
        g = short(*args)
        g["integrator"].update(t1=1.0, max_steps=1000)
        return g

    for name, value in (("_labels", labels), ("grid", grid), ("COARSE", 6), ("PIECES", 4)):
        monkeypatch.setattr(C, name, value)
    sets = [("grid n=6", "grid", 6, -1, 0.02), ("grid n=5", "grid", 5, -1, 0.3)]
    ds = C._dataset(sets, Engine(tmp_path, log=lambda line: None), lambda *a: None)
    kinds = _s(ds.transition_kind.values).reshape(2, -1)
    assert list(kinds[0]) == list(kinds[1]) == ["Q2 -> global min outside Q*",
                                                "global min outside Q* -> Q1"]
    tr = ds.transition_c_tilde.values
    assert np.all(np.abs(tr[0] - [0.3, 0.61]) < 0.02 / 2)
    np.testing.assert_allclose(tr[1], [0.3, 0.7])  # the coarse brackets' midpoints
    assert np.all(np.isnan(ds.c_star.values)) and list(ds.n_switches.values) == [0, 0]
    r = ds.eval_round.values
    assert r[0].max() == 2 and set(r[1]) == {0, -1}  # padded with −1
    c, b = ds.eval_c_tilde.values[0], _s(ds.eval_branch.values[0])
    assert np.array_equal(b, labels(None, xr.Dataset(coords={"c_tilde": c})))

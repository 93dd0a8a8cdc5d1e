"""Smoke tests for the figure demos: the Figure 2 collapse and the Table 1 recovery logic."""

from __future__ import annotations

import numpy as np

import flowtools as ft
from demos import fig2_trajectory_collapse as fig2
from demos import table1_sample_sizes as t1


def test_fig2_quick_trajectories_collapse(tmp_path):
    """Trials at scales 1e-4, 1e-8, 1e-12 with c = 0.5: after the Theorem-1 shift the 1e-8
    trial matches the 1e-12 one to 1e-7 (flow and GD); the 1e-4 trial's deviation shrinks at
    least like ‖C‖ (Theorem 3 bounds it by ‖C‖^{1/2}; measured ≈ ‖C‖²); and for GD only its
    own escape rate log(1 + ημ1)/η aligns the escapes (the μ1 shift leaves ~0.09)."""
    d = fig2.main(["--quick", "--out", str(tmp_path), "--tau-end", "40"])
    assert (tmp_path / "fig2_trajectory_collapse.png").stat().st_size > 10_000
    C = np.array(d["norm_C"])
    for rule in ("flow", "gd"):
        dth = np.array(d[rule]["max_param_dev"])
        dl = np.array(d[rule]["max_log10_loss_dev"])
        assert dth[1] < 1e-7 and dl[1] < 1e-7, (rule, dth, dl)
        assert dth[0] / dth[1] > C[0] / C[1], (rule, dth, C)
        assert dth[0] < 1e-2
    esc_rho = np.array(d["gd"]["escape_tau_rho_shift"])
    esc_mu1 = np.array(d["gd"]["escape_tau_mu1_shift"])
    assert np.ptp(esc_rho) < 1e-3 < 0.05 < np.ptp(esc_mu1)


def test_table1_recovery_logic():
    """Recovery = generalization error < 1e-7: exact Q1/Q2 points (and their mirror images)
    recover, a 1e-3 perturbation does not; GD on n = 3 grid points interpolates (ℓ ≤ 1e-15)
    without recovering (n = 3 is below both separation sizes), while on n = 6 a Q2-bound
    seed (c̃ ≈ 0.24) recovers."""
    pb = ft.example1(6)
    on_q = np.array([[0.3, 1, 1, 0.7, 1, 1], [1, 1, 1, 0, 0.4, -2.0],
                     [-1, -1, -1, 0, 0.4, -2.0], [0.5, 1, 1, -0.5, -1, -1]])
    flags, err = t1.recovered(pb, on_q)
    assert flags.all() and err.max() < 1e-14
    flags, err = t1.recovered(pb, on_q + 1e-3 * np.eye(6)[1])
    assert not flags.any() and err.min() > 1e-5

    frac, counts = t1.binned_fraction(np.array([0.01, 0.02, 0.3, 0.99, 1.0]),
                                      np.array([True, False, True, False, False]))
    assert counts.tolist() == [2, 0, 1, 0, 0, 2]
    assert frac[0] == 0.5 and frac[2] == 1.0 and frac[5] == 0.0 and np.isnan(frac[1])

    r3 = t1.measure(3, np.arange(4), method="gd", lr=0.05, max_iter=200_000)
    assert r3["reached_loss_1e-15"] == 4 and r3["recovered"] == 0
    assert np.min(r3["per_seed"]["gen_error"]) > 1e-5
    r6 = t1.measure(6, np.array([1]), method="gd", lr=0.05, max_iter=200_000)
    assert r6["recovered"] == 1 and r6["per_seed"]["c_tilde"][0] < 0.5


def test_fig6_draws_the_problems_stored_target(tmp_path):
    """Figure 6 at widths 2 and 3: the target curve is the problem's own ``target`` (here
    the paper's tanh(x + 1)), the end points reach ℓ ≤ 1e-15 and the outputs are written."""
    from demos import fig6_widths as fig6

    d = fig6.main(["--out", str(tmp_path), "--widths", "2", "3"])
    assert (tmp_path / "fig6_widths.png").stat().st_size > 10_000
    assert ft.example1(3).target == ft.models.two_layer.default_target()
    for run in d["runs"].values():
        assert run["status"] == "CONVERGED" and run["loss_final"] <= 1e-15

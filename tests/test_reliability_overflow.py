"""Starts and values beyond float64 (issue 20, §6): one line and exit 2, never a traceback.

`flowtools run --scale 1e308` and `--ratio 1e-308` ended in numpy's LinAlgError from the
end-point certificate (an eigen-decomposition of an infinite Hessian), `--scale 1e150` in
matplotlib's OverflowError (a loss of 1e299 on a log axis). The rules: the flow is defined
only where ℓ(θ0) and ∇ℓ(θ0) are finite, so ``solve_flow`` refuses other starts for every
model; a certificate at a non-finite point is refused as data; plots leave out magnitudes
matplotlib cannot lay out, and say so.
"""

import numpy as np
import pytest

import flowtools as ft
from flowtools.certify import stationary_check
from flowtools.cli import main
from flowtools.errors import FlowtoolsError
from flowtools.plotting import PLOT_MAX, plot_trajectories, plottable


@pytest.mark.parametrize("args", [["--scale", "1e308"], ["--ratio", "1e-308"],
                                  ["--scale", "1e200"], ["--scale", "1e160"],
                                  ["--ratio=-1e-300"]])
def test_overflowing_start_is_one_line(args, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "overflows float64" in err, err
    assert "smaller initial scale" in err and "‖θ0‖ = 0," not in err
    assert not out.exists() or not any(out.iterdir())  # nothing written


def test_solve_flow_refuses_any_model_where_the_loss_overflows():
    lm = ft.LossModel(lambda th, data: (th ** 2).sum() ** 4, n_params=3)  # finite θ0, ℓ(θ0) = inf
    with pytest.raises(FlowtoolsError, match="overflows float64"):
        ft.solve_flow(lm, np.full(3, 1e80))
    pb = ft.example1()
    batch = np.stack([pb.init_gaussian(1e-3, seed=0), pb.init_gaussian(1e200, seed=1)])
    with pytest.raises(FlowtoolsError, match="member 1"):
        ft.solve_flow(pb, batch)


def test_certificate_at_a_non_finite_point_is_refused_as_data():
    pb = ft.example1()
    check = stationary_check(pb, pb.init_gaussian(1e200, seed=0))
    assert check["minimum"] is False and check["moving"] is False
    assert "not finite" in check["reason"]


def test_plots_leave_out_what_matplotlib_cannot_draw(tmp_path):
    v, cut = plottable([1.0, 1e299, np.inf, -1e260, np.nan, -3.0])
    assert cut and np.array_equal(np.isnan(v), [False, True, True, True, True, False])
    assert not plottable([1.0, PLOT_MAX])[1]
    pb = ft.example1()
    S = 4
    ts = np.array([0.0, 1.0, 10.0, 100.0])
    huge = ft.Trajectory(
        ts=ts[None], thetas=np.full((1, S, 6), 1e150), losses=np.array([[1e299] * S]),
        t_final=np.array([100.0]), theta_final=np.full((1, 6), 1e150),
        loss_final=np.array([1e299]), status=np.array([1], dtype=np.int8),
        steps=np.array([3]), grad_evals=np.array([3]), wall_time=0.0, compile_time=0.0,
        method="test", info={})
    path = plot_trajectories(pb, [huge[0]], tmp_path / "t.png", title="huge")
    assert path.stat().st_size > 0

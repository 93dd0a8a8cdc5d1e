"""The `flowtools` command: help, `run` writes its files, bad input exits cleanly."""

import json
import subprocess
import sys

import numpy as np
import pytest

from flowtools.cli import main
from flowtools.trajectory import Trajectory


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in ("run", "hessian", "limit", "compare"):
        assert name in out


def test_run_flow_and_gd_write_files(tmp_path):
    out = tmp_path / "flow"
    assert main(["run", "--t1", "40", "--seed", "0", "1", "--scale", "1e-4", "--out",
                 str(out)]) == 0
    tr = Trajectory.load(out / "trajectory.npz")
    assert tr.theta_final.shape == (2, 6) and np.all(tr.t_final <= 40)
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["members"]) == 2 and "c" in summary["members"][0]
    assert (out / "trajectory.png").stat().st_size > 10_000
    out = tmp_path / "gd"
    assert main(["run", "--method", "gd", "--lr", "0.05", "--max-iter", "2000", "--ratio",
                 "0.5", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["members"][0]["c"] == pytest.approx(0.5)


@pytest.mark.parametrize("argv, words", [
    (["run", "--activation", "tanhh"], "unknown activation"),
    (["run", "--method", "gd", "--lr", "-1"], "learning rate"),
    (["run", "--t1", "0"], "horizon"),
])
def test_bad_input_exits_2_without_traceback(argv, words):
    proc = subprocess.run([sys.executable, "-m", "flowtools.cli", *argv], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2
    assert words in proc.stderr and "Traceback" not in proc.stderr

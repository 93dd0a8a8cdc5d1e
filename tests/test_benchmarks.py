"""The benchmarks' shared baseline: GD on several threads is GD on the batch, and the
scripts that import it start when run as ``python benchmarks/bench_X.py``."""

import importlib.util
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import flowtools as ft
from flowtools.status import Status

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def _baselines():
    spec = importlib.util.spec_from_file_location("_baselines", BENCH / "_baselines.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gd_on_threads_is_gd_on_the_batch_in_parts():
    """Each member's GD is its own recurrence: the parts (3 + 2 members on two threads, or
    2 + 2 + 1 on three) end where the whole batch ends, with the same statuses and
    iteration counts; the end points agree to round-off only (a batch of another size is
    another compiled program, and XLA's vectorized arithmetic differs in the last bits)."""
    base = _baselines()
    pb = ft.example1()
    theta0 = pb.init_gaussian(0.1, seed=range(5))
    kw = dict(max_iter=3000, loss_threshold=1e-6)  # two of five stop early, at the threshold
    one = base.gd_on_threads(pb, theta0, 0.05, **kw)
    ref = ft.run_gd(pb, theta0, 0.05, **kw)
    # one thread is run_gd itself: the same program, bit for bit
    assert one.threads == 1 and np.array_equal(one.theta_final, ref.theta_final)
    assert np.array_equal(one.status, ref.status) and np.array_equal(one.steps, ref.steps)
    assert one.wall > 0 and one.compile >= 0
    assert list(one.status) == [Status.HORIZON] * 3 + [Status.CONVERGED] * 2
    for threads in (2, 3):
        parts = base.gd_on_threads(pb, theta0, 0.05, threads=threads, **kw)
        assert parts.threads == threads
        assert np.array_equal(parts.status, one.status)
        assert np.array_equal(parts.steps, one.steps)
        np.testing.assert_allclose(parts.theta_final, one.theta_final, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(parts.loss_final, one.loss_final, rtol=1e-9, atol=1e-20)
    # more threads than members: one member per thread
    assert base.gd_on_threads(pb, theta0[:2], 0.05, max_iter=10, threads=8).threads == 2


def test_flow_ratios_count_each_sides_compile():
    base = _baselines()
    gd1 = base.GDRun(1, 10.0, 1.0, *[np.zeros(1)] * 4)
    gd2 = base.GDRun(2, 5.0, 2.0, *[np.zeros(1)] * 4)
    assert base.flow_ratios(2.0, 3.0, gd1, gd2) == pytest.approx((0.2, 5 / 11, 0.4, 5 / 7))
    assert "same 2 thread(s) 0.400 (with compile 0.714)" in base.ratio_line(2.0, 3.0, gd1, gd2)


@pytest.mark.parametrize("script", ["bench_flow_vs_gd.py", "bench_wide.py",
                                    "bench_fig4_grid.py"])
def test_benchmark_scripts_find_the_shared_baseline(script):
    """Run as ``python benchmarks/bench_X.py`` from the repository root (``--help``: the
    imports, no work)."""
    proc = subprocess.run([sys.executable, f"benchmarks/{script}", "--help"],
                          cwd=BENCH.parent, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout

"""Issue 20, classes 5 and 6 of the command line: fail fast where a person waits, and no
traceback left.

* A Dask scheduler that cannot be reached (refused, unknown host, silent, malformed
  address) is reported within the connect timeout, with the address and how to start one.
* ``compare`` estimates its GD iterations before anything runs and refuses over
  ``--max-gd-steps`` (and any t1/lr whose count GD cannot hold, e.g. t1 = 1e300), exit 2.
* A sweep whose stderr is not a terminal prints progress lines at intervals.
* Ctrl-C at any moment of the start (while ``import flowtools`` imports JAX included):
  one line, exit 130, no traceback; the console script enters through a module that
  imports nothing heavy.
"""

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest

import _flowtools_launcher as launcher
from flowtools.cli import main
from flowtools.descent import (
    GD_STEP_CEILING,
    GD_STEP_LIMIT,
    check_gd_iterations,
    gd_iterations,
)
from flowtools.errors import FlowtoolsError
from flowtools.sweep.executors import AbstractExecutor, check_address, make_executor
from flowtools.sweep.progress import Progress, progress_line

ROOT = Path(__file__).resolve().parents[1]


def _one_line_exit_2(argv, capsys, *words):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)
    return err


# ---------------------------------------------------------------------- class 5: executor
@pytest.mark.parametrize("address, words", [
    ("tcp://127.0.0.1:1", ("'tcp://127.0.0.1:1'", "connection refused")),   # the reproducer
    ("tcp://localhost:9", ("'tcp://localhost:9'", "connection refused")),
    ("tcp://no-such-host.invalid:8786", ("no-such-host.invalid", "not known")),
])
def test_unreachable_scheduler_is_reported_at_once(address, words):
    t0 = time.monotonic()
    with pytest.raises(FlowtoolsError) as err:
        make_executor(address, connect_timeout=3)
    msg = str(err.value)
    for w in (*words, "dask scheduler", f"dask worker {address}", "--connect-timeout"):
        assert w in msg, (w, msg)
    assert time.monotonic() - t0 < 60  # not Dask's two minutes of silent retries


@pytest.fixture
def silent_scheduler():
    """The address of something that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.1)
    held, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for c in held:
            c.close()
        server.close()


def test_silent_listener_is_reported_within_the_connect_timeout(silent_scheduler):
    with pytest.raises(FlowtoolsError) as err:
        make_executor(silent_scheduler, connect_timeout=0.5)
    msg = str(err.value)
    assert silent_scheduler in msg and "dask scheduler" in msg and "0.5 s" in msg, msg


def test_a_running_scheduler_is_reached_and_a_worker_is_not_taken_for_one():
    """The checks before connecting let a real scheduler through (and name what answers
    when it is not one)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      protocol="tcp://", dashboard_address=None) as cluster:
        with make_executor(cluster.scheduler_address, connect_timeout=10) as ex:
            assert ex.n_workers == 1 and cluster.scheduler_address in ex.describe()
        worker = next(iter(cluster.workers.values())).address
        with pytest.raises(FlowtoolsError, match="a Dask Worker, not a scheduler"):
            make_executor(worker, connect_timeout=10)


@pytest.mark.parametrize("address, words", [
    ("tcp://[::1", "not a Dask scheduler address"),
    ("tcp://host:port:x", "not a Dask scheduler address"),
    ("tcp://host", "missing port"),
    ("tcp://h:99999", "port in 1-65535"),
    ("tcp://:8786", "port in 1-65535"),
    ("foo://h:1", "unknown scheme 'foo'"),
])
def test_malformed_address_is_refused_before_anything_starts(address, words):
    with pytest.raises(FlowtoolsError, match="tcp://HOST:8786") as err:
        check_address(address)
    assert words in str(err.value)


def test_sweep_cli_unreachable_scheduler_one_line(tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text("[problem]\nn = 4\n[init]\nscale = 1e-4\nseed = [0, 1]\n"
                    "[integrator]\ndynamics = 'gd'\nlr = 0.05\nmax_iter = 100\n")
    store = tmp_path / "s.zarr"
    _one_line_exit_2(["sweep", str(grid), "--executor", "tcp://127.0.0.1:1",
                      "--connect-timeout", "2", "--store", str(store)], capsys,
                     "tcp://127.0.0.1:1", "dask scheduler")
    # a malformed address: refused before the store is created
    _one_line_exit_2(["sweep", str(grid), "--executor", "tcp://[::1",
                      "--store", str(tmp_path / "t.zarr")], capsys, "tcp://[::1")
    assert not (tmp_path / "t.zarr").exists()
    assert main(["sweep", str(grid), "--connect-timeout", "0"]) == 2  # argparse's usage
    err = capsys.readouterr().err
    assert "argument --connect-timeout" in err.splitlines()[-1] and "Traceback" not in err


# ---------------------------------------------------------------------- class 5/6: compare
def test_gd_iterations_estimate():
    assert gd_iterations(10.0, [0.001, 0.01]) == 11000.0
    assert gd_iterations(5e4, [0.01, 0.05, 0.25, 0.5], batch=9) == 9 * 6.3e6
    assert gd_iterations(1e300, [1e-300]) == float("inf")
    assert gd_iterations(1e300, [5e-324]) == float("inf")
    check_gd_iterations(GD_STEP_LIMIT, GD_STEP_LIMIT, "x", "y", "--z")  # at the limit: ok
    with pytest.raises(FlowtoolsError, match="raise --z to"):
        check_gd_iterations(GD_STEP_LIMIT + 1, GD_STEP_LIMIT, "x", "y", "--z")
    with pytest.raises(FlowtoolsError, match="more than GD can count"):  # under any limit
        check_gd_iterations(1e19, GD_STEP_CEILING, "x", "y", "--z")
    with pytest.raises(FlowtoolsError, match=r"\[1, 1e\+18\]"):
        check_gd_iterations(1.0, 1e19, "x", "y", "--z")


@pytest.mark.parametrize("argv, words", [
    # the reproducers: t1 = 1e300 (an OverflowError traceback) and 1e11 steps without a word
    (["--lrs", "0.01", "--t1", "1e300"], ("1e+302", "more than GD can count")),
    (["--lrs", "0.001", "--t1", "1e8"], ("1e+11", "limit of 1e+08", "--max-gd-steps")),
    # variants: a tiny lr, a denormal lr, a long end-point horizon, several rates
    (["--lrs", "1e-300", "--t1", "10"], ("1e+301", "more than GD can count")),
    (["--lrs", "5e-324", "--t1", "1e300"], ("more than 1e308",)),
    (["--lrs", "0.01", "--t1", "10", "--endpoint-t1", "1e300"], ("endpoint_t1",)),
    (["--lrs", "0.01", "0.1", "--t1", "1e7"], ("1.1e+09", "--max-gd-steps")),
    (["--lrs", "0.001", "--t1", "1e8", "--max-gd-steps", "1e10"], ("limit of 1e+10",)),
    (["--branch-map", "--horizon", "1e12"], ("branch map", "1.13e+15", "--max-gd-steps")),
    (["--branch-map", "--horizon", "1e300", "--lrs", "1e-10"], ("more than GD can count",)),
])
def test_compare_refuses_work_over_the_limit(argv, words, capsys, monkeypatch):
    import flowtools.branches as branches
    import flowtools.discretization.comparison as comparison

    def forbidden(*a, **k):
        raise AssertionError("work started before the estimate refused it")

    monkeypatch.setattr(comparison, "align", forbidden)
    monkeypatch.setattr(branches, "run_gd", forbidden)
    monkeypatch.setattr(branches, "solve_flow", forbidden)
    _one_line_exit_2(["compare", *argv], capsys, "GD iterations", *words)


@pytest.mark.parametrize("value", ["1e19", "inf", "0", "nan", "many"])
def test_max_gd_steps_option_is_checked(value, capsys):
    assert main(["compare", "--max-gd-steps", value]) == 2
    err = capsys.readouterr().err
    assert "--max-gd-steps" in err and "Traceback" not in err


def test_compare_library_refuses_before_anything_runs():
    import flowtools as ft
    from flowtools.discretization import compare

    pb = ft.example1()
    th0 = pb.init_gaussian(1e-2, seed=0)
    with pytest.raises(FlowtoolsError, match="max_gd_steps"):
        compare(pb, th0, [0.001], t1=1e8)
    with pytest.raises(FlowtoolsError, match="more than GD can count"):
        compare(pb, th0, [0.01], t1=1e300, max_gd_steps=GD_STEP_CEILING)
    with pytest.raises(FlowtoolsError, match="limit of GD iterations"):
        compare(pb, th0, [0.01], max_gd_steps=0)


def test_compare_overflow_reproducer_in_a_process():
    proc = subprocess.run([sys.executable, "-m", "flowtools.cli", "compare", "--lrs", "0.01",
                           "--t1", "1e300"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


# ---------------------------------------------------------------------- class 5: progress
def test_progress_line_contents():
    line = progress_line("fig4", 32, 4, 12, 1, 15.0)
    for w in ("16/32 cells done", "4 from the store", "1 failed", "cells/s", "ETA 20 s"):
        assert w in line
    assert "rate not known yet" in progress_line("g", 10, 0, 0, 0, 1.0)
    assert "ETA" not in progress_line("g", 10, 0, 10, 0, 1.0)  # finished


class _NotATerminal(io.StringIO):
    def isatty(self):
        return False


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _wait_for(predicate, seconds=20.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_progress_lines_when_not_a_terminal():
    out = _NotATerminal()
    with Progress(total=4, cached=1, desc="g", stream=out, interval=0.02) as bar:
        _wait_for(lambda: "cells done" in out.getvalue())
        bar.advance(2, failed=1)
        n = out.getvalue().count("\n")
        _wait_for(lambda: out.getvalue().count("\n") > n)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("g: 1/4 cells done (1 from the store), 0 failed")
    assert lines[-1].startswith("g: 3/4 cells done (1 from the store), 1 failed;")


def test_no_progress_lines_when_disabled_or_on_a_terminal(monkeypatch):
    out = _NotATerminal()
    with Progress(total=4, stream=out, enabled=False, interval=0.01) as bar:
        time.sleep(0.1)
        bar.advance(4)
    assert out.getvalue() == ""
    tty = _Terminal()
    with Progress(total=4, stream=tty, interval=0.01) as bar:  # the bar instead
        assert bar._bar is not None and bar._thread is None
    with pytest.raises(FlowtoolsError, match="progress interval"):
        Progress(total=4, stream=out, interval=0)


def test_sweep_prints_progress_lines_into_a_log(tmp_path, capsys):
    """run_sweep with stderr captured (not a terminal): lines at intervals, with the
    failures counted. The executor fails every task, once a line has been printed."""
    from flowtools.sweep import Grid, run_sweep

    seen = []

    class WaitsForALine(AbstractExecutor):
        def run(self, fn, tasks):
            for task in tasks:
                _wait_for(lambda: seen.append(capsys.readouterr().err) or
                          "cells done" in "".join(seen))
                yield task, RuntimeError("no worker here")

        n_workers = 1

        def describe(self):
            return "a test executor"

    grid = Grid.from_text("[sweep]\nname = 'log'\n[problem]\nn = 4\n[init]\nscale = 1e-4\n"
                          "seed = [0, 1, 2]\n[integrator]\ndynamics = 'gd'\nlr = 0.05\n"
                          "max_iter = 100\n")
    res = run_sweep(grid, tmp_path / "s.zarr", executor=WaitsForALine(),
                    progress_interval=0.05)
    assert len(res.errors) >= 1
    err = "".join(seen) + capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("log: ")]
    assert lines and lines[-1].startswith("log: 3/3 cells done, 3 failed"), err


def test_sweep_progress_interval_option_is_checked(tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text("[problem]\nn = 4\n[init]\nscale = 1e-4\n")
    for bad in ("0", "-1", "inf"):
        assert main(["sweep", str(grid), "--progress-interval", bad]) == 2
        assert "--progress-interval" in capsys.readouterr().err


# ---------------------------------------------------------------------- class 6: Ctrl-C
def _console_script() -> str:
    """The console script pip generates for pyproject's entry point."""
    entry = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, func = entry["flowtools"].split(":")
    return (f"import re\nimport sys\nfrom {module} import {func}\n"
            "if __name__ == '__main__':\n"
            "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
            f"    sys.exit({func}())\n")


def test_console_entry_imports_nothing_heavy():
    """The entry module of the console script imports no flowtools, JAX or NumPy: a Ctrl-C
    can be handled from the first instant."""
    assert "_flowtools_launcher" in _console_script()
    code = ("import sys, _flowtools_launcher\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('flowtools', 'jax', 'numpy', 'scipy', 'sympy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT")
@pytest.mark.parametrize("delay", [0.3, 0.8, 1.5, 2.5, 4.0])
def test_ctrl_c_during_startup_one_line_130(delay, tmp_path, silent_scheduler):
    """SIGINT at several moments after the console script starts: while Python, NumPy,
    JAX and flowtools import, or once the command runs (a sweep waiting for a scheduler
    that never answers)."""
    script = tmp_path / "flowtools"
    script.write_text(_console_script())
    grid = tmp_path / "g.toml"
    grid.write_text("[problem]\nn = 4\n[init]\nscale = 1e-4\n")
    proc = subprocess.Popen([sys.executable, str(script), "sweep", str(grid), "--executor",
                             silent_scheduler, "--connect-timeout", "100", "--store",
                             str(tmp_path / "s.zarr")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(delay)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # 130, or killed by SIGINT (see test_cli.test_real_ctrl_c_during_verify): a shell
    # shows 130 for both
    assert proc.returncode in (130, -signal.SIGINT), err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert err.strip().splitlines() in (["flowtools: interrupted"],
                                        ["flowtools sweep: interrupted"]), err


def test_interrupt_reported_by_an_extension_counts_as_the_interrupt(capsys, monkeypatch):
    """An extension module interrupted while initializing prints the KeyboardInterrupt
    (through sys.excepthook) and raises an ImportError without it: one line, 130."""
    import flowtools.cli.verify as verify

    def interrupted_import(args):
        sys.excepthook(KeyboardInterrupt, KeyboardInterrupt(), None)
        raise ImportError("Encountered an error while initializing the extension.")

    monkeypatch.setattr(verify, "run", interrupted_import)
    assert launcher.main(["verify"]) == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].endswith("interrupted"), err
    assert "Traceback" not in err and "ImportError" not in err


def test_interrupt_chained_into_another_error_counts(capsys, monkeypatch):
    import flowtools.cli.verify as verify

    def chained(args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as ki:
            raise ImportError("numpy._core.multiarray failed to import") from ki

    monkeypatch.setattr(verify, "run", chained)
    assert main(["verify"]) == 130
    assert capsys.readouterr().err == "flowtools verify: interrupted\n"
    assert launcher.caused_by_interrupt(ImportError("x")) is False
    assert launcher.caused_by_interrupt(None) is False

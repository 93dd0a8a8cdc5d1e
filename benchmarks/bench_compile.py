"""Cold compile time of the default implicit flow program, against a baseline in the same run.

The program: ``flowtools.solve_flow(ft.example1(), θ0)`` with the defaults (Kvaerno5,
newton="stage", log-norm coordinates, the loss and stationarity stops, one lockstep chunk
of 64 members). Each round runs, in fresh processes with every disk cache off
(``FLOWTOOLS_JAX_CACHE=off``), the integrator core's compilation of that program and splits
it into trace, lower (jaxpr → StableHLO) and XLA compile (``jax.monitoring`` duration
events), with the size of the program (jaxpr equations, StableHLO characters) as
load-independent measures; then it integrates the 64 members.

The baseline is the same program built by another source tree (``--base DIR``, e.g. a
``git worktree add /tmp/base 2768d92``: the tree before issue 22's compile work), run
on that tree's ``PYTHONPATH`` in its own processes, interleaved with this tree's rounds so
that both see the same load; the two runs' end points, statuses and step counts are
compared. Without ``--base`` only this tree is timed.

    python benchmarks/bench_compile.py [--base /tmp/base] [--rounds 3] [--json OUT.json]

Timings on a shared machine vary with its load: each measure's minimum over the rounds is
printed, and the ratios; CPU seconds (this process) vary less than wall seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

TARGET = 4.0  # seconds, cold, on the 2-core development machine (issue 22, item 2)
_EVENTS = {"/jax/core/compile/jaxpr_trace_duration": "trace",
           "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
           "/jax/core/compile/backend_compile_duration": "xla"}


def child(out: str) -> None:
    """One cold compilation and run (this process: caches off before the import)."""
    os.environ["FLOWTOOLS_JAX_CACHE"] = "off"
    os.environ.pop("FLOWTOOLS_EXPORT_CACHE", None)
    import time

    import jax
    import jax.monitoring

    split = dict.fromkeys(_EVENTS.values(), 0.0)
    active = [False]

    def listen(name, seconds, **_):
        if active[0] and name in _EVENTS:
            split[_EVENTS[name]] += seconds

    jax.monitoring.register_event_duration_secs_listener(listen)
    import flowtools as ft  # first: it sets EQX_ON_ERROR=nan before equinox is imported
    import flowtools.integrate.core as core
    from flowtools import flow

    seen = {}
    plain = core.compiled

    class Timed:  # the integrator's program, its stages timed (wall and CPU seconds)
        def __init__(self, fn):
            self.fn, self.__wrapped__ = fn, fn.__wrapped__

        def lower(self, *args):
            w, c = time.perf_counter(), time.process_time()
            active[0] = True
            try:
                lowered = self.fn.lower(*args)
            finally:
                active[0] = False
            seen.update(tl=time.perf_counter() - w, tl_cpu=time.process_time() - c,
                        hlo_chars=len(lowered.as_text()))
            return TimedLowered(lowered)

    class TimedLowered:
        def __init__(self, lowered):
            self.lowered = lowered

        def compile(self):
            w, c = time.perf_counter(), time.process_time()
            active[0] = True
            try:
                return self.lowered.compile()
            finally:
                active[0] = False
                seen.update(xla_wall=time.perf_counter() - w, xla_cpu=time.process_time() - c)

    def spy(fn, *args):  # the integrator's one compilation
        exe, seconds = plain(Timed(fn), *args)
        seen.update(seconds=seconds, args=args, fn=fn)
        return exe, seconds

    core.compiled = spy
    pb = ft.example1()
    theta0 = pb.init_gaussian(1e-8, seed=range(64))
    traj = ft.solve_flow(pb, theta0, batch_size=64, workers=1)
    core.compiled = plain
    import equinox as eqx

    eqns = None  # the program's size: equations of its jaxpr (traced again, not timed)
    with contextlib.suppress(Exception):
        closed = eqx.filter_make_jaxpr(seen["fn"].__wrapped__)(*seen["args"])[0]
        eqns = _count_eqns(closed.jaxpr)
    # trace: everything before lowering (jaxpr_trace_duration events nest: jits in jits)
    split["trace"] = seen["tl"] - split["lower"]
    result = dict(compile=seen["seconds"], cpu=seen["tl_cpu"] + seen["xla_cpu"],
                  trace_lower_cpu=seen["tl_cpu"], xla_cpu=seen["xla_cpu"], **split,
                  eqns=eqns, hlo_chars=seen["hlo_chars"], wall=float(traj.wall_time),
                  flow_module=flow.__file__)
    np.savez(out, theta_final=traj.theta_final, t_final=traj.t_final, status=traj.status,
             steps=traj.steps, loss_final=traj.loss_final, thetas=traj.thetas,
             result=json.dumps(result))


def _count_eqns(jaxpr) -> int:
    import jax

    n = 0
    for eqn in jaxpr.eqns:
        n += 1
        for p in eqn.params.values():
            for sub in (p if isinstance(p, (tuple, list)) else (p,)):
                if isinstance(sub, jax.extend.core.ClosedJaxpr):
                    n += _count_eqns(sub.jaxpr)
                elif isinstance(sub, jax.extend.core.Jaxpr):
                    n += _count_eqns(sub)
    return n


def run(tree: pathlib.Path | None, out: pathlib.Path) -> dict:
    env = dict(os.environ, FLOWTOOLS_JAX_CACHE="off")
    env.pop("FLOWTOOLS_EXPORT_CACHE", None)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(tree), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep)
    here = str(pathlib.Path(__file__).resolve())
    proc = subprocess.run([sys.executable, here, "--child", str(out)], env=env,
                          capture_output=True, text=True,
                          cwd=str(tree) if tree is not None else None)
    if proc.returncode:
        raise SystemExit(f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    data = np.load(out)
    return dict(json.loads(str(data["result"])),
                arrays={k: data[k] for k in data.files if k != "result"})


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=pathlib.Path, help="the baseline's source tree")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=pathlib.Path)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        return child(a.child)
    rows: dict[str, list] = {"after": [], "before": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
            for name in order:
                if name == "before" and a.base is None:
                    continue
                tree = a.base if name == "before" else None
                rows[name].append(run(tree, pathlib.Path(tmp) / f"{name}{r}.npz"))
                x = rows[name][-1]
                print(f"round {r} {name:6s}: compile {x['compile']:6.2f} s = trace "
                      f"{x['trace']:5.2f} + lower {x['lower']:5.2f} + XLA {x['xla']:5.2f}; CPU "
                      f"{x['cpu']:6.2f} s (trace+lower {x['trace_lower_cpu']:5.2f}, XLA "
                      f"{x['xla_cpu']:5.2f}); jaxpr {x['eqns']} eqns, StableHLO "
                      f"{x['hlo_chars']} chars; run {x['wall']:.2f} s", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} (the machine's other jobs share the cores)")
    summary = {}
    for name, rs in rows.items():
        if rs:
            # each measure's minimum over the rounds (load varies between them)
            best = summary[name] = {k: min(x[k] for x in rs) for k in (
                "compile", "cpu", "trace_lower_cpu", "xla_cpu", "trace", "lower", "xla",
                "eqns", "hlo_chars", "wall")}
            print(f"{name:6s} (minima of {len(rs)}): cold compile {best['compile']:.2f} s = trace "
                  f"{best['trace']:.2f} + lower {best['lower']:.2f} + XLA {best['xla']:.2f} "
                  f"; CPU {best['cpu']:.2f} s (trace+lower {best['trace_lower_cpu']:.2f}, XLA "
                  f"{best['xla_cpu']:.2f}); target ≤ {TARGET:g} s")
    if rows["before"]:
        b, f = summary["before"], summary["after"]
        for k in ("compile", "trace", "xla", "cpu", "trace_lower_cpu", "xla_cpu", "eqns",
                  "hlo_chars"):
            print(f"ratio after/before, {k}: {f[k] / b[k]:.2f}")
        x, y = rows["before"][0]["arrays"], rows["after"][0]["arrays"]
        same = {k: bool(np.array_equal(x[k], y[k], equal_nan=True)) for k in x}
        print("results bitwise equal to the baseline:", same)
        if not all(same.values()):
            th = np.abs(x["theta_final"] - y["theta_final"]).max()
            print(f"  max |Δθ_final| = {th:.3g}; steps equal {same['steps']}, "
                  f"statuses equal {same['status']}")
        summary["same"] = same
    if a.json:
        a.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()

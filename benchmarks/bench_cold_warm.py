"""Cold against warm ``flowtools run``: the first process on a machine against the next one.

Each round, in fresh processes:

1. cold: ``flowtools run --out OUT1`` with an empty cache folder (``FLOWTOOLS_JAX_CACHE``),
2. warm: the same command again with the cache that (1) filled,
3. and 4. the same pair with ``FLOWTOOLS_EXPORT_CACHE=off`` and another empty cache: JAX's
   compilation cache alone (the state before the export cache of ``flowtools._compile``),

plus ``import flowtools, flowtools.cli.run`` alone. Prints wall times (min over rounds),
their breakdown — import, trace+lower, load (key, read, deserialize), XLA compile, run, and
the rest (interpreter start, problem set-up, plot, files) — from the ``FLOWTOOLS_COMPILE_TIMES``
lines and the command's "compile …, run …" line, the ratio warm/cold against the issue's
target 0.4, and whether the warm run's trajectory equals the cold one's bitwise.

    python benchmarks/bench_cold_warm.py [--rounds 3] [--json OUT.json] [-- extra run args]

Timings are wall clock: on a shared machine repeat and read the minimum.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

TARGET = 0.4
_COMPILE = re.compile(r"flowtools\.compile: (\S+) (\S+): trace\+lower ([\d.]+) s, "
                      r"load ([\d.]+) s, xla compile ([\d.]+) s, total ([\d.]+) s")
_RUN = re.compile(r"compile ([\d.]+) s, run ([\d.]+) s")


def _run(cmd, env) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode not in (0, 1):  # 1: a member did not end ok (still a timing)
        raise SystemExit(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return wall, proc.stdout + proc.stderr


def one(out: pathlib.Path, cache: pathlib.Path, extra, export: bool = True) -> dict:
    env = dict(os.environ, FLOWTOOLS_JAX_CACHE=str(cache), FLOWTOOLS_COMPILE_TIMES="1")
    env.pop("FLOWTOOLS_EXPORT_CACHE", None)
    if not export:
        env["FLOWTOOLS_EXPORT_CACHE"] = "off"
    wall, text = _run([sys.executable, "-m", "flowtools.cli", "run", "--out", str(out),
                       *extra], env)
    row = dict(wall=wall, trace_lower=0.0, load=0.0, xla=0.0, compile=0.0, run=0.0,
               sources=[])
    for name, source, tl, load, xla, _total in _COMPILE.findall(text):
        row["sources"].append(f"{name}:{source}")
        row["trace_lower"] += float(tl)
        row["load"] += float(load)
        row["xla"] += float(xla)
    m = _RUN.search(text)
    if m:
        row["compile"], row["run"] = float(m.group(1)), float(m.group(2))
    return row


def import_time(rounds: int) -> float:
    cmd = [sys.executable, "-c", "import flowtools, flowtools.cli.run"]
    return min(_run(cmd, dict(os.environ, FLOWTOOLS_JAX_CACHE="off"))[0]
               for _ in range(rounds))


def same(a: pathlib.Path, b: pathlib.Path) -> bool:
    x, y = np.load(a / "trajectory.npz"), np.load(b / "trajectory.npz")
    keys = [k for k in x.files if k != "meta"]  # meta holds the wall and compile times
    return all(np.array_equal(x[k], y[k], equal_nan=x[k].dtype.kind in "fc") for k in keys)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="write the rows to this file")
    ap.add_argument("extra", nargs="*", help="more arguments for `flowtools run` (after --)")
    a = ap.parse_args(argv)
    rows = {"cold": [], "warm": [], "cold_no_export": [], "warm_no_export": []}
    identical = True
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for r in range(a.rounds):
            cache, cache_off = tmp / f"cache{r}", tmp / f"cache{r}-off"  # empty
            outs = [tmp / f"out{r}-{i}" for i in range(4)]
            rows["cold"].append(one(outs[0], cache, a.extra))
            rows["warm"].append(one(outs[1], cache, a.extra))
            rows["cold_no_export"].append(one(outs[2], cache_off, a.extra, export=False))
            rows["warm_no_export"].append(one(outs[3], cache_off, a.extra, export=False))
            identical &= all(same(outs[0], o) for o in outs[1:])
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]['wall']:.2f} s"
                                                 for k, v in rows.items()), flush=True)
    imp = import_time(a.rounds)
    print(f"\nflowtools run {' '.join(a.extra)} — min over {a.rounds} rounds "
          f"(import flowtools alone: {imp:.2f} s)")
    head = ("", "wall", "trace+lower", "load", "xla compile", "run", "rest")
    print("{:<26}{:>8}{:>13}{:>8}{:>13}{:>8}{:>8}".format(*head))
    best = {}
    for kind, rs in rows.items():
        b = min(rs, key=lambda x: x["wall"])
        best[kind] = b
        rest = b["wall"] - imp - b["compile"] - b["run"]
        print(f"{kind:<26}{b['wall']:8.2f}{b['trace_lower']:13.2f}{b['load']:8.2f}"
              f"{b['xla']:13.2f}{b['run']:8.2f}{rest:8.2f}   {' '.join(b['sources'])}")
    ratio = best["warm"]["wall"] / best["cold"]["wall"]
    ratio_off = best["warm_no_export"]["wall"] / best["cold_no_export"]["wall"]
    print(f"\nwarm / cold = {ratio:.2f} (target ≤ {TARGET}: "
          f"{'met' if ratio <= TARGET else 'not met'}); JAX's cache alone (export cache off): "
          f"{ratio_off:.2f}")
    print(f"trajectories bitwise identical (all four processes): {identical}")
    print("(rest = wall − import − compile − run: interpreter start, set-up, plot, files)")
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(dict(rows=rows, import_s=imp,
                                                        ratio=ratio, ratio_no_export=ratio_off,
                                                        identical=identical), indent=2))
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())

"""The first and the second run of a command on a fresh machine, this tree against a base.

For the working tree and for a base revision (default: 2768d92, main before the second
performance round), each in fresh processes:

1. cold: ``flowtools COMMAND`` with empty cache folders (``FLOWTOOLS_JAX_CACHE``: JAX's
   compilation cache and flowtools' export cache) — the first run on a fresh machine;
2. warm: the same command again with the caches that (1) filled.

Prints, side by side, the wall time, the number of XLA compilations (every process,
worker processes included; a persistent-cache hit counts as a load, listed apart), their
seconds, and for ``verify`` the claims passed; then the ratios this tree / base, cold
and warm, against the targets of issue 22 (verify: cold ≤ 60 s, warm ≤ 30 s). The
base runs from a ``git worktree`` of the revision, put first on ``PYTHONPATH`` (its
``flowtools`` and ``theory`` are the ones imported: checked). ``--json`` writes every
figure and the programs compiled most often.

    python benchmarks/bench_first_run.py [--base REV] [--command "verify"]
        [--only-new] [--cold-only] [--json OUT.json] [-- extra args of the command]

    python benchmarks/bench_first_run.py --command "reproduce all --quick"

Timings are wall clock: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _compiles import collect, environment  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
TARGETS = {"verify": (60.0, 30.0)}
_PASSED = re.compile(r"(\d+) passed, (\d+) failed")


def run_once(tree: pathlib.Path, command: list, cache: pathlib.Path, work: pathlib.Path,
             tag: str) -> dict:
    logs = work / f"log-{tag}"
    logs.mkdir()
    env = dict(os.environ, FLOWTOOLS_JAX_CACHE=str(cache))
    env.pop("FLOWTOOLS_EXPORT_CACHE", None)
    env.update(environment(logs, os.pathsep.join(
        p for p in (str(tree), env.get("PYTHONPATH")) if p)))
    out = work / f"out-{tag}"
    check = subprocess.run([sys.executable, "-c", "import flowtools, theory; "
                            "print(flowtools.__file__); print(theory.__file__)"],
                           env=env, capture_output=True, text=True, cwd=work)
    files = check.stdout.split()
    if len(files) != 2 or not all(f.startswith(str(tree)) for f in files):
        raise SystemExit(f"{tag}: flowtools/theory are not imported from {tree}: "
                         f"{check.stdout} {check.stderr}")
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "flowtools.cli", *command, "--out", str(out)],
                          env=env, capture_output=True, text=True, cwd=work)
    wall = time.perf_counter() - t
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{tag}: {command} failed ({proc.returncode}):\n"
                         f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    row = {"wall_s": wall, "exit": proc.returncode, **collect(logs)}
    if m := _PASSED.search(proc.stdout):
        row["passed"], row["failed"] = int(m.group(1)), int(m.group(2))
    return row


def cold_warm(tree, command, work, name, warm=True) -> dict:
    cache = work / f"cache-{name}"
    cache.mkdir(mode=0o700)
    out = {"cold": run_once(tree, command, cache, work, f"{name}-cold")}
    if warm:
        out["warm"] = run_once(tree, command, cache, work, f"{name}-warm")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="2768d92", help="base revision (default 2768d92)")
    ap.add_argument("--command", default="verify", help='flowtools command (default "verify")')
    ap.add_argument("--only-new", action="store_true", help="skip the base")
    ap.add_argument("--cold-only", action="store_true", help="skip the warm runs")
    ap.add_argument("--json", default=None, help="write every figure here")
    ap.add_argument("extra", nargs="*", help="extra arguments of the command (after --)")
    args = ap.parse_args(argv)
    command = [*shlex.split(args.command), *args.extra]
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-first-run-") as tmp:
        work = pathlib.Path(tmp)
        trees = {"this tree": ROOT}
        if not args.only_new:
            base = work / "base"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base),
                            args.base], check=True, capture_output=True)
            trees = {f"base {args.base}": base, **trees}
        try:
            for i, (name, tree) in enumerate(trees.items()):
                print(f"{name}: flowtools {' '.join(command)} cold, then warm …", flush=True)
                results[name] = cold_warm(tree, command, work, f"t{i}",
                                          warm=not args.cold_only)
        finally:
            if not args.only_new:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(work / "base")], capture_output=True)
    print(f"\nflowtools {' '.join(command)}  (this machine, {os.cpu_count()} cores)")
    print(f"{'':24s} {'wall s':>8s} {'compiles':>9s} {'compile s':>10s} {'cache hits':>11s} "
          f"{'processes':>10s} {'claims':>8s}")
    for name, r in results.items():
        for kind, x in r.items():
            claims = f"{x['passed']}/{x['passed'] + x['failed']}" if "passed" in x else "–"
            print(f"{name + ' ' + kind:24s} {x['wall_s']:8.1f} {x['compiles']:9d} "
                  f"{x['compile_s']:10.1f} {x['cache_hits']:11d} {x['processes']:10d} "
                  f"{claims:>8s}")
    if len(results) == 2:
        (b, base), (_, new) = results.items()
        for kind in new:
            n, o = new[kind], base[kind]
            print(f"ratio this tree / {b}, {kind}: wall {n['wall_s'] / o['wall_s']:.2f}, "
                  f"compilations {n['compiles'] / max(o['compiles'], 1):.2f}")
    target = TARGETS.get(command[0]) if not args.extra and command == [command[0]] else None
    if target and not args.cold_only:
        new = results["this tree"]
        print(f"targets: cold ≤ {target[0]:.0f} s (now {new['cold']['wall_s']:.1f}), warm ≤ "
              f"{target[1]:.0f} s (now {new['warm']['wall_s']:.1f})")
    if args.json:
        for r in results.values():
            for x in r.values():
                x["by_name"] = dict(list(x["by_name"].items())[:25])
                x["seconds_by_name"] = dict(list(x["seconds_by_name"].items())[:25])
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

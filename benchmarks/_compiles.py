"""Count the XLA compilations of a command and of every Python process it starts.

``environment(log_dir)`` returns the environment variables that make each Python process
started with them (worker processes included) append one JSON line per compilation to
``log_dir/PID.jsonl``: a temporary folder put first on ``PYTHONPATH`` holds a
``sitecustomize.py`` (imported by every Python process at start-up) that calls
``install`` below. JAX's compile
log (``JAX_LOG_COMPILES=1``) is read through a logging handler on the "jax" logger, so
nothing is printed: each "Finished XLA compilation of NAME in S sec" is one compilation
(a persistent-cache hit included: JAX still loads it), each "Persistent compilation cache
hit" a hit. ``collect(log_dir)`` sums them over the processes.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import re
import tempfile

_XLA = re.compile(r"Finished XLA compilation of (.+) in ([\d.e+-]+) sec")
_HIT = re.compile(r"Persistent compilation cache hit")
_ENV = "FLOWTOOLS_BENCH_COMPILE_LOG"


class _Log(logging.Handler):
    def __init__(self, path: pathlib.Path):
        super().__init__(logging.DEBUG)
        self.path = path

    def emit(self, record):
        msg = record.getMessage()
        if m := _XLA.search(msg):
            row = {"name": m.group(1), "s": float(m.group(2))}
        elif _HIT.search(msg):
            row = {"hit": 1}
        else:
            return
        with open(self.path, "a") as f:  # one line per event: nothing lost at os._exit
            f.write(json.dumps(row) + "\n")


def install() -> None:
    """Attach the handler if this process was started by ``environment``."""
    folder = os.environ.get(_ENV)
    if not folder:
        return
    log = logging.getLogger("jax")
    log.addHandler(_Log(pathlib.Path(folder) / f"{os.getpid()}.jsonl"))
    log.setLevel(logging.DEBUG)
    log.propagate = False


def environment(log_dir: pathlib.Path, pythonpath: str = "") -> dict:
    """Environment variables that log every process's compilations into ``log_dir``
    (``PYTHONPATH``: the hook's folder, then ``pythonpath``)."""
    hook = pathlib.Path(tempfile.mkdtemp(prefix="bench-compiles-"))
    here = pathlib.Path(__file__).resolve().parent
    (hook / "sitecustomize.py").write_text(
        f"import sys\nsys.path.insert(0, {str(here)!r})\nimport _compiles\n"
        f"_compiles.install()\nsys.path.remove({str(here)!r})\n")
    path = os.pathsep.join(p for p in (str(hook), pythonpath) if p)
    return {_ENV: str(log_dir), "JAX_LOG_COMPILES": "1", "PYTHONPATH": path}


def collect(log_dir: pathlib.Path) -> dict:
    """{"compiles": n, "compile_s": total seconds, "cache_hits": n, "by_name": {name: n},
    "seconds_by_name": {name: s}, "processes": n} over every process that logged into
    ``log_dir``."""
    names: dict[str, int] = {}
    secs: dict[str, float] = {}
    total, hits, files = 0.0, 0, sorted(pathlib.Path(log_dir).glob("*.jsonl"))
    for f in files:
        for line in f.read_text().splitlines():
            row = json.loads(line)
            if "hit" in row:
                hits += 1
            else:
                names[row["name"]] = names.get(row["name"], 0) + 1
                secs[row["name"]] = secs.get(row["name"], 0.0) + row["s"]
                total += row["s"]
    return {"compiles": sum(names.values()), "compile_s": total, "cache_hits": hits,
            "by_name": dict(sorted(names.items(), key=lambda kv: -kv[1])),
            "seconds_by_name": dict(sorted(secs.items(), key=lambda kv: -kv[1])),
            "processes": len(files)}

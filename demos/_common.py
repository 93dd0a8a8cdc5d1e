"""Shared boilerplate of the demo scripts: the command line, the output folder, the timer and
the PNG + JSON outputs.

The scripts are run as ``python demos/<script>.py`` (then ``demos/`` is on ``sys.path``) and
are also loaded by file path from the tests; each script therefore puts its own folder on
``sys.path`` before ``from _common import ...``.

Example::

    ap = parser(__doc__)
    ap.add_argument("--scale", type=float, default=1e-8)
    args = ap.parse_args(argv)
    out, t_start = prepare(args)
    ...
    return finish(out, "fig9_example", fig, data, t_start)
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time


def parser(doc: str, *, quick_help: str | None = None) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` described by the first line of ``doc``, with ``--out``
    (default ``out/demos/``) and ``--quick``."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--out", default="out/demos/", help="output folder (default out/demos/)")
    ap.add_argument("--quick", action="store_true", help=quick_help)
    return ap


def prepare(args: argparse.Namespace) -> tuple[pathlib.Path, float]:
    """Create the output folder ``args.out``; return it and the start time
    (``time.perf_counter()``)."""
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return out, time.perf_counter()


def finish(out: pathlib.Path, name: str, fig, data: dict, t_start: float, *, dpi: int = 120,
           json_default=None) -> dict:
    """Save ``fig`` (if not None) to ``out/<name>.png`` and close it, add ``"wall_time_s"``
    (seconds since ``t_start``) to ``data``, write ``out/<name>.json`` and print the paths and
    the wall time. Returns ``data``."""
    out = pathlib.Path(out)
    png = out / f"{name}.png"
    if fig is not None:
        import matplotlib.pyplot as plt  # here, so that scripts choose the backend first

        fig.savefig(png, dpi=dpi)
        plt.close(fig)
    data["wall_time_s"] = time.perf_counter() - t_start
    js = out / f"{name}.json"
    with open(js, "w") as fh:
        json.dump(data, fh, indent=1, default=json_default)
    wrote = f"{png} and {js}" if fig is not None else str(js)
    print(f"wrote {wrote} in {data['wall_time_s']:.1f} s")
    return data

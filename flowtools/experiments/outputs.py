"""A demo's outputs: its command line, its output folder, the timer, and the PNG + JSON files.

Every figure script of ``demos/`` (and later ``flowtools reproduce``) has the same frame:
``--out`` (default ``out/demos/``) and ``--quick`` on the command line, the output folder
checked before any work, and at the end the figure and a strict JSON file (NaN/±inf →
null, with a ``"null_means"`` key) written atomically, with the wall time.

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
import csv
import pathlib
import sys
import time

from flowtools._io import atomic_open, check_output_dir, savefig, write_json
from flowtools.errors import FlowtoolsError

__all__ = ["NULL_MEANS", "finish", "parser", "prepare", "write_csv"]

NULL_MEANS = "a number that is not finite (NaN: undefined or not measured; or ±infinity)"


def parser(doc: str, *, quick_help: str | None = None) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` described by the first line of ``doc``, with ``--out``
    (default ``out/demos/``) and ``--quick``."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--out", default="out/demos/", help="output folder (default out/demos/)")
    ap.add_argument("--quick", action="store_true", help=quick_help)
    return ap


def prepare(args: argparse.Namespace) -> tuple[pathlib.Path, float]:
    """Create the output folder ``args.out`` and check that it is writable (before any work;
    else exit 2 with a one-line message); return it and the start time
    (``time.perf_counter()``)."""
    try:
        out = check_output_dir(args.out, what="--out")
    except FlowtoolsError as err:
        print(f"{pathlib.Path(sys.argv[0]).name}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    return out, time.perf_counter()


def finish(out: pathlib.Path, name: str, fig, data: dict, t_start: float, *, dpi: int = 120,
           json_default=None, null_means: str = NULL_MEANS) -> dict:
    """Save ``fig`` (if not None) to ``out/<name>.png`` and close it, add ``"wall_time_s"``
    (seconds since ``t_start``) to ``data``, write ``out/<name>.json`` and print the paths and
    the wall time. Returns ``data``.

    Both files are written atomically; the JSON is strict (``flowtools._io.write_json``:
    NaN/±inf → null, with a ``"null_means"`` key saying what null stands for)."""
    out = pathlib.Path(out)
    png = out / f"{name}.png"
    if fig is not None:
        import matplotlib.pyplot as plt  # here, so that scripts choose the backend first

        try:
            savefig(fig, png, dpi=dpi)
        finally:
            plt.close(fig)
    data["wall_time_s"] = time.perf_counter() - t_start
    js = out / f"{name}.json"
    write_json(js, data, indent=1, default=json_default, null_means=null_means)
    wrote = f"{png} and {js}" if fig is not None else str(js)
    print(f"wrote {wrote} in {data['wall_time_s']:.1f} s")
    return data


def write_csv(path, header, rows) -> pathlib.Path:
    """Write a table (``header`` and one list per row; None as an empty cell) to ``path``
    atomically: a reader sees the old file or the new one, never half of it."""
    path = pathlib.Path(path)
    with atomic_open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path

"""Adaptive refinement: where a stored variable crosses a level along one axis, per row of
a grid, by multisection rounds that are each stored.

``refine(grid, along, variable, level, store, rounds=R)`` treats every combination of the
other axes' values as a *row* and the axis ``along`` as the line to search. A row's cells
are read as the sign of ``variable − level`` (``variable ≥ level``: "above"); the
*bracket* is the pair of neighbouring values of ``along`` (in increasing order) between
which the row goes from above to below (``direction="falls"``, the default) or from below
to above (``"rises"``): the last such pair (``crossing="last"``, the default) or the first
(``"first"``). A row without one has no bracket (NaN) and is not refined. (A row that
falls and then ends above the level has a "last" bracket here; ``cnn_phase.edge_mu`` calls
such a row NaN.)

- Round 0 is the grid itself, stored at ``STORE/round0.zarr``.
- Round r ≥ 1: each row with a bracket (lo, hi) gets a subgrid: the grid's tables with
  every other axis fixed to the row's values and ``along`` = ``points`` values strictly
  inside (lo, hi), evenly spaced in log(along) (``spacing="geom"``, the default) or in
  along (``"linear"``), stored at ``STORE/round{r}/<row>.zarr`` (<row>: the row's
  coordinates, e.g. ``v0=0.01,width=10-1a2b3c4d``, with a short hash that keeps names
  distinct). The new bracket is the crossing (same ``crossing`` and ``direction``) among
  lo, the probes and hi, so each round shrinks it by the factor ``points + 1`` (in log or
  linear measure).

**It resumes.** The probes are computed only from stored results, so a rerun builds the
same subgrids and ``run_sweep``'s resume (``run_sweeps``) computes only the cells that
are missing: after ``kill -9``, after a task that raised, or with a larger ``rounds``
(further rounds are added). ``STORE/refine.json`` records what is refined (along,
variable, level, crossing, direction, spacing, points); a store made with other settings
is refused. Cells whose variable is NaN (failed to measure) are skipped when brackets are
found; a task that raised stops the call with an error (rerun to retry it).

**It runs where run_sweep runs.** ``executor`` and ``workers`` are ``run_sweep``'s: one
executor (one Dask ``LocalCluster`` for "dask") is started when a cell first has to be
computed and serves every round; the subgrids of one round are run together
(``run_sweeps``), so that all workers are busy across rows. An ``AbstractExecutor`` given
is used and left open.

    >>> import tempfile, pathlib
    >>> from flowtools.sweep import Grid
    >>> grid = Grid.from_text('''
    ... [problem]
    ... n = 4
    ... [init]
    ... scale = 0.1
    ... [integrator]
    ... dynamics = "gd"
    ... lr = {geomspace = [1e-3, 0.1, 3]}
    ... max_iter = 200
    ... ''')
    >>> store = pathlib.Path(tempfile.mkdtemp()) / "refine"
    >>> ds = refine(grid, "lr", "loss_final", 0.01, store, rounds=2)
    >>> round(float(ds.lo), 6), round(float(ds.hi), 6)  # loss_final falls through 0.01
    (0.046416, 0.059948)
    >>> round(float(np.log10(ds.hi / ds.lo)), 6), bool(ds.lo < ds.estimate < ds.hi)
    (0.111111, True)
    >>> sorted(p.name for p in store.iterdir())
    ['refine.json', 'round0.zarr', 'round1', 'round2']
"""

from __future__ import annotations

import hashlib
import json
import math
import pathlib
import re
from collections.abc import Callable

import numpy as np

from flowtools import _validate as V
from flowtools.errors import FlowtoolsError, GridError
from flowtools.sweep.executors import AbstractExecutor, resolve_executor
from flowtools.sweep.family import DEFAULT_FAMILY
from flowtools.sweep.grid import Grid, load_grid
from flowtools.sweep.run import run_sweeps
from flowtools.sweep.store import StoreDamaged, check_store, read_results

__all__ = ["SETTINGS_FILE", "refine", "row_name", "subgrid"]

#: the settings of a refinement, written in its store folder
SETTINGS_FILE = "refine.json"
#: stores locked and open at once in one round (file descriptors)
STORES_PER_CALL = 128
SPACINGS = ("geom", "linear")
CROSSINGS = ("last", "first")
DIRECTIONS = ("falls", "rises")


def refine(grid, along: str, variable: str | Callable, level: float, store, *,
           rounds: int, points: int = 2, spacing: str = "geom", crossing: str = "last",
           direction: str = "falls", executor="local", workers: int | None = None,
           progress: bool | None = False, log=None):
    """Locate, per row of ``grid``, where ``variable`` crosses ``level`` along the axis
    ``along``, by ``rounds`` rounds of multisection (see the module docstring).

    Args:
        grid: a ``Grid``, a TOML path or a dict of tables; ``along`` one of its axes, with
            at least 2 real values (> 0 for ``spacing="geom"``).
        variable: a stored per-cell variable of the grid's family (no extra dims), or a
            function of a store's ``xarray.Dataset`` returning the quantity compared with
            ``level`` over the store's dims (e.g. a label turned into 0/1).
        level: the level (a finite number); "above" is ``variable ≥ level``.
        store: the folder of the refinement's stores (created).
        rounds: refinement rounds after round 0 (≥ 0).
        points: probes per bracket and round (≥ 1): the bracket shrinks by points + 1.
        spacing: "geom" (probes evenly spaced in log(along); the estimate interpolates in
            log(along)) or "linear".
        crossing: "last" or "first" change along increasing ``along``.
        direction: "falls" (above → below, e.g. a test error falling through 0.25) or
            "rises" (below → above).
        executor, workers: as ``run_sweep`` (one executor for all rounds).
        progress: ``run_sweep``'s progress bar/lines (default off: ``log`` says per round).
        log: a function taking one line (e.g. ``print``); None: quiet.

    Returns:
        An ``xarray.Dataset`` over the row dims (the other axes): ``lo``, ``hi`` (the final
        bracket; NaN without a crossing), ``estimate`` (the crossing interpolated linearly
        between lo and hi, in log(along) for "geom"), ``rounds_done`` (rounds that shrank
        the row's bracket), and every evaluated point along the row: ``probe_along``,
        ``probe_value`` and ``probe_round`` (dim ``probe``, round 0's values first, padded
        with NaN / −1). Attributes: along, variable, level, crossing, direction, spacing,
        points, rounds, store.

    Raises:
        GridError: ``along`` not an axis, fewer than 2 values, values that cannot be
            refined (not real numbers, ≤ 0 with "geom").
        FlowtoolsError: a variable not stored, a bad argument, a store made with other
            settings, a task that raised (rerun: the rest is in the stores).
    """
    grid = load_grid(grid)
    s = _settings(grid, along, variable, level, rounds, points, spacing, crossing,
                  direction)
    rounds = s.pop("rounds")
    root = pathlib.Path(store)
    say = log or (lambda line: None)
    ex = _Lazy(executor, workers)  # checks the arguments, starts nothing
    _claim(root, s)
    try:
        others = [a for a in grid.axes if a.name != along]
        res = _run_round(ex, [(grid, root / "round0.zarr")], progress)
        vals = _values(root / "round0.zarr", variable, along, [a.name for a in others])
        order = np.argsort(np.asarray(grid.axis(along).values, float))
        xs = np.asarray(grid.axis(along).values, float)[order]
        rows = list(np.ndindex(*(len(a) for a in others)))
        # per row: the evaluated points (along, value, round) and the current bracket
        seen = {r: [(x, v, 0) for x, v in zip(xs, vals[r][order], strict=True)]
                for r in rows}
        bracket = {r: _bracket(xs, vals[r][order], s) for r in rows}
        done = dict.fromkeys(rows, 0)
        n_br = sum(b is not None for b in bracket.values())
        say(f"refine {s['variable']} through {s['level']:g} ({s['direction']}, "
            f"{s['crossing']}) along {along}: round 0, {len(rows)} row(s), {n_br} with a "
            f"crossing; {_counts(res)}")
        for r in range(1, rounds + 1):
            jobs, probes = [], {}
            for row in rows:
                if bracket[row] is None:
                    continue
                lo, hi = bracket[row][0], bracket[row][2]
                p = _probes(lo, hi, points, spacing)
                if p is None:  # no room left between lo and hi in floating point
                    continue
                values = {a.name: a.values[i] for a, i in zip(others, row, strict=True)}
                jobs.append((subgrid(grid, along, p, values),
                             root / f"round{r}" / f"{row_name(values)}.zarr"))
                probes[row] = (p, jobs[-1][1])
            if not jobs:
                say(f"round {r}: no bracket left to refine")
                break
            res = []
            for k in range(0, len(jobs), STORES_PER_CALL):
                res += _run_round(ex, jobs[k:k + STORES_PER_CALL], progress)
            for row, (p, path) in probes.items():
                v = _values(path, variable, along, [])
                lo, vlo, hi, vhi = bracket[row]
                seen[row] += [(x, y, r) for x, y in zip(p, v, strict=True)]
                bx = np.array([lo, *p, hi])
                by = np.array([vlo, *v, vhi])
                new = _bracket(bx, by, s)
                assert new is not None  # lo and hi are on either side
                bracket[row] = new
                done[row] += 1
            widths = [_width(b[0], b[2], spacing) for b in (bracket[w] for w in probes)]
            say(f"round {r}: {len(probes)} row(s) refined, {_counts(res)}; bracket width "
                f"{'log ' if spacing == 'geom' else ''}{max(widths):.3g} at most")
        return _dataset(grid, along, others, rows, bracket, done, seen, s, rounds, root)
    finally:
        ex.close()


# ---------------------------------------------------------------------- the pieces
def _settings(grid: Grid, along, variable, level, rounds, points, spacing, crossing,
              direction) -> dict:
    """The checked arguments (before anything runs); what ``refine.json`` records."""
    if along not in grid.dims:
        raise GridError(f"refine along {along!r}: not an axis of the grid (its axes: "
                        f"{', '.join(grid.dims) or 'none'}); make it a list or a "
                        "linspace/geomspace in the grid.")
    values = grid.axis(along).values
    if len(values) < 2:
        raise GridError(f"refine along {along!r}: the axis has {len(values)} value; a "
                        "bracket needs at least 2.")
    if not all(isinstance(v, float) for v in values):
        raise GridError(f"refine along {along!r}: its values {list(values)!r} are not all "
                        "real numbers (an integer or text parameter cannot be multisected).")
    spacing = V.choice(spacing, "spacing", SPACINGS)
    if spacing == "geom" and min(values) <= 0:
        raise GridError(f"refine along {along!r} with spacing 'geom' needs values > 0, got "
                        f"{min(values)!r}: use spacing 'linear'.")
    if isinstance(variable, str):
        stored = grid.model_family.variables(grid.outputs)
        if variable not in stored:
            raise FlowtoolsError(f"refine: {variable!r} is not stored by the family "
                                 f"{grid.family!r}: use one of {', '.join(stored)}.")
        if stored[variable].extra:
            raise FlowtoolsError(f"refine: {variable!r} has extra dims "
                                 f"{stored[variable].extra} per cell: give a scalar one.")
        name = variable
    elif callable(variable):
        name = getattr(variable, "__name__", type(variable).__name__)
    else:
        raise FlowtoolsError(f"refine: variable must be a stored variable's name or a "
                             f"function of the dataset, got {variable!r}.")
    return {"along": along, "variable": name, "level": V.real(level, "level"),
            "crossing": V.choice(crossing, "crossing", CROSSINGS),
            "direction": V.choice(direction, "direction", DIRECTIONS),
            "spacing": spacing, "points": V.positive_int(points, "points"),
            "rounds": V.nonnegative_int(rounds, "rounds")}


def _claim(root: pathlib.Path, settings: dict) -> None:
    """Write ``refine.json`` (atomically) or check that it says the same."""
    from flowtools._io import write_json

    path = root / SETTINGS_FILE
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise FlowtoolsError(f"cannot read {str(path)!r}: {err}; remove it if the "
                                 "folder holds no refinement.") from None
        diff = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
        if diff:
            raise FlowtoolsError(
                f"the store {str(root)!r} holds a refinement with other settings ("
                + ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in diff.items())
                + "): give another store.")
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FlowtoolsError(f"cannot create the store folder {str(root)!r}: "
                             f"{err.strerror}.") from None
    write_json(path, settings)


class _Lazy(AbstractExecutor):
    """The executor, started when a task first has to run (a rerun that finds every cell
    stored starts no cluster), closed by ``refine`` if it started it."""

    def __init__(self, executor, workers):
        self.given = executor if isinstance(executor, AbstractExecutor) else None
        self.start = resolve_executor(executor, workers)  # checks the arguments now
        self.ex = self.given

    def _get(self) -> AbstractExecutor:
        if self.ex is None:
            self.ex = self.start()
        return self.ex

    def run(self, fn, tasks):
        return self._get().run(fn, tasks)

    @property
    def n_workers(self) -> int:
        return self._get().n_workers

    def describe(self) -> str:
        return self._get().describe()

    def close(self) -> None:
        if self.ex is not None and self.ex is not self.given:
            self.ex.close()
        self.ex = self.given


def _run_round(ex, jobs, progress):
    res = run_sweeps(jobs, executor=ex, resume=True, progress=progress)
    bad = [r for r in res if not r.ok and (r.errors or r.missing)]
    if bad:
        first = bad[0].errors[0] if bad[0].errors else f"{bad[0].missing} cell(s) missing"
        raise FlowtoolsError(f"refine: {sum(len(r.errors) for r in bad)} task(s) raised in "
                             f"{len(bad)} store(s) ({first}); the rest is stored: run again "
                             "to retry them.")
    return res


def _counts(res) -> str:
    cells = sum(r.cells for r in res)
    return (f"{cells} cell(s): {sum(r.computed for r in res)} computed, "
            f"{sum(r.cached for r in res)} from the store")


def _values(path, variable, along: str, others: list[str]) -> np.ndarray:
    """The compared quantity in the store at ``path`` as a float array (*others, along);
    a stored variable alone is read (``read_results``; 129 small stores: 9.7 s against
    22.2 s with ``open_results``, 2026-12-07); a function gets every variable."""
    check = check_store(path)
    if not check.ok:
        raise StoreDamaged(check.message())
    ds = read_results(check, [variable] if isinstance(variable, str) else None)
    da = ds[variable] if isinstance(variable, str) else variable(ds)
    if not hasattr(da, "transpose"):
        raise FlowtoolsError("refine: the variable function must return an "
                             "xarray.DataArray over the store's dims.")
    return np.asarray(da.transpose(*others, along).values, dtype=float)


def _bracket(xs, ys, s: dict):
    """``(lo, value at lo, hi, value at hi)`` of the crossing among the points (xs
    increasing; NaN values skipped), or None."""
    ok = np.isfinite(ys)
    xs, ys = np.asarray(xs)[ok], np.asarray(ys)[ok]
    above = ys >= s["level"]
    start = above if s["direction"] == "falls" else ~above
    change = np.flatnonzero(start[:-1] & ~start[1:])
    if change.size == 0:
        return None
    i = int(change[-1] if s["crossing"] == "last" else change[0])
    return float(xs[i]), float(ys[i]), float(xs[i + 1]), float(ys[i + 1])


def _probes(lo: float, hi: float, points: int, spacing: str):
    """``points`` values strictly inside (lo, hi), evenly spaced; None if they would not
    be distinct floats."""
    fn = np.geomspace if spacing == "geom" else np.linspace
    p = [float(v) for v in fn(lo, hi, points + 2)[1:-1]]
    if not (lo < p[0] and p[-1] < hi and all(a < b for a, b in zip(p, p[1:]))):
        return None
    return p


def _width(lo: float, hi: float, spacing: str) -> float:
    return math.log(hi / lo) if spacing == "geom" else hi - lo


def _estimate(b, spacing: str, level: float) -> float:
    """The crossing interpolated linearly between (lo, value) and (hi, value)."""
    lo, vlo, hi, vhi = b
    f = (level - vlo) / (vhi - vlo)
    if spacing == "geom":
        return float(math.exp(math.log(lo) + f * (math.log(hi) - math.log(lo))))
    return float(lo + f * (hi - lo))


def _dataset(grid, along, others, rows, bracket, done, seen, s, rounds, root):
    import xarray as xr

    dims = [a.name for a in others]
    shape = tuple(len(a) for a in others)
    lo, hi, est = (np.full(shape, np.nan) for _ in range(3))
    n_done = np.zeros(shape, np.int64)
    n_probe = max(len(v) for v in seen.values())
    px, pv = np.full(shape + (n_probe,), np.nan), np.full(shape + (n_probe,), np.nan)
    pr = np.full(shape + (n_probe,), -1, np.int64)
    for row in rows:
        b = bracket[row]
        if b is not None:
            lo[row], hi[row] = b[0], b[2]
            est[row] = _estimate(b, s["spacing"], s["level"])
        n_done[row] = done[row]
        for j, (x, v, r) in enumerate(seen[row]):
            px[row + (j,)], pv[row + (j,)], pr[row + (j,)] = x, v, r
    attrs = {"description": f"where {s['variable']} {s['direction']} through "
                            f"{s['level']:g} along {along}"}
    data = {
        "lo": (dims, lo, {**attrs, "description": f"the bracket's lower {along} value"}),
        "hi": (dims, hi, {"description": f"the bracket's upper {along} value"}),
        "estimate": (dims, est, {"description": f"the crossing, interpolated linearly in "
                                                f"{'log ' if s['spacing'] == 'geom' else ''}"
                                                f"{along} between lo and hi"}),
        "rounds_done": (dims, n_done, {"description": "rounds that refined the bracket"}),
        "probe_along": (dims + ["probe"], px, {"description": f"the {along} values "
                                                              "evaluated (round 0 first)"}),
        "probe_value": (dims + ["probe"], pv, {"description": f"{s['variable']} there"}),
        "probe_round": (dims + ["probe"], pr, {"description": "the round of each point "
                                                              "(−1: padding)"}),
    }
    coords = {a.name: list(a.values) for a in others}
    return xr.Dataset(data, coords=coords,
                      attrs={**s, "rounds": rounds, "store": str(root)})


# ---------------------------------------------------------------------- subgrids
def _tables(grid: Grid) -> dict:
    """The grid's tables ({section: {parameter: value or list}}): ``Grid.from_dict`` of
    them has the same definition."""
    family = grid.model_family
    d = grid.definition()
    sweep = {"cells_per_task": grid.cells_per_task}
    if grid.family != DEFAULT_FAMILY:
        sweep["family"] = grid.family
    if grid.name:
        sweep["name"] = grid.name
    tables: dict = {"sweep": sweep, "outputs": dict(grid.outputs)}
    for k, v in d["fixed"].items():
        tables.setdefault(family.table[k].section, {})[k] = v
    for a in grid.axes:
        tables.setdefault(a.section, {})[a.name] = list(a.values)
    return tables


def subgrid(grid: Grid, along: str, values, fixed: dict) -> Grid:
    """``grid`` with the axes in ``fixed`` set to one value each and ``along`` = the list
    ``values``: one row's probes."""
    tables = _tables(grid)
    for a in grid.axes:
        if a.name in fixed:
            tables[a.section][a.name] = fixed[a.name]
    tables[grid.axis(along).section][along] = [float(v) for v in values]
    return Grid.from_dict(tables)


def row_name(values: dict) -> str:
    """A file name for a row: its coordinates (``name=value``, characters other than
    letters, digits and ``.+-=,`` replaced by ``_``, at most 80 of them) and 8 hex digits
    of a hash of their JSON, so that names stay distinct.

        >>> row_name({"v0": 0.01, "seed": 3})
        'v0=0.01,seed=3-1cd1c35f'
    """
    text = ",".join(f"{k}={v!r}" if not isinstance(v, str) else f"{k}={v}"
                    for k, v in values.items())
    digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]
    safe = re.sub(r"[^A-Za-z0-9.+\-=,]", "_", text)[:80] or "row"
    return f"{safe}-{digest}"

"""Run a sweep: plan the missing cells, compute them on an executor, store each task as it
finishes; and summarize a store.

    >>> import tempfile, pathlib
    >>> from flowtools.sweep import Grid, run_sweep, open_results
    >>> grid = Grid.from_text('''
    ... [problem]
    ... n = [4, 6]
    ... [init]
    ... scale = 1e-4
    ... seed = [0, 1, 2]
    ... [integrator]
    ... dynamics = "gd"
    ... lr = 0.05
    ... max_iter = 2000
    ... ''')
    >>> store = pathlib.Path(tempfile.mkdtemp()) / "demo.zarr"
    >>> res = run_sweep(grid, store)
    >>> res.computed, res.cached, res.ok
    (6, 0, True)
    >>> run_sweep(grid, store, resume=True).cached          # nothing left to compute
    6
    >>> ds = open_results(store)
    >>> ds.loss_final.dims, ds.loss_final.shape
    (('n', 'seed'), (2, 3))
"""

from __future__ import annotations

import collections
import contextlib
import pathlib
import time
from dataclasses import dataclass, field

import numpy as np

from flowtools import _validate as V
from flowtools.errors import FlowtoolsError
from flowtools.sweep.cells import Task, compute_task, plan
from flowtools.sweep.executors import CONNECT_TIMEOUT, AbstractExecutor, resolve_executor
from flowtools.sweep.family import DEFAULT_FAMILY, get_family
from flowtools.sweep.grid import Grid, load_grid
from flowtools.sweep.progress import LINE_INTERVAL, Progress
from flowtools.sweep.store import SweepStore, check_store, open_results, read_results, store_lock
from flowtools.sweep.two_layer import BRANCH_CODES

__all__ = ["SweepResult", "default_store", "run_sweep", "run_sweeps", "summarize"]


def default_store(grid: Grid) -> pathlib.Path:
    """``out/sweep/NAME.zarr`` (NAME: the grid's name, else "sweep")."""
    return pathlib.Path("out") / "sweep" / f"{grid.name or 'sweep'}.zarr"


@dataclass
class SweepResult:
    """What one ``run_sweep`` call did.

    Attributes:
        store: the store's path.
        cells: cells in the grid; ``cached``: already in the store; ``computed``: computed
            now; ``failed``: computed now with a status that is not ok.
        errors: one line per task that raised (its cells stay missing; ``--resume`` retries).
        wall_time: seconds for the call; ``executor``: what ran the tasks.
        workers: per worker ("host:pid"): tasks, cells, compilations and compile seconds.
    """

    store: pathlib.Path
    cells: int
    cached: int = 0
    computed: int = 0
    failed: int = 0
    errors: list = field(default_factory=list)
    wall_time: float = 0.0
    executor: str = ""
    workers: dict = field(default_factory=dict)

    @property
    def missing(self) -> int:
        return self.cells - self.cached - self.computed

    @property
    def ok(self) -> bool:
        """Every cell is in the store and no cell computed now failed."""
        return not self.errors and self.missing == 0 and self.failed == 0

    def dataset(self, masked: bool = True):
        """The store as an ``xarray.Dataset`` (``open_results``)."""
        return open_results(self.store, masked=masked)

    def summary(self) -> str:
        lines = [f"{self.computed} cell(s) computed, {self.cached} cached, {self.missing} "
                 f"missing of {self.cells}; {self.failed} computed cell(s) failed; "
                 f"{self.wall_time:.1f} s ({self.executor})"]
        for w, s in sorted(self.workers.items()):
            lines.append(f"  worker {w}: {s['tasks']} task(s), {s['cells']} cell(s), "
                         f"{s['compiles']} compilation(s) ({s['compile_s']:.1f} s)")
        for e in self.errors[:5]:
            lines.append(f"  error: {e}")
        if len(self.errors) > 5:
            lines.append(f"  … and {len(self.errors) - 5} more error(s)")
        return "\n".join(lines)


def run_sweep(grid, store=None, *, executor="local", workers: int | None = None,
              resume: bool = False, progress: bool | None = None, fsync: bool = False,
              log=None, connect_timeout: float = CONNECT_TIMEOUT,
              progress_interval: float = LINE_INTERVAL) -> SweepResult:
    """Compute every missing cell of ``grid`` and store it.

    Args:
        grid: a ``Grid``, a TOML file path or a dict of tables (validated first).
        store: the zarr folder (default ``default_store(grid)``); created if missing.
        executor: "local" (this process, default), "threads" (this process, ``workers``
            threads, default one per core), "dask" (a LocalCluster of ``workers``
            processes, default one per core), a Dask scheduler address, "auto" (dask if
            ``workers`` > 1) or an ``AbstractExecutor`` (used as it is and not closed:
            its owner closes it, so that one started executor — one Dask cluster — serves
            several calls).
        workers: LocalCluster size.
        resume: allow a store that already holds cells of this grid (only the missing ones
            are computed). Without it such a store is refused, so that results are never
            silently mixed with an earlier run's.
        progress: the progress bar (None: on a terminal; elsewhere a line every
            ``progress_interval`` seconds, ``flowtools.sweep.progress``).
        fsync: flush every file to disk before its cells are marked done (survives power
            loss; a killed process never needs it).
        log: a function taking one line (e.g. ``print``) for what happens; None: quiet.
        connect_timeout: seconds to wait for a Dask scheduler at an address to answer.
        progress_interval: seconds between progress lines (not on a terminal).

    Returns:
        A ``SweepResult``. Cells whose run failed (status not ok, e.g. MAX_STEPS) are
        stored with their status; a task that raised leaves its cells missing and is
        listed in ``errors``.

    Raises:
        FlowtoolsError: a bad grid or argument (before any work); ``StoreBusy`` when another
            sweep holds the store; ``StoreMismatch`` when it holds another grid.
    """
    return run_sweeps([(grid, store)], executor=executor, workers=workers, resume=resume,
                      progress=progress, fsync=fsync, log=log,
                      connect_timeout=connect_timeout,
                      progress_interval=progress_interval)[0]


def run_sweeps(jobs, *, executor="local", workers: int | None = None, resume: bool = False,
               progress: bool | None = None, fsync: bool = False, log=None,
               connect_timeout: float = CONNECT_TIMEOUT,
               progress_interval: float = LINE_INTERVAL) -> list[SweepResult]:
    """Several grids, each into its own store, as one sweep: ``jobs`` is a list of
    ``(grid, store)`` pairs (store None: ``default_store(grid)``; each store once). Every
    store is locked, checked and planned as by ``run_sweep`` (same arguments, same log
    lines per store), then the missing cells of all of them run through one executor,
    started once (or the ``AbstractExecutor`` given, which is not closed), so that its
    workers stay busy across stores; each task is written to its own store as it
    finishes. Returns one ``SweepResult`` per job, in order (``wall_time``: the whole
    call). ``flowtools.sweep.refine`` runs each round's subgrids so."""
    t_start = time.perf_counter()
    grids = [load_grid(g) for g, _ in jobs]
    jobs = [(g, pathlib.Path(s) if s is not None else default_store(g))
            for g, (_, s) in zip(grids, jobs, strict=True)]
    start_executor = resolve_executor(executor, workers, connect_timeout=connect_timeout)
    resume = V.flag(resume, "resume")
    seen = collections.Counter(str(s.absolute()) for _, s in jobs)
    twice = [s for s, k in seen.items() if k > 1]
    if twice:
        raise FlowtoolsError(f"the store {twice[0]!r} is given to {seen[twice[0]]} grids of "
                             "one call: give each grid its own store.")
    say = log or (lambda line: None)
    results: list[SweepResult] = []
    work = []  # (grid, open store, result, tasks) of each job with tasks
    with contextlib.ExitStack() as held:
        for grid, store in jobs:
            held.enter_context(store_lock(store, note=f"sweep {grid.name or ''} "
                                                      f"({grid.source or 'in memory'})"))
            st = SweepStore.open(store, grid.layout(), fsync=fsync)
            done = st.done()  # a damaged cell (check_store) is not done: computed again
            n_done = int(done.sum())
            if n_done and not resume:
                raise FlowtoolsError(
                    f"the store {str(store)!r} already holds {n_done} of the {grid.size} "
                    f"cells of this grid: pass --resume (resume=True) to compute the "
                    f"{grid.size - n_done} missing one(s), or give another store.")
            tasks = plan(grid, done)
            result = SweepResult(store=store, cells=grid.size, cached=n_done)
            results.append(result)
            todo = sum(_cells(t) for t in tasks)
            say(f"{grid.size} cells, {n_done} in the store, {todo} to compute in "
                f"{len(tasks)} task(s); store {store}")
            if not st.check.ok:
                say(f"damaged, computed or restored again: {st.check.describe()}")
            if tasks or not st.check.ok:
                for line in st.prepare():  # writable? restores metadata, clears damaged marks
                    say(line)
            if tasks:
                work.append((grid, st, result, tasks))
        if work:
            _compute(work, executor, start_executor, progress, progress_interval, say,
                     grids, results)
    t_end = time.perf_counter()
    for result in results:
        result.wall_time = t_end - t_start
    for _, _, result, _ in work:
        say(result.summary())
    return results


def _compute(work, executor, start_executor, progress, interval, say, grids, results):
    """Run the tasks of every ``(grid, store, result, tasks)`` of ``work`` on one executor
    (the one given, not closed here, or one started now and closed at the end) and write
    each to its store."""
    owner = {id(task): job for job in work for task in job[3]}
    total = sum(g.size for g in grids)
    desc = grids[0].name or "sweep"
    if len(grids) > 1:
        desc += f" and {len(grids) - 1} more grid(s)"
    mine = contextlib.nullcontext(executor) if isinstance(executor, AbstractExecutor) \
        else start_executor()
    with mine as ex, Progress(total, sum(r.cached for r in results), enabled=progress,
                              desc=desc, interval=interval) as bar:
        describe = ex.describe()
        say(f"executor: {describe}")
        stats = {id(job): collections.defaultdict(lambda: dict(tasks=0, cells=0, compiles=0,
                                                                compile_s=0.0))
                 for job in work}
        for _, _, result, _ in work:
            result.executor = describe
        for task, out in ex.run(compute_task, [t for job in work for t in job[3]]):
            job = owner[id(task)]
            grid, st, result, _ = job
            n = _cells(task)
            if isinstance(out, BaseException):
                msg = f"task {task.number} ({_where(grid, task)}): " \
                      f"{type(out).__name__}: {out}"
                if len(work) > 1:
                    msg += f" [store {result.store}]"
                result.errors.append(msg)
                bar.write(f"error: {msg}")
                bar.advance(n, failed=n)
                continue
            st.write(task.blocks, out)
            meta = out["_meta"]
            failed = meta["failed"] * len(task.blocks)
            result.computed += n
            result.failed += failed
            s = stats[id(job)][f"{meta['host']}:{meta['pid']}"]
            s["tasks"] += 1
            s["cells"] += task.n_cells
            s["compile_s"] += meta["compile_time"]
            s["compiles"] += meta["compile_time"] > 0
            bar.advance(n, failed=failed)
        for job in work:
            job[2].workers = dict(stats[id(job)])


def _cells(task: Task) -> int:
    return task.n_cells * len(task.blocks)


def _where(grid: Grid, task: Task) -> str:
    block = task.blocks[0]
    parts = []
    for a, s in zip(grid.axes, block, strict=True):
        if s.stop - s.start == 1:
            parts.append(f"{a.name} = {a.values[s.start]!r}")
        else:
            parts.append(f"{a.name}[{s.start}:{s.stop}]")
    return ", ".join(parts) or "the only cell"


# ---------------------------------------------------------------------- summaries
def summarize(store, *, cells: bool = False, check=None) -> str:
    """A few lines on the store at ``store``: cells done and missing, damaged cells and
    files (``check_store``; ``check``: its result if already known), statuses, branches
    (two-layer family), wall time (in all, per cell, the longest cell) and a breakdown
    along the first axis. A damaged cell counts as missing.
    ``cells=True`` adds one line per computed cell."""
    from flowtools.status import Status

    check = check if check is not None else check_store(store)
    family = get_family(check.attrs.get("family", DEFAULT_FAMILY))
    ds = read_results(check, [n for n in ("status", "wall_time", "branch", "loss_final",
                                          "steps", "t_final", *family.summary)
                              if n in check.variables])
    a = ds.attrs
    dims = list(a.get("dims", []))
    done = np.asarray(ds["done"].values, dtype=bool)
    status = np.asarray(ds["status"].values)
    wall = np.asarray(ds["wall_time"].values, dtype=float)
    shape = done.shape
    total = int(np.prod(shape)) if shape else 1
    lines = [f"store {store}: grid {a.get('grid_name') or '(unnamed)'}"
             + (f" ({a['grid_source']})" if a.get("grid_source") else "")
             + f", flowtools {a.get('flowtools_version')}, created {a.get('created')}"]
    if a.get("grid_description"):
        lines.append(f"  {a['grid_description']}")
    layout = " × ".join(f"{d}[{ds.sizes[d]}]" for d in dims) or "one cell"
    lines.append(f"cells: {total} = {layout}; done {int(done.sum())}, missing "
                 f"{total - int(done.sum())}"
                 + (f" (of which {check.damaged_cells} damaged)" if check.damaged else ""))
    if not check.ok:
        lines.append(f"damaged: {check.describe(limit=20)}. {check.remedy}.")
    if not check.checksums:
        lines.append("checksums: none (a store from an earlier flowtools): only chunks that "
                     "no longer decode are found damaged")

    def counts(mask):
        names = []
        for code, k in zip(*np.unique(status[mask], return_counts=True), strict=True):
            names.append(f"{Status(int(code)).name.lower()} {k}")
        return ", ".join(names) or "none"

    failed = int(sum(1 for s in status[done] if not Status(int(s)).ok))
    lines.append(f"status: {counts(done)}" + (f" (failed: {failed})" if failed else ""))
    inv = {v: k for k, v in BRANCH_CODES.items()}
    if "branch" in ds:
        branch = np.asarray(ds["branch"].values)
        br = [f"{inv.get(int(c), 'not classified')} {k}" for c, k in
              zip(*np.unique(branch[done], return_counts=True), strict=True)]
        lines.append(f"branch: {', '.join(br) or 'none'}")
    if done.any():
        w = wall[done]
        i = np.unravel_index(np.nanargmax(np.where(done, wall, -np.inf)), shape)
        lines.append(f"wall time: {np.nansum(w):.1f} s of integration in all, median "
                     f"{np.nanmedian(w):.3g} s per cell, longest {np.nanmax(w):.3g} s at "
                     f"{_coords(ds, dims, i)}")
    if dims and ds.sizes[dims[0]] > 1:
        lines.append(f"by {dims[0]}:")
        for j in range(ds.sizes[dims[0]]):
            m = np.zeros(shape, bool)
            m[j] = True
            m &= done
            v = ds[dims[0]].values[j]
            lines.append(f"  {dims[0]} = {_fmt(v)}: {int(m.sum())} of "
                         f"{total // ds.sizes[dims[0]]} done; {counts(m)}")
    if cells:
        loss = np.asarray(ds["loss_final"].values)
        steps = np.asarray(ds["steps"].values)
        tf = np.asarray(ds["t_final"].values)
        extra = {k: np.asarray(ds[k].values) for k in family.summary}
        for i in zip(*np.nonzero(done)) if shape else [()]:
            more = "".join(f"{inv.get(int(v[i]), '-')}, " if k == "branch" else
                           f"{k} {v[i]:.3g}, " for k, v in extra.items())
            lines.append(f"  {_coords(ds, dims, i)}: {Status(int(status[i])).name.lower()}, "
                         f"loss {loss[i]:.3g}, t {tf[i]:.4g}, steps {int(steps[i])}, "
                         f"{more}{wall[i]:.3g} s")
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    if isinstance(v, (np.integer,)):
        return str(int(v))
    if isinstance(v, (np.bool_,)):
        return str(bool(v))
    return str(v)


def _coords(ds, dims, index) -> str:
    return ", ".join(f"{d}={_fmt(ds[d].values[j])}" for d, j in zip(dims, index, strict=True))

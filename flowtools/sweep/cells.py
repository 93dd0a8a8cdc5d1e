"""What one cell computes, and how cells are grouped into tasks.

A cell is one point of the grid: a model of its family built from the cell's problem
parameters, an initial state (the family's ``init``), one integrator run (``solve_flow``
or ``run_gd``, on any ``AbstractModel``) and the per-cell results the family measures
from it (``flowtools.sweep.family``; the two-layer family's table is in
``flowtools.sweep.two_layer``, the ReLU CNN's in ``flowtools.sweep.relu_cnn``).

A *task* is one stored chunk: up to ``cells_per_task`` cells that differ only in their
initialization, so they share one problem and one compiled solver. By default the flow
runs each cell by its own ``solve_flow`` call (``integrator.lockstep = true``: the task's
cells as one lockstep batch, its bits then depending on the chunk, as GD's do): one
compilation per problem shape serves every cell and every task, whatever the chunk sizes,
and each cell's wall time is its own (measured on Example 1, 12 c̃ values: one batched
call 1.24 s, twelve calls 1.29 s, bit-identical end points; a batched call compiles anew
for each batch size). GD runs the task's cells as one batch (``run_gd`` vectorizes them in
lockstep, about 3× faster per trajectory), so a GD cell's bits depend on its task: the
chunk layout is part of the grid's definition, hence the same whichever executor runs it.
Cells of a task whose integrator settings differ (the family's ``settings``: the CNN's
η_v0 depends on v0) run as one batch per distinct setting, in task order.

The integrator runs what the family's ``integrand`` hook gives: the model, or an
``Integrand`` in other coordinates — the start points are reduced, the end points (and
saved states) lifted back before ``measure``, so the stored results are in the model's θ
(the ReLU CNN's ``coordinates = "span"``).

Tasks whose cells are identical — parameters that do not apply, such as ``lr`` for the
flow or ``data_seed`` with evenly spaced inputs — are computed once and stored in every
chunk they fill.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from flowtools.sweep.family import Integrand, Variable, get_family
from flowtools.sweep.grid import Grid, relevant

__all__ = ["Task", "VARIABLES", "compute_task", "plan", "variables"]


def variables(trajectory_points: int = 0, family: str = "two_layer") -> dict[str, Variable]:
    """The stored variables of a grid of ``family`` (the two-layer trajectory ones only if
    requested)."""
    return get_family(family).variables({"trajectory_points": trajectory_points})


VARIABLES = variables(2)


# ---------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class Task:
    """One computation: ``spec`` (plain data, sent to a worker) and the stored chunks it
    fills (``blocks``: tuples of slices, one per axis; several when cells repeat)."""

    number: int
    spec: dict
    blocks: tuple
    n_cells: int

    @property
    def compile_key(self) -> str:
        """Tasks with the same key run one compiled solver (problem shape + static
        settings); executors keep them on one worker where they can."""
        pb, it = self.spec["problem"], self.spec["integrator"]
        family = self.spec.get("family", "two_layer")
        static = {k: pb[k] if k in pb else it.get(k) for k in get_family(family).static}
        if family != "two_layer":
            static["family"] = family
        static.update({k: it.get(k) for k in ("dynamics", "solver", "max_steps")})
        if it["dynamics"] == "gd":
            static["batch"] = self.n_cells
        return json.dumps(static, sort_keys=True)


def plan(grid: Grid, done=None) -> list[Task]:
    """The tasks of ``grid`` (one per stored chunk, repeats merged). With ``done`` (a
    boolean array of the grid's shape), chunks whose cells are all done are left out."""
    family = grid.model_family
    sections = family.sections
    init_axes = sections["init"]
    init_dims = [i for i, a in enumerate(grid.axes) if a.section == "init"]
    merged: dict[str, list] = {}
    specs: dict[str, dict] = {}
    for block in grid.blocks():
        if done is not None and np.all(done[block]):
            continue
        first = grid.cell([s.start for s in block])
        shared = {k: v for k, v in first.items() if k not in init_axes}
        ranges = [range(block[i].start, block[i].stop) for i in init_dims]
        inits = []
        for combo in itertools.product(*ranges):
            cell = dict(first)
            for i, j in zip(init_dims, combo, strict=True):
                cell[grid.axes[i].name] = grid.axes[i].values[j]
            inits.append({k: cell[k] for k in init_axes if relevant(k, cell, family)})
        spec = {
            "problem": {k: shared[k] for k in sections["problem"]},
            "integrator": {k: shared[k] for k in sections["integrator"]
                           if relevant(k, shared, family)},
            "inits": inits,
            "outputs": dict(grid.outputs),
            "p_max": grid.p_max,
        }
        if family.name != "two_layer":
            spec["family"] = family.name
        sig = json.dumps({"problem": {k: v for k, v in spec["problem"].items()
                                      if relevant(k, shared, family)},
                          "rest": [spec["integrator"], inits]}, sort_keys=True)
        merged.setdefault(sig, []).append(block)
        specs.setdefault(sig, spec)
    return [Task(number=i, spec=specs[sig], blocks=tuple(blocks),
                 n_cells=len(specs[sig]["inits"]))
            for i, (sig, blocks) in enumerate(merged.items())]


# ---------------------------------------------------------------------- computing
def _gd_record_at(max_iter: int, points: int) -> np.ndarray:
    """``points`` recorded iterations: 0, then log-spaced ones ending at max_iter (run_gd
    stops at the last recorded iteration), padded with max_iter to a fixed length.

        >>> _gd_record_at(1000, 2).tolist(), _gd_record_at(1000, 5).tolist()
        ([0, 1000], [0, 1, 10, 100, 1000])
    """
    logs = np.geomspace(1, max_iter, points - 1) if points > 2 else np.array([max_iter])
    ks = np.concatenate([[0], np.unique(np.round(logs).astype(np.int64))])[:points]
    ks[-1] = max_iter
    return np.concatenate([ks, np.full(points - len(ks), max_iter)]).astype(np.int64)


_RUN_FIELDS = ("theta_final", "loss_final", "t_final", "status", "steps", "grad_evals")


def _flow(model, theta0: np.ndarray, it: Mapping, levels, n_save: int, save_ts=None):
    """The flow of a batch of cells (``theta0`` (B, p), one lockstep ``solve_flow`` call;
    B = 1 for a cell alone), stopped where ℓ first reaches each of ``levels`` and the
    members that did continued from there (``solve_flow``'s ``t0``) to the cells' own
    stop: the batched trajectory (saves joined by ``flowtools.certify.splice``) and, per
    member and level, (t, ℓ, accepted steps, θ) there — NaN (steps −1) for a level a
    member did not reach."""
    from flowtools.certify import splice
    from flowtools.flow import solve_flow
    from flowtools.status import Status

    def run(theta, t0, threshold):
        return solve_flow(model, theta, t0=t0, t1=it["t1"], loss_threshold=threshold,
                          gtol=it["gtol"], solver=it["solver"], rtol=it["rtol"],
                          atol_rel=it["atol_rel"], max_steps=it["max_steps"], n_save=n_save,
                          save_ts=save_ts, batch_size=it.get("batch_size"))

    (B, p), K = theta0.shape, len(levels)
    st = {"stage_t": np.full((B, K), np.nan), "stage_loss": np.full((B, K), np.nan),
          "stage_steps": np.full((B, K), -1, dtype=np.int64),
          "stage_theta": np.full((B, K, p), np.nan)}
    tr = run(theta0, 0.0, levels[0] if K else it["loss_threshold"])
    for k in range(K):
        rows = np.flatnonzero(tr.status == Status.CONVERGED)  # the others ended before
        if not rows.size:
            break
        st["stage_t"][rows, k], st["stage_loss"][rows, k] = tr.t_final[rows], tr.loss_final[rows]
        st["stage_steps"][rows, k], st["stage_theta"][rows, k] = (tr.steps[rows],
                                                                  tr.theta_final[rows])
        nxt = levels[k + 1] if k + 1 < K else it["loss_threshold"]
        tr = splice(tr, rows, run(tr.theta_final[rows], tr.t_final[rows], nxt))
    return tr, st


def _integrate(model, theta0: np.ndarray, settings: list, K: int,
               levels=(), save_ts=None) -> tuple[dict, float]:
    """Run every cell (its ``settings``: one integrator dict per cell); per-cell columns
    of the end points, counters, wall times (and K saved points — at the times ``save_ts``
    if given, GD at iterations t/lr —, and with ``levels`` the flow's stages), and compile
    seconds. The flow runs each cell alone, or with ``lockstep`` one batch per distinct
    setting, as GD always does (GD's stage columns stay NaN: the stages are the flow's)."""
    from flowtools.descent import run_gd

    B = len(theta0)
    cols: dict = {}
    compile_time = 0.0

    def put(name, idx, values):
        values = np.asarray(values)
        if name not in cols:
            cols[name] = np.zeros((B,) + values.shape[1:], dtype=values.dtype)
        cols[name][idx] = values

    groups: dict[str, list[int]] = {}
    for i, it in enumerate(settings):
        groups.setdefault(json.dumps(it, sort_keys=True), []).append(i)
    for idx in groups.values():
        it = settings[idx[0]]
        if it["dynamics"] == "flow":
            # each cell alone (bits independent of the task), or the task's cells as one
            # lockstep batch (``lockstep``: its bits depend on the chunk, as GD's do)
            for rows in [idx] if it.get("lockstep") else [[i] for i in idx]:
                tr, st = _flow(model, theta0[rows], it, levels, max(K, 2), save_ts)
                compile_time += tr.compile_time
                for name in _RUN_FIELDS:
                    put(name, rows, getattr(tr, name))
                put("wall_time", rows, np.full(len(rows), tr.wall_time / len(rows)))
                for name, v in (st.items() if levels else ()):
                    put(name, rows, v)
                if K:
                    for name in ("ts", "losses", "thetas"):
                        put(name, rows, getattr(tr, name))
        else:
            tr = run_gd(model, theta0[idx], it["lr"], max_iter=it["max_iter"],
                        loss_threshold=it["loss_threshold"],
                        record_at=(_gd_record_at(it["max_iter"], max(K, 2)) if save_ts is None
                                   else np.round(np.asarray(save_ts) / it["lr"])))
            compile_time += tr.compile_time
            for name in _RUN_FIELDS:
                put(name, idx, getattr(tr, name))
            put("wall_time", idx, np.full(len(idx), tr.wall_time / len(idx)))
            if levels:
                p = theta0.shape[1]
                for name, v in (("stage_t", np.nan), ("stage_loss", np.nan),
                                ("stage_steps", -1)):
                    put(name, idx, np.full((len(idx), len(levels)), v))
                put("stage_theta", idx, np.full((len(idx), len(levels), p), np.nan))
            if K:
                for name in ("ts", "losses", "thetas"):
                    put(name, idx, getattr(tr, name))
    cols["settings"] = settings
    return cols, compile_time


def compute_task(spec: Mapping) -> dict:
    """Compute the cells of one task; return arrays with a leading cell axis (in the
    order of ``spec["inits"]``) and ``"_meta"`` (compile seconds, worker pid and host).

    Runs anywhere flowtools is importable (a Dask worker imports it, and with it the
    float64 and compilation-cache set-up of ``flowtools._config``).

        >>> from flowtools.sweep.grid import Grid
        >>> g = Grid.from_text('[init]\\nscale = 1e-4\\nseed = [0, 1]\\n[integrator]\\n'
        ...                    'dynamics = "gd"\\nlr = 0.05\\nmax_iter = 100\\n')
        >>> out = compute_task(plan(g)[0].spec)
        >>> out["theta_final"].shape, out["status"].tolist()
        ((2, 6), [1, 1])
    """
    from flowtools.status import Status

    t_start = time.perf_counter()
    family = get_family(spec.get("family", "two_layer"))
    model = family.build(spec["problem"])
    it, inits = spec["integrator"], spec["inits"]
    theta0 = np.stack([family.init(model, ini, spec["problem"]) for ini in inits])
    target = Integrand.of(family.integrand(model, {**spec["problem"], **it}))
    runs, compile_time = _integrate(target.model, target.start(theta0),
                                    [family.settings(it, ini) for ini in inits],
                                    spec["outputs"].get("trajectory_points", 0),
                                    spec["outputs"].get("stages") or (),
                                    spec["outputs"].get("save_times"))
    out = family.measure(model, theta0, target.lift_runs(runs, theta0), spec)
    assert out["status"].shape == (len(inits),)
    out["_meta"] = {"compile_time": compile_time, "pid": os.getpid(),
                    "host": socket.gethostname(), "seconds": time.perf_counter() - t_start,
                    "failed": int(sum(not Status(int(s)).ok for s in out["status"]))}
    return out

"""What one cell computes, and how cells are grouped into tasks.

A cell is one point of the grid: a problem (``make_problem``), an initial state
(``init_gaussian``, or ``init_ratio`` for a prescribed c = C1/C2 or c̃), one integrator run
(``solve_flow`` or ``run_gd``) and the quantities derived from its end point:

=============  ======================================================================
theta0         the initial state θ0 (padded with NaN to the grid's largest p)
theta_final    the end point θ_final (same padding)
loss_final     ℓ(θ_final)
t_final        the flow time at the end (GD: iterations × lr)
status         ``flowtools.Status`` code (−1: not computed)
steps          accepted solver steps (flow) or iterations (GD)
grad_evals     gradient evaluations (the flow's is an estimate, see ``solve_flow``)
branch         ``classify``: 0 Q1, 1 Q2, 2 other, −1 not classified (non-finite end)
dist_Q1/Q2     distances of θ_final to Q1 and Q2 (up to the network's symmetries)
gen_error      ``generalization_error`` of θ_final on the grid's test inputs
wall_time      seconds of integration for this cell (compilation excluded; GD: the
               cell's share of its task's one batched run)
ts, losses,    with ``trajectory_points = K``: K saved times (log-spaced, as the
thetas         integrators save them), losses and states
=============  ======================================================================

A *task* is one stored chunk: up to ``cells_per_task`` cells that differ only in their
initialization, so they share one problem and one compiled solver. The flow runs each cell
by its own ``solve_flow`` call on a (p,) state: one compilation per problem shape serves
every cell and every task, whatever the chunk sizes, and each cell's wall time is its
own (measured on Example 1, 12 c̃ values: one batched call 1.24 s, twelve calls 1.29 s,
bit-identical end points; a batched call compiles anew for each batch size). GD runs the
task's cells as one batch (``run_gd`` vectorizes them in lockstep, about 3× faster per
trajectory), so a GD cell's bits depend on its task: the chunk layout is part of the
grid's definition, hence the same whichever executor runs it.

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

from flowtools.sweep.grid import INIT_AXES, SECTIONS, Grid, problem_from, relevant

__all__ = ["BRANCH_CODES", "Task", "VARIABLES", "compute_task", "plan", "variables"]

BRANCH_CODES = {"Q1": 0, "Q2": 1, "other": 2}
NOT_CLASSIFIED = -1


@dataclass(frozen=True)
class Variable:
    """A stored per-cell quantity: extra dims after the grid's axes, dtype, the value of
    cells not computed yet, and its attributes."""

    name: str
    extra: tuple
    dtype: str
    fill: object
    attrs: dict


def _status_attrs():
    from flowtools.trajectory import Status

    return {"description": "flowtools.Status code of the integrator run",
            "flag_values": [-1] + [int(s) for s in Status],
            "flag_meanings": " ".join(["not_computed"] + [s.name.lower() for s in Status])}


def variables(trajectory_points: int = 0) -> dict[str, Variable]:
    """The stored variables of a grid (the trajectory ones only if requested)."""
    V = Variable
    out = [
        V("theta0", ("param",), "float64", np.nan,
          {"description": "initial state θ0, layout (a_1, w_1, …, a_m, w_m), w_k with the "
                          "bias last; NaN beyond the cell's parameter count"}),
        V("theta_final", ("param",), "float64", np.nan,
          {"description": "end point of the run (same layout as theta0)"}),
        V("loss_final", (), "float64", np.nan, {"description": "ℓ(θ_final) = ½Σ(f − y)²"}),
        V("t_final", (), "float64", np.nan,
          {"description": "flow time at the end (GD: iterations × lr)"}),
        V("status", (), "int8", -1, _status_attrs()),
        V("steps", (), "int64", -1,
          {"description": "accepted solver steps (flow) or iterations (GD); −1 not computed"}),
        V("grad_evals", (), "int64", -1, {"description": "gradient evaluations (flow: "
                                                         "steps × stages estimate)"}),
        V("branch", (), "int8", NOT_CLASSIFIED,
          {"description": "flowtools.branches.classify of θ_final (label of the end point, "
                          "not of t → ∞ unless the loss reached its floor)",
           "flag_values": [NOT_CLASSIFIED, *BRANCH_CODES.values()],
           "flag_meanings": "not_classified " + " ".join(BRANCH_CODES)}),
        V("dist_Q1", (), "float64", np.nan, {"description": "distance of θ_final to Q1"}),
        V("dist_Q2", (), "float64", np.nan, {"description": "distance of θ_final to Q2"}),
        V("gen_error", (), "float64", np.nan,
          {"description": "generalization error ‖f_θ − f*‖ (RMS on the test inputs)"}),
        V("wall_time", (), "float64", np.nan,
          {"description": "seconds of integration for this cell, compilation excluded "
                          "(GD: share of its task's batched run)", "units": "s"}),
    ]
    if trajectory_points:
        out += [
            V("ts", ("save",), "float64", np.nan,
              {"description": "saved times (NaN after the end of the run)"}),
            V("losses", ("save",), "float64", np.nan, {"description": "ℓ at the saved times"}),
            V("thetas", ("save", "param"), "float64", np.nan,
              {"description": "states at the saved times"}),
        ]
    return {v.name: v for v in out}


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
        static = {k: pb[k] for k in ("n", "activation", "width", "dim", "bias")}
        static.update({k: it.get(k) for k in ("dynamics", "solver", "max_steps")})
        if it["dynamics"] == "gd":
            static["batch"] = self.n_cells
        return json.dumps(static, sort_keys=True)


def plan(grid: Grid, done=None) -> list[Task]:
    """The tasks of ``grid`` (one per stored chunk, repeats merged). With ``done`` (a
    boolean array of the grid's shape), chunks whose cells are all done are left out."""
    init_dims = [i for i, a in enumerate(grid.axes) if a.section == "init"]
    merged: dict[str, list] = {}
    specs: dict[str, dict] = {}
    for block in grid.blocks():
        if done is not None and np.all(done[block]):
            continue
        first = grid.cell([s.start for s in block])
        shared = {k: v for k, v in first.items() if k not in INIT_AXES}
        ranges = [range(block[i].start, block[i].stop) for i in init_dims]
        inits = []
        for combo in itertools.product(*ranges):
            cell = dict(first)
            for i, j in zip(init_dims, combo, strict=True):
                cell[grid.axes[i].name] = grid.axes[i].values[j]
            inits.append({k: cell[k] for k in INIT_AXES if relevant(k, cell)})
        spec = {
            "problem": {k: shared[k] for k in SECTIONS["problem"]},
            "integrator": {k: shared[k] for k in SECTIONS["integrator"]
                           if relevant(k, shared)},
            "inits": inits,
            "outputs": dict(grid.outputs),
            "p_max": grid.p_max,
        }
        sig = json.dumps({"problem": {k: v for k, v in spec["problem"].items()
                                      if relevant(k, shared)},
                          "rest": [spec["integrator"], inits]}, sort_keys=True)
        merged.setdefault(sig, []).append(block)
        specs.setdefault(sig, spec)
    return [Task(number=i, spec=specs[sig], blocks=tuple(blocks),
                 n_cells=len(specs[sig]["inits"]))
            for i, (sig, blocks) in enumerate(merged.items())]


# ---------------------------------------------------------------------- computing
def initial_state(problem, init: Mapping) -> np.ndarray:
    """θ0 of one cell: ``init_ratio`` if c̃ (c = c̃) or c is prescribed, else Gaussian."""
    c = init.get("c_tilde", init.get("ratio"))
    if c is not None:
        return problem.init_ratio(c, init["scale"], seed=init["seed"])
    return problem.init_gaussian(init["scale"], seed=init["seed"])


def _test_inputs(problem, outputs):
    from flowtools.branches import test_inputs

    if outputs["test_inputs"] == "gaussian":
        rng = np.random.default_rng(outputs["test_seed"])
        return rng.standard_normal((outputs["n_test"], problem.dim))
    return test_inputs(problem, outputs["n_test"], seed=outputs["test_seed"])


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
    from flowtools.branches import classify, generalization_error
    from flowtools.descent import run_gd
    from flowtools.flow import solve_flow
    from flowtools.trajectory import Status

    t_start = time.perf_counter()
    pb = problem_from(spec["problem"])
    it, outputs, p_max = spec["integrator"], spec["outputs"], spec["p_max"]
    K = outputs["trajectory_points"]
    inits = spec["inits"]
    B, p = len(inits), pb.n_params
    theta0 = np.stack([initial_state(pb, ini) for ini in inits])
    compile_time = 0.0
    if it["dynamics"] == "flow":
        runs = []
        for th in theta0:
            tr = solve_flow(pb, th, t1=it["t1"], loss_threshold=it["loss_threshold"],
                            gtol=it["gtol"], solver=it["solver"], rtol=it["rtol"],
                            atol_rel=it["atol_rel"], max_steps=it["max_steps"],
                            n_save=max(K, 2))
            compile_time += tr.compile_time
            runs.append(tr)
        cols = {name: np.array([getattr(r, name) for r in runs]) for name in
                ("theta_final", "loss_final", "t_final", "status", "steps", "grad_evals")}
        cols["wall_time"] = np.array([r.wall_time for r in runs])
        if K:
            cols["ts"] = np.stack([r.ts for r in runs])
            cols["losses"] = np.stack([r.losses for r in runs])
            cols["thetas"] = np.stack([r.thetas for r in runs])
    else:
        tr = run_gd(pb, theta0, it["lr"], max_iter=it["max_iter"],
                    loss_threshold=it["loss_threshold"],
                    record_at=_gd_record_at(it["max_iter"], max(K, 2)))
        compile_time += tr.compile_time
        cols = {name: np.asarray(getattr(tr, name)) for name in
                ("theta_final", "loss_final", "t_final", "status", "steps", "grad_evals")}
        cols["wall_time"] = np.full(B, tr.wall_time / B)
        if K:
            cols["ts"], cols["losses"], cols["thetas"] = tr.ts, tr.losses, tr.thetas
    X_test = _test_inputs(pb, outputs)
    branch = np.full(B, NOT_CLASSIFIED, dtype=np.int8)
    d1, d2, gen = np.full(B, np.nan), np.full(B, np.nan), np.full(B, np.nan)
    for i, th in enumerate(cols["theta_final"]):  # one cell at a time: bits independent of B
        if np.all(np.isfinite(th)):
            r = classify(pb, th, tol=outputs["branch_tol"])
            branch[i] = BRANCH_CODES[str(r.branch)]
            d1[i], d2[i] = float(r.dist_Q1), float(r.dist_Q2)
        gen[i] = float(generalization_error(pb, th, X_test=X_test))
    out = {
        "theta0": _pad(theta0, p_max),
        "theta_final": _pad(cols["theta_final"], p_max),
        "loss_final": cols["loss_final"].astype(np.float64),
        "t_final": cols["t_final"].astype(np.float64),
        "status": cols["status"].astype(np.int8),
        "steps": cols["steps"].astype(np.int64),
        "grad_evals": cols["grad_evals"].astype(np.int64),
        "branch": branch, "dist_Q1": d1, "dist_Q2": d2, "gen_error": gen,
        "wall_time": cols["wall_time"].astype(np.float64),
    }
    if K:
        out["ts"] = cols["ts"].astype(np.float64)
        out["losses"] = cols["losses"].astype(np.float64)
        out["thetas"] = _pad(cols["thetas"], p_max)
    assert out["status"].shape == (B,) and p <= p_max
    out["_meta"] = {"compile_time": compile_time, "pid": os.getpid(),
                    "host": socket.gethostname(), "seconds": time.perf_counter() - t_start,
                    "failed": int(sum(not Status(int(s)).ok for s in out["status"]))}
    return out


def _pad(a: np.ndarray, p_max: int) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.shape[-1] == p_max:
        return a
    pad = np.full(a.shape[:-1] + (p_max - a.shape[-1],), np.nan)
    return np.concatenate([a, pad], axis=-1)

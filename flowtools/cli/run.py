"""Integrate the gradient flow (or run gradient descent) for a problem and save the result.

Writes OUT/trajectory.npz (``flowtools.Trajectory.load`` reads it back), OUT/summary.json
(strict JSON; null stands for a non-finite number) and OUT/trajectory.png (loss and
parameters against time, log time axis). OUT is checked (created, writable) before the
computation. The three files are written as one set: they are computed into a hidden
folder inside OUT and renamed into place at the end, summary.json last (an existing
summary.json is removed first). So while summary.json exists, the other two files beside it
come from the same run; a run killed while renaming leaves no summary.json.

Examples:
  flowtools run                                   # Example 1, scale 1e-8, seed 0, flow
  flowtools run --seed 0 1 2 3 --ratio 0.5        # a batch with c = C1/C2 = 0.5
  flowtools run --method gd --lr 0.05 --max-iter 1000000
  flowtools run --activation 'x/(1+x**2)' --width 5 --scale 1e-6
"""

from __future__ import annotations

import numpy as np

from flowtools.cli._common import (
    add_init_arguments,
    add_problem_arguments,
    nonnegative_float,
    open_interval,
    positive_float,
    positive_int,
    problem_from_args,
    theta0_from_args,
)

NAME = "run"
HELP = "integrate the flow (or run GD) for a problem; save the trajectory and a plot"


def add_arguments(p):
    add_problem_arguments(p)
    add_init_arguments(p)
    g = p.add_argument_group("dynamics")
    g.add_argument("--method", choices=["flow", "gd"], default="flow",
                   help="gradient flow (default) or gradient descent")
    g.add_argument("--backend", choices=["diffrax", "scipy"], default="diffrax")
    g.add_argument("--solver", default="auto",
                   help="diffrax: auto, kvaerno3/4/5, tsit5, dopri5, dopri8; scipy: Radau, "
                   "BDF, LSODA (default auto: kvaerno5 up to 256 parameters, dopri8 above; "
                   "Radau for scipy)")
    g.add_argument("--t1", type=positive_float("the horizon t1"), default=None,
                   help="flow horizon, finite and > 0 (default: none — until the loss "
                   "threshold, a stationary end or the step budget)")
    g.add_argument("--rtol", type=open_interval("the relative tolerance rtol", 0, 1),
                   default=1e-10, help="relative tolerance in (0, 1) (1e-10)")
    g.add_argument("--lr", type=positive_float("the learning rate lr"), default=0.05,
                   help="GD learning rate > 0 (default 0.05)")
    g.add_argument("--max-iter", type=positive_int("the iteration limit"), default=10**6,
                   help="GD iterations, ≥ 1 (1e6)")
    g.add_argument("--loss-threshold",
                   type=nonnegative_float("the loss threshold", " (0 disables the stop)"),
                   default=1e-15, help="stop at loss ≤ this, ≥ 0 (default 1e-15, the paper's "
                   "rule; 0 disables the stop)")
    p.add_argument("--out", default="out/run", help="output folder (default out/run)")


#: saved points per trajectory (log-spaced in time, or in iterations for GD)
SAVES = 200
FILES = ("trajectory.npz", "trajectory.png", "summary.json")  # summary.json last: the marker
NULL_MEANS = ("a number that is not finite (NaN or ±infinity), e.g. the loss of a run that "
              "diverged (status nonfinite) or c when C2 = 0")


def run(args) -> int:
    from flowtools._io import check_output_dir, staged_outputs, write_json
    from flowtools.descent import run_gd
    from flowtools.flow import solve_flow
    from flowtools.status import Status

    out = check_output_dir(args.out, what="--out")  # before any work
    problem = problem_from_args(args)  # make_problem sizes its data and evaluation first
    _check_memory(problem, len(args.seed), args.method)
    theta0 = theta0_from_args(problem, args)
    print(f"problem: {problem.activation.expr}, m = {problem.width}, d = {problem.dim}, "
          f"bias = {problem.bias}, n = {problem.n} ({args.sampling}); "
          f"{np.atleast_2d(theta0).shape[0]} initial state(s) of scale {args.scale:g}")
    if args.method == "flow":
        to = "" if args.t1 is None else f"t = {args.t1:g} or "
        print(f"integrating the gradient flow ({args.backend}:{args.solver}) to "
              f"{to}loss ≤ {args.loss_threshold:g} ...", flush=True)
        traj = solve_flow(problem, theta0, t1=args.t1, loss_threshold=args.loss_threshold,
                          backend=args.backend, solver=args.solver, rtol=args.rtol,
                          n_save=SAVES)
    else:
        print(f"gradient descent, lr = {args.lr:g}, ≤ {args.max_iter} iterations ...",
              flush=True)
        traj = run_gd(problem, theta0, args.lr, max_iter=args.max_iter,
                      loss_threshold=args.loss_threshold, n_save=SAVES)
    members = list(traj) if traj.batched else [traj]
    rows = []
    for i, tr in enumerate(members):
        st = Status(int(tr.status))
        row = dict(member=i, status=tr.messages, status_name=st.name.lower(), ok=st.ok,
                   t_final=float(tr.t_final), loss_final=float(tr.loss_final),
                   steps=int(tr.steps), theta_final=np.asarray(tr.theta_final).tolist())
        if not problem.assumption_failures() and problem.width == 2:
            row["c"] = float(problem.ratio(np.atleast_2d(theta0)[i]))
        rows.append(row)
    summary = dict(method=traj.method, wall_time_s=traj.wall_time,
                   compile_time_s=traj.compile_time, files=list(FILES), members=rows)
    with staged_outputs(out, FILES) as stage:
        traj.save(stage / "trajectory.npz")
        _plot(problem, members, stage / "trajectory.png", traj.method)
        write_json(stage / "summary.json", summary, indent=2, null_means=NULL_MEANS)
    print(traj.summary())
    print(f"compile {traj.compile_time:.2f} s, run {traj.wall_time:.2f} s")
    for r in rows[:10]:
        print(f"  #{r['member']}: t = {r['t_final']:.4g}, loss = {r['loss_final']:.3g}, "
              f"steps = {r['steps']}" + (f", c = {r['c']:.4g}" if "c" in r else ""))
    print(f"wrote {out / 'trajectory.npz'}, {out / 'summary.json'}, {out / 'trajectory.png'}")
    return 0 if all(Status(int(s)).ok for s in np.atleast_1d(traj.status)) else 1


def _check_memory(problem, members: int, method: str) -> None:
    """Refuse a run whose arrays would not fit in memory, from the declared sizes, before
    θ0 is drawn: the trajectories (``members`` × the default saved points × p, with the
    integrator's copies) and the network evaluated for the members in flight at once."""
    from flowtools import _validate as V
    from flowtools.models.two_layer import evaluation_bytes
    from flowtools.trajectory import trajectory_bytes

    p = problem.n_params
    in_flight = members if method == "gd" else min(members, 64)  # GD: one lockstep batch
    need = (2 * trajectory_bytes(members, SAVES, p)
            + in_flight * evaluation_bytes(problem.n, problem.width, problem.dim, problem.bias))
    V.memory(need, f"{members} trajectory(ies) of {SAVES} saved points of p = {p:,} parameters "
             f"(n = {problem.n:,} samples, width m = {problem.width:,})",
             "use fewer --seed values, a narrower network (--width) or fewer samples (--n)")


def _plot(problem, members, path, method):
    from flowtools.plotting import plot_trajectories

    plot_trajectories(problem, members, path, title=f"{method}: loss and parameters")

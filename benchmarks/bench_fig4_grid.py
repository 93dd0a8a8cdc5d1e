"""The paper's Figure-4 grid with the default flow solver, against scipy Radau on a subset.

Grid (Appendix C, Figure 4; issue 11 item 5): Example 1's network (two tanh neurons with
bias, target tanh(x + 1)) on n = 3, 4, 5, 6 standard-Gaussian samples
(``make_problem(n, sampling="gaussian", seed=data_seed)``, data seeds 0–4), 26 values
c̃ = 0, 0.04, …, 1 (``np.linspace(0, 1, 26)``), initial scale 1e-20 (init seed 0), the
flow to ℓ ≤ 1e-20: ``solve_flow(pb, theta0s, loss_threshold=1e-20, t1=1e16)`` with its
other defaults (Kvaerno5 with a fresh Jacobian per implicit stage, newton="stage"; rtol
1e-10, max_steps 50 000, batch_size 64), one batched call per (n, data seed).
4 × 5 × 26 = 520 flows. The horizon: the slowest degenerate tails (n = 5, Q1 and Q2 ends)
reach ℓ = 1e-20 only at t ≈ 4e13, beyond the old default t1 = 1e12 (solve_flow now has no
horizon by default); implicit steps grow in proportion to t, so a later horizon costs a
few hundred steps, not more.

Initial states: c̃ ∈ (0, 1] is ``init_ratio(c̃, 1e-20, seed=0)`` (C1/C2 = c̃). c̃ = 0 is
``with_ratios(init_gaussian(1e-20, 0), 0)``: the second neuron exactly at the origin
(C2 = 0, c = ∞, the same as c = 0 with the neurons swapped). That neuron stays at 0 for
all t (a neuron with a_k = 0, w_k = 0 has zero gradient), so the flow is the one-neuron
flow — the c̃ → 0 end of Theorem 2's limit; a tiny c > 0 would leave the second neuron
~c·1e-20, which a later instability could still amplify.

Prints, measured in this one run:

* per n: flows, statuses (CONVERGED / STATIONARY / others), accepted steps median and
  max, rejected steps (max), how many flows exceed 5000 accepted steps, wall time of the
  integration and compile time, how many recovered (generalization error < 1e-8); then
  the target (every flow ≤ 5000 accepted steps, none cut off: no MAX_STEPS and no HORIZON
  — a flow must reach ℓ ≤ 1e-20 or a certified STATIONARY end) and the slowest flows
  (n, data seed, c̃, accepted/rejected steps, t_final, ℓ, status, branch);
* the baseline: scipy ``solve_ivp`` Radau with the exact Jacobian
  (``solve_flow(..., backend="scipy", solver="Radau")``, same rtol, loss event at 1e-20,
  same t1) on a subset of flows (the grid's slowest for diffrax, the others spread over
  n, c̃ and the data seeds), each in its own process with a wall budget
  (``--radau-budget``, counted from the end of the child's imports, so it includes the
  ~1 s jit of the right-hand side and Jacobian; the process is killed when it runs out
  and the ratio is then a lower bound). Equal cores: the baseline is one flow on one core
  (scipy is serial; the parent waits while the child solves), and so is the diffrax side
  it is compared with — the same flow re-run alone, B = 1 with ``workers=1`` (one thread;
  a batch of one has one piece, so more workers could not help it). For each: diffrax
  accepted steps, wall time and compile time (a compile once more per n, as B = 1 is
  another shape; ~0 once that program exists), Radau's right-hand-side evaluations, wall
  time and compile time (its jit), the ratio Radau / diffrax of wall times without and
  with compile (each side's own), and whether the end points agree: same branch
  (``branches.classify``), generalization error (``branches.generalization_error`` on the
  1000 standard-Gaussian test points of ``demos/fig4_sample_size.py``), ‖Δθ_end‖ and the
  end times' ratio t_Radau / t_diffrax. Then the median ratio (without and with compile)
  over the finished flows and a lower bound for the killed ones.

Measured (full grid, 2-core machine shared with another job, load ≈ 3; 2026-12-01):
520 flows in 31.7 s + 72.7 s compile (4 compilations, one per n: the data's shape);
all 520 CONVERGED at ℓ ≤ 1e-20, none cut off; accepted steps median 668, max 3759 (n = 5,
data seed 1, c̃ = 0.80, a Q1 end at t = 3.3e13), rejected ≤ 25; 67 flows were stopped by the
relative-gradient test in a degenerate tail (ℓ ≈ 1e-20–4e-18, t·‖∇ℓ‖²/ℓ of order 1) and
resumed. Before the resume (t1 = 1e12): 94.5 s, 59 such flows certified STATIONARY too
early (generalization errors 2e-7–6e-6 instead of 4e-8–5e-7) and 8 HORIZON. Radau: 3 of 4
finished in 60 s, 56–126× diffrax's wall (median 59×), the same branches and
generalization errors, ‖Δθ_end‖ ≤ 2e-9; the slowest flow killed (> 96×).

Writes the per-flow table to ``--out`` (default out/benchmarks/) as fig4_grid.csv and,
when xarray can write it, fig4_grid.nc (dimensions n × data_seed × c_tilde).

    python benchmarks/bench_fig4_grid.py [--quick] [--radau 6] [--radau-budget 60]
        [--n 3 4 5 6] [--data-seeds 5] [--n-ctilde 26] [--t1 1e12] [--max-steps 50000]
        [--out DIR]

``--quick``: n = 6 only, data seeds 0, 1, 6 values of c̃ (0, 0.2, …, 1), 2 Radau flows.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import pathlib
import time

import numpy as np

SCALE, THRESHOLD, INIT_SEED, TEST_SEED, N_TEST = 1e-20, 1e-20, 0, 12345, 1000
TARGET_STEPS = 5000


def initial_state(pb, c_tilde: float) -> np.ndarray:
    """θ0 of the grid for one c̃ (c̃ = 0: second neuron exactly at the origin)."""
    if c_tilde == 0:
        return pb.with_ratios(pb.init_gaussian(SCALE, INIT_SEED), 0.0)
    return pb.init_ratio(c_tilde, SCALE, seed=INIT_SEED)


def test_inputs() -> np.ndarray:
    return np.random.default_rng(TEST_SEED).standard_normal((N_TEST, 1))


# ------------------------------------------------------------------ the Radau baseline
def _radau_child(conn, n, data_seed, theta0, t1):
    """In a fresh process: one scipy Radau flow; sends "ready" after the imports, then the
    result (or the exception's text)."""
    try:
        import flowtools as ft

        pb = ft.make_problem(n, sampling="gaussian", seed=data_seed)
        conn.send("ready")
        tr = ft.solve_flow(pb, theta0, t1=t1, backend="scipy", solver="Radau",
                           loss_threshold=THRESHOLD, n_save=2)
        conn.send(dict(theta_final=np.asarray(tr.theta_final), status=int(tr.status),
                       t_final=float(tr.t_final), loss_final=float(tr.loss_final),
                       nfev=int(tr.steps), evals=int(tr.grad_evals),
                       wall=float(tr.wall_time), compile=float(tr.compile_time)))
    except Exception as exc:  # reported by the parent
        conn.send(f"error: {type(exc).__name__}: {exc}")
    finally:
        conn.close()


def run_radau(n, data_seed, theta0, t1, budget):
    """The Radau flow in a spawned process, killed after ``budget`` s of solving (counted
    from when its imports are done). Returns (result dict | None, elapsed s, note)."""
    ctx = mp.get_context("spawn")  # no fork of a process that holds XLA threads
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_radau_child, args=(child, n, data_seed, theta0, t1),
                       daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(300) or parent.recv() != "ready":
            return None, 0.0, "child did not start"
        t0 = time.perf_counter()
        if parent.poll(budget):
            msg = parent.recv()
            elapsed = time.perf_counter() - t0
            if isinstance(msg, str):
                return None, elapsed, msg
            return msg, elapsed, ""
        return None, time.perf_counter() - t0, f"no result within {budget:g} s (killed)"
    except EOFError:
        return None, 0.0, "child died"
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        parent.close()


def radau_subset(cells, k: int) -> list[int]:
    """k flows: the grid's slowest for diffrax (most accepted steps) and k − 1 spread over
    n, c̃ and the data seeds. Indices into ``cells``."""
    ns = sorted({c["n"] for c in cells})
    cts = sorted({c["c_tilde"] for c in cells})
    dss = sorted({c["data_seed"] for c in cells})
    worst = int(np.argmax([c["steps"] for c in cells]))
    pick = []
    for j in range(k - 1):
        n = ns[j % len(ns)]
        ct = cts[round(j * (len(cts) - 1) / (k - 2))] if k > 2 else cts[-1]
        ds = dss[(2 * j + 1) % len(dss)]
        idx = next(i for i, c in enumerate(cells)
                   if c["n"] == n and c["c_tilde"] == ct and c["data_seed"] == ds)
        if idx not in pick and idx != worst:
            pick.append(idx)
    return [*pick, worst][:k]


# ------------------------------------------------------------------------------- output
COLUMNS = ("n", "data_seed", "c_tilde", "status", "steps", "rejected_steps", "grad_evals",
           "t_final", "loss_final", "branch", "dist_Q1", "dist_Q2", "gen_error")


def save_table(cells, out: pathlib.Path, ns, dss, cts) -> list[str]:
    from flowtools.experiments.outputs import write_csv

    written = [str(write_csv(out / "fig4_grid.csv", COLUMNS,
                             [[c[k] for k in COLUMNS] for c in cells]))]
    try:
        import xarray as xr

        from flowtools.status import Status
        from flowtools.sweep.two_layer import BRANCH_CODES

        shape = (len(ns), len(dss), len(cts))
        data = {}
        for k in COLUMNS[3:]:
            arr = np.full(shape, -1 if k in ("status", "steps", "rejected_steps", "grad_evals",
                                             "branch") else np.nan,
                          dtype=np.int64 if k in ("steps", "rejected_steps", "grad_evals")
                          else np.int32 if k in ("status", "branch") else float)
            for c in cells:
                v = BRANCH_CODES[c[k]] if k == "branch" else c[k]
                arr[ns.index(c["n"]), dss.index(c["data_seed"]), cts.index(c["c_tilde"])] = v
            data[k] = (("n", "data_seed", "c_tilde"), arr)
        ds = xr.Dataset(data, coords=dict(n=list(ns), data_seed=list(dss), c_tilde=list(cts)),
                        attrs=dict(description="bench_fig4_grid: Example 1, Gaussian samples, "
                                   "scale 1e-20, flow to loss 1e-20",
                                   status_codes=", ".join(f"{s.value}={s.name}"
                                                          for s in Status),
                                   branch_codes=", ".join(f"{v}={k}"
                                                          for k, v in BRANCH_CODES.items())))
        path = out / "fig4_grid.nc"
        ds.to_netcdf(path, engine="scipy")
        written.append(str(path))
    except Exception as exc:  # the CSV is the table; netCDF is a convenience
        print(f"(netCDF not written: {type(exc).__name__}: {exc})")
    return written


# --------------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="n = 6, data seeds 0, 1, 6 values of c̃, 2 Radau flows")
    ap.add_argument("--n", type=int, nargs="+", default=None, help="sample sizes (3 4 5 6)")
    ap.add_argument("--data-seeds", type=int, default=None, help="data seeds 0…N−1 (5)")
    ap.add_argument("--n-ctilde", type=int, default=None,
                    help="values of c̃ = linspace(0, 1, N) (26)")
    ap.add_argument("--t1", type=float, default=1e16,
                    help="the horizon (1e16; solve_flow's default is none)")
    ap.add_argument("--max-steps", type=int, default=50_000,
                    help="solve_flow's step budget (its default)")
    ap.add_argument("--radau", type=int, default=None, help="Radau subset size (6; 0: none)")
    ap.add_argument("--radau-budget", type=float, default=60.0,
                    help="wall seconds per Radau flow before it is killed")
    ap.add_argument("--out", default="out/benchmarks", help="folder for the per-flow table")
    args = ap.parse_args(argv)

    import flowtools as ft
    from flowtools.branches import classify, generalization_error
    from flowtools.status import Status

    ns = args.n or ([6] if args.quick else [3, 4, 5, 6])
    dss = list(range(args.data_seeds or (2 if args.quick else 5)))
    cts = [float(c) for c in np.linspace(0.0, 1.0, args.n_ctilde or (6 if args.quick else 26))]
    k_radau = args.radau if args.radau is not None else (2 if args.quick else 6)
    X_test = test_inputs()
    print(f"Figure-4 grid: Example 1, n = {ns}, Gaussian samples (data seeds "
          f"{dss[0]}–{dss[-1]}), {len(cts)} values of c̃ in [0, 1], scale {SCALE:g}, "
          f"to ℓ ≤ {THRESHOLD:g}: {len(ns) * len(dss) * len(cts)} flows; solve_flow "
          f"defaults (kvaerno5, newton=\"stage\", rtol 1e-10), t1 {args.t1:g}, "
          f"max_steps {args.max_steps}", flush=True)

    cells, per_n, problems = [], {}, {}
    for n in ns:
        wall = comp = 0.0
        for ds in dss:
            pb = ft.make_problem(n, sampling="gaussian", seed=ds)
            problems[n, ds] = pb
            theta0 = np.stack([initial_state(pb, c) for c in cts])
            tr = ft.solve_flow(pb, theta0, t1=args.t1, loss_threshold=THRESHOLD,
                               max_steps=args.max_steps, n_save=2)
            wall += tr.wall_time
            comp += tr.compile_time
            br = classify(pb, tr.theta_final)
            err = np.asarray(generalization_error(pb, tr.theta_final, X_test=X_test))
            rej = np.asarray(tr.info.get("rejected_steps", np.zeros(len(cts), int)))
            for j, c in enumerate(cts):
                cells.append(dict(
                    n=n, data_seed=ds, c_tilde=c, theta0=theta0[j],
                    theta_final=np.asarray(tr.theta_final[j]),
                    status=int(tr.status[j]), steps=int(tr.steps[j]),
                    rejected_steps=int(rej[j]), grad_evals=int(tr.grad_evals[j]),
                    t_final=float(tr.t_final[j]), loss_final=float(tr.loss_final[j]),
                    branch=str(br.branch[j]), dist_Q1=float(br.dist_Q1[j]),
                    dist_Q2=float(br.dist_Q2[j]), gen_error=float(err[j]),
                    resumed=j in tr.info.get("resumed", {})))
        per_n[n] = (wall, comp)
        mine = [c for c in cells if c["n"] == n]
        print(f"  n = {n}: {len(mine)} flows in {wall:.1f} s (+ compile {comp:.1f} s)",
              flush=True)

    # ---------------------------------------------------------------- the grid's figures
    print(f"\n{'n':>3s} {'flows':>6s} {'CONV':>5s} {'STAT':>5s} {'other':>16s} "
          f"{'steps med':>9s} {'max':>6s} {'rej max':>7s} {f'>{TARGET_STEPS}':>6s} "
          f"{'wall s':>7s} {'ms/flow':>8s} {'compile s':>9s} {'recovered':>9s} "
          f"{'resumed':>7s}")
    for n in [*ns, "all"]:
        mine = [c for c in cells if n == "all" or c["n"] == n]
        st = np.array([c["status"] for c in mine])
        steps = np.array([c["steps"] for c in mine])
        rej = np.array([c["rejected_steps"] for c in mine])
        others = {Status(int(s)).name: int(np.sum(st == s)) for s in np.unique(st)
                  if s not in (Status.CONVERGED, Status.STATIONARY)}
        wall, comp = (sum(v[i] for v in per_n.values()) for i in (0, 1)) if n == "all" \
            else per_n[n]
        rec = sum(c["gen_error"] < 1e-8 for c in mine)
        print(f"{n!s:>3s} {len(mine):6d} {int(np.sum(st == Status.CONVERGED)):5d} "
              f"{int(np.sum(st == Status.STATIONARY)):5d} "
              f"{', '.join(f'{k} {v}' for k, v in others.items()) or '—':>16s} "
              f"{np.median(steps):9.0f} {steps.max():6d} {rej.max():7d} "
              f"{int(np.sum(steps > TARGET_STEPS)):6d} {wall:7.1f} "
              f"{1e3 * wall / len(mine):8.1f} {comp:9.1f} {rec:5d}/{len(mine)} "
              f"{sum(c['resumed'] for c in mine):7d}")
    steps = np.array([c["steps"] for c in cells])
    cut = [c for c in cells if c["status"] in (Status.MAX_STEPS, Status.HORIZON)]
    failed = [c for c in cells if not Status(c["status"]).ok]
    print(f"\ntarget: every flow ≤ {TARGET_STEPS} accepted steps, none cut off — "
          f"above {TARGET_STEPS}: {int(np.sum(steps > TARGET_STEPS))}; cut off (MAX_STEPS or "
          f"HORIZON): {len(cut)}; failed statuses: {len(failed)} → "
          f"{'MET' if not cut and not failed and steps.max() <= TARGET_STEPS else 'NOT MET'}")
    print("worst flows (n, data seed, c̃, accepted/rejected steps, t_final, loss, status, "
          "branch):")
    for i in np.argsort(-steps, kind="stable")[:6]:
        c = cells[i]
        print(f"  n = {c['n']}, seed {c['data_seed']}, c̃ = {c['c_tilde']:.2f}: "
              f"{c['steps']}/{c['rejected_steps']}, t = {c['t_final']:.3g}, "
              f"ℓ = {c['loss_final']:.2g}, {Status(c['status']).name}, {c['branch']}")

    # ------------------------------------------------------------------ Radau baseline
    if k_radau > 0:
        pick = radau_subset(cells, k_radau)
        print(f"\nbaseline: scipy solve_ivp Radau, exact Jacobian (solve_flow backend='scipy'),"
              f" rtol 1e-10, each flow in its own process, budget {args.radau_budget:g} s; "
              "diffrax: the same flow re-run alone (B = 1, workers=1): one core each",
              flush=True)
        print(f"{'n':>2s} {'ds':>2s} {'c̃':>5s} | {'dfx steps':>9s} {'dfx s':>7s} "
              f"{'(compile)':>9s} | {'Radau evals':>11s} {'Radau s':>8s} {'(compile)':>9s} | "
              f"{'ratio':>7s} {'w/ comp':>7s} | "
              f"{'branch':>9s} {'gen err dfx':>11s} {'Radau':>9s} {'‖Δθ_end‖':>9s} "
              f"{'t_R/t_d':>9s}", flush=True)
        ratios = []
        for i in pick:
            c = cells[i]
            pb = problems[c["n"], c["data_seed"]]
            d = ft.solve_flow(pb, c["theta0"], t1=args.t1, loss_threshold=THRESHOLD,
                              max_steps=args.max_steps, n_save=2, workers=1)
            r, elapsed, note = run_radau(c["n"], c["data_seed"], c["theta0"], args.t1,
                                         args.radau_budget)
            line = (f"{c['n']:2d} {c['data_seed']:2d} {c['c_tilde']:5.2f} | {int(d.steps):9d} "
                    f"{d.wall_time:7.3f} {d.compile_time:9.1f} | ")
            b_d = str(classify(pb, d.theta_final).branch)
            e_d = float(generalization_error(pb, d.theta_final, X_test=X_test))
            if r is None:  # killed (or failed): what diffrax found, and a lower bound
                ratio = elapsed / d.wall_time
                ratios.append((ratio, None, True))
                line += (f"{'—':>11s} {f'>{elapsed:.0f}':>8s} {'—':>9s} | "
                         f"{f'>{ratio:.0f}×':>7s} {'—':>7s} | "
                         f"{note}; diffrax: {Status(int(d.status)).name}, t = "
                         f"{float(d.t_final):.3g}, {b_d}, gen err {e_d:.3g}")
            else:
                ratio = r["wall"] / d.wall_time
                with_c = (r["wall"] + r["compile"]) / (d.wall_time + d.compile_time)
                ratios.append((ratio, with_c, False))
                b_r = str(classify(pb, r["theta_final"]).branch)
                e_r = float(generalization_error(pb, r["theta_final"], X_test=X_test))
                dth = float(np.linalg.norm(np.asarray(d.theta_final) - r["theta_final"]))
                line += (f"{r['nfev']:11d} {r['wall']:8.2f} {r['compile']:9.2f} | "
                         f"{ratio:6.0f}× {with_c:6.1f}× | "
                         f"{b_d + ('=' if b_d == b_r else '≠' + b_r):>9s} {e_d:11.3g} "
                         f"{e_r:9.3g} {dth:9.2g} {r['t_final'] / float(d.t_final):9.6f}")
                if r["status"] != Status.CONVERGED or int(d.status) != Status.CONVERGED:
                    line += (f"  (diffrax {Status(int(d.status)).name}, Radau "
                             f"{Status(r['status']).name} at t = {r['t_final']:.3g})")
            print(line, flush=True)
        done = [(x, xc) for x, xc, lower in ratios if not lower]
        killed = [x for x, _, lower in ratios if lower]
        print("ratio Radau / diffrax wall time, one core each: "
              + (f"median {np.median([x for x, _ in done]):.0f}× (integration only), "
                 f"{np.median([xc for _, xc in done]):.1f}× counting each side's compile, "
                 f"over {len(done)} finished" if done else "none finished")
              + (f"; {len(killed)} not finished within the budget (ratio > "
                 f"{min(killed):.0f}×)" if killed else ""))

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for p in save_table(cells, out, ns, dss, cts):
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

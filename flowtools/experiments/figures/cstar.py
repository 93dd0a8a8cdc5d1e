"""The demarcation c̃* of the α → 0 limit: where the t → ∞ branch switches Q2 → Q1.

A result the paper could not compute (issue 14). By Theorem 1 the α → 0 limit
h(θ0, t) = lim φ(αθ0, t + log(1/α)/μ1) depends on θ0 only through C(θ0), i.e. (m = 2, odd σ)
through c̃ = min(|C1/C2|, |C2/C1|) ∈ [0, 1]. Each flow starts on the limit's manifold series
(the sweep's ``init.start = "limit"``, as ``limit_endpoint`` does) and runs to a certified
end point (ℓ ≤ 1e-15; the convergence to Q1 is polynomial, so Q1-bound flows reach
t ~ 1e8–1e9), classified by ``outcomes.outcome``. c̃* is located by multisection
(``flowtools.sweep.refine``), not by sampling seeds: a coarse grid on [0, 1] (c̃ = 0 and 1
exactly), then every bracket where the outcome changes is cut into 16 pieces per round
until it is narrower than ``tol``; every round is stored, so a rerun resumes and fig3 reads
the n = 6 grid's c̃* from the same stores. "none" is reported when there is no change.

Data: Example 1's grid (n = 4, 5, 6 on [−2, 2]) and each Gaussian data seed 0–4 of
Figure 4 (n = 3 … 6; quick mode: the n = 6 grid only, to 5e-3).
"""

from __future__ import annotations

import math
import pathlib
import time

import numpy as np

import flowtools as ft
from flowtools.experiments.claims import Claim
from flowtools.experiments.outcomes import Criterion, outcome, outcome_counts

TITLE = "c̃*: the Q1/Q2 demarcation of the α → 0 limit, by multisection, over (n, data)"
GD = False
# measured in `flowtools reproduce all` (full mode, idle 2-core CPU, cold JAX cache)
FULL_TIME = "365 s"

PAPER_DEMARCATION = 0.74  # Figure 3(b): |c| = 1.35 and 0.74 (1/1.35 = 0.741)
# The criterion: an end point reached to ℓ ≤ 1e-15 is in Q* if its RMS error is ≤ 1e-4,
# then it is the nearer of Q1 and Q2. The floor only separates Q* from other minima, and it
# must be decidable at ℓ = 1e-15 for every dataset: on the Gaussian data (n = 6, seed 0)
# end points of Q* at ℓ ≤ 1e-15 have RMS test errors up to 1.5e-5 (measured; run on to
# ℓ ≤ 1e-24 the same points are at 4.5e-10 and within 1e-8 of Q2), so a floor of 1e-6
# would call them "global min outside Q*"; the nearer branch is the same at both losses.
CRITERION = Criterion(kind="rms", floor=1e-4, loss_tol=1e-15)
QUICK_TOL = 5e-3  # quick mode: the coarse grid and one round
GRID_TOL, GAUSS_TOL = 1e-6, 1e-4  # full mode (the Gaussian datasets: the time budget)
COARSE, PIECES = 16, 16  # coarse points on [0, 1]; a round cuts a bracket into 16
#: the stores of ``compute`` called without an engine (``reproduce`` keeps them in OUT/stores)
STORE_DIR = pathlib.Path("out") / "sweep" / "figures"
EVALS = ("c_tilde", "branch", "loss", "t_final", "round")  # per evaluated point


def problems(quick: bool):
    """(label, sampling, n, data seed, tolerance) of every dataset of the map."""
    out = [(f"grid n={n}", "grid", n, -1, QUICK_TOL if quick else GRID_TOL)
           for n in ((6,) if quick else (4, 5, 6))]
    return out + [(f"gaussian n={n} seed={s}", "gaussian", n, s, GAUSS_TOL)
                  for n in (() if quick else (3, 4, 5, 6)) for s in range(5)]


def grid(sampling: str, n: int, seed: int, c_tilde) -> dict:
    """The flows of the α → 0 limit from each c̃, to ℓ ≤ 1e-15: a task's 16 c̃ (the coarse
    grid, or a refinement round's 15 points) in one lockstep batch, as the figure ran them
    before the engine."""
    problem = {"n": n, "sampling": sampling, **({"data_seed": seed} if seed >= 0 else {})}
    return {"sweep": {"name": f"cstar_{sampling}_n{n}" + (f"_s{seed}" if seed >= 0 else ""),
                      "cells_per_task": COARSE},
            "problem": problem, "init": {"start": "limit", "c_tilde": list(c_tilde)},
            "integrator": {"dynamics": "flow", "t1": 1e14, "max_steps": 200_000,
                           "loss_threshold": CRITERION.loss_tol, "lockstep": True}}


def _labels(pb, ds):
    """The outcome of every cell of a store (dim c_tilde)."""
    th = ds.theta_final.values[:, :pb.n_params]
    return outcome(pb, th, ds.loss_final.values, CRITERION).astype(str)


def _is(pb, label):
    """1 where a store's outcome is ``label``, else 0: what ``refine`` multisects."""
    import xarray as xr

    def fn(ds):
        return xr.DataArray((_labels(pb, ds) == label).astype(float), dims=["c_tilde"])

    fn.__name__ = f"outcome_is_{label}_{CRITERION.kind}_{CRITERION.floor:g}"
    return fn


def locate(sampling: str, n: int, seed: int, engine, *, tol: float, log=print):
    """Every c̃ ∈ [0, 1] where the t → ∞ outcome of the α → 0 limit changes (Q2 → Q1, or
    to and from another global minimum or a run that is not decided): the coarse grid
    (``grid``, through ``engine``), then each of its brackets refined by
    ``flowtools.sweep.refine`` (the outcome at the bracket's lower end, falling; stores
    beside the coarse grid's; its first change is followed) until narrower than ``tol``.

    Returns a dict: ``brackets`` (list of (lo, hi, outcome at lo, outcome at hi)),
    ``c_star`` (the midpoints of the Q2 ↔ Q1 brackets), ``transitions`` (the midpoints of
    all brackets) and every evaluated point (``EVALS``; round 0: the coarse grid)."""
    from flowtools.sweep import open_results, refine

    pb = ft.example1(n, sampling=sampling, **({"seed": seed} if seed >= 0 else {}))
    ds = engine.results(grid(sampling, n, seed, np.linspace(0.0, 1.0, COARSE)))[0]
    c, lab = ds.c_tilde.values, _labels(pb, ds)
    rounds = max(0, math.ceil(math.log(1 / (COARSE - 1) / tol, PIECES)))
    evals, brackets = [(ds, 0)], []
    for i in np.flatnonzero(lab[:-1] != lab[1:]):
        sub = grid(sampling, n, seed, [c[i], c[i + 1]])
        root = engine.store(sub).with_suffix("")
        r = refine(sub, "c_tilde", _is(pb, lab[i]), 0.5, root, rounds=rounds,
                   points=PIECES - 1, spacing="linear", crossing="first",
                   executor=engine.executor, workers=engine.workers,
                   log=lambda line: log(f"    {line}"))
        evals += [(open_results(p, lazy=False), k) for k in range(1, rounds + 1)
                  for p in root.glob(f"round{k}/*.zarr")]
        brackets.append((float(r.lo), float(r.hi)))
    cols = zip(*[(e.c_tilde.values, _labels(pb, e), e.loss_final.values, e.t_final.values,
                  np.full(e.sizes["c_tilde"], k)) for e, k in evals])
    pts = {k: np.concatenate(v) for k, v in zip(EVALS, cols)}
    at = dict(zip(pts["c_tilde"], pts["branch"]))
    brackets = [(lo, hi, at[lo], at[hi]) for lo, hi in brackets]
    mid = [0.5 * (lo + hi) for lo, hi, _, _ in brackets]
    return {"brackets": brackets, "transitions": mid,
            "c_star": [m for m, b in zip(mid, brackets) if {b[2], b[3]} == {"Q1", "Q2"}],
            "rounds": rounds if brackets else 0, **pts}


_INT = {"n", "data_seed", "n_switches", "eval_round"}  # int32: netCDF3 has no int64
_ATTRS = {"c_star": "c̃* (midpoint of the final bracket; NaN: none or several)",
          "transitions": "every change of the t → ∞ outcome over c̃",
          "data_seed": "Gaussian data seed (-1: the grid)",
          "tolerance": "the final brackets are at most this wide"}


def _column(name, values):
    """One variable over the datasets; per-dataset lists padded with −1, "" or NaN."""
    if np.ndim(values[0]):
        fill = -1 if name in _INT else "" if name in ("transition_kind", "eval_branch") \
            else np.nan
        size = max([1] + [len(v) for v in values])
        values = [list(v) + [fill] * (size - len(v)) for v in values]
    a = np.array(values)
    a = a.astype(np.int32 if name in _INT else "S" if a.dtype.kind in "OU" else a.dtype)
    dims = ("dataset", "transition" if name.startswith("transition_") else "evaluation")
    return dims[:a.ndim], a, {"long_name": _ATTRS[name]} if name in _ATTRS else {}


def compute(*, quick: bool, gd: bool, log=print, engine=None):
    from flowtools.experiments.engine import Engine
    from flowtools.sweep.executors import resolve_executor

    engine = engine or Engine(STORE_DIR, log=log)
    ex = resolve_executor(engine.executor, engine.workers)()  # one for every grid
    try:
        return _dataset(problems(quick), Engine(engine.store_dir, ex, None, engine.log), log)
    finally:
        if ex is not engine.executor:
            ex.close()


def _dataset(sets, engine, log):
    import xarray as xr

    t0 = time.perf_counter()
    engine.results(*[grid(s, n, seed, np.linspace(0.0, 1.0, COARSE))  # all in parallel
                     for _, s, n, seed, _ in sets])
    rows = []
    for name, sampling, n, seed, tol in sets:
        t = time.perf_counter()
        res = locate(sampling, n, seed, engine, tol=tol, log=log)
        cs, br = res["c_star"], res["brackets"]
        q12 = [b for b in br if {b[2], b[3]} == {"Q1", "Q2"}]
        lo, hi, below = q12[0][:3] if len(q12) == 1 else (np.nan, np.nan, "")
        counts = outcome_counts(res["branch"][res["round"] == 0])
        kinds = [f"{b[2]} -> {b[3]}" for b in br]
        rows.append(dict(
            dataset=name, sampling=sampling, n=n, data_seed=seed,
            c_star=cs[0] if len(cs) == 1 else np.nan, bracket_lo=lo, bracket_hi=hi,
            n_switches=len(cs), c_star_all=", ".join(f"{c:.7f}" for c in cs) or "none",
            transitions="; ".join(f"{k} at {m:.7f}" for k, m in
                                  zip(kinds, res["transitions"])) or "none",
            transition_c_tilde=res["transitions"], transition_kind=kinds, branch_below=below,
            coarse_counts=", ".join(f"{k}: {v}" for k, v in counts.items() if v),
            tolerance=tol, wall_s=time.perf_counter() - t,
            **{f"eval_{k}": res[k] for k in EVALS}))
        log(f"  {name}: c̃* = {rows[-1]['c_star_all']} ({res['rounds']} rounds, "
            f"{rows[-1]['wall_s']:.1f} s)")
    data = {k: _column(k, [r[k] for r in rows]) for k in rows[0] if k != "dataset"}
    return xr.Dataset(
        data, coords={"dataset": np.array([r["dataset"] for r in rows], dtype="S")},
        attrs=dict(CRITERION.as_attrs(), decided_at="t → ∞ (certified end points)",
                   method="α → 0 limit from the manifold series (order 9, tol 1e-17), "
                          "flow to ℓ ≤ 1e-15; multisection: 16 coarse points on [0, 1], "
                          "15 interior points per bracket per round",
                   paper_demarcation=PAPER_DEMARCATION,
                   total_compute_s=time.perf_counter() - t0))


def _s(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def plot(ds):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax, axt) = plt.subplots(1, 2, figsize=(13, 4.8), constrained_layout=True,
                                  gridspec_kw={"width_ratios": [1.2, 1]})
    names = [_s(v) for v in ds.dataset.values]
    grid = np.array([_s(v) == "grid" for v in ds.sampling.values])
    ns = ds.n.values
    x = ns + np.where(grid, -0.25, 0.06 * (ds.data_seed.values - 2) + 0.1)
    seen = set()
    for i in range(len(names)):
        kinds = [_s(v) for v in ds.transition_kind.values[i]]
        for c, kind in zip(ds.transition_c_tilde.values[i], kinds):
            if not np.isfinite(c):
                continue
            q12 = set(kind.split(" -> ")) == {"Q1", "Q2"}
            key = ("grid" if grid[i] else "Gaussian data (seeds 0–4, left to right)",
                   "Q2 ↔ Q1: c̃*" if q12 else "change to/from another outcome")
            ax.plot(x[i], c, "s" if grid[i] else "o", ms=6 if q12 else 5,
                    color="C0" if grid[i] else "C1",
                    mfc=("C0" if grid[i] else "C1") if q12 else "none",
                    label=f"{key[1]} ({key[0]})" if key not in seen else None, zorder=3)
            seen.add(key)
        if not np.isfinite(ds.transition_c_tilde.values[i]).any():
            ax.annotate("none", (x[i], 0.02), fontsize=7, rotation=90)
    ax.axhline(PAPER_DEMARCATION, color="k", lw=1, ls="-", zorder=1,
               label="paper's Fig. 3 demarcation 0.74 (GD, α = 1e-8)")
    ax.set(xlabel="sample size n (grid: left of the tick; Gaussian seeds: right)",
           ylabel="c̃ = min(|c|, 1/|c|) where the outcome changes", ylim=(-0.03, 1.03),
           title="(a) c̃*(n, data) and other changes of the t → ∞ outcome (α → 0)")
    ax.set_xticks(sorted(set(ns.tolist())))
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    ax.grid(alpha=0.3)
    # (b) the evaluations of the n = 6 grid: branch against c̃ − c̃* (the multisection)
    i = names.index("grid n=6") if "grid n=6" in names else 0
    c = ds.eval_c_tilde.values[i]
    b = np.array([_s(v) for v in ds.eval_branch.values[i]])
    r = ds.eval_round.values[i]
    cs = ds.c_star.values[i]
    ref = cs if np.isfinite(cs) else 0.0
    tol = float(ds.tolerance.values[i])
    for lab, colr, mk in (("Q1", "C0", "o"), ("Q2", "C1", "o"),
                          ("global min outside Q*", "0.4", "x"), ("not converged", "C3", "+")):
        m = (b == lab) & np.isfinite(c)
        if m.any():
            axt.scatter(c[m] - ref, r[m], s=16, color=colr, marker=mk, label=lab, zorder=3)
    axt.axvline(PAPER_DEMARCATION - ref, color="k", lw=1,
                label=f"paper 0.74 (c̃ − c̃* = {PAPER_DEMARCATION - ref:+.4f})", zorder=1)
    axt.set_xscale("symlog", linthresh=tol / 2)
    dec = [10.0 ** -k for k in range(1, 8, 2) if 10.0 ** -k >= tol / 2]
    axt.set_xticks([-d for d in dec] + [0.0] + dec[::-1])
    axt.xaxis.set_minor_locator(plt.NullLocator())
    axt.set(xlabel=f"c̃ − c̃*  (c̃* = {cs:.7f}; symlog, linear within ±{tol / 2:g})",
            ylabel="multisection round (0: coarse grid)",
            title=f"(b) {names[i]}: evaluated c̃ and their t → ∞ branch")
    axt.yaxis.set_major_locator(MaxNLocator(integer=True))
    axt.invert_yaxis()
    axt.legend(fontsize=8, loc="center")
    axt.grid(alpha=0.3)
    tols = sorted(set(ds.tolerance.values.tolist()))
    fig.suptitle(f"c̃*: α → 0 limit, t → ∞, {ds.attrs['criterion']}; bracket width ≤ "
                 + " / ".join(f"{t:g}" for t in tols) + " (grid / Gaussian data)"
                 * (len(tols) > 1), fontsize=10)
    return fig


def c_star_of(ds, name="grid n=6") -> float:
    names = [_s(v) for v in ds.dataset.values]
    return float(ds.c_star.values[names.index(name)]) if name in names else float("nan")


def claims(ds):
    out = []
    cs6 = c_star_of(ds)
    i6 = [_s(v) for v in ds.dataset.values].index("grid n=6")
    lo, hi = float(ds.bracket_lo.values[i6]), float(ds.bracket_hi.values[i6])
    out.append(Claim(
        "Fig. 3(b), §3: the demarcation between Q1 and Q2 lies at |c| = 1.35 and 0.74 "
        "(c̃ = 0.74; n = 6 grid, α = 1e-8, GD 1e6 iterations)",
        f"α → 0 limit, t → ∞: c̃* = {cs6:.7f} (bracket [{lo:.7f}, {hi:.7f}]; |c| = "
        f"{1 / cs6:.4f} / {cs6:.4f})",
        bool(abs(cs6 - PAPER_DEMARCATION) < 0.01) if np.isfinite(cs6) else None,
        "" if np.isfinite(cs6) and abs(cs6 - PAPER_DEMARCATION) < 0.01 else
        f"the limit's t → ∞ demarcation is {cs6:.4f}, {PAPER_DEMARCATION - cs6:+.4f} from the "
        "paper's 0.74: the paper's line is a finite-horizon GD line (see fig3, panel (c): "
        "the demarcation moves towards c̃* as the horizon grows)"))
    for j, name in enumerate(_s(v) for v in ds.dataset.values):
        k = int(ds.n_switches.values[j])
        tr = _s(ds.transitions.values[j])
        single = k == 1 and tr.count("->") == 1 and _s(ds.branch_below.values[j]) == "Q2"
        out.append(Claim(
            f"(not in the paper) {name}: one Q2 → Q1 switch in c̃, Q1 for c̃ near 1 (as "
            "Fig. 3(b) for n = 6: 'convergence occurs at Q1 when c approximates 1')",
            f"changes of the t → ∞ outcome: {tr}; coarse grid {_s(ds.coarse_counts.values[j])}",
            True if single else (None if tr == "none" else False),
            "" if single else ("no change on [0, 1]" if tr == "none" else
                               "the outcome changes otherwise than once Q2 → Q1: " + tr)))
    return out

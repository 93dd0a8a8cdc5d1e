"""The learning-rate-0.5 puzzle: which loss convention makes the paper's GD runs stable?

The paper states ℓ = ½Σ(f − y)² (a sum) but trains Figures 1, 4, 8 and 11 with GD at
lr 0.5 and Figure 9 at lr 0.25. GD can settle at a minimum θ* only if lr < 2/λ_max(∇²ℓ(θ*))
(the stability edge). With the sum loss that edge is 0.27 at Example 1's Q1 points and
0.40–0.47 at its Q2 points, so lr 0.5 should diverge. Hypothesis (issue 14): the paper's
code used the mean loss ½·(1/n)Σ(f − y)², whose Hessian is 1/n of the sum's, so its edge
is n times larger (and lr 0.5 on the mean loss is lr 0.5/n on the sum loss).

Here the paper's GD protocol runs under both conventions, from the same θ0 (scale 1e-20,
c̃ on a subset of [0, 1] with 0 and 1 exact, as in Figure 4; one GD sweep grid per case,
``grids``), for

* Figure 4: Example 1, n = 5, 6 standard-Gaussian samples, data seeds 0–4, lr 0.5;
* Figure 8: m = 2, d = 3, n = 10 uniform on [−2, 2]³ (data seed 0), lr 0.5;
* Figure 9: d = 3, n = 5…10 uniform on [−2, 2]³ (data seed 0), lr 0.25;

with 1e6 iterations in full mode (the paper: 1e7 for Figure 4 at n = 5, 2e6 at n = 6,
1e6 for Figure 8, 1e6–2e7 for Figure 9) and 1e5 in quick mode. Per run: diverged or
not; the outcome by the one rule (``flowtools.experiments.outcomes``: the MSE against the
figure's floor at the paper's stop ℓ ≤ 1e-15 of the run's own loss, decided at that
finite horizon); and λ_max of the Hessian (``jax.hessian`` through ``Problem.hessian``) of
that convention's loss at its own end point where it reached zero loss, else at the other
convention's (``edge_at``).
"""

from __future__ import annotations

import numpy as np

from flowtools.experiments.claims import Claim
from flowtools.experiments.outcomes import FLAGS, Criterion, encode, outcome

TITLE = "lr-0.5 puzzle: GD's stability edge 2/λ_max under the sum and the mean loss"
GD = False
# measured in `flowtools reproduce all` (full mode, idle 2-core CPU, cold JAX cache)
FULL_TIME = "139 s"

CONVENTIONS = ("sum", "mean")
SCALE = 1e-20
PAPER_STOP = 1e-15
CASES = {  # name → (panel, paper's lr, recovery floor, what the paper's panels need)
    # the claim checked is stability: the paper's GD runs train (no run diverges and the
    # end points are stable for GD, 2/λ_max > lr); recovery is reported beside it
    "fig4": ("a", 0.5, 1e-8, "Figure 4 (n = 5, 6): the paper's GD at lr 0.5 trains every "
                             "run without diverging"),
    "fig8": ("b", 0.5, 1e-7, "Figure 8 (d = 3, n = 10): the paper's GD at lr 0.5 trains "
                             "every run without diverging (all converge to Q*)"),
    "fig9": ("c", 0.25, 1e-7, "Figure 9 (d = 3, n = 5…10): the paper's GD at lr 0.25 trains "
                              "every run without diverging"),
}


def settings(quick: bool) -> dict:
    if quick:
        return {"c_tilde": np.array([0.0, 0.5, 1.0]),
                "problems": {"fig4": [(6, 0)], "fig8": [(10, 0)], "fig9": [(6, 0)]},
                "iters": {"fig4": 10**5, "fig8": 10**5, "fig9": 10**5}}
    return {"c_tilde": np.concatenate([[0.0], np.linspace(0.125, 1.0, 8)]),
            "problems": {"fig4": [(n, s) for n in (5, 6) for s in range(5)],
                         "fig8": [(10, 0)], "fig9": [(n, 0) for n in range(5, 11)]},
            "iters": {"fig4": 10**6, "fig8": 10**6, "fig9": 10**6}}


def build(case: str, n: int, seed: int, convention: str):
    import flowtools as ft

    if case == "fig4":
        return ft.example1(n, sampling="gaussian", seed=seed, loss_convention=convention)
    return ft.make_problem(n, sampling="uniform", dim=3, seed=seed,
                           loss_convention=convention)


def grids(quick: bool) -> dict:
    """One GD sweep grid per case: axes n, data_seed, loss_convention and c̃ (one GD batch
    per c̃ row, as the paper's protocol ran them); test inputs as the case's figure: Figure
    4's 1000 Gaussian points, Figures 8 and 9's 1000 uniform points on [−2, 2]³."""
    s = settings(bool(quick))
    out = {}
    for case, (_, lr, _, _) in CASES.items():
        data = ({"sampling": "gaussian"} if case == "fig4" else
                {"sampling": "uniform", "dim": 3})
        out[case] = {
            "sweep": {"name": f"lr_puzzle_{'quick' if quick else 'full'}_{case}",
                      "cells_per_task": len(s["c_tilde"])},
            "problem": {"n": sorted({n for n, _ in s["problems"][case]}),
                        "data_seed": sorted({sd for _, sd in s["problems"][case]}),
                        "loss_convention": list(CONVENTIONS), **data},
            "init": {"scale": SCALE, "seed": 0, "c_tilde": [float(c) for c in s["c_tilde"]]},
            "integrator": {"dynamics": "gd", "lr": lr, "max_iter": s["iters"][case],
                           "loss_threshold": PAPER_STOP},
            "outputs": ({"test_inputs": "gaussian", "n_test": 1000, "test_seed": 12345}
                        if case == "fig4" else {})}
    return out


def _lam_max(pb, theta) -> np.ndarray:
    """λ_max(∇²ℓ) at the finite rows of ``theta`` (``discretization.lam_max``), NaN else."""
    from flowtools.discretization.stability import lam_max

    out = np.full(len(theta), np.nan)
    ok = np.all(np.isfinite(theta), -1)
    if ok.any():
        out[ok] = lam_max(pb, theta[ok])
    return out


def compute(*, quick: bool, gd: bool, log=print, engine=None):
    import xarray as xr

    from flowtools.experiments.engine import Engine
    from flowtools.experiments.figures.fig4 import STORE_DIR

    s = settings(bool(quick))
    cts = s["c_tilde"]
    g = dict(zip(CASES, (engine or Engine(STORE_DIR, log=log)).results(
        *grids(quick).values()), strict=True))
    rows = [(case, n, seed) for case in CASES for n, seed in s["problems"][case]]
    R, C, K = len(rows), len(CONVENTIONS), len(cts)
    names = ("loss_final", "t_final", "mse", "outcome", "lam_max", "edge_at")
    v = {k: np.full((R, C, K), np.nan) for k in names}
    theta_end = np.full((R, C, K, 10), np.nan)
    for r, (case, n, seed) in enumerate(rows):
        crit = Criterion(kind="mse", floor=CASES[case][2], loss_tol=PAPER_STOP)
        ends = {}
        for c, conv in enumerate(CONVENTIONS):
            pb = build(case, n, seed, conv)
            d = g[case].sel(n=n, data_seed=seed, loss_convention=conv).transpose("c_tilde", ...)
            th = d.theta_final.values[:, :pb.n_params]
            err = d.gen_error.values ** 2          # the MSE: the stored RMS error squared
            lab = outcome(pb, th, d.loss_final.values, crit, errors=err)
            v["loss_final"][r, c], v["t_final"][r, c] = d.loss_final.values, d.t_final.values
            v["mse"][r, c] = err
            v["outcome"][r, c] = encode(lab)
            theta_end[r, c, :, :th.shape[1]] = th
            ends[conv] = (pb, th, np.asarray(lab))
        # each convention's edge at its own end point where that reached zero loss (GD at
        # a large lr selects minima whose edge exceeds lr), else at the other's
        zero = {conv: np.isin(ends[conv][2], ("Q1", "Q2", "global min outside Q*"))
                for conv in CONVENTIONS}
        for c, conv in enumerate(CONVENTIONS):
            other = CONVENTIONS[1 - c]
            th_e = np.where(zero[conv][:, None], ends[conv][1],
                            np.where(zero[other][:, None], ends[other][1], np.nan))
            v["lam_max"][r, c] = _lam_max(ends[conv][0], th_e)
            v["edge_at"][r, c] = np.where(zero[conv], 0, np.where(zero[other], 1, -1))
    dims = ("run", "convention", "c_tilde")
    ds = xr.Dataset(
        {"loss_final": (dims, v["loss_final"], {"long_name": "GD's final loss (its own "
                                                            "convention)"}),
         "t_final": (dims, v["t_final"], {"long_name": "lr × iterations"}),
         "gen_error_mse": (dims, v["mse"]),
         "outcome": (dims, v["outcome"].astype(np.int8), FLAGS),
         "theta_final": (dims + ("param",), theta_end,
                         {"long_name": "GD end point (d = 1 rows: the last 4 params are NaN)"}),
         "lam_max": (dims, v["lam_max"],
                     {"long_name": "λ_max of ∇²ℓ (that convention) at the end point"}),
         "edge": (dims, 2.0 / v["lam_max"], {"long_name": "GD's stability edge 2/λ_max"}),
         "edge_at": (dims, v["edge_at"].astype(np.int8),
                     {"codes": "0 this convention's GD end point, 1 the other convention's "
                               "(this one did not reach zero loss), -1 none"}),
         "lr": (("run",), np.array([CASES[c][1] for c, _, _ in rows])),
         "n_samples": (("run",), np.array([n for _, n, _ in rows])),
         "data_seed": (("run",), np.array([s_ for _, _, s_ in rows])),
         "recovery_floor": (("run",), np.array([CASES[c][2] for c, _, _ in rows])),
         "iterations": (("run",), np.array([s["iters"][c] for c, _, _ in rows]))},
        coords={"run": np.arange(R), "case": ("run", np.array([c for c, _, _ in rows])),
                "convention": list(CONVENTIONS), "c_tilde": cts,
                "param": [f"p{k}" for k in range(10)]})
    ds.attrs.update(
        scale=SCALE, paper_stop=PAPER_STOP,
        decided_at="finite horizon T = lr × iterations (per run, variable 'iterations'; "
                   "paper: 1e7 / 1e6 / 1e6–2e7)",
        **Criterion(kind="mse", floor=1e-8, loss_tol=PAPER_STOP).as_attrs(),
        criterion_note="MSE ≤ the figure's floor (Fig. 4: 1e-8, Figs. 8, 9: 1e-7) at the "
                       "paper's stop ℓ ≤ 1e-15 of the run's own loss",
        edge_point="each convention's own GD end point where it reached zero loss, else the "
                   "other convention's (variable edge_at)",
        test_inputs="Fig. 4: 1000 standard Gaussian points (seed 12345); Figs. 8, 9: 1000 "
                    "uniform points on [−2, 2]^3")
    return ds


def _case(ds, case):
    return ds.sel(run=ds.case.values == case)


def plot(ds):
    import matplotlib.pyplot as plt
    import matplotlib.ticker as mticker

    fig, axes = plt.subplots(1, 3, figsize=(16, 6.4), constrained_layout=True)
    cts = ds.c_tilde.values
    for ax, (case, (panel, lr, _, _)) in zip(axes, CASES.items()):
        d = _case(ds, case)
        ns = np.unique(d.n_samples.values)
        for conv, mk in (("sum", "o"), ("mean", "s")):
            for k, n in enumerate(ns):
                e = d.edge.sel(convention=conv).values[d.n_samples.values == n]
                xs = np.broadcast_to(cts, e.shape)
                ax.semilogy(xs.ravel() + 0.006 * (k - len(ns) / 2), e.ravel(), mk,
                            ms=4, mfc="none" if conv == "mean" else None, color=f"C{k}",
                            label=f"n = {n}" if conv == "sum" else None)
        ax.axhline(lr, color="k", lw=1.2, ls="--", label=f"the paper's lr {lr}")
        txt = []
        for conv in ("sum", "mean"):
            o = d.outcome.sel(convention=conv).values
            txt.append(f"{conv}: diverged {np.mean(o == 4):.0%}, recovered "
                       f"{np.mean(o <= 1):.0%}, not conv. {np.mean(o == 3):.0%}")
        e_all = d.edge.values[np.isfinite(d.edge.values)]
        lo = min(e_all.min() if e_all.size else lr, lr) / 1.6
        hi = max(e_all.max() if e_all.size else lr, lr) * 4
        ax.set_ylim(lo, hi)
        ax.yaxis.set_major_formatter(mticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(mticker.NullFormatter())
        ax.set_yticks([t for t in (0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 20) if lo < t < hi])
        its = int(d.iterations.values[0])
        ax.set_title(f"({panel}) {CASES[case][3].split(':')[0]}: GD lr {lr}, {its:.0e} "
                     "iterations\n" + "\n".join(txt), fontsize=9.5)
        ax.set_xlabel(r"$\tilde c = \min(|c|, 1/|c|)$ at initialization")
        ax.set_ylabel(r"stability edge $2/\lambda_{max}$ at the end point")
        ax.set_xlim(-0.05, 1.05)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=4,
                  title="filled: sum loss, open: mean loss", title_fontsize=7)
    fig.suptitle("The lr-0.5 puzzle — GD converges near θ* only if lr < 2/λ_max(∇²ℓ(θ*)); "
                 "filled: sum loss ½Σ(f−y)², open: mean loss ½·(1/n)Σ(f−y)² (edge n× larger)"
                 "\nrecovered: MSE ≤ the figure's floor at ℓ ≤ 1e-15 (decided at the finite "
                 "horizon lr × iterations)", fontsize=10.5)
    return fig


def claims(ds):
    out = []
    for case, (_, lr, floor, paper) in CASES.items():
        d = _case(ds, case)
        res = {}
        for conv in CONVENTIONS:
            o = d.outcome.sel(convention=conv).values
            e = d.edge.sel(convention=conv).values
            res[conv] = (np.mean(o == 4), np.mean(o <= 1), np.nanmin(e) if np.isfinite(e).any()
                         else np.nan, np.nanmax(e) if np.isfinite(e).any() else np.nan,
                         np.mean(o == 3))
        ms = "; ".join(f"{conv}: diverged {r[0]:.0%}, recovered {r[1]:.0%}, not converged "
                       f"{r[4]:.0%}, edge 2/λ_max {r[2]:.3g}–{r[3]:.3g}"
                       for conv, r in res.items())
        es, em = d.edge.sel(convention="sum").values, d.edge.sel(convention="mean").values
        below_sum = bool(np.isfinite(es).any() and np.nanmax(es) < lr)
        above_mean = bool(np.isfinite(em).any() and np.nanmin(em) > lr)
        out.append(Claim(f"{paper} — with the stated sum loss", ms, bool(res["sum"][0] == 0),
                         "" if res["sum"][0] == 0 else
                         f"with the sum loss GD at lr {lr} diverges in {res['sum'][0]:.0%} of "
                         f"runs; the edge 2/λ_max ≤ {res['sum'][3]:.3g} < {lr} at every end "
                         "point" if below_sum else
                         f"diverged in {res['sum'][0]:.0%} of runs"))
        out.append(Claim(f"{paper} — with the mean loss (hypothesis of issue 14)",
                         f"mean: diverged {res['mean'][0]:.0%}, recovered "
                         f"{res['mean'][1]:.0%}; edge ≥ {res['mean'][2]:.3g} "
                         f"({'above' if above_mean else 'not above'} lr {lr} at every end "
                         "point)", bool(res["mean"][0] == 0 and above_mean),
                         ("stable; the runs not recovered are 'not converged' at this "
                          f"horizon ({res['mean'][4]:.0%}: loss plateaus and Q1 tails, "
                          "Fig. 11) or global minima outside Q*, as the flow's")
                         if res["mean"][0] == 0 and above_mean else
                         "diverged or edge below lr under the mean loss too"))
        os_, om = d.outcome.sel(convention="sum").values, d.outcome.sel(convention="mean").values
        both = (os_ <= 1) & (om <= 1)
        if both.any():
            same = int(np.sum(os_[both] == om[both]))
            out.append(Claim(
                f"(ours) {case}: where both conventions recover, GD ends on the same branch "
                "(Q1/Q2) under both",
                f"same branch {same}/{int(both.sum())}; Q1 under sum {int(np.sum(os_ == 0))}, "
                f"under mean {int(np.sum(om == 0))}", same == int(both.sum()),
                "" if same == int(both.sum()) else
                f"GD at lr {lr} on the sum loss can settle only where 2/λ_max > lr; Q1 points "
                "with a smaller edge are unstable for it, so it leaves them for Q2 (edges "
                f"there {np.nanmin(d.edge.sel(convention='sum').values):.3g}–"
                f"{np.nanmax(d.edge.sel(convention='sum').values):.3g})"))
    return out

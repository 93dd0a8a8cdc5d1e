"""Table 1 of Zhao, Bai & Zhang, measured: how often small initialization recovers the target
at each of the table's sample sizes of Example 1.

The table names n = 3 the optimistic sample size, n = 4 the separation sample size of Q2,
n = 5 that of Q1, and n = 6 the size where every global minimum lies in Q* (§3.2; its text
just above the table says the reverse — "the separation sample sizes of Q1 and Q2 are 4
and 5, respectively" — while §6 agrees with the table). Measured: n = 3, 4, 5, 6 points
evenly spaced on [−2, 2]; Gaussian initializations of scale 1e-8 from seeds 0…S−1 (Figure
1's σ = 1e-8 column, read from its store), plus the exact cases of §6, four seeds each:
"C1 = 0" (neuron 1's top-eigenvector component removed: c̃ = 0 to round-off, |C1|/‖C‖ ~
1e-16), "theta1 = 0" (an invariant set: one neuron for all t, the paper's c = +∞), "C1 = C2"
(c = 1) and "theta1 = theta2" (identical neurons, an invariant set: c̃ = 1 exactly).

Each run is Figure 1's flow, stopped where ℓ first reaches 1e-15 and continued to 1e-24,
classified by ``outcomes.outcome`` with Figure 4's criterion (RMS error ≤ 1e-8 on 1000
points of [−2, 2] at ℓ ≤ 1e-24; at 1e-15 an end point in Q* still has an RMS error ~2e-8).
The exact cases are grids too (``init.c_tilde`` = 0, 1; ``init.tie``).
"""

from __future__ import annotations

import numpy as np

from flowtools.experiments.claims import Claim
from flowtools.experiments.figures import fig1
from flowtools.experiments.outcomes import OUTCOMES

TITLE = "Table 1: recovery at the sample sizes of Example 1 (n = 3, 4, 5, 6)"
GD = False
# measured in `flowtools reproduce all` (full mode, idle 2-core CPU, cold JAX cache)
FULL_TIME = "21 s after fig1 (reads its store)"

NAMES = {3: "optimistic sample size", 4: "separation sample size of Q2",
         5: "separation sample size of Q1", 6: "Q* = ℓ⁻¹(0)"}
NS = (3, 4, 5, 6)
SCALE = 1e-8
STOPS = (1e-15, 1e-24)
OLD_TOL = 1e-7            # the earlier demo's criterion (RMS < 1e-7 at ℓ ≤ 1e-15)
KINDS = ("random", "C1 = 0", "theta1 = 0", "C1 = C2", "theta1 = theta2")
VARS = ("gen_error", "loss_final", "status", "steps", "stage_loss", "stage_gen_error",
        "stage_steps", "theta0", "theta_final")
N_SPECIAL = 4             # seeds per exact case


def grids(quick: bool) -> dict:
    """The exact cases of every n, flows as Figure 1's: ``c_tilde`` (C1 = 0, C1 = C2: c̃ = 0,
    1) and ``tie`` (θ1 = 0, θ1 = θ2: the draw put on an invariant set), dims (n, case, seed)."""
    t, mode = fig1.flow_tables(), "quick" if quick else "full"

    def grid(name, values):
        return dict(t, sweep={"name": f"table1_{mode}_{name}", "cells_per_task": N_SPECIAL},
                    problem=dict(t["problem"], n=list(NS)),
                    init={"scale": SCALE, name: values, "seed": list(range(N_SPECIAL))})

    return {"c_tilde": grid("c_tilde", [0.0, 1.0]), "tie": grid("tie", ["zero_first", "equal"])}


def compute(*, quick: bool, gd: bool, log=print, engine=None):
    import xarray as xr

    import flowtools as ft
    from flowtools.experiments.engine import Engine

    engine = engine or Engine(fig1.STORE_DIR, log=log)
    S = fig1.settings(quick)["seeds"]
    rnd = fig1.flows(quick, engine).sel(n=list(NS), scale=SCALE)    # (n, seed, …)
    cg, tg = engine.results(*grids(quick).values())
    parts = (rnd, cg.sel(c_tilde=0.0), tg.sel(tie="zero_first"), cg.sel(c_tilde=1.0),
             tg.sel(tie="equal"))                                     # in KINDS order
    both = xr.concat([xr.Dataset({v: p[v].variable for v in VARS}) for p in parts], "seed")
    R = {k: v.swapaxes(0, 1) for k, v in fig1.at_stops(both, STOPS).items()}  # n, stop, run
    th0, th = both.theta0.values[..., :6], both.theta_final.values[..., :6]
    kinds = np.repeat(KINDS, [S] + [N_SPECIAL] * 4)
    seeds = np.concatenate([np.arange(S)] + [np.arange(N_SPECIAL)] * 4)
    oc = fig1.outcomes(NS, th, R["loss"][:, -1], R["rms"][:, -1])
    pbs = [ft.example1(n) for n in NS]
    C = np.stack([pb.imbalance(t) for pb, t in zip(pbs, th0, strict=True)])
    with np.errstate(divide="ignore", invalid="ignore"):
        ct = np.stack([pb.ratio_tilde(t) for pb, t in zip(pbs, th0, strict=True)])
    ds = xr.Dataset(
        {**fig1.stop_vars(R, ("n", "stop_loss", "run")),
         "outcome": (("n", "run"), oc.astype("S21"),
                     {"long_name": f"outcomes.outcome at ℓ ≤ {STOPS[-1]:g}"}),
         "c_tilde": (("n", "run"), np.nan_to_num(ct, nan=0.0),
                     {"long_name": "c̃ = min(|c|, 1/|c|) at θ0"}),
         "abs_C1_over_normC": (("n", "run"), np.abs(C[..., 0]) / np.linalg.norm(C, axis=-1),
                               {"long_name": "|C1|/‖C‖ at θ0 (round-off size for C1 = 0)"}),
         "theta_end": (("n", "run", "param"), th,
                       {"long_name": f"end point at ℓ ≤ {STOPS[-1]:g}"})},
        coords={"n": list(NS), "stop_loss": list(STOPS),
                "run": np.arange(len(kinds)), "kind": (("run",), kinds.astype("S16")),
                "seed": (("run",), seeds), "param": ["a1", "w1", "b1", "a2", "w2", "b2"],
                "name": (("n",), np.array([NAMES[n].encode() for n in NS]))})
    ds.attrs.update(fig1.CRITERION.as_attrs())
    conv = bool((R["loss"][:, -1] <= fig1.CRITERION.loss_tol).all())
    ds.attrs.update(
        decided_at=f"finite horizon: the first time ℓ ≤ {STOPS[-1]:g} " + (
            "(every run reached it)" if conv else "(some runs did not: 'not converged')"),
        scale=SCALE, data="n points evenly spaced on [-2, 2]", loss_convention="sum",
        training="gradient flow, stopped at ℓ ≤ 1e-15 and continued to 1e-24",
        old_criterion=f"RMS < {OLD_TOL:g} at ℓ ≤ {STOPS[0]:g} (the earlier demo)",
        c1_zero_note="C1 = 0 is exact only to round-off (|C1|/‖C‖ stored); theta1 = 0 "
                     "and theta1 = theta2 are exact invariant sets of the flow")
    return ds


def _kind(ds):
    return ds.kind.values.astype(str)


def _rec(ds, n, kind=None):
    oc = ds.outcome.sel(n=n).values.astype(str)
    m = np.ones(len(oc), bool) if kind is None else _kind(ds) == kind
    return np.isin(oc[m], ("Q1", "Q2")), oc[m]


def plot(ds):
    import matplotlib.pyplot as plt

    ns = ds.n.values
    fig, axes = plt.subplots(1, len(ns), figsize=(4.1 * len(ns), 4.6), sharey=True,
                             constrained_layout=True)
    kinds = _kind(ds)
    colors = {"Q1": "C0", "Q2": "C1", "global min outside Q*": "C3", "not converged": "C7",
              "diverged": "k"}
    markers = {"random": "o", "C1 = 0": "<", "theta1 = 0": "s", "C1 = C2": ">",
               "theta1 = theta2": "D"}
    floor = ds.attrs["recovery_floor"]
    for ax, n in zip(axes, ns, strict=True):
        e = ds.rms_error.sel(n=n).values[-1]
        ct = ds.c_tilde.sel(n=n).values
        oc = ds.outcome.sel(n=n).values.astype(str)
        for kind in KINDS:
            for o in OUTCOMES:
                m = (kinds == kind) & (oc == o)
                if m.any():
                    ax.semilogy(ct[m], np.maximum(e[m], 1e-16), markers[kind], color=colors[o],
                                ms=4 if kind == "random" else 7, alpha=0.75,
                                mfc="none" if kind != "random" else colors[o],
                                label=f"{o}" if kind == "random" else f"{kind}: {o}")
        ax.axhline(floor, color="k", lw=0.8, ls="--")
        rec, _ = _rec(ds, n, "random")
        ax.set_title(f"n = {n}: {ds.name.sel(n=n).item().decode()}\nrandom seeds recovered "
                     f"{rec.mean():.0%} of {rec.size}", fontsize=10)
        ax.set_xlabel(r"$\tilde c = \min(|c|, 1/|c|)$ at initialization")
        ax.set_xlim(-0.04, 1.04)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6, loc="center right")
    axes[0].set_ylabel(f"RMS error at ℓ ≤ {ds.stop_loss.values[-1]:.0e}")
    fig.suptitle(f"Table 1 measured — Example 1, grid data, σ = {ds.attrs['scale']:g}, "
                 f"gradient flow; {ds.attrs['criterion']}; filled: random seeds, open: "
                 "exact c̃ = 0 / 1 cases", fontsize=10)
    return fig


def claims(ds):
    quick = int(np.sum(_kind(ds) == "random")) < 100

    def verdict(ok):
        return None if quick and ok else bool(ok)

    out = []
    ns = list(ds.n.values)

    def rec_str(n):
        r, oc = _rec(ds, n, "random")
        return (f"n = {n}: {int(r.sum())}/{r.size} random seeds recovered "
                f"(Q1 {int(np.sum(oc == 'Q1'))}, Q2 {int(np.sum(oc == 'Q2'))}, other global "
                f"minima {int(np.sum(oc == 'global min outside Q*'))}, not converged "
                f"{int(np.sum(oc == 'not converged'))})")

    def exact_str(n):
        return "; exact cases: " + ", ".join(
            f"{k} {int(_rec(ds, n, k)[0].sum())}/{int(_rec(ds, n, k)[0].size)}"
            for k in KINDS[1:])

    if 3 in ns:
        r, _ = _rec(ds, 3, "random")
        ex = {k: _rec(ds, 3, k)[0].all() for k in KINDS[1:]}
        ok = (not r.any()) and ex["theta1 = 0"] and ex["theta1 = theta2"]
        out.append(Claim(
            "Table 1 / §6: n = 3 is the optimistic sample size — recovery is possible, but "
            "solely at c̃ = 0 or c̃ = 1 (the network is then one neuron)",
            rec_str(3) + exact_str(3),
            verdict(ok),
            "" if ok else "a random c̃ ∈ (0, 1) recovers, or an exact c̃ = 0 / 1 case does not"
            + ("" if ex["C1 = C2"] and ex["C1 = 0"] else
               " (C1 = C2 or C1 = 0 alone, without the invariant set, do not recover at "
               "σ = 1e-8: the paper's argument needs the neurons identical / one at 0)")))
    if 4 in ns:
        r, oc = _rec(ds, 4, "random")
        ok = 0 < r.mean() < 1
        out.append(Claim(
            "Table 1 / §6: n = 4 is the separation sample size of Q2 (Q2 separated, Q1 not): "
            "recovery with positive probability, not for every initialization",
            rec_str(4) + exact_str(4), verdict(ok),
            "" if ok else f"recovered fraction {r.mean():.0%}"))
        nq1 = int(np.sum(oc == "Q1"))
        out.append(Claim(
            "§3.2 text vs Table 1: the text says 'the separation sample sizes of Q1 and Q2 "
            "are 4 and 5', the table (and §6) that n = 4 separates Q2 and n = 5 separates Q1",
            f"n = 4 recoveries: Q2 {int(np.sum(oc == 'Q2'))}, Q1 {nq1}",
            verdict(nq1 == 0 and np.sum(oc == "Q2") > 0),
            "" if nq1 == 0 else "Q1 end points are reached at n = 4: Q1 separated there?"))
    if 5 in ns:
        r, oc = _rec(ds, 5, "random")
        ok = r.any() and np.sum(oc == "Q1") > 0
        out.append(Claim(
            "Table 1 / §6: n = 5 is the separation sample size of Q1 (both separated): for "
            "some data every small initialization recovers (evenly spaced data here)",
            rec_str(5) + exact_str(5), verdict(ok),
            "" if ok else "no recovery to Q1 at n = 5"))
    if 6 in ns:
        r, _ = _rec(ds, 6)
        ok = bool(r.all())
        out.append(Claim(
            "Table 1 / §6: n = 6, Q* = ℓ⁻¹(0): every initialization recovers",
            rec_str(6) + exact_str(6), verdict(ok),
            "" if ok else "some n = 6 runs end outside Q*"))
    # the criterion: the old 1e-7 at ℓ ≤ 1e-15 against Figure 4's 1e-8 at ℓ ≤ 1e-24
    old = {int(n): float(np.mean(ds.rms_error.sel(n=n).values[0][_kind(ds) == "random"]
                                 < OLD_TOL)) for n in ns}
    new = {int(n): float(_rec(ds, n, "random")[0].mean()) for n in ns}
    at15 = {int(n): float(np.mean(ds.rms_error.sel(n=n).values[0][_kind(ds) == "random"]
                                  <= ds.attrs["recovery_floor"])) for n in ns}
    diff = {n: round((new[n] - old[n]) * int(np.sum(_kind(ds) == "random"))) for n in new}
    out.append(Claim(
        "(protocol, not a claim of the paper) the recovery criterion: Figure 4's RMS ≤ 1e-8, "
        "decided at ℓ ≤ 1e-24, against the earlier demo's RMS < 1e-7 at ℓ ≤ 1e-15",
        "recovered fraction (random seeds) with RMS ≤ 1e-8 at 1e-24 / RMS < 1e-7 at 1e-15 / "
        "RMS ≤ 1e-8 at 1e-15: " + ", ".join(
            f"n = {n}: {new[n]:.0%} / {old[n]:.0%} / {at15[n]:.0%}" for n in new),
        None,
        "at ℓ ≤ 1e-15 an end point in Q* still has RMS ≈ √(2ℓ/n) ≈ 2e-8 > 1e-8, so the 1e-8 "
        "criterion scores 0 % there; at 1e-24 it is decidable. Seeds that the old rule missed "
        "and the new one counts (slow runs whose error at ℓ = 1e-15 was still ≥ 1e-7): "
        + ", ".join(f"n = {n}: {d}" for n, d in diff.items())))
    return out

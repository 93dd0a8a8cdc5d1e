"""The ReLU CNN's small-v0 phase law tested on edges: one collapse variable, local slopes.

Shang, Meng, Cao & Zou (2024; summary in ``shared/papers/004_ec9bee8fb160c2af.txt``) state
that with a small output-layer initialization v0 the CNN overfits benignly when
m·v0²·‖µ‖²/σp = Ω̃(1), i.e. the benign edge ‖µ‖_edge ∝ v0⁻¹·m^{-1/2} (log factors hidden).
``flowtools.experiments.figures.cnn_phase`` measures test-error maps; this module measures the
*edge itself* where the law is tested:

* **Edges by refinement.** For each row (d, m, seed, K) the edge is the ‖µ‖ where the test
  error falls through ``level`` for the last time, bracketed by ``flowtools.sweep.refine``
  (a coarse ‖µ‖ grid, then multisection rounds, every round a stored sweep: resumable,
  Dask-ready). Its uncertainty is the final bracket; the seeds give the spread.
* **The collapse variable.** The rows are laid out on K = m·v0²·σp·√(d/n): for every m the
  v0 of a row is √(K/(m·σp·√(d/n))), so the m-curves share their K values and their
  spread at equal K is the collapse quality (``collapse``), compared with their spread at
  equal v0 (what the variable v0 alone would give).
* **Local slopes** d log ‖µ‖_edge / d log v0 between neighbouring rows (``local_slopes``),
  mean ± s.e. over seeds; the steepest one at the largest d/n gives the verdict
  (``verdict``): "consistent with −1", "levels near −0.5" or "−1 not reached at d/n ≤ …".
* **The logarithmic form** log(A·x) = (1 − x)·log(1/K), x = ‖µ‖/(σp·√(d/n)), one A per d/n,
  against a power law in v0 (two parameters per d/n) on the same rows (``compare_forms``).

Scaling with d (flowtools' choice, labelled so everywhere): σ0 = σ0_ref·√(d_ref/d) keeps
σ0·σp·√d, the initial preactivation, fixed; GD's η = η_ref·d_ref/d keeps η·λ_max at the end
of training (λ_max ∝ v²·σp²·d/n) where it is at d_ref, with the same iteration budget. The
cells run in the span coordinates of ``flowtools.models.relu_cnn`` (exact), so d = 2·10⁵
costs about what d = 10³ costs.

    flowtools reproduce cnn-phase [--quick]      # writes cnn_law.png beside cnn_phase.png
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

import numpy as np

from flowtools.errors import FlowtoolsError
from flowtools.fitting import fit_slope

__all__ = ["LawSettings", "benign_edge", "collapse", "compare_forms", "edges", "local_slopes",
           "log_form_x", "verdict"]


@dataclass(frozen=True)
class LawSettings:
    """Every number of an edge run (stored as attributes). Defaults: the full mode.

    The grid's values are flowtools' choice (the paper's own grid is not known here):
    n = 20, σp = 1, σ0 = 1e-5 at d = 1000, GD trained to loss ``loss_target``.
    """

    n: int = 20
    sigma_p: float = 1.0
    d_ref: int = 1000
    sigma0_ref: float = 1e-5
    lr_ref: float = 0.01
    stable_v0: float = 0.3  # η_v0 = min(η_d, η_d·(stable_v0/v0)²), as cnn_phase
    iterations: int = 20_000  # GD's budget at every d (flow time iterations·η_d)
    loss_target: float = 0.01
    n_test: int = 1000
    level: float = 0.25
    dns: tuple = (50, 500, 5000, 10000)  # d/n of the slope rows (m = m_slopes)
    m_slopes: int = 10
    collapse_dns: tuple = (50, 500)  # d/n of the collapse rows (every m of ms)
    ms: tuple = (3, 10, 40)
    Ks: tuple = tuple(np.geomspace(0.01, 30.0, 13).tolist())
    seeds: tuple = (0, 1, 2)  # up to few_seeds_above
    few_seeds: tuple = (0, 1)  # for d/n > few_seeds_above
    few_seeds_above: float = 500
    xs: tuple = tuple(np.geomspace(0.05, 2.0, 9).tolist())  # round 0: ‖µ‖/(σp√(d/n))
    rounds: int = 4
    points: int = 2
    mode: str = "full"

    @classmethod
    def quick(cls) -> LawSettings:
        return cls(n_test=500, dns=(15, 50), collapse_dns=(15,), ms=(3, 12),
                   Ks=tuple(np.geomspace(0.03, 10.0, 5).tolist()), seeds=(0, 1),
                   few_seeds=(0, 1), xs=tuple(np.geomspace(0.1, 2.0, 6).tolist()),
                   rounds=2, iterations=8000, mode="quick")

    def __post_init__(self):
        if not 0 < self.level < 0.5:
            raise FlowtoolsError(f"level must be in (0, 0.5) (chance is 0.5), got {self.level}.")
        if min(self.dns + self.collapse_dns) <= 1:
            raise FlowtoolsError("every d/n must exceed 1 (the patch model needs d > n).")

    def as_attrs(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    # the scaled settings of one d (flowtools' choice, see the module docstring)
    def d_of(self, dn: float) -> int:
        return int(round(dn * self.n))

    def sigma0(self, d: int) -> float:
        return self.sigma0_ref * math.sqrt(self.d_ref / d)

    def lr(self, d: int) -> float:
        return self.lr_ref * self.d_ref / d

    def seeds_of(self, dn: float) -> tuple:
        return self.seeds if dn <= self.few_seeds_above else self.few_seeds

    def v0s(self, dn: float, m: int) -> np.ndarray:
        """v0 = √(K/(m·σp·√(d/n))) for every K of ``Ks``."""
        return np.sqrt(np.asarray(self.Ks) / (m * self.sigma_p * math.sqrt(dn)))

    def rows(self) -> list[tuple[float, int]]:
        """The (d/n, m) pairs run: m_slopes at every d/n, every m at the collapse d/n."""
        pairs = {(dn, self.m_slopes) for dn in self.dns}
        pairs |= {(dn, m) for dn in self.collapse_dns for m in self.ms}
        return sorted(pairs)


def benign_edge(store, *, n: int, d: int, m: int, v0, mus, sigma0: float,
                sigma_p: float = 1.0, seeds=(0,), lr: float = 0.01, stable_v0=0.3,
                max_iter: int = 20_000, loss_target: float = 0.01, n_test: int = 1000,
                level: float = 0.25, rounds: int = 4, points: int = 2, name: str = "",
                executor="local", workers=None, log=print):
    """The benign edge of the ReLU CNN for each data seed and v0: the ‖µ‖ where the test
    error of GD trained to loss ≤ ``loss_target`` falls through ``level`` for the last time.

    Round 0 trains every (seed, ‖µ‖ ∈ ``mus``, v0) cell (family ``relu_cnn``, GD with
    η_v0 = min(lr, lr·(stable_v0/v0)²), at most ``max_iter`` iterations); then
    ``flowtools.sweep.refine`` bisects (``points`` probes per round, ``rounds`` rounds) each
    row's last bracket, every round stored under ``store`` (resumable; ``executor`` and
    ``workers`` as in ``run_sweep``). Returns an ``xarray.Dataset`` over (data_seed, v0):
    ``edge`` (interpolated in log ‖µ‖ inside the bracket), ``lo``/``hi`` (the bracket; its
    width shrinks by (points + 1)^rounds from the ``mus`` spacing), ``converged`` (the
    fraction of the row's round-0 cells that reached the loss target) and every probe;
    ``edge.std("data_seed")`` is the seeds' spread."""
    import pathlib

    from flowtools.sweep.refine import refine
    from flowtools.sweep.store import open_results

    v0s = [float(v) for v in np.atleast_1d(v0)]
    tables = {
        "sweep": {"name": name or "cnn_edge", "family": "relu_cnn",
                  "cells_per_task": len(v0s),
                  "description": f"ReLU CNN benign edge, n = {n}, d = {d}, m = {m}"},
        "problem": {"n": n, "dim": d, "width": m, "sigma_p": sigma_p, "n_test": n_test,
                    "data_seed": [int(x) for x in seeds],
                    "mu_norm": [float(x) for x in mus]},
        "init": {"sigma0": sigma0, "v0": v0s},
        "integrator": {"dynamics": "gd", "lr": lr, "stable_v0": stable_v0,
                       "max_iter": max_iter, "loss_threshold": loss_target},
    }
    store = pathlib.Path(store)
    res = refine(tables, "mu_norm", "test_error", level, store, rounds=rounds, points=points,
                 crossing="last", executor=executor, workers=workers, log=log)
    res = res.transpose("data_seed", "v0", ...).rename(estimate="edge")
    r0 = open_results(store / "round0.zarr", lazy=False)
    res["converged"] = (r0["loss_final"] <= loss_target).mean("mu_norm").transpose(
        "data_seed", "v0")
    res["edge"].attrs["long_name"] = f"benign edge ‖µ‖ (test error falls through {level})"
    return res


def edges(s: LawSettings, store_dir, *, executor="local", workers=None, log=print):
    """``benign_edge`` for every (d/n, m) of ``s.rows()`` (stores under ``store_dir``,
    resumed; v0 from the K grid, σ0 and η scaled with d); returns an ``xarray.Dataset``
    with dims (dn, m, seed, K): ``edge``, ``lo``/``hi``, ``v0`` and ``converged``."""
    import pathlib

    import xarray as xr

    store_dir = pathlib.Path(store_dir)
    dns = sorted({dn for dn, _ in s.rows()})
    ms = sorted({m for _, m in s.rows()})
    seeds = sorted(set(s.seeds) | set(s.few_seeds))
    shape = (len(dns), len(ms), len(seeds), len(s.Ks))
    out = {k: np.full(shape, np.nan) for k in ("edge", "lo", "hi", "v0", "converged")}
    for dn, m in s.rows():
        d = s.d_of(dn)
        name = f"cnn_law_{s.mode}_dn{dn:g}_m{m}"
        res = benign_edge(store_dir / name, n=s.n, d=d, m=m, v0=s.v0s(dn, m),
                          mus=s.sigma_p * math.sqrt(dn) * np.asarray(s.xs),
                          sigma0=s.sigma0(d), sigma_p=s.sigma_p, seeds=s.seeds_of(dn),
                          lr=s.lr(d), stable_v0=s.stable_v0, max_iter=s.iterations,
                          loss_target=s.loss_target, n_test=s.n_test, level=s.level,
                          rounds=s.rounds, points=s.points, name=name, executor=executor,
                          workers=workers, log=log)
        a, b = dns.index(dn), ms.index(m)
        idx = [seeds.index(int(x)) for x in res["data_seed"].values]
        for k in ("edge", "lo", "hi", "converged"):
            out[k][a, b, idx] = res[k].values
        out["v0"][a, b, idx] = res["v0"].values[None, :]
    dims = ("dn", "m", "seed", "K")
    ds = xr.Dataset({k: (dims, v) for k, v in out.items()},
                    coords=dict(dn=np.asarray(dns, float), m=np.asarray(ms),
                                seed=np.asarray(seeds), K=np.asarray(s.Ks)))
    ds["edge"].attrs["long_name"] = f"benign edge ‖µ‖ (test error falls through {s.level})"
    ds["K"].attrs["long_name"] = "K = m·v0²·σp·√(d/n)"
    return ds


# ---------------------------------------------------------------------- analysis
def collapse(ds, dn: float) -> dict:
    """How well K collapses the m-curves at one d/n, per seed (one data draw, every m): the
    largest spread (max − min over m) of log ‖µ‖_edge at equal K, against the largest
    spread at equal v0 (each m-curve interpolated linearly in log v0 on the overlap);
    means over the seeds with at least two m-curves, as relative spreads exp(spread) − 1."""
    e = ds["edge"].sel(dn=dn)
    ms = [int(m) for m in e["m"].values if np.isfinite(e.sel(m=m)).any()]
    at_K, at_v = [], []
    for seed in e["seed"].values:
        logs = np.log(np.stack([e.sel(m=m, seed=seed).values for m in ms])) if ms else \
            np.zeros((0, 0))
        keep = np.isfinite(logs).sum(1) > 1
        if keep.sum() < 2:
            continue
        logs = logs[keep]
        lv = np.log(np.stack([ds["v0"].sel(dn=dn, m=m, seed=seed).values for m in ms]))[keep]
        with np.errstate(invalid="ignore"):
            at_K.append(np.nanmax(np.nanmax(logs, 0) - np.nanmin(logs, 0)))
        lo, hi = np.max(lv.min(1)), np.min(lv.max(1))
        if hi <= lo:
            continue
        grid = np.linspace(lo, hi, 25)
        curves = np.stack([np.interp(grid, lv[a][np.isfinite(logs[a])],
                                     logs[a][np.isfinite(logs[a])]) for a in range(len(logs))])
        at_v.append(np.max(curves.max(0) - curves.min(0)))
    return dict(ms=ms, seeds=len(at_K),
                at_equal_K=float(np.expm1(np.mean(at_K))) if at_K else np.nan,
                at_equal_v0=float(np.expm1(np.mean(at_v))) if at_v else np.nan)


def local_slopes(ds, dn: float, m: int) -> dict:
    """d log ‖µ‖_edge / d log v0 between neighbouring rows at one (d/n, m), per seed; mean
    and standard error over seeds per interval; the steepest interval (most negative mean)."""
    e = ds["edge"].sel(dn=dn, m=m)
    v0 = ds["v0"].sel(dn=dn, m=m)
    keep = np.isfinite(e).any("K").values
    le, lv = np.log(e.values[keep]), np.log(v0.values[keep])  # (seed, K)
    slopes = np.diff(le, axis=1) / np.diff(lv, axis=1)
    n = np.sum(np.isfinite(slopes), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(slopes, axis=0) if slopes.size else slopes
        sd = np.nanstd(slopes, axis=0, ddof=1) if slopes.shape[0] > 1 else np.full(
            slopes.shape[1], np.nan)
        se = sd / np.sqrt(n)
    mids = np.exp((lv[:, 1:] + lv[:, :-1]) / 2).mean(0) if lv.size else np.array([])
    ok = np.isfinite(mean)
    i = int(np.nanargmin(np.where(ok, mean, np.inf))) if ok.any() else -1
    return dict(v0_mid=mids.tolist(), mean=mean.tolist(), stderr=se.tolist(),
                seeds=int(slopes.shape[0]),
                steepest=float(mean[i]) if i >= 0 else np.nan,
                steepest_stderr=float(se[i]) if i >= 0 else np.nan,
                steepest_v0=[float(np.exp(lv[:, i].mean())), float(np.exp(lv[:, i + 1].mean()))]
                if i >= 0 else [np.nan, np.nan])


def verdict(steepest: float, stderr: float, previous: float | None = None,
            dn: float | None = None) -> str:
    """The phase law's verdict from the steepest local slope (± s.e.) at the largest d/n:
    within 2 s.e. (at least 0.05) of −1: "consistent with −1"; else, within that of −0.5
    and not steeper than at the previous d/n by more than it: "levels near −0.5"; else
    "−1 not reached at d/n ≤ …"."""
    tol = max(2 * (stderr if np.isfinite(stderr) else 0.0), 0.05)
    if abs(steepest + 1) <= tol:
        return "consistent with −1"
    if abs(steepest + 0.5) <= tol and (previous is None or steepest >= previous - tol):
        return "levels near −0.5"
    return f"−1 not reached at d/n ≤ {dn:g}" if dn is not None else "−1 not reached"


def log_form_x(K, A: float) -> np.ndarray:
    """x ∈ (0, 1) solving log(A·x) = (1 − x)·log(1/K), A > 1 (bisection in log x on
    [1e-6, 1]: g(x) = log(A·x) − (1 − x)·log(1/K) has g(1) = log A > 0 and rises with x
    for K ≤ e, so the root is unique there; x → 1 as K → 0 and x = 1/A at K = 1).
    NaN where [1e-6, 1] holds no sign change."""
    K = np.asarray(K, float)
    lo, hi = np.full(K.shape, np.log(1e-6)), np.zeros(K.shape)

    def g(lx):
        return np.log(A) + lx - (1 - np.exp(lx)) * np.log(1 / K)

    for _ in range(80):
        mid = (lo + hi) / 2
        up = g(mid) > 0
        hi, lo = np.where(up, mid, hi), np.where(up, lo, mid)
    x = np.exp((lo + hi) / 2)
    bad = (g(np.full(K.shape, np.log(1e-6))) > 0) | (g(np.zeros(K.shape)) < 0)
    return np.where(bad, np.nan, x)


def compare_forms(ds, dn: float, m: int, sigma_p: float) -> dict:
    """The logarithmic form (one A per d/n, least squares in log x) against a power law
    ‖µ‖_edge = c·v0^s (two parameters) on the seed-mean edges of one (d/n, m) inside the
    window (rows with K ≤ 1, where log(1/K) ≥ 0): rms of the log residuals of each."""
    e = ds["edge"].sel(dn=dn, m=m).mean("seed").values
    v0 = ds["v0"].sel(dn=dn, m=m).mean("seed").values
    K = ds["K"].values
    ok = np.isfinite(e) & (K <= 1)
    if ok.sum() < 3:
        return dict(points=int(ok.sum()), A=np.nan, rms_log=np.nan, power_slope=np.nan,
                    power_intercept=np.nan, power_rms_log=np.nan)
    x = e[ok] / (sigma_p * math.sqrt(dn))
    logA = np.median((1 - x) * np.log(1 / K[ok]) - np.log(x))
    for _ in range(30):  # Gauss–Newton on log A for Σ (log x_fit − log x)²
        xf = log_form_x(K[ok], math.exp(logA))
        r = np.log(xf) - np.log(x)
        # d log x / d log A = −1 / (1 + x·log(1/K)) from the implicit equation
        J = -1 / (1 + xf * np.log(1 / K[ok]))
        step = -np.sum(J * r) / np.sum(J * J)
        logA += step
        if abs(step) < 1e-12:
            break
    xf = log_form_x(K[ok], math.exp(logA))
    pw = fit_slope(v0[ok], e[ok])
    pres = np.log(e[ok]) - (pw.intercept + pw.slope * np.log(v0[ok]))
    return dict(points=int(ok.sum()), A=float(math.exp(logA)),
                rms_log=float(np.sqrt(np.mean((np.log(xf) - np.log(x)) ** 2))),
                power_slope=float(pw.slope), power_intercept=float(pw.intercept),
                power_rms_log=float(np.sqrt(np.mean(pres**2))))


def stages(phase, v0_max: float = 0.01) -> list[dict]:
    """The two stages on the GD trajectories of ``cnn_phase`` (``traj_*``), for v0 ≤ v0_max.

    Stage 1 ends at T1, the first recorded time at which some sample's margin y_i·f_i
    reaches 1 (−ℓ' = 1/(1+e) ≈ 0.27): up to T1 the loss derivative −ℓ'(y_i f_i) lies in
    [0.27, 1) on every sample by construction (the recorded range over t < T1 is reported),
    so the measured content is how much of the
    training happens in stage 1 — ``growth_stage1``: the fraction of the growth of
    log ‖W − W(0)‖ (from the first recorded step to the end) reached by T1 — and the range
    of −ℓ' there. Stage 2 (t ≥ T1): ``ratio_change`` = max/min − 1 of the median layer
    ratio |⟨w_{y_i,r}, ξ_i⟩ / v_{y_i,r,2}| over the recorded times in [T1, end]."""
    out = []
    for a, v0 in enumerate(phase["traj_v0"].values):
        if v0 > v0_max:
            continue
        t = phase["traj_t"].values[a]
        lo, hi = phase["traj_dloss_min"].values[a], phase["traj_dloss_max"].values[a]
        dW, br = phase["traj_dW"].values[a], phase["traj_balance_ratio"].values[a]
        ok = np.isfinite(t) & np.isfinite(lo) & (t > 0)
        t, lo, hi, dW, br = t[ok], lo[ok], hi[ok], dW[ok], br[ok]
        end1 = np.flatnonzero(lo <= 1 / (1 + math.e))
        i1 = int(end1[0]) if end1.size else len(t) - 1
        growth = (np.log(dW[i1]) - np.log(dW[0])) / (np.log(dW[-1]) - np.log(dW[0]))
        r2 = br[i1:]
        out.append(dict(v0=float(v0), T1=float(t[i1]), T_end=float(t[-1]),
                        dloss_stage1=[float(lo[:max(i1, 1)].min()),
                                      float(hi[:max(i1, 1)].max())],
                        growth_stage1=float(growth),
                        ratio_change=float(r2.max() / r2.min() - 1) if r2.size else np.nan))
    return out


# ---------------------------------------------------------------------- results
def analyse(law, s: LawSettings, phase=None) -> dict:
    """Every number of the law's verdict from an ``edges`` dataset: the collapse at each
    collapse d/n, the local slopes at each d/n (m = m_slopes), the verdict at the largest
    d/n, the two forms' residuals, and (given ``cnn_phase``'s dataset ``phase``) the
    ``stages``. Rows in which some round-0 cell did not reach the loss
    target (GD could not fit every sample: a dead sample, no filter active on it) are left
    out and counted (``excluded_rows``)."""
    usable = law["converged"] >= 1  # rows where GD reached the loss target in every cell
    excluded = int((np.isfinite(law["edge"]) & ~usable).sum())
    law = law.assign(edge=law["edge"].where(usable))
    out = {"excluded_rows": excluded,
           "collapse": {f"{dn:g}": collapse(law, dn) for dn in s.collapse_dns},
           "slopes": {f"{dn:g}": local_slopes(law, dn, s.m_slopes) for dn in s.dns},
           "forms": {f"{dn:g}": compare_forms(law, dn, s.m_slopes, s.sigma_p)
                     for dn in s.dns}}
    dns = sorted(s.dns)
    last = out["slopes"][f"{dns[-1]:g}"]
    prev = out["slopes"][f"{dns[-2]:g}"]["steepest"] if len(dns) > 1 else None
    out["verdict"] = verdict(last["steepest"], last["steepest_stderr"], prev, dns[-1])
    out["stages"] = stages(phase) if phase is not None else []
    return out


def _pm(x, se) -> str:
    return f"{x:+.2f} ± {se:.2f}" if np.isfinite(se) else f"{x:+.2f}"


def claims(phase, law, s: LawSettings, found: dict) -> list:
    """The claims table of ``reproduce cnn-phase`` (``flowtools.experiments.claims``)."""
    from flowtools.experiments.claims import Claim

    fits = json.loads(phase.attrs["fits"])
    out = []
    fp, ft = fits["paper"]["dn_large_v0"], fits["trained"]["dn_large_v0"]
    if s.mode != "full":
        ok, why = None, "quick mode: too few d/n values"
    elif not np.isfinite(fp["stderr"]):
        ok, why = None, "no standard error (fewer than two seeds)"
    else:
        ok = bool(abs(fp["slope"] - 0.25) <= 2 * fp["stderr"])
        why = "" if ok else "the paper protocol's exponent is more than 2 s.e. from 1/4"
    out.append(Claim(
        "§3: large v0, benign iff ‖µ‖⁴/σp⁴ = Ω̃(d/n): edge ∝ (d/n)^{1/4}",
        f"exponent {_pm(fp['slope'], fp['stderr'])} (paper protocol), "
        f"{_pm(ft['slope'], ft['stderr'])} (trained), over d/n = "
        f"{', '.join(f'{d:g}' for d in np.asarray(phase['d'].values) / s.n)}", ok, why))
    col = found["collapse"]
    worst = max((c["at_equal_K"] for c in col.values()), default=np.nan)
    ref = min((c["at_equal_v0"] for c in col.values()), default=np.nan)
    out.append(Claim(
        "§3: small v0, the condition m·v0²·‖µ‖²/σp = Ω̃(1) — m and v0 enter only through m·v0²",
        "; ".join(f"d/n = {k}, m = {c['ms']}: spread of the edge over m "
                  f"{100 * c['at_equal_K']:.1f} % at equal K = m·v0²·σp√(d/n) vs "
                  f"{100 * c['at_equal_v0']:.0f} % at equal v0 (mean over {c['seeds']} seeds)"
                  for k, c in col.items()),
        bool(worst <= 0.1 and worst < ref) if np.isfinite(worst) else None,
        ("" if worst <= 0.1 else "the m-curves differ by more than 10 % at equal K. ")
        + (f"{found['excluded_rows']} row(s) left out: GD did not fit every sample in some "
           "cell (a sample no filter is active on)" if found["excluded_rows"] else "")))
    sl = found["slopes"]
    out.append(Claim(
        "§3: small v0, benign edge ∝ v0⁻¹ (m·v0²·‖µ‖² = const; Ω̃ hides log factors)",
        "steepest local slope d log‖µ‖/d log v0: " + "; ".join(
            f"d/n = {k}: {_pm(v['steepest'], v['steepest_stderr'])} (v0 "
            f"{v['steepest_v0'][0]:.2g}–{v['steepest_v0'][1]:.2g}, {v['seeds']} seeds)"
            for k, v in sl.items()) + f" → {found['verdict']}",
        True if found["verdict"] == "consistent with −1" else None,
        "the slope is not −1 inside the window reached here; a shallower slope does not by "
        "itself contradict Ω̃(1), whose log factors may include log(1/v0). Log form vs power "
        "law (rms of log residuals): " + "; ".join(
            f"d/n = {k}: {f['rms_log']:.3f} (A = {f['A']:.3g}) vs {f['power_rms_log']:.3f} "
            f"(slope {f['power_slope']:+.2f})" for k, f in found["forms"].items())
        if found["verdict"] != "consistent with −1" else ""))
    st = found["stages"]
    if st:
        g = min(x["growth_stage1"] for x in st)
        out.append(Claim(
            "§4.2: stage 1 — the loss derivative is of constant order on all samples",
            "; ".join(f"v0 = {x['v0']:g}: −ℓ' ∈ [{x['dloss_stage1'][0]:.2f}, "
                      f"{x['dloss_stage1'][1]:.2f}] on every sample until T1 = {x['T1']:.3g} "
                      f"(first margin 1), by which ‖W − W(0)‖ has made "
                      f"{100 * x['growth_stage1']:.0f} % of its log growth" for x in st),
            bool(g >= 0.5),
            "stage 1 is T1 by this definition (flowtools'); the verdict asks that most of "
            "the growth (≥ 50 % on a log scale) happens in it"))
        r = max(x["ratio_change"] for x in st)
        out.append(Claim(
            "§4.3: stage 2 — the layer ratio ⟨w_{y_i,r}, ξ_i⟩/v_{y_i,r,2} stays constant",
            "; ".join(f"v0 = {x['v0']:g}: median ratio varies by {100 * x['ratio_change']:.0f} % "
                      f"over t ∈ [{x['T1']:.3g}, {x['T_end']:.3g}]" for x in st),
            bool(r <= 0.2), "" if r <= 0.2 else "it varies by more than 20 %"))
    return out


def _plain_log(axis) -> None:
    """Log-axis ticks at 1, 2, 5 × 10^k labelled as plain numbers (0.02, 0.05, 0.1, …)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    axis.set_minor_formatter(NullFormatter())


def plot(law, phase, s: LawSettings, found: dict):
    """Six panels: (a) the collapse — edge/(σp√(d/n)) against K for every (d/n, m); (b)
    local slopes against v0 per d/n; (c) the steepest slope against d/n with the verdict;
    (d) the edges at the largest d/n with both fitted forms; (e) stage 1: the range of
    −ℓ'(y_i f_i) over samples against time; (f) stage 2: the layer ratio over time."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(17, 10))
    law = law.assign(edge=law["edge"].where(law["converged"] >= 1))  # as ``analyse``
    dns = law["dn"].values
    colors = dict(zip(dns, plt.cm.viridis(np.linspace(0, 0.85, len(dns))), strict=True))
    m_colors = dict(zip(law["m"].values, ("tab:red", "tab:blue", "tab:green", "tab:purple",
                                          "tab:orange"), strict=False))
    markers = dict(zip(dns, "os^Dv<>", strict=False))
    K = law["K"].values
    ax = axes[0, 0]
    for dn in dns:
        for m in law["m"].values:
            e = law["edge"].sel(dn=dn, m=m) / (s.sigma_p * math.sqrt(dn))
            if not np.isfinite(e).any():
                continue
            mean = e.mean("seed").values
            lo, hi = e.min("seed").values, e.max("seed").values
            ax.errorbar(K, mean, yerr=[mean - lo, hi - mean], fmt=markers[dn] + "-",
                        color=m_colors[m], ms=4, lw=1, capsize=2, mfc="none",
                        label=f"d/n = {dn:g}, m = {m}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log(ax.xaxis)
    _plain_log(ax.yaxis)
    ax.set_xlabel(r"$K = m\,v_0^2\,\sigma_p\sqrt{d/n}$")
    ax.set_ylabel(r"edge $\|\mu\|_2 / (\sigma_p\sqrt{d/n})$")
    col = "\n".join(f"d/n = {k}: spread over m {100 * c['at_equal_K']:.1f} % at equal K, "
                    f"{100 * c['at_equal_v0']:.0f} % at equal v0"
                    for k, c in found["collapse"].items())
    ax.set_title(f"(a) collapse in K (seed range)\n{col}\n{found['excluded_rows']} row(s) "
                 "left out (GD did not fit every sample)", fontsize=8.5)
    ax.legend(fontsize=6.5, ncol=2)
    ax = axes[0, 1]
    for dn in s.dns:
        sl = found["slopes"][f"{dn:g}"]
        ax.errorbar(sl["v0_mid"], sl["mean"], yerr=sl["stderr"], fmt="o-", ms=4, capsize=2,
                    color=colors[dn], label=f"d/n = {dn:g} ({sl['seeds']} seeds)")
    for y, txt in ((-1, "stated −1"), (-0.5, "−1/2")):
        ax.axhline(y, color="k", ls="--" if y == -1 else ":", lw=0.9, label=txt)
    ax.set_xscale("log")
    _plain_log(ax.xaxis)
    ax.set_xlabel(r"$v_0$ (interval midpoint), m = " + str(s.m_slopes))
    ax.set_ylabel(r"local slope $d\log\|\mu\|_{edge}/d\log v_0$ (mean ± s.e.)")
    ax.set_title("(b) local slopes of the edge in v0", fontsize=10)
    ax.legend(fontsize=7)
    ax = axes[0, 2]
    st = [found["slopes"][f"{dn:g}"] for dn in s.dns]
    ax.errorbar(s.dns, [x["steepest"] for x in st], yerr=[x["steepest_stderr"] for x in st],
                fmt="ko-", capsize=3, label="steepest local slope (mean ± s.e.)")
    ax.axhline(-1, color="r", ls="--", lw=1, label="stated −1")
    ax.axhline(-0.5, color="b", ls=":", lw=1, label="−1/2")
    ax.set_xscale("log")
    _plain_log(ax.xaxis)
    ax.set_xlabel(f"d/n (n = {s.n}; d up to {s.d_of(max(s.dns))})")
    ax.set_ylabel("steepest local slope")
    ax.set_title(f"(c) verdict: {found['verdict']}", fontsize=10)
    ax.legend(fontsize=7)
    ax = axes[1, 0]
    dn = max(s.dns)
    e = law["edge"].sel(dn=dn, m=s.m_slopes)
    v0 = law["v0"].sel(dn=dn, m=s.m_slopes).mean("seed").values
    ax.errorbar(v0, e.mean("seed").values, yerr=[e.mean("seed").values - e.min("seed").values,
                e.max("seed").values - e.mean("seed").values], fmt="ko", ms=4, capsize=2,
                label="edge (seed range)")
    f = found["forms"][f"{dn:g}"]
    if np.isfinite(f["A"]):
        Kf = np.geomspace(K.min(), min(K.max(), 1.0), 60)
        vf = np.sqrt(Kf / (s.m_slopes * s.sigma_p * math.sqrt(dn)))
        ax.plot(vf, s.sigma_p * math.sqrt(dn) * log_form_x(Kf, f["A"]), "r-", lw=1.2,
                label=f"log form, A = {f['A']:.3g}: rms {f['rms_log']:.3f}")
        w = K <= 1
        ax.plot(v0[w], np.exp(f["power_intercept"]) * v0[w] ** f["power_slope"], "b--", lw=1.2,
                label=f"power law, slope {f['power_slope']:+.2f}: rms {f['power_rms_log']:.3f}")
    ax.axhline(s.sigma_p * math.sqrt(dn), color="gray", ls=":", lw=1, label=r"$\sigma_p\sqrt{d/n}$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log(ax.xaxis)
    _plain_log(ax.yaxis)
    ax.set_xlabel(r"$v_0$")
    ax.set_ylabel(r"benign edge $\|\mu\|_2$")
    ax.set_title(f"(d) edges at d/n = {dn:g}, m = {s.m_slopes}; fits on K ≤ 1", fontsize=10)
    ax.legend(fontsize=7)
    ax = axes[1, 1]
    tv = phase["traj_v0"].values
    for a, v in enumerate(tv):
        t = phase["traj_t"].values[a]
        ax.fill_between(t[1:], phase["traj_dloss_min"].values[a, 1:],
                        phase["traj_dloss_max"].values[a, 1:], alpha=0.3,
                        label=f"v0 = {v:g}")
    ax.axhline(1 / (1 + math.e), color="k", ls=":", lw=1, label="margin 1 (end of stage 1)")
    ax.set_xscale("log")
    ax.set_xlabel("flow time t = k·η")
    ax.set_ylabel(r"$-\ell'(y_i f_i)$: range over the n samples")
    ax.set_title("(e) stage 1: the loss derivative on every sample", fontsize=10)
    ax.legend(fontsize=7)
    ax = axes[1, 2]
    for a, v in enumerate(tv):
        t, br = phase["traj_t"].values[a], phase["traj_balance_ratio"].values[a]
        ax.loglog(t[1:], br[1:], "-", lw=1.4, label=f"v0 = {v:g}")
    for x in found["stages"]:
        ax.axvline(x["T1"], color="gray", ls=":", lw=0.8)
    ax.set_xlabel("flow time t = k·η (dotted: T1 of the small-v0 runs)")
    ax.set_ylabel(r"median $|\langle w_{y_i,r},\xi_i\rangle / v_{y_i,r,2}|$")
    ax.set_title("(f) stage 2: the layer ratio", fontsize=10)
    ax.legend(fontsize=7)
    fig.suptitle(f"ReLU CNN, small-v0 law on refined edges ({s.mode} mode; flowtools' grid: "
                 f"n = {s.n}, σp = {s.sigma_p}, σ0 = {s.sigma0_ref:g}·√({s.d_ref}/d), "
                 f"η = {s.lr_ref}·{s.d_ref}/d, GD to loss ≤ {s.loss_target})", fontsize=11)
    fig.tight_layout()
    return fig


def summary_lines(found: dict) -> list[str]:
    """The law's numbers for the note."""
    lines = ["phase law (small v0):"]
    for k, c in found["collapse"].items():
        lines.append(f"  collapse d/n={k}, m={c['ms']}: spread {100 * c['at_equal_K']:.2f} % "
                     f"at equal K, {100 * c['at_equal_v0']:.1f} % at equal v0")
    for k, v in found["slopes"].items():
        lines.append(f"  d/n={k}: steepest local slope {_pm(v['steepest'], v['steepest_stderr'])}"
                     f" at v0 {v['steepest_v0'][0]:.3g}–{v['steepest_v0'][1]:.3g} "
                     f"({v['seeds']} seeds); all: " + ", ".join(
                         f"{m:+.2f}" for m in v["mean"]))
    for k, f in found["forms"].items():
        lines.append(f"  d/n={k}: log form rms {f['rms_log']:.4f} (A={f['A']:.3g}) vs power law "
                     f"rms {f['power_rms_log']:.4f} (slope {f['power_slope']:+.3f}), "
                     f"{f['points']} points")
    lines.append(f"  verdict: {found['verdict']}; {found['excluded_rows']} row(s) left out "
                 "(GD did not fit every sample)")
    return lines

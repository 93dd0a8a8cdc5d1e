"""The phase diagram of Shang, Meng, Cao & Zou (2024): benign vs harmful overfitting of the
fully trainable two-layer ReLU CNN over the output-layer initialization v0 and ‖µ‖.

Model and data: ``flowtools.models.relu_cnn`` (``ReluCNN`` on ``PatchData``). Each cell
(seed, v0, ‖µ‖) is trained twice from the same θ0 (filters N(0, σ0²I) from the seed,
v_{j,r,p} = v0; the seed also draws y, ξ and the 1000 test points, shared by every ‖µ‖):

* ``paper``: GD with the paper's protocol, η = 0.01, T = 200 iterations;
* ``trained``: GD run to training loss ≤ ``loss_target`` with η_v0 = min(η, η·(v*/v0)²),
  v* = ``stable_v0`` = 0.3. GD's stability edge 2/λ_max(θ0) falls like 1/v0² for v0 ≳ 0.3
  (λ_max(θ0) is computed by ``flowtools.curvature``, Lanczos on Hessian-vector products, for
  every v0 and stored: 208 at v0 = 1, 2.1e4 at v0 = 10 in full mode, seed 0), so this keeps
  η_v0·λ_max/2 ≈ 0.1 and the run a discretization of the flow (checked against
  ``solve_flow`` on a few cells in full mode). The paper's η = 0.01 has η·λ_max/2 > 1 —
  beyond GD's stability edge — for v0 ≳ 1.

The benign edge of a row (fixed v0, or d, or m) is the ‖µ‖ at which the test error falls
through ``level`` for the last time (linear interpolation in log ‖µ‖), one per seed.
Stated boundaries (the paper, as summarized):

* large v0:  ‖µ‖⁴/σp⁴ = C_L·d/n   (v0-independent; ‖µ‖_edge ∝ (d/n)^{1/4})
* small v0:  m·v0²·‖µ‖²/σp = C_S   (‖µ‖_edge ∝ v0⁻¹ and ∝ m^{−1/2})

C_L and C_S are fitted as the median over seeds and rows of the measured edges inserted
into these formulas; the three exponents are fitted per seed (``flowtools.fitting.fit_slope``
on log–log axes) and reported as mean ± standard error over seeds. Also drawn (dotted): the
v0-independent balance of the linearized escape rates from small initialization (signal
‖µ‖/4 against noise σp√d/(4√n) per filter, this module's derivation, not the paper's),
‖µ‖ = σp·√(d/n).

The cells run on the sweep engine (``flowtools.sweep``, family ``relu_cnn``): one grid
per scan (main: seed × ‖µ‖ × v0; d/n: seed × d × ‖µ‖ × v0 ∈ {v0_small, v0_large}; m:
seed × m × ‖µ‖ at v0_m) and protocol (``grids``), each a zarr store under
``OUT/cnn_phase_store/MODE/`` (``flowtools.experiments.engine.Engine``: named by the grid
and its definition's key, resumed — a second call computes nothing, an interrupted one
continues where it stopped; ``executor``/``workers`` put all grids on one Dask cluster).
A task is one (seed, d, m, ‖µ‖) with every v0 of its grid, run as one GD batch per
learning rate. The edges, fits and figure are computed from the stores (xarray).

    flowtools reproduce cnn-phase [--quick] [--out OUT]
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from flowtools.curvature import hessian_extremes
from flowtools.errors import FlowtoolsError
from flowtools.fitting import fit_slope
from flowtools.sweep.relu_cnn import INIT_SEED_OFFSET, cell_lr

__all__ = ["CNNPhaseSettings", "edge_mu", "exponent", "grids", "plot", "run"]

PROTOCOLS = ("paper", "trained")
SCANS = ("main", "dscan", "mscan")


@dataclass(frozen=True)
class CNNPhaseSettings:
    """Every number of a phase-diagram run (stored as the netCDF file's attributes).

    Defaults are the full mode; ``CNNPhaseSettings.quick()`` the CI-sized one. Why these
    values satisfy the paper's conditions: d = 50n ≥ n² (d large relative to n, the noise
    patches nearly orthogonal: |⟨ξ_i, ξ_k⟩|/‖ξ‖² ≈ d^{−1/2} = 0.03); σ0 = 1e-5 makes the
    initial network output negligible at every v0 of the grid (|f(θ0)| ≲ v0·m·σ0·σp·√d ≤
    0.03 at v0 = 10), so training starts near the origin as the analysis assumes; the
    ``trained`` protocol keeps ηλ_max/2 ≈ 0.1 (the paper's small-η condition), which its
    η = 0.01 at T = 200 breaks for v0 ≳ 1.
    """

    n: int = 20
    d: int = 1000
    m: int = 10
    sigma_p: float = 1.0
    sigma0: float = 1e-5
    lr: float = 0.01
    steps: int = 200
    loss_target: float = 0.01
    max_time: float = 200.0  # the trained protocol's flow-time limit (iterations × η_v0)
    n_test: int = 1000
    level: float = 0.25  # benign edge: the test error falls through this
    v0s: tuple = tuple(np.logspace(-3, 1, 17).tolist())
    mus: tuple = tuple(np.logspace(np.log10(0.5), np.log10(25.0), 22).tolist())
    seeds: tuple = (0, 1, 2)
    small_v0_max: float = 0.1  # the small-v0 side of the v0 fit: v0 ≤ this
    large_v0_min: float = 1.0  # the large-v0 side (C_L): v0 ≥ this
    d_scan: tuple = (250, 500, 1000, 2000)
    v0_small: float = 1e-3  # the d/n scan's small-v0 row
    v0_large: float = 3.0  # the d/n scan's large-v0 row
    m_scan: tuple = (5, 10, 20, 40)
    v0_m: float = 0.01  # the m scan's v0 (small side)
    stable_v0: float = 0.3  # the trained protocol's η_v0 = min(η, η·(stable_v0/v0)²)
    traj_v0s: tuple = (1e-3, 1e-2, 1e-1, 1.0, 10.0)  # balance-ratio trajectories
    traj_mu: float = 10.0
    traj_iters: int = 3000
    flow_cells: tuple = ((0.01, 8.0), (0.1, 4.0), (3.0, 2.5))  # (v0, ‖µ‖) flow checks
    flow_rtol: float = 1e-8  # rtol 1e-6 stops 5 % early (sliding kinks; see flow_check)
    mode: str = "full"

    @classmethod
    def quick(cls) -> CNNPhaseSettings:
        return cls(d=300, m=5, v0s=tuple(np.logspace(-3, 1, 7).tolist()),
                   mus=tuple(np.logspace(np.log10(0.5), np.log10(16.0), 9).tolist()),
                   seeds=(0, 1), d_scan=(150, 300, 600), m_scan=(3, 6, 12),
                   traj_v0s=(1e-3, 1e-1, 10.0), traj_mu=6.0, traj_iters=1000, flow_cells=(),
                   n_test=500, mode="quick")

    def __post_init__(self):
        if not (0 < self.level < 0.5):
            raise FlowtoolsError(f"level must be in (0, 0.5) (chance is 0.5), got {self.level}.")
        if self.d <= self.n or min(self.d_scan) <= self.n:
            raise FlowtoolsError("d must exceed n (the γ/ρ decomposition and the paper's "
                                 "regime need d > n).")

    def as_attrs(self) -> str:
        return json.dumps(dataclasses.asdict(self))


# ---------------------------------------------------------------------- training cells
def _model(s: CNNPhaseSettings, mu: float, seed: int, d: int | None = None,
           m: int | None = None):
    """The ``ReluCNN`` of one cell's problem (the sweep family's ``build``)."""
    from flowtools.sweep.relu_cnn import build

    return build(dict(n=s.n, dim=d or s.d, width=m or s.m, sigma_p=s.sigma_p, mu_norm=mu,
                      data_seed=seed, n_test=s.n_test))


def _trained_lr(s: CNNPhaseSettings, v0: float) -> float:
    return cell_lr(s.lr, v0, s.stable_v0)


def grids(s: CNNPhaseSettings) -> dict:
    """The sweep grids (``flowtools.sweep.Grid`` tables, family ``relu_cnn``) of the
    figure, by (scan, protocol): dims data_seed, [dim | width], mu_norm, v0."""
    out = {}
    for scan in SCANS:
        problem = dict(n=s.n, dim=s.d, width=s.m, sigma_p=s.sigma_p, n_test=s.n_test,
                       data_seed=list(s.seeds))
        v0 = list(s.v0s)
        if scan == "dscan":
            problem["dim"], v0 = list(s.d_scan), [s.v0_small, s.v0_large]
        elif scan == "mscan":
            problem["width"], v0 = list(s.m_scan), s.v0_m
        problem["mu_norm"] = list(s.mus)
        for proto in PROTOCOLS:
            integrator = dict(dynamics="gd", lr=s.lr)
            if proto == "paper":
                integrator.update(max_iter=s.steps, loss_threshold=0.0)
            else:
                integrator.update(stable_v0=s.stable_v0, max_time=s.max_time,
                                  loss_threshold=s.loss_target)
            out[scan, proto] = {
                "sweep": {"name": f"cnn_phase_{s.mode}_{scan}_{proto}", "family": "relu_cnn",
                          "cells_per_task": len(v0) if isinstance(v0, list) else 1,
                          "description": f"Shang et al. phase diagram ({s.mode} mode), "
                                         f"{scan}, {proto} protocol"},
                "problem": problem, "init": {"sigma0": s.sigma0, "v0": v0},
                "integrator": integrator}
    return out


_STORED = {"test_error": "test_error", "train_error": "train_error", "loss": "loss_final",
           "layer_change_ratio": "layer_change_ratio", "t_final": "t_final"}
_DIMS = {"main": ("data_seed", "v0", "mu_norm"), "dscan": ("data_seed", "v0", "dim", "mu_norm"),
         "mscan": ("data_seed", "width", "mu_norm")}


def sweep_cells(s: CNNPhaseSettings, store_dir, *, executor="local", workers=None,
                log=print) -> dict:
    """Run (or resume) every grid of ``grids(s)`` into ``store_dir`` (one
    ``flowtools.experiments.engine.Engine`` call: all grids through one executor); return,
    per scan, the arrays test_error, train_error, loss, layer_change_ratio, t_final with a
    leading protocol axis: main (protocol, seed, v0, mu), dscan (protocol, seed, side, d,
    mu), mscan (protocol, seed, m, mu)."""
    from flowtools.experiments.engine import Engine

    out = {scan: {k: [] for k in _STORED} for scan in SCANS}
    tables = grids(s)
    results = Engine(store_dir, executor, workers, log).results(*tables.values())
    for (scan, _), ds in zip(tables, results, strict=True):
        ds = ds.transpose(*_DIMS[scan])
        for k, name in _STORED.items():
            out[scan][k].append(ds[name].values)
    return {scan: {k: np.stack(v) for k, v in arrays.items()} for scan, arrays in out.items()}


def edge_mu(err, mus, level):
    """The ‖µ‖ where each row of ``err`` (…, mu) falls through ``level`` for the last time,
    interpolated linearly in log ‖µ‖; NaN if the row ends above the level or never is.

    >>> float(np.round(edge_mu(np.array([0.5, 0.4, 0.1, 0.0]), np.array([1., 2., 4., 8.]),
    ...                        0.25), 6))
    2.828427
    """
    err = np.asarray(err, float)
    logm = np.log(np.asarray(mus, float))
    flat = err.reshape(-1, err.shape[-1])
    res = np.full(flat.shape[0], np.nan)
    for r, row in enumerate(flat):
        above = np.flatnonzero(row >= level)
        if row[-1] >= level or above.size == 0:
            continue
        i = above[-1]
        f = (row[i] - level) / (row[i] - row[i + 1])
        res[r] = float(np.exp(logm[i] + f * (logm[i + 1] - logm[i])))
    return res.reshape(err.shape[:-1])


def exponent(x, edges, stated: float) -> dict:
    """Slope of log ‖µ‖_edge against log x, fitted per seed (rows of ``edges`` (seed, x));
    mean ± standard error over seeds, the pooled fixed-effects fit, and the stated value."""
    x, edges = np.asarray(x, float), np.asarray(edges, float)
    per_seed = [fit_slope(x, row) for row in edges]
    slopes = np.array([f.slope for f in per_seed])
    ok = np.isfinite(slopes)
    seeds = np.repeat(np.arange(len(edges))[:, None], len(x), axis=1)
    pooled = fit_slope(np.broadcast_to(x, edges.shape), edges, groups=seeds)
    se = float(np.std(slopes[ok], ddof=1) / np.sqrt(ok.sum())) if ok.sum() > 1 else np.nan
    return dict(slope=float(np.mean(slopes[ok])) if ok.any() else np.nan, stderr=se,
                per_seed=slopes.tolist(), pooled=pooled.slope, pooled_stderr=pooled.stderr,
                stated=stated, points=int(np.isfinite(edges).sum()))


def trajectories(s: CNNPhaseSettings):
    """GD (the trained protocol's η_v0, no stop) at ``traj_mu``, seed 0, for each v0 of
    ``traj_v0s``: the median balance ratio ⟨w_{y_i,r}, ξ_i⟩/v_{y_i,r,2}, ‖Δv‖/‖ΔW‖, the
    loss, the range over samples of the loss derivative −ℓ'(y_i f_i) (``dloss_min``,
    ``dloss_max``) and ‖W − W(0)‖ (``dW``), against flow time."""
    from flowtools.descent import run_gd

    model = _model(s, s.traj_mu, s.seeds[0])
    K = s.traj_iters
    ks = np.unique(np.round(np.geomspace(1, K, 40))).astype(int)
    ks = np.concatenate([[0], ks])
    out = dict(t=np.full((len(s.traj_v0s), len(ks)), np.nan))
    for name in ("balance_ratio", "change_ratio", "loss", "dloss_min", "dloss_max", "dW"):
        out[name] = np.full_like(out["t"], np.nan)
    for a, v0 in enumerate(s.traj_v0s):
        th0 = model.init(s.sigma0, v0, seed=s.seeds[0] + INIT_SEED_OFFSET)
        lr = _trained_lr(s, v0)
        tr = run_gd(model, th0, lr=lr, max_iter=K, loss_threshold=0.0, record_at=ks)
        out["t"][a] = ks * lr
        out["loss"][a] = tr.losses
        br = model.balance_ratio(tr.thetas)  # (S, n, m)
        out["balance_ratio"][a] = np.median(np.abs(br), axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            out["change_ratio"][a] = model.layer_change_ratio(tr.thetas, th0)
        # −ℓ'(y_i f_i) = 1/(1 + exp(y_i f_i)) per sample (the loss derivative of stage 1)
        margins = np.stack([np.asarray(model.y * model.output(th, model.y, model.xi))
                            for th in tr.thetas])
        dloss = 1 / (1 + np.exp(margins))
        out["dloss_min"][a], out["dloss_max"][a] = dloss.min(1), dloss.max(1)
        W, _ = model.split(tr.thetas)
        W0, _ = model.split(th0)
        out["dW"][a] = np.sqrt(np.sum((np.asarray(W) - np.asarray(W0)) ** 2, axis=(1, 2, 3)))
    return out


def flow_check(s: CNNPhaseSettings):
    """Test error of the flow (``solve_flow``, dopri5, rtol ``flow_rtol``) to the loss
    target against the trained protocol's GD, on the cells ``flow_cells`` (seed 0).

    Measured (full mode, v0 = 0.1, ‖µ‖ = 4): GD's stopping time 3.79, 3.845, 3.865, 3.8975
    at η = 0.01/2^k, k = 0..3, tends to the flow's 3.919 at rtol 1e-8 (12 758 steps), not
    to its 3.707 at rtol 1e-6 (250 steps): with preactivations sliding along ReLU kinks
    the explicit solver's error control is too loose at 1e-6."""
    from flowtools.descent import run_gd
    from flowtools.flow import solve_flow

    rows = []
    for v0, mu in s.flow_cells:
        model = _model(s, mu, s.seeds[0])
        th0 = model.init(s.sigma0, v0, seed=s.seeds[0] + INIT_SEED_OFFSET)
        tw = time.perf_counter()
        fl = solve_flow(model, th0, t1=s.max_time, loss_threshold=s.loss_target,
                        solver="dopri5", rtol=s.flow_rtol, n_save=10, max_steps=200_000)
        wall = time.perf_counter() - tw
        lr = _trained_lr(s, v0)
        gd = run_gd(model, th0, lr=lr, max_iter=int(np.ceil(s.max_time / lr)),
                    loss_threshold=s.loss_target, n_save=2)
        rows.append(dict(v0=v0, mu=mu, flow_status=int(fl.status), flow_t=float(fl.t_final),
                         flow_steps=int(fl.steps), flow_wall_s=wall,
                         flow_test_error=float(model.test_error(fl.theta_final)),
                         gd_t=float(gd.t_final),
                         gd_test_error=float(model.test_error(gd.theta_final)),
                         max_abs_theta_gap=float(np.max(np.abs(fl.theta_final
                                                               - gd.theta_final)))))
    return rows


# ---------------------------------------------------------------------- the whole figure
def run(s: CNNPhaseSettings, store_dir, *, executor="local", workers=None, log=print):
    """Compute everything (the grids on the sweep engine, stores in ``store_dir``, resumed
    where they exist); returns an ``xarray.Dataset`` (dims protocol, seed, v0, mu, d,
    side, m, traj_v0, k) whose attributes carry the settings, the fits and the version."""
    import xarray as xr

    import flowtools

    t0 = time.perf_counter()
    v0s, mus = np.asarray(s.v0s), np.asarray(s.mus)
    log(f"cnn-phase ({s.mode}): main grid {len(v0s)} v0 × {len(mus)} ‖µ‖ × {len(s.seeds)} "
        f"seeds, n={s.n}, d={s.d}, m={s.m}, σp={s.sigma_p}, σ0={s.sigma0}")
    cells = sweep_cells(s, store_dir, executor=executor, workers=workers, log=log)
    main, d_rows, m_rows = cells["main"], cells["dscan"], cells["mscan"]
    log(f"  grids done ({time.perf_counter() - t0:.0f} s; stores in {store_dir})")
    traj = trajectories(s)
    lam_model = _model(s, s.mus[len(s.mus) // 2], s.seeds[0])
    lam = np.array([hessian_extremes(lam_model, jnp.asarray(lam_model.init(
        s.sigma0, v0, seed=s.seeds[0] + INIT_SEED_OFFSET))).lam_max for v0 in v0s])
    flows = flow_check(s) if s.flow_cells else []
    log(f"  trajectories and flow checks done ({time.perf_counter() - t0:.0f} s)")

    edge = edge_mu(main["test_error"], mus, s.level)  # (P, S, V)
    d_edge = edge_mu(d_rows["test_error"], mus, s.level)  # (P, S, side, d)
    m_edge = edge_mu(m_rows["test_error"], mus, s.level)  # (P, S, m)
    dn = np.asarray(s.d_scan, float) / s.n
    small = v0s <= s.small_v0_max
    large = v0s >= s.large_v0_min
    fits = {}
    for p, proto in enumerate(PROTOCOLS):
        f = {
            "v0_small_side": exponent(v0s[small], edge[p][:, small], -1.0),
            "dn_large_v0": exponent(dn, d_edge[p, :, 1], 0.25),
            "dn_small_v0": exponent(dn, d_edge[p, :, 0], 0.5),  # escape-rate balance
            "m_small_v0": exponent(np.asarray(s.m_scan, float), m_edge[p], -0.5),
        }
        eL = edge[p][:, large]
        f["C_large"] = float(np.nanmedian((eL / s.sigma_p) ** 4 * s.n / s.d))
        eS = edge[p][:, small]
        f["C_small"] = float(np.nanmedian(s.m * v0s[small] ** 2 * eS**2 / s.sigma_p))
        f["escape_edge"] = float(s.sigma_p * np.sqrt(s.d / s.n))
        fits[proto] = f
    wall = time.perf_counter() - t0
    coords = dict(protocol=list(PROTOCOLS), seed=list(s.seeds), v0=v0s, mu=mus,
                  d=np.asarray(s.d_scan), side=["small_v0", "large_v0"],
                  m=np.asarray(s.m_scan), traj_v0=np.asarray(s.traj_v0s),
                  k=np.arange(traj["t"].shape[1]))
    data = {}
    for k, v in main.items():
        data[k] = (("protocol", "seed", "v0", "mu"), v)
        data[f"dscan_{k}"] = (("protocol", "seed", "side", "d", "mu"), d_rows[k])
        data[f"mscan_{k}"] = (("protocol", "seed", "m", "mu"), m_rows[k])
    data["edge"] = (("protocol", "seed", "v0"), edge)
    data["dscan_edge"] = (("protocol", "seed", "side", "d"), d_edge)
    data["mscan_edge"] = (("protocol", "seed", "m"), m_edge)
    for k in ("t", "balance_ratio", "change_ratio", "loss", "dloss_min", "dloss_max", "dW"):
        data[f"traj_{k}"] = (("traj_v0", "k"), traj[k])
    data["lambda_max_theta0"] = (("v0",), lam)
    data["lr_over_stability_edge"] = (("protocol", "v0"), np.stack(
        [s.lr * lam / 2, np.array([_trained_lr(s, v) for v in v0s]) * lam / 2]))
    ds_lr_note = "η·λ_max(θ0)/2 (> 1: beyond GD's stability edge 2/λ_max)"
    ds = xr.Dataset(data, coords=coords)
    ds["mu"].attrs["long_name"] = "signal strength ‖µ‖₂"
    ds["edge"].attrs["long_name"] = f"benign edge ‖µ‖ (test error falls through {s.level})"
    ds["lambda_max_theta0"].attrs["long_name"] = (f"largest Hessian eigenvalue at θ0 (seed "
                                                  f"{s.seeds[0]}, ‖µ‖ = "
                                                  f"{s.mus[len(s.mus) // 2]:.3g})")
    ds["lr_over_stability_edge"].attrs["long_name"] = ds_lr_note
    ds.attrs.update(settings=s.as_attrs(), flowtools_version=flowtools.__version__,
                    fits=json.dumps(fits), flow_check=json.dumps(flows), wall_time_s=wall,
                    protocols="paper: GD eta=lr, T=steps; trained: GD "
                    "eta=min(lr, lr*(stable_v0/v0)^2) to loss <= loss_target",
                    init_seed_offset=INIT_SEED_OFFSET,
                    title="Shang, Meng, Cao & Zou (2024) phase diagram, flowtools")
    return ds


# ---------------------------------------------------------------------- the figure
def _edges_of(a):
    la = np.log10(a)
    mid = (la[1:] + la[:-1]) / 2
    return 10 ** np.concatenate([[2 * la[0] - mid[0]], mid, [2 * la[-1] - mid[-1]]])


def _edge_axes(ax, xlabel, title, legend_size):
    """Log–log axes of an edge-against-parameter panel, plain-number tick labels."""
    from matplotlib.ticker import LogFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(LogFormatter(labelOnlyBase=False))
        axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 1)))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(r"benign edge $\|\mu\|_2$")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=legend_size)


def plot(ds):
    """Six panels: (a, b) test error over v0 × ‖µ‖ for both protocols with the measured
    edges and the boundaries; (c) edge against d/n; (d) edge against m; (e) ‖Δv‖/‖ΔW‖
    against v0; (f) the balance ratio against time."""
    import matplotlib.pyplot as plt

    s = json.loads(ds.attrs["settings"])
    fits = json.loads(ds.attrs["fits"])
    v0s, mus = ds["v0"].values, ds["mu"].values
    fig, axes = plt.subplots(2, 3, figsize=(17, 10))
    titles = {"paper": f"GD η={s['lr']}, T={s['steps']} (paper)",
              "trained": f"GD η=min({s['lr']}, {s['lr']}·({s['stable_v0']}/v0)²) to loss ≤ "
                         f"{s['loss_target']}"}
    for ax, proto, letter in zip(axes[0, :2], PROTOCOLS, "ab", strict=True):
        err = ds["test_error"].sel(protocol=proto).mean("seed").values
        pc = ax.pcolormesh(_edges_of(v0s), _edges_of(mus), err.T, cmap="viridis", vmin=0,
                           vmax=0.5, shading="flat")
        fig.colorbar(pc, ax=ax, label=f"test error (mean of {ds.sizes['seed']} seeds)")
        e = ds["edge"].sel(protocol=proto).values
        med = np.nanmedian(e, axis=0)
        lo, hi = np.nanmin(e, axis=0), np.nanmax(e, axis=0)
        ax.errorbar(v0s, med, yerr=[med - lo, hi - med], fmt="w.-", lw=1.2, capsize=2,
                    label=f"measured edge (error = {s['level']}; seed range)")
        f = fits[proto]
        ax.axhline(s["sigma_p"] * (f["C_large"] * s["d"] / s["n"]) ** 0.25, color="r",
                   ls="--", lw=1.3, label=rf"large $v_0$: $\|\mu\|^4/\sigma_p^4 = C\,d/n$, "
                   f"C = {f['C_large']:.2g}")
        ax.plot(v0s, np.sqrt(f["C_small"] * s["sigma_p"] / s["m"]) / v0s, color="orange",
                ls="--", lw=1.3, label=rf"small $v_0$: $m v_0^2\|\mu\|^2/\sigma_p = C$, "
                f"C = {f['C_small']:.2g}")
        ax.axhline(f["escape_edge"], color="w", ls=":", lw=1.2,
                   label=r"escape-rate balance $\|\mu\| = \sigma_p\sqrt{d/n}$")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(_edges_of(mus)[0], _edges_of(mus)[-1])
        ax.set_xlabel(r"output-layer initialization $v_0$")
        ax.set_ylabel(r"signal strength $\|\mu\|_2$")
        fv = f["v0_small_side"]
        ax.set_title(f"({letter}) {titles[proto]}\nsmall-v0 edge exponent "
                     f"{fv['slope']:.3f} ± {fv['stderr']:.3f} (stated −1)", fontsize=10)
        ax.legend(loc="lower left", fontsize=7, framealpha=0.7)
    # (c) edge against d/n
    ax = axes[0, 2]
    dn = ds["d"].values / s["n"]
    for proto, mk in zip(PROTOCOLS, ("o", "s"), strict=True):
        for side, col, key in (("large_v0", "r", "dn_large_v0"), ("small_v0", "b", "dn_small_v0")):
            e = ds["dscan_edge"].sel(protocol=proto, side=side).values
            f = fits[proto][key]
            v0 = s["v0_large"] if side == "large_v0" else s["v0_small"]
            ax.errorbar(dn * (1.03 if proto == "trained" else 1), np.nanmean(e, 0),
                        yerr=np.nanstd(e, 0), fmt=mk + ("-" if proto == "trained" else ":"),
                        color=col, ms=4, capsize=2, mfc="none" if proto == "paper" else col,
                        label=f"{proto}, v0={v0:g}: slope {f['slope']:.2f} ± "
                        f"{f['stderr']:.2f} (stated {f['stated']:g})")
    ax.plot(dn, s["sigma_p"] * (fits["trained"]["C_large"] * dn) ** 0.25, "r--", lw=0.8,
            label=r"$\sigma_p (C d/n)^{1/4}$")
    ax.plot(dn, s["sigma_p"] * np.sqrt(dn), "b--", lw=0.8, label=r"$\sigma_p\sqrt{d/n}$")
    _edge_axes(ax, f"d/n (n = {s['n']}, m = {s['m']})",
               "(c) edge against d/n (mean ± sd over seeds)", 6.5)
    # (d) edge against m
    ax = axes[1, 0]
    ms = ds["m"].values
    for proto, mk in zip(PROTOCOLS, ("o", "s"), strict=True):
        e = ds["mscan_edge"].sel(protocol=proto).values
        f = fits[proto]["m_small_v0"]
        ax.errorbar(ms, np.nanmean(e, 0), yerr=np.nanstd(e, 0), fmt=mk + "-", ms=4, capsize=2,
                    label=f"{proto}: slope {f['slope']:.2f} ± {f['stderr']:.2f} (stated −1/2)")
    e0 = np.nanmean(ds["mscan_edge"].sel(protocol="trained").values[:, 0])
    ax.plot(ms, e0 * (ms / ms[0]) ** -0.5, "k--", lw=0.8, label=r"$\propto m^{-1/2}$")
    _edge_axes(ax, f"width m (v0 = {s['v0_m']:g}, d = {s['d']}, n = {s['n']})",
               "(d) small-v0 edge against m at fixed v0 (mean ± sd over seeds;\n"
               "m enters only through m·v0²: see cnn_law.png (a))", 7)
    # (e) Δv/ΔW against v0
    ax = axes[1, 1]
    r = ds["layer_change_ratio"].sel(protocol="trained").mean("seed").values
    for i in sorted({int(i) for i in np.linspace(0, len(mus) - 1, 4).round()}):
        ax.loglog(v0s, r[:, i], "o-", ms=3, label=rf"$\|\mu\|$ = {mus[i]:.2g}")
    ax.axhline(1.0, color="k", ls=":", lw=1, label="balanced (‖W‖² − ‖V‖² conserved)")
    ax.set_xlabel(r"$v_0$")
    ax.set_ylabel(r"$\|v-v^{(0)}\| \,/\, \|W-W^{(0)}\|$")
    ax.set_title("(e) output / hidden layer change (trained protocol)", fontsize=10)
    ax.legend(fontsize=7)
    # (f) balance ratio against time
    ax = axes[1, 2]
    for a, v0 in enumerate(ds["traj_v0"].values):
        t = ds["traj_t"].values[a]
        ax.loglog(t[1:], ds["traj_balance_ratio"].values[a, 1:], "-", lw=1.4,
                  label=f"v0 = {v0:g}")
    ax.set_xlabel("flow time t = k·η")
    ax.set_ylabel(r"median $|\langle w_{y_i,r},\xi_i\rangle / v_{y_i,r,2}|$")
    ax.set_title(f"(f) layer-balance ratio over training (‖µ‖ = {s['traj_mu']:g}, seed "
                 f"{s['seeds'][0]})", fontsize=10)
    ax.legend(fontsize=7)
    fig.suptitle(f"Shang, Meng, Cao & Zou (2024), fully trainable two-layer ReLU CNN: n = "
                 f"{s['n']}, d = {s['d']}, m = {s['m']}, σp = {s['sigma_p']}, σ0 = "
                 f"{s['sigma0']:g} ({s['mode']} mode; flowtools' grid — the paper's own is "
                 "not known here)", fontsize=12)
    fig.tight_layout()
    return fig


def write(ds, out, name="cnn_phase"):
    """Write ``out/<name>.nc`` atomically (``flowtools._io.write_netcdf``); return the path."""
    import pathlib

    from flowtools._io import write_netcdf

    return write_netcdf(ds, pathlib.Path(out) / f"{name}.nc")


def summary_lines(ds) -> list[str]:
    """The numbers of the note: exponents beside the stated ones, constants, checks."""
    fits = json.loads(ds.attrs["fits"])
    lines = []
    for proto, f in fits.items():
        lines.append(f"[{proto}]")
        for key, what in (("v0_small_side", "edge vs v0 (small v0)"),
                          ("dn_large_v0", "edge vs d/n (large v0)"),
                          ("m_small_v0", "edge vs m (small v0)"),
                          ("dn_small_v0", "edge vs d/n (small v0; escape balance: 1/2)")):
            e = f[key]
            lines.append(f"  {what:45s} {e['slope']:+.3f} ± {e['stderr']:.3f}  (stated "
                         f"{e['stated']:+g}; pooled {e['pooled']:+.3f} ± "
                         f"{e['pooled_stderr']:.3f}; per seed "
                         f"{', '.join(f'{x:+.2f}' for x in e['per_seed'])})")
        lines.append(f"  C_large = {f['C_large']:.3g}, C_small = {f['C_small']:.3g}, "
                     f"escape edge σp√(d/n) = {f['escape_edge']:.3g}")
    for row in json.loads(ds.attrs["flow_check"]):
        lines.append(f"  flow check v0={row['v0']:g} ‖µ‖={row['mu']:g}: flow t={row['flow_t']:.3g}"
                     f" test err {row['flow_test_error']:.3f} vs GD t={row['gd_t']:.3g} "
                     f"{row['gd_test_error']:.3f} (max |Δθ| {row['max_abs_theta_gap']:.2g})")
    ratio = ds["lr_over_stability_edge"]
    for v0, lam in zip(ds["v0"].values, ds["lambda_max_theta0"].values, strict=True):
        lines.append(f"  v0={v0:.3g}: λ_max(θ0) = {lam:.3g}; η·λ_max/2: paper "
                     f"{float(ratio.sel(protocol='paper', v0=v0)):.3g}, trained "
                     f"{float(ratio.sel(protocol='trained', v0=v0)):.3g}")
    return lines


def main(*, quick=False, out="out/reproduce", executor="local", workers=None):
    """Run (the grids' stores in ``out/cnn_phase_store/MODE``, resumed where they exist),
    plot, write PNG + netCDF; return the dataset."""
    import pathlib

    import matplotlib

    matplotlib.use("Agg")
    from flowtools._io import check_output_dir, savefig

    out = check_output_dir(out, what="--out")
    s = CNNPhaseSettings.quick() if quick else CNNPhaseSettings()
    t0 = time.perf_counter()
    ds = run(s, pathlib.Path(out) / "cnn_phase_store" / s.mode, executor=executor,
             workers=workers)
    fig = plot(ds)
    png = pathlib.Path(out) / "cnn_phase.png"
    import matplotlib.pyplot as plt

    try:
        savefig(fig, png, dpi=110)
    finally:
        plt.close(fig)
    for line in summary_lines(ds):
        print(line)
    law = _law(ds, pathlib.Path(out), quick=quick, executor=executor, workers=workers)
    ds.attrs["wall_time_total_s"] = time.perf_counter() - t0
    ds.attrs["claims"] = law.attrs["claims"]
    nc = write(ds, out)
    print(f"wrote {png}, {nc}, cnn_law.png, cnn_law.nc and cnn_phase_claims.json in "
          f"{ds.attrs['wall_time_total_s']:.1f} s")
    return ds


def _law(phase, out, *, quick=False, executor="local", workers=None):
    """The small-v0 law on refined edges (``flowtools.experiments.cnn_law``): stores in
    ``out/cnn_phase_store/MODE/law``; writes cnn_law.png, cnn_law.nc and the claims table
    (cnn_phase_claims.json, printed); returns the edges dataset with the analysis and the
    claims as attributes."""
    import matplotlib.pyplot as plt

    from flowtools._io import dumps_json, savefig, write_json
    from flowtools.experiments import cnn_law
    from flowtools.experiments.claims import claims_json, print_claims

    t0 = time.perf_counter()
    s = cnn_law.LawSettings.quick() if quick else cnn_law.LawSettings()
    law = cnn_law.edges(s, out / "cnn_phase_store" / s.mode / "law", executor=executor,
                        workers=workers)
    found = cnn_law.analyse(law, s, phase)
    claims = cnn_law.claims(phase, law, s, found)
    fig = cnn_law.plot(law, phase, s, found)
    try:
        savefig(fig, out / "cnn_law.png", dpi=110)
    finally:
        plt.close(fig)
    for line in cnn_law.summary_lines(found):
        print(line)
    print_claims("cnn-phase", claims)
    law.attrs.update(settings=s.as_attrs(), claims=claims_json(claims),
                     analysis=dumps_json(found, null_means="not computed", indent=None),
                     wall_time_s=time.perf_counter() - t0)
    write(law, out, name="cnn_law")
    write_json(out / "cnn_phase_claims.json",
               {"figure": "cnn-phase", "mode": s.mode,
                "claims": json.loads(claims_json(claims))})
    return law


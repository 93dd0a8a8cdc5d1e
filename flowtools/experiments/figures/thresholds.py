"""The sample-size thresholds predicted by ``flowtools.thresholds`` beside measured recovery
rates from the sweep engine (issue 24): `flowtools reproduce thresholds`.

The paper (§1, §3.2, Definition 1, Table 1, Appendix B) organises its empirical claims
around two sample sizes of a two-layer network with a single-neuron target:

(i)   below the *optimistic sample size* N no initialization recovers the target;
(ii)  at N (and up to the separation size) only a zero-measure set of initializations
      recovers it, e.g. c̃ ∈ {0, 1} for width 2 (c̃ = min(|C1/C2|, |C2/C1|) of θ0);
(iii) from the *separation sample size* S of a branch of Q* on, some combinations of
      initialization and sample recover it with non-zero probability.

Both sizes come from ``flowtools.thresholds.thresholds(problem)`` (``.optimistic``;
``.separation``, the smallest over the branches of Q*; ``.branches[k].separation``). The
recovery rates come from the sweep engine (``flowtools.sweep``, family ``two_layer``), one
grid per case and kind of initialization:

* *random*: n × data_seed × seed, θ0 = ``init_gaussian(1e-20, seed)`` (the paper's scale,
  Appendix C): a positive-measure sample of initializations;
* *special* (width 2 only): n × data_seed × c_tilde, θ0 = ``init_ratio(c̃, 1e-20, seed 0)``
  with c̃ = 1 and c̃ → 0 (1e-12; 1e-4 in full mode). The engine's ``c_tilde`` lies in
  (0, 1] (c̃ = 0, C1 = 0, leaves neuron 1 at the origin; Figures 4 and 9 make it with
  ``Problem.init_c_tilde`` outside the engine), so c̃ = 1e-12 stands for c̃ = 0; c̃ = 1e-4
  shows the error growing again away from it, i.e. recovery only in the limit.

Data: n inputs uniform on [−2, 2]^d (the paper's Appendix B), labels from the target
tanh(1ᵀx + 1); generalization error: RMS over 1000 test inputs (evenly spaced on [−2, 2]
for d = 1, uniform on [−2, 2]^d otherwise; the family's default). Every cell is the
gradient flow (``solve_flow``) to ℓ ≤ 1e-24, horizon t1 = 1e16.

Cases, one panel each: (a) Example 1 (tanh, m = 2, d = 1, bias; Table 1), (b) the d = 3
case of Figure 9 (m = 2), and two the paper does not cover: (c) d = 2 (m = 2), (d) width
m = 3 (d = 1). Sample sizes from N − 1 to the largest branch separation size (quick mode:
Example 1 at N − 1, N and S only). The grids set ``pad_to`` = the largest n: the data are
padded with zero-weight rows (exact: they add nothing), so each case is one compilation of the
flow (10–25 s here) instead of one per n.
Panels (e) every random cell's error against n (the tolerance), (f) the error against c̃
at N, (g) the numerical separation test.

Recovery: RMS error ≤ ``TOL`` = 1e-7, the paper's Figure-9 floor (the same error: RMS on
1000 test inputs uniform on [−2, 2]^d), but at ℓ ≤ 1e-24 instead of the paper's ℓ = 1e-15
(flowtools' choice, from the data). Stopped at ℓ = 1e-15, flows bound for Q* still have
RMS errors up to ~1e-5 (Example 1, n = 4, 5: 4e-6 … 9e-6), while global minima outside Q*
start at ~1e-4. At ℓ ≤ 1e-24 (full run, random cells) the end points in Q* have errors
≤ 3.3e-10 in every case and the global minima outside Q* ≥ 3e-5, except near Q* at and
above the separation size: m = 3 at n = 5 (a continuum 6e-9 … 5e-5) and n = 6 (2e-9,
8e-7), d = 2 at n = 7 (4e-9, one dataset). The criterion claim checks that counting the
cells within a factor 10 of TOL the other way changes no verdict.

Stores: ``STORE_DIR/<mode>/thresholds_<mode>_<case>_<kind>-<key>.zarr`` (``key``: the first
12 hex digits of ``Grid.key`` with the library versions; ``STORE_DIR`` = out/sweep/thresholds
under the working directory, the sweep engine's folder), written by ``run_sweep`` with
``resume=True``: a rerun computes only missing cells (nothing, after a complete run), and a
changed grid or library version writes a new store instead of mixing results. The
separation test's and the zero-loss search's results are cached beside them as netCDF
(``cached_netcdf``; key: their settings, the case and the versions).
``compute(engine=Engine(folder, executor, workers))`` puts all of them elsewhere and runs the
grids' cells there (``flowtools.experiments.engine``).

Panel (g) is ``flowtools.separation.separation_scan`` (the numerical test of Definition 1,
issue 24 item 3, which does not use the rule) from N to the largest separation size, one
generic point per branch and dataset; it is plotted against n − S_b, so the prediction is
a switch at 0 for every branch. Without that module the panel says so and the dataset has
no ``separated_fraction``.

**Table 1: Q* = ℓ⁻¹(0) at n = 6** (Example 1; n = p, the number of parameters): every
global minimum of ℓ recovers the target. Separation is local (no other zero of ℓ *near*
a branch of Q*; every branch of Example 1 is separated from n = 5 on); this statement is
global. ``flowtools.separation.zero_loss_search`` (Levenberg–Marquardt from Gaussian
starts of scale 1.5 over all of parameter space) looks for zeros of ℓ outside Q* at
n = 5, 6, 7 (quick: 5, 6) on the figure's uniform data seeds (quick: the first two) and
the paper's evenly spaced grid, 256 starts per dataset (quick: 32). The dataset carries
the counts per (``zero_search_n``, ``zero_search_data``): zeros found, in Q*, outside Q*,
distinct functions outside, ambiguous, starts stopped by the iteration limit; panel (a)
draws the fraction of datasets with zeros outside Q* and n = 6. The claim agrees if no
dataset has one at n = 6 — evidence from a search, not a proof (zeros that no start
reaches are missed) — and reports n = 5, where they exist (continua, p − n ≥ 1) on some
datasets, which shows that the search finds them. Measured (full mode, 39 s): datasets
with zeros outside Q*: n = 5: 4/6 (uniform seeds 0, 2, 3 and the grid), n = 6: 0/6,
n = 7: 0/6 (``flowtools.thresholds``: at n = p isolated spurious minima may exist for a
positive-measure set of data, from n = p + 1 for almost no dataset).
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np

from flowtools.experiments.claims import Claim

TITLE = "Thresholds: predicted optimistic and separation sizes beside measured recovery rates"
GD = False
# measured: `flowtools reproduce thresholds` (full mode, 2-core CPU shared with other jobs,
# empty stores and an empty compilation cache): 292 s before the zero-loss search, which
# adds 39 s (measured alone, compilation included); 18 s again from complete stores
FULL_TIME = "261 s"

SCALE = 1e-20              # Appendix C / Figures 4, 8, 9: initialization scale
PAPER_LOSS_STOP = 1e-15    # the paper's GD stop (Appendix C), not used: see TOL
LOSS_STOP = 1e-24          # flowtools' stop (module docstring)
T1 = 1e16
MAX_STEPS = 20_000
TOL = 1e-7                 # recovery: RMS error ≤ TOL (the paper's Figure-9 floor)
SAMPLING = "uniform"
STORE_DIR = pathlib.Path("out") / "sweep" / "thresholds"


@dataclass(frozen=True)
class Case:
    """One two-layer problem family of the figure (tanh, bias, uniform data)."""

    key: str
    title: str
    width: int
    dim: int
    paper: bool            # whether the paper quotes its thresholds
    bias: bool = True
    activation: str = "tanh"


CASES = (
    Case("ex1", "Example 1: m = 2, d = 1", 2, 1, True),
    Case("fig9", "Figure 9: m = 2, d = 3", 2, 3, True),
    Case("d2", "new: m = 2, d = 2", 2, 2, False),
    Case("m3", "new: m = 3, d = 1", 3, 1, False),
)
LETTERS = "abcdefgh"


def settings(quick: bool) -> dict:
    """Seeds, special c̃ values and which cases run (quick: Example 1 only)."""
    if quick:
        return {"cases": ("ex1",), "data_seeds": (0, 1, 2), "seeds": (0, 1, 2, 3),
                "c_tilde": (1e-12, 1.0), "ns": "quick"}
    return {"cases": tuple(c.key for c in CASES), "data_seeds": (0, 1, 2, 3, 4),
            "seeds": (0, 1, 2, 3, 4), "c_tilde": (1e-12, 1e-4, 1.0), "ns": "full"}


# ---------------------------------------------------------------------- predictions
def problem(case: Case, n: int = 1, *, sampling: str = SAMPLING, data_seed: int = 0):
    """The problem of ``case`` with n samples (the figure's uniform data, or the paper's
    evenly spaced ``"grid"`` for d = 1), as the sweep family builds it."""
    import flowtools as ft

    return ft.make_problem(n, sampling=sampling, activation=case.activation,
                           width=case.width, dim=case.dim, bias=case.bias, seed=data_seed)


def predicted(case: Case) -> dict:
    """The thresholds of ``case`` (``flowtools.thresholds.thresholds``): optimistic,
    separation (smallest), n_params and per branch (code, paper name, dimension, separation,
    rule)."""
    from flowtools.thresholds import thresholds

    th = thresholds(problem(case, 1))
    return {"optimistic": int(th.optimistic), "separation": int(th.separation),
            "n_params": int(th.n_params),
            "branches": [(b.code, b.paper_name or "", int(b.dimension), int(b.separation),
                          b.rule) for b in th.branches]}


def sample_sizes(pred: dict, quick: bool) -> list[int]:
    """N − 1 … max branch separation (quick: N − 1, N, S)."""
    N, S = pred["optimistic"], pred["separation"]
    if quick:
        return sorted({max(N - 1, 1), N, S})
    top = max(b[3] for b in pred["branches"])
    return list(range(max(N - 1, 1), top + 1))


# ---------------------------------------------------------------------- the grids
def grids(case: Case, ns, s: dict, mode: str) -> dict:
    """The sweep grids (dict tables) of ``case``: "random" and, for width 2, "special"."""
    problem_ = {"n": list(ns), "sampling": SAMPLING, "data_seed": list(s["data_seeds"]),
                "activation": case.activation, "width": case.width, "dim": case.dim,
                "bias": case.bias, "pad_to": max(ns)}   # one compiled flow per case
    integrator = {"dynamics": "flow", "loss_threshold": LOSS_STOP, "t1": T1,
                  "max_steps": MAX_STEPS}
    out = {"random": {
        "sweep": {"name": f"thresholds_{mode}_{case.key}_random",
                  "cells_per_task": len(s["seeds"]),
                  "description": f"{case.title}: Gaussian θ0 of scale {SCALE:g}"},
        "problem": problem_, "init": {"scale": SCALE, "seed": list(s["seeds"])},
        "integrator": integrator}}
    if case.width == 2:
        out["special"] = {
            "sweep": {"name": f"thresholds_{mode}_{case.key}_special",
                      "cells_per_task": len(s["c_tilde"]),
                      "description": f"{case.title}: θ0 with prescribed c̃ (c̃ → 0 and 1)"},
            "problem": problem_,
            "init": {"scale": SCALE, "seed": 0, "c_tilde": [float(c) for c in s["c_tilde"]]},
            "integrator": integrator}
    return out


_VARS = ("gen_error", "loss_final", "status", "branch", "steps", "t_final")


def run_grid(tables: dict, engine, dims) -> dict:
    """Run (or resume) one grid into its store (``engine``); its variables as arrays
    ordered ``dims``."""
    ds = engine.results(tables)[0].transpose(*dims, ...)
    return {k: ds[k].values for k in _VARS}


# ---------------------------------------------------------------------- separation test
#: the separation test's datasets are in general position with a margin: no two inputs
#: closer than this (a pair 0.007 apart — uniform seed 1, d = 1 — shrinks the separated
#: neighbourhood to that scale, so spheres of radius 0.01 find zeros outside Q* there)
MIN_INPUT_GAP = 0.1


def spread_seeds(case: Case, n: int, count: int, min_gap: float = MIN_INPUT_GAP) -> tuple:
    """The first ``count`` data seeds whose n inputs (uniform on [−2, 2]^d; the data of a
    smaller n are the first rows of the same draw) are pairwise ≥ ``min_gap`` apart."""
    from scipy.spatial.distance import pdist

    seeds, seed = [], 0
    while len(seeds) < count:
        if pdist(problem(case, n, data_seed=seed).X).min() >= min_gap:
            seeds.append(seed)
        seed += 1
    return tuple(seeds)


def separation_settings(quick: bool, case: Case | None = None, n_max: int = 0) -> dict:
    """``separation_scan`` options and data seeds (fewer starts than its defaults, one
    generic point per branch and dataset; quick: two datasets, full: three, the first
    seeds whose inputs up to ``n_max`` are ``MIN_INPUT_GAP`` apart). Width ≥ 3 uses radii
    (0.1, 3e-2, 1e-2): at the three-aligned-neuron branch with mixed signs the minimum
    loss grows only like r⁶ (third-order contact) and reaches the test's zero level at
    r = 3e-3 (measured: 1e-26…1e-28 at n = 7, which made 2 of 3 datasets undecided)."""
    options = {"starts": 8 if quick else 12, "points": 1}
    if case is not None and case.width >= 3:
        options["radii"] = [0.1, 3e-2, 1e-2]
    count = 2 if quick else 3
    seeds = (tuple(range(count)) if case is None or not n_max
             else spread_seeds(case, n_max, count))
    return {"data_seeds": seeds, "options": options}


def cached_netcdf(name: str, case: Case, settings_: dict, store_dir, log, what: str, run):
    """The dataset ``run()`` computes, cached as netCDF in ``store_dir`` as
    ``<name>_<case>-<key>.nc``; the key is the first 12 hex digits of a SHA-256 of
    ``settings_``, the case's problem family (width, d, bias, activation, sampling) and the
    library versions, so changed settings or versions compute (and write) a new file
    instead of reading a stale one. ``run() -> (dataset, description)``; the log line says
    whether the file was read or computed (with the description and the time). What is
    returned is always read back from the file, so a first run and a rerun agree."""
    import hashlib
    import json
    import time

    import xarray as xr

    from flowtools._io import write_netcdf
    from flowtools.sweep.store import library_versions

    key = dict(settings_, width=case.width, dim=case.dim, bias=case.bias,
               activation=case.activation, sampling=SAMPLING, versions=library_versions())
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    path = pathlib.Path(store_dir) / f"{name}_{case.key}-{digest}.nc"
    if path.is_file():
        log(f"  {what}: read {path}")
    else:
        t0 = time.perf_counter()
        out, description = run()
        pathlib.Path(store_dir).mkdir(parents=True, exist_ok=True)
        write_netcdf(out, path)
        log(f"  {what}: {description} ({time.perf_counter() - t0:.0f} s; {path})")
    with xr.open_dataset(path, engine="scipy") as cached:   # the same, first run or later
        return cached.load()


def separation_fractions(case: Case, ns, codes, quick: bool, store_dir, log):
    """Two (len(ns), len(codes)) arrays: the fractions of datasets on which each branch (by
    code) is separated, and on which the test is undecided, by the numerical test
    ``flowtools.separation.separation_scan`` (issue 24, item 3; it does not use the rule),
    cached by ``cached_netcdf``."""
    from flowtools.separation import separation_scan

    ss = separation_settings(quick, case, max(ns))

    def run():
        scan = separation_scan(list(ns), list(ss["data_seeds"]), activation=case.activation,
                               width=case.width, dim=case.dim, bias=case.bias,
                               sampling=SAMPLING, **ss["options"])
        return scan[["fraction_separated", "fraction_undecided"]], (
            f"{len(ns)} n × {len(ss['data_seeds'])} datasets × {scan.sizes['branch']} "
            "branches")

    scan = cached_netcdf("separation", case, dict(ns=list(ns),
                                                  data_seeds=list(ss["data_seeds"]),
                                                  options=ss["options"],
                                                  variables=["fraction_separated",
                                                             "fraction_undecided"]),
                         store_dir, log, "separation test", run)
    have = [str(b) for b in scan["branch"].values]

    def per_code(name):
        frac = scan[name].transpose("n", "branch")
        return np.stack([frac.sel(branch=c).values if c in have else np.full(len(ns), np.nan)
                         for c in codes], axis=1)

    return per_code("fraction_separated"), per_code("fraction_undecided")


# ---------------------------------------------------------------------- zero-loss search
#: the paper's Table 1: Q* = ℓ⁻¹(0) (every global minimum recovers the target) from n = 6
#: on for Example 1 — n = p, the number of parameters
PAPER_ALL_ZEROS_IN_TARGET = {"ex1": 6}

#: what the zero-loss search stores per (n, dataset): ZeroLossSearch attribute → variable
_ZERO_FIELDS = {"n_zero": ("zero_search_found", "starts that reached a zero of ℓ"),
                "n_in_target": ("zero_search_in_target", "zeros in Q* (RMS error ≤ 1e-11)"),
                "n_outside": ("zero_search_outside", "zeros outside Q* (RMS error ≥ 1e-9)"),
                "n_distinct_outside": ("zero_search_distinct", "distinct functions among "
                                       "the zeros outside Q*"),
                "n_ambiguous": ("zero_search_ambiguous", "zeros neither clearly in nor "
                                "outside Q*"),
                "n_capped": ("zero_search_capped", "starts stopped by the iteration limit "
                             "while still descending")}


def zero_search_settings(quick: bool) -> dict:
    """The multi-start zero-loss search for the Table-1 statement (Example 1): n = 5, 6, 7
    (quick: 5, 6), the figure's data seeds (quick: the first two) plus the paper's evenly
    spaced grid, and the starts of ``zero_loss_search`` (Gaussian, scale 1.5;
    Levenberg–Marquardt)."""
    if quick:
        return {"ns": (5, 6), "data_seeds": settings(True)["data_seeds"][:2], "grid": True,
                "options": {"starts": 32, "max_iter": 1000, "scale": 1.5, "seed": 0}}
    return {"ns": (5, 6, 7), "data_seeds": settings(False)["data_seeds"], "grid": True,
            "options": {"starts": 256, "max_iter": 2000, "scale": 1.5, "seed": 0}}


def zero_search_datasets(zs: dict) -> list[tuple[str, str, int]]:
    """(label, sampling, data seed) of every dataset the search runs on."""
    out = [(f"uniform {s}", SAMPLING, int(s)) for s in zs["data_seeds"]]
    return out + ([("grid", "grid", 0)] if zs["grid"] else [])


def zero_search_counts(case: Case, quick: bool, store_dir, log):
    """``flowtools.separation.zero_loss_search`` on every (n, dataset) of
    ``zero_search_settings``: the counts of ``_ZERO_FIELDS`` as an ``xarray.Dataset`` with
    dims (zero_search_n, zero_search_data), cached by ``cached_netcdf``.

    Tests "Q* = ℓ⁻¹(0)" by looking for global minima outside Q* anywhere in parameter space
    (starts of scale 1.5, not the small initialization that selects one): a zero found
    outside Q* refutes the statement for those data, none found is evidence only. Below
    n = p the zeros outside Q* form continua (dimension ≥ p − n), so nearly every such
    zero is its own distinct function; at n = p they are isolated."""
    import xarray as xr

    from flowtools.separation import GEN_NONZERO, GEN_ZERO, ZERO_LOSS, zero_loss_search

    zs = zero_search_settings(quick)
    ns, data = list(zs["ns"]), zero_search_datasets(zs)

    def run():
        counts = np.zeros((len(_ZERO_FIELDS), len(ns), len(data)), dtype=np.int64)
        for i, n in enumerate(ns):
            for j, (_, sampling, seed) in enumerate(data):
                z = zero_loss_search(problem(case, n, sampling=sampling, data_seed=seed),
                                     pad_to=max(ns), **zs["options"])
                counts[:, i, j] = [getattr(z, f) for f in _ZERO_FIELDS]
        dims = ("zero_search_n", "zero_search_data")
        out = xr.Dataset({var: (dims, counts[k], {"long_name": what})
                          for k, (var, what) in enumerate(_ZERO_FIELDS.values())},
                         coords={"zero_search_n": ns,
                                 "zero_search_data": [d[0] for d in data]})
        return out, f"{len(ns)} n × {len(data)} datasets × {zs['options']['starts']} starts"

    key = dict(ns=ns, data=[d[1:] for d in data], options=zs["options"],
               thresholds=[ZERO_LOSS, GEN_ZERO, GEN_NONZERO])
    return cached_netcdf("zero_search", case, key, store_dir, log, "zero-loss search", run)


# ---------------------------------------------------------------------- compute
def compute(*, quick: bool, gd: bool = False, log=print, engine=None):
    """Every grid of the figure on the sweep engine (``engine``, default stores under
    ``STORE_DIR``; resumed from its stores), the predictions, and the recovery rates, as
    one ``xarray.Dataset``."""
    import xarray as xr

    from flowtools.experiments.engine import Engine

    s = settings(quick)
    mode = "quick" if quick else "full"
    engine = (engine or Engine(STORE_DIR, log=log)).under(mode)
    store_dir = engine.store_dir
    preds = {c.key: predicted(c) for c in CASES}
    ns_case = {c.key: sample_sizes(preds[c.key], quick) for c in CASES
               if c.key in s["cases"]}
    all_ns = sorted({n for v in ns_case.values() for n in v})
    dss, seeds, cts = list(s["data_seeds"]), list(s["seeds"]), list(s["c_tilde"])
    C, Nn = len(CASES), len(all_ns)
    rnd = {k: np.full((C, Nn, len(dss), len(seeds)), np.nan) for k in _VARS}
    spc = {k: np.full((C, Nn, len(dss), len(cts)), np.nan) for k in _VARS}
    n_br = max(len(p["branches"]) for p in preds.values())
    sep_frac = np.full((C, Nn, n_br), np.nan)
    sep_undecided = np.full((C, Nn, n_br), np.nan)
    zero = None
    for i, case in enumerate(CASES):
        if case.key not in ns_case:
            continue
        ns = ns_case[case.key]
        idx = [all_ns.index(n) for n in ns]
        log(f"thresholds: {case.title}, n = {ns}, predicted optimistic "
            f"{preds[case.key]['optimistic']}, separation {preds[case.key]['separation']}")
        for kind, tables in grids(case, ns, s, mode).items():
            dims = ("n", "data_seed", "seed" if kind == "random" else "c_tilde")
            arrays = run_grid(tables, engine, dims)
            dest = rnd if kind == "random" else spc
            for k in _VARS:
                dest[k][i, idx] = arrays[k]
        # the test from N on (every branch's predicted separation size is ≥ N)
        ns_sep = [n for n in ns if n >= preds[case.key]["optimistic"]]
        frac = separation_fractions(case, ns_sep,
                                    [b[0] for b in preds[case.key]["branches"]],
                                    quick, store_dir, log)
        rows = [all_ns.index(n) for n in ns_sep]
        sep_frac[i, rows, :frac[0].shape[1]] = frac[0]
        sep_undecided[i, rows, :frac[1].shape[1]] = frac[1]
        if case.key in PAPER_ALL_ZEROS_IN_TARGET:   # Table 1: Q* = ℓ⁻¹(0) at n = p
            zero = (case, zero_search_counts(case, quick, store_dir, log))

    codes = np.full((C, n_br), "", dtype=object)
    names = np.full((C, n_br), "", dtype=object)
    bdim = np.full((C, n_br), -1, dtype=np.int64)
    bsep = np.full((C, n_br), -1, dtype=np.int64)
    rules = np.full((C, n_br), "", dtype=object)
    for i, c in enumerate(CASES):
        for j, (code, name, dim, sep, rule) in enumerate(preds[c.key]["branches"]):
            codes[i, j], names[i, j], bdim[i, j], bsep[i, j], rules[i, j] = \
                code, name, dim, sep, rule

    r4, s4 = ("case", "n", "data_seed", "seed"), ("case", "n", "data_seed", "c_tilde")
    var = {
        "gen_error": (r4, rnd["gen_error"], {"long_name": "RMS generalization error, random "
                                             "Gaussian θ0 (NaN: not computed)"}),
        "loss_final": (r4, rnd["loss_final"]),
        "status": (r4, rnd["status"], {"codes": "flowtools.Status (NaN: not computed)"}),
        "branch": (r4, rnd["branch"], {"codes": "classify: 0 Q1, 1 Q2, 2 other"}),
        "steps": (r4, rnd["steps"]),
        "t_final": (r4, rnd["t_final"]),
        "gen_error_special": (s4, spc["gen_error"], {"long_name": "RMS generalization "
                                                     "error, θ0 with prescribed c̃ (width 2)"}),
        "loss_final_special": (s4, spc["loss_final"]),
        "status_special": (s4, spc["status"]),
        "optimistic": (("case",), [preds[c.key]["optimistic"] for c in CASES],
                       {"long_name": "predicted optimistic sample size"}),
        "separation": (("case",), [preds[c.key]["separation"] for c in CASES],
                       {"long_name": "predicted separation sample size (smallest branch)"}),
        "n_params": (("case",), [preds[c.key]["n_params"] for c in CASES]),
        "width": (("case",), [c.width for c in CASES]),
        "dim": (("case",), [c.dim for c in CASES]),
        "computed": (("case",), [int(c.key in ns_case) for c in CASES]),
        "case_title": (("case",), np.array([c.title for c in CASES], dtype=object)),
        "branch_code": (("case", "branch_slot"), codes.astype(str)),
        "branch_paper_name": (("case", "branch_slot"), names.astype(str)),
        "branch_dimension": (("case", "branch_slot"), bdim),
        "branch_separation": (("case", "branch_slot"), bsep,
                              {"long_name": "predicted separation size per branch (−1: no "
                                            "branch in this slot)"}),
        "branch_rule": (("case", "branch_slot"), rules.astype(str)),
    }
    rec = recovered(rnd["gen_error"])
    var["recovered"] = (r4, rec, {"long_name": f"RMS error ≤ {TOL:g} (NaN: not computed)"})
    var["recovery_rate"] = (("case", "n"), _rate(rec, axis=(2, 3)),
                            {"long_name": "fraction of random (data seed, θ0) cells that "
                                          "recover"})
    var["recovered_special"] = (s4, recovered(spc["gen_error"]))
    var["separated_fraction"] = (("case", "n", "branch_slot"), sep_frac,
                                 {"long_name": "fraction of datasets on which the branch "
                                               "is separated (flowtools.separation)"})
    var["undecided_fraction"] = (("case", "n", "branch_slot"), sep_undecided,
                                 {"long_name": "fraction of datasets on which the "
                                               "separation test is undecided"})
    ds = xr.Dataset(var, coords={"case": [c.key for c in CASES], "n": all_ns,
                                 "data_seed": dss, "seed": seeds, "c_tilde": cts,
                                 "branch_slot": list(range(n_br))})
    ds.attrs.update(
        quick=int(quick), init_scale=SCALE, loss_stop=LOSS_STOP, t1=T1, max_steps=MAX_STEPS,
        recovery_tol=TOL, sampling="n inputs uniform on [−2, 2]^d (Appendix B)",
        target="tanh(1ᵀx + 1)", activation="tanh", bias=1,
        test_inputs="1000 points: evenly spaced on [−2, 2] (d = 1), uniform on [−2, 2]^d",
        method="gradient flow (solve_flow) on the sweep engine (family two_layer)",
        paper_settings="scale 1e-20 (Appendix C); uniform data on [−2, 2]^d (Appendix B)",
        flowtools_choices=(
            f"flow instead of GD; stop ℓ ≤ {LOSS_STOP:g} (paper: {PAPER_LOSS_STOP:g}), "
            f"t1 = {T1:g}; recovery = RMS error ≤ {TOL:g} (paper: 1e-8 in Fig. 4, 1e-7 in "
            "Fig. 9, at its ℓ = 1e-15); c̃ = 1e-12 stands for c̃ = 0; data seeds "
            f"{dss}, θ0 seeds {seeds}; n from N − 1 to the largest branch separation"),
        c_tilde_zero="c̃ = 0 is not a sweep value (init.c_tilde ∈ (0, 1]); the smallest c̃ "
                     "stands for it",
        separation_test=(f"flowtools.separation.separation_scan on the first "
                         f"{len(separation_settings(quick)['data_seeds'])} data seeds whose "
                         f"inputs are ≥ {MIN_INPUT_GAP} apart, options "
                         f"{separation_settings(quick)['options']} (width ≥ 3: radii "
                         "0.1, 0.03, 0.01)"),
        stores=str(store_dir))
    if zero is not None:
        zs, (zcase, counts) = zero_search_settings(quick), zero
        ds = ds.merge(counts)
        ds.attrs.update(
            zero_search_case=zcase.key, zero_search_starts=zs["options"]["starts"],
            zero_search=(f"flowtools.separation.zero_loss_search, {zcase.title}, n = "
                         f"{list(zs['ns'])}, datasets "
                         f"{[d[0] for d in zero_search_datasets(zs)]} (uniform on [−2, 2]; "
                         f"the paper's evenly spaced grid), options {zs['options']}"))
    return ds


def recovered(err) -> np.ndarray:
    """1.0 where the RMS error is ≤ TOL, 0.0 above, NaN where not computed."""
    err = np.asarray(err, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(np.isnan(err), np.nan, (err <= TOL).astype(float))


def _rate(rec, axis):
    """Mean of ``rec`` over ``axis`` ignoring NaN (not computed); NaN where nothing was."""
    rec = np.asarray(rec, dtype=float)
    count = np.sum(~np.isnan(rec), axis=axis)
    total = np.nansum(rec, axis=axis)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


# ---------------------------------------------------------------------- claims
#: the values the paper quotes (Table 1 / §3.2 for Example 1, Appendix B for Figure 9)
PAPER_VALUES = {"ex1": {"optimistic": 3, "Q2": 4, "Q1": 5},
                "fig9": {"optimistic": 5, "Q2": 6, "Q1": 9}}


def _case_view(ds, key):
    """The computed part of one case: its n values, counts of recovered cells per n
    (random: (k, total); special: per c̃ (k, data seeds)), errors, N, S."""
    c = ds.sel(case=key)
    err = c["gen_error"].values                    # (n, data_seed, seed)
    done = ~np.all(np.isnan(err), axis=(1, 2))
    ns = [int(n) for n in c["n"].values[done]]
    rec = c["recovered"].values[done]
    k = np.nansum(rec, axis=(1, 2)).astype(int)
    tot = np.sum(~np.isnan(rec), axis=(1, 2))
    out = {"ns": ns, "k": dict(zip(ns, k, strict=True)), "tot": dict(zip(ns, tot, strict=True)),
           "err": dict(zip(ns, err[done], strict=True)),
           "N": int(c["optimistic"]), "S": int(c["separation"]), "width": int(c["width"]),
           "title": str(c["case_title"].values)}
    spec = c["recovered_special"].values[done]     # (n, data_seed, c_tilde)
    e_spec = c["gen_error_special"].values[done]
    out["special"] = {n: spec[j] for j, n in enumerate(ns)}
    out["err_special"] = {n: e_spec[j] for j, n in enumerate(ns)}
    return out


def _counts(v, ns):
    return ", ".join(f"n={n}: {v['k'][n]}/{v['tot'][n]}" for n in ns)


def _special_counts(v, ds, n):
    cts = ds["c_tilde"].values
    rec = v["special"][n]
    return ", ".join(f"c̃={c:g}: {int(np.nansum(rec[:, j]))}/{int(np.sum(~np.isnan(rec[:, j])))}"
                     for j, c in enumerate(cts))


def _errs(e):
    e = np.asarray(e, dtype=float)
    e = e[np.isfinite(e)]
    return f"{e.min():.1e}…{e.max():.1e}" if e.size else "–"


def claims(ds):
    out = []
    quick = bool(ds.attrs.get("quick", 0))
    cts = ds["c_tilde"].values
    j0, j1 = int(np.argmin(cts)), int(np.argmin(np.abs(cts - 1.0)))
    for key in ds["case"].values:
        key = str(key)
        c = ds.sel(case=key)
        title = str(c["case_title"].values)
        N, S = int(c["optimistic"]), int(c["separation"])
        if key in PAPER_VALUES:
            out.append(_paper_values_claim(ds, key))
        if not int(c["computed"]):
            for what in ("(i) no recovery below", "(ii) zero-measure recovery at",
                         "(iii) positive-measure recovery from"):
                out.append(Claim(f"{title}: {what} the predicted sizes (N = {N}, S = {S})",
                                 "not computed in quick mode", None, "quick mode runs "
                                 "Example 1 only"))
            continue
        v = _case_view(ds, key)
        ns = v["ns"]
        # (i) below N: no initialization recovers (random or special)
        below = [n for n in ns if n < N]
        if below:
            k_spec = {n: int(np.nansum(v["special"][n])) for n in below}
            agree = all(v["k"][n] == 0 for n in below) and not any(k_spec.values())
            meas = "random θ0: " + _counts(v, below)
            if v["width"] == 2:
                meas += "; prescribed c̃: " + "; ".join(
                    f"n={n}: {_special_counts(v, ds, n)}" for n in below)
            meas += "; RMS errors " + _errs(np.concatenate(
                [v["err"][n].ravel() for n in below]))
            out.append(Claim(f"{title} — (i) below the optimistic size N = {N} no "
                             "initialization recovers the target", meas, agree,
                             "" if agree else "recovery below N"))
        else:
            out.append(Claim(f"{title} — (i) below N = {N} no initialization recovers",
                             "no n < N computed", None))
        # (ii-a) N ≤ n < S: random initializations do not recover (measure zero)
        mid = [n for n in ns if N <= n < S]
        if mid:
            agree = all(v["k"][n] == 0 for n in mid)
            bad = [n for n in mid if v["k"][n]]
            out.append(Claim(
                f"{title} — (ii) at the optimistic size N = {N}"
                + (f" (and up to S − 1 = {S - 1})" if S - 1 > N else "")
                + " recovery has measure zero: random initializations do not recover",
                "random θ0 recovering: " + _counts(v, mid) + "; smallest RMS error "
                + ", ".join(f"n={n}: {np.nanmin(v['err'][n]):.1e}" for n in mid),
                agree, "" if agree else "random initializations recover at n = "
                + ", ".join(map(str, bad)) + f", below the predicted separation size {S}"))
        else:
            out.append(Claim(f"{title} — (ii) random initializations do not recover at "
                             f"N = {N}", "n = N not computed", None))
        # (ii-b) at N the special initializations c̃ → 0 and c̃ = 1 recover
        if v["width"] != 2:
            out.append(Claim(f"{title} — (ii) at N = {N} a zero-measure set (c̃ ∈ {{0, 1}}) "
                             "recovers", "not tested", None,
                             "c̃ = C1/C2 is defined for width 2; no special set of "
                             f"width-{v['width']} initializations is swept"))
        elif N in ns:
            rec = v["special"][N]                 # (data_seed, c_tilde)
            k0, k1 = int(np.nansum(rec[:, j0])), int(np.nansum(rec[:, j1]))
            n_ds = rec.shape[0]
            e = v["err_special"][N]
            agree = (k0 + k1) > 0
            out.append(Claim(
                f"{title} — (ii) at N = {N} a zero-measure set recovers: c̃ → 0 or c̃ = 1 "
                f"(c̃ = {cts[j0]:g} stands for 0) recovers on some datasets",
                f"data seeds recovering: {_special_counts(v, ds, N)}; median RMS error per "
                "c̃: " + ", ".join(f"{c:g}: {np.nanmedian(e[:, j]):.0e}"
                                  for j, c in enumerate(cts)),
                agree,
                ("" if k0 == k1 == n_ds else
                 f"not on every dataset: c̃ = {cts[j0]:g} on {k0}/{n_ds}, c̃ = 1 on "
                 f"{k1}/{n_ds} (the others end at global minima outside Q*, RMS error "
                 f"{_errs(np.where(rec[:, [j0, j1]] == 0, e[:, [j0, j1]], np.nan))})")
                if agree else "neither c̃ → 0 nor c̃ = 1 recovers on any dataset"))
        else:
            out.append(Claim(f"{title} — (ii) at N = {N} c̃ ∈ {{0, 1}} recovers",
                             "n = N not computed", None))
        # (iii) from S on: positive-measure recovery
        above = [n for n in ns if n >= S]
        if above:
            agree = all(v["k"][n] > 0 for n in above)
            zero = [n for n in above if v["k"][n] == 0]
            out.append(Claim(
                f"{title} — (iii) from the separation size S = {S} on, random "
                "initializations recover with positive probability",
                "random θ0 recovering: " + _counts(v, above), agree,
                "" if agree else "no random initialization recovers at n = "
                + ", ".join(map(str, zero)) + " (a lower bound: recovery need not happen "
                "there, Appendix B)"))
        else:
            out.append(Claim(f"{title} — (iii) from S = {S} on, positive-measure recovery",
                             "no n ≥ S computed", None))
        if "separated_fraction" in ds:
            out.append(_separation_claim(ds, key, title))
        if key in PAPER_ALL_ZEROS_IN_TARGET:
            out.append(_zero_search_claim(ds, key, title))
    out.append(_criterion_claim(ds, quick))
    return out


def _separation_claim(ds, key, title):
    """The numerical separation test (no rule) switches at each branch's predicted size:
    DISAGREE if a dataset is separated below it or "not separated" from it on; undecided
    if from it on fewer than half are separated (the rest undecided: the test could not
    tell); agree otherwise."""
    c = ds.sel(case=key)
    frac = c["separated_fraction"].values           # (n, branch_slot)
    und = (c["undecided_fraction"].values if "undecided_fraction" in c
           else np.zeros_like(frac))
    ns = c["n"].values
    parts, off, unsure = [], [], []
    for b, (code, sb) in enumerate(zip(c["branch_code"].values, c["branch_separation"].values,
                                       strict=True)):
        f = frac[:, b]
        ok = np.isfinite(f)
        if sb < 0 or not ok.any():
            continue
        u = np.nan_to_num(und[:, b])
        below, above = f[ok & (ns < sb)], f[ok & (ns >= sb)]
        not_sep_above = (1 - f - u)[ok & (ns >= sb)]
        parts.append(f"{code} (S = {sb}): " + ", ".join(
            f"{n}: {x:.2g}" + (f" ({y:.2g} undecided)" if y > 0 else "")
            for n, x, y in zip(ns[ok], f[ok], u[ok], strict=True)))
        if np.any(below > 0) or np.any(not_sep_above > 1e-9):
            off.append(str(code))
        elif np.any(above < 0.5):
            unsure.append(str(code))
    if not parts:
        return Claim(f"{title} — the numerical separation test switches at the predicted "
                     "sizes", "not computed", None)
    return Claim(
        f"{title} — the numerical separation test (flowtools.separation, no rule) switches "
        "at each branch's predicted size: separated on no dataset below it, on at least "
        "half from it on",
        "fraction of datasets separated per n: " + "; ".join(parts),
        False if off else None if unsure else True,
        "does not switch at the predicted size for " + ", ".join(off) if off else
        "from the predicted size on, the test is undecided on most datasets for "
        + ", ".join(unsure) if unsure else "")


def _zero_search_claim(ds, key, title):
    """Table 1's Q* = ℓ⁻¹(0) at n = p (Example 1: n = 6) against the zero-loss search:
    agree if no dataset has a zero outside Q* at that n, disagree if one has, undecided if
    a zero is neither clearly in nor outside Q* there. The datasets with zeros outside Q*
    below p (the search can find them) and above p are reported beside it."""
    n_all = PAPER_ALL_ZEROS_IN_TARGET[key]
    claim = (f"{title} — Table 1: Q* = ℓ⁻¹(0) at n = {n_all} (no global minimum outside the "
             "target set)")
    if "zero_search_outside" not in ds or ds.attrs.get("zero_search_case") != key:
        return Claim(claim, "not computed", None,
                     "the dataset has no zero_loss_search counts for this case")
    dims = ("zero_search_n", "zero_search_data")
    outside = ds["zero_search_outside"].transpose(*dims).values
    found = ds["zero_search_found"].transpose(*dims).values
    distinct = ds["zero_search_distinct"].transpose(*dims).values
    ambiguous = ds["zero_search_ambiguous"].transpose(*dims).values
    ns = [int(n) for n in ds["zero_search_n"].values]
    labels = [str(d) for d in ds["zero_search_data"].values]
    K = len(labels)

    def hits(row):
        return [lab for lab, k in zip(labels, row, strict=True) if k > 0]

    per_n = {n: hits(outside[i]) for i, n in enumerate(ns)}
    measured = (
        f"datasets with zeros outside Q* (of {K}: {', '.join(labels)}; "
        f"{ds.attrs.get('zero_search_starts', '?')} starts each): "
        + ", ".join(f"n={n}: {len(h)}/{K}" + (f" ({', '.join(h)})" if h else "")
        for n, h in per_n.items())
        + "; zeros found / outside Q* / distinct functions outside, all datasets: "
        + ", ".join(f"n={n}: {int(found[i].sum())}/{int(outside[i].sum())}/"
                    f"{int(distinct[i].sum())}" for i, n in enumerate(ns)))
    if n_all not in ns:
        return Claim(claim, measured, None, f"n = {n_all} not searched")
    i = ns.index(n_all)
    above = {n: h for n, h in per_n.items() if n > n_all and h}
    note_above = ("" if not above else " Zeros outside Q* above it as well, at "
                  + "; ".join(f"n = {n}: {', '.join(h)}" for n, h in above.items())
                  + " (predicted absent for almost every dataset from n = p + 1).")
    if per_n[n_all]:
        return Claim(claim, measured, False,
                     f"zeros outside Q* at n = {n_all} on {', '.join(per_n[n_all])}: the "
                     "statement fails for these data (at n = p isolated global minima "
                     "outside Q* may exist for a positive-measure set of data; "
                     "flowtools.thresholds)." + note_above)
    if ambiguous[i].any():
        return Claim(claim, measured, None,
                     f"a zero neither clearly in nor outside Q* at n = {n_all} on "
                     f"{', '.join(hits(ambiguous[i]))}" + note_above)
    below = {n: h for n, h in per_n.items() if n < n_all and h}
    c = ds.sel(case=key)
    top = int(max(c["branch_separation"].values))
    if below:
        power = ("Below it they exist: " + "; ".join(
            f"n = {n}: {len(h)}/{K} datasets" for n, h in below.items())
            + f" (zeros outside Q* form continua of dimension ≥ p − n there), although "
            f"every branch of Q* is separated from n = {top} on — separation is local "
            "(no other zero near Q*), Q* = ℓ⁻¹(0) global; the search finds them where "
            "they exist.")
    else:
        power = (f"No zeros outside Q* were found below n = {n_all} either, so this "
                 "search's power to find them is not shown on these data.")
    return Claim(claim, measured, True,
                 f"evidence from a multi-start search, not a proof: zeros that no start "
                 f"reaches are missed. {power}" + note_above)


def _paper_values_claim(ds, key):
    c = ds.sel(case=key)
    want = PAPER_VALUES[key]
    got = {"optimistic": int(c["optimistic"])}
    for name, sep in zip(c["branch_paper_name"].values, c["branch_separation"].values,
                         strict=True):
        if str(name) in ("Q1", "Q2"):
            got[str(name)] = int(sep)
    agree = all(got.get(k) == v for k, v in want.items())
    return Claim(f"{c['case_title'].values}: the paper's sizes (optimistic {want['optimistic']}, "
                 f"separation of Q2 {want['Q2']}, of Q1 {want['Q1']}) from flowtools.thresholds",
                 ", ".join(f"{k} {got.get(k)}" for k in want), agree,
                 "" if agree else "the predictions differ from the paper's values")


def _criterion_claim(ds, quick):
    """Whether the tolerance decides: the random cells' errors within a factor 10 of it,
    and whether counting them the other way would change a verdict of (i)–(iii)."""
    from flowtools.status import Status

    e = ds["gen_error"].values                     # (case, n, data_seed, seed)
    fin = np.isfinite(e)
    rec = fin & (e <= TOL)
    rest = fin & (e > TOL)
    band = fin & (e > TOL / 10) & (e < TOL * 10)
    st = ds["status"].values[fin]
    bad = int(sum(not Status(int(x)).ok for x in st))
    S = ds["separation"].values
    ns = ds["n"].values
    where, flips = [], []
    for i, key in enumerate(ds["case"].values):
        for j, n in enumerate(ns):
            b = band[i, j]
            if not b.any():
                continue
            where.append(f"{key} n={n}: " + ", ".join(f"{x:.0e}" for x in np.sort(e[i, j][b])))
            if n < S[i] and (rest[i, j] & b).any():
                flips.append(f"{key} n={n} (< S) would count as recovered at {10 * TOL:g}")
            if n >= S[i] and rec[i, j].sum() and not (rec[i, j] & ~b).any():
                flips.append(f"{key} n={n} (≥ S) would count no recovery at {TOL / 10:g}")
    lo = f"{e[rec].max():.1e}" if rec.any() else "–"
    hi = f"{e[rest].min():.1e}" if rest.any() else "–"
    return Claim(
        f"criterion (flowtools' choice): RMS error ≤ {TOL:g} at ℓ ≤ {LOSS_STOP:g} decides "
        "recovery (no verdict changes within a factor 10 of it)",
        f"{int(fin.sum())} random cells: recovered ones have errors ≤ {lo}, the others "
        f"≥ {hi}; {int(band.sum())} in [{TOL / 10:g}, {TOL * 10:g}]"
        + (" (" + "; ".join(where) + ")" if where else "")
        + f"; {bad} runs without a certified end (status not ok)",
        not flips, "; ".join(flips))


# ---------------------------------------------------------------------- figure
def plot(ds):
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(18, 9.5), constrained_layout=True)
    gs = fig.add_gridspec(2, 12)
    top = [fig.add_subplot(gs[0, 3 * k:3 * k + 3]) for k in range(4)]
    bottom = [fig.add_subplot(gs[1, 4 * k:4 * k + 4]) for k in range(3)]
    cts = ds["c_tilde"].values
    j0, j1 = int(np.argmin(cts)), int(np.argmin(np.abs(cts - 1.0)))
    for k, (ax, key) in enumerate(zip(top, ds["case"].values, strict=True)):
        c = ds.sel(case=key)
        N, S = int(c["optimistic"]), int(c["separation"])
        seps = [(str(code), str(name), int(s)) for code, name, s in
                zip(c["branch_code"].values, c["branch_paper_name"].values,
                    c["branch_separation"].values, strict=True) if s > 0]
        lo, hi = N - 1, max(s for *_, s in seps)
        ax.axvline(N, color="k", ls="--", lw=1.2, label=f"optimistic N = {N}")
        by_size: dict[int, list[str]] = {}
        for code, name, s in seps:
            by_size.setdefault(s, []).append(code + (f" ({name})" if name else ""))
        for b, (s, codes) in enumerate(sorted(by_size.items())):
            ax.axvline(s, color=f"C{b + 2}", ls=":", lw=2.4 if s == S else 1.4,
                       label=f"separation {s}: {', '.join(codes)}"
                             + (" — smallest, S" if s == S else ""))
        if int(c["computed"]):
            rate = c["recovery_rate"].values
            ok = np.isfinite(rate)
            ns = c["n"].values[ok]
            ax.plot(ns, rate[ok], "o-", color="C0", lw=1.8, ms=6,
                    label=f"random θ0 ({c.sizes['data_seed']} data × {c.sizes['seed']} "
                          "seeds)")
            if int(c["width"]) == 2:
                rs = c["recovered_special"].values[ok]
                for j, mk, col, lab in ((j0, "v", "C1", f"c̃ = {cts[j0]:g} (≈ 0)"),
                                        (j1, "^", "C3", "c̃ = 1")):
                    ax.plot(ns + (0.08 if j == j1 else -0.08), np.nanmean(rs[:, :, j], 1),
                            mk, color=col, ms=8, mfc="none", mew=1.6,
                            label=f"{lab}: fraction of data seeds")
        else:
            ax.text(0.5, 0.5, "not computed in quick mode", ha="center", va="center",
                    transform=ax.transAxes, fontsize=10, color="0.3")
        hi = max(hi, _plot_zero_search(ax, ds, str(key)))
        paper = ds.sel(case=key)["case"].item() in PAPER_VALUES
        ax.set_title(f"({LETTERS[k]}) {c['case_title'].values}"
                     + ("" if paper else " (not in the paper)"), fontsize=10, loc="left")
        ax.set_xlim(lo - 0.6, hi + 0.6)
        ax.set_xticks(range(lo, hi + 1))
        ax.set_ylim(-0.05, 1.12)
        ax.set_xlabel("sample size n")
        ax.set_ylabel(f"recovery rate (RMS error ≤ {TOL:g})")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1,
                  frameon=False)
    _plot_errors(bottom[0], ds)
    _plot_special(bottom[1], ds)
    _plot_separation(bottom[2], ds)
    fig.suptitle(f"{TITLE}\ntanh, bias, n inputs uniform on [−2, 2]^d, gradient flow from "
                 f"scale {SCALE:g} to ℓ ≤ {LOSS_STOP:g}; "
                 + ("quick mode (Example 1 only)" if ds.attrs.get("quick") else "full mode"),
                 fontsize=11)
    return fig


def _plot_zero_search(ax, ds, key) -> int:
    """In the panel of the case with Table 1's statement: the fraction of datasets on
    which the zero-loss search found zeros of ℓ outside Q*, and n = p where Table 1 says
    there are none. Returns the largest n drawn (0 if none)."""
    if key != ds.attrs.get("zero_search_case") or "zero_search_outside" not in ds:
        return 0
    out = ds["zero_search_outside"].transpose("zero_search_n", "zero_search_data").values
    ns = ds["zero_search_n"].values
    n_all = PAPER_ALL_ZEROS_IN_TARGET[key]
    ax.axvline(n_all, color="0.35", ls="-.", lw=1.2,
               label=f"n = p = {n_all}: Q* = ℓ⁻¹(0) (Table 1)")
    ax.plot(ns, (out > 0).mean(axis=1), "x-", color="k", ms=8, mew=1.8, lw=1.2,
            label=f"fraction of datasets with zeros outside Q*\n(zero-loss search: "
                  f"{out.shape[1]} data × {ds.attrs.get('zero_search_starts', '?')} starts)")
    return int(ns.max())


def _plot_errors(ax, ds):
    """(e) every random cell's RMS error against n, per case: the tolerance in the gap."""
    from matplotlib.ticker import MaxNLocator

    computed = [key for key in ds["case"].values if int(ds["computed"].sel(case=key))]
    for k, key in enumerate(computed):
        c = ds.sel(case=key)
        col = f"C{list(ds['case'].values).index(key)}"
        for n in c["n"].values:
            e = c["gen_error"].sel(n=n).values.ravel()
            e = e[np.isfinite(e)]
            if e.size:
                x = n + (k - (len(computed) - 1) / 2) * 0.18 \
                    + np.linspace(-0.05, 0.05, e.size)
                ax.semilogy(x, np.maximum(e, 1e-14), ".", color=col, ms=4,
                            label=str(c["case_title"].values) if n == c["n"].values[
                                np.isfinite(c["recovery_rate"].values)][0] else None)
    ax.axhline(TOL, color="k", ls="--", lw=1, label=f"tolerance {TOL:g}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("sample size n")
    ax.set_ylabel("RMS generalization error (random θ0)")
    ax.set_title(f"(e) every random cell's error at ℓ ≤ {LOSS_STOP:g} (below 1e-14 drawn "
                 "at 1e-14)", fontsize=10, loc="left")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")


def _plot_special(ax, ds):
    """(f) error against c̃ at the optimistic size N, one line per data seed: recovery at
    c̃ → 0 and c̃ = 1 only (a zero-measure set), not in between."""
    cts = ds["c_tilde"].values
    drawn = False
    for k, key in enumerate(ds["case"].values):
        c = ds.sel(case=key)
        N = int(c["optimistic"])
        if not int(c["computed"]) or int(c["width"]) != 2 or N not in c["n"].values:
            continue
        e = c["gen_error_special"].sel(n=N).values        # (data_seed, c_tilde)
        if not np.isfinite(e).any():
            continue
        off = 1.0 + 0.25 * (k - 1.5) / 1.5                   # a small shift per case
        for j, row in enumerate(e):
            ax.loglog(cts * off, np.maximum(row, 1e-14), "o-", color=f"C{k}", ms=4, lw=0.9,
                      alpha=0.75,
                      label=f"{c['case_title'].values}, n = N = {N}" if j == 0 else None)
        drawn = True
    ax.axhline(TOL, color="k", ls="--", lw=1, label=f"tolerance {TOL:g}")
    ax.set_xlabel("c̃ = min(|C1/C2|, |C2/C1|) at initialization (width 2)")
    ax.set_ylabel("RMS generalization error (below 1e-14 drawn at 1e-14)")
    ax.set_title("(f) prescribed c̃ at the optimistic size N: one line per data seed",
                 fontsize=10, loc="left")
    ax.grid(True, which="major", alpha=0.3)
    if drawn:
        ax.legend(fontsize=7, loc="lower center")


def _plot_separation(ax, ds):
    """(g) the numerical separation test: fraction of datasets separated against n − S_b
    (S_b: the branch's predicted separation size), every branch of every case — the
    prediction is a switch at 0."""
    ax.set_title("(g) separation test (no rule): datasets on which a branch is separated",
                 fontsize=10, loc="left")
    if "separated_fraction" not in ds:
        ax.text(0.5, 0.5, "numerical separation test (flowtools.separation.separation_scan)"
                "\nnot in this dataset: panel left empty",
                ha="center", va="center", transform=ax.transAxes, fontsize=9, color="0.3")
        ax.set_xticks([])
        ax.set_yticks([])
        return
    from matplotlib.ticker import MaxNLocator

    markers = "osD^vP*X"
    for k, key in enumerate(ds["case"].values):
        c = ds.sel(case=key)
        first = True
        for b, (code, sb) in enumerate(zip(c["branch_code"].values,
                                           c["branch_separation"].values, strict=True)):
            f = c["separated_fraction"].values[:, b]
            ok = np.isfinite(f)
            if sb < 0 or not ok.any():
                continue
            x = c["n"].values[ok] - sb + 0.07 * (k - 1.5)
            ax.plot(x, f[ok], "-", marker=markers[b % len(markers)], color=f"C{k}", ms=4,
                    lw=0.8, alpha=0.8,
                    label=str(c["case_title"].values) if first else None)
            first = False
    ax.axvline(0, color="k", ls=":", lw=1.6, label="predicted switch (n = S of the branch)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    lim = max(abs(v) for v in ax.get_xlim())
    ax.set_xlim(-lim - 0.3, lim + 0.3)
    ax.set_xlabel("n − S_b (S_b: predicted separation size of branch b; a marker per b)")
    ax.set_ylabel("fraction of datasets separated")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="center right")

"""Run every module's checks and write the report: ``run(quick=..., out=..., only=...)``.

    >>> from theory.runner import run
    >>> report = run(quick=True, out="out/theory", only=["corollaries"])  # doctest: +SKIP
    >>> report.ok  # doctest: +SKIP
    True

(Skipped as a doctest only because it computes for about half a minute and writes a
report folder; ``tests/test_theory.py`` runs the same quick subset and checks its verdicts.)
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field

from theory.report import Report, not_applicable

MODULES = ("theorem1", "theorem2", "theorem3", "corollaries", "proposition1")


@dataclass
class Context:
    """What the modules share: mode, output folder, caches, remarks."""

    quick: bool = False
    out: str = "out/theory"
    cases: dict = field(default_factory=dict)
    cache: dict = field(default_factory=dict)
    emitted: set = field(default_factory=set)
    remarks: list = field(default_factory=list)

    def pick(self, quick_names, full_names):
        names = quick_names if self.quick else full_names
        return [self.cases[n] for n in names]


def run_module(ctx, name):
    """One module's claims and wall seconds (a crash is one failed claim, reported)."""
    t = time.perf_counter()
    mod = importlib.import_module(f"theory.{name}")
    try:
        claims = mod.run(ctx)
    except Exception as err:  # a crash is a failed check, reported, not hidden
        import traceback

        traceback.print_exc()
        claims = [not_applicable(name, f"module {name} crashed", "-", repr(err))]
        claims = [c.__class__(**{**c.__dict__, "verdict": "fail"}) for c in claims]
    return claims, time.perf_counter() - t


def used_cases(ctx) -> set:
    """The problems whose limits the claims computed (``measure.limit_of``'s cache keys)."""
    return {k[0] for k in ctx.cache if isinstance(k, tuple) and len(k) == 4}


def estimate_checks(ctx, names=None) -> dict:
    """``measure.error_factor`` for every problem whose limits the claims computed (or
    those named), a reported check of the error estimates, not a calibration."""
    from theory import measure

    names = used_cases(ctx) if names is None else set(names)
    out = {}
    for case in ctx.cases.values():
        if case.name in names:
            try:
                out[case.name] = measure.error_factor(case, cache=ctx.cache)
            except Exception as err:  # reported, never fatal: the claims are already made
                ctx.remarks.append(f"error-estimate check on {case.name} failed: {err!r}")
    return out


def make_context(*, quick=False, out="out/theory", activation=None) -> Context:
    from theory.problems import all_cases

    return Context(quick=quick, out=out, cases=all_cases(activation))


# ---------------------------------------------------------------------- worker processes
# The modules are independent computations: with jobs > 1 they run in that many worker
# processes (spawned: a fresh JAX each), the costliest first, each worker keeping one
# Context (its caches serve every module it runs). What the serial run shares across
# modules and the workers cannot: the assumption records A.* are emitted once per run —
# each worker emits its own and the first in MODULES order is kept, as in a serial run.
COST = {"theorem2": 5, "theorem1": 4, "corollaries": 3, "theorem3": 2, "proposition1": 1}
_WORKER: dict = {}


def _worker_start(quick, out, activation):
    _WORKER["ctx"] = make_context(quick=quick, out=out, activation=activation)


def _worker_module(name):
    ctx = _WORKER["ctx"]
    n_remarks = len(ctx.remarks)
    claims, seconds = run_module(ctx, name)
    return claims, seconds, ctx.remarks[n_remarks:], used_cases(ctx), list(ctx.cases)


def _worker_estimate(name):
    ctx = _WORKER["ctx"]
    n_remarks = len(ctx.remarks)
    return estimate_checks(ctx, [name]), ctx.remarks[n_remarks:]


def _in_workers(names, jobs, *, quick, out, activation, verbose):
    """(claims per module, seconds per module, remarks, estimate checks) from ``jobs``
    worker processes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    found, seconds, remarks, used, order = {}, {}, [], set(), []
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_start, initargs=(quick, out, activation))
    try:
        futures = {pool.submit(_worker_module, n): n
                   for n in sorted(names, key=lambda n: -COST.get(n, 0))}
        for fut in as_completed(futures):
            name = futures[fut]
            found[name], seconds[name], rem, u, order = fut.result()
            remarks += rem
            used |= u
            if verbose:
                print(f"[{name}] {len(found[name])} claims, {seconds[name]:.1f} s", flush=True)
        checks = {}
        for fut in [pool.submit(_worker_estimate, n) for n in order if n in used]:
            c, rem = fut.result()
            checks.update(c)
            remarks += rem
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    emitted, claims = set(), {}
    for name in names:  # the assumption records once, from the first module in order
        keep = []
        for c in found[name]:
            key = (c.id, c.problem)
            if c.id.startswith("A.") and key in emitted:
                continue
            emitted.add(key)
            keep.append(c)
        claims[name] = keep
    return claims, seconds, remarks, checks


def default_jobs(names) -> int:
    """As many worker processes as cores, at most one per module; 1 (in-process) on one
    core."""
    from flowtools.integrate.options import available_cores

    return max(1, min(available_cores(), len(names)))


def run(*, quick: bool = False, out: str = "out/theory", only=None, activation=None,
        verbose=True, jobs: int | None = 1) -> Report:
    """Run the modules named in ``only`` (default: all) and write the report to ``out``.

    ``activation`` replaces σ in every network problem (a deliberately broken input such
    as "x**3" shows the hypotheses' checks fail and the claims become not applicable).
    ``jobs``: worker processes (1: in this process; None: one per core, at most one per
    module); the claims and the report are the same either way."""
    names = list(MODULES) if not only else list(only)
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        from flowtools.errors import FlowtoolsError

        raise FlowtoolsError(f"unknown module(s) {unknown}; choose from {list(MODULES)}.")
    from flowtools import _validate as V
    from flowtools.activations import get_activation

    jobs = default_jobs(names) if jobs is None else V.positive_int(jobs, "jobs")
    if activation is not None:  # bad input: one clear error here, before any worker starts
        get_activation(activation)
    report = Report(settings=dict(mode="quick" if quick else "full", modules=" ".join(names)))
    if activation is not None:
        report.settings["activation"] = activation
    t_all = time.perf_counter()
    if jobs > 1 and len(names) > 1:
        claims, seconds, remarks, checks = _in_workers(
            names, min(jobs, len(names)), quick=quick, out=out, activation=activation,
            verbose=verbose)
        for name in names:
            report.add(*claims[name])
            report.timings[name] = seconds[name]
        report.settings["jobs"] = min(jobs, len(names))
    else:
        ctx = make_context(quick=quick, out=out, activation=activation)
        for name in names:
            claims, report.timings[name] = run_module(ctx, name)
            report.add(*claims)
            if verbose:
                print(f"[{name}] {len(claims)} claims, {report.timings[name]:.1f} s",
                      flush=True)
        checks = estimate_checks(ctx)
        remarks = ctx.remarks
    if verbose and checks:
        print("[estimate check] max_t ‖h_e − h_m‖/(err_e + err_m), reported only: "
              + ", ".join(f"{k} {v:.3g}" for k, v in checks.items()), flush=True)
    report.timings["total"] = time.perf_counter() - t_all
    report.remarks.extend(remarks)
    if checks:
        report.settings["error_estimate_check"] = ", ".join(f"{k}: {v:.3g}"
                                                           for k, v in checks.items())
        report.remarks.append(
            "Error-estimate check (reported only; no tolerance uses it): max_t ‖h_extrapolate "
            "− h_manifold‖/(err_e + err_m) on a direction no claim uses, per problem: "
            + ", ".join(f"{k}: {v:.3g}" for k, v in checks.items()) + ". ≤ 1: the two "
            "methods' own estimates (the flows' global error measured by a reference solve at "
            "rtol/10, plus truncation and round-off) bound their difference; ≪ 1 where both "
            "sit at round-off. Tolerances of comparisons of two limits are 10 × the estimates.")
    report.write(out)
    return report

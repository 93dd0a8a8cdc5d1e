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


def estimate_checks(ctx) -> dict:
    """``measure.error_factor`` for every problem whose limits the claims computed (a
    reported check of the error estimates, not a calibration)."""
    from theory import measure

    used = {k[0] for k in ctx.cache if isinstance(k, tuple) and len(k) == 4}
    out = {}
    for case in ctx.cases.values():
        if case.name in used:
            try:
                out[case.name] = measure.error_factor(case, cache=ctx.cache)
            except Exception as err:  # reported, never fatal: the claims are already made
                ctx.remarks.append(f"error-estimate check on {case.name} failed: {err!r}")
    return out


def make_context(*, quick=False, out="out/theory", activation=None) -> Context:
    from theory.problems import all_cases

    return Context(quick=quick, out=out, cases=all_cases(activation))


def run(*, quick: bool = False, out: str = "out/theory", only=None, activation=None,
        verbose=True) -> Report:
    """Run the modules named in ``only`` (default: all) and write the report to ``out``.

    ``activation`` replaces σ in every network problem (a deliberately broken input such
    as "x**3" shows the hypotheses' checks fail and the claims become not applicable)."""
    names = list(MODULES) if not only else list(only)
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        from flowtools.errors import FlowtoolsError

        raise FlowtoolsError(f"unknown module(s) {unknown}; choose from {list(MODULES)}.")
    ctx = make_context(quick=quick, out=out, activation=activation)
    report = Report(settings=dict(mode="quick" if quick else "full", modules=" ".join(names)))
    if activation is not None:
        report.settings["activation"] = activation
    t_all = time.perf_counter()
    for name in names:
        t = time.perf_counter()
        mod = importlib.import_module(f"theory.{name}")
        try:
            claims = mod.run(ctx)
        except Exception as err:  # a crash is a failed check, reported, not hidden
            import traceback

            traceback.print_exc()
            claims = [not_applicable(name, f"module {name} crashed", "-", repr(err))]
            claims = [c.__class__(**{**c.__dict__, "verdict": "fail"}) for c in claims]
        report.add(*claims)
        report.timings[name] = time.perf_counter() - t
        if verbose:
            print(f"[{name}] {len(claims)} claims, {report.timings[name]:.1f} s", flush=True)
    t = time.perf_counter()
    checks = estimate_checks(ctx)
    report.timings["estimate check"] = time.perf_counter() - t
    if verbose and checks:
        print("[estimate check] max_t ‖h_e − h_m‖/(err_e + err_m), reported only: "
              + ", ".join(f"{k} {v:.3g}" for k, v in checks.items()), flush=True)
    report.timings["total"] = time.perf_counter() - t_all
    report.remarks.extend(ctx.remarks)
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

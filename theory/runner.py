"""Run every module's checks and write the report: ``run(quick=..., out=..., only=...)``.

    >>> from theory.runner import run
    >>> report = run(quick=True, out="out/theory", only=["corollaries"])  # doctest: +SKIP
    >>> report.ok  # doctest: +SKIP
    True
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
    report.timings["total"] = time.perf_counter() - t_all
    report.remarks.extend(ctx.remarks)
    kappas = {k[1]: v for k, v in ctx.cache.items()
              if isinstance(k, tuple) and k and k[0] == "error_factor"}
    if kappas:
        report.remarks.append(
            "Error-estimate calibration κ = max(1, max_t ‖h_extrapolate − h_manifold‖/(err_e + "
            "err_m)) on a direction used by no claim: " + ", ".join(
                f"{k}: {v:.3g}" for k, v in kappas.items()) + ". κ > 1 means "
            "flowtools.limit's extrapolation error estimate was optimistic by that factor; "
            "tolerances of the comparisons of two limits are 10 × κ × the estimates.")
    report.write(out)
    return report

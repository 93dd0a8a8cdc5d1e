"""Claims, verdicts and the report of ``python -m theory``.

A ``Claim`` is one clause of one result of the paper (Zhao, Bai, Zhang) checked on one
problem: the measured quantity, the relation it must satisfy (``measured ≤ threshold`` for
a quantity that is small when the claim holds, ``measured ≥ threshold`` for a rate), the
threshold with the reason for its value, and a verdict:

* ``pass`` / ``fail`` — the relation holds / does not;
* ``n/a`` — the claim does not apply (a hypothesis fails), with the reason.

``Report`` collects claims and remarks, prints a table, and writes ``report.md`` (table +
figures) and ``results.json`` to an output folder.

    >>> c = check("T1.ii", "h(θ, t) determined by C(θ)", "example1", "max rel. diff",
    ...           3e-15, "<=", 1e-13, "10 × the two limits' error estimates")
    >>> c.verdict
    'pass'
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field

import numpy as np

PASS, FAIL, NA = "pass", "fail", "n/a"
NULL_MEANS = ("a number not measured or not finite: measured and threshold are null for an "
              "n/a claim (its reason says why); elsewhere null stands for NaN or ±infinity")


@dataclass(frozen=True)
class Claim:
    """One checked clause.

    Attributes:
        id: e.g. "T1.ii", "C2", "A.T3" (assumptions).
        statement: the clause in words.
        problem: the problem's name (``theory.problems``).
        quantity: what was measured.
        measured: its value (NaN if not measured).
        relation: "<=" (small if the claim holds) or ">=" (a rate or a lower bound).
        threshold: the value ``measured`` is compared with.
        tolerance: why the threshold has that value.
        verdict: "pass", "fail" or "n/a".
        reason: for n/a (or a failing assumption) the reason; otherwise a short note.
        figure: path of a PNG relative to the output folder, or "".
        details: further numbers (JSON-serializable).
    """

    id: str
    statement: str
    problem: str
    quantity: str
    measured: float
    relation: str
    threshold: float
    tolerance: str
    verdict: str
    reason: str = ""
    figure: str = ""
    details: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict == PASS


def check(cid, statement, problem, quantity, measured, relation, threshold, tolerance, *,
          reason="", figure="", details=None) -> Claim:
    """A claim with its verdict from ``measured relation threshold``."""
    measured, threshold = float(measured), float(threshold)
    if relation not in ("<=", ">="):
        raise ValueError(f"relation must be '<=' or '>=', got {relation!r}")
    ok = measured <= threshold if relation == "<=" else measured >= threshold
    ok = ok and math.isfinite(measured)
    return Claim(cid, statement, problem, quantity, measured, relation, threshold, tolerance,
                 PASS if ok else FAIL, reason, figure, _jsonable(details or {}))


def not_applicable(cid, statement, problem, reason, *, quantity="", details=None) -> Claim:
    """A claim whose hypotheses fail: verdict n/a with the reason."""
    return Claim(cid, statement, problem, quantity, float("nan"), "", float("nan"), "", NA,
                 reason, "", _jsonable(details or {}))


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        return float(x)
    if isinstance(x, (np.integer, int)) and not isinstance(x, bool):
        return int(x)
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    return x if isinstance(x, str) or x is None else str(x)


# ---------------------------------------------------------------------- figures
def new_figure(*args, **kwargs):
    """A matplotlib figure on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_figure(fig, out_dir, name) -> str:
    """Save ``fig`` as ``out_dir/figures/name.png`` (atomically); return the path relative
    to out_dir."""
    import matplotlib.pyplot as plt

    from flowtools._io import savefig

    rel = os.path.join("figures", f"{name}.png")
    path = os.path.join(out_dir, rel)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fig.tight_layout()
        savefig(fig, path, dpi=110)
    finally:
        plt.close(fig)
    return rel


# ---------------------------------------------------------------------- the report
@dataclass
class Report:
    """Claims (in order), remarks, timings; printed as a table and written to disk."""

    claims: list = field(default_factory=list)
    remarks: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def add(self, *claims: Claim) -> None:
        self.claims.extend(claims)

    @property
    def failed(self) -> list:
        return [c for c in self.claims if c.verdict == FAIL]

    @property
    def ok(self) -> bool:
        return not self.failed

    def counts(self) -> dict:
        out = {PASS: 0, FAIL: 0, NA: 0}
        for c in self.claims:
            out[c.verdict] += 1
        return out

    def table(self) -> str:
        """The claim-by-claim table for the terminal."""
        rows = [("claim", "problem", "measured", "rel", "threshold", "verdict")]
        for c in self.claims:
            rows.append((c.id, c.problem, _fmt(c.measured), c.relation, _fmt(c.threshold),
                         c.verdict.upper() if c.verdict != PASS else c.verdict))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        for c in self.claims:
            if c.verdict != PASS and c.reason:
                lines.append(f"  {c.id} [{c.problem}] {c.verdict}: {c.reason}")
        n = self.counts()
        lines.append(f"{n[PASS]} passed, {n[FAIL]} failed, {n[NA]} not applicable")
        return "\n".join(lines)

    def markdown(self) -> str:
        n = self.counts()
        out = ["# Numerical verification of the paper's results", "",
               "Zhao, Bai, Zhang, *Disentangle Sample Size and Initialization Effect on "
               "Perfect Generalization for Single-Neuron Target*: Theorems 1–4, "
               "Corollaries 1–3, Proposition 1. Generated by `python -m theory`.", "",
               f"**{n[PASS]} passed, {n[FAIL]} failed, {n[NA]} not applicable.**", ""]
        if self.settings:
            out += ["Settings: " + ", ".join(f"{k} = `{v}`" for k, v in self.settings.items()),
                    ""]
        out += ["| claim | problem | statement | measured quantity | measured | | threshold "
                "| tolerance (why) | verdict |",
                "|---|---|---|---|---|---|---|---|---|"]
        for c in self.claims:
            verdict = c.verdict if c.verdict == PASS else f"**{c.verdict.upper()}**"
            if c.verdict != PASS and c.reason:
                verdict += f": {c.reason}"
            rel = {"<=": "≤", ">=": "≥"}.get(c.relation, "")
            out.append("| " + " | ".join(_md(v) for v in (
                c.id, c.problem, c.statement, c.quantity, _fmt(c.measured), rel,
                _fmt(c.threshold), c.tolerance, verdict)) + " |")
        notes = [c for c in self.claims if c.verdict == PASS and c.reason]
        if notes:
            out += ["", "## Notes on passing claims", ""]
            out += [f"- **{c.id}** ({c.problem}): {c.reason}" for c in notes]
        if self.remarks:
            out += ["", "## Remarks", ""]
            out += [f"- {r}" for r in self.remarks]
        figs = [(c.id, c.problem, c.figure) for c in self.claims if c.figure]
        seen = set()
        if figs:
            out += ["", "## Figures", ""]
            for cid, prob, fig in figs:
                if fig in seen:
                    continue
                seen.add(fig)
                out += [f"### {cid} — {prob}", "", f"![{cid} {prob}]({fig})", ""]
        if self.timings:
            out += ["", "## Timings (s)", ""]
            out += [f"- {k}: {v:.1f}" for k, v in self.timings.items()]
        return "\n".join(out) + "\n"

    def to_json(self) -> dict:
        return {"counts": self.counts(), "ok": self.ok, "settings": _jsonable(self.settings),
                "timings": _jsonable(self.timings), "remarks": list(self.remarks),
                "claims": [_jsonable(asdict(c)) for c in self.claims]}

    def write(self, out_dir) -> tuple[str, str]:
        """Write results.json (strict JSON, ``null`` for an unmeasured or non-finite number)
        and then report.md into ``out_dir``, each atomically; return their paths. (``python
        -m theory`` also makes the pair and figures/ one set: ``theory.__main__``.)"""
        from flowtools._io import write_json, write_text

        os.makedirs(out_dir, exist_ok=True)
        md = os.path.join(out_dir, "report.md")
        js = os.path.join(out_dir, "results.json")
        write_json(js, self.to_json(), indent=1, null_means=NULL_MEANS)
        write_text(md, self.markdown())
        return md, js


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    v = float(v)
    if v == 0 or 1e-3 <= abs(v) < 1e4:
        return f"{v:.4g}"
    return f"{v:.2e}"


def _md(s) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")

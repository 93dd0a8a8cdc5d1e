"""A figure's claims: what the paper says, what flowtools measured, and whether they agree.

Every figure of ``flowtools reproduce`` returns a list of ``Claim``; the runner stores them
in the figure's netCDF attributes (strict JSON), in ``OUT/<figure>_claims.json`` and prints
them as a table. ``agree`` is True, False, or None (not decidable from this run, e.g. in
quick mode); a disagreement carries its ``evidence``.

    >>> c = Claim("n = 6: every small initialization recovers", "135/135 below 1e-8", True)
    >>> c.verdict
    'agree'
    >>> print(claims_markdown([c]).splitlines()[2])
    | n = 6: every small initialization recovers | 135/135 below 1e-8 | agree |  |
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

__all__ = ["Claim", "claims_from_json", "claims_json", "claims_markdown", "print_claims"]


@dataclass(frozen=True)
class Claim:
    """One claim of the paper checked by one run.

    claim: the paper's statement (with where it is made: "Fig. 4(d)", "§5.2").
    measured: what this run measured, in numbers.
    agree: True / False / None (undecided: the run cannot tell, e.g. a quick run).
    evidence: why, when they disagree (or what limits the verdict).
    """

    claim: str
    measured: str
    agree: bool | None
    evidence: str = ""

    def __post_init__(self):
        if self.agree not in (True, False, None):
            raise TypeError(f"agree must be True, False or None, got {self.agree!r}")

    @property
    def verdict(self) -> str:
        return {True: "agree", False: "DISAGREE", None: "undecided"}[self.agree]


def claims_json(claims) -> str:
    """The claims as a strict JSON array (one object per claim, with its verdict)."""
    return json.dumps([asdict(c) | {"verdict": c.verdict} for c in claims],
                      ensure_ascii=False, allow_nan=False)


def claims_from_json(text: str) -> list[Claim]:
    """Inverse of ``claims_json`` (e.g. from a figure's netCDF attribute ``claims``)."""
    return [Claim(d["claim"], d["measured"], d["agree"], d.get("evidence", ""))
            for d in json.loads(text)]


def _cell(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def claims_markdown(claims, *, figure: str | None = None) -> str:
    """A Markdown table: claim | measured | verdict | evidence (a ``figure`` column first
    if given)."""
    head = ["claim", "measured", "verdict", "evidence"]
    if figure is not None:
        head = ["figure"] + head
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in claims:
        row = [c.claim, c.measured, c.verdict, c.evidence]
        if figure is not None:
            row = [figure] + row
        lines.append("| " + " | ".join(_cell(x) for x in row) + " |")
    return "\n".join(lines)


def print_claims(name: str, claims, *, file=None) -> None:
    """The claims as indented plain text: verdict, the claim, what was measured, evidence."""
    print(f"{name}: {len(claims)} claims", file=file)
    for c in claims:
        print(f"  [{c.verdict}] {c.claim}", file=file)
        print(f"      measured: {c.measured}", file=file)
        if c.evidence:
            print(f"      evidence: {c.evidence}", file=file)

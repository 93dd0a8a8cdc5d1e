"""theory/: the claims pass on the built-in problems, and fail or become not applicable
(with the reason) on deliberately broken inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from theory import assumptions, theorem1
from theory.problems import all_cases, broken_cases
from theory.report import FAIL, NA, PASS
from theory.runner import make_context, run


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return make_context(quick=True, out=str(tmp_path_factory.mktemp("theory")))


@pytest.fixture(scope="module")
def subset(tmp_path_factory):
    """Theorem 3 and Proposition 1 in quick mode, in this process (jobs=1)."""
    out = tmp_path_factory.mktemp("subset")
    return out, run(quick=True, out=str(out), only=["theorem3", "proposition1"],
                    verbose=False, jobs=1)


def test_quick_subset_passes_and_writes_report(subset):
    # Theorem 3's rate on the three non-gradient fields (μ2 > 0, = 0, < 0) and Example 1,
    # and Proposition 1: every verdict passes; the report files are written.
    tmp_path, rep = subset
    verdicts = {(c.id, c.problem): c.verdict for c in rep.claims}
    assert all(v == PASS for v in verdicts.values()), rep.table()
    assert {("T3.rate", n) for n in ("field+", "field0", "field-", "example1")} <= set(verdicts)
    rates = {c.problem: c.details for c in rep.claims if c.id == "T3.rate"}
    # observed rate ≥ the theorem's bound, and close to the α-expansion's prediction
    for name, d in rates.items():
        assert d["rate"] >= d["bound"] - 3 * d["se"], name
    assert abs(rates["field+"]["rate"] - 0.5) < 0.05  # 1 − μ2/μ1 with μ2/μ1 = 1/2
    assert abs(rates["field-"]["rate"] - 1.0) < 0.05
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["ok"] and data["counts"]["fail"] == 0
    md = (tmp_path / "report.md").read_text()
    assert "T3.rate" in md and "figures/T3_rate_field+.png" in md
    assert (tmp_path / "figures" / "T3_rate_field+.png").stat().st_size > 1000


def test_worker_processes_give_the_same_claims(subset, tmp_path):
    # the modules in two spawned processes: the same claims in the same order (the
    # assumption records once, from the first module, as in one process), the same numbers
    # (the same compiled programs on the same inputs), the same estimate checks
    _, serial = subset
    rep = run(quick=True, out=str(tmp_path), only=["theorem3", "proposition1"],
              verbose=False, jobs=2)
    assert rep.settings["jobs"] == 2
    key = [(c.id, c.problem, c.verdict) for c in serial.claims]
    assert [(c.id, c.problem, c.verdict) for c in rep.claims] == key
    for a, b in zip(rep.claims, serial.claims, strict=True):
        assert np.allclose(np.asarray(a.measured, float), np.asarray(b.measured, float),
                           rtol=1e-9, atol=0, equal_nan=True), (a.id, a.problem)
    assert rep.settings["error_estimate_check"] == serial.settings["error_estimate_check"]
    assert (tmp_path / "report.md").exists()


@pytest.mark.parametrize("name, why", [("cubic", "σ'(0)"), ("shifted", "σ(0)")])
def test_broken_activation_makes_claims_not_applicable(tmp_path, name, why):
    ctx = make_context(quick=True, out=str(tmp_path))
    ctx.cases["example1"] = broken_cases()[name]
    claims = theorem1.run(ctx)
    by_id = {c.id: c for c in claims}
    assert by_id["A.T1"].verdict == FAIL and why in by_id["A.T1"].reason
    for cid in ("T1.i", "T1.ii", "T1.iii"):
        assert by_id[cid].verdict == NA and why in by_id[cid].reason


def test_assumptions_hold_on_every_builtin_problem(ctx):
    for case in ctx.cases.values():
        theorems = ("T1", "T2", "T3", "T4") if case.is_network else ("T3",)
        for t in theorems:
            assert assumptions.gate(ctx, case, t) is None, (case.name, t)
    # a field is not a network loss: Theorems 1, 2, 4 do not apply to it
    assert "not a network" in assumptions.gate(ctx, ctx.cases["field0"], "T1")


def test_T1ii_fails_when_the_perturbation_changes_C(ctx, monkeypatch):
    from theory import measure

    def no_calibration(*a, **k):
        raise AssertionError("a tolerance used the calibration factor κ")

    monkeypatch.setattr(measure, "error_factor", no_calibration)  # tolerances need no κ
    case = ctx.cases["example1"]
    theta = case.direction()
    ts = theorem1.times(case, theta)[:4]
    k = case.kernel_vector(1)
    ok = theorem1.clause_ii(ctx, case, theta, theta + k, ts)
    assert ok.verdict == PASS, ok
    # the same perturbation plus a small step along the top eigenspace: C changes
    bad = theorem1.clause_ii(ctx, case, theta, theta + k + 1e-3 * case.system.V1[:, 0], ts)
    assert bad.verdict == FAIL and bad.measured > 100 * bad.threshold
    assert bad.details["dC"] > 1e-4


def test_kernel_vector_keeps_C_and_direction_is_normalized():
    case = all_cases()["d3"]
    th = case.direction()
    assert np.linalg.norm(case.system.coords(th)) == pytest.approx(1.0, rel=1e-14)
    k = case.kernel_vector(1)
    C = case.problem.imbalance
    np.testing.assert_allclose(C(th + k), C(th), rtol=0, atol=1e-14 * np.linalg.norm(C(th)))


def test_cli_verify_runs_theory(tmp_path, capsys):
    from flowtools.cli import main

    code = main(["verify", "--quick", "--only", "proposition1", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "P1" in out and "passed" in out
    assert (tmp_path / "report.md").exists()


@pytest.mark.slow
def test_quick_mode_every_claim_passes(tmp_path):
    rep = run(quick=True, out=str(tmp_path), verbose=False)
    assert rep.ok, rep.table()
    assert all(c.verdict == PASS for c in rep.claims), rep.table()
    ids = {c.id for c in rep.claims}
    assert {"T1.i", "T1.ii", "T1.iii", "T2.ii", "T2.iii", "T2.iii·c", "T3.rate", "C1", "C2",
            "C3", "P1", "A.T1", "A.T2", "A.T3", "A.T4"} <= ids

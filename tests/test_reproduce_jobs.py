"""``reproduce_all(jobs=…)``: figures in worker processes, grouped where one figure reads
another's in-process results; the same files and claims as one process."""

from __future__ import annotations

import json

import pytest

from flowtools.experiments import reproduce as R


def test_groups_cover_every_figure_once_and_keep_sharers_together():
    names = list(R.FIGURES)
    groups = R._groups(names)
    flat = [n for g in groups for n in g]
    assert sorted(flat) == sorted(names) and len(flat) == len(set(flat))
    for shared in R.GROUPS:
        holding = [g for g in groups if set(g) & set(shared)]
        assert len(holding) == 1, shared
        # in FIGURES order inside the group: the producer runs before its readers
        assert holding[0] == [n for n in names if n in shared]
    cost = [sum(R._seconds(R.figure_module(n).FULL_TIME) for n in g) for g in groups]
    assert cost == sorted(cost, reverse=True)
    # a subset keeps only the names asked for
    assert sorted(n for g in R._groups(["fig11", "fig2"]) for n in g) == ["fig11", "fig2"]


def test_seconds_of_full_time():
    assert R._seconds("149 s") == 149.0
    assert R._seconds("4 s after fig4 (shares its flows)") == 4.0
    assert R._seconds("-") == 0.0 and R._seconds("") == 0.0


@pytest.mark.slow
def test_two_processes_give_the_claims_of_one(tmp_path):
    names = ["fig2", "fig5"]
    one, f1 = R.reproduce_all(quick=True, out=tmp_path / "one", names=names, jobs=1,
                              log=lambda *a: None)
    two, f2 = R.reproduce_all(quick=True, out=tmp_path / "two", names=names, jobs=2,
                              log=lambda *a: None)
    assert not f1 and not f2
    assert [r.name for r in two] == [r.name for r in one] == names
    for a, b in zip(one, two, strict=True):
        assert [(c.claim, c.measured, c.agree) for c in a.claims] == \
               [(c.claim, c.measured, c.agree) for c in b.claims]
    summary = json.loads((tmp_path / "two" / "reproduce_all.json").read_text())
    assert summary["jobs"] == 2 and set(summary["figures"]) == set(names)
    for name in names:
        assert (tmp_path / "two" / f"{name}.png").stat().st_size > 0

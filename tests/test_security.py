"""No expression string ever executes Python, through any entry point (issue 9, section 1).

``sympy.sympify`` evaluates its input: ``"x+__import__('os').system('touch pwned.txt')"``
used to create the file and run on with σ = x. Every entry point that reads a user string
must refuse hostile input with a ``FlowtoolsError`` (the CLI: exit status 2 and a one-line
message) before any solve or compilation, and must leave no file behind.
"""

from __future__ import annotations

import numpy as np
import pytest

import flowtools as ft
from flowtools.activations import get_activation, register
from flowtools.errors import FlowtoolsError
from flowtools.models.network import SingleNeuron
from flowtools.symbolic import SIGMA, field_taylor_term, origin_hessian
from flowtools.symbolic.assumptions import check_assumptions, theorem1_failures

PWNED = "pwned.txt"
HOSTILE = [
    f"__import__('os').system('touch {PWNED}')",
    f"x+__import__('os').system('touch {PWNED}')",
    f"x + open('{PWNED}', 'w').write('x')",
    "x.__class__",
    "().__class__.__bases__",
    "lambda: 1",
    "'a string'",
    "eval('1')",
]
# data values: the same, and no variable at all
HOSTILE_DATA = [*HOSTILE, "x"]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    yield
    assert not (tmp_path / PWNED).exists(), "a hostile string executed code"


PYTHON_ENTRY_POINTS = {
    "get_activation": lambda s: get_activation(s),
    "register": lambda s: register("evil", s),
    "make_problem": lambda s: ft.make_problem(6, activation=s),
    "Problem.create": lambda s: ft.Problem.create((np.ones((2, 1)), np.ones(2)), activation=s),
    "SingleNeuron": lambda s: SingleNeuron(s, 1.0, [1.0], 1.0),
    "origin_hessian(activation)": lambda s: origin_hessian(s, width=2, dim=1),
    "check_assumptions": lambda s: check_assumptions(s),
    "theorem1_failures": lambda s: theorem1_failures(s, [1.0]),
    "field_taylor_term": lambda s: field_taylor_term(s, width=1, dim=1),
}
DATA_ENTRY_POINTS = {
    "origin_hessian(X)": lambda s: origin_hessian("tanh", width=2, data=([[s]], [1])),
    "origin_hessian(y)": lambda s: origin_hessian("tanh", width=2, data=([[1]], [s])),
    "OriginHessian.to_jax(sigma)": lambda s: origin_hessian(
        "tanh", width=1, dim=1, symbolic_derivatives=True).to_jax(sigma={SIGMA[1]: s}),
}


@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize("entry", sorted(PYTHON_ENTRY_POINTS))
def test_python_entry_points_refuse(entry, text):
    with pytest.raises(FlowtoolsError, match="cannot read"):
        PYTHON_ENTRY_POINTS[entry](text)


@pytest.mark.parametrize("text", HOSTILE_DATA)
@pytest.mark.parametrize("entry", sorted(DATA_ENTRY_POINTS))
def test_data_values_refuse(entry, text):
    with pytest.raises(FlowtoolsError, match="non-numeric data"):
        DATA_ENTRY_POINTS[entry](text)


CLI = {
    "run": lambda s: ["run", "--activation", s],
    "limit": lambda s: ["limit", "--activation", s],
    "compare": lambda s: ["compare", "--activation", s],
    "verify": lambda s: ["verify", "--quick", "--activation", s],
    "hessian --activation": lambda s: ["hessian", "--activation", s],
    "hessian --X": lambda s: ["hessian", "--X", s, "--y", "1"],
    "hessian --y": lambda s: ["hessian", "--X", "1", "--y", s],
}


@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize("cmd", sorted(CLI))
def test_cli_refuses_with_one_line_and_exit_2(cmd, text, capsys):
    from flowtools.cli import main

    assert main(CLI[cmd](text)) == 2
    out = capsys.readouterr()
    err = out.err.strip()
    assert err.startswith("flowtools ") and "error:" in err and "cannot read" in err
    assert "\n" not in err and "Traceback" not in out.err + out.out

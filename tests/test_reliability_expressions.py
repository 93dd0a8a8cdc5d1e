"""Issue 20, class 2: expressions are evaluated with bounded time and precision.

The rule (``flowtools.expressions``): a number in an expression, and the argument of sin,
cos and tan, is at most 2**MAX_MAGNITUDE_BITS (≈ 1e1233); every part of a value being
evaluated is at most 2**MAX_VALUE_BITS; both are checked by a cheap approximation *before*
a part is computed (``check_bounded``), at parse time and by every numeric evaluation
(``evaluate``: sample points, assumption checks, printing, at most MAX_DIGITS digits).
What cannot be decided within the bounds is refused with the part, its size and the limit.
Each reproducer of the issue is here with variants: through the CLI (exit 2, one line, no
traceback) and through the Python API (``BoundsError``, a ``FlowtoolsError``).
"""

from __future__ import annotations

import argparse
import signal
import threading
from fractions import Fraction

import pytest
import sympy as sp

from flowtools.activations import get_activation
from flowtools.cli import main
from flowtools.cli.hessian import _data_from_args, add_arguments
from flowtools.errors import FlowtoolsError
from flowtools.expressions import (
    MAX_DIGITS,
    BoundsError,
    check_bounded,
    evaluate,
    numeric_sign,
    parse_expression,
    parse_number,
    split_top_level,
    vanishes,
    x,
)
from flowtools.symbolic import origin_hessian
from flowtools.symbolic.exact import exact_number

LIMIT = "10^1233 (2^4096)"  # the limit on numbers, as the messages write it


def _cli(argv, capsys, usage: bool = False):
    """(exit status, stdout, the one stderr line) of ``flowtools ARGV``; ``usage``: an
    argparse error, whose line comes after the usage text."""
    code = main(argv)
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    err = out.err.strip()
    if usage:
        assert err.startswith("usage:")
        err = err.splitlines()[-1]
    assert "\n" not in err, err
    return code, out.out, err


# ---------------------------------------------------------------- towers of exponentials

# the reproducers (first of each group) and variants: numbers that only look small
HUGE_ACTIVATIONS = [
    ("sin(exp(exp(20)))*x", "exp(exp(20))"),  # the issue's: sin needs 2e8 digits
    ("exp(exp(exp(5)))*x", "exp(exp(exp(5)))"),  # printing it raised decimal.InvalidOperation
    ("x*cos(exp(exp(30)))", "exp(exp(30))"),
    ("sin(exp(exp(8)))*x", "exp(exp(8))"),  # just above the limit: about 10^1294
    ("Abs(sin(exp(exp(20))))*x", "exp(exp(20))"),  # sympy's Abs evaluates its argument
    ("Max(x, exp(exp(9)))", "exp(exp(9))"),  # so does Max
    ("x/exp(-exp(9))", "exp(9)"),  # small, then huge by division
    ("x*tanh(exp(exp(12)))", "exp(exp(12))"),
]


@pytest.mark.parametrize("text,part", HUGE_ACTIVATIONS)
def test_huge_numbers_in_an_activation_are_refused_on_the_command_line(text, part, capsys):
    code, _, err = _cli(["hessian", "--activation", text], capsys)
    assert code == 2
    assert f"cannot read the activation {text!r}" in err
    assert part in err and "too large to evaluate" in err and LIMIT in err


@pytest.mark.parametrize("text,part", HUGE_ACTIVATIONS)
def test_huge_numbers_are_refused_by_the_parser_and_by_get_activation(text, part):
    for build in (parse_expression, get_activation):
        with pytest.raises(BoundsError, match="too large to evaluate") as err:
            build(text)
        assert part in str(err.value) and LIMIT in str(err.value)


@pytest.mark.parametrize("option", ["--X", "--y"])
@pytest.mark.parametrize("text", ["sin(exp(exp(12)))", "exp(exp(exp(5)))",
                                  "tan(exp(exp(9)))", "Rational(1, 3)*exp(exp(20))"])
def test_huge_data_values_are_refused(option, text, capsys):
    argv = ["hessian", "--X", text, "--y", "1"] if option == "--X" else \
        ["hessian", "--X", "1", "--y", text]
    code, _, err = _cli(argv, capsys)
    assert code == 2 and "too large to evaluate" in err and LIMIT in err
    assert ("X[0, 0]" if option == "--X" else "y[0]") in err


@pytest.mark.parametrize("value", [10**5000, Fraction(10**5000, 3), -(10**2000),
                                   sp.exp(sp.exp(20)), sp.sin(sp.exp(sp.exp(12)))],
                         ids=["int", "Fraction", "negative int", "exp(exp(20))",
                              "sin(exp(exp(12)))"])
def test_exact_data_of_any_type_is_bounded(value):
    with pytest.raises(BoundsError, match="too large to evaluate"):
        exact_number(value, "X[0, 0]")


def test_sympy_expressions_built_in_python_are_bounded_too():
    big = sp.exp(sp.exp(20))
    for expr in (sp.sin(big) * x, big * x, x + sp.Integer(10) ** 2000):
        with pytest.raises(BoundsError, match="too large to evaluate"):
            get_activation(expr)


def test_a_grid_activation_goes_through_the_same_check(tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text('[sweep]\nname = "g"\n[problem]\nn = 3\n'
                    'activation = "sin(exp(exp(12)))*x"\n')
    store = tmp_path / "g.zarr"
    code, _, err = _cli(["sweep", str(grid), "--check", "--store", str(store)], capsys)
    assert code == 2 and "g.toml:5" in err and "exp(exp(12))" in err and LIMIT in err
    assert not store.exists()


# ---------------------------------------------------------------- towers of powers of x

POWER_TOWERS = [
    "x**x**x**x**x**x**x**x",  # the issue's: an OverflowError traceback
    "x**x**x**x**x",
    "x**x**x**x**x**x**x**x**x**x**x**x",
    "exp(exp(exp(exp(x))))",
    "(x**2)**(x**2)**(x**2)**(x**2)",
]


@pytest.mark.parametrize("text", POWER_TOWERS)
def test_towers_in_x_end_with_a_reason(text, capsys):
    code, _, err = _cli(["hessian", "--activation", text], capsys)
    assert code == 2 and f"{text!r}" in err
    assert "too large to evaluate" in err or "not real" in err  # the reason, either way


@pytest.mark.parametrize("text", POWER_TOWERS[:1] + POWER_TOWERS[3:])
def test_a_tower_too_large_at_a_sample_point_names_the_point(text):
    with pytest.raises(BoundsError, match=r"too large to evaluate .* at x = "):
        parse_expression(text)


def test_growth_below_the_limits_is_accepted():
    # large but bounded: 10^1180 is a number, exp(x**10) reaches 10^1799 at x = -2.3
    for text in ("sin(exp(exp(7.9)))*x", "exp(x**10)", "tanh(x)*exp(exp(exp(x)))"):
        assert x in parse_expression(text).free_symbols
    assert float(evaluate(parse_number("sin(exp(exp(7.9)))"), 10)) == pytest.approx(
        0.111037390890582, abs=1e-12)  # 3900 integer bits reduced modulo π, not rounded


# ---------------------------------------------------------------- digits

@pytest.mark.parametrize("digits", ["1000000", "101", "1e9", str(10**30)])
def test_digits_are_bounded(digits, capsys):
    code, _, err = _cli(["hessian", "--digits", digits], capsys, usage=True)
    assert code == 2 and "--digits" in err and f"from 1 to {MAX_DIGITS}" in err


@pytest.mark.parametrize("digits", [0, 101, 10**6, 2.5, True])
def test_evaluate_refuses_digits_outside_the_bound(digits):
    with pytest.raises(FlowtoolsError, match=f"from 1 to {MAX_DIGITS}"):
        evaluate(sp.pi, digits)


def test_the_largest_digits_value_prints(capsys):
    code, out, _ = _cli(["hessian", "--digits", str(MAX_DIGITS), "--max-size", "1"], capsys)
    assert code == 0 and "μ1 = " in out


# ---------------------------------------------------------------- --X rows

@pytest.mark.parametrize("text,pieces", [
    ("Rational(1,3)", ["Rational(1,3)"]),
    ("Rational(-2,7),1", ["Rational(-2,7)", "1"]),
    ("1, Rational(1, 3), Max(1, 2)", ["1", "Rational(1, 3)", "Max(1, 2)"]),
    ("0,1/2", ["0", "1/2"]),
    ("Rational(1,3", ["Rational(1,3"]),  # unbalanced: left to the parser, which says so
])
def test_rows_split_only_outside_parentheses(text, pieces):
    assert split_top_level(text) == pieces


def _parse(argv):
    """The ``flowtools hessian`` options of ARGV."""
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(argv)


@pytest.mark.parametrize("argv,rows,dim", [
    (["--X", "Rational(1,3)", "Rational(-2,7)", "--y", "1", "2"],
     [["Rational(1,3)"], ["Rational(-2,7)"]], 1),
    (["--X", "Rational(1,3),1", "1,Rational(-2,7)", "--y", "1", "2"],
     [["Rational(1,3)", "1"], ["1", "Rational(-2,7)"]], 2),
])
def test_x_rows_accept_rational(argv, rows, dim):
    (got, _), d, pb = _data_from_args(_parse(argv))
    assert got == rows and d == dim and pb is None


def test_rational_rows_give_the_exact_hessian(capsys):
    # γ = Σ y_i x_i = 1·(1/3) + 2·(−2/7) = −5/21, μ1 = |σ'(0)|·|γ| = 5/21 for tanh
    code, out, _ = _cli(["hessian", "--no-bias", "--X", "Rational(1,3)", "Rational(-2,7)",
                         "--y", "1", "2"], capsys)
    assert code == 0 and "μ1 = 5/21" in out
    code, out, _ = _cli(["hessian", "--no-bias", "-d", "2", "--X", "Rational(1,3),0",
                         "0,Rational(-2,7)", "--y", "1", "2"], capsys)
    assert code == 0 and "μ1 = sqrt(193)/21" in out  # ‖(1/3, −4/7)‖ = √193/21


def test_a_malformed_row_is_one_line(capsys):
    code, _, err = _cli(["hessian", "--X", "Rational(1,3", "--y", "1"], capsys)
    assert code == 2 and "X[0, 0]" in err and "never closed" in err


# ---------------------------------------------------------------- bounded, in any thread

def test_the_guard_needs_no_signal_and_works_off_the_main_thread():
    result = {}

    def work():
        try:
            parse_expression("sin(exp(exp(20)))*x")
        except BoundsError as err:
            result["err"] = str(err)

    t = threading.Thread(target=work)
    t.start()
    t.join(60)
    assert not t.is_alive() and "too large to evaluate" in result["err"]


def test_check_bounded_skips_parts_in_other_symbols_and_checks_matrices():
    a = sp.Symbol("a", real=True)
    check_bounded(sp.Matrix([[a * sp.exp(sp.exp(5)), 0], [1, x]]))
    with pytest.raises(BoundsError, match=r"the block cannot be evaluated at x = 19/10"):
        check_bounded(sp.Matrix([[a, sp.exp(sp.exp(sp.exp(sp.exp(x))))]]),
                      at={x: sp.Rational(19, 10)}, what="the block")


def test_exact_zero_tests_decide_numbers_without_simplify():
    # simplify rewrites sin(2**20*E) by the double-angle formula into 2**20 factors
    c = sp.sin(2**20 * sp.E)
    assert numeric_sign(c) == 1 and not vanishes(c * sp.sqrt(13) - c * sp.sqrt(13) / 3)
    assert numeric_sign(sp.cos(1) ** 2 + sp.sin(1) ** 2 - 1) is None  # 0, not by evaluation
    assert vanishes(sp.cos(1) ** 2 + sp.sin(1) ** 2 - 1)
    assert numeric_sign(sp.pi - sp.Rational(355, 113)) == -1
    assert numeric_sign(sp.Rational(1, 10**60)) == 1 and numeric_sign(sp.I) is None
    oh = origin_hessian("sin(2**20*E)*x", width=2, dim=1, bias=False,
                        data=([[1], [2]], [1, 3]))
    assert oh.eigenvalues == {7 * c: 2, -7 * c: 2}  # c > 0: μ1 = 7|c| = 7c


def test_the_derivation_has_a_time_limit(capsys):
    # σ'(0) = a sum of 30 sines: sympy's exact eigen-algebra runs for minutes
    act = "(" + "+".join(f"sin({k})" for k in range(1, 31)) + ")*x"
    code, _, err = _cli(["hessian", "--activation", act, "--time-limit", "0.5"], capsys)
    assert code == 2 and "did not finish within 0.5 s (--time-limit)" in err
    assert "--symbolic-derivatives" in err
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0  # the timer and handler restored
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL

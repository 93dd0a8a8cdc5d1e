"""The safe expression parser: what users write is read exactly, everything else is refused
with a message naming the piece; every whitelisted function works in JAX, the flow's loss
and gradient and the symbolic Hessian."""

from __future__ import annotations

import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import flowtools as ft
from flowtools.activations import get_activation
from flowtools.errors import FlowtoolsError
from flowtools.expressions import (
    FUNCTIONS,
    MAX_LENGTH,
    parse_expression,
    parse_number,
    x,
)
from flowtools.symbolic import origin_hessian

R = sp.Rational

ACCEPTED = [
    ("x/(1+x**2)", x / (1 + x**2)),
    ("x/(1+x^2)", x / (1 + x**2)),  # ^ is a power, as users mean it
    ("2*tanh(x)", 2 * sp.tanh(x)),
    ("tanh(x) + x**3/5", sp.tanh(x) + x**3 / 5),
    ("-x", -x),
    ("+x - -x", 2 * x),
    ("1e-3*x", x / 1000),  # floats are exact: 1e-3 = 1/1000, not a binary float
    ("0.4*x", R(2, 5) * x),
    ("Rational(1,3)*x", x / 3),
    ("atan(x)+x**3/5", sp.atan(x) + x**3 / 5),
    ("1/(1+exp(-x)) - 1/2", 1 / (1 + sp.exp(-x)) - R(1, 2)),
    ("x*E/pi", sp.E * x / sp.pi),
    ("Max(0, x) + Min(0, x)/2 + abs(x)", sp.Max(0, x) + sp.Min(0, x) / 2 + sp.Abs(x)),
    ("sqrt(1 + x**2) * erf(x) * sign(x) * Heaviside(x)",
     sp.sqrt(1 + x**2) * sp.erf(x) * sp.sign(x) * sp.Heaviside(x)),
    (" x ", x),
    ("2**3**2 * x", 512 * x),  # ** is right-associative
    ("+".join(["x"] * 300), 300 * x),  # a long sum is not "deeply nested"
]


@pytest.mark.parametrize("text,expected", ACCEPTED)
def test_accepts_what_users_write(text, expected):
    e = parse_expression(text)
    assert sp.srepr(e) == sp.srepr(expected)
    assert e.free_symbols <= {x} and all(s.is_real for s in e.free_symbols)


def test_numbers():
    assert parse_number("1/3") == R(1, 3)
    assert parse_number("tanh(1)") == sp.tanh(1)
    assert parse_number("0.4") == R(2, 5) and parse_number("-2.5e-3") == R(-1, 400)
    assert parse_number("Rational(7, 2) + pi") == R(7, 2) + sp.pi
    for bad, why in [("x", "unknown name 'x'"), ("sqrt(-1)", "complex"), ("1/0", "not finite"),
                     ("log(0)", "not finite"), ("(-8)**Rational(1,3)", "not real")]:
        with pytest.raises(FlowtoolsError, match=why):
            parse_number(bad)


# (text, a phrase the message must contain): each class of hostile or odd input
REFUSED = [
    ("x+__import__('os').system('touch pwned')", "attribute access"),
    ("__import__('os')", "names may not start with '_'"),
    ("x.__class__", "attribute access ('x.__class__')"),
    ("().__class__.__bases__", "attribute access"),
    ("x[0]", "indexing"),
    ("lambda: 1", "a lambda"),
    ("[t for t in (1, 2)]", "a comprehension"),
    ("'x'", "a string"),
    ("b'x'", "a string"),
    ("f'{x}'", "an f-string"),
    ("eval('1')", "unknown function 'eval'"),
    ("exec('1')", "unknown function 'exec'"),
    ("sin(x=1)", "keyword arguments"),
    ("sin(*[x])", "starred"),
    ("(x, 1)", "a tuple"),
    ("x if x else 1", "a conditional"),
    ("x < 1", "a comparison"),
    ("x and 1", "a boolean operator"),
    ("x % 2", "operator"),
    ("x // 2", "operator"),
    ("~x", "operator"),
    ("1j*x", "a complex number"),
    ("True*x", "True"),
    ("y", "unknown name 'y'"),
    ("I*x", "complex values are not supported"),
    ("oo*x", "infinite values"),
    ("gamma(x)", "unknown function 'gamma'"),
    ("Derivative(x, x)", "unknown function 'Derivative'"),
    ("Integral(x, x)", "unknown function 'Integral'"),
    ("tanh", "is a function: call it"),
    ("tanh(x, 2)", "takes 1 argument"),
    ("Rational(x, 2)", "two integers"),
    ("sqrt(x)", "not real for real input"),
    ("log(x)", "not real for real input"),
    ("1/(x - x)", "not finite"),
    ("x**(10**10)", "exponent"),
    ("10**10**10", "exponent"),
    ("(2**40)**100", "too large a number"),
    ("1" * 150 + "*x", "digits"),
    ("1e999*x", "not finite"),
    ("-" * 80 + "x", "nested"),
    ("tanh(" * 60 + "x" + ")" * 60, "nested"),
    ("x" * (MAX_LENGTH + 1), "characters"),
    ("", "empty"),
    ("x +", "not a valid expression"),
    ("x\x00", "not a valid expression"),
]


@pytest.mark.parametrize("text,why", REFUSED)
def test_refuses_with_a_clear_message(text, why):
    t0 = time.perf_counter()
    with pytest.raises(FlowtoolsError) as err:
        parse_expression(text)
    msg = str(err.value)
    assert why in msg and "Allowed:" in msg and "tanh" in msg  # what is refused, what is not
    assert time.perf_counter() - t0 < 5  # huge numbers are refused, not computed


def test_activation_errors_name_the_registered_activations():
    with pytest.raises(FlowtoolsError, match="not a registered name .*tanh.* unknown name"):
        get_activation("tanhh")
    with pytest.raises(FlowtoolsError, match="constant"):
        get_activation("3")


@pytest.mark.parametrize("expr,why", [
    (sp.I * x, "complex"),
    (sp.oo * x, "not finite"),
    (sp.zoo + x, "not finite"),
    (sp.Derivative(sp.Function("f")(x), x), "not supported"),
    (sp.Integral(sp.exp(x * sp.Symbol("t", real=True)), (sp.Symbol("t", real=True), 0, 1)),
     "not supported"),
    (sp.gamma(x), "gamma"),
    (sp.Function("f")(x), "not supported"),
    (sp.Piecewise((x, x > 0), (0, True)), "not supported"),
    (sp.sqrt(x), "not real"),
])
def test_sympy_expressions_that_cannot_work_are_refused_at_construction(expr, why):
    with pytest.raises(FlowtoolsError, match=why):
        get_activation(expr)


# one activation per whitelisted function (smooth at 0 where a kink would matter, so that
# the origin Hessian exists), each through JAX, the loss and the Hessian
EXAMPLES = {
    "tanh": "tanh(x)", "sinh": "sinh(x)", "cosh": "x*cosh(x)", "sin": "sin(x)",
    "cos": "x*cos(x)", "tan": "tan(x)", "atan": "atan(x)", "asinh": "asinh(x)",
    "exp": "exp(x) - 1", "log": "log(1 + x**2) + x", "sqrt": "sqrt(1 + x**2) - 1 + x",
    "erf": "erf(x)", "Abs": "x + Abs(x)**3", "abs": "x + abs(x)**3/2",
    "sign": "x + sign(x)*x**4", "Heaviside": "x + Heaviside(x)*x**3",
    "Max": "x + Max(0, x)**3", "Min": "x + Min(0, x)**3", "Rational": "Rational(1, 3)*x + x**3",
}


def test_every_whitelisted_function_has_an_example():
    assert set(EXAMPLES) == set(FUNCTIONS)


@eqx.filter_jit
def _loss_grad_hessian0(pb, theta):
    return pb.loss(theta), pb.grad(theta), pb.hessian(jnp.zeros_like(theta))


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_whitelisted_function_works_in_jax_flow_and_hessian(name):
    act = get_activation(EXAMPLES[name])
    z = np.linspace(-1.9, 1.9, 11) + 0.013
    exact = np.array([float(act.expr.subs(x, sp.Float(v, 30))) for v in z])
    np.testing.assert_allclose(np.asarray(jax.jit(act)(jnp.asarray(z))), exact,
                               rtol=1e-13, atol=1e-14)
    d1 = jax.jit(jax.grad(act))(0.7)
    assert float(d1) == pytest.approx(float(act.derivative(1).subs(x, sp.Float(0.7, 30))),
                                      rel=1e-12)
    pb = ft.make_problem(6, activation=EXAMPLES[name])
    theta = jnp.asarray(pb.init_gaussian(0.3, seed=1))
    loss, grad, H0 = (np.asarray(v) for v in _loss_grad_hessian0(pb, theta))
    # the loss from the sympy expression, evaluated exactly
    blocks = np.asarray(theta).reshape(pb.width, -1)
    a, W = blocks[:, 0], blocks[:, 1:]
    pre = np.asarray(pb.Xa) @ W.T
    f = np.array([[float(act.expr.subs(x, sp.Float(v, 30))) for v in row] for row in pre]) @ a
    assert float(loss) == pytest.approx(0.5 * np.sum((f - np.asarray(pb.y)) ** 2), rel=1e-12)
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
    # the symbolic Hessian at 0 (lambdified) = jax.hessian of the loss at 0
    oh = origin_hessian(act, width=pb.width, dim=pb.dim, data=(np.asarray(pb.X),
                                                              np.asarray(pb.y)))
    np.testing.assert_allclose(np.asarray(oh.to_jax()(pb.X, pb.y)), H0, rtol=0, atol=1e-12)

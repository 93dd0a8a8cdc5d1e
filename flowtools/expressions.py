"""User expression strings → sympy, without ever evaluating Python.

``sympy.sympify`` (and ``parse_expr``) run ``eval`` on the text, so a string such as
``"x + __import__('os').system('…')"`` executes code. Here the text is only *parsed* with
Python's ``ast`` module (``mode="eval"``) and the tree is walked against a whitelist;
the sympy expression is built node by node from sympy objects. Allowed:

* numbers: int and float literals (floats become exact rationals: 0.4 → 2/5); no ``1j``;
* the variable(s) given (``x`` for activations), the constants ``pi`` and ``E``;
* unary ``+``/``-`` and binary ``+ - * / **`` (``^`` is read as ``**``);
* calls of the functions in ``FUNCTIONS`` with positional arguments.

Everything else (attribute access, subscripts, names starting with ``_``, lambdas,
comprehensions, keywords, strings, comparisons, …) is refused with a ``FlowtoolsError``
that names the offending piece. Length, nesting depth, literal sizes and exponents are
bounded, so no string can hang the process (``10**10**10`` is refused, not computed).

    >>> from flowtools.expressions import parse_expression, parse_number
    >>> parse_expression("x/(1+x^2) + 0.4*tanh(x)")
    x/(x**2 + 1) + 2*tanh(x)/5
    >>> parse_number("Rational(1, 3) + 1e-3")
    1003/3000
    >>> parse_expression("x.__class__")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    flowtools.errors.FlowtoolsError: cannot read the expression 'x.__class__': attribute access ...
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

import sympy as sp

from flowtools.errors import FlowtoolsError

#: The real symbol of activations.
x = sp.Symbol("x", real=True)

MAX_LENGTH = 1000  # characters
MAX_DEPTH = 50  # nested calls, powers, signs and parentheses (a long sum is not deep)
MAX_LITERAL_DIGITS = 100  # digits of an integer literal
MAX_EXPONENT = 100  # |exponent| of a power with a numeric exponent
MAX_POWER_BITS = 4096  # size of an exact numeric power b**n, estimated before computing it


def _rational(p, q):
    if not (p.is_Integer and q.is_Integer) or q == 0:
        raise _Refused(f"Rational(p, q) takes two integers with q ≠ 0, got ({p}, {q})")
    return sp.Rational(p, q)


# name → (sympy callable, allowed numbers of arguments). Each works in the JAX code
# generated from an activation (``flowtools.activations``), under jit and grad; non-smooth
# ones (abs, Max, Min, sign, Heaviside) are allowed as building blocks, and the assumption
# checks (``flowtools.symbolic.assumptions``) say where they break σ ∈ C².
FUNCTIONS: dict[str, tuple] = {
    "tanh": (sp.tanh, (1,)), "sinh": (sp.sinh, (1,)), "cosh": (sp.cosh, (1,)),
    "sin": (sp.sin, (1,)), "cos": (sp.cos, (1,)), "tan": (sp.tan, (1,)),
    "atan": (sp.atan, (1,)), "asinh": (sp.asinh, (1,)), "exp": (sp.exp, (1,)),
    "log": (sp.log, (1,)), "sqrt": (sp.sqrt, (1,)), "erf": (sp.erf, (1,)),
    "Abs": (sp.Abs, (1,)), "abs": (sp.Abs, (1,)), "sign": (sp.sign, (1,)),
    "Heaviside": (sp.Heaviside, (1,)), "Max": (sp.Max, None), "Min": (sp.Min, None),
    "Rational": (_rational, (2,)),
}
CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "E": sp.E}
#: The sympy function classes an expression may contain (what ``FUNCTIONS`` produce;
#: sqrt and Rational give powers and numbers).
FUNCTION_CLASSES = (sp.tanh, sp.sinh, sp.cosh, sp.sin, sp.cos, sp.tan, sp.atan, sp.asinh,
                    sp.exp, sp.log, sp.erf, sp.Abs, sp.sign, sp.Heaviside, sp.Max, sp.Min)
_NOT_FINITE = (sp.nan, sp.zoo, sp.oo, -sp.oo)

_KINDS = {  # how a refused node is described
    ast.Attribute: "attribute access", ast.Subscript: "indexing", ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension", ast.GeneratorExp: "a comprehension",
    ast.Compare: "a comparison", ast.BoolOp: "a boolean operator", ast.IfExp: "a conditional",
    ast.Tuple: "a tuple", ast.List: "a list", ast.Dict: "a dict", ast.Set: "a set",
    ast.JoinedStr: "an f-string", ast.Starred: "a starred argument",
    ast.NamedExpr: "an assignment", ast.Await: "await",
}
_NAME_HINTS = {"I": "complex values are not supported", "oo": "infinite values are not "
               "supported", "zoo": "infinite values are not supported", "nan": "nan is not a "
               "value", "e": "write E or exp(1) for Euler's number"}
_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}


class _Refused(Exception):
    """Internal: why a piece of the text was refused (turned into a FlowtoolsError)."""


def allowed_summary(variables: Mapping[str, sp.Symbol]) -> str:
    """One sentence listing what an expression may contain."""
    names = ", ".join(sorted(FUNCTIONS, key=str.lower))
    var = (f"the variable{'s' if len(variables) > 1 else ''} {', '.join(variables)}, "
           if variables else "")
    return f"{var}numbers, + - * / ** (or ^), pi, E and the functions {names}"


def parse_expression(text: str, *, variables: Mapping[str, sp.Symbol] | None = None,
                     what: str = "the expression") -> sp.Expr:
    """The sympy expression written in ``text``, built from a whitelisted syntax tree.

    ``variables`` maps names to symbols (default ``{"x": x}``, x real). ``what`` names the
    input in error messages. Raises ``FlowtoolsError`` for anything outside the whitelist
    (see the module docstring), and for expressions that are complex, infinite or built
    from functions outside ``FUNCTIONS`` (``check_expression``).
    """
    variables = {"x": x} if variables is None else dict(variables)
    if not isinstance(text, str):
        raise FlowtoolsError(f"{what} must be a string, got {type(text).__name__}.")
    src = text.replace("^", "**").strip()

    shown = text if len(text) <= 80 else text[:60] + "…"

    def refuse(reason):
        return FlowtoolsError(f"cannot read {what} {shown!r}: {reason}. Allowed: "
                              f"{allowed_summary(variables)}.")

    if not src:
        raise refuse("it is empty")
    if len(src) > MAX_LENGTH:
        raise refuse(f"it has {len(src)} characters (at most {MAX_LENGTH})")
    try:
        tree = ast.parse(src, mode="eval")
    except SyntaxError as err:
        raise refuse(f"it is not a valid expression ({err.msg})") from None
    except (ValueError, RecursionError, MemoryError) as err:
        raise refuse(f"it is not a valid expression ({err})") from None
    try:
        expr = _Builder(src, variables).build(tree.body, 0)
        check_expression(expr, variables=variables, _raise=_Refused)
    except _Refused as err:
        raise refuse(str(err)) from None
    return expr


def parse_number(text: str, *, what: str = "the value") -> sp.Expr:
    """An exact, finite, real sympy number written in ``text`` (e.g. '1/3', 'tanh(1)',
    '0.4' → 2/5), with the same whitelist as ``parse_expression`` and no variables."""
    e = parse_expression(text, variables={}, what=what)
    if not e.is_number:  # pragma: no cover - no variables can occur
        raise FlowtoolsError(f"{what} {text!r} is not a number.")
    return e


def check_expression(expr, *, variables: Mapping[str, sp.Symbol] | None = None,
                     _raise=FlowtoolsError) -> None:
    """Refuse what cannot work as a real function of the variables: a non-``Expr``, other
    free symbols, complex values (``I``, or not real at a real sample point such as
    sqrt(x) at x = −0.7), infinities/nan (``oo``, ``zoo``, 1/0), and any object outside the
    whitelist (``Derivative``, ``Integral``, ``gamma``, undefined functions, …)."""
    variables = {"x": x} if variables is None else variables
    if not isinstance(expr, sp.Expr):
        raise _raise(f"{expr!r} is not an expression")
    syms = set(variables.values())
    bad = sorted(map(str, expr.free_symbols - syms))
    if set(bad) & set(variables):
        raise _raise(f"its symbol(s) {sorted(set(bad) & set(variables))} lack the assumption "
                     "real=True: build it from flowtools.activations.x = Symbol('x', real=True)")
    if bad:
        raise _raise(f"it contains the unknown symbol(s) {bad}")
    if expr.has(sp.I):
        raise _raise(f"{expr} is complex (it contains the imaginary unit I)")
    if expr.has(*_NOT_FINITE):
        raise _raise(f"{expr} is not finite (it contains {_first(expr, _NOT_FINITE)})")
    for node in sp.preorder_traversal(expr):
        if isinstance(node, (sp.Add, sp.Mul, sp.Pow, sp.Integer, sp.Rational, sp.Float,
                             sp.NumberSymbol)) or node in syms:
            continue
        if isinstance(node, FUNCTION_CLASSES):
            continue
        name = getattr(node.func, "__name__", type(node).__name__)
        raise _raise(f"{name} ({node}) is not supported")
    for pt in _sample_points(syms):
        v = sp.N(expr.subs(pt), 20)
        if v.has(*_NOT_FINITE) or not v.is_number:
            continue  # a singular point: the assumption checks report it
        re, im = v.as_real_imag()
        if abs(im) > 1e-12 * (1 + abs(re)):
            at = ", ".join(f"{s} = {val}" for s, val in pt.items())
            raise _raise(f"{expr} is not real for real input ({v} at {at}); use a real "
                         "function, e.g. sqrt(1 + x**2) instead of sqrt(x)")


def _sample_points(syms):
    if not syms:
        return [{}]
    vals = [sp.Rational(-23, 10), sp.Rational(-7, 10), sp.Rational(2, 5), sp.Rational(19, 10)]
    ordered = sorted(syms, key=str)
    return [{s: vals[(i + j) % len(vals)] for j, s in enumerate(ordered)}
            for i in range(len(vals))]


def _first(expr, targets):
    return next(str(t) for t in targets if expr.has(t))


class _Builder:
    """Builds the sympy expression of a whitelisted ``ast`` tree (one node at a time)."""

    def __init__(self, src: str, variables: Mapping[str, sp.Symbol]):
        self.src, self.variables = src, variables

    def piece(self, node) -> str:
        seg = ast.get_source_segment(self.src, node)
        return seg if seg is not None else type(node).__name__

    def build(self, node, depth: int) -> sp.Expr:
        if depth > MAX_DEPTH:
            raise _Refused(f"it is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.UAdd, ast.USub)):
                raise _Refused(f"the operator in {self.piece(node)!r} is not allowed")
            e = self.build(node.operand, depth + 1)
            return e if isinstance(node.op, ast.UAdd) else -e
        if isinstance(node, ast.BinOp):
            return self.binop(node, depth)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        kind = _KINDS.get(type(node), f"this construct ({type(node).__name__})")
        raise _Refused(f"{kind} ({self.piece(node)!r}) is not allowed")

    def constant(self, node) -> sp.Expr:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            kind = "a string" if isinstance(v, (str, bytes)) else (
                "a complex number" if isinstance(v, complex) else repr(v))
            raise _Refused(f"{kind} ({self.piece(node)!r}) is not allowed")
        if isinstance(v, int):
            if len(str(abs(v))) > MAX_LITERAL_DIGITS:
                raise _Refused(f"the integer {self.piece(node)[:20]}… has more than "
                               f"{MAX_LITERAL_DIGITS} digits")
            return sp.Integer(v)
        if v != v or v in (float("inf"), float("-inf")):
            raise _Refused(f"the number {self.piece(node)!r} is not finite")
        return sp.Rational(repr(v))  # shortest repr: 0.4 → 2/5, 1e-3 → 1/1000

    def name(self, node) -> sp.Expr:
        n = node.id
        if n.startswith("_"):
            raise _Refused(f"the name {n!r} is not allowed (names may not start with '_')")
        if n in self.variables:
            return self.variables[n]
        if n in CONSTANTS:
            return CONSTANTS[n]
        if n in FUNCTIONS:
            raise _Refused(f"{n!r} is a function: call it, e.g. {n}(x)")
        hint = _NAME_HINTS.get(n) or (("the only variable is " + ", ".join(self.variables))
                                      if self.variables else "no variables are allowed here")
        raise _Refused(f"unknown name {n!r} ({hint})")

    def binop(self, node, depth: int) -> sp.Expr:
        if isinstance(node.op, ast.Pow):  # right-associative: a ** (b ** c)
            return self.combine(node, self.build(node.left, depth + 1),
                                self.build(node.right, depth + 1))
        # walk left-leaning chains (a + b - c + …) iteratively: a long sum is not deep
        chain = []
        while isinstance(node, ast.BinOp) and not isinstance(node.op, ast.Pow):
            chain.append(node)
            node = node.left
        acc = self.build(node, depth + 1)
        for op_node in reversed(chain):
            acc = self.combine(op_node, acc, self.build(op_node.right, depth + 1))
        return acc

    def combine(self, node, a, b) -> sp.Expr:
        op = type(node.op)
        if op not in _BINARY:
            raise _Refused(f"the operator in {self.piece(node)!r} is not allowed "
                           "(use + - * / **)")
        if op is ast.Pow:
            self.check_power(node, a, b)
        out = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
               ast.Div: lambda: a / b, ast.Pow: lambda: a**b}[op]()
        if out.has(*_NOT_FINITE):
            raise _Refused(f"{self.piece(node)!r} is not finite (division by zero?)")
        return out

    def check_power(self, node, base, exp) -> None:
        if not exp.is_number:
            return
        if exp.has(*_NOT_FINITE) or abs(sp.N(exp)) > MAX_EXPONENT:
            raise _Refused(f"the exponent in {self.piece(node)!r} is too large (at most "
                           f"{MAX_EXPONENT} in absolute value)")
        if base.is_Rational and exp.is_Integer:
            bits = abs(int(exp)) * max(abs(base.p).bit_length(), base.q.bit_length())
            if bits > MAX_POWER_BITS:
                raise _Refused(f"{self.piece(node)!r} is too large a number (about {bits} "
                               f"bits; at most {MAX_POWER_BITS})")

    def call(self, node, depth: int) -> sp.Expr:
        f = node.func
        if not isinstance(f, ast.Name):
            kind = _KINDS.get(type(f), "this construct")
            raise _Refused(f"{kind} ({self.piece(f)!r}) is not allowed")
        if f.id.startswith("_"):
            raise _Refused(f"the name {f.id!r} is not allowed (names may not start with '_')")
        if f.id not in FUNCTIONS:
            raise _Refused(f"unknown function {f.id!r}")
        fn, arity = FUNCTIONS[f.id]
        if node.keywords:
            raise _Refused(f"keyword arguments ({self.piece(node)!r}) are not allowed")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise _Refused(f"a starred argument ({self.piece(node)!r}) is not allowed")
        n = len(node.args)
        if (arity is not None and n not in arity) or n == 0:
            want = " or ".join(map(str, arity)) if arity else "at least 1"
            raise _Refused(f"{f.id} takes {want} argument(s), got {n} in {self.piece(node)!r}")
        args = [self.build(a, depth + 1) for a in node.args]
        try:
            out = fn(*args)
        except (TypeError, ValueError, ArithmeticError) as err:
            raise _Refused(f"{self.piece(node)!r} cannot be evaluated ({err})") from None
        if out.has(*_NOT_FINITE):
            raise _Refused(f"{self.piece(node)!r} is not finite")
        return out

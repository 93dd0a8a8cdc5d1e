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

Numbers are bounded too, and so is every numeric evaluation (``evaluate``, the one way
flowtools evaluates a user expression: sample points, assumption checks, printing):

* a number in an expression (a part without variables) is at most 2**MAX_MAGNITUDE_BITS ≈
  1e1233 in absolute value, and so is the argument of sin, cos and tan;
* every part of a value being evaluated (at the sample points, at 0, in the quantities
  derived from σ and the data) is at most 2**MAX_VALUE_BITS ≈ 1e19728.

A cheap guard (``check_bounded``: mpmath at a fixed precision of a few words) approximates
the parts bottom-up and refuses one that would exceed its bound *before* it is computed.
That is what makes evaluation finish: sin(exp(exp(20))) needs exp(exp(20)) ≈ 10^(2.1e8) to
2.1e8 digits before its sine has one correct digit, so it is refused, not attempted.
With every part bounded, sympy's evalf needs at most MAX_MAGNITUDE_BITS extra bits, and
``evaluate`` caps the rest (at most MAX_DIGITS digits, and sympy's working precision);
the guard also stops at TIME_BUDGET seconds. It uses no signals, so it works in any
thread. Exact zero tests go through ``vanishes``, which decides numbers by evaluation
before sympy's ``simplify`` (which can explode on them).

    >>> from flowtools.expressions import evaluate
    >>> evaluate(parse_number("sin(exp(exp(5)))"), 10)
    0.9575387070
    >>> parse_number("sin(exp(exp(20)))")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    flowtools.expressions.BoundsError: cannot read the value 'sin(exp(exp(20)))': exp(exp(20)) is too large to evaluate with bounded precision: about 10^210704567, above the limit 10^1233 (2^4096).
"""  # noqa: E501 (a doctest output line cannot be wrapped)

from __future__ import annotations

import ast
import math
import time
from collections.abc import Mapping

import mpmath
import sympy as sp

from flowtools.errors import FlowtoolsError

#: The real symbol of activations.
x = sp.Symbol("x", real=True)

MAX_LENGTH = 1000  # characters
MAX_DEPTH = 50  # nested calls, powers, signs and parentheses (a long sum is not deep)
MAX_LITERAL_DIGITS = 100  # digits of an integer literal
MAX_EXPONENT = 100  # |exponent| of a power with a numeric exponent
MAX_POWER_BITS = 4096  # size of an exact numeric power b**n, estimated before computing it
MAX_MAGNITUDE_BITS = 4096  # |a number in an expression|, |argument of sin/cos/tan| ≤ 2**4096
MAX_VALUE_BITS = 16 * MAX_MAGNITUDE_BITS  # |any part of a value being evaluated| ≤ 2**65536
MAX_DIGITS = 100  # significant digits of a numeric evaluation (printing, checks)
TIME_BUDGET = 5.0  # seconds the magnitude guard may take for one expression or matrix
_WORK_BITS = 128  # precision of the guard's approximations
#: sympy's working precision (maxn, digits): the digits asked for, plus what sin/cos of an
#: argument up to 2**MAX_MAGNITUDE_BITS needs to reduce it modulo π
_MAXN = MAX_DIGITS + math.ceil(MAX_MAGNITUDE_BITS * math.log10(2)) + 50


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
_PERIODIC = (sp.sin, sp.cos, sp.tan, sp.sec, sp.csc, sp.cot)

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


class BoundsError(FlowtoolsError):
    """A value that cannot be decided with bounded precision and time: a part too large to
    evaluate (above 2**MAX_MAGNITUDE_BITS), or out of the time budget."""


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
    except _Unbounded as err:  # the whitelist is not the problem: no "Allowed:" list
        raise BoundsError(f"cannot read {what} {shown!r}: {err}.") from None
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
    sqrt(x) at x = −0.7), infinities/nan (``oo``, ``zoo``, 1/0), any object outside the
    whitelist (``Derivative``, ``Integral``, ``gamma``, undefined functions, …), and parts
    too large to evaluate with bounded precision (``check_bounded``) — as numbers, at the
    sample points or at 0 (where σ^(k)(0) is taken)."""
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
    deadline = time.monotonic() + TIME_BUDGET
    points = _sample_points(syms)
    for pt in [None, *points] + ([{s: sp.S.Zero for s in syms}] if syms else []):  # 0: σ^(k)(0)
        try:  # None: the numbers in expr, as bounded as the parser's
            approx = _guard(expr, pt, deadline, MAX_MAGNITUDE_BITS if pt is None else
                            MAX_VALUE_BITS)
        except _Unbounded as err:
            raise (_Unbounded if _raise is _Refused else BoundsError)(str(err)) from None
        if approx is None or pt not in points:
            continue  # a singular point: the assumption checks report it
        v = expr.subs(pt).evalf(20, maxn=_MAXN)
        if v.has(*_NOT_FINITE) or not v.is_number:
            continue
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


# ------------------------------------------------------------------ bounded evaluation


class _Unbounded(_Refused):
    """A part is too large to evaluate with bounded precision, or the guard ran out of time."""


class _Singular(Exception):
    """No finite value at the point (1/x at 0, log(0), …): sympy says which, not the guard."""


def _shown(e, limit: int = 60) -> str:
    try:
        text = str(e)
    except ValueError:  # an integer with more digits than Python prints
        return f"a {type(e).__name__}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _where(at) -> str:
    return (" at " + ", ".join(f"{s} = {_shown(v, 30)}" for s, v in at.items())) if at else ""


def _power_of_ten(bits) -> str:
    digits = mpmath.mpf(bits) * mpmath.log10(2)  # bits may be far beyond a float
    return f"10^{int(digits)}" if digits < 1e15 else f"10^({mpmath.nstr(digits, 2)})"


def _too_large(part, bits, limit: int, what: str = "") -> _Unbounded:
    return _Unbounded(f"{what or _shown(part)} is too large to evaluate with bounded "
                      f"precision: about {_power_of_ten(bits)}, above the limit "
                      f"{_power_of_ten(limit)} (2^{limit})")


class _Approx:
    """Approximate values of sympy expressions and of all their parts, bottom-up (mpmath,
    ``prec`` bits, complex where they are), memoized; the magnitude guard.

    A part whose magnitude would exceed 2**``limit`` raises ``_Unbounded``, and so does sin,
    cos or tan of an argument above 2**MAX_MAGNITUDE_BITS (reducing it modulo π takes as
    many extra bits). Growth (exp, powers, sinh/cosh, sin/cos of a complex number) is
    estimated from the logarithm *before* the part is computed, everything else is checked
    right after. So every mpmath call gets bounded arguments and a bounded precision: the
    guard always finishes, and it also stops at ``deadline`` (time.monotonic()), between two
    parts. ``at`` gives the values of symbols ({symbol: number}); a part with another free
    symbol has the value None. The approximations serve the bounds (and ``numeric_sign``):
    sympy's evalf computes the digits that are shown.
    """

    def __init__(self, at=None, deadline: float | None = None, prec: int = _WORK_BITS,
                 limit: int = MAX_VALUE_BITS):
        self.ctx = mpmath.MPContext()
        self.ctx.prec = prec
        self.limit = limit
        self.at = dict(at or {})
        self.deadline = time.monotonic() + TIME_BUDGET if deadline is None else deadline
        self.memo: dict = {}
        self.largest = 0  # the largest magnitude (bits) of a part seen so far
        c = self.ctx
        # sympy function class → (mpmath function, growth: log|value| bound from the argument)
        self.functions = {
            sp.exp: (c.exp, c.re), sp.sinh: (c.sinh, lambda a: abs(c.re(a))),
            sp.cosh: (c.cosh, lambda a: abs(c.re(a))), sp.sin: (c.sin, lambda a: abs(c.im(a))),
            sp.cos: (c.cos, lambda a: abs(c.im(a))), sp.tan: (c.tan, None),
            sp.tanh: (c.tanh, None), sp.atan: (c.atan, None), sp.asinh: (c.asinh, None),
            sp.log: (c.log, None), sp.erf: (c.erf, None), sp.erfc: (c.erfc, None),
            sp.asin: (c.asin, None), sp.acos: (c.acos, None), sp.atanh: (c.atanh, None),
            sp.acosh: (c.acosh, None), sp.cot: (c.cot, None), sp.sec: (c.sec, None),
            sp.csc: (c.csc, None), sp.coth: (c.coth, None), sp.sech: (c.sech, None),
            sp.csch: (c.csch, None), sp.acot: (c.acot, None), sp.re: (c.re, None),
            sp.im: (c.im, None), sp.conjugate: (c.conj, None), sp.Abs: (abs, None),
            sp.sign: (lambda a: a / abs(a) if a != 0 else c.zero, None),
        }

    def of(self, e):
        """The approximate value of ``e`` (an mpmath number), or None if it depends on a
        symbol without a value; raises ``_Unbounded`` or ``_Singular``."""
        if e in self.memo:
            return self.memo[e]
        if time.monotonic() > self.deadline:
            raise _Unbounded(f"it cannot be evaluated within the time budget of "
                             f"{TIME_BUDGET:g} s")
        try:
            v = self._value(e)
        except ZeroDivisionError:
            raise _Singular from None
        except (OverflowError, MemoryError):
            raise _Unbounded(f"{_shown(e)} is too large to evaluate") from None
        except RecursionError:
            raise _Unbounded("it is nested too deeply to evaluate") from None
        if v is not None:
            if self.ctx.isnan(v) or self.ctx.isinf(v):
                raise _Singular
            if v != 0:
                if self.ctx.mag(v) > self.limit + 1:
                    raise _too_large(e, self.ctx.mag(v), self.limit)
                self.largest = max(self.largest, self.ctx.mag(v))
        self.memo[e] = v
        return v

    def grow(self, part, log_magnitude) -> None:
        """Refuse ``part`` before computing it if its magnitude is about e**log_magnitude."""
        if log_magnitude > (self.limit + 1) * math.log(2):
            raise _too_large(part, log_magnitude / self.ctx.ln2, self.limit)

    def _value(self, e):
        c = self.ctx
        if not isinstance(e, sp.Basic):
            e = sp.sympify(e)
        if isinstance(e, sp.Symbol):
            return self.of(sp.sympify(self.at[e])) if e in self.at else None
        if e.is_Rational:  # Integer too; the size is checked before converting
            if e.p.bit_length() - e.q.bit_length() > self.limit + 1:
                raise _too_large(e, e.p.bit_length() - e.q.bit_length(), self.limit,
                                 f"a number of {e.p.bit_length()} bits")
            return c.mpf(e.p) / e.q
        if e.is_Float:
            return c.make_mpf(e._mpf_)
        if e in _NOT_FINITE:
            raise _Singular
        if isinstance(e, sp.NumberSymbol):
            return c.make_mpf(e._as_mpf_val(c.prec))
        if e is sp.I:
            return c.mpc(0, 1)
        args = [self.of(a) for a in e.args]  # every part is checked, even beside a symbol
        if any(a is None for a in args):
            return None
        if isinstance(e, sp.Add):
            return c.fsum(args)
        if isinstance(e, sp.Mul):
            return c.fprod(args)
        if isinstance(e, sp.Pow):
            b, p = args
            if b == 0:
                if p == 0:
                    return c.one
                if c.re(p) > 0:
                    return c.zero
                raise _Singular
            self.grow(e, c.re(p * c.log(b)))
            return c.power(b, p)
        if isinstance(e, (sp.Max, sp.Min)):
            pick = max if isinstance(e, sp.Max) else min
            return pick(args, key=c.re)
        if isinstance(e, sp.Heaviside):
            a = c.re(args[0])
            return c.one if a > 0 else c.zero if a < 0 else (
                args[1] if len(args) > 1 else c.mpf(0.5))
        if isinstance(e, sp.DiracDelta):
            if args[0] == 0:
                raise _Singular
            return c.zero
        fn = next((v for k, v in self.functions.items() if isinstance(e, k)), None)
        if fn is None or len(args) != 1:
            raise _Unbounded(f"{type(e).__name__} ({_shown(e)}) cannot be evaluated with "
                             "bounded precision")
        f, growth = fn
        if growth is not None:
            self.grow(e, growth(args[0]))
        if isinstance(e, _PERIODIC) and c.mag(c.re(args[0])) > MAX_MAGNITUDE_BITS + 1:
            raise _too_large(e, c.mag(c.re(args[0])), MAX_MAGNITUDE_BITS,
                             f"the argument of {_shown(e)}")
        return f(args[0])


def _guard(expr, at=None, deadline=None, limit: int = MAX_VALUE_BITS):
    """The approximate value of ``expr`` at ``at`` (None: not a number there or singular);
    raises ``_Unbounded`` (with the point in its message)."""
    try:
        return _Approx(at, deadline, limit=limit).of(expr)
    except _Singular:
        return None
    except _Unbounded as err:
        raise _Unbounded(f"{err}{_where(at)}") from None


def check_bounded(expr, *, at: Mapping | None = None, what: str = "the value",
                  limit: int = MAX_VALUE_BITS) -> None:
    """Refuse (``BoundsError``, naming the part and its size) an expression — or each
    entry of a matrix — with a part larger than 2**``limit`` at the point ``at`` ({symbol:
    number}; parts depending on other symbols are skipped), sin/cos/tan of an argument
    above 2**MAX_MAGNITUDE_BITS, or parts that cannot be approximated within TIME_BUDGET
    seconds. A point where the value is not finite (1/x at 0) passes: sympy reports it.
    Every numeric evaluation of a user expression is preceded by this check (``evaluate``
    does it); numbers a user gives are checked with ``limit=MAX_MAGNITUDE_BITS``."""
    items = expr.values() if isinstance(expr, sp.MatrixBase) else [expr]  # the non-zeros
    approx = _Approx(at, limit=limit)
    for e in items:
        try:
            approx.of(e)
        except _Singular:
            continue
        except _Unbounded as err:
            raise BoundsError(f"{what} cannot be evaluated{_where(at)}: {err}.") from None


def check_digits(value, name: str = "digits") -> int:
    """A number of significant digits, 1 ≤ value ≤ MAX_DIGITS (numeric evaluation runs
    with bounded precision)."""
    if isinstance(value, bool) or not isinstance(value, int) and not (
            isinstance(value, float) and value.is_integer()):
        raise FlowtoolsError(f"{name} must be an integer from 1 to {MAX_DIGITS}, got {value!r}.")
    n = int(value)
    if not 1 <= n <= MAX_DIGITS:
        raise FlowtoolsError(f"{name} must be an integer from 1 to {MAX_DIGITS} (numbers are "
                             f"evaluated with at most {MAX_DIGITS} significant digits), got "
                             f"{n}.")
    return n


def evaluate(expr, digits: int = 15, *, at: Mapping | None = None, what: str = "the value"):
    """``expr`` (a sympy expression or matrix) at the point ``at`` ({symbol: number}),
    evaluated to ``digits`` significant digits: the one way flowtools evaluates a user
    expression numerically (sample points, assumption checks, printing). Parts that depend
    on other symbols stay symbolic, as with ``evalf``.

    Bounded: ``digits`` ≤ MAX_DIGITS (``check_digits``); every part is first checked by
    ``check_bounded`` (magnitude, time budget), and sympy's working precision is capped, so
    the evaluation finishes. Raises ``FlowtoolsError`` naming the part that is too large.

        >>> evaluate(x**2 + 1, 5, at={x: sp.Rational(1, 3)})
        1.1111
    """
    digits = check_digits(digits)
    check_bounded(expr, at=at, what=what)
    e = expr.subs(at) if at else expr
    return e.evalf(digits, maxn=_MAXN)


def numeric_sign(expr, *, what: str = "the value") -> int | None:
    """The sign −1, 0 or 1 of a real number ``expr``, decided by evaluation with bounded
    precision: 0 only when ``expr`` is 0 as built, None when evaluation cannot tell it from
    0 (cos(1)**2 + sin(1)**2 - 1) or it is not real (or not a number).

    After the magnitude guard (``check_bounded``), ``expr`` is evaluated twice, with enough
    bits for every part's absolute accuracy (the largest part's magnitude + 2·_WORK_BITS:
    sin of a part near 2**4000 needs its 4000 integer bits) and with 64 bits more; the
    sign counts when both agree to 32 bits. A value that is 0 gives rounding noise that
    shrinks by 2**-64 from one evaluation to the next, so it never agrees."""
    if expr == 0:
        return 0
    if not getattr(expr, "is_number", False):
        return None
    deadline = time.monotonic() + TIME_BUDGET
    guard = _Approx(deadline=deadline)
    try:
        guard.of(expr)
        bits = guard.largest + 2 * _WORK_BITS
        v1, v2 = (_Approx(deadline=deadline, prec=p).of(expr) for p in (bits, bits + 64))
    except _Singular:
        return None
    except _Unbounded as err:
        raise BoundsError(f"{what} cannot be evaluated: {err}.") from None
    c = mpmath.mp
    if v1 is None or v2 is None or c.im(v2) != 0 and abs(c.im(v2)) > abs(c.re(v2)) * 2**-32:
        return None  # not real
    r1, r2 = c.re(v1), c.re(v2)
    if r2 == 0 or abs(r1 - r2) > abs(r2) * 2**-32:
        return None
    return 1 if r2 > 0 else -1


def vanishes(expr, *, what: str = "the value") -> bool:
    """``expr`` = 0 exactly. A number is evaluated first (``numeric_sign``: bounded time);
    only a number that evaluation cannot tell from 0, or an expression in symbols, goes to
    sympy's ``simplify`` — which can explode on numbers: it rewrites sin(2**20*E) by the
    double-angle formula into a product of 2**20 factors."""
    if expr == 0:
        return True
    sign = numeric_sign(expr, what=what)
    if sign is not None:
        return sign == 0
    # an identity that holds with each applied function of numbers (sin(exp(3)), …) as an
    # independent symbol holds for their values, and needs no trigonometric rewriting
    opaque = {f: sp.Dummy(real=bool(f.is_real)) for f in expr.atoms(sp.Function)
              if not f.free_symbols}
    if opaque and sp.simplify(expr.xreplace(opaque)) == 0:
        return True
    return sp.simplify(expr) == 0


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """``text`` split at the separators that are not inside parentheses or brackets, each
    piece stripped: ``'Rational(1,3), 2'`` → ``['Rational(1,3)', '2']``. Unbalanced
    brackets are left to the parser, which names them."""
    pieces, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(depth - 1, 0)
        elif ch == sep and depth == 0:
            pieces.append(text[start:i].strip())
            start = i + 1
    pieces.append(text[start:].strip())
    return pieces


class _Builder:
    """Builds the sympy expression of a whitelisted ``ast`` tree (one node at a time)."""

    def __init__(self, src: str, variables: Mapping[str, sp.Symbol]):
        self.src, self.variables = src, variables
        # the numbers' approximations, for the magnitude guard (x-parts: at the sample points)
        self.approx = _Approx(limit=MAX_MAGNITUDE_BITS)

    def bounded(self, unevaluated) -> None:
        """Refuse a numeric part too large to evaluate (``_Approx``) *before* sympy builds
        it: building Abs, Max, sign, a power … of a number evaluates that number."""
        try:
            self.approx.of(unevaluated)
        except _Singular:
            pass  # sympy's exact value is zoo or nan: refused below as not finite

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
        self.bounded({ast.Add: lambda: sp.Add(a, b, evaluate=False),
                      ast.Sub: lambda: sp.Add(a, -b, evaluate=False),
                      ast.Mult: lambda: sp.Mul(a, b, evaluate=False),
                      ast.Div: lambda: sp.Mul(a, sp.Pow(b, -1, evaluate=False), evaluate=False),
                      ast.Pow: lambda: sp.Pow(a, b, evaluate=False)}[op]())
        out = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
               ast.Div: lambda: a / b, ast.Pow: lambda: a**b}[op]()
        if out.has(*_NOT_FINITE):
            raise _Refused(f"{self.piece(node)!r} is not finite (division by zero?)")
        return out

    def check_power(self, node, base, exp) -> None:
        if not exp.is_number:
            return
        try:
            size = abs(self.approx.of(exp))
        except _Singular:
            size = math.inf
        if size > MAX_EXPONENT:
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
            if fn is not _rational:  # Rational(p, q) of two bounded integer literals
                self.bounded(fn(*args, evaluate=False))
            out = fn(*args)
        except (TypeError, ValueError, ArithmeticError) as err:
            raise _Refused(f"{self.piece(node)!r} cannot be evaluated ({err})") from None
        if out.has(*_NOT_FINITE):
            raise _Refused(f"{self.piece(node)!r} is not finite")
        return out

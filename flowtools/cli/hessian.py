"""Derive the Hessian of the loss at the origin symbolically and print the derivation.

Prints −∇²ℓ(0) (pretty text and LaTeX), its blocks, its eigenvalues with multiplicities,
the top eigenspace, the imbalance C(θ) and the checks of Theorem 1's and Theorem 2's
assumptions (Zhao, Bai, Zhang, section 5.1 and Appendix A.1).

Data: the paper's Example 1 by default (--n, --sampling, ...), exact numbers with --X/--y,
n symbolic samples with --symbolic-data n, or the moments γ, n as symbols with --moments.

examples:
  flowtools hessian                                   # Example 1: tanh, m = 2, bias, n = 6
  flowtools hessian --activation '2*tanh(x)' -m 3 -d 2 --symbolic-data 4
  flowtools hessian --activation 'tanh(x) + 1' --X 0 1 2 --y 1 2 1/3
  flowtools hessian --moments -d 3 --symbolic-derivatives
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

import sympy as sp

from flowtools.cli._common import (
    add_problem_arguments,
    positive_float,
    positive_int,
    problem_from_args,
)
from flowtools.errors import FlowtoolsError
from flowtools.expressions import MAX_DIGITS, check_digits, evaluate, split_top_level

NAME = "hessian"
HELP = "derive −∇²ℓ(0) symbolically: blocks, eigenvalues, top eigenspace, C(θ), assumptions"


def add_arguments(p) -> None:
    add_problem_arguments(p)
    g = p.add_argument_group("symbolic data and display")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--symbolic-data", type=positive_int("the number of symbolic samples"),
                     metavar="N", default=None,
                     help="N ≥ 1 symbolic samples x_{i,j}, y_i instead of numbers")
    src.add_argument("--moments", action="store_true",
                     help="data as the symbols γ_1, …, γ_d̃ and n")
    src.add_argument("--X", nargs="+", metavar="ROW", default=None,
                     help="exact inputs, one per sample; a row of a d > 1 input is "
                     "comma-separated, e.g. --X 0,1 1,1/2 'Rational(1,3),2' (use with --y)")
    g.add_argument("--y", nargs="+", metavar="VALUE", default=None,
                   help="exact labels, one per sample (use with --X), e.g. 1/3 or tanh(1)")
    g.add_argument("--symbolic-derivatives", action="store_true",
                   help="keep σ'(0) as the symbol σ_1")
    g.add_argument("--exact", action="store_true",
                   help="print numeric matrices exactly (default: decimals, exact μ1)")
    g.add_argument("--digits", type=_digits, default=8,
                   help="significant digits of the decimal approximations, 1 to "
                   f"{MAX_DIGITS} (default 8)")
    g.add_argument("--max-size", type=positive_int("the matrix size limit"), default=16,
                   help="print the full p×p matrix only up to this size, ≥ 1 (default 16)")
    g.add_argument("--time-limit", type=positive_float("--time-limit"), default=60.0,
                   metavar="SECONDS",
                   help="stop with an error if the derivation takes longer (default 60)")


def _digits(text: str) -> int:
    """--digits: an integer from 1 to MAX_DIGITS (evaluation runs with bounded precision)."""
    n = positive_int("--digits")(text)
    try:
        return check_digits(n, "--digits")
    except FlowtoolsError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _data_from_args(args):
    if args.X is not None or args.y is not None:
        if args.X is None or args.y is None:
            raise FlowtoolsError("--X and --y go together: give both.")
        if len(args.X) != len(args.y):
            raise FlowtoolsError(f"--X has {len(args.X)} samples but --y has {len(args.y)}.")
        rows = [split_top_level(r) for r in args.X]  # not inside Rational(1, 3)
        if len({len(r) for r in rows}) != 1:
            raise FlowtoolsError("every --X row must have the same number of entries.")
        return (rows, list(args.y)), len(rows[0]), None
    if args.symbolic_data is not None:
        return args.symbolic_data, args.dim, None
    if args.moments:
        return None, args.dim, None
    pb = problem_from_args(args)
    return None, None, pb


def _num(e, digits):
    """' ≈ decimal' for an exact number that is not already short."""
    if not isinstance(e, sp.Basic) or e.free_symbols or e.is_Integer:
        return ""
    return f"  ≈ {evaluate(e, digits)}"


def _show(M, digits, numeric):
    return sp.pretty(evaluate(M, digits) if numeric else M, use_unicode=True, wrap_line=False)


class _Expired(BaseException):  # not an Exception: no `except Exception` in sympy eats it
    pass


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Stop the block after ``seconds`` with a ``FlowtoolsError``.

    The numeric work is bounded everywhere (``flowtools.expressions``: magnitudes, digits,
    a time budget); sympy's exact algebra is not: σ'(0) = a sum of thirty transcendental
    numbers makes eigenvalues whose simplification runs for many minutes. This SIGALRM timer bounds
    the command. A signal reaches only the main thread, and a library must not take a timer
    that is already in use, so elsewhere the block runs unbounded. When the timer fires
    inside a callback whose exceptions Python only reports (JAX runs one at every garbage
    collection), the report is dropped and the timer fires again a few milliseconds later.
    """
    usable = (hasattr(signal, "setitimer") and signal.getitimer(signal.ITIMER_REAL)[0] == 0
              and threading.current_thread() is threading.main_thread()
              and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None))
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise _Expired

    unraisable = sys.unraisablehook

    def again(report):
        if isinstance(report.exc_value, _Expired):
            signal.setitimer(signal.ITIMER_REAL, 0.005)
            return
        unraisable(report)

    previous = signal.signal(signal.SIGALRM, expire)
    sys.unraisablehook = again
    signal.setitimer(signal.ITIMER_REAL, min(seconds, 1e7))  # 1e12 overflows time_t
    try:
        yield
    except _Expired:
        raise FlowtoolsError(
            f"the derivation did not finish within {seconds:g} s (--time-limit): sympy's "
            "exact algebra grows with the numbers σ(0), σ'(0), … of the activation. Use "
            "--symbolic-derivatives (σ'(0) kept as a symbol), a simpler activation, or a "
            "larger --time-limit.") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        sys.unraisablehook = unraisable


def run(args) -> int:
    with _time_limit(args.time_limit):
        text = _report(args)
    print(text)
    return 0


def _report(args) -> str:
    """The derivation, as the text ``run`` prints."""
    from flowtools.errors import AssumptionError
    from flowtools.symbolic import OriginHessian, origin_hessian

    data, dim, pb = _data_from_args(args)
    if pb is not None:
        oh = OriginHessian.from_problem(pb, symbolic_derivatives=args.symbolic_derivatives)
        src = (f"{pb.n} numeric samples ({args.sampling} inputs, labels from the default "
               "single-neuron tanh target), made exact rationals")
    else:
        oh = origin_hessian(args.activation, width=args.width, dim=dim, bias=not args.no_bias,
                            data=data, symbolic_derivatives=args.symbolic_derivatives)
        src = {"numeric": f"{oh.n} exact numeric samples",
               "symbolic": f"{oh.n} symbolic samples (x_i_j, y_i)",
               "moments": "the moments γ_j = Σ_i y_i x̃_ij and n as symbols"}[oh.data_kind]
    dg, num = args.digits, oh.data_kind == "numeric" and not args.exact
    act = oh.activation
    dt = oh.block_size - 1
    out = []
    out.append(f"Model  f_θ(x) = Σ_k a_k σ(w_kᵀx̃),  σ(x) = {act.expr if act else 'σ (generic)'},"
               f"  m = {oh.width}, d = {oh.dim}, "
               + ("bias: x̃ = (x, 1)" if oh.bias else "no bias: x̃ = x")
               + f";  p = m(d̃+1) = {oh.n_params} parameters")
    out.append(f"Data   {src}")
    out.append("Loss   ℓ(θ) = ½ Σ_i (f_θ(x_i) − y_i)²")
    if args.symbolic_derivatives or act is None:
        out.append("       σ_k denotes σ^(k)(0), kept as a symbol")
    out.append("")
    out.append(f"γ = Σ_i y_i x̃_i (d̃ = {dt}):")
    out.append(_show(oh.gamma.T, dg, num))
    out.append("")
    out.append("Derived structure: −∇²ℓ(0) = I_m ⊗ (A − B) + 1 1ᵀ ⊗ B")
    out.append("Diagonal block A" + (" = D_k = σ'(0)·[[0, γᵀ], [γ, 0]]:" if oh.block_diagonal
                                    else ":"))
    out.append(_show(oh.block, dg, num))
    if oh.block_diagonal:
        out.append("Coupling B = 0 between neurons: −∇²ℓ(0) = blockdiag(A, …, A)"
                   f" ({oh.width} blocks)")
    else:
        out.append("Coupling B between every pair of neurons (σ(0) ≠ 0):")
        out.append(_show(oh.coupling, dg, num))
    out.append("")
    if oh.n_params <= args.max_size:
        out.append(f"−∇²ℓ(0) ({oh.n_params}×{oh.n_params}):")
        out.append(_show(sp.Matrix(oh.matrix), dg, num))
        out.append("LaTeX:")
        M = sp.Matrix(oh.matrix)
        out.append(sp.latex(evaluate(M, dg) if num else M))
    else:
        out.append(f"−∇²ℓ(0) is {oh.n_params}×{oh.n_params}: not printed (--max-size); "
                   "LaTeX of the block A:")
        out.append(sp.latex(evaluate(oh.block, dg) if num else oh.block))
    out.append("")
    out.append("Eigenvalues of −∇²ℓ(0) (multiplicity):")
    for lam, k in oh.eigenvalues.items():
        out.append(f"  {sp.sstr(lam)}   (×{k}){_num(lam, dg)}")
    out.append(f"μ1 = {sp.sstr(oh.mu1)}{_num(oh.mu1, dg)}")
    out.append(f"μ2 = {sp.sstr(oh.mu2)}{_num(oh.mu2, dg) if oh.mu2 is not None else ''}")
    out.append("")
    k = oh.eigenvalues[oh.mu1]
    out.append(f"Top eigenspace: dimension {k}; orthonormal eigenvector(s) of the block(s):")
    for v in oh.top_block_vectors:
        out.append(_show(v.T, dg, num))
    if oh.block_diagonal and len(oh.top_block_vectors) == 1:
        out.append("  one per neuron: e_k ⊗ v, k = 1…m  (v = (‖γ‖, sign(σ'(0))γ)/(√2‖γ‖))")
    elif not oh.block_diagonal:
        out.append("  combined across neurons as q ⊗ v, q = (1, …, 1)/√m or q ⊥ (1, …, 1) "
                   "(columns of OriginHessian.top_basis)")
    out.append("")
    try:
        C = oh.imbalance
        out.append("Imbalance C(θ) = √2‖γ‖·V1ᵀθ:  C_k = a_k‖γ‖ + sign(σ'(0)) w_kᵀγ")
        for i, c in enumerate(C[: min(oh.width, 4)]):
            out.append(f"  C_{i + 1} = {sp.sstr(evaluate(c, dg) if num else c)}")
        if oh.width > 4:
            out.append(f"  … ({oh.width} entries)")
    except AssumptionError as err:
        out.append("Imbalance C(θ): undefined — " + str(err).replace("\n", "\n  "))
    out.append("")
    out.append("Assumptions (Theorem 1: (i) σ ∈ C², σ(0) = 0, σ'(0) ≠ 0; (ii) γ ≠ 0; "
               "Theorem 2: σ analytic):")
    out.append(str(oh.assumptions))
    return "\n".join(out)

"""The Hessian of the loss at the origin, derived with sympy, and its top eigenspace.

For f_θ(x) = Σ_k a_k σ(w_kᵀx̃) and ℓ(θ) = ½ Σ_i (f_θ(x_i) − y_i)², differentiating at θ = 0
gives (Zhao, Bai, Zhang, section 5.1 and Appendix A.1, here without assuming σ(0) = 0)

    −∇²ℓ(0) = I_m ⊗ (A − B) + 1 1ᵀ ⊗ B,
    A = [[−nσ(0)², σ'(0)γᵀ], [σ'(0)γ, 0]],   B = −nσ(0)² e_a e_aᵀ,   γ = Σ_i y_i x̃_i.

When σ(0) = 0 the coupling B vanishes and −∇²ℓ(0) = blockdiag(D, …, D), D = σ'(0)[[0, γᵀ],
[γ, 0]], with top eigenvalue μ1 = |σ'(0)|‖γ‖ of multiplicity m, eigenvectors
(‖γ‖, sign(σ'(0))γ)/(√2‖γ‖) in each neuron's block, and the imbalance C_k(θ) = a_k‖γ‖ +
sign(σ'(0)) w_kᵀγ = √2‖γ‖·(coordinate of θ along neuron k's eigenvector).

Nothing above is assumed by the code: sympy differentiates the loss of a two-neuron,
one-sample model with σ an undefined function (every entry of the m-neuron Hessian involves
at most two neurons, and the loss is a sum over samples), the sample sums become data moments
(γ, n), and the eigen-decomposition of the two (d̃+1)×(d̃+1) blocks gives the whole spectrum:
eig(A − B) with multiplicity m − 1 and eig(A + (m−1)B). Each eigenpair is verified exactly.
Width 1000 therefore costs what width 2 costs.

    >>> from flowtools.symbolic import origin_hessian
    >>> oh = origin_hessian("2*tanh(x)", width=2, dim=1, bias=False, data=([[1], [2]], [1, 3]))
    >>> oh.gamma.T, oh.mu1, oh.eigenvalues
    (Matrix([[7]]), 14, {14: 2, -14: 2})
    >>> oh.imbalance.T
    Matrix([[7*a_1 + 7*w_1_1, 7*a_2 + 7*w_2_1]])

Data may be numbers (converted to exact rationals: 0.4 becomes 2/5), ``n`` symbolic samples
(``data=10``: symbols x_{i,j}, y_i) or ``None`` (the moments γ_j and n as symbols).
``symbolic_derivatives=True`` keeps σ'(0), σ''(0), … as the symbols σ_1, σ_2, ….
``field_taylor_term`` gives the Taylor term of any degree K of the field −∇ℓ at 0.
σ(0) and σ'(0) must exist (``AssumptionError`` otherwise: Max(0, x) has no σ'(0), so ℓ
has no Hessian at 0); Theorem 1's and 2's assumptions are in ``flowtools.symbolic.assumptions``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from functools import cache, cached_property

import numpy as np
import sympy as sp

from flowtools import _validate
from flowtools.activations import Activation, get_activation, lambdify_jax
from flowtools.errors import AssumptionError, FlowtoolsError
from flowtools.expressions import parse_number
from flowtools.symbolic.assumptions import AssumptionReport, Check, check_assumptions

__all__ = ["SIGMA", "sigma_symbol", "origin_hessian", "OriginHessian", "field_taylor_term",
           "FieldTaylorTerm", "third_order_term", "check_assumptions", "AssumptionReport",
           "Check"]  # the last three live in flowtools.assumptions (re-exported)

#: σ_k := σ^(k)(0), the symbols used when derivatives are kept symbolic (``sigma_symbol(k)``
#: gives the same symbol for any k).
SIGMA = sp.symbols("sigma_0:4", real=True)
N_SYM = sp.Symbol("n", integer=True, positive=True)


def sigma_symbol(k: int) -> sp.Symbol:
    """σ_k, the symbol standing for σ^(k)(0) (``SIGMA[k]`` for k < 4)."""
    return sp.Symbol(f"sigma_{k}", real=True)


# ==================================================================== data


def _exact(v, where: str) -> sp.Expr:
    """A data value as an exact sympy number: ints exactly, floats via their shortest repr
    (0.4 → 2/5), strings such as '1/3' or 'tanh(1)' through the safe parser
    (``flowtools.expressions.parse_number``: no Python is evaluated), sympy numbers as
    they are."""
    if isinstance(v, (bool, np.bool_)):
        raise FlowtoolsError(f"non-numeric data: {where} is the boolean {v!r}.")
    if isinstance(v, (numbers.Integral, np.integer)):
        return sp.Integer(int(v))
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(v):
            raise FlowtoolsError(f"{where} is {v!r}: data must be finite numbers.")
        return sp.Rational(repr(float(v)))
    if isinstance(v, numbers.Rational):  # fractions.Fraction
        return sp.Rational(v.numerator, v.denominator)
    if isinstance(v, str):
        try:
            return parse_number(v, what=where)
        except FlowtoolsError as err:
            raise FlowtoolsError(
                f"non-numeric data: {err} (give numbers, exact strings such as '1/3' or "
                "'tanh(1)', or use data=n for symbolic samples)."
            ) from None
    if isinstance(v, sp.Expr) and v.is_number and not v.free_symbols:
        if v.has(sp.I) or v.has(sp.nan, sp.zoo, sp.oo, -sp.oo) or v.is_real is False:
            raise FlowtoolsError(f"{where} = {v} is not a finite real number.")
        return sp.nsimplify(v) if isinstance(v, sp.Float) else v
    raise FlowtoolsError(
        f"non-numeric data: {where} = {v!r} is not a number (give numbers, exact strings "
        "such as '1/3', or use data=n for n symbolic samples)."
    )


def _sample_symbols(dt: int):
    return sp.symbols(f"xt_1:{dt + 1}", real=True), sp.Symbol("y_s", real=True)


_MOMENT_EXPS: dict = {}  # (symbol, d̃, bias) → exps


def _moment_symbol(exps: tuple[int, ...], bias: bool) -> sp.Symbol:
    """The symbol standing for Σ_i Π_j x̃_ij^e_j · y_i^e_y (exps = (e_1, …, e_d̃, e_y))."""
    *ex, ey = exps
    if bias:  # x̃_{i,d̃} = 1
        ex[-1] = 0
    sym = _moment_name(tuple(ex), ey, bias)
    _MOMENT_EXPS.setdefault((sym, len(ex), bias), (*ex, ey))
    return sym


@cache
def _moment_name(ex: tuple[int, ...], ey: int, bias: bool) -> sp.Symbol:
    ex = list(ex)
    dt = len(ex)
    if not any(ex) and ey == 0:
        return N_SYM
    if ey == 1 and sum(ex) == 1:
        return sp.Symbol(f"gamma_{ex.index(1) + 1}", real=True)
    if ey == 1 and sum(ex) == 0 and bias:
        return sp.Symbol(f"gamma_{dt}", real=True)
    mono = "·".join([f"x{j + 1}^{e}" if e > 1 else f"x{j + 1}" for j, e in enumerate(ex) if e]
                    + ([f"y^{ey}" if ey > 1 else "y"] if ey else []))
    return sp.Symbol(f"Σ({mono})", real=True)


@dataclass(frozen=True, eq=False)
class _Data:
    """Data in one of three forms: moments as symbols, n symbolic samples, or numbers."""

    kind: str  # "moments" | "symbolic" | "numeric"
    dt: int
    bias: bool
    X: sp.Matrix | None = None  # (n, d̃), augmented
    y: sp.Matrix | None = None

    @property
    def n(self):
        return N_SYM if self.X is None else sp.Integer(self.X.shape[0])

    def moment(self, exps) -> sp.Expr:
        if self.kind == "moments":
            return _moment_symbol(tuple(exps), self.bias)
        *ex, ey = exps
        return sp.Add(*[
            sp.Mul(*[self.X[i, j] ** e for j, e in enumerate(ex) if e]) * self.y[i] ** ey
            for i in range(self.X.shape[0])
        ])


def _parse_data(data, dim, bias) -> _Data:
    from flowtools.data import Dataset

    if data is None or (isinstance(data, (int, np.integer)) and not isinstance(data, bool)):
        dt = _validate.dim(dim) + bool(bias)
        if data is None:
            return _Data("moments", dt, bool(bias))
        n = int(data)
        if n < 1:
            raise FlowtoolsError(
                f"n = {n} symbolic samples: give at least one sample (data=n with n ≥ 1)."
            )
        X = sp.Matrix(n, dt, lambda i, j: 1 if (bias and j == dt - 1)
                      else sp.Symbol(f"x_{i + 1}_{j + 1}", real=True))
        y = sp.Matrix(n, 1, lambda i, j: sp.Symbol(f"y_{i + 1}", real=True))
        return _Data("symbolic", dt, bool(bias), X, y)
    if isinstance(data, Dataset):
        data = (data.X, data.y)
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise FlowtoolsError(
            "data must be None (moments as symbols), an int n (n symbolic samples), a "
            f"Dataset or a pair (X, y); got {type(data).__name__}."
        )
    Xr, yr = data
    Xr, yr = _validate.samples(np.asarray(Xr, dtype=object), np.asarray(yr, dtype=object))
    if dim is not None and Xr.shape[1] != dim:
        raise FlowtoolsError(f"dim = {dim} but X has {Xr.shape[1]} columns.")
    n, d = Xr.shape
    dt = d + bool(bias)
    X = sp.Matrix(n, dt, lambda i, j: 1 if j == d else _exact(Xr[i, j], f"X[{i}, {j}]"))
    y = sp.Matrix(n, 1, lambda i, j: _exact(yr[i], f"y[{i}]"))
    return _Data("numeric", dt, bool(bias), X, y)


def _sum_over_samples(expr: sp.Expr, data: _Data) -> sp.Expr:
    """Σ_i expr(x̃_i, y_i) for a per-sample expression polynomial in (x̃, y)."""
    xs, yv = _sample_symbols(data.dt)
    expr = sp.expand(expr)
    if expr == 0:
        return sp.S.Zero
    poly = sp.Poly(expr, *xs, yv)
    return sp.Add(*[c * data.moment(m) for m, c in poly.terms()])


# ==================================================================== derivation


def _jets(expr: sp.Expr, sig) -> sp.Expr:
    """σ(0) ↦ σ_0 and σ^(k)(0) (a ``Subs`` of a derivative) ↦ σ_k."""
    expr = expr.replace(lambda e: isinstance(e, sp.Subs),
                        lambda e: sigma_symbol(e.expr.derivative_count))
    return expr.subs(sig(0), SIGMA[0])


@cache
def _sample_blocks(dt: int, bias: bool):
    """−∇²ℓ_i(0) of ONE sample (x̃, y) for TWO neurons, by differentiating with σ undefined:
    the diagonal block A_i and the coupling block B_i, polynomials in (x̃, y, σ_0, σ_1)."""
    xs, yv = _sample_symbols(dt)
    xv = list(xs[:-1]) + [sp.S.One] if bias else list(xs)
    sig = sp.Function("sigma")
    th = [sp.symbols(f"u{k}_0:{dt + 1}", real=True) for k in (1, 2)]
    f = sum(t[0] * sig(sum(t[j + 1] * xv[j] for j in range(dt))) for t in th)
    loss = (f - yv) ** 2 / 2
    zero = {s: 0 for t in th for s in t}
    p = dt + 1

    def entry(u, v):  # the other parameters are set to 0 first: the same value, cheaper
        part = loss.subs({s: 0 for s in zero if s not in (u, v)})
        return -_jets(sp.diff(part, u, v).subs(zero), sig)

    A = sp.Matrix(p, p, lambda i, j: entry(th[0][i], th[0][j]))
    B = sp.Matrix(p, p, lambda i, j: entry(th[0][i], th[1][j]))
    return A, B


def _sigma_values(act: Activation | None, symbolic: bool, upto: int = 3) -> dict:
    """{σ_0: σ(0)} and, unless ``symbolic``, {σ_k: σ^(k)(0)} for k ≤ ``upto``; raises
    ``AssumptionError`` (saying what is needed) if one of them does not exist."""
    if act is None:
        return {}
    ks = [0] if symbolic else range(upto + 1)
    try:
        return {sigma_symbol(k): act.taylor0(k) for k in ks}
    except AssumptionError as err:
        hint = "" if symbolic else (" (symbolic_derivatives=True, on the command line "
                                    "--symbolic-derivatives, keeps σ'(0), σ''(0), … as symbols)")
        raise AssumptionError(f"the derivation needs σ^(k)(0) for k ≤ {max(ks)}, and {err}"
                              f"{hint}") from None


def _resolve_activation(activation):
    return None if activation is None else get_activation(activation)


# ==================================================================== eigen-analysis


def _simp(e):
    """A cheap canonical form (full ``simplify`` costs seconds on symbolic data)."""
    return sp.factor_terms(sp.expand(e))


def _orthonormal(vecs):
    if not vecs:
        return []
    return [sp.Matrix([_simp(c) for c in v]) for v in sp.GramSchmidt(vecs, orthonormal=True)]


def _arrow_eigen(M: sp.Matrix, zero_vectors: bool = False):
    """Eigenpairs of M = [[α, uᵀ], [u, 0]]: λ± = (α ± √(α² + 4‖u‖²))/2 with eigenvector
    (λ, u), and 0 on (0, u^⊥). Returns [(λ, multiplicity, [orthonormal eigenvectors])],
    each pair verified exactly; the basis of (0, u^⊥) only if ``zero_vectors``."""
    p = M.shape[0]
    if any(sp.simplify(M[i, j]) != 0 for i in range(1, p) for j in range(1, p)):
        raise AssertionError("the derived block is not of arrow form; please report this")
    alpha, u = M[0, 0], M[1:, 0]
    r2 = _simp(sum(c**2 for c in u))
    e0 = sp.Matrix([1] + [0] * (p - 1))
    if r2.is_zero:
        if alpha.is_zero:
            return [(sp.S.Zero, p, [sp.eye(p)[:, j] for j in range(p)])]
        return [(alpha, 1, [e0])] + [(sp.S.Zero, p - 1, [sp.eye(p)[:, j]
                                                         for j in range(1, p)])] * (p > 1)
    disc = sp.sqrt(alpha**2 + 4 * r2)
    pairs = []
    for lam in (_simp((alpha + disc) / 2), _simp((alpha - disc) / 2)):
        v = sp.Matrix([lam, *u])
        nv = sp.sqrt(_simp(lam**2 + r2))
        pairs.append((lam, 1, [sp.Matrix([_simp(c / nv) for c in v])]))
    if p > 2:
        perp = [sp.Matrix([0, *w]) for w in sp.Matrix([list(u)]).nullspace()]
        pairs.append((sp.S.Zero, p - 2, _orthonormal(perp) if zero_vectors else []))
    for lam, _, vs in pairs:  # verify exactly
        for v in vs:
            res = [sp.expand(c) for c in (M * v - lam * v)]
            if any(c != 0 and sp.simplify(c) != 0 for c in res):
                raise AssertionError(f"eigenpair check failed for λ = {lam}: residual {res}")
    return pairs


def _ge(a, b) -> bool:
    """a ≥ b, exactly where sympy can tell, else at a generic numeric point."""
    d = sp.simplify(a - b)
    if d.is_nonnegative:
        return True
    if d.is_negative:
        return False
    if d.free_symbols:  # generic point: positive values for the symbols
        pt = {s: sp.Rational(3 + k, 7) for k, s in enumerate(sorted(d.free_symbols, key=str))}
        return bool(sp.N(d.subs(pt)) >= 0)
    return bool(sp.N(d) >= 0)


def _merge_sorted(pairs):
    """[(λ, mult, payload)] → distinct λ in decreasing order with summed multiplicities."""
    out: list[list] = []
    for lam, mult, payload in pairs:
        for item in out:
            if sp.simplify(item[0] - lam) == 0:
                item[1] += mult
                item[2].extend(payload)
                break
        else:
            out.append([lam, mult, list(payload)])
    # insertion sort, decreasing
    res: list[list] = []
    for item in out:
        k = 0
        while k < len(res) and _ge(res[k][0], item[0]):
            k += 1
        res.insert(k, item)
    return res


def _helmert(m: int):
    """Orthonormal basis of 1^⊥ in ℝ^m (Helmert), as dicts {index: coefficient}."""
    out = []
    for j in range(1, m):
        c = 1 / sp.sqrt(j * (j + 1))
        q = {i: c for i in range(j)}
        q[j] = -j * c
        out.append(q)
    return out


# ==================================================================== result


@dataclass(frozen=True, eq=False)
class OriginHessian:
    """−∇²ℓ(0) = I_m ⊗ (A − B) + 1 1ᵀ ⊗ B derived symbolically, with its spectrum.

    Attributes:
        activation: the ``Activation`` (None for a generic σ).
        width, dim, bias: the model; ``data_kind`` is "numeric", "symbolic" or "moments".
        n: the sample size (a number or the symbol n).
        gamma: γ = Σ_i y_i x̃_i, a d̃×1 sympy Matrix.
        block: A, the diagonal block of −∇²ℓ(0) (the paper's D_k when σ(0) = 0).
        coupling: B, every off-diagonal block (zero when σ(0) = 0).
        eigenvalues: {λ: multiplicity} of −∇²ℓ(0), in decreasing order.
        mu1, mu2: the largest and second largest eigenvalue (μ2 None if there is none).
        top_block_vectors: orthonormal eigenvectors of the top eigenvalue of the blocks.
        assumptions: the ``AssumptionReport``.
    Lazily built (sparse, O(m)): ``matrix`` (−∇²ℓ(0)), ``hessian`` (∇²ℓ(0)), ``top_basis``,
    ``imbalance``; ``to_jax()`` gives (X, y) ↦ ∇²ℓ(0) as a JAX function.
    """

    activation: Activation | None
    width: int
    dim: int
    bias: bool
    data_kind: str
    n: sp.Expr
    gamma: sp.Matrix
    block: sp.Matrix
    coupling: sp.Matrix
    eigenvalues: dict
    mu1: sp.Expr
    mu2: sp.Expr | None
    top_block_vectors: tuple
    assumptions: AssumptionReport
    _top: tuple = field(repr=False)  # ((neuron coefficients dict, block vector), …)
    _moment_block: sp.Matrix = field(repr=False)
    _moment_coupling: sp.Matrix = field(repr=False)
    _sigma: dict = field(repr=False)
    _pre: tuple = field(repr=False)  # (γ, top block vectors) before data substitution
    _post: dict = field(repr=False)  # the substitution moment ↦ symbolic-data sums

    # ------------------------------------------------------------ construction
    @classmethod
    def from_problem(cls, problem, *, symbolic_derivatives: bool = False) -> OriginHessian:
        """The origin Hessian of a ``flowtools.models.Problem`` (its data made exact)."""
        return origin_hessian(problem.activation, width=problem.width, dim=problem.dim,
                              bias=problem.bias, data=(np.asarray(problem.X),
                                                       np.asarray(problem.y)),
                              symbolic_derivatives=symbolic_derivatives)

    # ------------------------------------------------------------ shapes
    @property
    def block_size(self) -> int:
        """d̃ + 1, the parameters per neuron."""
        return self.dim + self.bias + 1

    @property
    def n_params(self) -> int:
        return self.width * self.block_size

    @property
    def block_diagonal(self) -> bool:
        """Whether the coupling B vanishes (it does iff σ(0) = 0)."""
        return self.coupling.is_zero_matrix is True

    # ------------------------------------------------------------ lazily built
    @cached_property
    def matrix(self) -> sp.ImmutableSparseMatrix:
        """−∇²ℓ(0), p×p, sparse (blocks written once per neuron pair that is non-zero)."""
        b, m = self.block_size, self.width
        entries = {}
        D = self.block - self.coupling
        for k in range(m):
            for i in range(b):
                for j in range(b):
                    if D[i, j] != 0:
                        entries[(k * b + i, k * b + j)] = D[i, j]
        if not self.block_diagonal:
            for k in range(m):
                for l in range(m):
                    for (i, j), v in self.coupling.todok().items():
                        key = (k * b + i, l * b + j)
                        entries[key] = entries.get(key, 0) + v
        return sp.ImmutableSparseMatrix(self.n_params, self.n_params, entries)

    @cached_property
    def hessian(self) -> sp.ImmutableSparseMatrix:
        """∇²ℓ(0) = −matrix."""
        return -self.matrix

    @cached_property
    def top_basis(self) -> sp.ImmutableSparseMatrix:
        """Orthonormal basis (columns) of the μ1-eigenspace of −∇²ℓ(0), p × multiplicity."""
        b = self.block_size
        entries = {}
        for col, (q, v) in enumerate(self._top):
            for k, c in q.items():
                for i in range(b):
                    if v[i] != 0:
                        entries[(k * b + i, col)] = c * v[i]
        return sp.ImmutableSparseMatrix(self.n_params, len(self._top), entries)

    @cached_property
    def theta_symbols(self) -> tuple[tuple[sp.Symbol, ...], ...]:
        """((a_1, w_1_1, …), …, (a_m, w_m_1, …)), the parameters per neuron."""
        dt = self.block_size - 1
        return tuple(
            (sp.Symbol(f"a_{k + 1}", real=True),
             *[sp.Symbol(f"w_{k + 1}_{j + 1}", real=True) for j in range(dt)])
            for k in range(self.width)
        )

    @cached_property
    def imbalance(self) -> sp.Matrix:
        """C(θ) = √2‖γ‖·V1ᵀθ, an m×1 Matrix: C_k = a_k‖γ‖ + sign(σ'(0)) w_kᵀγ.

        Raises ``AssumptionError`` if Theorem 1's assumptions fail (then the top eigenspace
        is not one direction per neuron)."""
        reasons = [str(c) for c in self.assumptions.failures if c.name.startswith("Theorem 1")]
        if not reasons and not self.block_diagonal:
            reasons.append(f"σ(0) = {self.coupling[0, 0] / -self.n} is not known to be 0, so "
                           "the neurons are coupled at 0 (give a concrete activation)")
        if not reasons and len(self.top_block_vectors) != 1:
            reasons.append("the top eigenvalue of the block is degenerate (γ = 0?)")
        if reasons:
            raise AssumptionError("C(θ) rests on Theorem 1's assumptions, which fail here:\n  "
                                  + "\n  ".join(reasons))
        gamma, (v,) = self._pre  # in moment symbols for symbolic data: stays compact
        scale = sp.sqrt(2) * sp.sqrt(sum(c**2 for c in gamma))
        coef = [_sign_simp(sp.expand(scale * vi)).subs(self._post) for vi in v]
        return sp.Matrix([sp.Add(*[c * t for c, t in zip(coef, th)])
                          for th in self.theta_symbols])

    # ------------------------------------------------------------ numerics
    def to_jax(self, sigma: dict | None = None):
        """A jitted JAX function (X, y) ↦ ∇²ℓ(0) (p×p), lambdified from the derived blocks in
        moment form (any data of the same d). ``sigma`` gives values for σ_k symbols
        left free (default: the activation's own values), as {σ_k symbol: number}."""
        given = {}
        for k, v in (sigma or {}).items():
            if not isinstance(k, sp.Symbol):
                raise FlowtoolsError(f"sigma keys must be the symbols σ_k (flowtools.symbolic."
                                     f"sigma_symbol(k)), got {k!r}.")
            given[k] = _exact(v, f"sigma[{k}]")
        vals = {**self._sigma, **given}
        if self.activation is not None and SIGMA[1] not in vals:
            vals = {**_sigma_values(self.activation, False, upto=1), **vals}
        A = self._moment_block.subs(vals)
        B = self._moment_coupling.subs(vals)
        m = self.width
        fA, fB = _lambdify_moments([A, B], self.block_size - 1, self.bias)

        import jax
        import jax.numpy as jnp

        def hess(X, y):
            a, b = fA(X, y), fB(X, y)
            return -(jnp.kron(jnp.eye(m), a - b) + jnp.kron(jnp.ones((m, m)), b))

        return jax.jit(hess)

    def numeric(self) -> np.ndarray:
        """∇²ℓ(0) as a float64 array (numeric data and concrete σ only)."""
        free = self.block.free_symbols | self.coupling.free_symbols
        if free:
            raise FlowtoolsError(f"the Hessian has free symbols {sorted(map(str, free))}.")
        return np.array(self.hessian.evalf(17).tolist(), dtype=float)


def _sign_simp(e):
    """σ/|σ| ↦ sign(σ) for the σ_1 symbol."""
    s = SIGMA[1]
    return e.subs(s / sp.Abs(s), sp.sign(s)) if e.has(sp.Abs(s)) else e


def _lambdify_moments(exprs, dt: int, bias: bool):
    """Lambdify expressions in moment symbols to JAX functions of the raw data (X, y)."""
    import jax.numpy as jnp

    from flowtools.models.network import augment

    syms = set().union(*(e.free_symbols for e in exprs))
    table = {s: _MOMENT_EXPS[(s, dt, bias)] for s in syms if (s, dt, bias) in _MOMENT_EXPS}
    leftover = syms - set(table)
    if leftover:
        raise FlowtoolsError(f"cannot lambdify: free symbols {sorted(map(str, leftover))}; "
                             "give their values (sigma=...).")
    order = sorted(table, key=str)
    fns = [lambdify_jax(order, e, cse=True) for e in exprs]

    def moments(X, y):
        Xa = augment(jnp.asarray(X).reshape(len(y), -1), bias)
        y = jnp.asarray(y)
        out = []
        for s in order:
            *ex, ey = table[s]
            out.append(jnp.sum(jnp.prod(Xa ** jnp.asarray(ex), axis=1) * y**ey))
        return out

    return [lambda X, y, f=f: jnp.asarray(f(*moments(X, y)), dtype=float) for f in fns]


# ==================================================================== entry point


def origin_hessian(activation, *, width: int, dim: int | None = None, bias: bool = True,
                   data=None, symbolic_derivatives: bool = False) -> OriginHessian:
    """Derive −∇²ℓ(0), its blocks, spectrum, top eigenspace and C(θ) with sympy.

    Args:
        activation: registered name, expression in x (e.g. ``"2*tanh(x)"``), ``Activation``
            or None (a generic σ: σ(0), σ'(0) become the symbols σ_0, σ_1).
        width: m; dim: d (inferred from numeric data); bias: augment x̃ = (x, 1).
        data: ``(X, y)`` / ``Dataset`` (exact rationals), an int n (n symbolic samples
            x_{i,j}, y_i), or None (the moments γ_j and n as symbols).
        symbolic_derivatives: keep σ'(0) (and higher) as symbols σ_1, …; σ(0) stays the
            activation's value.

    Block structure (derived, not assumed; see the module docstring):
    −∇²ℓ(0) = I_m ⊗ (A − B) + 1 1ᵀ ⊗ B; with σ(0) = 0, B = 0 and A = σ'(0)[[0, γᵀ], [γ, 0]],
    μ1 = |σ'(0)|‖γ‖ (Zhao, Bai, Zhang, Appendix A.1).

        >>> oh = origin_hessian("tanh", width=1000, dim=1, data=([[0], [1]], [1, 2]))
        >>> oh.mu1, oh.eigenvalues[oh.mu1]
        (sqrt(13), 1000)
    """
    act = _resolve_activation(activation)
    m = _validate.width(width)
    d = _parse_data(data, dim, bias)
    sig = _sigma_values(act, symbolic_derivatives, upto=1)
    # 1. one sample, two neurons → sum over samples in moment form
    A1, B1 = _sample_blocks(d.dt, d.bias)
    mom = _Data("moments", d.dt, d.bias)
    A_m = A1.applyfunc(lambda e: _sum_over_samples(e.subs(sig), mom))
    B_m = B1.applyfunc(lambda e: _sum_over_samples(e.subs(sig), mom))
    gamma_m = sp.Matrix([_moment_symbol((*[int(i == j) for i in range(d.dt)], 1), d.bias)
                         for j in range(d.dt)])
    # 2. the data: substitute moments (numbers: before the eigen-analysis, so that zero
    #    tests are exact; symbols: after, so that the algebra stays small)
    if d.kind == "moments":
        sub = {}
    else:
        syms = A_m.free_symbols | B_m.free_symbols | set(gamma_m)
        sub = {s: _moment_value(s, d) for s in syms if _is_moment(s, d)}
    numeric = d.kind == "numeric"
    A = A_m.subs(sub) if numeric else A_m
    B = B_m.subs(sub) if numeric else B_m
    # 3. spectrum from the two blocks
    def spectrum(zero_vectors):
        if B.is_zero_matrix:
            return _merge_sorted([(lam, m * k, [(None, v) for v in vs])
                                  for lam, k, vs in _arrow_eigen(A, zero_vectors)])
        pairs = [(lam, k, [("sum", v) for v in vs])
                 for lam, k, vs in _arrow_eigen(A + (m - 1) * B, zero_vectors)]
        if m > 1:
            pairs += [(lam, (m - 1) * k, [("helmert", v) for v in vs])
                      for lam, k, vs in _arrow_eigen(A - B, zero_vectors)]
        return _merge_sorted(pairs)

    spec = spectrum(False)
    if spec[0][0].is_zero:  # degenerate (σ'(0) = 0 or γ = 0): the top eigenspace holds 0
        spec = spectrum(True)
    post = (lambda e: e) if (numeric or d.kind == "moments") else (lambda e: e.subs(sub))
    mu1 = post(spec[0][0])
    mu2 = post(spec[1][0]) if len(spec) > 1 else None
    top_vs = tuple(sp.ImmutableMatrix(v.applyfunc(post)) for _, v in spec[0][2])
    top = []
    for kind, v in spec[0][2]:
        v = sp.ImmutableMatrix(v.applyfunc(post))
        if kind is None:
            top += [({k: sp.S.One}, v) for k in range(m)]
        elif kind == "sum":
            top.append(({k: 1 / sp.sqrt(m) for k in range(m)}, v))
        else:
            top += [(q, v) for q in _helmert(m)]
    gamma = gamma_m.subs(sub)
    return OriginHessian(
        activation=act, width=m, dim=d.dt - d.bias, bias=d.bias, data_kind=d.kind, n=d.n,
        gamma=sp.ImmutableMatrix(gamma),
        block=sp.ImmutableMatrix(A.subs(sub)), coupling=sp.ImmutableMatrix(B.subs(sub)),
        eigenvalues={post(lam): mult for lam, mult, _ in spec}, mu1=mu1, mu2=mu2,
        top_block_vectors=top_vs,
        assumptions=check_assumptions(act, gamma=gamma if d.kind != "moments" else None,
                                      symbolic_derivatives=symbolic_derivatives),
        _top=tuple(top), _moment_block=A_m, _moment_coupling=B_m, _sigma=sig,
        _pre=(gamma_m if not numeric else gamma, tuple(v for _, v in spec[0][2])),
        _post=sub if d.kind == "symbolic" else {},
    )


def _is_moment(s, d: _Data) -> bool:
    return (s, d.dt, d.bias) in _MOMENT_EXPS


def _moment_value(s, d: _Data):
    e = _MOMENT_EXPS[(s, d.dt, d.bias)]
    return sp.expand(d.moment(e)) if d.kind == "numeric" else d.moment(e)


# ==================================================================== Taylor terms


@dataclass(frozen=True, eq=False)
class FieldTaylorTerm:
    """The homogeneous Taylor term of degree ``order`` of the field g = −∇ℓ at 0:
    g(θ) = Σ_k T_k(θ) + O(‖θ‖^{K+1}), T_k(sθ) = s^k T_k(θ); T_1(θ) = −∇²ℓ(0)θ.

    Attributes: ``theta`` (the parameter symbols, flat, layout (a_1, w_1, …)), ``expr``
    (p×1 Matrix with the data substituted), ``moment_expr`` (in moment symbols);
    ``to_jax()`` gives (θ, X, y) ↦ T_k(θ).
    """

    order: int
    width: int
    dim: int
    bias: bool
    theta: tuple
    expr: sp.Matrix
    moment_expr: sp.Matrix

    def to_jax(self):
        """A jitted JAX function (theta, X, y) ↦ T_k(θ) for data of this d."""
        import jax
        import jax.numpy as jnp

        th = sp.Matrix(self.theta)
        dt = self.dim + self.bias
        syms = self.moment_expr.free_symbols - set(self.theta)
        table = {q: _MOMENT_EXPS[(q, dt, self.bias)] for q in syms
                 if (q, dt, self.bias) in _MOMENT_EXPS}
        left = syms - set(table)
        if left:
            raise FlowtoolsError(f"cannot lambdify: free symbols {sorted(map(str, left))}.")
        order = sorted(table, key=str)
        f = lambdify_jax([list(th), order], list(self.moment_expr), cse=True)
        from flowtools.models.network import augment

        def term(theta, X, y):
            y = jnp.asarray(y)
            Xa = augment(jnp.asarray(X).reshape(len(y), -1), self.bias)
            mom = [jnp.sum(jnp.prod(Xa ** jnp.asarray(table[s][:-1]), axis=1)
                           * y ** table[s][-1]) for s in order]
            theta = jnp.asarray(theta)
            out = f(list(theta), mom)
            return jnp.stack([jnp.broadcast_to(jnp.asarray(o, dtype=float), ()) for o in out])

        return jax.jit(term)


def field_taylor_term(activation, *, width: int, dim: int | None = None, bias: bool = True,
                      data=None, order: int = 3, symbolic_derivatives: bool = False
                      ) -> FieldTaylorTerm:
    """The degree-``order`` Taylor term T_K of the field g = −∇ℓ at 0 (K = 1, 2, 3, …).

    With σ(z) = Σ_k σ_k z^k/k! + O(z^{K+1}) and f_q the degree-q part of f_θ(x) in θ,
    f_q = Σ_j a_j σ_{q−1} (w_jᵀx̃)^{q−1}/(q−1)!, the degree-(K+1) part of ℓ is
    ℓ_{K+1} = Σ_i [½ Σ_{p+q=K+1} f_p f_q − y_i f_{K+1}] and T_K = −∇ℓ_{K+1}. For σ(0) = 0,
    T_3 = −∇Σ_i [½ (σ'(0) Σ_j a_j w_jᵀx̃_i)² − y_i σ'''(0)/6 Σ_j a_j (w_jᵀx̃_i)³].
    Needed by the limit h(θ, t) (Theorem 3); the expression has O(m²) terms: meant for
    small widths.

        >>> T = field_taylor_term("tanh", width=1, dim=1, bias=False, data=([[1]], [1]))
        >>> T.expr.T
        Matrix([[-a_1*w_1_1**2 - w_1_1**3/3, -a_1**2*w_1_1 - a_1*w_1_1**2]])
    """
    act = _resolve_activation(activation)
    m = _validate.width(width)
    K = _validate.positive_int(order, "the order K")
    d = _parse_data(data, dim, bias)
    sig = _sigma_values(act, symbolic_derivatives, upto=K)
    s = [sig.get(sigma_symbol(k), sigma_symbol(k)) for k in range(K + 1)]
    xs, yv = _sample_symbols(d.dt)
    xv = list(xs[:-1]) + [sp.S.One] if d.bias else list(xs)
    theta = [(sp.Symbol(f"a_{k + 1}", real=True),
              *[sp.Symbol(f"w_{k + 1}_{j + 1}", real=True) for j in range(d.dt)])
             for k in range(m)]
    z = [sum(t[j + 1] * xv[j] for j in range(d.dt)) for t in theta]

    def f(q):  # degree-q part of f_θ(x̃) in θ
        return sum(t[0] * s[q - 1] * zk ** (q - 1) / sp.factorial(q - 1)
                   for t, zk in zip(theta, z))

    deg = K + 1
    part = sp.Rational(1, 2) * sum(f(p) * f(deg - p) for p in range(1, deg)) - yv * f(deg)
    flat = [v for t in theta for v in t]
    mom = _Data("moments", d.dt, d.bias)
    loss_m = _sum_over_samples(part, mom)
    field_m = sp.Matrix([-sp.diff(loss_m, v) for v in flat])
    if d.kind == "moments":
        expr = field_m
    else:
        syms = field_m.free_symbols - set(flat)
        sub = {q: _moment_value(q, d) for q in syms if _is_moment(q, d)}
        expr = field_m.subs(sub).applyfunc(sp.expand)
    return FieldTaylorTerm(order=K, width=m, dim=d.dt - d.bias, bias=d.bias,
                           theta=tuple(flat), expr=sp.ImmutableMatrix(expr),
                           moment_expr=sp.ImmutableMatrix(field_m))


def third_order_term(activation, **kwargs) -> FieldTaylorTerm:
    """The cubic Taylor term T_3 of −∇ℓ at 0 (``field_taylor_term`` with order 3)."""
    return field_taylor_term(activation, order=3, **kwargs)

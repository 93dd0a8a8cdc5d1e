"""The origin Hessian −∇²ℓ(0) of f_θ(x) = Σ_k a_k σ(w_kᵀx̃), ℓ(θ) = ½ Σ_i (f_θ(x_i) − y_i)²,
derived with sympy, with its spectrum, top eigenspace, C(θ) and JAX export.

Differentiating at θ = 0 gives (Zhao, Bai, Zhang, section 5.1 and Appendix A.1, here without
assuming σ(0) = 0)

    −∇²ℓ(0) = I_m ⊗ (A − B) + 1 1ᵀ ⊗ B,
    A = [[−nσ(0)², σ'(0)γᵀ], [σ'(0)γ, 0]],   B = −nσ(0)² e_a e_aᵀ,   γ = Σ_i y_i x̃_i.

When σ(0) = 0 the coupling B vanishes and −∇²ℓ(0) = blockdiag(D, …, D), D = σ'(0)[[0, γᵀ],
[γ, 0]], with top eigenvalue μ1 = |σ'(0)|‖γ‖ of multiplicity m, eigenvectors
(‖γ‖, sign(σ'(0))γ)/(√2‖γ‖) in each neuron's block, and the imbalance C_k(θ) = a_k‖γ‖ +
sign(σ'(0)) w_kᵀγ = √2‖γ‖·(coordinate of θ along neuron k's eigenvector).

Nothing above is assumed by the code: the blocks come from ``flowtools.symbolic.derivation``
(two neurons, one sample, σ undefined, then the sum over samples as data moments), the
spectrum from ``flowtools.symbolic.spectrum`` (eig(A − B) with multiplicity m − 1 and
eig(A + (m−1)B), each eigenpair verified exactly). Width 1000 therefore costs what width 2
costs. The moment-form blocks and their ``Moments`` table travel with each ``OriginHessian``,
so ``to_jax`` needs nothing else.

    >>> from flowtools.symbolic import origin_hessian
    >>> oh = origin_hessian("2*tanh(x)", width=2, dim=1, bias=False, data=([[1], [2]], [1, 3]))
    >>> oh.gamma.T, oh.mu1, oh.eigenvalues
    (Matrix([[7]]), 14, {14: 2, -14: 2})
    >>> oh.imbalance.T
    Matrix([[7*a_1 + 7*w_1_1, 7*a_2 + 7*w_2_1]])

Data may be numbers (converted to exact rationals: 0.4 becomes 2/5), ``n`` symbolic samples
(``data=10``: symbols x_{i,j}, y_i) or ``None`` (the moments γ_j and n as symbols).
``symbolic_derivatives=True`` keeps σ'(0), σ''(0), … as the symbols σ_1, σ_2, ….
σ(0) and σ'(0) must exist (``AssumptionError`` otherwise: Max(0, x) has no σ'(0), so ℓ
has no Hessian at 0); Theorem 1's and 2's assumptions are in ``flowtools.symbolic.assumptions``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import sympy as sp

from flowtools import _validate
from flowtools.activations import Activation
from flowtools.errors import AssumptionError, FlowtoolsError
from flowtools.expressions import evaluate
from flowtools.symbolic.assumptions import AssumptionReport, check_assumptions
from flowtools.symbolic.derivation import (
    SIGMA,
    parameter_symbols,
    resolve_activation,
    sample_blocks,
    sample_inputs,
    sample_symbols,
    sigma_values,
    sum_over_samples,
)
from flowtools.symbolic.exact import Moments, exact_number, parse_data
from flowtools.symbolic.spectrum import hessian_spectrum, neuron_factors

__all__ = ["OriginHessian", "origin_hessian"]


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
    _moments: Moments = field(repr=False)  # the moments of _moment_block, _moment_coupling
    _pre: tuple = field(repr=False)  # (γ, top block vectors) before data substitution
    _post: dict = field(repr=False)  # the substitution moment ↦ symbolic-data sums

    # ------------------------------------------------------------ construction
    @classmethod
    def from_problem(cls, problem, *, symbolic_derivatives: bool = False) -> OriginHessian:
        """The origin Hessian of a ``flowtools.models.Problem`` (its data made exact) — of
        the paper's sum loss ½Σ_i r_i²; a mean-loss problem's is 1/n times it."""
        if getattr(problem, "loss_convention", "sum") != "sum":
            from flowtools.errors import FlowtoolsError

            raise FlowtoolsError(
                "the symbolic origin Hessian is derived for the paper's sum loss ½Σ_i r_i²; "
                f"this problem uses the {problem.loss_convention!r} convention (1/n times "
                "it): build the problem with loss_convention='sum' and divide by n.")
        data = problem.samples("the symbolic origin Hessian")  # a padded problem's real rows
        return origin_hessian(problem.activation, width=problem.width, dim=problem.dim,
                              bias=problem.bias, data=(data.X, data.y),
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
        return parameter_symbols(self.width, self.block_size - 1)

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
            given[k] = exact_number(v, f"sigma[{k}]")
        vals = {**self._sigma, **given}
        if self.activation is not None and SIGMA[1] not in vals:
            vals = {**sigma_values(self.activation, False, upto=1), **vals}
        blocks = self._moments.lambdify([self._moment_block.subs(vals),
                                         self._moment_coupling.subs(vals)],
                                        hint="; give their values (sigma=...)")
        m = self.width

        import jax
        import jax.numpy as jnp

        def hess(X, y):
            a, b = (jnp.asarray(t, dtype=float) for t in blocks(X, y))
            return -(jnp.kron(jnp.eye(m), a - b) + jnp.kron(jnp.ones((m, m)), b))

        return jax.jit(hess)

    def numeric(self) -> np.ndarray:
        """∇²ℓ(0) as a float64 array (numeric data and concrete σ only)."""
        free = self.block.free_symbols | self.coupling.free_symbols
        if free:
            raise FlowtoolsError(f"the Hessian has free symbols {sorted(map(str, free))}.")
        return np.array(evaluate(self.hessian, 17, what="∇²ℓ(0)").tolist(), dtype=float)


def _sign_simp(e):
    """σ/|σ| ↦ sign(σ) for the σ_1 symbol."""
    s = SIGMA[1]
    return e.subs(s / sp.Abs(s), sp.sign(s)) if e.has(sp.Abs(s)) else e

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
    act = resolve_activation(activation)
    m = _validate.width(width)
    d = parse_data(data, dim, bias)
    sig = sigma_values(act, symbolic_derivatives, upto=1)
    # 1. one sample, two neurons → sum over samples in moment form (γ = Σ_i y_i x̃_i with it)
    A1, B1 = sample_blocks(d.dt, d.bias)
    p = d.dt + 1
    _, y_s = sample_symbols(d.dt)
    sums, moments = sum_over_samples(
        [*A1.subs(sig), *B1.subs(sig), *(y_s * xj for xj in sample_inputs(d.dt, d.bias))],
        d.dt, d.bias)
    A_m, B_m = sp.Matrix(p, p, sums[: p * p]), sp.Matrix(p, p, sums[p * p: 2 * p * p])
    gamma_m = sp.Matrix(sums[2 * p * p:])
    # 2. the data: substitute moments (numbers: before the eigen-analysis, so that zero
    #    tests are exact; symbols: after, so that the algebra stays small)
    sub = moments.values(d)
    numeric = d.kind == "numeric"
    A = A_m.subs(sub) if numeric else A_m
    B = B_m.subs(sub) if numeric else B_m
    # 3. spectrum from the two blocks
    spec = hessian_spectrum(A, B, m, False)
    if spec[0][0].is_zero:  # degenerate (σ'(0) = 0 or γ = 0): the top eigenspace holds 0
        spec = hessian_spectrum(A, B, m, True)
    post = (lambda e: e) if (numeric or d.kind == "moments") else (lambda e: e.subs(sub))
    mu1 = post(spec[0][0])
    mu2 = post(spec[1][0]) if len(spec) > 1 else None
    top_vs = tuple(sp.ImmutableMatrix(v.applyfunc(post)) for _, v in spec[0][2])
    top = tuple((q, v) for (kind, _), v in zip(spec[0][2], top_vs)
                for q in neuron_factors(kind, m))
    gamma = gamma_m.subs(sub)
    return OriginHessian(
        activation=act, width=m, dim=d.dt - d.bias, bias=d.bias, data_kind=d.kind, n=d.n,
        gamma=sp.ImmutableMatrix(gamma),
        block=sp.ImmutableMatrix(A.subs(sub)), coupling=sp.ImmutableMatrix(B.subs(sub)),
        eigenvalues={post(lam): mult for lam, mult, _ in spec}, mu1=mu1, mu2=mu2,
        top_block_vectors=top_vs,
        assumptions=check_assumptions(act, gamma=gamma if d.kind != "moments" else None,
                                      symbolic_derivatives=symbolic_derivatives),
        _top=top, _moment_block=A_m, _moment_coupling=B_m, _sigma=sig, _moments=moments,
        _pre=(gamma_m if not numeric else gamma, tuple(v for _, v in spec[0][2])),
        _post=sub if d.kind == "symbolic" else {},
    )

"""The exact spectrum of −∇²ℓ(0) = I_m ⊗ (A − B) + 1 1ᵀ ⊗ B from its two blocks.

On q ⊗ v the matrix acts as (A − B + (1ᵀq) B)v when q is 1/√m or ⊥ 1, so

    spec = eig(A + (m−1)B) on (1/√m) 1 ⊗ v   ∪   eig(A − B), m − 1 times, on q ⊗ v, q ⊥ 1

(q from the Helmert basis of 1^⊥; when B = 0, eig(A) m times, on e_k ⊗ v). Each block has
arrow form [[α, uᵀ], [u, 0]] (the derivation gives it; it is checked), with eigenvalues
λ± = (α ± √(α² + 4‖u‖²))/2 on (λ, u) and 0 on (0, u^⊥); every eigenpair is verified
exactly. Eigenvalues are merged exactly and sorted in decreasing order.

    >>> import sympy as sp
    >>> from flowtools.symbolic.spectrum import hessian_spectrum
    >>> A = sp.Matrix([[0, 3], [3, 0]])
    >>> [(lam, k) for lam, k, _ in hessian_spectrum(A, sp.zeros(2), 4, False)]
    [(3, 4), (-3, 4)]
"""

from __future__ import annotations

import sympy as sp

from flowtools.expressions import evaluate, numeric_sign, vanishes

__all__ = ["arrow_eigen", "helmert", "hessian_spectrum", "merge_sorted", "neuron_factors",
           "simp"]


def simp(e):
    """A cheap canonical form (full ``simplify`` costs seconds on symbolic data)."""
    return sp.factor_terms(sp.expand(e))


def _orthonormal(vecs):
    if not vecs:
        return []
    return [sp.Matrix([simp(c) for c in v]) for v in sp.GramSchmidt(vecs, orthonormal=True)]


def arrow_eigen(M: sp.Matrix, zero_vectors: bool = False):
    """Eigenpairs of M = [[α, uᵀ], [u, 0]]: λ± = (α ± √(α² + 4‖u‖²))/2 with eigenvector
    (λ, u), and 0 on (0, u^⊥). Returns [(λ, multiplicity, [orthonormal eigenvectors])],
    each pair verified exactly; the basis of (0, u^⊥) only if ``zero_vectors``."""
    p = M.shape[0]
    if any(not vanishes(M[i, j]) for i in range(1, p) for j in range(1, p)):
        raise AssertionError("the derived block is not of arrow form; please report this")
    alpha, u = M[0, 0], M[1:, 0]
    r2 = simp(sum(c**2 for c in u))
    e0 = sp.Matrix([1] + [0] * (p - 1))
    if r2.is_zero:
        if alpha.is_zero:
            return [(sp.S.Zero, p, [sp.eye(p)[:, j] for j in range(p)])]
        return [(alpha, 1, [e0])] + [(sp.S.Zero, p - 1, [sp.eye(p)[:, j]
                                                         for j in range(1, p)])] * (p > 1)
    disc = sp.sqrt(alpha**2 + 4 * r2)
    pairs = []
    for lam in (simp((alpha + disc) / 2), simp((alpha - disc) / 2)):
        v = sp.Matrix([lam, *u])
        nv = sp.sqrt(simp(lam**2 + r2))
        pairs.append((lam, 1, [sp.Matrix([simp(c / nv) for c in v])]))
    if p > 2:
        perp = [sp.Matrix([0, *w]) for w in sp.Matrix([list(u)]).nullspace()]
        pairs.append((sp.S.Zero, p - 2, _orthonormal(perp) if zero_vectors else []))
    for lam, _, vs in pairs:  # verify exactly
        for v in vs:
            res = [sp.expand(c) for c in (M * v - lam * v)]
            if not all(vanishes(c) for c in res):
                raise AssertionError(f"eigenpair check failed for λ = {lam}: residual {res}")
    return pairs


def _ge(a, b) -> bool:
    """a ≥ b: for numbers by evaluation (bounded, exact sign) where it can tell, else
    exactly where sympy can tell, else at a generic numeric point."""
    sign = numeric_sign(a - b, what="an eigenvalue difference")
    if sign is not None:
        return sign >= 0
    d = sp.simplify(a - b)
    if d.is_nonnegative:
        return True
    if d.is_negative:
        return False
    if d.free_symbols:  # generic point: positive values for the symbols
        pt = {s: sp.Rational(3 + k, 7) for k, s in enumerate(sorted(d.free_symbols, key=str))}
        return bool(evaluate(d, at=pt, what="an eigenvalue difference") >= 0)
    return bool(evaluate(d, what="an eigenvalue difference") >= 0)


def merge_sorted(pairs):
    """[(λ, mult, payload)] → distinct λ in decreasing order with summed multiplicities."""
    out: list[list] = []
    for lam, mult, payload in pairs:
        for item in out:
            if vanishes(item[0] - lam, what="an eigenvalue difference"):
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


def helmert(m: int):
    """Orthonormal basis of 1^⊥ in ℝ^m (Helmert), as dicts {index: coefficient}."""
    out = []
    for j in range(1, m):
        c = 1 / sp.sqrt(j * (j + 1))
        q = {i: c for i in range(j)}
        q[j] = -j * c
        out.append(q)
    return out


def hessian_spectrum(A: sp.Matrix, B: sp.Matrix, m: int, zero_vectors: bool):
    """The spectrum of I_m ⊗ (A − B) + 1 1ᵀ ⊗ B: [[λ, multiplicity, [(kind, v), …]], …] in
    decreasing λ, where v is a block eigenvector and ``kind`` names its neuron factor q
    (``neuron_factors``): None (e_k, B = 0), "sum" (1/√m) or "helmert" (q ⊥ 1)."""
    if B.is_zero_matrix:
        return merge_sorted([(lam, m * k, [(None, v) for v in vs])
                             for lam, k, vs in arrow_eigen(A, zero_vectors)])
    pairs = [(lam, k, [("sum", v) for v in vs])
             for lam, k, vs in arrow_eigen(A + (m - 1) * B, zero_vectors)]
    if m > 1:
        pairs += [(lam, (m - 1) * k, [("helmert", v) for v in vs])
                  for lam, k, vs in arrow_eigen(A - B, zero_vectors)]
    return merge_sorted(pairs)


def neuron_factors(kind, m: int) -> list[dict]:
    """The orthonormal neuron factors q (dicts {neuron: coefficient}) that go with a block
    eigenvector of ``kind`` (see ``hessian_spectrum``): the eigenvectors are q ⊗ v."""
    if kind is None:
        return [{k: sp.S.One} for k in range(m)]
    if kind == "sum":
        return [{k: 1 / sp.sqrt(m) for k in range(m)}]
    return helmert(m)

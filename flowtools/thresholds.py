"""Sample-size thresholds of a two-layer network with a single-neuron target, from the model.

The main paper (§3.2, Definition 1, Table 1, Appendix B) organises recovery around two sample
sizes taken from Zhang et al. (2023a, b): below the **optimistic sample size** no
initialization recovers the target; from the **separation sample size** of a branch Q^k of
the target set Q* = {θ : f_θ ≡ f*} on, Q^k is *separated* — some open neighbourhood M of it
has M ∩ ℓ⁻¹(0) = Q^k ∩ ℓ⁻¹(0) — and recovery on it can happen with positive probability. This
module computes both for any width m, input dimension d, with or without bias, and any
analytic activation with σ(0) = 0 and σ'(0) ≠ 0 (the paper's), in two independent ways: from
the structure of Q* (``target_branches``, ``thresholds``) and numerically (``tangent_rank``,
``numerical_dimension``, ``numerical_optimistic``; ``flowtools.separation`` tests Definition 1
itself without using the rule below).

Network f_θ(x) = Σ_k a_k σ(w_kᵀx̃), θ = (a_1, w_1, …, a_m, w_m), x̃ = (x, 1) with a bias
(w_k ∈ ℝ^{d̃}, d̃ = d + 1) or x̃ = x (d̃ = d); p = m(d̃ + 1) parameters; target
f* = a_0 σ(w_0ᵀx̃), a_0 ≠ 0, w_0 ≠ 0 with a non-zero input part.

**The branches of Q*.** Assume the functions σ(wᵀx̃) for distinct w (w ≠ ±w' for odd σ) with
a non-zero input part are linearly independent of each other and of the affine functions
(true for tanh; checked numerically by ``thresholds(check=True)``). Then f_θ = f* exactly
when the neurons fall into groups — up to swapping neurons and, for odd σ, flipping a
neuron's sign (a, w) ↦ (−a, −w) — of these kinds:

====  =====================================================  ==========  =================
code  group                                                  dimension   tangent functions
====  =====================================================  ==========  =================
T<k>  k neurons at the target, w = w_0, Σ a = a_0 (one)      k − 1       σ(w_0x̃), x̃σ'(w_0x̃)
S     a silenced neuron: a = 0, w free                       d̃           σ(wx̃)
N     a null neuron: w = 0 (σ(0) = 0), a free                1           x̃ σ'(0)
K<g>  g ≥ 2 bias-only neurons, w = (0, b), Σ a σ(b) = 0      2g − 1      1, x
C<g>  g ≥ 2 neurons at one free w, Σ a = 0                   d̃ + g − 1   σ(wx̃), x̃σ'(wx̃)
====  =====================================================  ==========  =================

(with a bias, g ≥ 2 null neurons lie in the closure of K<g>, so they are not a branch of
their own; without a bias, bias-only neurons are null neurons, "N<g>" of dimension g). A
branch is one T group plus silenced neurons, at most one bias-only group (N, K<g> or N<g>) and
any C groups, m neurons in all. For m = 2 the branches are the paper's Q1 = T2 (a line),
Q2 = T1+S (a plane) — and T1+N = {neuron 1 = target, w_2 = 0, a_2 free}, a line the paper's
"Q1 ∪ Q2 = Q*" leaves out (tanh(0·x + 0) = 0 for every a_2).

**Tangent rank.** At a generic point of a branch the tangent functions ∂f_θ/∂θ_j span
r = (d̃ + 1)(1 + #C) + #S + d̃·[a bias-only group]: the last column above, counted once
per group. Its kernel has dimension p − r ≥ dim B (moving along B does not change f).

**The optimistic sample size** (Zhang et al. 2023a) is the model rank of the target, the
minimum of r over Q*. The T group always gives d̃ + 1 functions (some a ≠ 0 since Σa = a_0 ≠
0), and every other group can be made to contribute none (a silenced neuron at w = 0: σ(0) =
0; a null or bias-only neuron with a = 0; a C group with a = 0): n_opt = d̃ + 1, the
target neuron's own parameter count (3 in Example 1, 5 for d = 3 with bias, as quoted).

**The separation sample size** of a branch B is the dimension of the tangent cone C_B of the
image {f_θ} at f* along B (the leading-order terms of f_θ − f* for θ near a generic θ_0 ∈ B).
Why: take data in general position. If zero-loss points θ_j ∉ Q* accumulate at θ_0, the
directions (f_θj − f*)/‖f_θj − f*‖ have a limit v ∈ C_B with v(x_i) = 0 for every sample;
n generic evaluation constraints meet a cone of dimension D only at 0 when n ≥ D, so B is
separated. For n < D a generic codimension-n subspace meets C_B; for a linear cone it always
does and B is not separated (the zero set of n equations near θ_0 has dimension ≥ p − n >
dim B), for a curved cone it does for a positive-measure set of data.

- *Clean branches* (kernel of the tangent map = tangent of B, i.e. p − r = dim B: T1, S, N,
  C2 groups): C_B is the tangent space's image, D = r = p − dim B.
- *An aligned pair* (a T2 group, every other group clean): the kernel exceeds the branch by
  the d̃ directions u_1 = −(a_2/a_1)u_2 that pull the two neurons apart. With s = Σa − a_0,
  P = Σ a_i u_i (u_i = w_i − w_0), f_θ − f* = sσ + Pᵀx̃σ' + ½x̃ᵀMx̃σ'' + O(3) with
  M = Σ a_i u_iu_iᵀ; when P = O(‖u‖²), M = (a_1a_0/a_2) u_1u_1ᵀ is of rank one. C_B is the
  first-order span times the cone of rank-one symmetric d̃ × d̃ matrices (dimension d̃):
  D = r + d̃ = p − dim B. Example 1: 3 + 2 = 5; Figure 9 (d̃ = 4): 5 + 4 = 9. The rank-one
  cone is curved, so below D the data decide whether the samples' kernel meets it
  (``leading_order_separated``; for d̃ = 2 at n = D − 1, whether one binary quadratic form
  is indefinite). Measured on uniform data: Example 1 at n = 4, indefinite for 200 of 200
  datasets; Figure 9 at n = 8, Q1 separated for 1 dataset in 100.
- *Other degenerate groups* (T<k ≥ 3>, K<g>, C<g ≥ 3>, N<g ≥ 2>): the second-order cone does
  not close the count; D = p − dim B is conjectured (the normal slice of B maps
  finite-to-one at leading order) and labelled so — ``flowtools.separation`` tests it.
  T<k ≥ 3> shows why a branch's separation is a statement about all of it: where every
  a_i has a_0's sign, M = Σ a_iu_iu_iᵀ is positive semi-definite and vanishes only at
  u = 0, so the cone is the first-order span plus PSD matrices of rank ≤ k − 1
  (T3, d̃ = 2: 3 + 3 = 6); where the signs are mixed, M vanishes on a cone of u ≠ 0 and the
  third-order terms Σ a_iu_i^{⊗3} add directions (T3, d̃ = 2: 7 = p − dim B). Measured
  (width 3, d = 1, ``separation_test`` at n = 6, 3 datasets): separated at
  a = (0.3, 0.3, 0.4), zeros outside Q* at a = (1.2, 0.6, −0.8). So T3 as a whole separates
  from n = 7, its same-sign part from 6; ``Branch.point`` draws T<k ≥ 3> points with mixed
  signs, the part that sets the branch's size.

So in every case n_sep(B) = p − dim B, the codimension of B in parameter space: Example 1:
Q2 6 − 2 = 4, Q1 6 − 1 = 5, T1+N 6 − 1 = 5; Figure 9 (p = 10): Q2 10 − 4 = 6, Q1 10 − 1 = 9.
The paper's "separation sample size" without a branch is the smallest over the branches
(the first n at which recovery is possible with positive probability).

**All global minima in Q*.** For n ≥ p + 1 the samples overdetermine the p parameters: the
data (x_1, …, x_n) for which some θ ∉ Q* interpolates them form a set of dimension at most
p + nd − n < nd, of measure zero. At n = p spurious global minima are isolated and may
exist for a positive-measure set of data; the paper's Table 1 states Q* = ℓ⁻¹(0) at
n = p = 6 for Example 1 (``flowtools.separation.zero_loss_search`` looks for them).

    >>> import flowtools as ft
    >>> from flowtools.thresholds import thresholds
    >>> th = thresholds(ft.example1())
    >>> th.optimistic, th.separation, [(b.code, b.paper_name, b.dimension, b.separation)
    ...                                for b in th.branches]
    (3, 4, [('T2', 'Q1', 1, 5), ('T1+S', 'Q2', 2, 4), ('T1+N', None, 1, 5)])
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from flowtools.data import augment
from flowtools.errors import FlowtoolsError
from flowtools.models import Problem
from flowtools.models.network import forward

__all__ = ["Branch", "Group", "Thresholds", "leading_order_separated", "numerical_dimension",
           "numerical_optimistic", "problem_for", "tangent_rank", "target_branches",
           "thresholds"]

@dataclass(frozen=True)
class Group:
    """One group of neurons of a branch: ``kind`` in T, S, N, K, C (see the module docstring)
    and its ``size`` (S and N groups have size 1; without a bias "N" may have size g)."""

    kind: str
    size: int = 1

    @property
    def code(self) -> str:
        return self.kind if self.size == 1 and self.kind in "SN" else f"{self.kind}{self.size}"


@dataclass(frozen=True)
class _Spec:
    """What the structure needs of a problem: width, d̃, bias, σ and the target (a_0, w̃_0)."""

    width: int
    dt: int
    bias: bool
    activation: object
    a0: float
    w0: tuple  # augmented target weight (w_0, b_0) with a bias

    @property
    def n_params(self) -> int:
        return self.width * (self.dt + 1)

    def sigma(self, z):
        return np.asarray(self.activation(jnp.asarray(z, dtype=jnp.float64)), dtype=float)


@dataclass(frozen=True, eq=False)
class Branch:
    """A branch of the target set Q*: its groups, its dimension (from the structure), the
    tangent rank r at a generic point, and the separation sample size by the rule
    (``rule``: "clean", "second order" or "conjectured", see the module docstring).

    Neurons are ordered as the groups are listed (the T group first); ``point``, ``tangent``
    and ``normal`` use the Problem's parameter layout."""

    groups: tuple[Group, ...]
    spec: _Spec = field(repr=False)
    dimension: int
    rank: int
    rule: str

    @property
    def code(self) -> str:
        return "+".join(g.code for g in self.groups)

    @property
    def paper_name(self) -> str | None:
        """The paper's name for the width-2 branches (Example 1): Q1 = T2, Q2 = T1+S."""
        if self.spec.width == 2:
            return {"T2": "Q1", "T1+S": "Q2"}.get(self.code)
        return None

    @property
    def codimension(self) -> int:
        return self.spec.n_params - self.dimension

    @property
    def separation(self) -> int:
        """The separation sample size by the rule: the codimension p − dim B."""
        return self.codimension

    @property
    def description(self) -> str:
        words = {"T": "at the target (w = w0, Σa = a0)", "S": "silenced (a = 0, w free)",
                 "N": "null (w = 0, a free)", "K": "bias-only, constants cancel (Σ a σ(b) = 0)",
                 "C": "at one free w, cancelling (Σa = 0)"}
        parts = []
        for g in self.groups:
            n = "1 neuron" if g.size == 1 else f"{g.size} neurons"
            parts.append(f"{n} {words[g.kind]}")
        return "; ".join(parts)

    def _slices(self):
        """(group, [neuron indices]) in neuron order."""
        i = 0
        for g in self.groups:
            yield g, list(range(i, i + g.size))
            i += g.size

    # ------------------------------------------------------------------ points
    def point(self, rng=None, *, degenerate: bool = False) -> np.ndarray:
        """A point of the branch (f_θ = f* exactly). Generic by default (random free
        coordinates of order one); ``degenerate=True`` sets the free coordinates to the
        values where the tangent rank is smallest (silenced w = 0, null or cancelling a = 0,
        one T neuron carrying all of a_0), where the optimistic size is attained."""
        rng = np.random.default_rng(rng)
        s = self.spec
        a, W = np.zeros(s.width), np.zeros((s.width, s.dt))
        w0 = np.asarray(s.w0)
        for g, idx in self._slices():
            if g.kind == "T":
                W[idx] = w0
                if degenerate or g.size == 1:
                    a[idx] = 0.0
                    a[idx[0]] = s.a0
                else:  # Σa = a_0 with every |a_k| ≥ 0.2|a_0|: away from the other branches;
                    # for k ≥ 3 with mixed signs, the part that sets the branch's separation
                    while True:
                        dev = rng.uniform(0.3, 1.0, g.size) * rng.choice([-1, 1], g.size)
                        a[idx] = s.a0 / g.size + dev - dev.mean()
                        if np.min(np.abs(a[idx])) >= 0.2 * abs(s.a0) and (
                                g.size < 3 or np.any(a[idx] * s.a0 < 0)):
                            break
            elif g.kind == "S":
                W[idx] = 0.0 if degenerate else _generic_weight(rng, s.dt, w0)
            elif g.kind == "N":
                a[idx] = 0.0 if degenerate else _order_one(rng, g.size)
            elif g.kind == "K":
                if not degenerate:
                    b = _order_one(rng, g.size)
                    W[idx, -1] = b
                    sb = s.sigma(b)
                    a[idx[:-1]] = rng.uniform(0.5, 1.5, g.size - 1)
                    a[idx[-1]] = -(a[idx[:-1]] @ sb[:-1]) / sb[-1]
            elif g.kind == "C":
                if not degenerate:
                    W[idx] = _generic_weight(rng, s.dt, w0)
                    dev = _order_one(rng, g.size)
                    a[idx] = dev - dev.mean()
        return np.concatenate([a[:, None], W], axis=1).ravel()

    # ------------------------------------------------------------------ tangent space
    def tangent(self, theta) -> np.ndarray:
        """Orthonormal basis (p, dimension) of the branch's tangent space at θ (a point of
        the branch in this branch's neuron order), from its defining equations."""
        s = self.spec
        theta = np.asarray(theta, dtype=float)
        blk = s.dt + 1
        A = lambda i: i * blk  # noqa: E731 - index of a_i
        Wj = lambda i, j: i * blk + 1 + j  # noqa: E731 - index of (w_i)_j
        vecs = []

        def e(*pairs):
            v = np.zeros(s.n_params)
            for k, c in pairs:
                v[k] += c
            return v

        for g, idx in self._slices():
            if g.kind == "T":
                vecs += [e((A(i), 1.0), (A(idx[-1]), -1.0)) for i in idx[:-1]]
            elif g.kind == "S":
                vecs += [e((Wj(idx[0], j), 1.0)) for j in range(s.dt)]
            elif g.kind == "N":
                vecs += [e((A(i), 1.0)) for i in idx]
            elif g.kind == "C":
                vecs += [e(*[(Wj(i, j), 1.0) for i in idx]) for j in range(s.dt)]
                vecs += [e((A(i), 1.0), (A(idx[-1]), -1.0)) for i in idx[:-1]]
            elif g.kind == "K":
                # coordinates (a_i, b_i) of the group with F = Σ a_i σ(b_i) = 0: null space of ∇F
                coords = [A(i) for i in idx] + [Wj(i, s.dt - 1) for i in idx]
                b = theta[[Wj(i, s.dt - 1) for i in idx]]
                a = theta[[A(i) for i in idx]]
                grad = np.concatenate([s.sigma(b), a * _dsigma(s.activation, b)])
                _, _, vt = np.linalg.svd(grad[None, :])
                for v in vt[1:]:
                    vecs.append(e(*zip(coords, v)))
        if not vecs:
            return np.zeros((s.n_params, 0))
        q, _ = np.linalg.qr(np.array(vecs).T)
        return q

    def normal(self, theta) -> np.ndarray:
        """Orthonormal basis (p, codimension) of the complement of ``tangent(θ)``."""
        T = self.tangent(theta)
        u, _, _ = np.linalg.svd(np.eye(T.shape[0]) - T @ T.T)
        return u[:, : self.codimension]

    def to_dict(self) -> dict:
        return {"code": self.code, "paper_name": self.paper_name,
                "description": self.description, "dimension": self.dimension,
                "codimension": self.codimension, "tangent_rank": self.rank,
                "separation": self.separation, "rule": self.rule}


def _order_one(rng, size) -> np.ndarray:
    """Random numbers of modulus in [0.5, 1.5] and random sign."""
    return rng.uniform(0.5, 1.5, size) * rng.choice([-1, 1], size)


def _generic_weight(rng, dt, w0) -> np.ndarray:
    """A weight of order one with a non-zero input part, away from ±w_0 and from 0."""
    while True:
        w = rng.uniform(-1.5, 1.5, dt)
        if (np.linalg.norm(w[: max(dt - 1, 1)]) > 0.4
                and min(np.linalg.norm(w - w0), np.linalg.norm(w + w0)) > 0.5):
            return w


def _dsigma(activation, z) -> np.ndarray:
    d = jax.vmap(jax.grad(lambda t: activation(t)))
    return np.asarray(d(jnp.asarray(z, dtype=jnp.float64)), dtype=float)


# ---------------------------------------------------------------------- structure
def _spec(problem) -> _Spec:
    if not isinstance(problem, Problem):
        raise FlowtoolsError(
            f"thresholds are defined for the two-layer network with a single-neuron target "
            f"(flowtools.make_problem / flowtools.models.Problem), not {type(problem).__name__}.")
    target = problem.target
    if target is None:
        raise FlowtoolsError("this problem stores no target (its data were given as arrays): "
                             "build it with flowtools.make_problem(..., target=SingleNeuron(...)).")
    act = problem.activation
    if target.activation != act:
        raise FlowtoolsError(
            f"the target's activation ({target.activation.name}) differs from the network's "
            f"({act.name}): no parameter reproduces it, so Q* is empty. Use the same activation.")
    if act.sigma0 != 0 or act.dsigma0 == 0:
        raise FlowtoolsError(
            f"the thresholds assume σ(0) = 0 and σ'(0) ≠ 0 (the paper's); activation "
            f"{act.name} has σ(0) = {act.sigma0}, σ'(0) = {act.dsigma0}.")
    from flowtools.expressions import x as _x

    if act.expr.is_polynomial(_x):
        raise FlowtoolsError(
            f"activation {act.name} is a polynomial: its neurons span a finite-dimensional "
            "space of polynomials, so Q* is not the union of the branches counted here (the "
            "rule assumes the functions σ(wᵀx̃) are linearly independent). Use an analytic "
            "non-polynomial σ such as tanh, sin or x/(1+x**2).")
    if target.a0 == 0 or not any(target.w0):
        raise FlowtoolsError("the target must be a genuine neuron: a0 ≠ 0 and w0 ≠ 0.")
    if target.b0 and not problem.bias:
        raise FlowtoolsError("the target has a bias b0 but the network has none: Q* is empty.")
    w0 = tuple(target.w0) + ((target.b0 or 0.0,) if problem.bias else ())
    return _Spec(problem.width, problem.dim + bool(problem.bias), bool(problem.bias), act,
                 float(target.a0), w0)


def _partitions(n: int, smallest: int):
    """Multisets of integers ≥ ``smallest`` summing to n (non-increasing tuples)."""
    if n == 0:
        yield ()
        return
    for first in range(n, smallest - 1, -1):
        for rest in _partitions(n - first, smallest):
            if not rest or rest[0] <= first:
                yield (first, *rest)


def _group_counts(g: Group, dt: int, bias: bool) -> tuple[int, int, int]:
    """(dimension, kernel excess over the dimension, tangent functions) of one group;
    the bias-only groups' affine functions are counted by the caller (shared)."""
    k = g.size
    if g.kind == "T":
        return k - 1, (k - 1) * dt, dt + 1
    if g.kind == "S":
        return dt, 0, 1
    if g.kind == "C":
        return dt + k - 1, (k - 2) * dt, dt + 1
    if g.kind == "N":
        return k, (k - 1) * dt, 0
    if g.kind == "K":
        return 2 * k - 1, (k - 1) * (dt - 1), 0
    raise ValueError(g.kind)


def _make_branch(groups, spec: _Spec) -> Branch:
    dims = [_group_counts(g, spec.dt, spec.bias) for g in groups]
    dimension = sum(d for d, _, _ in dims)
    rank = sum(r for _, _, r in dims) + (spec.dt if any(g.kind in "NK" for g in groups) else 0)
    excess = [(g, x) for g, (_, x, _) in zip(groups, dims, strict=True) if x]
    if not excess:
        rule = "clean"
    elif [g for g, _ in excess] == [Group("T", 2)]:
        rule = "second order"
    else:
        rule = "conjectured"
    assert spec.n_params - rank - dimension == sum(x for _, x in excess)
    return Branch(tuple(groups), spec, dimension, rank, rule)


def problem_for(activation="tanh", width: int = 2, dim: int = 1, bias: bool = True,
                n: int | None = None, seed: int = 0) -> Problem:
    """A problem of the given architecture whose target is the paper's neuron under the same
    activation, a_0 = 1, w_0 = (1, …, 1), b_0 = 1 with a bias (``make_problem``'s default
    target is tanh whatever the network's activation). The thresholds do not depend on the
    data; ``n`` (default p + 1) uniform samples on [−2, 2]^d are drawn with ``seed``."""
    from flowtools.models import make_problem
    from flowtools.models.network import SingleNeuron, n_params

    target = SingleNeuron(activation, 1.0, np.ones(dim), 1.0 if bias else None)
    n = n_params(width, dim, bias) + 1 if n is None else n
    return make_problem(n, sampling="uniform", activation=target.activation, width=width,
                        dim=dim, bias=bias, target=target, seed=seed)


MAX_BRANCHES = 1000  # width 12 has 618 branches, width 20 has 8266


def target_branches(problem) -> list[Branch]:
    """The branches of Q* for ``problem`` (a two-layer ``Problem`` with its single-neuron
    target), up to the network's symmetries, in a fixed order (larger T groups first).
    Their number grows like the partitions of m; more than ``MAX_BRANCHES`` (beyond width
    about 13) raise ``FlowtoolsError``."""
    spec = _spec(problem)
    m, out = spec.width, []
    for k in range(m, 0, -1):
        rest = m - k
        for z in range(rest + 1):  # the bias-only group's size
            if z == 0:
                bias_only = ()
            elif spec.bias:
                bias_only = (Group("N"),) if z == 1 else (Group("K", z),)
            else:
                bias_only = (Group("N", z),)
            for s in range(rest - z + 1):
                for cs in _partitions(rest - z - s, 2):
                    groups = (Group("T", k), *[Group("S")] * s, *bias_only,
                              *[Group("C", c) for c in cs])
                    out.append(_make_branch(groups, spec))
                    if len(out) > MAX_BRANCHES:
                        raise FlowtoolsError(
                            f"width m = {m} has more than {MAX_BRANCHES} branches of Q* "
                            "(their number grows like the partitions of m): the table is "
                            "for small networks; use a width up to about 12.")
    return out


# ---------------------------------------------------------------------- thresholds
@dataclass(frozen=True, eq=False)
class Thresholds:
    """The sample-size thresholds of a problem's model (see the module docstring)."""

    branches: tuple[Branch, ...]
    optimistic: int
    n_params: int
    width: int
    dim: int
    bias: bool
    activation: str
    checks: dict | None = None
    unverified: tuple = ()  # branches whose tangent rank float64 cannot confirm

    @property
    def separation(self) -> int:
        """The smallest separation size over the branches."""
        return min(b.separation for b in self.branches)

    def branch(self, code: str) -> Branch:
        for b in self.branches:
            if code in (b.code, b.paper_name):
                return b
        raise FlowtoolsError(f"no branch {code!r}; the branches are "
                             f"{', '.join(b.code for b in self.branches)}.")

    def to_dict(self) -> dict:
        return {"activation": self.activation, "width": self.width, "dim": self.dim,
                "bias": self.bias, "n_params": self.n_params, "optimistic": self.optimistic,
                "separation": self.separation, "all_minima_in_target_from": self.n_params + 1,
                "branches": [b.to_dict() for b in self.branches],
                "checks": self.checks, "rank_not_verifiable_in_float64": list(self.unverified)}

    def table(self) -> str:
        """The branches and thresholds as aligned text (what ``flowtools thresholds`` prints)."""
        lines = [f"two-layer network: σ = {self.activation}, width m = {self.width}, d = "
                 f"{self.dim}, {'with' if self.bias else 'without'} bias, p = {self.n_params} "
                 "parameters", ""]
        head = f"{'branch':<12} {'paper':<6} {'dim':>4} {'rank':>5} {'sep. n':>7}  {'rule':<13}"
        if self.checks:
            head += f" {'dim (num.)':>10} {'rank (num.)':>11}"
        head += "  groups"
        lines += [head, "-" * len(head)]
        for b in self.branches:
            row = (f"{b.code:<12} {b.paper_name or '-':<6} {b.dimension:>4} {b.rank:>5} "
                   f"{b.separation:>7}  {b.rule:<13}")
            if self.checks:
                c = self.checks["branches"][b.code]
                dim = "undecided" if c["dimension"] is None else c["dimension"]
                row += f" {dim:>10} {c['tangent_rank']:>11}"
            lines.append(row + "  " + b.description)
        first = [b.code for b in self.branches if b.separation == self.separation]
        if len(first) > 6:
            first = first[:6] + [f"… {len(first) - 6} more"]
        lines += ["", f"optimistic sample size       n = {self.optimistic}"
                  + (f"   (numerical model rank: {self.checks['optimistic']})"
                     if self.checks else ""),
                  f"separation sample size       n = {self.separation}   (first branch to "
                  f"separate: {', '.join(first)})",
                  f"all global minima in Q*      n ≥ {self.n_params + 1} for almost every "
                  f"dataset (p + 1; at n = p = {self.n_params} isolated exceptions possible)"]
        if self.unverified:
            names = list(self.unverified[:6]) + (
                [f"… {len(self.unverified) - 6} more"] if len(self.unverified) > 6 else [])
            lines.append(f"tangent rank not verifiable in float64 (singular values between "
                         f"1e-15 and 1e-8 of the largest) for {len(self.unverified)} branches: "
                         + ", ".join(names))
        if self.checks:
            lines.append("numerical checks: " + (
                "agree with the structure" if self.checks["agree"] else
                "DISAGREE with the structure (see the columns above)"))
        return "\n".join(lines)


def thresholds(problem, *, check: bool = False, seed: int = 0) -> Thresholds:
    """Branches of Q* and the optimistic and separation sample sizes of ``problem``'s model
    (its data are not used). The tangent rank at a generic point of every branch is always
    checked numerically (``tangent_rank``): a singular value below ``ROUND_OFF`` of the
    largest where the structure expects an independent function means the activation
    breaks the independence assumption (``FlowtoolsError``); singular values between that
    and the rank tolerance (many neurons on a low-dimensional input: the functions are
    independent but ill-conditioned) are listed in ``unverified``. ``check=True`` also
    computes each branch's
    dimension from the zero set (``numerical_dimension``: None where undecided) and the
    model rank (``numerical_optimistic``) into ``Thresholds.checks``, with "agree": no
    definite disagreement."""
    spec = _spec(problem)
    branches = tuple(target_branches(problem))
    ranks, unverified = {}, []
    for b in branches:
        ranks[b.code], sv = tangent_rank(problem, b.point(seed))
        if ranks[b.code] != b.rank:
            # float64 cannot tell a family whose singular values decay geometrically (many
            # neurons of one input dimension: 1e-11…5e-15 measured at width 7) from a
            # dependent one; below 1e-15 of the largest it is round-off: a dependence
            ranks[b.code] = _rank(sv, ROUND_OFF)
            if ranks[b.code] >= b.rank:
                unverified.append(b.code)
    wrong = [f"{b.code}: {b.rank} vs {ranks[b.code]}" for b in branches
             if ranks[b.code] < b.rank or (ranks[b.code] > b.rank and b.code not in unverified)]
    if wrong:
        raise FlowtoolsError(
            f"the tangent rank at a generic point of a branch differs from the structure's "
            f"({'; '.join(wrong)}) for activation {spec.activation.name}: it breaks the "
            "assumption that σ(wᵀx̃) for distinct w, x̃σ'(wᵀx̃) and the affine functions are "
            "linearly independent, on which the branches and thresholds rest.")
    checks = None
    if check:
        checks = {"branches": {}, "optimistic": numerical_optimistic(problem, seed=seed)}
        for b in branches:
            dim, evidence = numerical_dimension(problem, b, seed=seed)
            checks["branches"][b.code] = {
                "dimension": dim, "tangent_rank": ranks[b.code],
                "agrees": dim == b.dimension if dim is not None else None,
                "slice_residuals": evidence["residuals"]}
        checks["agree"] = (checks["optimistic"] == spec.dt + 1 and all(
            c["agrees"] is not False for c in checks["branches"].values()))
    return Thresholds(branches, spec.dt + 1, spec.n_params, spec.width, problem.dim,
                      spec.bias, spec.activation.name, checks, tuple(unverified))


# ---------------------------------------------------------------------- numerics
@functools.lru_cache(maxsize=32)
def _jacobian(activation, width: int):
    """jit(θ, X̃ ↦ ∂f_θ(x̃_j)/∂θ_k), one program per activation and width."""
    return jax.jit(jax.jacfwd(lambda th, Xa: forward(activation, th, Xa, width)))


def _test_matrix(problem, X_test, n_test=400, seed=0) -> jnp.ndarray:
    from flowtools.branches import test_inputs

    X = test_inputs(problem, n_test, seed=seed) if X_test is None else np.asarray(X_test, float)
    X = X.reshape(-1, problem.dim)
    return jnp.asarray(augment(X, problem.bias))


ROUND_OFF = 1e-15  # a singular value below this fraction of the largest is round-off


def _rank(sv: np.ndarray, rtol: float) -> int:
    return int(np.sum(sv > rtol * sv[0])) if sv.size and sv[0] > 0 else 0


def tangent_rank(problem, theta, X_test=None, *, rtol: float = 1e-8) -> tuple[int, np.ndarray]:
    """Numerical rank of the tangent functions ∂f_θ/∂θ_k at θ: the singular values of the
    matrix [∂f_θ(x_j)/∂θ_k] on many test inputs (default 400, ``branches.test_inputs``)
    and how many exceed ``rtol`` times the largest. Returns (rank, singular values)."""
    J = np.asarray(_jacobian(problem.activation, problem.width)(
        jnp.asarray(theta, dtype=jnp.float64), _test_matrix(problem, X_test)))
    sv = np.linalg.svd(J, compute_uv=False)
    return _rank(sv, rtol), sv


@functools.lru_cache(maxsize=32)
def _predict(activation, width: int):
    return jax.jit(lambda th, Xa: forward(activation, th, Xa, width))


FEASIBLE, INFEASIBLE = 1e-10, 1e-7  # RMS residual on a slice: reached zero / kept away


def _slice_residual(problem, theta0, Xa, ystar, offset, V):
    """min over y of the RMS of f_θ − f* (test inputs) on the affine slice θ = θ0 + offset +
    V y, with y in the box |y_i| ≤ 6‖offset‖ (trust-region reflective least squares,
    scipy): a local solution only — Gauss–Newton from the slice's start can jump to a far
    part of Q* (a residual a·σ(wᵀx̃) is zeroed exactly by a = 0, however far)."""
    from scipy.optimize import least_squares

    jac, f = _jacobian(problem.activation, problem.width), _predict(problem.activation,
                                                                     problem.width)
    eps = 6 * float(np.linalg.norm(offset))
    base = theta0 + offset
    res = least_squares(
        lambda y: np.asarray(f(jnp.asarray(base + V @ y), Xa)) - ystar, np.zeros(V.shape[1]),
        jac=lambda y: np.asarray(jac(jnp.asarray(base + V @ y), Xa)) @ V,
        bounds=(-eps, eps), method="trf", xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=2000)
    return float(np.sqrt(np.mean(res.fun**2)))


def numerical_dimension(problem, branch: Branch, *, seed: int = 0, offset: float = 5e-2,
                        slices: int = 3) -> tuple[int | None, dict]:
    """The local dimension of Q* at a generic point θ_0 of ``branch``, computed from the
    zero set of f_θ − f* alone (the structure only picks θ_0), by linear slicing as in
    numerical algebraic geometry: a generic affine slice θ_0 + ε·c + span(V) of dimension
    p − j (V random orthonormal, c a random unit vector orthogonal to V, ε = ``offset``)
    meets a k-dimensional Q* near θ_0 iff p − j ≥ p − k, i.e. j ≤ k. So k is the largest j
    for which f_θ = f* can be solved on the slice (RMS residual < 1e-12 on 400 test inputs)
    near θ_0 on one of ``slices`` random slices (RMS residual < 1e-10 on 400 test inputs);
    for j > k it stays ≥ c·ε^q on every slice (q = 1, 2, 3 for the contact order of the
    branch: ≥ 1e-7 here). This holds on degenerate branches such as Q1, where the
    kernel of the tangent map is larger than the branch and projecting onto Q* converges
    slowly. Returns (dimension, evidence: the smallest residual per j and slice); the
    dimension is None if a residual falls between the two levels or slices disagree."""
    rng = np.random.default_rng(seed)
    theta0 = branch.point(rng)
    p = theta0.size
    Xa = _test_matrix(problem, None)
    ystar = np.asarray(_predict(problem.activation, problem.width)(jnp.asarray(theta0), Xa))
    residuals = {}
    for j in range(p):
        res = []
        for _ in range(slices):
            q, _ = np.linalg.qr(rng.standard_normal((p, p)))
            V, c = q[:, : p - j], q[:, -1] if j > 0 else None
            if c is None:  # the whole space (j = 0): offset in any direction
                c = rng.standard_normal(p)
                c /= np.linalg.norm(c)
            res.append(_slice_residual(problem, theta0, Xa, ystar, offset * c, V))
        residuals[j] = res
        if min(res) >= INFEASIBLE:
            break
    # a zero found on a slice within the box is a point of Q* near θ_0: one suffices (a
    # slice can be badly placed, never falsely feasible); "kept away" needs every slice
    verdicts = {j: (True if min(rs) < FEASIBLE else False if min(rs) >= INFEASIBLE else None)
                for j, rs in residuals.items()}
    feasible = [j for j, v in verdicts.items() if v]
    dim = max(feasible) if feasible else None
    if None in verdicts.values() or any(not verdicts[j] for j in range(dim or 0)):
        dim = None
    return dim, {"offset": offset, "residuals": residuals}


def numerical_optimistic(problem, *, seed: int = 0) -> int:
    """The model rank of the target computed numerically: the smallest ``tangent_rank``
    over points of every branch of Q*, generic and degenerate (``Branch.point``)."""
    ranks = [tangent_rank(problem, b.point(seed, degenerate=deg))[0]
             for b in target_branches(problem) for deg in (False, True)]
    return min(ranks)


def leading_order_separated(problem, branch: Branch, *, seed: int = 0, starts: int = 8
                            ) -> tuple[bool | None, float]:
    """The rule applied to ``problem``'s own samples: is the branch separated at leading
    order, i.e. does the tangent cone C_B of the module docstring meet the functions that
    vanish at the samples only at 0? Returns (verdict, evidence); None where the rule is
    "conjectured" or the evidence is in the gap between the two levels.

    - Clean branch: separated iff the tangent functions restricted to the samples keep
      their rank r (the n × p matrix J_s = [∂f_θ(x_i)/∂θ_j] at a generic θ_0 has rank r;
      evidence: its r-th singular value over the first, 0 if n < r).
    - Aligned pair (rule "second order"): separated iff rank J_s = r and no direction
      v ≠ 0 has E(v) = [(vᵀx̃_i)² σ''(w_0ᵀx̃_i)]_i in the range of J_s (the rank-one
      second-order terms absorbed by first-order ones at the samples). With P the projector
      off that range, g(v) = P·E(v) is a quadratic map ℝ^{d̃} → ℝ^{n−r}; the evidence is
      min over unit v of ‖g(v)‖²/max_jk‖P·G_jk‖², by local minimisation from the
      ``starts`` best of 4096 random v by least squares on the sphere (≤ 1e-20: a real
      root, reached to round-off, not separated; ≥ 1e-14: separated; measured on 20
      datasets each of Example 1 and Figure 9: roots ≤ 1e-32, minima ≥ 8.7e-11). At
      n = D − 1 and d̃ = 2 this is one binary quadratic form vᵀSv,
      S = Σ_i p_i σ''_i x̃_ix̃_iᵀ with p the samples' vector off range(J_s): separated iff
      S is definite.
    """
    from scipy.optimize import least_squares

    if branch.rule == "conjectured":
        return None, float("nan")
    spec = branch.spec
    theta0 = branch.point(seed)
    Xa = np.asarray(augment(problem.samples("the second-order separation test").X,
                            problem.bias))
    J = np.asarray(_jacobian(problem.activation, problem.width)(jnp.asarray(theta0),
                                                                jnp.asarray(Xa)))
    u, sv, _ = np.linalg.svd(J)
    rank = _rank(sv, 1e-9)
    first = float(sv[branch.rank - 1] / sv[0]) if sv.size >= branch.rank else 0.0
    if rank < branch.rank:
        return False, first
    if branch.rule == "clean":
        return True, first
    P = u[:, rank:]                                  # the samples' functions off range(J_s)
    if P.shape[1] == 0:
        return False, 0.0
    z = Xa @ np.asarray(spec.w0)
    d2 = np.asarray(jax.vmap(jax.grad(jax.grad(lambda t: spec.activation(t))))(jnp.asarray(z)))
    G = np.einsum("ij,ik,i,il->ljk", Xa, Xa, d2, P)  # (n − r, d̃, d̃): P·[x̃x̃ᵀσ'']
    scale = float(np.max(np.sum(G**2, axis=0)))

    def h(v):
        v = v / np.linalg.norm(v)
        return float(np.sum(np.einsum("ljk,j,k->l", G, v, v) ** 2)) / scale

    def residual(v):  # g(v) on the unit sphere, as least squares (quadratic convergence)
        return np.r_[np.einsum("ljk,j,k->l", G, v, v) / np.sqrt(scale), v @ v - 1]

    def jacobian(v):
        return np.r_[2 * np.einsum("ljk,k->lj", G, v) / np.sqrt(scale), 2 * v[None, :]]

    rng = np.random.default_rng(seed)
    V = rng.standard_normal((4096, spec.dt))       # coarse: many directions at once
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    coarse = np.sum(np.einsum("ljk,sj,sk->sl", G, V, V) ** 2, axis=1) / scale
    best = min(h(least_squares(residual, V[i], jac=jacobian, method="trf", xtol=1e-15,
                               ftol=1e-15, gtol=1e-15).x)
               for i in np.argsort(coarse)[:starts])  # refined from the best few
    verdict = False if best <= 1e-20 else True if best >= 1e-14 else None
    return verdict, best


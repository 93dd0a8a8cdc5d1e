"""A numerical test of separation (the paper's Definition 1) that does not use any rule.

Definition 1 (Zhao, Bai, Zhang, §3.2, after Zhang et al. 2023b): a branch Q^k of the target
set Q* is *separated* if some open neighbourhood M of Q^k has M ∩ ℓ⁻¹(0) = Q^k ∩ ℓ⁻¹(0):
near Q^k every global minimum of the training loss ℓ(θ) = ½ Σ_i (f_θ(x_i) − y_i)² is a
point of Q^k. Read literally this fails almost everywhere (the closure of Q² meets Q¹, and
Appendix B, Figure 10, notes that Q² separates only almost everywhere, its "origin" — the
silenced neuron's w = 0 — being an exception), so it is tested here *at points* θ0 of a
branch, generic ones by default, and only zero-loss points outside Q* count against it.

**The test at a point** (``separation_test``). With T (p × D) and N (p × (p − D)) orthonormal
bases of the branch's tangent and normal spaces at θ0, minimise ℓ over the "tube sphere"

    θ(y, z) = θ0 + T·y + r·N·z/‖z‖,      ‖y‖_∞ ≤ ρ = slide·r,

from many random starts per radius r (Levenberg–Marquardt on the residuals in float64,
with ``jax.jacfwd``; y = ρ·tanh(η) keeps the base on a piece of the branch of size O(r)
around θ0, so it can slide to where a spurious zero sits but not to another, exceptional
point of the branch). For an affine branch (every branch of the two-layer problem with a
single-neuron target is a product of affine pieces) each such θ lies at distance exactly r
from the branch. Two outcomes are clear:

* **not separated**: at *every* radius some start reaches a zero of ℓ — loss at round-off
  level — whose generalization error (``flowtools.branches.generalization_error`` on 1000
  test inputs) is clearly non-zero, so it lies outside Q*. Zeros outside Q* at distance
  3e-2, 1e-2, 3e-3 from θ0 are zeros accumulating at the branch.
* **separated**: on every sphere the smallest loss reached is bounded away from round-off,
  and every zero reached lies in Q* (zeros of other branches of Q* that pass near θ0, as
  T1+N does at the origin of Q2, do not count against it). Zeros outside Q* on the larger
  spheres only, with at least the two smallest clean, still give "separated": they sit at
  an exceptional point of the branch within that distance of θ0 (the reason says so).
  The evidence is the scaling of the minimum with r: near a *clean* branch (the tangent
  functions ∂f_θ/∂θ_j restricted to the data have rank = codimension) ℓ ≥ c·r²; at the
  aligned pair T2 (the paper's Q1), whose normal space holds a kernel of the
  linearisation, the zero set is cut out at second order and the minimum scales like r⁴.
  The exponent of a power fit of min ℓ against r is reported with the verdict.

Anything else — zeros at some radii only, a minimum in the gap between the two thresholds
below, a zero whose generalization error is neither ≈ 0 nor clearly positive, points of
one branch that disagree — is **undecided**, with the evidence.

At T2 one sample below its separation size the second order decides: with ℓ_k a basis of
the data vectors orthogonal to the tangent functions at Q1, the zeros near Q1 follow the
common real zeros v of the quadratic forms vᵀA_k v, A_k = Σ_i ℓ_ki σ''(w0ᵀx̃_i) x̃_i x̃_iᵀ.
In Example 1 (n = 4: one form on ℝ²) it was indefinite for all of 200 uniform datasets (not
separated); in the d = 3 case (n = 8: three forms on ℝ⁴) 1 dataset in 100 had no common
real zero, and this test finds that dataset separated (``tests/test_separation.py``).

**What the radii can see.** A verdict is about the spheres of the radii given. Nearly
coincident inputs make the data nearly degenerate: the Jacobian's smallest singular value
on the normal space (or the second-order forms at Q1) becomes small, the neighbourhood in
which the branch is separated shrinks below the radii, and zeros outside Q* appear on the
spheres of a branch that is separated for those data in exact arithmetic (or a minimum
falls between the thresholds). Such cases come out "not separated" at one point and
"separated" at another, hence "undecided" for the branch, or "undecided" outright; smaller
radii do not help at Q1, whose r⁴ minimum then reaches round-off.

**The thresholds and their gap.** With s = 1 + Σ_i y_i² (the data's scale), a loss is a
zero if ℓ ≤ ``ZERO_LOSS``·s = 1e-28·s and clearly non-zero if ℓ ≥ ``NONZERO_LOSS``·s =
1e-26·s; in between a minimum is undecided. Round-off in f_θ(x_i) − y_i is a few ulps of
O(1) terms, and Levenberg–Marquardt runs on to that floor, where it stalls: of 8603 zeros
reached on the spheres (Example 1 at n = 3–6 and the d = 3 case at n = 8, 9, every branch,
10 and 5 datasets) the largest had ℓ = 1.8e-32·s, 3.7 decades below the zero threshold.
The smallest non-zero minimum met is c·r⁴ at r = 3e-3 on Q1 at its separation size, where
c varies over many decades with the data (nearly coincident inputs make it small):
1.6e-21·s in Example 1, 1.3e-24·s in the d = 3 case (10 datasets each), two decades above
the non-zero threshold. A generalization error (RMS on the test inputs) is zero if ≤
``GEN_ZERO`` = 1e-11 and clearly non-zero if ≥ ``GEN_NONZERO`` = 1e-9: the spurious zeros
on the spheres measured ≥ 5.3e-8 (≈ c·r, or c·r² along the kernel directions at Q1, at
r = 3e-3); points of Q* reached by the zero-loss search have 1e-15…1e-12, except near Q1
when c is small: ℓ is quartic in the distance there, so a point with ℓ ≈ 1e-27 can still
lie 1e-5 from Q1, with an error of 1e-11…4e-11 (measured: Example 1, n = 5, one dataset in
ten). Such a point is not a zero by the loss threshold; one that were would be counted
as ambiguous, neither in nor outside Q*, and make the verdict undecided.

**The zero-loss search** (``zero_loss_search``) runs the same minimisation over all of
parameter space from Gaussian starts of scale 1–2, to test the claim "Q* = ℓ⁻¹(0)" (the
paper's Table 1: at n = 6 for Example 1): it counts the zeros found and how many lie
outside Q*. A count of zero is evidence, not proof: zeros that no start reaches are missed.

``separation_scan`` runs the test over sample sizes × datasets × branches of a problem
family (one compiled program per network structure: the data are padded with masked rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from flowtools import _validate as V
from flowtools._compile import compiled
from flowtools._io import to_strict_json
from flowtools.branches import generalization_error
from flowtools.data import augment
from flowtools.errors import FlowtoolsError
from flowtools.models import Problem, network

__all__ = ["GEN_NONZERO", "GEN_ZERO", "NONZERO_LOSS", "VERDICTS", "ZERO_LOSS", "PointEvidence",
           "RadiusEvidence", "SeparationResult", "SpuriousZero", "ZeroLossSearch",
           "separation_scan", "separation_test", "zero_loss_search"]

#: ℓ ≤ ZERO_LOSS·(1 + Σy²) is a zero of the training loss (zeros reached: ≤ 2e-32·s)
ZERO_LOSS = 1e-28
#: ℓ ≥ NONZERO_LOSS·(1 + Σy²) is bounded away from zero (smallest r⁴ minimum: 1.3e-24·s)
NONZERO_LOSS = 1e-26
#: RMS generalization error ≤ GEN_ZERO: the point computes f* (lies in Q*)
GEN_ZERO = 1e-11
#: RMS generalization error ≥ GEN_NONZERO: the point lies outside Q*
GEN_NONZERO = 1e-9

SEPARATED, NOT_SEPARATED, UNDECIDED = "separated", "not separated", "undecided"
VERDICTS = (SEPARATED, NOT_SEPARATED, UNDECIDED)

#: Levenberg–Marquardt runs on below the zero threshold to ℓ ≤ _FLOOR·ZERO_LOSS·s, in
#: practice to the round-off floor where it stalls: near Q1, where ℓ is quartic in the
#: distance, a point at ℓ ≈ 1e-30 can still lie 1e-5 from Q* (generalization error ≈ 1e-10)
_FLOOR = 1e-6
#: Levenberg–Marquardt stops after this many rejected steps in a row (λ grew 4^30 ≈ 1e18)
_MAX_REJECTS = 30


# ---------------------------------------------------------------------- the minimiser
def _lm(res, renorm, u0, max_iter, floor):
    """Levenberg–Marquardt on the residual map ``res`` from ``u0``: the step solves
    min ‖r + Jδ‖² + λ‖δ‖² through the SVD of J (stable for the rank-deficient, under-
    determined systems met here), is kept if ℓ decreases (λ ← λ/3) and refused otherwise
    (λ ← 4λ). Stops at ℓ ≤ ``floor``, after ``max_iter`` iterations or after
    ``_MAX_REJECTS`` refusals in a row (a local minimum or the round-off floor).

    Returns (u, ℓ, iterations, ℓ at 90 % of ``max_iter``): a start stopped by the limit
    is still descending if it lost more than half its loss over the last tenth."""
    jac = jax.jacfwd(res)

    def loss(r):
        return 0.5 * jnp.dot(r, r)

    r0 = res(u0)
    s0 = jnp.linalg.svd(jac(u0), compute_uv=False)
    lam0 = 1e-3 * (s0[0] ** 2) + 1e-300

    mark = max_iter - max_iter // 10

    def cond(state):
        _, L, _, k, rejects, _ = state
        return (k < max_iter) & (L > floor) & (rejects < _MAX_REJECTS)

    def body(state):
        u, L, lam, k, rejects, L_mark = state
        L_mark = jnp.where(k == mark, L, L_mark)
        r, J = res(u), jac(u)
        U, s, Vt = jnp.linalg.svd(J, full_matrices=False)
        step = -Vt.T @ ((s / (s * s + lam)) * (U.T @ r))
        un = renorm(u + step)
        Ln = loss(res(un))
        ok = jnp.isfinite(Ln) & (Ln < L)
        return (jnp.where(ok, un, u), jnp.where(ok, Ln, L),
                jnp.where(ok, jnp.maximum(lam / 3, 1e-30 * s[0] ** 2), lam * 4),
                k + 1, jnp.where(ok, 0, rejects + 1), L_mark)

    state = (u0, loss(r0), lam0, jnp.int64(0), jnp.int64(0), jnp.float64(jnp.inf))
    u, L, _, k, _, L_mark = jax.lax.while_loop(cond, body, state)
    return u, L, k, L_mark


def _residual_fn(activation, width, Xa, y, mask):
    def res_theta(theta):
        return mask * (network.forward(activation, theta, Xa, width) - y)
    return res_theta


@eqx.filter_jit
def _sphere_lm(activation, width, Xa, y, mask, theta0, basis, tmask, radius, rho, u0,
               max_iter, floor):
    """LM on the tube sphere θ = θ0 + B·v, v = ρ·tanh(u) on the tangent coordinates
    (``tmask``), r·u/‖u‖ on the normal ones; vmapped over the starts u0 (S, p)."""
    res_theta = _residual_fn(activation, width, Xa, y, mask)

    def normal_part(u):
        return jnp.where(tmask, 0.0, u)

    def theta_of(u):
        z = normal_part(u)
        v = jnp.where(tmask, rho * jnp.tanh(u), radius * z / jnp.linalg.norm(z))
        return theta0 + basis @ v

    def renorm(u):
        return jnp.where(tmask, u, u / jnp.linalg.norm(normal_part(u)))

    def one(u):
        u, L, k, L_mark = _lm(lambda v: res_theta(theta_of(v)), renorm, u, max_iter, floor)
        return theta_of(u), L, _descending(L, k, L_mark, max_iter, floor), \
            jnp.where(tmask, rho * jnp.tanh(u), 0.0)

    return jax.vmap(one)(u0)


@eqx.filter_jit
def _free_lm(activation, width, Xa, y, mask, u0, max_iter, floor):
    """LM on θ itself, vmapped over the starts u0 (S, p)."""
    res_theta = _residual_fn(activation, width, Xa, y, mask)

    def one(u):
        u, L, k, L_mark = _lm(res_theta, lambda v: v, u, max_iter, floor)
        return u, L, _descending(L, k, L_mark, max_iter, floor)

    return jax.vmap(one)(u0)


def _descending(L, k, L_mark, max_iter, floor):
    """Stopped by the iteration limit above ``floor`` while still descending (ℓ fell by
    more than half over the last tenth of the iterations)."""
    return (k >= max_iter) & (L > floor) & (L < 0.5 * L_mark)


def _rows(n: int, pad_to: int | None) -> int:
    """Rows of the padded data: ``pad_to`` if given (≥ n), else n rounded up to a
    multiple of 8, so that nearby sample sizes share one compiled program."""
    if pad_to is None:
        return max(8, -(-n // 8) * 8)
    pad_to = V.positive_int(pad_to, "pad_to")
    if pad_to < n:
        raise FlowtoolsError(f"pad_to = {pad_to} is below the sample size n = {n}: pad to "
                             "at least n rows.")
    return pad_to


def _padded_data(problem: Problem, rows: int):
    """(X̃, y, mask) with ``rows`` rows: the data, then masked zero rows (they add nothing
    to the residual whatever σ(0) is)."""
    data = problem.samples("the separation scan")  # the real rows of a padded problem
    Xa, y = augment(data.X, problem.bias), data.y
    n = Xa.shape[0]
    X = np.zeros((rows, Xa.shape[1]))
    Y, M = np.zeros(rows), np.zeros(rows)
    X[:n], Y[:n], M[:n] = Xa, y, 1.0
    return jnp.asarray(X), jnp.asarray(Y), jnp.asarray(M)


def _scale(problem: Problem) -> float:
    """s = 1 + Σ y_i²: the loss thresholds are relative to the data's scale."""
    return 1.0 + float(np.sum(problem.samples("the separation scan").y ** 2))


def _check_problem(problem) -> Problem:
    if not isinstance(problem, Problem):
        raise FlowtoolsError(
            f"the separation test is defined for the two-layer network with a single-neuron "
            f"target (flowtools.models.Problem), not for {type(problem).__name__}.")
    if problem.target is None:
        raise FlowtoolsError(
            "this problem stores no target (its data were given as arrays): the test needs "
            "f* to tell zeros in Q* from zeros outside it; build it with make_problem.")
    return problem


def _radii(radii) -> np.ndarray:
    r = V.real_array(radii, "radii", ndim=(1,))
    if r.size < 2 or np.any(~np.isfinite(r)) or np.any(r <= 0) or np.any(r >= 1):
        raise FlowtoolsError(
            f"radii must be at least two distances in (0, 1) (the test looks for zeros "
            f"accumulating at the branch and fits how min ℓ scales with r), got "
            f"{np.asarray(radii).tolist()}.")
    return np.sort(r)[::-1]


# ---------------------------------------------------------------------- result types
@dataclass(frozen=True, eq=False)
class SpuriousZero:
    """A zero of the training loss outside Q* near θ0.

    Attributes:
        theta: (p,) the point.
        loss: its training loss ℓ = ½Σ residual².
        gen_error: its RMS generalization error (clearly non-zero: outside Q*).
        radius: its distance from the branch (the sphere's radius r).
        slide: ‖y‖, how far the base point θ0 + T·y slid along the branch from θ0.
        distance: ‖θ − θ0‖ = (r² + slide²)^{1/2}.
    """

    theta: np.ndarray
    loss: float
    gen_error: float
    radius: float
    slide: float
    distance: float

    def to_dict(self) -> dict:
        return to_strict_json(dict(self.__dict__))


@dataclass(frozen=True, eq=False)
class RadiusEvidence:
    """What the starts on the sphere of one radius reached.

    Attributes:
        radius: r.
        starts: number of starts.
        min_loss: the smallest loss reached by a start that did not end in Q* (inf if all
            did): an upper bound of min ℓ on the sphere outside Q*.
        n_zero: starts that reached a zero (ℓ ≤ ZERO_LOSS·s).
        n_spurious: of those, with generalization error ≥ ``gen_nonzero`` (outside Q*).
        n_in_target: of those, with generalization error ≤ ``gen_zero`` (in Q*).
        n_capped: starts stopped by the iteration limit while ℓ was still decreasing
            (it fell by more than half over the last tenth of the iterations): their loss
            is an upper bound of where they were going.
        min_capped: whether the start attaining ``min_loss`` was one of them (then the
            minimum is not certified: the verdict stays undecided).
        best: the spurious zero of smallest loss, or None.
    """

    radius: float
    starts: int
    min_loss: float
    n_zero: int
    n_spurious: int
    n_in_target: int
    n_capped: int
    min_capped: bool
    best: SpuriousZero | None

    @property
    def n_ambiguous(self) -> int:
        """Zeros whose generalization error is neither ≈ 0 nor clearly positive."""
        return self.n_zero - self.n_spurious - self.n_in_target

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["best"] = None if self.best is None else self.best.to_dict()
        d["n_ambiguous"] = self.n_ambiguous
        return to_strict_json(d)


@dataclass(frozen=True, eq=False)
class PointEvidence:
    """The verdict at one point θ0 of the branch, with its evidence per radius.

    Attributes:
        theta0: (p,) the point tested.
        verdict: "separated", "not separated" or "undecided".
        reason: one sentence saying why.
        radii: the per-radius evidence, largest radius first.
        exponent: k of the power fit min ℓ ≈ c·r^k over the radii (None unless every
            minimum is finite and positive): ≈ 2 at a clean branch, ≈ 4 at Q1.
    """

    theta0: np.ndarray
    verdict: str
    reason: str
    radii: tuple[RadiusEvidence, ...]
    exponent: float | None

    @property
    def min_loss(self) -> np.ndarray:
        return np.array([e.min_loss for e in self.radii])

    @property
    def best(self) -> SpuriousZero | None:
        """The spurious zero found nearest to the branch (smallest radius), or None."""
        for e in reversed(self.radii):
            if e.best is not None:
                return e.best
        return None

    def to_dict(self) -> dict:
        return to_strict_json(dict(theta0=self.theta0, verdict=self.verdict,
                                   reason=self.reason, exponent=self.exponent,
                                   radii=[e.to_dict() for e in self.radii]))


@dataclass(frozen=True, eq=False)
class SeparationResult:
    """Separation of one branch for one dataset, tested at one or more points.

    Attributes:
        branch: the branch's code ("T2", "T1+S", …; "" for a branch object without one).
        paper_name: "Q1" / "Q2" / None.
        n: the sample size.
        verdict: the points' common verdict; "undecided" if they disagree.
        reason: why (the points' common reason, or how they disagree).
        points: the evidence per point.
        predicted: the branch's separation size from the rule, if it states one (None
            otherwise); the test does not use it.
        settings: the thresholds and search settings used.
    """

    branch: str
    paper_name: str | None
    n: int
    verdict: str
    reason: str
    points: tuple[PointEvidence, ...]
    predicted: int | None
    settings: dict

    @property
    def exponents(self) -> list[float | None]:
        return [pt.exponent for pt in self.points]

    def summary(self) -> str:
        name = f"{self.branch}" + (f" ({self.paper_name})" if self.paper_name else "")
        ex = ", ".join("–" if e is None else f"{e:.2f}" for e in self.exponents)
        pred = "" if self.predicted is None else f" (rule: separated from n = {self.predicted})"
        lines = [f"{name} at n = {self.n}: {self.verdict}{pred}; min ℓ ∝ r^k, k = {ex}"]
        if len(self.points) > 1 and self.verdict == UNDECIDED:
            lines[0] += f" ({self.reason})"
        for pt in self.points:
            ml = ", ".join(f"{v:.2e}" for v in pt.min_loss)
            lines.append(f"  θ0 = {np.array2string(pt.theta0, precision=3)}: {pt.verdict} — "
                         f"{pt.reason}; min ℓ per r: {ml}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return to_strict_json(dict(branch=self.branch, paper_name=self.paper_name, n=self.n,
                                   verdict=self.verdict, reason=self.reason,
                                   predicted=self.predicted,
                                   settings=self.settings,
                                   points=[pt.to_dict() for pt in self.points]))


# ---------------------------------------------------------------------- the test
def _branch_bases(branch, theta0: np.ndarray, p: int):
    """[T N] at θ0 and the mask of the tangent columns, checked orthonormal."""
    try:
        T = np.asarray(branch.tangent(theta0), dtype=float).reshape(p, -1)
        N = np.asarray(branch.normal(theta0), dtype=float).reshape(p, -1)
    except (AttributeError, TypeError, ValueError) as err:
        raise FlowtoolsError(
            f"branch must give tangent(θ) (p × D) and normal(θ) (p × (p − D)) bases at a "
            f"point θ of length p = {p} (a flowtools.thresholds.Branch): {err}") from None
    B = np.hstack([T, N])
    if B.shape != (p, p) or not np.allclose(B.T @ B, np.eye(p), atol=1e-8):
        raise FlowtoolsError(
            f"the branch's tangent ({T.shape}) and normal ({N.shape}) bases must together "
            f"be an orthonormal basis of ℝ^{p}.")
    if N.shape[1] == 0:
        raise FlowtoolsError("the branch has no normal directions (dimension p): every "
                             "point near it is on it, there is nothing to test.")
    return B, np.arange(p) < T.shape[1]


def _points(problem, branch, theta0, points: int, rng) -> np.ndarray:
    p = problem.n_params
    if theta0 is None:
        try:
            pts = [np.asarray(branch.point(rng), dtype=float) for _ in range(points)]
        except AttributeError:
            raise FlowtoolsError("branch must give generic points (branch.point(rng)), e.g. "
                                 "a flowtools.thresholds.Branch.") from None
        pts = np.stack(pts)
    else:
        pts = np.atleast_2d(V.real_array(theta0, "theta0", ndim=(1, 2)))
    if pts.shape[-1] != p:
        raise FlowtoolsError(f"θ0 must have the problem's p = {p} parameters "
                             f"({problem.layout}), got {pts.shape[-1]}.")
    gen = np.atleast_1d(generalization_error(problem, pts))
    if np.any(gen > GEN_ZERO):
        raise FlowtoolsError(
            f"θ0 must lie in the target set Q* (f_θ0 = f*): its generalization error is "
            f"{float(gen.max()):.3g} > {GEN_ZERO:g}. Give a point of the branch.")
    return pts


def _verdict(evidence: list[RadiusEvidence], nonzero: float) -> tuple[str, str]:
    """Not separated if zeros outside Q* were found at every radius; separated if on the
    smallest radii (at least two, down to the smallest) the minimum stays ≥ ``nonzero``
    and every zero is in Q* — zeros outside Q* on larger spheres only are then reported as
    an exceptional point of the branch within that distance of θ0; undecided otherwise."""
    spurious = [e.n_spurious > 0 for e in evidence]
    if all(spurious):
        return NOT_SEPARATED, ("zeros outside Q* at every radius "
                               f"(r = {evidence[-1].radius:g} the nearest)")
    clean = [e.n_spurious == 0 and e.n_ambiguous == 0 and e.min_loss >= nonzero
             and not e.min_capped for e in evidence]
    tail = next((i for i, c in enumerate(reversed(clean)) if not c), len(clean))  # clean ones
    if tail >= 2 and all(s or c for s, c in zip(spurious, clean)):
        in_target = sum(e.n_in_target for e in evidence)
        also = (f"; {in_target} starts reached zeros in Q* (another branch of Q* passes "
                "within r of θ0)") if in_target else ""
        if tail == len(clean):
            return SEPARATED, "min ℓ on every sphere bounded away from zero" + also
        far = evidence[len(clean) - tail - 1].radius
        return SEPARATED, (f"min ℓ bounded away from zero for r ≤ {evidence[-tail].radius:g}; "
                           f"zeros outside Q* at r = {far:g}: an exceptional point of the "
                           "branch lies that near θ0" + also)
    if any(spurious):
        return UNDECIDED, "zeros outside Q* at some radii, not down to the smallest"
    if any(e.n_ambiguous for e in evidence):
        return UNDECIDED, "zeros whose generalization error is neither ≈ 0 nor clearly > 0"
    if any(e.min_capped for e in evidence):
        return UNDECIDED, "the smallest loss was still decreasing at the iteration limit"
    low = min(e.min_loss for e in evidence)
    return UNDECIDED, (f"min ℓ = {low:.2e} lies between the zero and the non-zero "
                       "thresholds")


def _fit_exponent(radii: np.ndarray, mins: np.ndarray, zero: float) -> float | None:
    """k of the least-squares fit log min ℓ = log c + k·log r over the radii whose minimum
    is not a zero (None if fewer than two)."""
    ok = np.isfinite(mins) & (mins > zero)
    if ok.sum() < 2:
        return None
    return float(np.polyfit(np.log(radii[ok]), np.log(mins[ok]), 1)[0])


def separation_test(problem: Problem, branch, *, seed: int = 0,
                    radii=(3e-2, 1e-2, 3e-3), starts: int = 24, points: int = 2,
                    theta0=None, slide: float = 0.5, max_iter: int = 1000,
                    pad_to: int | None = None) -> SeparationResult:
    """Whether ``branch`` of Q* is separated for the problem's data (Definition 1), tested
    at generic points of the branch by searching for zero-loss points outside Q* on small
    spheres around it (module docstring).

    Args:
        problem: a ``Problem`` with a single-neuron target (``make_problem``).
        branch: a branch of Q* with ``point(rng)``, ``tangent(θ)`` and ``normal(θ)``
            (``flowtools.thresholds.target_branches``); its ``code``, ``paper_name`` and
            ``separation`` are only reported.
        seed: seeds the generic points and the starts.
        radii: the spheres' radii r (distances from the branch), at least two in (0, 1).
        starts: random starts per radius and point.
        points: how many generic points of the branch to test (ignored with ``theta0``).
        theta0: test these points (p,) or (k, p) of the branch instead, e.g. an
            exceptional one such as the origin of Q2 (the silenced neuron's w = 0).
        slide: the base point may slide along the branch by ρ = slide·r per coordinate.
        max_iter: Levenberg–Marquardt iterations per start.
        pad_to: pad the data to this many (masked) rows, so that problems with up to so
            many samples share one compiled program (default: n rounded up to 8).

    Returns:
        A ``SeparationResult``; ``.summary()`` prints it, ``.to_dict()`` is strict JSON.
    """
    problem = _check_problem(problem)
    seed = V.nonnegative_int(seed, "seed")
    radii = _radii(radii)
    starts = V.positive_int(starts, "starts")
    points = V.positive_int(points, "points")
    slide = V.positive_float(slide, "slide")
    max_iter = V.positive_int(max_iter, "max_iter")
    rows = _rows(problem.n, pad_to)
    rng = np.random.default_rng(seed)
    pts = _points(problem, branch, theta0, points, rng)
    p, s = problem.n_params, _scale(problem)
    Xa, y, mask = _padded_data(problem, rows)
    zero, nonzero = ZERO_LOSS * s, NONZERO_LOSS * s
    floor = jnp.float64(_FLOOR * zero)
    evidence = []
    for th0 in pts:
        B, tmask = _branch_bases(branch, th0, p)
        per_radius = []
        for r in radii:
            u0 = rng.normal(size=(starts, p))
            u0[:, tmask] *= 0.5  # bases start within ~ρ/2 of θ0
            args = (problem.activation, problem.width, Xa, y, mask, jnp.asarray(th0),
                    jnp.asarray(B), jnp.asarray(tmask), jnp.float64(r),
                    jnp.float64(slide * r), jnp.asarray(u0), jnp.int64(max_iter), floor)
            exe, _ = compiled(_sphere_lm, *args)
            thetas, L, capped, ys = map(np.asarray, exe(*args))
            per_radius.append(_radius_evidence(problem, float(r), th0, thetas, L, ys, zero,
                                               capped))
        verdict, reason = _verdict(per_radius, nonzero)
        mins = np.array([e.min_loss for e in per_radius])
        evidence.append(PointEvidence(theta0=th0, verdict=verdict, reason=reason,
                                      radii=tuple(per_radius),
                                      exponent=_fit_exponent(radii, mins, zero)))
    verdicts = [e.verdict for e in evidence]
    if len(set(verdicts)) == 1:
        verdict, reason = verdicts[0], evidence[0].reason
    else:
        verdict = UNDECIDED
        reason = "the points disagree: " + ", ".join(
            f"{verdicts.count(v)} {v}" for v in VERDICTS if v in verdicts)
    settings = dict(radii=radii, starts=starts, seed=seed, slide=slide, max_iter=max_iter,
                    zero_loss=zero, nonzero_loss=nonzero, gen_zero=GEN_ZERO,
                    gen_nonzero=GEN_NONZERO, theta0_given=theta0 is not None)
    return SeparationResult(branch=str(getattr(branch, "code", "")),
                            paper_name=getattr(branch, "paper_name", None), n=problem.n,
                            verdict=verdict, reason=reason, points=tuple(evidence),
                            predicted=getattr(branch, "separation", None),
                            settings=to_strict_json(settings))


def _radius_evidence(problem, r, th0, thetas, L, ys, zero, capped) -> RadiusEvidence:
    gen = np.atleast_1d(generalization_error(problem, thetas))
    is_zero = L <= zero
    spurious = is_zero & (gen >= GEN_NONZERO)
    in_target = is_zero & (gen <= GEN_ZERO)
    rest = ~in_target
    best = None
    if spurious.any():
        i = int(np.flatnonzero(spurious)[np.argmin(L[spurious])])
        sl = float(np.linalg.norm(ys[i]))
        best = SpuriousZero(theta=thetas[i], loss=float(L[i]), gen_error=float(gen[i]),
                            radius=r, slide=sl, distance=float(np.linalg.norm(thetas[i] - th0)))
    i_min = int(np.flatnonzero(rest)[np.argmin(L[rest])]) if rest.any() else None
    return RadiusEvidence(radius=r, starts=len(L),
                          min_loss=float("inf") if i_min is None else float(L[i_min]),
                          n_zero=int(is_zero.sum()), n_spurious=int(spurious.sum()),
                          n_in_target=int(in_target.sum()), n_capped=int(capped.sum()),
                          min_capped=bool(i_min is not None and capped[i_min]), best=best)


# ---------------------------------------------------------------------- zero-loss search
#: two zeros compute the same function if their outputs on the test inputs differ by at
#: most this RMS (spurious zeros of one curve of zeros differ by far more)
SAME_FUNCTION = 1e-6


@dataclass(frozen=True, eq=False)
class ZeroLossSearch:
    """The zeros of ℓ that a multi-start minimisation over all of parameter space reached.

    Attributes:
        n: the sample size.
        starts, scale, seed: the starts, θ_start ~ N(0, scale²·I) (seeded).
        thetas: (S, p) where each start ended.
        losses: (S,) their training losses.
        gen_errors: (S,) their RMS generalization errors.
        n_zero: starts that reached a zero (ℓ ≤ ZERO_LOSS·(1 + Σy²)).
        n_in_target: zeros in Q* (generalization error ≤ GEN_ZERO).
        n_outside: zeros outside Q* (generalization error ≥ GEN_NONZERO).
        n_distinct_outside: distinct functions among the zeros outside Q* (outputs on the
            test inputs further apart than SAME_FUNCTION in RMS).
        n_capped: starts stopped by the iteration limit while still descending (near
            Q1, where ℓ is quartic, Levenberg–Marquardt converges slowly).
        settings: thresholds and settings.
    """

    n: int
    starts: int
    scale: float
    seed: int
    thetas: np.ndarray
    losses: np.ndarray
    gen_errors: np.ndarray
    n_zero: int
    n_in_target: int
    n_outside: int
    n_distinct_outside: int
    n_capped: int
    settings: dict

    @property
    def n_ambiguous(self) -> int:
        return self.n_zero - self.n_in_target - self.n_outside

    @property
    def outside(self) -> np.ndarray:
        """Indices of the starts that ended at a zero outside Q*."""
        zero = self.losses <= self.settings["zero_loss"]
        return np.flatnonzero(zero & (self.gen_errors >= GEN_NONZERO))

    @property
    def verdict(self) -> str:
        """"none outside Q*" (evidence for Q* = ℓ⁻¹(0): no start reached a zero outside it),
        "zeros outside Q*", or "undecided" (a zero neither clearly in nor outside Q*)."""
        if self.n_outside:
            return "zeros outside Q*"
        return "undecided" if self.n_ambiguous else "none outside Q*"

    def summary(self) -> str:
        return (f"n = {self.n}: {self.starts} starts (scale {self.scale:g}) → {self.n_zero} "
                f"zeros: {self.n_in_target} in Q*, {self.n_outside} outside "
                f"({self.n_distinct_outside} distinct functions), {self.n_ambiguous} "
                f"ambiguous; {self.n_capped} stopped by the iteration limit — {self.verdict}")

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d.update(verdict=self.verdict, n_ambiguous=self.n_ambiguous)
        return to_strict_json(d)


def zero_loss_search(problem: Problem, *, starts: int = 64, seed: int = 0, scale: float = 1.5,
                     max_iter: int = 2000, pad_to: int | None = None) -> ZeroLossSearch:
    """Minimise ℓ from ``starts`` Gaussian starts N(0, scale²·I) (not small: the aim is to
    reach every kind of global minimum, not the one small initialization selects) and sort
    the zeros reached into Q* and outside it by their generalization error.

    Tests the claim "Q* = ℓ⁻¹(0)" (the paper's Table 1: Example 1 at n = 6): a zero outside
    Q* refutes it for these data; none is evidence only (zeros no start reaches are
    missed). With n = p equations in p unknowns, isolated spurious solutions may exist for
    some data.

    Args:
        problem: a ``Problem`` with a single-neuron target.
        starts: the number of random starts.
        seed: the seed of the starts.
        scale: the starts' standard deviation.
        max_iter: Levenberg–Marquardt iterations per start.
        pad_to: pad the data to this many masked rows (one compiled program for several n).
    """
    problem = _check_problem(problem)
    starts = V.positive_int(starts, "starts")
    seed = V.nonnegative_int(seed, "seed")
    scale = V.positive_float(scale, "scale")
    max_iter = V.positive_int(max_iter, "max_iter")
    rows = _rows(problem.n, pad_to)
    Xa, y, mask = _padded_data(problem, rows)
    zero = ZERO_LOSS * _scale(problem)
    u0 = np.random.default_rng(seed).normal(0.0, scale, (starts, problem.n_params))
    args = (problem.activation, problem.width, Xa, y, mask, jnp.asarray(u0),
            jnp.int64(max_iter), jnp.float64(_FLOOR * zero))
    exe, _ = compiled(_free_lm, *args)
    thetas, L, capped = map(np.asarray, exe(*args))
    gen = np.atleast_1d(generalization_error(problem, thetas))
    is_zero = L <= zero
    outside = is_zero & (gen >= GEN_NONZERO)
    return ZeroLossSearch(
        n=problem.n, starts=starts, scale=scale, seed=seed, thetas=thetas, losses=L,
        gen_errors=gen, n_zero=int(is_zero.sum()),
        n_in_target=int((is_zero & (gen <= GEN_ZERO)).sum()), n_outside=int(outside.sum()),
        n_distinct_outside=_distinct(problem, thetas[outside]),
        n_capped=int(capped.sum()),
        settings=dict(zero_loss=zero, gen_zero=GEN_ZERO, gen_nonzero=GEN_NONZERO,
                      same_function=SAME_FUNCTION, max_iter=max_iter))


def _distinct(problem: Problem, thetas: np.ndarray) -> int:
    """Number of distinct functions among f_θ (greedy clustering of their outputs on the
    test inputs at RMS distance SAME_FUNCTION)."""
    if len(thetas) == 0:
        return 0
    from flowtools.branches import test_inputs

    X = jnp.asarray(test_inputs(problem))
    F = np.asarray(jax.vmap(lambda th: problem.predict(th, X))(jnp.asarray(thetas)))
    reps: list[np.ndarray] = []
    for f in F:
        if not any(np.sqrt(np.mean((f - g) ** 2)) <= SAME_FUNCTION for g in reps):
            reps.append(f)
    return len(reps)


# ---------------------------------------------------------------------- the scan
def separation_scan(ns, data_seeds=range(5), *, codes=None, branches_of=None,
                    activation="tanh", width: int = 2, dim: int = 1, bias: bool = True,
                    sampling: str = "uniform", seed: int = 0, **test_kwargs):
    """Verdicts of ``separation_test`` over sample sizes × datasets × branches of the
    family ``make_problem(n, sampling=sampling, seed=data_seed, activation, width, dim,
    bias)``, for a plot of the fraction of datasets separated against n per branch.

    The data are padded to max(ns) rows, so the whole scan runs one compiled program.

    Args:
        ns: sample sizes.
        data_seeds: dataset seeds.
        codes: the branch codes to test (default: every branch).
        branches_of: problem → list of branches (default
            ``flowtools.thresholds.target_branches``).
        seed: seeds the generic points and starts of every test.
        test_kwargs: passed to ``separation_test`` (radii, starts, points, slide, max_iter).

    Returns:
        An ``xarray.Dataset`` with dims (n, data_seed, branch[, point, radius]): ``verdict``
        (str), ``separated`` (bool), ``fraction_separated`` and ``fraction_undecided``
        (n, branch), ``exponent``,
        ``min_loss``, ``n_spurious``, and per branch ``predicted`` (the rule's separation
        size, −1 if none) and ``paper_name``.
    """
    import xarray as xr

    from flowtools.models import make_problem

    ns = [V.positive_int(n, "n") for n in np.atleast_1d(ns).tolist()]
    data_seeds = [V.nonnegative_int(s, "data seed") for s in np.atleast_1d(list(data_seeds))]
    if not ns or not data_seeds:
        raise FlowtoolsError("separation_scan needs at least one n and one data seed.")
    if "theta0" in test_kwargs or "pad_to" in test_kwargs:
        raise FlowtoolsError("the scan tests generic points of each branch with padded data: "
                             "theta0 and pad_to are not scan options.")
    if branches_of is None:
        from flowtools.thresholds import target_branches as branches_of
    radii = _radii(test_kwargs.get("radii", (3e-2, 1e-2, 3e-3)))
    points = V.positive_int(test_kwargs.get("points", 2), "points")
    rows = _rows(max(ns), None)
    names = None
    out: dict[str, list] = {k: [] for k in ("verdict", "exponent", "min_loss", "n_spurious")}
    meta: dict = {}
    for n in ns:
        rows_n = {k: [] for k in out}
        for ds in data_seeds:
            pb = make_problem(n, sampling=sampling, seed=ds, activation=activation,
                              width=width, dim=dim, bias=bias)
            brs = [b for b in branches_of(pb) if codes is None or b.code in codes]
            if names is None:
                names = [b.code for b in brs]
                if not names:
                    raise FlowtoolsError(f"no branch with a code in {list(codes)}; the "
                                         f"branches are {[b.code for b in branches_of(pb)]}.")
                meta = {b.code: (getattr(b, "paper_name", None) or "",
                                 getattr(b, "separation", None)) for b in brs}
            cells = {k: [] for k in out}
            for b in brs:
                res = separation_test(pb, b, seed=seed, pad_to=rows, **test_kwargs)
                cells["verdict"].append(res.verdict)
                cells["exponent"].append([np.nan if e is None else e for e in res.exponents])
                cells["min_loss"].append([pt.min_loss for pt in res.points])
                cells["n_spurious"].append([[e.n_spurious for e in pt.radii]
                                            for pt in res.points])
            for k in out:
                rows_n[k].append(cells[k])
        for k in out:
            out[k].append(rows_n[k])
    dims3 = ("n", "data_seed", "branch")
    verdict = np.array(out["verdict"], dtype=object).astype(str)
    ds = xr.Dataset(
        {
            "verdict": (dims3, verdict),
            "separated": (dims3, verdict == SEPARATED),
            "exponent": (dims3 + ("point",), np.array(out["exponent"], dtype=float)),
            "min_loss": (dims3 + ("point", "radius"), np.array(out["min_loss"], dtype=float)),
            "n_spurious": (dims3 + ("point", "radius"), np.array(out["n_spurious"])),
            "predicted": (("branch",), np.array([-1 if meta[c][1] is None else int(meta[c][1])
                                                  for c in names])),
            "paper_name": (("branch",), np.array([meta[c][0] for c in names], dtype=str)),
        },
        coords=dict(n=ns, data_seed=data_seeds, branch=names, point=np.arange(points),
                    radius=radii),
        attrs=dict(activation=str(getattr(activation, "name", activation)), width=width,
                   dim=dim, bias=int(bias), sampling=sampling, seed=seed),
    )
    ds["fraction_separated"] = ds["separated"].mean("data_seed")
    ds["fraction_undecided"] = (ds["verdict"] == UNDECIDED).mean("data_seed")
    return ds

"""Which part of the target set an end point lies in, and its generalization error.

For a single-neuron target f*(x) = a_0 σ(w_0ᵀx̃) (x̃ = (x, 1) with a bias, so w_0 carries
b_0) and a width-m network f_θ = Σ_k a_k σ(w_kᵀx̃), the paper's target set of Example 1
(Zhao, Bai, Zhang, section 5.2, Table 1, Figure 3) is Q* = Q1 ∪ Q2 with

    Q1 = { w_k = w_0 for every k,  Σ_k a_k = a_0 }                 (all neurons active)
    Q2 = { w_k = w_0, a_k = a_0 for one k;  a_j = 0 for j ≠ k }     (one neuron active,
                                                                     the others' w free)

up to the symmetries of the network: swapping neurons and, for odd σ, θ_k ↦ −θ_k per
neuron (a_k σ(w_kᵀx̃) = (−a_k) σ(−w_kᵀx̃)). For m = 2 these are the paper's Q1 (a line)
and Q2 (an affine surface). For m > 2 the sets with 1 < j < m active neurons are reported
as "other".

``classify`` measures the Euclidean distance from θ to Q1 and to Q2 (minimized over the
symmetries; a sign flip of one neuron is an isometry of parameter space, so the distance
to the union of the images is the minimum over flipped copies of θ), reports per neuron
whether it matches the target neuron w_0 up to sign and its signed output weight, and
labels θ by the nearer set if that distance is at most ``tol``.

**Finite horizon versus t → ∞.** Convergence to Q1 is polynomial (the two neurons merge
along a direction of quartic curvature), convergence to Q2 exponential. An end point of a
run stopped at a finite time that heads for Q1 may still lie ~t^{-1/2} away from it, so a
label is the label *of that end point*; it is the label of the limit only if the run
reached a loss floor (``loss`` is reported with the label to judge this).

    >>> import numpy as np, flowtools as ft
    >>> from flowtools.branches import classify
    >>> pb = ft.example1()
    >>> str(classify(pb, np.array([0.3, 1, 1, 0.7, 1, 1])).branch)
    'Q1'
    >>> str(classify(pb, np.array([-1, -1, -1, 0, 0.4, -2.0])).branch)    # neuron 1 flipped
    'Q2'
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from flowtools import _validate as V
from flowtools.errors import FlowtoolsError
from flowtools.models import Problem
from flowtools.models.network import SingleNeuron, augment

BRANCHES = ("Q1", "Q2", "other")


def _target(problem: Problem, target: SingleNeuron | None) -> SingleNeuron:
    """``target`` if given, else the target stored with the problem (``make_problem`` and
    ``example1`` store theirs); a problem built from bare arrays has none."""
    if not isinstance(problem, Problem):
        raise FlowtoolsError(
            f"branches are defined for the two-layer network with a single-neuron target "
            f"(flowtools.models.Problem), not for {type(problem).__name__}."
        )
    if target is not None:
        return target
    if problem.target is None:
        raise FlowtoolsError(
            "this problem stores no target (its data were given as arrays): pass the single "
            "neuron that labelled them as target=SingleNeuron(...)."
        )
    return problem.target


def _target_vector(problem: Problem, target: SingleNeuron) -> np.ndarray:
    if target.dim != problem.dim:
        raise FlowtoolsError(
            f"the target has input dimension {target.dim}, the problem {problem.dim}."
        )
    if (target.b0 is not None and target.b0 != 0) and not problem.bias:
        raise FlowtoolsError(
            "the target has a bias b0 but the network has none: a neuron can never match "
            "it. Use a network with a bias or a target with b0 = None."
        )
    w0 = np.asarray(target.w0, dtype=float)
    return np.concatenate([w0, [target.b0 or 0.0]]) if problem.bias else w0


@dataclass(frozen=True, eq=False)
class BranchResult:
    """Where θ (shape (…, p)) lies relative to the target set.

    Attributes:
        branch: (…,) "Q1", "Q2" or "other" (nearer set within ``tol``).
        dist_Q1, dist_Q2: (…,) Euclidean distances to Q1 and Q2 up to the symmetries.
        neuron_dist: (…, m) distance of neuron k's input weights to ±w_0 (min over the
            sign for odd σ, +w_0 only otherwise).
        neuron_sign: (…, m) the sign s_k ∈ {±1} attaining ``neuron_dist``.
        neuron_match: (…, m) ``neuron_dist ≤ tol``.
        a_eff: (…, m) signed output weights s_k·a_k (the neuron as a copy of the target).
        loss: (…,) training loss ℓ(θ), to judge whether the label is that of a limit.
        tol: the tolerance used.
    """

    branch: np.ndarray
    dist_Q1: np.ndarray
    dist_Q2: np.ndarray
    neuron_dist: np.ndarray
    neuron_sign: np.ndarray
    neuron_match: np.ndarray
    a_eff: np.ndarray
    loss: np.ndarray
    tol: float


def classify(problem: Problem, theta, *, target: SingleNeuron | None = None,
             tol: float = 0.1) -> BranchResult:
    """Which of Q1, Q2 (or neither) θ lies in, up to neuron swaps and per-neuron signs.

    Args:
        problem: the ``Problem`` (any width m, any d, with or without bias).
        theta: (p,) or (B, p) parameters, e.g. ``traj.theta_final``.
        target: the single-neuron target (default: the one stored with the problem,
            ``problem.target``; a problem without one needs ``target=``).
        tol: a set is assigned when θ is within this Euclidean distance of it. The default
            0.1 separates Example 1's end points at t ≳ 1e4; lower it for end points that
            reached a loss floor (their distance is then ~√loss or less).

    Returns:
        A ``BranchResult`` (arrays of shape (…,) or (…, m)).
    """
    theta = problem.check_theta(theta)
    tol = V.positive_float(tol, "tol")
    target = _target(problem, target)
    w0 = _target_vector(problem, target)
    a0 = float(target.a0)
    m = problem.width
    a, W = problem.unpack(theta)
    a, W = np.asarray(a), np.asarray(W)
    odd = bool(problem.activation.is_odd)
    signs = (1.0, -1.0) if odd else (1.0,)

    # per neuron: distance of s·w_k to w_0 for each allowed sign, (…, m, S)
    dw = np.stack([np.sum((s * W - w0) ** 2, axis=-1) for s in signs], axis=-1)
    best = np.argmin(dw, axis=-1)
    neuron_sign = np.asarray(signs)[best]
    neuron_dist = np.sqrt(np.take_along_axis(dw, best[..., None], -1)[..., 0])
    a_eff = neuron_sign * a

    # Q1: Σ_k ‖s_k w_k − w0‖² + (Σ_k s_k a_k − a0)²/m, minimized over sign patterns
    if odd and m <= 10:
        patterns = np.array(list(itertools.product((1.0, -1.0), repeat=m)))  # (P, m)
        idx = (patterns < 0).astype(int)  # sign index per neuron
        d_w = np.stack([np.take_along_axis(dw, np.broadcast_to(i, dw.shape[:-1])[..., None],
                                           -1)[..., 0].sum(-1) for i in idx], -1)
        d_a = (np.einsum("...m,pm->...p", a, patterns) - a0) ** 2 / m
        d1 = np.sqrt(np.min(d_w + d_a, axis=-1))
    else:  # signs chosen per neuron by the input weights (exact unless a w_k ≈ 0)
        d1 = np.sqrt(np.sum(neuron_dist**2, -1) + (a_eff.sum(-1) - a0) ** 2 / m)

    # Q2: neuron k active (best sign), the others silent: a_j = 0, w_j free
    a2 = np.sum(a**2, -1, keepdims=True)
    d2_k = (neuron_dist**2 + (a_eff - a0) ** 2 + a2 - a**2)
    d2 = np.sqrt(np.min(d2_k, axis=-1))
    if m == 1:  # Q1 = Q2 = {the target neuron}
        d2 = d1

    branch = np.where(np.minimum(d1, d2) > tol, "other", np.where(d1 <= d2, "Q1", "Q2"))
    loss = np.asarray(_losses(problem, theta))
    return BranchResult(branch=branch[()], dist_Q1=d1[()], dist_Q2=d2[()],
                        neuron_dist=neuron_dist, neuron_sign=neuron_sign,
                        neuron_match=neuron_dist <= tol, a_eff=a_eff, loss=loss[()], tol=tol)


def _losses(problem, theta):
    out = np.asarray(jax.vmap(problem.loss)(jnp.asarray(np.atleast_2d(theta))))
    return out if theta.ndim == 2 else out[0]


def test_inputs(problem: Problem, n_test: int = 1000, *, interval=(-2.0, 2.0),
                seed: int = 0) -> np.ndarray:
    """The paper's test inputs (Appendix C): ``n_test`` evenly spaced points on
    ``interval`` for d = 1, uniform on the cube for d > 1 (seeded)."""
    n_test = V.positive_int(n_test, "n_test")
    seed = V.nonnegative_int(seed, "seed")
    if problem.dim == 1:
        return np.linspace(*interval, n_test)[:, None]
    return np.random.default_rng(seed).uniform(*interval, (n_test, problem.dim))


test_inputs.__test__ = False  # a helper, not a pytest test


ERROR_KINDS = ("rms", "mse")


def generalization_error(problem: Problem, theta, *, target: SingleNeuron | None = None,
                         X_test=None, kind: str = "rms") -> np.ndarray:
    """‖f_θ − f*‖ on a test set: the root mean square (1/N Σ_j (f_θ(x_j) − f*(x_j))²)^{1/2}
    over the test inputs (default: 1000 evenly spaced points on [−2, 2] for d = 1, the
    paper's Figure 1 protocol; uniform on [−2, 2]^d otherwise).

    ``kind="mse"`` gives the mean squared error 1/N Σ_j (f_θ(x_j) − f*(x_j))² instead (the
    square of the RMS). The paper does not define its error; trained to the sum loss
    ℓ = 1e-15 an end point in Q* has an RMS error near 1e-8 and an MSE near 1e-15.

    Zero exactly on Q* (and on anything that computes the same function); inf for a
    diverged (non-finite or overflowing) θ, without warnings.

        >>> import numpy as np, flowtools as ft
        >>> pb = ft.example1()
        >>> float(generalization_error(pb, np.array([0.3, 1, 1, 0.7, 1, 1]))) < 1e-15
        True
    """
    kind = V.choice(kind, "kind", ERROR_KINDS)
    raw = np.asarray(theta, dtype=float)
    bad = ~np.all(np.isfinite(np.atleast_2d(raw)), axis=-1)  # diverged runs: error = inf
    theta = problem.check_theta(np.where(np.isfinite(raw), raw, 0.0))
    target = _target(problem, target)
    X = test_inputs(problem) if X_test is None else np.asarray(X_test, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    ystar = target(X)
    Xa = jnp.asarray(augment(X, problem.bias))
    th = jnp.asarray(np.atleast_2d(theta))
    a, W = problem.unpack(th)  # (B, m), (B, m, d̃)
    pred = jnp.einsum("bm,bnm->bn", a, problem.activation(jnp.einsum("nd,bmd->bnm", Xa, W)))
    with np.errstate(over="ignore", invalid="ignore"):
        err = np.mean((np.asarray(pred) - ystar) ** 2, axis=-1)
        if kind == "rms":
            err = np.sqrt(err)
    err = np.where(bad | ~np.isfinite(err), np.inf, err)
    return err if theta.ndim == 2 else err[0]

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

**The branch map** (``branch_map``, Example 1's Figures 2–3 protocol, width m = 2): the
final branch of the flow's and of GD's end points over the initial imbalance ratio c̃. The
flow and GD start from ``problem.init_ratio(c̃, scale, seed)``. The flow's label is that of
its limit (integrated to the loss threshold); GD is labelled at its horizon T and after
continuing its iterate with the flow (GD's t → ∞ label, valid only below the stability
edge 2/λ_max at that end point). Label arrays hold only branch labels (``BRANCHES``), ""
where there is none; why there is none is in the parallel arrays: the ``Status`` of the run
(a flow that did not reach the threshold, a GD run that overflowed) and the ``Regime`` of
GD against the flow (beyond the edge, diverged).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from flowtools import _validate as V
from flowtools._io import named
from flowtools.curvature import lam_max_at
from flowtools.data import augment
from flowtools.descent import GD_STEP_LIMIT, check_gd_iterations, gd_iterations, run_gd
from flowtools.errors import FlowtoolsError
from flowtools.flow import solve_flow
from flowtools.models import Problem
from flowtools.models.network import SingleNeuron
from flowtools.status import Regime, Status

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


# ------------------------------------------------------------------ the branch map over c̃
EX1_LRS = (0.01, 0.05, 0.25, 0.5)  # the paper's learning rates on Example 1 (Appendix C)


@dataclass(frozen=True, eq=False)
class BranchMap:
    """Final branch of Example 1's end points over c̃, for the flow and for GD.

    Attributes:
        c_tildes: (C,) initial imbalance ratios c = C1/C2 = c̃ ∈ (0, 1].
        lrs: (L,) GD learning rates.
        horizon: GD's flow-time horizon T (GD runs max_iter = T/η iterations, the paper's
            protocol, stopping early at ``loss_threshold``).
        flow: (C,) branch of the flow's limit (``solve_flow`` to ``loss_threshold``:
            the t → ∞ label), "" if it did not get there (see ``flow_status``).
        flow_status: (C,) ``Status`` of those flows (CONVERGED: the label is the limit's).
        flow_t: (C,) the time the flow reached the threshold (or stopped).
        flow_edge: (C,) 2/λ_max at the flow's end point (GD's stability edge there).
        gd_T: (L, C) branch of GD's iterate at T (the finite-horizon label, ``tol``), ""
            where GD overflowed (see ``gd_status``).
        gd_status: (L, C) ``Status`` of the GD runs (NONFINITE: diverged).
        gd_limit: (L, C) branch of the flow continued from GD's iterate at T to the loss
            threshold (GD's t → ∞ label, assuming GD follows the flow from there, i.e.
            η below the stability edge there); "" where ``gd_regime`` is not FOLLOWS or
            the continued flow did not reach the threshold (``gd_limit_status``).
        gd_regime: (L, C) ``Regime`` of GD against the flow at GD's end point: FOLLOWS,
            BEYOND_EDGE (η ≥ 2/λ_max there) or DIVERGED.
        gd_limit_status: (L, C) ``Status`` of the continued flows (CONVERGED for runs that
            reached the threshold already; the GD run's status where it overflowed).
        gd_loss: (L, C) GD's loss at T (or when it stopped).
        gd_edge: (L, C) 2/λ_max at the end of the continued flow.
        disagree: list of (lr, c̃, flow, GD limit, GD at T) where GD's limit label differs
            from the flow's or GD does not follow the flow; each entry the label, or the
            name of the status or regime where there is none.
    """

    c_tildes: np.ndarray
    lrs: np.ndarray
    horizon: float
    scale: float
    seed: int
    flow: np.ndarray
    flow_status: np.ndarray
    flow_t: np.ndarray
    flow_edge: np.ndarray
    gd_T: np.ndarray
    gd_status: np.ndarray
    gd_limit: np.ndarray
    gd_regime: np.ndarray
    gd_limit_status: np.ndarray
    gd_loss: np.ndarray
    gd_edge: np.ndarray
    tol: float
    disagree: list

    def _shown(self, i, j):
        """Display strings (flow, GD limit, GD at T) of learning rate i, c̃ j."""
        return (self.flow[j] or self.flow_status[j].name,
                self.gd_limit[i, j] or (self.gd_regime[i, j].name
                                        if not self.gd_regime[i, j].ok
                                        else self.gd_limit_status[i, j].name),
                self.gd_T[i, j] or self.gd_status[i, j].name)

    def table(self) -> str:
        head = f"{'c~':>6} {'flow(t→∞)':>10} {'2/λmax':>7} " + " ".join(
            f"{'lr=' + format(lr, 'g') + ' T/∞':>17}" for lr in self.lrs)
        lines = [f"branch map: Example 1 end points, scale {self.scale:g}, seed {self.seed}, "
                 f"GD horizon T = {self.horizon:g} (label at T / label of the flow "
                 "continued from GD's iterate at T)", head]
        for j, c in enumerate(self.c_tildes):
            cells = [self._shown(i, j) for i in range(len(self.lrs))]
            lines.append(f"{c:6.3f} {self._shown(0, j)[0]:>10} {self.flow_edge[j]:7.4f} "
                         + " ".join(f"{T + '/' + lim:>17}" for _, lim, T in cells))
        lines.append("disagreements (GD limit ≠ flow limit): " + (
            ", ".join(f"lr={lr:g} c~={c:.3f} ({f}→{g})" for lr, c, f, g, _ in self.disagree)
            or "none"))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-ready (statuses and regimes by their names)."""
        return {k: named(v) for k, v in self.__dict__.items()}


def branch_map(problem: Problem, c_tildes, lrs=EX1_LRS, *, scale: float = 1e-8,
               seed: int = 0, horizon: float = 5e4, loss_threshold: float = 1e-15,
               tol: float = 0.1, max_gd_steps: float = GD_STEP_LIMIT) -> BranchMap:
    """Final branch (Q1 / Q2) over c̃ for the flow and for GD (width m = 2).

    Initial states: ``problem.init_ratio(c̃, scale, seed)`` (the paper's Figure 2/3
    protocol: the second neuron rescaled so that C1/C2 = c̃). The flow is integrated to
    ``loss_threshold`` (its t → ∞ label). GD runs to flow time ``horizon`` (default 5e4 =
    Figure 3's 1e6 iterations at η = 0.05) and is labelled there and after continuing its
    iterate with the flow to ``loss_threshold``. Its GD iterations (Σ horizon/η over the
    learning rates, per c̃) are estimated first and refused above ``max_gd_steps``.

        >>> import flowtools as ft
        >>> from flowtools.branches import branch_map
        >>> bm = branch_map(ft.example1(), [0.5, 0.9], [0.05], horizon=5e3)
        >>> bm.flow.tolist(), bm.gd_limit.tolist(), [r.name for r in bm.gd_regime[0]]
        (['Q2', 'Q1'], [['Q2', 'Q1']], ['FOLLOWS', 'FOLLOWS'])
    """
    if not isinstance(problem, Problem):
        raise FlowtoolsError("the branch map over c̃ is defined for the paper's two-layer "
                             f"network (flowtools.models.Problem), not {type(problem).__name__}.")
    problem._require_width2("the branch map over c̃")
    cs = V.real_array(c_tildes, "c_tildes", finite=False).ravel()
    if cs.size == 0 or np.any(~np.isfinite(cs)) or np.any(cs <= 0) or np.any(cs > 1):
        raise FlowtoolsError(f"c̃ values must lie in (0, 1], got {cs}.")
    lrs = V.learning_rates(lrs)
    scale = V.positive_float(scale, "the initial scale")
    seed = V.nonnegative_int(seed, "seed")
    horizon = V.positive_float(horizon, "the GD horizon")
    loss_threshold = V.loss_threshold(loss_threshold)
    tol = V.positive_float(tol, "the branch tolerance tol")
    with np.errstate(over="ignore"):
        worst = horizon / float(np.min(lrs))
    check_gd_iterations(
        gd_iterations(horizon, lrs, batch=cs.size), max_gd_steps, "this branch map",
        f"its longest GD run is horizon/lr = {horizon:g}/{float(np.min(lrs)):g} = "
        f"{worst:.3g} iterations, for each of the {cs.size} c̃ value(s); shorten the "
        "horizon (--horizon), raise the learning rates or give fewer c̃ values",
        "max_gd_steps (--max-gd-steps)")
    th0 = np.stack([problem.init_ratio(c, scale, seed) for c in cs])

    def labels(thetas):
        return np.asarray(classify(problem, thetas, tol=tol).branch, dtype=object)

    def limit_labels(thetas):
        fl = solve_flow(problem, thetas, t1=1e12, loss_threshold=loss_threshold)
        lab, conv = labels(fl.theta_final), np.asarray(fl.converged)
        lab[~conv] = ""
        return lab, _statuses(fl.status), np.atleast_1d(fl.t_final), fl.theta_final

    flow, flow_status, flow_t, flow_end = limit_labels(th0)
    flow_edge = 2.0 / np.maximum(lam_max_at(problem, flow_end), 1e-300)
    L, C = lrs.size, cs.size
    gd_T = np.full((L, C), "", dtype=object)
    gd_limit = np.full((L, C), "", dtype=object)
    gd_status = np.empty((L, C), dtype=object)
    gd_regime = np.empty((L, C), dtype=object)
    gd_regime[...] = Regime.DIVERGED  # (np.full would store the int, not the member)
    gd_limit_status = np.empty((L, C), dtype=object)
    gd_loss = np.full((L, C), np.nan)
    gd_edge = np.full((L, C), np.nan)
    for i, lr in enumerate(lrs):
        gd = run_gd(problem, th0, lr, max_iter=max(1, int(round(horizon / lr))),
                    loss_threshold=loss_threshold, n_save=3)
        fin = np.all(np.isfinite(gd.theta_final), -1) & np.isfinite(gd.loss_final)
        gd_status[i] = _statuses(gd.status)
        gd_limit_status[i] = gd_status[i]
        gd_loss[i] = np.where(fin, gd.loss_final, np.nan)
        if fin.any():
            gd_T[i, fin] = labels(gd.theta_final[fin])
            # continue every member (a fixed batch shape: one compilation); members that
            # already reached the threshold keep their end point
            start = np.where(fin[:, None], gd.theta_final, th0)
            lab, st, _, ends = limit_labels(start)
            done = fin & (gd.loss_final <= loss_threshold)
            lab = np.where(done, labels(start), lab)
            st[done] = Status.CONVERGED
            ends = np.where(done[:, None], start, ends)
            edge = 2.0 / np.maximum(lam_max_at(problem, ends), 1e-300)
            gd_edge[i, fin] = edge[fin]
            follows = lr < edge
            gd_regime[i, fin & follows] = Regime.FOLLOWS
            gd_regime[i, fin & ~follows] = Regime.BEYOND_EDGE
            gd_limit[i, fin] = np.where(follows, lab, "")[fin]
            gd_limit_status[i, fin] = st[fin]
    bm = BranchMap(c_tildes=cs, lrs=lrs, horizon=float(horizon), scale=scale, seed=seed,
                   flow=flow, flow_status=flow_status, flow_t=flow_t, flow_edge=flow_edge,
                   gd_T=gd_T, gd_status=gd_status, gd_limit=gd_limit, gd_regime=gd_regime,
                   gd_limit_status=gd_limit_status, gd_loss=gd_loss, gd_edge=gd_edge,
                   tol=tol, disagree=[])
    bm.disagree.extend((float(lrs[i]), float(cs[j]), *bm._shown(i, j))
                       for i in range(L) for j in range(C)
                       if gd_limit[i, j] != flow[j] or not gd_regime[i, j].ok)
    return bm


def _statuses(codes) -> np.ndarray:
    """``Status`` members (an object array) from a trajectory's status codes."""
    return np.array([Status(int(c)) for c in np.atleast_1d(codes)], dtype=object)

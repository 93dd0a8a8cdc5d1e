"""Event-driven Filippov integration of a gradient flow whose field jumps across kinks.

A loss built from ReLUs has a gradient field that is smooth except on the hyperplanes
(kinks) h_k(θ) = 0 where a preactivation changes sign. Where the field on both sides points
into a kink, the solution in Filippov's sense *slides* on it (h_k stays 0), and an explicit
adaptive solver that ignores the kinks chatters across it at the tolerance: on the ReLU CNN
of ``flowtools.models.relu_cnn`` dopri5 needs 507 steps at rtol 1e-6 and 4.5·10⁴ at 1e-8.

This module integrates such a flow piece by piece (the event-driven method of Piiroinen &
Kuznetsov, ACM TOMS 34, 2008, with Utkin's equivalent control for the sliding field):

* **Gates.** The model is given as a ``Switched``: its kink functions h(θ) ∈ ℝ^K and a
  *gated loss* L_G(θ, s), the loss with each ReLU(z) replaced by z·G, where the gate G of a
  unit is s_k (the unit's preactivation is +h_k) or 1 − s_k (it is −h_k). With s_k = 1[h_k
  > 0] the gated loss has the loss's value and −∇_θ L_G(θ, s) is the field (s is an
  argument, so its gradient is the stop-gradient one). On a kink (h_k = 0) the field is
  affine in s_k, and s_k ∈ [0, 1] spans Filippov's convex hull of the two sides' fields.
* **Modes.** Each kink is on the + side (s_k = 1), the − side (s_k = 0) or sliding (k ∈ S).
  On S, s_S solves the linear system ḣ_S = ∇h_S·(−∇_θ L_G(θ, s)) = 0 (the equivalent
  control; exact, the field being affine in s_S there).
* **Segments.** Between events the field is smooth; scipy's DOP853 (8th order, adaptive)
  integrates it. After every step the kinks not in S are checked for a sign change and the
  controls s_S for leaving [0, 1]; the earliest such event is located on the step's dense
  output (Brent's method, to round-off), the state is set there and the modes are settled
  anew: a kink reached transversally (both sides' fields point the same way) changes side,
  one where both point into it joins S, and a control reaching 0 or 1 leaves S to that side
  (the tangential exit). When several kinks are involved the settling pivots one kink at a
  time until every sliding control lies in [0, 1] and every kink at a bound is left the
  way its side's field points (a small box-constrained complementarity problem).
* **Invariants.** On S the state is projected back onto h_S = 0 at every event (a
  Gauss–Newton step; for linear kinks, as the CNN's, the Runge–Kutta stages keep h_S at
  round-off anyway: they preserve linear invariants).

**Measured** (``benchmarks/bench_sliding.py``, the instance above: n = 10, d = 50, m = 4,
σ0 = 0.01, v0 = 0.1, t ≤ 2; 24 crossings, 21 entries into sliding, 5 exits, 16 kinks
sliding at the end): 47 steps at rtol 1e-6 (746 field evaluations + 235 control solves,
0.6 s) with an end-point error 3.8e-7, 48 steps and 3.3e-10 at rtol 1e-10 — against
dopri5's 507 steps (error 4.5e-4) at rtol 1e-6 and 45 482 steps (4.1e-6, 3.4 s) at 1e-8.
The error is measured against this integrator at rtol 1e-13, which GD confirms
independently: GD's end point approaches it at order 1 in η (8.6e-7 at η = 1e-5, 7.6e-8
at 1e-6; the Richardson extrapolation 2.2e-8) while it stays 4.1e-6 from dopri5 at rtol
1e-8 — dopri5's chattering converges slowly (1.0e-5 at rtol 1e-7, 4.1e-6 at 1e-8, 5.5e-6
at 1e-9). The steps are set by the events (about one step per smooth segment), not by
rtol; a step costs more Python than dopri5's compiled loop (≈ 12 ms against 0.1 ms; 2 shared
cores at load ≈ 3).
On the phase diagram's network (n = 20, d = 1000, m = 10, in span coordinates, t ≤ 2;
190 events, 58 kinks sliding at the end): 173 steps and an error 8e-10 at rtol 1e-6 (7 s;
each evaluation on a sliding segment solves for up to 64 controls), against dopri5's 538
steps (3.6e-3) at rtol 1e-6 and 36 713 steps (4.2e-5, 4 s) at 1e-8 (errors against this
integrator at rtol 1e-11; GD's gap to it 1.5e-5 at η = 1e-4, 1.3e-6 at 1e-5).

``integrate_sliding(switched, theta0, t1, rtol=...)`` returns a ``SlidingResult`` with the
end point and the work: accepted steps, field evaluations (each on a sliding segment
includes one equivalent-control solve), control solves made only for event location and
settling, the events. ``relu_cnn_switched(model)`` builds the ``Switched`` of a
``ReluCNN`` from its public fields (µ, y, ξ, ``split``).

A 2-D flow with a known Filippov solution: L(x, y) = 2·ReLU(x) − x + y, field ẋ = −1 for
x > 0 and +1 for x < 0 (so x slides on 0 with s = 1/2 once it gets there), ẏ = −1:

    >>> import numpy as np
    >>> from flowtools.integrate.sliding import Switched, integrate_sliding
    >>> sw = Switched(kinks=lambda th: th[:1],
    ...               gated_loss=lambda th, s: 2 * th[0] * s[0] - th[0] + th[1], n_kinks=1)
    >>> r = integrate_sliding(sw, np.array([0.5, 0.0]), 2.0, rtol=1e-10)
    >>> bool(np.max(np.abs(r.theta - np.array([0.0, -2.0]))) < 1e-15), r.events["enter"]
    (True, 1)
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

import flowtools._config  # noqa: F401  (float64 in JAX)
from flowtools.errors import FlowtoolsError

__all__ = ["SlidingResult", "Switched", "integrate_sliding", "relu_cnn_switched"]

# controls within this distance of [0, 1] count as inside (round-off of the linear solve)
S_TOL = 1e-9
# grid points per step on which kink crossings are screened before Brent's method
N_SCREEN = 16


@dataclass(frozen=True)
class Switched:
    """A loss with kinks, for ``integrate_sliding``.

    ``kinks(θ) → (K,)``: the kink functions h_k(θ) (JAX-traceable; each distinct hyperplane
    once). ``gated_loss(θ, s) → ()``: the loss with every ReLU(z) replaced by z·G, G = s_k
    where z = +h_k and 1 − s_k where z = −h_k (JAX-traceable in θ and s ∈ [0, 1]^K).
    """

    kinks: Callable
    gated_loss: Callable
    n_kinks: int


@dataclass
class SlidingResult:
    """The end of ``integrate_sliding`` and its cost.

    ``t``, ``theta``: the end. ``steps``: accepted DOP853 steps (``rejected``: rejected
    ones). ``field_evals``: evaluations of the field by the solver (the dense outputs'
    extra stages included). ``control_evals``: equivalent-control solves beyond those
    (event location and settling). ``events``: counts of ``cross`` (transversal),
    ``enter``, ``exit`` (sliding), ``recheck`` (a fresh side contradicted at once).
    ``sliding``: the kinks sliding at the end. ``log``: (t, kind, k) per event.
    ``wall_time``: seconds (compilation included, run once).
    """

    t: float
    theta: np.ndarray
    steps: int
    rejected: int
    field_evals: int
    control_evals: int
    events: dict
    sliding: np.ndarray
    wall_time: float
    log: list = field(default_factory=list, repr=False)


class _Field:
    """The gated field, the equivalent control and the counters (NumPy in, NumPy out)."""

    def __init__(self, sw: Switched):
        self.sw, self.K = sw, int(sw.n_kinks)
        grad = jax.grad(sw.gated_loss)

        def field(th, s):
            return -grad(th, s)

        def hdot(th, s):
            return jax.jvp(sw.kinks, (th,), (field(th, s),))[1]

        def control(th, s0, idx, valid):
            # ḣ is affine in s_S on h_S = 0: one exact linear solve for s_S
            g0 = hdot(th, s0)
            E = jax.nn.one_hot(idx, self.K, dtype=th.dtype) * valid[:, None]
            cols = jax.vmap(lambda e: jax.jvp(lambda s: hdot(th, s), (s0,), (e,))[1])(E)
            A = cols[:, idx].T  # A[a, b] = ∂ḣ_{idx[a]}/∂s_{idx[b]}
            P = idx.shape[0]
            A = jnp.where(valid[:, None] & valid[None, :], A, jnp.eye(P, dtype=th.dtype))
            delta = jnp.linalg.solve(A, -g0[idx] * valid)
            return s0.at[idx].add(delta * valid)

        def evaluate(th, s0, idx, valid):
            s = control(th, s0, idx, valid)
            f = field(th, s)
            return f, s, jax.jvp(sw.kinks, (th,), (f,))[1]

        # one compiled program per padded size of S (a power of 4), one for the kinks
        # on a batch of N_SCREEN + 1 states, one for their Jacobian
        self._evaluate = jax.jit(evaluate)
        self._kinks_batch = jax.jit(jax.vmap(sw.kinks))
        self._jac = jax.jit(jax.jacfwd(sw.kinks))
        self._none = (np.zeros(1, np.int32), np.zeros(1, bool))
        self.n_field = 0
        self.n_control = 0

    @staticmethod
    def _pad(S):
        S = np.flatnonzero(S)
        P = 4 ** int(np.ceil(np.log(max(len(S), 1)) / np.log(4) - 1e-9))  # few compilations
        idx = np.zeros(P, np.int32)
        idx[: len(S)] = S
        valid = np.zeros(P, bool)
        valid[: len(S)] = True
        return idx, valid

    def kinks_batch(self, ths):
        """h at each row of ``ths`` (at most N_SCREEN + 1 rows)."""
        n = ths.shape[0]
        pad = np.concatenate([ths, np.repeat(ths[-1:], N_SCREEN + 1 - n, axis=0)])
        return np.asarray(self._kinks_batch(pad))[:n]

    def kinks(self, th):
        return self.kinks_batch(th[None])[0]

    def controls(self, th, s0, S):
        """s with s_S the equivalent control (others as s0)."""
        if not S.any():
            return np.asarray(s0, float)
        self.n_control += 1
        return np.asarray(self._evaluate(th, s0, *self._pad(S))[1])

    def hdot(self, th, s):
        """ḣ under the field with the gates s."""
        return np.asarray(self._evaluate(th, s, *self._none)[2])

    def rhs(self, th, s0, S, idx_valid):
        """The field in the current modes (counted); the controls kept for the step end."""
        self.n_field += 1
        f, s, _ = self._evaluate(th, s0, *(self._none if idx_valid is None else idx_valid))
        return np.asarray(f), np.asarray(s)

    def project(self, th, S):
        """θ moved onto h_S = 0 (least-norm Gauss–Newton steps)."""
        if not S.any():
            return th
        J = None
        for _ in range(3):
            r = self.kinks(th)[S]
            if np.max(np.abs(r)) == 0.0:
                break
            J = np.asarray(self._jac(th))[S] if J is None else J
            th = th - J.T @ np.linalg.lstsq(J @ J.T, r, rcond=None)[0]
        return th


@functools.lru_cache(maxsize=8)
def _field_of(sw: Switched) -> _Field:
    """One compiled ``_Field`` per ``Switched`` (its counters reset per integration)."""
    return _Field(sw)


def _settle(F: _Field, th, s0, S, cand, forced):
    """Modes at a point where the kinks ``cand`` (and those in S) sit at h = 0.

    ``s0``: the sides (0/1) of the kinks not sliding; ``S``: the sliding mask (copies are
    returned); ``forced``: {k: 0, 1 or "slide"}: kinks held at a side (a control that
    reached a bound) or in S. Pivots one kink at a time until each sliding control is in
    [0, 1] and each kink at a bound is left the way its side's field points; returns
    (s0, S, changes), changes a list of (kind, k), kind "enter", "exit" or "cross".
    """
    s0, S, S_old = s0.copy(), S.copy(), S.copy()
    for k, b in forced.items():
        S[k] = b == "slide"
        if not S[k]:
            s0[k] = float(b)
    at_kink = sorted(set(cand) | set(np.flatnonzero(S_old).tolist()))
    free = [k for k in at_kink if k not in forced]
    S[free] = True
    for _ in range(8 * len(at_kink) + 8):
        s = F.controls(th, s0, S)
        sl = np.array([k for k in np.flatnonzero(S) if forced.get(k) != "slide"], int)
        viol = np.maximum(s[sl] - 1.0, -s[sl]) if sl.size else np.zeros(0)
        if sl.size and viol.max() > S_TOL:
            k = int(sl[np.argmax(viol)])
            # the reduced 1-D problem: ḣ_k with s_k at 0 and at 1, the rest re-solved
            S[k] = False
            hd = []
            for b in (0.0, 1.0):
                s0[k] = b
                F.n_control += 1
                hd.append(F.hdot(th, F.controls(th, s0, S))[k])
            if hd[0] > 0 and hd[1] > 0:
                s0[k] = 1.0
            elif hd[0] < 0 and hd[1] < 0:
                s0[k] = 0.0
            else:  # repelling (or degenerate): the side with the stronger push
                s0[k] = 1.0 if hd[1] >= -hd[0] else 0.0
            continue
        # kinks at a bound must leave the kink the way their side's field points
        F.n_control += 1
        hd = F.hdot(th, s)
        wrong = [k for k in free if not S[k] and (hd[k] < 0 if s0[k] == 1.0 else hd[k] > 0)]
        if wrong:
            S[wrong[0]] = True
            continue
        break
    else:
        raise FlowtoolsError("integrate_sliding: the sliding modes did not settle at "
                             f"kinks {at_kink} (a cycle of the pivoting).")
    changes = []
    for k in at_kink:
        if S[k] and not S_old[k]:
            changes.append(("enter", k))
        elif S_old[k] and not S[k]:
            changes.append(("exit", k))
        elif not S[k]:
            changes.append(("cross", k))
    return s0, S, changes


def integrate_sliding(sw: Switched, theta0, t1: float, *, rtol: float = 1e-10,
                      atol: float | None = None, max_steps: int = 1_000_000,
                      max_events: int = 100_000) -> SlidingResult:
    """Integrate the Filippov flow dθ/dt = −∇_θ L_G(θ, s) of ``sw`` from ``theta0`` to
    ``t1`` (see the module docstring).

    ``rtol``, ``atol`` (default rtol·‖θ0‖, as ``solve_flow``'s atol_rel = 1): DOP853's
    tolerances on each smooth segment. Kinks at exactly 0 at the start are settled first.
    """
    from scipy.integrate import DOP853
    from scipy.optimize import brentq

    th = np.asarray(theta0, float).copy()
    if th.ndim != 1 or not np.all(np.isfinite(th)):
        raise FlowtoolsError("integrate_sliding takes one finite state θ0 of shape (p,).")
    if not t1 > 0:
        raise FlowtoolsError(f"integrate_sliding needs t1 > 0, got {t1}.")
    atol = rtol * max(np.linalg.norm(th), 1e-300) if atol is None else float(atol)
    tic = time.perf_counter()
    F = _field_of(sw)
    F.n_field = F.n_control = 0
    h = F.kinks(th)
    if h.shape != (F.K,):
        raise FlowtoolsError(f"Switched.kinks returned shape {h.shape}, expected ({F.K},).")
    s0 = (h > 0).astype(float)
    S = np.zeros(F.K, bool)
    events = dict(cross=0, enter=0, exit=0, recheck=0)
    log = []
    zero = np.flatnonzero(h == 0)
    if zero.size:
        s0, S, _ = _settle(F, th, s0, S, [int(k) for k in zero], {})
    t, steps, rejected, first_step = 0.0, 0, 0, None
    fresh = set(int(k) for k in zero)  # kinks whose side was just decided at h ≈ 0
    n_events = 0
    while t < t1:
        th = F.project(th, S)
        idx_valid = F._pad(S) if S.any() else None
        cache = {}

        def fun(_t, y, s0=s0, S=S, idx_valid=idx_valid, cache=cache):
            f, s = F.rhs(y, s0, S, idx_valid)
            cache["y"], cache["s"] = y, s
            return f

        solver = DOP853(fun, t, th, t1, rtol=rtol, atol=atol,
                        first_step=None if first_step is None else min(first_step, t1 - t))
        sign = 2.0 * s0 - 1.0
        sl = np.flatnonzero(S)
        event = None
        first = True
        while solver.status == "running":
            n_before = solver.nfev
            t_a = solver.t
            msg = solver.step()
            if solver.status == "failed":
                raise FlowtoolsError(f"integrate_sliding: DOP853 failed at t = {t_a}: {msg}")
            steps += 1
            rejected += max(0, (solver.nfev - n_before) // 12 - 1)
            if steps > max_steps:
                raise FlowtoolsError(f"integrate_sliding: more than {max_steps} steps.")
            y_b = solver.y
            phi_b = sign * F.kinks(y_b)
            phi_b[S] = 0.0
            cross = np.flatnonzero(phi_b < 0)
            if sl.size:
                s_b = cache["s"] if cache.get("y") is y_b or np.array_equal(cache.get("y"), y_b) \
                    else F.controls(y_b, s0, S)
                out = sl[(s_b[sl] < 0) | (s_b[sl] > 1)]
            else:
                out = np.zeros(0, int)
            if cross.size == 0 and out.size == 0:
                first = False
                fresh = set()
                continue
            # the earliest event on this step's dense output
            dense = solver.dense_output()
            best = (np.inf, None, None)
            # screen the crossings on a grid of the dense output, then Brent on the earliest
            grid = np.linspace(t_a, solver.t, N_SCREEN + 1)
            if cross.size:
                phis = sign[cross] * F.kinks_batch(dense(grid).T)[:, cross]  # (N+1, c)
                i_first = np.argmax(phis[1:] < 0, axis=0) + 1  # every column ends < 0
            for c in np.flatnonzero(i_first == i_first.min()) if cross.size else ():
                k, i = int(cross[c]), int(i_first[c])
                if i == 1 and phis[0, c] <= 0:  # at the kink at the step's start
                    kind = "recheck" if first and k in fresh else "cross"
                    best = min(best, (t_a, kind, k), key=lambda e: e[0])
                    continue

                def phi(tt, k=k):
                    return sign[k] * F.kinks(dense(tt))[k]

                tk = brentq(phi, grid[i - 1], grid[i], xtol=1e-15, rtol=1e-15)
                best = min(best, (tk, "cross", k), key=lambda e: e[0])
            t_hi = min(best[0], solver.t)
            for k in out:
                k = int(k)
                b = 1.0 if s_b[k] > 1 else 0.0

                def g(tt, k=k, b=b):
                    return (F.controls(dense(tt), s0, S)[k] - b) * (1.0 if b == 1.0 else -1.0)

                if t_hi < solver.t and g(t_hi) < 0:
                    continue  # leaves [0, 1] only after the earliest crossing
                tk = t_a if g(t_a) >= 0 else brentq(g, t_a, t_hi, xtol=1e-15, rtol=1e-15)
                best = min(best, (tk, "exit", k, b), key=lambda e: e[0])
            event = best
            t_star = event[0]
            th = dense(t_star) if t_star < solver.t else y_b.copy()
            t = float(t_star)
            first_step = max(solver.step_size if solver.step_size else 0.0, 1e-12)
            break
        else:
            t, th = solver.t, solver.y.copy()
            break
        n_events += 1
        if n_events > max_events:
            raise FlowtoolsError(f"integrate_sliding: more than {max_events} events.")
        kind, k = event[1], event[2]
        if kind == "exit":
            s0, S, changes = _settle(F, th, s0, S, [k], {k: event[3]})
        else:
            # a fresh side contradicted within one step: the field points into the kink
            held = {k: "slide"} if kind == "recheck" else {}
            events["recheck"] += kind == "recheck"
            s0, S, changes = _settle(F, th, s0, S, [k], held)
        for kind2, k2 in changes:
            events[kind2] += 1
            log.append((t, kind2, k2))
        fresh = {k2 for kind2, k2 in changes if kind2 != "enter"}
    return SlidingResult(t=float(t), theta=np.asarray(th), steps=steps, rejected=rejected,
                         field_evals=F.n_field, control_evals=F.n_control, events=events,
                         sliding=np.flatnonzero(S), wall_time=time.perf_counter() - tic,
                         log=log)


def relu_cnn_switched(model) -> Switched:
    """The ``Switched`` of a ``flowtools.models.relu_cnn.ReluCNN`` (from its public fields;
    a ``ReluCNNSpan`` too: the same network in span coordinates, cheaper for large d).

    Kinks (K = 2m(n+1)): the signal kinks ⟨w_{j,r}, µ⟩ (2m; sample i's signal unit has
    preactivation y_i·⟨w_{j,r}, µ⟩, gate s if y_i = +1 and 1 − s if y_i = −1), then the
    noise kinks ⟨w_{j,r}, ξ_i⟩ (2m·n, order (j, r, i)). The gated loss is the model's
    logistic loss with ReLU(z) → z·G.
    """
    mu, y, xi = model.mu, model.y, model.xi
    m, n = model.width, int(y.shape[0])
    K = 2 * m * (n + 1)

    def kinks(theta):
        W, _ = model.split(theta)
        return jnp.concatenate([(W @ mu).ravel(), jnp.einsum("jrd,id->jri", W, xi).ravel()])

    def gated_loss(theta, s):
        W, Vout = model.split(theta)
        s_sig = s[: 2 * m].reshape(2, m)
        s_noise = s[2 * m:].reshape(2, m, n)
        h_sig = W @ mu  # (2, m)
        h_noise = jnp.einsum("jrd,id->jri", W, xi)  # (2, m, n)
        g_sig = jnp.where(y[:, None, None] > 0, s_sig[None], 1.0 - s_sig[None])  # (n, 2, m)
        sig = Vout[None, :, :, 0] * (y[:, None, None] * h_sig[None]) * g_sig
        noise = Vout[:, :, None, 1] * h_noise * s_noise  # (2, m, n)
        Fj = jnp.sum(sig, axis=2) + jnp.sum(noise, axis=1).T  # (n, 2)
        f = Fj[:, 0] - Fj[:, 1]
        return jnp.mean(jnp.logaddexp(0.0, -y * f))

    return Switched(kinks=kinks, gated_loss=gated_loss, n_kinks=K)

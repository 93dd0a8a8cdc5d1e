"""The two-patch ReLU CNN with both layers trainable (Shang, Meng, Cao, Zou 2024).

"Initialization Matters: On the Benign Overfitting of Two-Layer ReLU CNN with Fully
Trainable Layers" (arXiv 2410.19139; summary in ``shared/papers/004_ec9bee8fb160c2af.txt``).

**Data** (the signal–noise patch model; ``PatchData``, reproducible from a seed): labels
y ∈ {±1} Rademacher; each input has two patches in ℝ^d, the signal patch x⁽¹⁾ = y·µ and the
noise patch x⁽²⁾ = ξ ~ N(0, σp²(I − µµᵀ/‖µ‖²)); µ may point in any direction. A test set
of ``n_test`` (default 1000) i.i.d. examples is drawn from the same seed. ξ depends only
on the *direction* of µ, so the models of one seed at several ‖µ‖ share y and ξ.

**Network** (``ReluCNN``): 2m filters w_{j,r} ∈ ℝ^d (j = ±1, r = 1..m) and output weights
v_{j,r,p} (p = 1, 2: one per filter and patch),

    F_j(W, v; x) = Σ_r Σ_p v_{j,r,p} · ReLU(⟨w_{j,r}, x⁽ᵖ⁾⟩),     f = F_{+1} − F_{−1},
    L(W, v) = (1/n) Σ_i log(1 + exp(−y_i f(x_i)))                   (logistic, a mean),

initialized w_{j,r} ~ N(0, σ0² I), v_{j,r,p} = v0 (``ReluCNN.init``). θ is flat:
θ = (W.ravel(), V.ravel()) with W of shape (2, m, d) (index 0 ↔ j = +1, 1 ↔ j = −1) and V
of shape (2, m, 2) (``split``/``join``). ReLU'(0) = 0 (JAX's convention).

**Kinks.** ∇_w L contains ReLU'(⟨w, x⟩): the gradient field is discontinuous across each
hyperplane ⟨w_{j,r}, x_i⁽ᵖ⁾⟩ = 0 (∇_v L is continuous). The flow is integrated on the exact
ReLU by an explicit adaptive Runge–Kutta solver (``solve_flow(..., solver="dopri5")``; or
"auto", which picks dopri8 above 256 parameters): a step that straddles a crossing has a
large error estimate and is rejected, and the controller shrinks the step until the
crossing sits inside a step whose local error is within tolerance. No smoothing and no
event location. Two kinds of kinks occur (``kink_crossings`` counts sign changes between
saved states):

* transversal crossings (the field on both sides points across the hyperplane): resolved
  by the error control; GD → flow at order 1 in η still holds (measured 1.00 on an
  instance with 35 crossings, tests/test_relu_cnn.py);
* sliding modes (Filippov): a noise preactivation of a wrong-label sample is pushed to 0
  and the other samples' cross terms ⟨ξ_k, ξ_i⟩ push it back, so it stays at 0 (GD
  chatters around 0 with amplitude O(η); the adaptive solver chatters at the tolerance).
  Then the cost grows steeply as rtol falls (n = 10, d = 50, m = 4, σ0 = 0.01, t ≤ 2:
  507 steps at rtol 1e-6, 4.5·10⁴ at 1e-8) and the end point converges slowly (error
  4.5e-4 at rtol 1e-6, 1.0e-5 at 1e-7, 4.1e-6 at 1e-8, 5.5e-6 at 1e-9). On the phase
  diagram's networks (d = 1000, m = 10) rtol 1e-6 stopped at a loss target 5 % early in
  time, and rtol 1e-8 agreed with GD's η → 0 limit to a few 1e-6
  (``flowtools.experiments.figures.cnn_phase.flow_check``).
  ``flowtools.integrate.sliding`` integrates the Filippov solution itself (events at the
  kinks, the equivalent control on sliding modes, DOP853 between events): 47 steps with an
  end-point error 3.8e-7 at rtol 1e-6 and 3.5e-8 at 1e-8 on that instance, GD's η → 0
  limit confirming it (``benchmarks/bench_sliding.py``). Use it for end points; dopri5 at
  rtol 1e-6 for a quick look.

**Span coordinates** (``ReluCNN.span``, ``reduce``, ``lift``): the loss depends on each filter
w_{j,r} only through ⟨w_{j,r}, µ⟩ and ⟨w_{j,r}, ξ_i⟩. With Q (d × (n+1)) an orthonormal
basis of S = span{µ, ξ_1, …, ξ_n} (QR, computed once per model) and c_{j,r} = Qᵀw_{j,r},
the loss is L_S(C, V) = L(W, V) for every W (µ, ξ_i ∈ S, so ⟨w, x⟩ = ⟨Qᵀw, Qᵀx⟩), and
∇_W L = Q ∇_C L_S. So GD and the gradient flow on θ_span = (C, V), of length 2m(n+1) + 4m,
*are* GD and the flow on θ: W(t) = W(0) + Q(C(t) − C(0)), V(t) the same (the component of
W(0) orthogonal to S never moves). The equality is exact in exact arithmetic for any θ0
(not only θ0 ∈ S). In floating point GD agrees to round-off; the flow to its tolerance:
the step control's error norm (RMS over θ's entries) is diluted in full coordinates by
the ~2md entries that only carry the fixed part of W, so at one rtol the span run takes
more steps and is more accurate (n = 10, d = 200, m = 3, t ≤ 2, rtol 1e-8: 4.9·10⁴ steps
full, 2.2·10⁵ span; the end point moves by 4.6e-3 full, 5.5e-4 span from rtol 1e-7), and
the stationarity stop ‖∇L‖ ≤ gtol·‖θ‖ is stricter (‖θ_span‖ ≤ ‖θ‖). A loss or gradient
costs O(m·n·(n+1)) instead of O(m·n·d): d = 2·10⁵ trains like d = 1000. The norms of
updates and the nonzero Hessian spectrum are the same; the test error needs the full W
(it depends on W(0)'s component orthogonal to S): lift first.

**Diagnostics** (exact, from any θ): ``decompose`` solves
w_{j,r}(t) = w_{j,r}(0) + j·γ_{j,r}·‖µ‖⁻²·µ + Σ_i ρ_{j,r,i}·‖ξ_i‖⁻²·ξ_i by least squares in
span{µ, ξ_1..ξ_n} (QR) and reports the relative residual (round-off for GD and the flow,
whose updates lie in that span); ``balance_ratio`` is ⟨w_{y_i,r}, ξ_i⟩ / v_{y_i,r,2};
``layer_change_ratio`` is ‖v − v(0)‖/‖W − W(0)‖; ``train_error``/``test_error`` count
y·f(x) ≤ 0. The gradient flow conserves ‖W‖² − ‖V‖² (ReLU is 1-homogeneous), which is
the "balanced" growth of small v0: ``layer_change_ratio`` → 1 when both layers start
small and grow large.

    >>> import numpy as np, flowtools as ft
    >>> from flowtools.models.relu_cnn import PatchData, ReluCNN
    >>> data = PatchData.draw(n=10, d=50, mu_norm=3.0, sigma_p=1.0, seed=0, n_test=100)
    >>> model = ReluCNN(data, width=4)
    >>> theta0 = model.init(sigma0=0.01, v0=0.1, seed=0)
    >>> model.n_params, theta0.shape
    (416, (416,))
    >>> gd = ft.run_gd(model, theta0, lr=0.01, max_iter=200, loss_threshold=0.0)
    >>> bool(gd.loss_final < model.loss(theta0))
    True
    >>> span = model.span()                 # the same network on span{µ, ξ_i}
    >>> span.n_params, bool(abs(span.loss(model.reduce(theta0)) - model.loss(theta0)) < 1e-15)
    (104, True)
    >>> gs = ft.run_gd(span, model.reduce(theta0), lr=0.01, max_iter=200, loss_threshold=0.0)
    >>> bool(np.max(np.abs(model.lift(gs.theta_final, theta0) - gd.theta_final)) < 1e-12)
    True
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from flowtools import _validate as V
from flowtools.errors import FlowtoolsError
from flowtools.models.base import AbstractModel

__all__ = ["PatchData", "ReluCNN", "ReluCNNSpan"]


@dataclass(frozen=True)
class PatchData:
    """Training and test sets of the signal–noise patch model (NumPy arrays).

    Attributes: ``mu`` (d,), ``y`` (n,) ±1, ``xi`` (n, d) noise patches, ``y_test``,
    ``xi_test`` (the test set), ``sigma_p``, ``seed``. Inputs are x_i = (y_i·µ, ξ_i).
    """

    mu: np.ndarray
    y: np.ndarray
    xi: np.ndarray
    y_test: np.ndarray
    xi_test: np.ndarray
    sigma_p: float
    seed: int

    @classmethod
    def draw(cls, n: int, d: int, mu_norm: float, sigma_p: float = 1.0, seed: int = 0, *,
             direction=None, n_test: int = 1000) -> PatchData:
        """Draw n training and ``n_test`` test examples from ``default_rng(seed)``.

        ``direction``: µ's direction (a vector of length d, normalized here; default e₁).
        The draws of y and ξ depend on the seed and the direction only, not on ‖µ‖.
        """
        n, d = V.positive_int(n, "n"), V.integer(d, "d", minimum=2)
        mu_norm = V.positive_float(mu_norm, "‖µ‖ (mu_norm)")
        sigma_p = V.positive_float(sigma_p, "σp (sigma_p)")
        seed = V.nonnegative_int(seed, "seed")
        n_test = V.positive_int(n_test, "n_test")
        if direction is None:
            u = np.zeros(d)
            u[0] = 1.0
        else:
            u = V.real_array(direction, "direction", ndim=(1,))
            if u.shape != (d,) or not np.linalg.norm(u) > 0:
                raise FlowtoolsError(f"direction must be a non-zero vector of length d = {d}, "
                                     f"got shape {u.shape}.")
            u = u / np.linalg.norm(u)
        rng = np.random.default_rng(seed)

        def sample(k):
            y = rng.choice(np.array([-1.0, 1.0]), size=k)
            g = rng.standard_normal((k, d))
            g *= sigma_p
            # covariance σp²(I − uuᵀ): g − (g·u)uᵀ in place, a block of rows at a time
            # (the same bits as the whole product, and one k × d array: 1.6 GB at
            # k = 1000, d = 2·10⁵, not three)
            proj = g @ u
            step = max(1, (1 << 22) // d)
            for a in range(0, k, step):
                g[a:a + step] -= np.outer(proj[a:a + step], u)
            return y, g

        y, xi = sample(n)
        y_test, xi_test = sample(n_test)
        return cls(mu=mu_norm * u, y=y, xi=xi, y_test=y_test, xi_test=xi_test,
                   sigma_p=sigma_p, seed=seed)

    def with_mu_norm(self, mu_norm: float) -> PatchData:
        """The same draw (y, ξ, test set) with ‖µ‖ = ``mu_norm`` (same direction)."""
        mu_norm = V.positive_float(mu_norm, "‖µ‖ (mu_norm)")
        return PatchData(mu=self.mu * (mu_norm / np.linalg.norm(self.mu)), y=self.y,
                         xi=self.xi, y_test=self.y_test, xi_test=self.xi_test,
                         sigma_p=self.sigma_p, seed=self.seed)

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    @property
    def d(self) -> int:
        return int(self.mu.shape[0])


def _inputs(y, mu, xi):
    """Inputs (k, 2, d): patch 1 = y·µ, patch 2 = ξ."""
    return jnp.stack([y[:, None] * mu[None, :], xi], axis=1)


class _PatchNetwork(AbstractModel):
    """What ``ReluCNN`` and ``ReluCNNSpan`` share: the network F on inputs (y·µ, ξ) with
    filters of length ``dim`` and the logistic loss on the training set (µ: (dim,), ξ:
    (n, dim)). Not a model of its own."""

    mu: jax.Array  # (dim,)
    y: jax.Array  # (n,)
    xi: jax.Array  # (n, dim)
    width: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)

    # ---------------------------------------------------------------- the contract
    @property
    def n_params(self) -> int:
        return 2 * self.width * self.dim + 4 * self.width

    def loss(self, theta) -> jax.Array:
        margins = self.y * self.output(theta, self.y, self.xi)
        return jnp.mean(jnp.logaddexp(0.0, -margins))

    # ---------------------------------------------------------------- layout
    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    def split(self, theta):
        """(W, V) of shapes (…, 2, m, dim) and (…, 2, m, 2) from θ of shape (…, p)."""
        theta = jnp.asarray(theta)
        return _split(theta, self.width, self.dim)

    def join(self, W, Vout) -> np.ndarray:
        """θ from (W, V) (the inverse of ``split``)."""
        W, Vout = np.asarray(W, float), np.asarray(Vout, float)
        lead = W.shape[:-3]
        return np.concatenate([W.reshape(*lead, -1), Vout.reshape(*lead, -1)], axis=-1)

    def _names(self, letter: str) -> tuple[str, ...]:
        m, d = self.width, self.dim
        js = ("+1", "-1")
        w = [f"{letter}[{j},{r + 1}]_{k + 1}" for j in js for r in range(m) for k in range(d)]
        v = [f"v[{j},{r + 1},{p}]" for j in js for r in range(m) for p in (1, 2)]
        return tuple(w + v)

    # ---------------------------------------------------------------- network
    def output(self, theta, y, xi) -> jax.Array:
        """f(W, v; x) for the inputs x = (y·µ, ξ) (y: (k,), ξ: (k, dim)) → (k,)."""
        W, Vout = self.split(theta)
        pre = jnp.einsum("kpd,jrd->kjrp", _inputs(y, self.mu, xi), W)
        F = jnp.sum(Vout[None] * jax.nn.relu(pre), axis=(2, 3))  # (k, 2)
        return F[:, 0] - F[:, 1]

    def preactivations(self, theta) -> jax.Array:
        """⟨w_{j,r}, x_i⁽ᵖ⁾⟩ on the training set, shape (n, 2, m, 2)."""
        W, _ = self.split(theta)
        return jnp.einsum("kpd,jrd->kjrp", _inputs(self.y, self.mu, self.xi), W)

    # ---------------------------------------------------------------- diagnostics
    def train_error(self, theta) -> np.ndarray:
        """Fraction of training points with y·f(x) ≤ 0 (θ: (p,) or (B, p))."""
        return self._error(theta, self.y, self.xi)

    def _error(self, theta, y, xi):
        theta = self.check_theta(theta)
        out = _errors(self, jnp.atleast_2d(jnp.asarray(theta)), y, xi)
        return np.asarray(out) if theta.ndim == 2 else float(out[0])

    def kink_crossings(self, thetas) -> np.ndarray:
        """Number of training preactivations ⟨w_{j,r}, x_i⁽ᵖ⁾⟩ whose sign differs between
        consecutive states of ``thetas`` (S, p) — NaN rows (after a run's end) skipped."""
        thetas = np.asarray(thetas, float)
        thetas = thetas[np.all(np.isfinite(thetas), axis=-1)]
        signs = np.sign(np.asarray(jax.vmap(self.preactivations)(jnp.asarray(thetas))))
        return np.sum(signs[1:] != signs[:-1], axis=tuple(range(1, signs.ndim))) \
            if len(thetas) > 1 else np.zeros(0, int)


def _split(theta, m: int, d: int):
    """(W, V) views of θ (…, 2md + 4m) for NumPy or JAX arrays."""
    k = 2 * m * d
    lead = theta.shape[:-1]
    return theta[..., :k].reshape(*lead, 2, m, d), theta[..., k:].reshape(*lead, 2, m, 2)


class ReluCNN(_PatchNetwork):
    """The two-layer ReLU CNN on ``PatchData`` (see the module docstring for F_j and L).

    ``ReluCNN(data, width=m)``; θ of length p = 2·m·d + 4·m. ``span()`` is the same network
    in the coordinates of span{µ, ξ_i} (``reduce``/``lift`` convert states).
    """

    y_test: jax.Array
    xi_test: jax.Array

    def __init__(self, data: PatchData, *, width: int):
        if not isinstance(data, PatchData):
            raise FlowtoolsError("ReluCNN needs a PatchData (PatchData.draw(n, d, mu_norm, "
                                 f"...)), got {type(data).__name__}.")
        self.mu, self.y, self.xi = (jnp.asarray(a, dtype=float) for a in
                                    (data.mu, data.y, data.xi))
        self.y_test, self.xi_test = jnp.asarray(data.y_test, float), jnp.asarray(
            data.xi_test, float)
        self.width = V.positive_int(width, "width m")
        self.dim = data.d

    @property
    def layout(self) -> str:
        m, d = self.width, self.dim
        return (f"θ = (W: 2×{m}×{d} filters w_(j,r), V: 2×{m}×2 output weights v_(j,r,p)), "
                f"j = +1, −1; {self.n_params} parameters")

    @property
    def param_names(self) -> tuple[str, ...]:
        return self._names("w")

    # ---------------------------------------------------------------- span coordinates
    @functools.cached_property
    def _span_qr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(B, Q, R): the d × (n+1) basis B = (µ/‖µ‖², ξ_1/‖ξ_1‖², …) of S = span{µ, ξ_i}
        and its QR factors (Householder, not the normal equations), computed once per
        model; refused when the columns are dependent (n ≥ d)."""
        mu, xi = np.asarray(self.mu), np.asarray(self.xi)
        basis = np.concatenate([(mu / (mu @ mu))[:, None],
                                (xi / np.sum(xi * xi, axis=1)[:, None]).T], axis=1)
        Q, R = np.linalg.qr(basis)
        # the rank from R, whose singular values are the basis's (Q is orthonormal), with
        # matrix_rank's tolerance for the d × (n+1) basis: an (n+1)² SVD, not a d × (n+1) one
        sv = np.linalg.svd(R, compute_uv=False)
        if np.sum(sv > sv.max() * max(basis.shape) * np.finfo(float).eps) < basis.shape[1]:
            raise FlowtoolsError("µ and the noise patches ξ_i are linearly dependent (n ≥ d?):"
                                 " the coefficients γ, ρ are not unique and span{µ, ξ_i} has"
                                 " fewer than n + 1 dimensions; use d > n.")
        return basis, Q, R

    def span(self) -> ReluCNNSpan:
        """The same network in the coordinates c_{j,r} = Qᵀw_{j,r} of S = span{µ, ξ_i}
        (``ReluCNNSpan``; see the module docstring): GD and the flow on it from
        ``reduce(θ0)``, lifted by ``lift(·, θ0)``, are GD and the flow on this model."""
        return ReluCNNSpan(self)

    def reduce(self, theta) -> np.ndarray:
        """θ_span = (C, V) with C = W·Q, i.e. c_{j,r} = Qᵀw_{j,r} (θ: (…, p) → (…, q),
        q = 2m(n+1) + 4m). Drops W's component orthogonal to S (which the loss and its
        gradient do not see): ``lift(reduce(θ), θ) == θ`` to round-off."""
        theta = self._states(theta, self.n_params, "reduce", "θ")
        W, Vout = _split(theta, self.width, self.dim)
        return self.join(W @ self._span_qr[1], Vout)

    def lift(self, theta_span, theta0) -> np.ndarray:
        """The full θ of span coordinates ``theta_span`` (…, q) on the run from ``theta0``
        (…, p; NumPy broadcasting over the leading axes, e.g. θ0 (B, 1, p) for saved states
        (B, S, q)): W = W0 + Q(C − C0) with C0 = reduce(θ0), V from θ_span. Exact: W − W0
        lies in S and its coordinates are C − C0."""
        q = 2 * self.width * (self.n + 1) + 4 * self.width
        theta_span = self._states(theta_span, q, "lift", "θ_span")
        theta0 = self._states(theta0, self.n_params, "lift", "θ0")
        Q = self._span_qr[1]
        C, Vs = _split(theta_span, self.width, self.n + 1)
        W0, _ = _split(theta0, self.width, self.dim)
        W = W0 + (C - W0 @ Q) @ Q.T
        return self.join(W, np.broadcast_to(Vs, W.shape[:-3] + Vs.shape[-3:]))

    def _states(self, theta, size: int, what: str, name: str) -> np.ndarray:
        theta = np.asarray(theta, float)
        if theta.ndim == 0 or theta.shape[-1] != size:
            raise FlowtoolsError(f"{what} takes {name} of length {size} in its last axis "
                                 f"({self.layout}; span coordinates: 2·m·(n+1) + 4·m); "
                                 f"got shape {theta.shape}.")
        return theta

    def init(self, sigma0: float, v0: float, seed=0) -> np.ndarray:
        """θ0: w_{j,r} ~ N(0, σ0² I) from ``default_rng(seed)``, v_{j,r,p} = v0 (the paper's
        protocol). ``seed`` an int → (p,); a sequence of ints → (B, p)."""
        sigma0 = V.positive_float(sigma0, "σ0 (sigma0)")
        v0 = V.real(v0, "v0")
        seeds = V.seeds(seed)
        m, d = self.width, self.dim
        rows = [self.join(sigma0 * np.random.default_rng(s).standard_normal((2, m, d)),
                          np.full((2, m, 2), v0)) for s in np.atleast_1d(seeds)]
        out = np.stack(rows)
        return out if isinstance(seeds, list) else out[0]

    # ---------------------------------------------------------------- diagnostics
    def test_error(self, theta) -> np.ndarray:
        """Fraction of test points with y·f(x) ≤ 0 (θ: (p,) or (B, p))."""
        return self._error(theta, self.y_test, self.xi_test)

    def decompose(self, theta, theta0) -> dict:
        """The exact signal/noise coefficients of W(θ) − W(θ0) (one state or a batch).

        Solves w_{j,r} − w_{j,r}(0) = j·γ_{j,r}·µ/‖µ‖² + Σ_i ρ_{j,r,i}·ξ_i/‖ξ_i‖² by least
        squares in span{µ, ξ_1, …, ξ_n} (QR of the d × (n+1) basis). Returns ``gamma``
        (…, 2, m), ``rho`` (…, 2, m, n) and ``residual``: ‖ΔW − reconstruction‖/‖ΔW‖ (0 when
        ΔW = 0), round-off for any sum of gradient steps (they lie in the span).
        """
        theta, theta0 = np.asarray(theta, float), np.asarray(theta0, float)
        if theta.shape[-1] != self.n_params or theta0.shape[-1] != self.n_params:
            raise FlowtoolsError(f"decompose takes θ and θ0 of length {self.n_params} "
                                 f"({self.layout}); got {theta.shape} and {theta0.shape}.")
        basis, Q, R = self._span_qr
        W, _ = self.split(theta)
        W0, _ = self.split(theta0)
        dW = np.asarray(W) - np.asarray(W0)  # (…, 2, m, d)
        coef = np.linalg.solve(R, np.einsum("dk,...d->...k", Q, dW)[..., None])[..., 0]
        recon = np.einsum("dk,...k->...d", basis, coef)
        js = np.array([1.0, -1.0])[:, None]
        nrm = np.sqrt(np.sum(dW**2, axis=(-3, -2, -1)))
        err = np.sqrt(np.sum((dW - recon) ** 2, axis=(-3, -2, -1)))
        return dict(gamma=coef[..., 0] * js, rho=coef[..., 1:],
                    residual=np.where(nrm > 0, err / np.where(nrm > 0, nrm, 1.0), 0.0))

    def balance_ratio(self, theta) -> np.ndarray:
        """⟨w_{y_i,r}, ξ_i⟩ / v_{y_i,r,2}, shape (…, n, m) (the paper's layer-balance ratio;
        it stays nearly constant in the second stage when v0 is small)."""
        W, Vout = (np.asarray(a) for a in self.split(np.asarray(theta, float)))
        jidx = np.where(np.asarray(self.y) > 0, 0, 1)  # filter family j = y_i
        inner = np.einsum("...jrd,id->...ijr", W, np.asarray(self.xi))
        idx = np.arange(self.n)
        v2 = Vout[..., 1]  # (…, 2, m)
        return inner[..., idx, jidx, :] / v2[..., jidx, :]

    def layer_change_ratio(self, theta, theta0) -> np.ndarray:
        """‖v − v(0)‖ / ‖W − W(0)‖ (Frobenius norms over all filters)."""
        W, Vout = (np.asarray(a) for a in self.split(np.asarray(theta, float)))
        W0, V0 = (np.asarray(a) for a in self.split(np.asarray(theta0, float)))
        dv = np.sqrt(np.sum((Vout - V0) ** 2, axis=(-3, -2, -1)))
        dw = np.sqrt(np.sum((W - W0) ** 2, axis=(-3, -2, -1)))
        return dv / dw

    def imbalance(self, theta) -> np.ndarray:
        """‖W‖² − ‖V‖², conserved by the gradient flow (per filter: ‖w_{j,r}‖² − Σ_p v²)."""
        W, Vout = (np.asarray(a) for a in self.split(np.asarray(theta, float)))
        return np.sum(W**2, axis=(-3, -2, -1)) - np.sum(Vout**2, axis=(-3, -2, -1))

    def assumption_failures(self) -> list[str]:
        return [f"{type(self).__name__} is the ReLU CNN of Shang et al. (2024), not the "
                "two-layer network with a single-neuron target of Zhao, Bai, Zhang: the "
                "theory quantities (γ, μ1, C(θ), c̃, the top eigenspace) are not defined "
                "for it (its own diagnostics: decompose, balance_ratio, "
                "layer_change_ratio, test_error)"]


class ReluCNNSpan(_PatchNetwork):
    """``ReluCNN`` in the coordinates of S = span{µ, ξ_1, …, ξ_n} (the module docstring's
    "Span coordinates"): filters c_{j,r} = Qᵀw_{j,r} ∈ ℝ^{n+1}, data Qᵀµ and ξ_iQ, the same
    output weights V and the same loss. θ_span = (C.ravel(), V.ravel()), C of shape
    (2, m, n+1): q = 2·m·(n+1) + 4·m parameters, whatever d.

    ``ReluCNN.span()`` or ``ReluCNNSpan(data, width=m)`` (a ``PatchData``: the ReluCNN is
    built first); states convert with the full model's ``reduce``/``lift``. Why exact:
    L_S(Qᵀw, V) = L(w, V) for every w, since ⟨w, x⟩ = ⟨Qᵀw, Qᵀx⟩ for x ∈ S; by the chain
    rule ∇_W L = Q ∇_C L_S, so a GD step (or the flow's field) on C is Qᵀ of the step on W,
    and W − W(0) stays Q(C − C(0)). Cost per loss/gradient: O(m·n·(n+1)) against O(m·n·d).
    The training set's preactivations, ``train_error`` and ``kink_crossings`` are those of
    the full model; the test error needs ``lift``.
    """

    full_dim: int = eqx.field(static=True)

    def __init__(self, model: ReluCNN | PatchData, *, width: int | None = None):
        if isinstance(model, PatchData):
            if width is None:
                raise FlowtoolsError("ReluCNNSpan(data, width=m) needs the width m.")
            model = ReluCNN(model, width=width)
        if not isinstance(model, ReluCNN):
            raise FlowtoolsError("ReluCNNSpan needs a ReluCNN (model.span()) or a PatchData "
                                 f"with width=m, got {type(model).__name__}.")
        if width is not None and V.positive_int(width, "width m") != model.width:
            raise FlowtoolsError(f"width {width} differs from the model's {model.width}.")
        Q = model._span_qr[1]
        self.mu = jnp.asarray(np.asarray(model.mu) @ Q)  # Qᵀµ
        self.y = model.y
        self.xi = jnp.asarray(np.asarray(model.xi) @ Q)  # rows Qᵀξ_i
        self.width, self.dim, self.full_dim = model.width, Q.shape[1], model.dim

    @property
    def layout(self) -> str:
        m, k = self.width, self.dim
        return (f"θ_span = (C: 2×{m}×{k} filter coordinates c_(j,r) = Qᵀw_(j,r) in "
                f"span{{µ, ξ_1..ξ_{self.n}}} ⊂ R^{self.full_dim}, V: 2×{m}×2 output weights "
                f"v_(j,r,p)), j = +1, −1; {self.n_params} parameters")

    @property
    def param_names(self) -> tuple[str, ...]:
        return self._names("c")


@eqx.filter_jit
def _errors(model, thetas, y, xi):
    return jax.vmap(lambda th: jnp.mean(_margins(model, th, y, xi) <= 0))(thetas)


def _margins(model, theta, y, xi):
    """y·f(x) on the inputs (y·µ, ξ) — ``output``'s network with the signal patch's
    preactivation y_k·⟨w, µ⟩ computed once per filter instead of on k stacked copies of µ
    (no k × 2 × d input: 3.2 GB and ~2× the time for 1000 test points at d = 2·10⁵). The
    same numbers up to round-off; an error count can differ from ``output``'s only where a
    margin is within round-off of 0."""
    W, Vout = model.split(theta)
    signal = y[:, None, None] * (W @ model.mu)[None]  # (k, 2, m)
    noise = jnp.einsum("kd,jrd->kjr", xi, W)
    pre = jnp.stack([signal, noise], axis=-1)  # (k, 2, m, 2), as output's
    F = jnp.sum(Vout[None] * jax.nn.relu(pre), axis=(2, 3))
    return y * (F[:, 0] - F[:, 1])

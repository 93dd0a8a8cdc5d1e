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
  507 steps at rtol 1e-6, 4.5·10⁴ at 1e-8) and the flow itself is accurate only to about
  the tolerance's effect (~1e-4 between rtol 1e-6 and 1e-7). On the phase diagram's
  networks (d = 1000, m = 10) rtol 1e-6 stopped at a loss target 5 % early in time, and
  rtol 1e-8 agreed with GD's η → 0 limit (``flowtools.experiments.cnn_phase.flow_check``):
  use rtol ≤ 1e-8 for end points, 1e-6 for a quick look.

**Diagnostics** (exact, from any θ): ``decompose`` solves
w_{j,r}(t) = w_{j,r}(0) + j·γ_{j,r}·‖µ‖⁻²·µ + Σ_i ρ_{j,r,i}·‖ξ_i‖⁻²·ξ_i by least squares in
span{µ, ξ_1..ξ_n} (QR) and reports the relative residual (round-off for GD and the flow,
whose updates lie in that span); ``balance_ratio`` is ⟨w_{y_i,r}, ξ_i⟩ / v_{y_i,r,2};
``layer_change_ratio`` is ‖v − v(0)‖/‖W − W(0)‖; ``train_error``/``test_error`` count
y·f(x) ≤ 0. The gradient flow conserves ‖W‖² − ‖V‖² (ReLU is 1-homogeneous), which is
the "balanced" growth of small v0: ``layer_change_ratio`` → 1 when both layers start
small and grow large.

    >>> import flowtools as ft
    >>> from flowtools.models.relu_cnn import PatchData, ReluCNN
    >>> data = PatchData.draw(n=10, d=50, mu_norm=3.0, sigma_p=1.0, seed=0, n_test=100)
    >>> model = ReluCNN(data, width=4)
    >>> theta0 = model.init(sigma0=0.01, v0=0.1, seed=0)
    >>> model.n_params, theta0.shape
    (416, (416,))
    >>> gd = ft.run_gd(model, theta0, lr=0.01, max_iter=200, loss_threshold=0.0)
    >>> bool(gd.loss_final < model.loss(theta0))
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from flowtools import _validate as V
from flowtools.errors import FlowtoolsError
from flowtools.models.base import AbstractModel

__all__ = ["PatchData", "ReluCNN"]


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
            g = sigma_p * rng.standard_normal((k, d))
            return y, g - np.outer(g @ u, u)  # covariance σp²(I − uuᵀ)

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


class ReluCNN(AbstractModel):
    """The two-layer ReLU CNN on ``PatchData`` (see the module docstring for F_j and L).

    ``ReluCNN(data, width=m)``; θ of length p = 2·m·d + 4·m.
    """

    mu: jax.Array  # (d,)
    y: jax.Array  # (n,)
    xi: jax.Array  # (n, d)
    y_test: jax.Array
    xi_test: jax.Array
    width: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)

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

    @property
    def layout(self) -> str:
        m, d = self.width, self.dim
        return (f"θ = (W: 2×{m}×{d} filters w_(j,r), V: 2×{m}×2 output weights v_(j,r,p)), "
                f"j = +1, −1; {self.n_params} parameters")

    @property
    def param_names(self) -> tuple[str, ...]:
        m, d = self.width, self.dim
        js = ("+1", "-1")
        w = [f"w[{j},{r + 1}]_{k + 1}" for j in js for r in range(m) for k in range(d)]
        v = [f"v[{j},{r + 1},{p}]" for j in js for r in range(m) for p in (1, 2)]
        return tuple(w + v)

    def split(self, theta):
        """(W, V) of shapes (…, 2, m, d) and (…, 2, m, 2) from θ of shape (…, p)."""
        theta = jnp.asarray(theta)
        m, d = self.width, self.dim
        k = 2 * m * d
        lead = theta.shape[:-1]
        return (theta[..., :k].reshape(*lead, 2, m, d),
                theta[..., k:].reshape(*lead, 2, m, 2))

    def join(self, W, Vout) -> np.ndarray:
        """θ from (W, V) (the inverse of ``split``)."""
        W, Vout = np.asarray(W, float), np.asarray(Vout, float)
        lead = W.shape[:-3]
        return np.concatenate([W.reshape(*lead, -1), Vout.reshape(*lead, -1)], axis=-1)

    # ---------------------------------------------------------------- network
    def output(self, theta, y, xi) -> jax.Array:
        """f(W, v; x) for the inputs x = (y·µ, ξ) (y: (k,), ξ: (k, d)) → (k,)."""
        W, Vout = self.split(theta)
        pre = jnp.einsum("kpd,jrd->kjrp", _inputs(y, self.mu, xi), W)
        F = jnp.sum(Vout[None] * jax.nn.relu(pre), axis=(2, 3))  # (k, 2)
        return F[:, 0] - F[:, 1]

    def preactivations(self, theta) -> jax.Array:
        """⟨w_{j,r}, x_i⁽ᵖ⁾⟩ on the training set, shape (n, 2, m, 2)."""
        W, _ = self.split(theta)
        return jnp.einsum("kpd,jrd->kjrp", _inputs(self.y, self.mu, self.xi), W)

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
    def train_error(self, theta) -> np.ndarray:
        """Fraction of training points with y·f(x) ≤ 0 (θ: (p,) or (B, p))."""
        return self._error(theta, self.y, self.xi)

    def test_error(self, theta) -> np.ndarray:
        """Fraction of test points with y·f(x) ≤ 0 (θ: (p,) or (B, p))."""
        return self._error(theta, self.y_test, self.xi_test)

    def _error(self, theta, y, xi):
        theta = self.check_theta(theta)
        out = _errors(self, jnp.atleast_2d(jnp.asarray(theta)), y, xi)
        return np.asarray(out) if theta.ndim == 2 else float(out[0])

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
        mu, xi = np.asarray(self.mu), np.asarray(self.xi)
        basis = np.concatenate([(mu / (mu @ mu))[:, None],
                                (xi / np.sum(xi * xi, axis=1)[:, None]).T], axis=1)
        if np.linalg.matrix_rank(basis) < basis.shape[1]:
            raise FlowtoolsError("µ and the noise patches ξ_i are linearly dependent (n ≥ d?):"
                                 " the coefficients γ, ρ are not unique; use d > n.")
        Q, R = np.linalg.qr(basis)
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

    def kink_crossings(self, thetas) -> np.ndarray:
        """Number of training preactivations ⟨w_{j,r}, x_i⁽ᵖ⁾⟩ whose sign differs between
        consecutive states of ``thetas`` (S, p) — NaN rows (after a run's end) skipped."""
        thetas = np.asarray(thetas, float)
        thetas = thetas[np.all(np.isfinite(thetas), axis=-1)]
        signs = np.sign(np.asarray(jax.vmap(self.preactivations)(jnp.asarray(thetas))))
        return np.sum(signs[1:] != signs[:-1], axis=tuple(range(1, signs.ndim))) \
            if len(thetas) > 1 else np.zeros(0, int)

    def assumption_failures(self) -> list[str]:
        return [f"{type(self).__name__} is the ReLU CNN of Shang et al. (2024), not the "
                "two-layer network with a single-neuron target of Zhao, Bai, Zhang: the "
                "theory quantities (γ, μ1, C(θ), c̃, the top eigenspace) are not defined "
                "for it (its own diagnostics: decompose, balance_ratio, "
                "layer_change_ratio, test_error)"]


@eqx.filter_jit
def _errors(model, thetas, y, xi):
    return jax.vmap(lambda th: jnp.mean(y * model.output(th, y, xi) <= 0))(thetas)

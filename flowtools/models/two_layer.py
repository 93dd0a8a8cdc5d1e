"""A problem = a two-layer network + a dataset: the loss, its gradient field and Hessian,
the data vector γ, the top eigenvalue μ1 of −∇²ℓ(0), the imbalance C(θ), initializers.

    ℓ(θ) = ½ Σ_i w_i (f_θ(x_i) − y_i)²      (a sum, as in the paper; ``loss_convention``
                                             "mean": ½·(1/Σ_i w_i) Σ_i, which scales γ's
                                             Hessian, μ1 and every rate by 1/n)
    γ    = Σ_i w_i y_i x̃_i                   (x̃ = (x, 1) with a bias)
    −∇²ℓ(0) = blockdiag(D_1, …, D_m),  D_k = σ'(0)·[[0, γᵀ], [γ, 0]]
    μ1   = |σ'(0)|·‖γ‖,   C_k(θ) = a_k‖γ‖ + sign(σ'(0))·w_kᵀγ

(Zhao, Bai, Zhang, section 5.1 and Appendix A.1.) ``Problem`` is the paper's family of
``flowtools.models.AbstractModel``: an ``equinox.Module`` whose arrays are pytree leaves,
so one compiled solver serves every dataset of one shape. It stores the target that
labelled its data (``target``; None for data given as arrays).

Per-sample weights w_i ≥ 0 (``weights``; None, the default, is w_i = 1 and the program of
the plain sums) enter every sum over samples. ``padded(n_rows)`` appends rows of weight 0
(x = 0, y = 0): the same ℓ, ∇ℓ, ∇²ℓ, γ and μ1 for either loss convention and any σ, with
the bias and θ layout kept, so every dataset of at most ``n_rows`` points (same
activation, width, bias, d, convention and target) runs one compiled program. ``n`` counts
the samples of non-zero weight (the real ones).

    >>> import flowtools as ft
    >>> pb = ft.example1()                      # tanh, m = 2, bias, target tanh(x + 1)
    >>> theta0 = pb.init_gaussian(1e-8, seed=0)
    >>> float(pb.mu1) > 0
    True
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from flowtools import _validate as V
from flowtools.activations import Activation, get_activation
from flowtools.data import SAMPLERS, Dataset, SampleShape, augment
from flowtools.errors import FlowtoolsError
from flowtools.models import network
from flowtools.models.base import AbstractModel
from flowtools.models.network import SingleNeuron


class Problem(AbstractModel, SampleShape):
    """Network (activation, width, bias) + data (X, y) with ℓ = ½Σ w_i(f_θ(x_i) − y_i)².

    Build one with ``Problem.create`` (validates the input), ``make_problem`` or
    ``example1``.
    """

    X: jax.Array  # (rows, d) raw inputs
    y: jax.Array  # (rows,)
    activation: Activation = eqx.field(static=True)
    width: int = eqx.field(static=True)
    bias: bool = eqx.field(static=True)
    target: SingleNeuron | None = eqx.field(static=True, default=None)
    loss_convention: str = eqx.field(static=True, default="sum")
    #: per-sample weights (rows,), ≥ 0 (a traced leaf); None: all 1 (the plain sums)
    weights: jax.Array | None = None

    # ---------------------------------------------------------------- construction
    @classmethod
    def create(cls, data: Dataset, *, activation="tanh", width: int = 2, bias=True,
               target: SingleNeuron | None = None, loss_convention: str = "sum",
               weights=None):
        """Validate and build a problem from a ``Dataset`` (``target``: the single neuron
        that labelled the data, if any — used by branches and generalization errors;
        ``loss_convention``: "sum", ℓ = ½Σ_i w_i r_i² as the paper states, or "mean",
        ℓ = ½·(1/Σ_i w_i)Σ_i w_i r_i²; ``weights``: w_i ≥ 0 per sample, None for all 1)."""
        if not isinstance(data, Dataset):
            data = Dataset(*data)
        if target is not None and not isinstance(target, SingleNeuron):
            raise FlowtoolsError(f"target must be a SingleNeuron, got {type(target).__name__}.")
        if target is not None and target.dim != data.dim:
            raise FlowtoolsError(f"the target takes inputs of dimension {target.dim}, the "
                                 f"data have {data.dim}.")
        check_size(data.n, V.width(width), data.dim, V.flag(bias, "bias"))
        return cls(
            X=jnp.asarray(data.X),
            y=jnp.asarray(data.y),
            activation=get_activation(activation),
            width=V.width(width),
            bias=V.flag(bias, "bias"),
            target=target,
            loss_convention=V.choice(loss_convention, "loss_convention", LOSS_CONVENTIONS),
            weights=None if weights is None else jnp.asarray(_check_weights(weights, data.n)),
        )

    # ---------------------------------------------------------------- shapes (dim:
    # SampleShape)
    @property
    def n(self) -> int:
        """The number of samples: rows of non-zero weight (padding rows do not count).
        Read from the weights' values: not inside a traced function of a weighted
        problem."""
        if self.weights is None:
            return self.X.shape[0]
        return int(np.count_nonzero(np.asarray(self.weights)))

    @property
    def block(self) -> int:
        """Parameters per neuron, d̃ + 1."""
        return self.dim + self.bias + 1

    @property
    def n_params(self) -> int:
        return network.n_params(self.width, self.dim, self.bias)

    @property
    def Xa(self) -> jax.Array:
        """The (augmented) inputs x̃_i as rows, (rows, d̃) (padding rows included)."""
        return augment(self.X, self.bias)

    @property
    def layout(self) -> str:
        return (f"width {self.width}, d = {self.dim}, bias = {self.bias}: layout "
                "(a_1, w_1, …, a_m, w_m)")

    @property
    def param_names(self) -> tuple[str, ...]:
        """a_k, w_k (w_k,j for d > 1), b_k in the paper's layout."""
        names = []
        for k in range(1, self.width + 1):
            names.append(f"a{k}")
            if self.dim == 1:
                names.append(f"w{k}")
            else:
                names += [f"w{k},{j}" for j in range(1, self.dim + 1)]
            if self.bias:
                names.append(f"b{k}")
        return tuple(names)

    def unpack(self, theta):
        """θ ↦ (a (…, m), W (…, m, d̃))."""
        return network.unpack(jnp.asarray(theta), self.width)

    def samples(self, what: str) -> Dataset:
        """The samples (X, y) of non-zero weight, for computations that take the data
        themselves (``what`` names the caller in the error): a problem whose weights are
        not all 0 or 1 is refused — its samples do not count equally."""
        X, y = np.asarray(self.X, dtype=float), np.asarray(self.y, dtype=float)
        if self.weights is None:
            return Dataset(X, y)
        w = np.asarray(self.weights, dtype=float)
        if not np.all((w == 0) | (w == 1)):
            raise FlowtoolsError(f"{what} takes unweighted samples; this problem has sample "
                                 "weights other than 0 and 1.")
        return Dataset(X[w == 1], y[w == 1])

    def padded(self, n_rows: int) -> Problem:
        """The same ℓ, ∇ℓ and ∇²ℓ (γ, μ1, C, n) on ``n_rows`` data rows, so that every
        dataset with at most ``n_rows`` points shares one compiled program: the extra rows
        have x = 0, y = 0 and weight 0, so they add exact zeros to every sum over samples
        — for either loss convention and any σ, with the bias, θ layout and target
        kept."""
        n_rows = V.positive_int(n_rows, "n_rows")
        rows = self.X.shape[0]
        if n_rows < rows:
            raise FlowtoolsError(f"n_rows = {n_rows} is below the problem's "
                                 f"{'n' if rows == self.n else 'row count'} = {rows}.")
        check_size(n_rows, self.width, self.dim, self.bias)  # before the zero rows
        X, y, w = np.zeros((n_rows, self.dim)), np.zeros(n_rows), np.zeros(n_rows)
        X[:rows], y[:rows] = np.asarray(self.X), np.asarray(self.y)
        w[:rows] = 1.0 if self.weights is None else np.asarray(self.weights)
        return dataclasses.replace(self, X=jnp.asarray(X), y=jnp.asarray(y),
                                   weights=jnp.asarray(w))

    # ---------------------------------------------------------------- loss and field
    def predict(self, theta, X=None):
        """f_θ(x) on the rows of X (default: the training inputs)."""
        Xa = self.Xa if X is None else augment(jnp.asarray(X), self.bias)
        return network.forward(self.activation, theta, Xa, self.width)

    def residual(self, theta):
        """r_i = f_θ(x_i) − y_i on every data row (padding rows included: their weight is
        0)."""
        return self.predict(theta) - self.y

    @property
    def loss_weight(self) -> float:
        """The factor in front of ½Σ_i w_i r_i²: 1 for the "sum" convention, 1/Σ_i w_i
        (1/n without weights) for "mean"."""
        if self.loss_convention == "sum":
            return 1.0
        return 1.0 / (self.n if self.weights is None else float(np.sum(self.weights)))

    def loss(self, theta):
        """ℓ(θ) = ½ Σ_i w_i (f_θ(x_i) − y_i)² (times 1/Σ_i w_i for
        ``loss_convention="mean"``)."""
        r = self.residual(theta)
        if self.weights is None:
            return (0.5 * self.loss_weight) * jnp.dot(r, r)
        w = self.weights  # traced: one program for every weight vector of one length
        scale = 1.0 if self.loss_convention == "sum" else 1.0 / jnp.sum(w)
        return (0.5 * scale) * jnp.dot(w * r, r)

    # ---------------------------------------------------------------- theory
    @property
    def gamma(self) -> np.ndarray:
        """γ = Σ_i w_i y_i x̃_i."""
        wy = self.y if self.weights is None else self.weights * self.y
        return np.asarray(wy @ self.Xa)

    def assumption_failures(self) -> list[str]:
        """Theorem 1's assumptions that fail for this problem (empty if all hold): the one
        check of ``flowtools.symbolic.assumptions``, shared with ``check_assumptions``."""
        # imported here: the symbolic layer builds on the models (and loads sympy)
        from flowtools.symbolic.assumptions import theorem1_failures

        return theorem1_failures(self.activation, self.gamma)

    @property
    def dsigma0(self) -> float:
        return float(self.activation.dsigma0)

    @property
    def mu1(self) -> float:
        """μ1 = |σ'(0)|·‖γ‖, the top eigenvalue of −∇²ℓ(0) (times 1/Σ_i w_i, 1/n without
        weights, for the mean loss)."""
        self.require_theory()
        return self.loss_weight * abs(self.dsigma0) * float(np.linalg.norm(self.gamma))

    @property
    def mu2(self) -> float:
        """The second largest eigenvalue of −∇²ℓ(0): 0 if d̃ ≥ 2, else −μ1 (d̃ = 1)."""
        mu1 = self.mu1
        return 0.0 if self.block - 1 >= 2 else -mu1

    @property
    def top_eigvecs(self) -> np.ndarray:
        """Orthonormal basis V1 (p, m) of the μ1-eigenspace: one column per neuron,
        (‖γ‖, sign(σ'(0))·γ)/(√2‖γ‖) in that neuron's block."""
        self.require_theory()
        V.memory(V.nbytes(self.width, self.n_params), f"the top eigenvectors of a width-"
                 f"{self.width:,} network (a dense {self.n_params:,}×{self.width:,} basis)",
                 "use a narrower network")
        g = self.gamma
        ng = np.linalg.norm(g)
        v = np.concatenate([[ng], np.sign(self.dsigma0) * g]) / (np.sqrt(2) * ng)
        basis = np.zeros((self.width, self.width, self.block))
        basis[np.arange(self.width), np.arange(self.width)] = v
        return basis.reshape(self.width, -1).T

    def imbalance(self, theta) -> np.ndarray:
        """C(θ) = (C_1, …, C_m), C_k = a_k‖γ‖ + sign(σ'(0))·w_kᵀγ; shape (…, m)."""
        self.require_theory()
        g = self.gamma
        a, W = network.unpack(np.asarray(theta, dtype=float), self.width)
        return a * np.linalg.norm(g) + np.sign(self.dsigma0) * (W @ g)

    def ratio(self, theta) -> np.ndarray:
        """c = C_1/C_2 (m = 2; ±inf where C_2 = 0)."""
        self._require_width2("c")
        C = self.imbalance(theta)
        with np.errstate(divide="ignore"):
            return C[..., 0] / C[..., 1]

    def ratio_tilde(self, theta) -> np.ndarray:
        """c̃ = min(|c|, |1/c|) (m = 2; 0 where C_1 or C_2 is 0)."""
        c = np.abs(self.ratio(theta))
        with np.errstate(divide="ignore"):
            return np.minimum(c, 1.0 / c)

    def _require_width2(self, what):
        if self.width != 2:
            raise FlowtoolsError(f"{what} is defined for width m = 2, this has {self.width}.")

    # ---------------------------------------------------------------- initializers
    def with_ratios(self, theta, ratios) -> np.ndarray:
        """Rescale neurons 2…m so that C_k/C_1 = ratios[k−2] (the paper's Figures 2, 5:
        neuron k's parameters θ_k ↦ s_k·θ_k, which scales C_k by s_k).

        The whole neuron is rescaled, including its part outside the top eigenspace: when
        a random C_k is small, s_k is large (up to ~1e4 at width 1000), so ‖θ‖ can exceed
        the nominal initial scale by that factor."""
        theta = self.check_theta(theta).copy()
        ratios = np.broadcast_to(np.asarray(ratios, dtype=float), (self.width - 1,))
        C = self.imbalance(theta)
        if np.any(C == 0):
            raise FlowtoolsError("C(θ) has a zero entry: that neuron cannot be rescaled.")
        first = np.ones(C.shape[:-1] + (1,))
        scales = np.concatenate([first, ratios * C[..., :1] / C[..., 1:]], -1)
        blocks = theta.reshape(theta.shape[:-1] + (self.width, self.block))
        return (blocks * scales[..., None]).reshape(theta.shape)

    def init_ratio(self, c: float, scale: float, seed=0) -> np.ndarray:
        """Gaussian θ0 of the given scale with the second neuron rescaled so that
        C_1/C_2 = c (m = 2; the paper's Figure 2 protocol)."""
        self._require_width2("the ratio c")
        c = V.real(c, "the ratio c = C1/C2")
        if c == 0:
            raise FlowtoolsError("the ratio c = C1/C2 must be non-zero (C1 = 0 leaves the "
                                 "first neuron at the origin), got 0.")
        return self.with_ratios(self.init_gaussian(scale, seed), 1.0 / c)

    def init_c_tilde(self, c_tilde, scale: float, seed=0) -> np.ndarray:
        """Gaussian θ0 of the given scale with c = C1/C2 = c̃ for each c̃ in [0, 1] (m = 2;
        shape (len(c_tilde), p), one seed for all). c̃ > 0 is ``init_ratio(c̃)``; c̃ = 0 —
        which ``init_ratio`` cannot make — removes the first neuron's component along its
        top eigenvector v1, so C1 = 0 to round-off (|C1| ~ 1e-16‖θ1‖‖γ‖: not exactly) and
        C2 is the draw's. Under the α → 0 limit the first neuron then never escapes."""
        self._require_width2("c̃")
        cts = V.real_array(c_tilde, "c̃", ndim=(0, 1))
        cts = np.atleast_1d(np.asarray(cts, dtype=float))
        if np.any((cts < 0) | (cts > 1)):
            raise FlowtoolsError(f"c̃ = min(|c|, 1/|c|) lies in [0, 1], got {cts.min():g}…"
                                 f"{cts.max():g}; use init_ratio for a ratio c outside it.")
        out = []
        for c in cts:
            if c > 0:
                out.append(self.init_ratio(float(c), scale, seed=seed))
            else:
                th = np.asarray(self.init_gaussian(scale, seed), dtype=float)
                v1 = np.asarray(self.top_eigvecs)[:, 0]
                out.append(th - (th @ v1) * v1)
        return np.stack(out)


LOSS_CONVENTIONS = ("sum", "mean")


def _check_weights(weights, n: int) -> np.ndarray:
    """Sample weights as float64 of shape (n,), finite, ≥ 0, not all 0."""
    w = V.real_array(weights, "the sample weights", ndim=(1,))
    if w.shape != (n,):
        raise FlowtoolsError(f"the sample weights need shape ({n},), one per sample; got "
                             f"{w.shape}.")
    if np.any(w < 0) or not np.any(w > 0):
        raise FlowtoolsError("the sample weights must be ≥ 0 and not all 0.")
    return np.asarray(w, dtype=float)


#: arrays of n × m numbers that one evaluation of ℓ and ∇ℓ holds at once (pre-activations,
#: σ, σ' and a cotangent), for the memory estimate of ``evaluation_bytes``
EVAL_COPIES = 4


def evaluation_bytes(n: int, width: int, dim: int = 1, bias: bool = True) -> int:
    """Estimated bytes of a problem's data (X, y: n × (d̃ + 1)) and of one evaluation of ℓ
    and ∇ℓ on n inputs (``EVAL_COPIES`` arrays of n × m, a few parameter vectors), from the
    declared sizes alone. Also the cost of evaluating the network on n test inputs.

        >>> evaluation_bytes(6, 2)
        912
    """
    d_aug = int(dim) + bool(bias)
    return (V.nbytes(n, d_aug + 1) + V.nbytes(EVAL_COPIES, n, width)
            + V.nbytes(8, network.n_params(int(width), int(dim), bool(bias))))


def check_size(n: int, width: int, dim: int = 1, bias: bool = True) -> None:
    """Refuse a problem whose data and one evaluation would not fit in memory
    (``flowtools._validate.memory``), before its data are drawn."""
    V.memory(evaluation_bytes(n, width, dim, bias),
             f"a problem with n = {n:,} samples, width m = {width:,} and d = {dim} (its data "
             f"and one evaluation of ℓ and ∇ℓ: about {EVAL_COPIES}·n·m numbers)",
             "use fewer samples or a narrower network")


def default_target(dim: int = 1, bias: bool = True) -> SingleNeuron:
    """The paper's target: a_0 = 1, w_0 = 1 (all ones in ℝ^d), b_0 = 1 with a bias —
    tanh(x + 1) for d = 1 (Example 1), tanh(1ᵀx + 1) in Appendix B."""
    return SingleNeuron("tanh", 1.0, np.ones(dim), 1.0 if bias else None)


def make_problem(
    n: int = 6,
    *,
    sampling: str = "grid",
    activation="tanh",
    width: int = 2,
    dim: int = 1,
    bias: bool = True,
    target=None,
    seed: int = 0,
    interval=(-2.0, 2.0),
    loss_convention: str = "sum",
) -> Problem:
    """A single-neuron-target problem; the default is the paper's Example 1.

    Target default: a_0 = 1, w_0 = 1 (all ones in ℝ^d), b_0 = 1 if ``bias`` — that is,
    tanh(x + 1) for d = 1 (Example 1) and tanh(1ᵀx + 1) (Appendix B).
    """
    sampling = V.choice(sampling, "sampling", sorted(SAMPLERS))
    dim, bias, seed = V.dim(dim), V.flag(bias, "bias"), V.nonnegative_int(seed, "the data seed")
    width = V.width(width)
    n = V.positive_int(n, "the sample size n")
    check_size(n, width, dim, bias)  # before the data are drawn
    if target is None:
        target = default_target(dim, bias)
    if sampling == "grid":
        if dim != 1:
            raise FlowtoolsError("'grid' sampling is for d = 1; use 'uniform' or 'gaussian'.")
        data = SAMPLERS["grid"](n, target, interval=interval)
    elif sampling == "uniform":
        data = SAMPLERS["uniform"](n, target, dim=dim, low=interval[0], high=interval[1], seed=seed)
    else:
        data = SAMPLERS["gaussian"](n, target, dim=dim, seed=seed)
    return Problem.create(data, activation=activation, width=width, bias=bias,
                          target=target if isinstance(target, SingleNeuron) else None,
                          loss_convention=loss_convention)


def example1(n: int = 6, *, sampling: str = "grid", seed: int = 0,
             loss_convention: str = "sum") -> Problem:
    """The paper's Example 1: f_θ(x) = a_1 tanh(w_1x + b_1) + a_2 tanh(w_2x + b_2),
    target tanh(x + 1), n points evenly spaced on [−2, 2] (or standard Gaussian);
    ``loss_convention`` "sum" (the paper's ½Σ) or "mean" (½·(1/n)Σ)."""
    return make_problem(n, sampling=sampling, seed=seed, loss_convention=loss_convention)

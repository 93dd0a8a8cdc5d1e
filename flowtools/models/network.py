"""Two-layer network f_θ(x) = Σ_k a_k σ(w_kᵀx) and single-neuron targets a_0 σ(w_0ᵀx).

Parameter layout (the paper's): θ = (a_1, w_1, …, a_m, w_m) ∈ ℝ^{m(d̃+1)}, where
d̃ = d + 1 with a bias (the bias is the last entry of w_k, acting on the augmented input
x̃ = (x, 1)) and d̃ = d without. ``unpack`` turns θ into a (…, m) and W (…, m, d̃).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from flowtools import _validate as V
from flowtools.activations import Activation, get_activation
from flowtools.errors import FlowtoolsError


def n_params(width: int, dim: int, bias: bool) -> int:
    """Number of parameters m(d̃ + 1)."""
    return width * (dim + bias + 1)


def unpack(theta, width: int):
    """θ = (a_1, w_1, …, a_m, w_m) ↦ (a, W) with a (…, m) and W (…, m, d̃)."""
    blocks = theta.reshape(theta.shape[:-1] + (width, -1))
    return blocks[..., 0], blocks[..., 1:]


def pack(a, W):
    """Inverse of ``unpack``."""
    blocks = jnp.concatenate([a[..., None], W], axis=-1)
    return blocks.reshape(blocks.shape[:-2] + (-1,))


def forward(activation: Activation, theta, Xa, width: int):
    """f_θ(x̃_i) for the rows of the (augmented) input matrix Xa (n, d̃)."""
    a, W = unpack(theta, width)
    return activation(Xa @ W.T) @ a


@dataclass(frozen=True)
class SingleNeuron:
    """Target f*(x) = a_0 σ(w_0ᵀx + b_0) (b_0 = 0 when ``b0`` is None).

    Example 1 of the paper: ``SingleNeuron("tanh", 1.0, [1.0], 1.0)``, i.e. tanh(x + 1).
    """

    activation: Activation | str
    a0: float
    w0: tuple[float, ...]
    b0: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "activation", get_activation(self.activation))
        w0 = V.real_array(self.w0, "the target's w0", ndim=(0, 1))
        if w0.size == 0:
            raise FlowtoolsError("the target's w0 is empty: give one weight per input.")
        object.__setattr__(self, "w0", tuple(float(v) for v in np.atleast_1d(w0)))
        object.__setattr__(self, "a0", V.real(self.a0, "the target's a0"))
        if self.b0 is not None:
            object.__setattr__(self, "b0", V.real(self.b0, "the target's b0"))

    @property
    def dim(self) -> int:
        return len(self.w0)

    def __call__(self, X) -> np.ndarray:
        """f*(x) on the rows of X (n, d), in NumPy float64."""
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.dim:
            raise FlowtoolsError(
                f"target expects inputs of shape (n, {self.dim}), got {X.shape}."
            )
        z = X @ np.asarray(self.w0) + (self.b0 or 0.0)
        return self.a0 * np.asarray(self.activation(jnp.asarray(z)), dtype=float)

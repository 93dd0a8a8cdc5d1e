"""Datasets {(x_i, y_i)}: evenly spaced, Gaussian, uniform on a cube, or given arrays.

Each sampler is reproducible from a seed (NumPy's ``default_rng``). Labels come from a
target (``y_i = f*(x_i)``) or are given.

    >>> from flowtools.data import grid
    >>> from flowtools.models.network import SingleNeuron
    >>> ds = grid(6, SingleNeuron("tanh", 1.0, [1.0], 1.0))   # the paper's Example 1
    >>> ds.X.ravel()
    array([-2. , -1.2, -0.4,  0.4,  1.2,  2. ])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from flowtools import _validate as V
from flowtools.errors import FlowtoolsError


class SampleShape:
    """``n`` (samples) and ``dim`` (input dimension d, without a bias) of anything that
    holds its inputs as ``X`` of shape (n, d): datasets and the two-layer problem."""

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def dim(self) -> int:
        return self.X.shape[1]


@dataclass(frozen=True, eq=False)
class Dataset(SampleShape):
    """Inputs X (n, d) and labels y (n,), float64, finite."""

    X: np.ndarray
    y: np.ndarray

    def __post_init__(self):
        X, y = V.samples(V.real_array(self.X, "X", finite=False),
                         V.real_array(self.y, "y", finite=False))
        for name, arr in (("X", X), ("y", y)):
            bad = ~np.isfinite(arr)
            if bad.any():
                idx = np.argwhere(bad)[0].tolist()
                raise FlowtoolsError(
                    f"{name} contains {int(bad.sum())} NaN or infinite value(s), the "
                    f"first at index {idx}: remove or replace them."
                )
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)


def _labels(X: np.ndarray, target: Callable | np.ndarray) -> np.ndarray:
    return np.asarray(target(X) if callable(target) else target, dtype=float)


def _check_n(n) -> int:
    return V.positive_int(n, "the sample size n")


def grid(n: int, target: Callable, *, interval=(-2.0, 2.0)) -> Dataset:
    """n points evenly spaced on ``interval`` (d = 1), labelled by ``target``."""
    n = _check_n(n)
    lo, hi = (V.real(v, "interval") for v in interval)
    if not lo < hi:
        raise FlowtoolsError(f"the interval needs lo < hi, got {tuple(interval)}.")
    X = np.linspace(lo, hi, n)[:, None]
    return Dataset(X, _labels(X, target))


def gaussian(n: int, target: Callable, *, dim: int = 1, seed: int = 0) -> Dataset:
    """n i.i.d. standard Gaussian points in ℝ^dim, labelled by ``target``."""
    n, dim = _check_n(n), V.dim(dim)
    X = np.random.default_rng(V.nonnegative_int(seed, "the data seed")).standard_normal((n, dim))
    return Dataset(X, _labels(X, target))


def uniform(n: int, target: Callable, *, dim: int = 1, low=-2.0, high=2.0, seed=0):
    """n i.i.d. points uniform on the cube [low, high]^dim, labelled by ``target``."""
    n, dim = _check_n(n), V.dim(dim)
    low, high = V.real(low, "low"), V.real(high, "high")
    if not low < high:
        raise FlowtoolsError(f"the cube [low, high] needs low < high, got [{low}, {high}].")
    X = np.random.default_rng(V.nonnegative_int(seed, "the data seed")).uniform(low, high,
                                                                              (n, dim))
    return Dataset(X, _labels(X, target))


SAMPLERS = {"grid": grid, "gaussian": gaussian, "uniform": uniform}


def augment(X, bias: bool):
    """x ↦ x̃ = (x, 1) row-wise when ``bias`` (works on NumPy and JAX arrays)."""
    if not bias:
        return X
    xp = jnp if isinstance(X, jnp.ndarray) and not isinstance(X, np.ndarray) else np
    return xp.concatenate([X, xp.ones(X.shape[:-1] + (1,), X.dtype)], axis=-1)

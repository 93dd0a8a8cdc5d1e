"""The model interface: what the engine (flow, GD, limit, compare) needs from any model.

A model is an ``equinox.Module`` (its arrays are pytree leaves, so one compiled solver
serves every dataset of one shape) that subclasses ``AbstractModel`` and supplies

1. ``n_params`` — the length p of the flat parameter vector θ ∈ ℝ^p;
2. ``loss(θ)`` — a JAX-traceable scalar loss.

Everything else has a default: ``grad``, ``field`` = −∇ℓ and ``hessian`` by autodiff
(a model with structure may override ``hessian``), ``param_names`` (θ1 … θp; used in
plots), ``check_theta`` (shape and finiteness of user input), ``init_gaussian`` (the
paper's N(0, scale²I) protocol), and the theory hooks ``assumption_failures`` /
``require_theory``: by default a model has no theory, and theory quantities (γ, μ1, C(θ),
the top eigenspace) refuse it with a clear error. ``flowtools.models.Problem``, the
paper's two-layer network, is the family that has them.

``LossModel`` wraps any JAX loss — a function of (θ, data), or an equinox model plus a
loss of (model, data) — so that a user gets the flow, GD, ``Trajectory``, stopping rules,
saving and comparison without writing an integrator:

    >>> import jax.numpy as jnp, numpy as np, flowtools as ft
    >>> def least_squares(theta, data):          # ℓ(θ) = ½‖Xθ − y‖²
    ...     X, y = data
    ...     r = X @ theta - y
    ...     return 0.5 * jnp.dot(r, r)
    >>> X = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]]); y = np.array([1.0, 2.0, 3.0])
    >>> model = ft.LossModel(least_squares, (X, y), n_params=2)
    >>> traj = ft.solve_flow(model, np.zeros(2) + 0.1)
    >>> np.round(traj.theta_final, 6).tolist(), ft.Status(int(traj.status)).name
    ([1.0, 1.0], 'CONVERGED')
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from flowtools import _validate as V
from flowtools.errors import AssumptionError, FlowtoolsError


class AbstractModel(eqx.Module):
    """A loss ℓ: ℝ^p → ℝ on a flat parameter vector θ (see the module docstring).

    Subclasses implement ``n_params`` and ``loss``; the other methods are final."""

    # ---------------------------------------------------------------- the contract
    @property
    @abc.abstractmethod
    def n_params(self) -> int:
        """p, the number of parameters."""

    @abc.abstractmethod
    def loss(self, theta) -> jax.Array:
        """ℓ(θ) for θ of shape (p,): a JAX-traceable scalar."""

    # ---------------------------------------------------------------- optional hooks
    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of θ's entries for plots and saved data (θ1 … θp by default)."""
        return tuple(f"θ{i + 1}" for i in range(self.n_params))

    @property
    def layout(self) -> str:
        """One line describing θ's layout (used in error messages)."""
        return f"{self.n_params} parameters"

    def assumption_failures(self) -> list[str]:
        """The assumptions of the paper's theory that fail for this model (empty if all
        hold). A model outside the two-layer family has no theory: one failure says so."""
        return [f"{type(self).__name__} is not the paper's two-layer network with a "
                "single-neuron target: the theory quantities (γ, μ1, C(θ), c̃, the top "
                "eigenspace) are defined for that family (flowtools.models.Problem) only"]

    def require_theory(self) -> None:
        """Raise ``AssumptionError`` if the theory's assumptions fail for this model."""
        fails = self.assumption_failures()
        if fails:
            raise AssumptionError(
                "this quantity rests on the assumptions of the paper's Theorem 1, which "
                "fail here:\n  " + "\n  ".join(fails)
                + "\n(The flow and gradient descent still run; only the "
                "theory-dependent quantities are undefined.)"
            )

    # ---------------------------------------------------------------- derived (final)
    def grad(self, theta) -> jax.Array:
        """∇ℓ(θ)."""
        return jax.grad(self.loss)(jnp.asarray(theta, dtype=float))

    def field(self, theta) -> jax.Array:
        """The gradient-flow field −∇ℓ(θ)."""
        return -self.grad(theta)

    def hessian(self, theta) -> jax.Array:
        """∇²ℓ(θ) (dense, p × p); one compiled program per model structure and θ shape
        (an eager ``jax.hessian`` traces the loss anew on every call: ~85 ms against
        ~0.3 ms for Example 1)."""
        return _hessian(self, jnp.asarray(theta, dtype=float))

    def hvp(self, theta, v) -> jax.Array:
        """∇²ℓ(θ)·v by forward-over-reverse autodiff (no p × p matrix)."""
        return jax.jvp(self.grad, (jnp.asarray(theta, dtype=float),),
                       (jnp.asarray(v, dtype=float),))[1]

    def check_theta(self, theta, *, single: str | None = None) -> np.ndarray:
        """θ as a float64 array of shape (p,) or (B, p); a clear error otherwise. With
        ``single`` (the caller's name), only one state of shape (p,) is accepted."""
        theta = V.real_array(theta, "θ", finite=False)
        if single is not None and theta.ndim != 1:
            raise FlowtoolsError(f"{single} takes one state θ of shape ({self.n_params},); "
                                 f"got shape {theta.shape}.")
        if theta.ndim not in (1, 2) or theta.shape[-1] != self.n_params:
            raise FlowtoolsError(
                f"θ must have shape ({self.n_params},) or (batch, {self.n_params}) for this "
                f"model ({self.layout}); got shape {theta.shape}."
            )
        if not np.all(np.isfinite(theta)):
            raise FlowtoolsError("θ contains NaN or infinite entries.")
        return theta

    def init_gaussian(self, scale: float, seed=0) -> np.ndarray:
        """θ0 ~ N(0, scale²·I) (the paper's protocol) from NumPy's ``default_rng(seed)``.

        ``seed`` may be an int (shape (p,)) or a sequence of ints (shape (B, p)).
        """
        scale = V.positive_float(scale, "the initial scale")
        seed = V.seeds(seed)
        out = np.stack([scale * np.random.default_rng(s).standard_normal(self.n_params)
                        for s in np.atleast_1d(seed)])
        return out if isinstance(seed, list) else out[0]


@eqx.filter_jit
def _hessian(model, theta):
    return jax.hessian(model.loss)(theta)


def check_model(model, what: str) -> AbstractModel:
    """``model`` if it is a flowtools model; a clear error naming ``what`` otherwise."""
    if not isinstance(model, AbstractModel):
        raise FlowtoolsError(
            f"{what} needs a flowtools model (flowtools.models.AbstractModel: a Problem, "
            f"a LossModel wrapping a JAX loss, …), got {type(model).__name__}.")
    return model


class LossModel(AbstractModel):
    """Any JAX loss as a flowtools model: ℓ(θ) = ``fn(θ, data)``.

    Args:
        fn: ``fn(theta, data)`` → scalar, JAX-traceable, θ of shape (p,). It is a static
            part of the model: define it once (at module level) and pass what varies
            through ``data``, so that one compilation serves every dataset of one shape.
        data: any pytree of arrays (the traced part; None if the loss has no data).
        n_params: p.
        names: optional names of θ's entries (p strings).

    Build one from an equinox model with ``LossModel.from_equinox``.
    """

    fn: Callable = eqx.field(static=True)
    data: Any
    size: int = eqx.field(static=True)
    names: tuple[str, ...] | None = eqx.field(static=True)

    def __init__(self, fn: Callable, data=None, *, n_params: int, names=None):
        if not callable(fn):
            raise FlowtoolsError(f"the loss must be a callable fn(theta, data), got "
                                 f"{type(fn).__name__}.")
        self.fn = fn
        self.data = jax.tree_util.tree_map(
            lambda a: jnp.asarray(a) if isinstance(a, np.ndarray | jax.Array | float | int)
            else a, data)
        self.size = V.positive_int(n_params, "n_params")
        if names is not None:
            names = tuple(str(n) for n in names)
            if len(names) != self.size:
                raise FlowtoolsError(f"names has {len(names)} entries for {self.size} "
                                     "parameters: give one name per parameter.")
        self.names = names
        try:
            out = jax.eval_shape(fn, jax.ShapeDtypeStruct((self.size,), jnp.float64), self.data)
        except Exception as err:  # noqa: BLE001 — the user's function: say where it failed
            raise FlowtoolsError(f"the loss fn(theta, data) cannot be traced with θ of shape "
                                 f"({self.size},): {type(err).__name__}: {err}") from None
        if not (hasattr(out, "shape") and out.shape == ()):
            raise FlowtoolsError(f"the loss must return a scalar; fn(theta, data) returned "
                                 f"{getattr(out, 'shape', type(out).__name__)}.")

    @property
    def n_params(self) -> int:
        return self.size

    def loss(self, theta) -> jax.Array:
        return self.fn(theta, self.data)

    @property
    def param_names(self) -> tuple[str, ...]:
        return self.names if self.names is not None else super().param_names

    @classmethod
    def from_equinox(cls, module: eqx.Module, loss: Callable, data=None):
        """(``LossModel``, θ0) for an equinox model: θ is the flat vector of its inexact
        array leaves (``jax.flatten_util.ravel_pytree``) and ℓ(θ) = ``loss(model_θ, data)``;
        θ0 is the model's own parameters. ``to_module`` turns a θ back into the model.

            >>> import equinox as eqx, jax, jax.numpy as jnp, flowtools as ft
            >>> mlp = eqx.nn.MLP(1, 1, 3, 2, activation=jnp.tanh, key=jax.random.key(0))
            >>> def mse(m, data):
            ...     X, y = data
            ...     return 0.5 * jnp.sum((jax.vmap(m)(X)[:, 0] - y) ** 2)
            >>> model, theta0 = ft.LossModel.from_equinox(
            ...     mlp, mse, (jnp.linspace(-1, 1, 5)[:, None], jnp.zeros(5)))
            >>> model.n_params, theta0.shape
            (22, (22,))
        """
        from jax.flatten_util import ravel_pytree

        params, static = eqx.partition(module, eqx.is_inexact_array)
        flat, unravel = ravel_pytree(params)
        fn = _EquinoxLoss(loss, unravel, static)
        return cls(fn, data, n_params=int(flat.size)), np.asarray(flat, dtype=float)

    def to_module(self, theta):
        """The equinox model with parameters θ (for a model built by ``from_equinox``)."""
        if not isinstance(self.fn, _EquinoxLoss):
            raise FlowtoolsError("to_module is for a LossModel built by from_equinox.")
        return eqx.combine(self.fn.unravel(jnp.asarray(theta)), self.fn.static)


class _EquinoxLoss:
    """ℓ(θ, data) = loss(combine(unravel(θ), static), data), hashable by identity."""

    def __init__(self, loss, unravel, static):
        self.loss, self.unravel, self.static = loss, unravel, static

    def __call__(self, theta, data):
        return self.loss(eqx.combine(self.unravel(theta), self.static), data)

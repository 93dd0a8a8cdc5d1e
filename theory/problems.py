"""The problems the theorems are checked on.

Networks (gradient fields −∇ℓ, Theorems 1, 2, 4 and, through them, 3):

* ``example1``  the paper's Example 1: tanh, m = 2, d = 1 with a bias, n = 6 grid on
  [−2, 2], target tanh(x + 1). μ2 = 0 (d̃ = 2).
* ``d3``        Appendix B's setting: tanh, m = 2, d = 3 with a bias, n = 10 uniform on
  [−2, 2]³, target tanh(1ᵀx + 1). μ2 = 0.
* ``wide``      m = 5, σ(x) = x/(1 + x²) (the paper's Figure 5 activation), n = 6 grid,
  d = 1 with a bias, target tanh(x + 1). μ2 = 0.
* ``nobias``    tanh, m = 2, d = 1 *without* a bias, n = 6 grid, target tanh(x): d̃ = 1, so
  μ2 = −μ1 (Theorem 3's rate with μ2 < 0 on a network).

Non-gradient fields (Theorem 3 allows any C² field with F(0) = 0, DF(0) diagonalizable,
μ1 > 0): ``field+``, ``field0``, ``field-`` on ℝ⁴,

    F(x) = J x + B(x, x) − ½‖x‖² x,   J = R·diag(1, 1, μ2, −3/2)·R⁻¹,

with R a fixed non-orthogonal rational matrix (so J is not symmetric: F is no gradient),
B a fixed non-symmetric quadratic coupling and μ2 = 1/2, 0, −1. The cubic term keeps the
trajectories bounded. Each field is given twice — as a JAX function (``PolyField``, an
``equinox.Module`` whose J is an array leaf, so one compilation serves all three) and as a
sympy expression for the symbolic assumption checks — and the two are cross-checked.

Each ``Case`` carries a direction θ scaled so that its μ1-eigenspace coordinates s = W1ᵀθ
have ‖s‖ = 1 (then e^{μ1 t}‖s‖ ≥ 1 for t ≥ 0) and θ has a component off that eigenspace.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

import flowtools as ft
from flowtools.limiting import FlowSystem

# ---------------------------------------------------------------------- the fields
_R = sp.Matrix([[1, sp.Rational(1, 2), 0, sp.Rational(1, 3)],
                [0, 1, sp.Rational(1, 2), 0],
                [sp.Rational(1, 4), 0, 1, sp.Rational(1, 2)],
                [0, sp.Rational(-1, 3), 0, 1]])
FIELD_MU2 = {"field+": sp.Rational(1, 2), "field0": sp.S.Zero, "field-": sp.S(-1)}
FIELD_P = 4


def field_jacobian_exact(mu2) -> sp.Matrix:
    """J = R diag(1, 1, μ2, −3/2) R⁻¹ in exact rationals."""
    return _R * sp.diag(1, 1, sp.S(mu2), sp.Rational(-3, 2)) * _R.inv()


def field_sympy(mu2):
    """(x symbols, F(x) as a sympy column) for the non-gradient field with this μ2."""
    xs = sp.symbols("x1:5", real=True)
    X = sp.Matrix(xs)
    B = sp.Matrix([xs[1] * xs[2], -xs[0] * xs[2], xs[0] * xs[1] - xs[3] ** 2, xs[0] * xs[3]])
    r2 = sum(v**2 for v in xs)
    F = field_jacobian_exact(mu2) * X + sp.Rational(1, 2) * B - sp.Rational(1, 2) * r2 * X
    return xs, F


class PolyField(eqx.Module):
    """F(x) = J x + ½ B(x, x) − ½‖x‖² x on ℝ⁴ (JAX; J an array leaf)."""

    J: jax.Array

    def __call__(self, x):
        b = jnp.stack([x[1] * x[2], -x[0] * x[2], x[0] * x[1] - x[3] ** 2, x[0] * x[3]])
        return self.J @ x + 0.5 * b - 0.5 * jnp.dot(x, x) * x


# ---------------------------------------------------------------------- cases
@dataclass(frozen=True, eq=False)
class Case:
    """A problem with its direction θ: a network ``problem`` or a ``field`` on ℝ^p."""

    name: str
    description: str
    problem: ft.Problem | None = None
    field: object = None
    mu2_exact: object = None
    seed: int = 0
    ratios: tuple = ()
    meta: dict = dataclasses.field(default_factory=dict)

    @property
    def is_network(self) -> bool:
        return self.problem is not None

    @cached_property
    def system(self) -> FlowSystem:
        """The field with its linearization (raises AssumptionError if μ1 ≤ 0 etc.)."""
        if self.is_network:
            return FlowSystem.from_problem(self.problem)
        return FlowSystem.from_field(self.field, FIELD_P)

    @property
    def p(self) -> int:
        return self.problem.n_params if self.is_network else FIELD_P

    def direction(self, seed: int | None = None) -> np.ndarray:
        """θ with ‖W1ᵀθ‖ = 1 and a generic component off the μ1-eigenspace; for networks
        the imbalance ratios C_k/C_1 are set to ``ratios`` (m = 2: c = C1/C2 = 1/ratios)."""
        seed = self.seed if seed is None else seed
        rng = np.random.default_rng(seed)
        if self.is_network:
            pb = self.problem
            th = pb.init_gaussian(1.0, seed)
            if self.ratios:
                th = pb.with_ratios(th, self.ratios)
        else:
            th = rng.standard_normal(self.p)
        s = self.system.coords(th)
        return th / np.linalg.norm(s)

    def kernel_vector(self, seed: int = 1) -> np.ndarray:
        """A unit vector k with W1ᵀk = 0 (C(θ + k) = C(θ) for networks)."""
        sysm = self.system
        g = np.random.default_rng(1000 + seed).standard_normal(self.p)
        k = g - sysm.V1 @ (sysm.W1.T @ g)  # spectral complement of the μ1-eigenspace
        return k / np.linalg.norm(k)

    def project(self, theta) -> np.ndarray:
        """The spectral projection V1 W1ᵀθ onto the μ1-eigenspace (orthogonal for networks)."""
        sysm = self.system
        return sysm.V1 @ (sysm.W1.T @ np.asarray(theta))


def network_cases(activation=None) -> dict:
    """The network problems; ``activation`` replaces every network's σ (to see the checks
    react to an activation that breaks the hypotheses, e.g. "x**3" or "1 + tanh(x)")."""
    if activation is not None:
        out = {}
        for name, case in network_cases().items():
            pb = case.problem
            new = ft.Problem.create((np.asarray(pb.X), np.asarray(pb.y)),
                                    activation=activation, width=pb.width, bias=pb.bias)
            out[name] = Case(f"{name}[σ={activation}]",
                             f"{case.description}; σ replaced by {activation}",
                             problem=new, ratios=case.ratios)
        return out
    ex1 = ft.example1()
    return {
        "example1": Case("example1", "Example 1: tanh, m=2, d=1 + bias, n=6 grid, c=C1/C2=0.5",
                         problem=ex1, ratios=(2.0,)),
        "d3": Case("d3", "Appendix B: tanh, m=2, d=3 + bias, n=10 uniform on [-2,2]^3, c=0.5",
                   problem=ft.make_problem(10, sampling="uniform", dim=3, seed=0),
                   ratios=(2.0,)),
        "wide": Case("wide", "m=5, σ=x/(1+x²), d=1 + bias, n=6 grid, C_k/C_1=1.5+0.1(k-2)",
                     problem=ft.make_problem(6, activation="rational", width=5),
                     ratios=tuple(1.5 + 0.1 * np.arange(4))),
        "nobias": Case("nobias", "tanh, m=2, d=1 without bias, n=6 grid, target tanh(x), "
                       "c=0.5 (μ2 = −μ1)", problem=ft.make_problem(6, bias=False),
                       ratios=(2.0,)),
    }


def field_cases() -> dict:
    out = {}
    for name, mu2 in FIELD_MU2.items():
        J = np.array(field_jacobian_exact(mu2).evalf(20).tolist(), dtype=float)
        out[name] = Case(name, f"non-gradient field on R^4, J = R diag(1,1,{mu2},-3/2) R^-1 "
                         "+ quadratic + cubic terms", field=PolyField(jnp.asarray(J)),
                         mu2_exact=mu2)
    return out


def all_cases(activation=None) -> dict:
    return {**network_cases(activation), **field_cases()}


def broken_cases() -> dict:
    """Inputs that violate the hypotheses, to show the checks can fail."""
    return {
        "cubic": Case("cubic", "σ(x) = x³ (σ'(0) = 0), otherwise Example 1",
                      problem=ft.make_problem(6, activation="x**3"), ratios=(2.0,)),
        "shifted": Case("shifted", "σ(x) = 1 + tanh(x) (σ(0) ≠ 0), otherwise Example 1",
                        problem=ft.make_problem(6, activation="1 + tanh(x)"), ratios=(2.0,)),
    }

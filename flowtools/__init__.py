"""flowtools: gradient-flow dynamics of two-layer networks under small initialization.

One entry function per task (see each module's docstring for the mathematics):

- ``example1``, ``make_problem``, ``Problem``   — problems (network + data)
- ``solve_flow``                                 — gradient flow (diffrax; scipy cross-check)
- ``run_gd``                                     — gradient descent, the paper's protocol
- ``origin_hessian``, ``check_assumptions``      — symbolic −∇²ℓ(0) and Theorem 1's assumptions
- ``limit``, ``limit_endpoint``, ``aligned_times`` — h(θ,t) = lim_{α→0} φ(αθ, t + log(1/α)/μ1)
- ``compare``, ``branch_map``, ``classify``      — flow versus GD; target-set branches
"""

from flowtools import _config  # noqa: F401  (float64 on import)
from flowtools.activations import Activation, get_activation
from flowtools.branches import classify, generalization_error
from flowtools.compare import branch_map, compare
from flowtools.data import Dataset
from flowtools.descent import run_gd
from flowtools.errors import AssumptionError, FlowtoolsError
from flowtools.flow import solve_flow
from flowtools.limit import LimitResult, aligned_times, limit, limit_endpoint, limit_field
from flowtools.network import SingleNeuron
from flowtools.problem import Problem, example1, make_problem
from flowtools.symbolic import OriginHessian, check_assumptions, origin_hessian
from flowtools.trajectory import Status, Trajectory

__all__ = [
    "Activation",
    "AssumptionError",
    "Dataset",
    "FlowtoolsError",
    "LimitResult",
    "OriginHessian",
    "Problem",
    "SingleNeuron",
    "Status",
    "Trajectory",
    "aligned_times",
    "branch_map",
    "check_assumptions",
    "classify",
    "compare",
    "example1",
    "generalization_error",
    "get_activation",
    "limit",
    "limit_endpoint",
    "limit_field",
    "make_problem",
    "origin_hessian",
    "run_gd",
    "solve_flow",
]
__version__ = "0.1.0"

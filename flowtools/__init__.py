"""flowtools: gradient-flow dynamics of two-layer networks under small initialization."""

from flowtools import _config  # noqa: F401  (float64 on import)
from flowtools.activations import Activation, get_activation
from flowtools.data import Dataset
from flowtools.descent import run_gd
from flowtools.errors import AssumptionError, FlowtoolsError
from flowtools.flow import solve_flow
from flowtools.network import SingleNeuron
from flowtools.problem import Problem, example1, make_problem
from flowtools.trajectory import Status, Trajectory

__all__ = [
    "Activation",
    "AssumptionError",
    "Dataset",
    "FlowtoolsError",
    "Problem",
    "SingleNeuron",
    "Status",
    "Trajectory",
    "example1",
    "get_activation",
    "make_problem",
    "run_gd",
    "solve_flow",
]
__version__ = "0.1.0"

"""flowtools: gradient-flow dynamics of small networks under small initialization.

The public API, one entry function per task (each module's docstring has the mathematics):

- models: ``AbstractModel`` (the interface), ``LossModel`` (any JAX loss), ``Problem``,
  ``make_problem``, ``example1`` (the paper's two-layer network), ``SingleNeuron``,
  ``Dataset``, ``Activation``, ``get_activation``; ``ReluCNN``, ``PatchData`` (the ReLU CNN
  of Shang et al. 2024 on the signal–noise patch data)
- ``solve_flow`` (gradient flow: diffrax, scipy cross-check), ``run_gd`` (gradient descent,
  the paper's protocol); both return a ``Trajectory`` with a ``Status``
- ``origin_hessian``, ``OriginHessian``, ``check_assumptions``: symbolic −∇²ℓ(0)
- ``limit``, ``limit_field``, ``limit_endpoint``, ``aligned_times``, ``LimitResult``,
  ``LimitEndpoint``, ``FlowSystem``: h(θ,t) = lim_{α→0} φ(αθ, t + log(1/α)/μ1)
- ``compare``, ``Comparison``, ``align``, ``escape_rate``, ``stability_edge``,
  ``modified_field``, ``Regime``: GD as a discretization of the flow
- ``classify``, ``generalization_error``: target-set branches; ``branch_map``: the branch
  of the flow's and GD's end points over c̃ (``flowtools.thresholds``: every branch of Q* and
  the optimistic and separation sample sizes; ``flowtools.separation``: a numerical test of
  separation)
- ``FlowtoolsError``, ``AssumptionError``

Subpackages are named after their concept (``models``, ``integrate``, ``symbolic``,
``limiting``, ``discretization``, ``experiments``, ``sweep``); import from them for the
rest.
"""

from flowtools import _config  # noqa: F401  (float64 on import)
from flowtools.activations import Activation, get_activation
from flowtools.branches import branch_map, classify, generalization_error
from flowtools.data import Dataset
from flowtools.descent import run_gd
from flowtools.discretization import (
    Comparison,
    GDStabilityWarning,
    align,
    compare,
    escape_rate,
    modified_field,
    stability_edge,
)
from flowtools.errors import AssumptionError, FlowtoolsError
from flowtools.flow import solve_flow
from flowtools.limiting import (
    FlowSystem,
    LimitEndpoint,
    LimitResult,
    aligned_times,
    limit,
    limit_endpoint,
    limit_field,
)
from flowtools.models import (
    AbstractModel,
    LossModel,
    PatchData,
    Problem,
    ReluCNN,
    SingleNeuron,
    example1,
    make_problem,
)
from flowtools.status import Regime, Status
from flowtools.symbolic import OriginHessian, check_assumptions, origin_hessian
from flowtools.trajectory import Trajectory

__all__ = [
    "AbstractModel",
    "Activation",
    "AssumptionError",
    "Comparison",
    "Dataset",
    "FlowSystem",
    "FlowtoolsError",
    "GDStabilityWarning",
    "LimitEndpoint",
    "LimitResult",
    "LossModel",
    "OriginHessian",
    "PatchData",
    "Problem",
    "Regime",
    "ReluCNN",
    "SingleNeuron",
    "Status",
    "Trajectory",
    "align",
    "aligned_times",
    "branch_map",
    "check_assumptions",
    "classify",
    "compare",
    "escape_rate",
    "example1",
    "generalization_error",
    "get_activation",
    "limit",
    "limit_endpoint",
    "limit_field",
    "make_problem",
    "modified_field",
    "origin_hessian",
    "run_gd",
    "solve_flow",
    "stability_edge",
]
__version__ = "0.1.0"

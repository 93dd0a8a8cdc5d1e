"""Gradient descent as a discretization of the flow, one concept per module:

- ``modified_flow``: the modified (backward-error) flows GD follows to higher order;
- ``escape``: GD's escape rate from the origin and escape times;
- ``stability``: the stability edge 2/λ_max beyond which GD cannot follow the flow;
- ``alignment``: GD and the order-0/1/2 flows at the same flow times t = kη;
- ``comparison``: the gaps, their fitted orders and the ``Regime`` of each learning rate.
"""

from flowtools.discretization.alignment import Alignment, align
from flowtools.discretization.comparison import (
    DEFAULT_LRS,
    Comparison,
    compare,
    fit_order,
)
from flowtools.discretization.escape import escape_rate, escape_time, linearized_gd_rate
from flowtools.discretization.modified_flow import modified_field, modified_loss
from flowtools.discretization.stability import (
    GDStabilityWarning,
    StabilityEdge,
    lam_max,
    stability_edge,
)

__all__ = ["DEFAULT_LRS", "Alignment", "Comparison", "GDStabilityWarning",
           "StabilityEdge", "align", "compare", "escape_rate", "escape_time", "fit_order",
           "lam_max", "linearized_gd_rate", "modified_field", "modified_loss",
           "stability_edge"]

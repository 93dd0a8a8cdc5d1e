"""Gradient descent as a discretization of the flow: modified flows, escape rates, the
stability edge, alignment and the comparison of the two."""

from flowtools.discretization.core import (
    DEFAULT_LRS,
    PAPER_LRS,
    Alignment,
    Comparison,
    GDStabilityWarning,
    StabilityEdge,
    align,
    compare,
    escape_rate,
    escape_time,
    fit_order,
    linearized_gd_rate,
    modified_field,
    modified_loss,
    stability_edge,
)

__all__ = ["DEFAULT_LRS", "PAPER_LRS", "Alignment", "Comparison",
           "GDStabilityWarning", "StabilityEdge", "align", "compare",
           "escape_rate", "escape_time", "fit_order", "linearized_gd_rate", "modified_field",
           "modified_loss", "stability_edge"]

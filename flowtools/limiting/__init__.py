"""The small-initialization limit h(θ, t) = lim_{α→0} φ(αθ, t + log(1/α)/μ1)."""

from flowtools.limiting import manifold
from flowtools.limiting.core import (
    METHODS,
    REF_RATIO,
    RTOL_ORDER,
    FlowSystem,
    LimitEndpoint,
    LimitResult,
    aligned_times,
    compare_methods,
    exponent_candidates,
    limit,
    limit_endpoint,
    limit_field,
)

__all__ = ["METHODS", "REF_RATIO", "RTOL_ORDER", "FlowSystem", "LimitEndpoint", "LimitResult",
           "aligned_times", "compare_methods", "exponent_candidates", "limit", "limit_endpoint",
           "limit_field", "manifold"]

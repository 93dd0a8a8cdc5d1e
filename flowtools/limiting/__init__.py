"""The small-initialization limit h(θ, t) = lim_{α→0} φ(αθ, t + log(1/α)/μ1).

Theorem 1 (paper, section 5.1) and its general form Theorem 3 (Appendix A.1): for a field
F with F(0) = 0, J = DF(0) diagonalizable and top eigenvalue μ1 > 0, the limit exists,
depends on θ only through its μ1-eigenspace coordinates s = W1ᵀθ, and the convergence is
at least as fast as α^{(μ1−μ2)/(2μ1−μ2)}. Corollary 2: h(sθ, t) = h(θ, t + log(s)/μ1);
Proposition 1: dh/dt = F(h).

One concept per module:

* ``system``: ``FlowSystem`` — the field, its linearization and top eigenspace, its flow;
* ``results``: ``LimitResult`` (with ``ErrorParts``, ``ManifoldSeries``), ``LimitEndpoint``;
* ``reference``: the measured error estimates (a reference solve at rtol/``REF_RATIO``);
* ``extrapolation``: the extrapolation method (generalized Richardson,
  ``exponent_candidates``);
* ``manifold``: the manifold method (the parametrization series and its continuation);
* ``entry``: ``limit`` (any model), ``limit_field`` (any field), ``compare_methods``;
* ``endpoint``: ``limit_endpoint``, lim_{t→∞} h (Theorem 2);
* ``alignment``: ``aligned_times``, the limiting time axis of flows and GD runs.
"""

from flowtools.limiting import manifold
from flowtools.limiting.alignment import aligned_times
from flowtools.limiting.endpoint import limit_endpoint
from flowtools.limiting.entry import METHODS, compare_methods, limit, limit_field
from flowtools.limiting.extrapolation import exponent_candidates
from flowtools.limiting.reference import REF_RATIO, RTOL_ORDER
from flowtools.limiting.results import ErrorParts, LimitEndpoint, LimitResult, ManifoldSeries
from flowtools.limiting.system import FlowSystem

__all__ = ["METHODS", "REF_RATIO", "RTOL_ORDER", "ErrorParts", "FlowSystem", "LimitEndpoint",
           "LimitResult", "ManifoldSeries", "aligned_times", "compare_methods",
           "exponent_candidates", "limit", "limit_endpoint", "limit_field", "manifold"]

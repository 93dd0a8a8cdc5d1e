"""Symbolic origin Hessian −∇²ℓ(0), its spectrum, Theorem 1's assumptions, Taylor terms.

Modules, one concept each: ``exact`` (user data as exact numbers or symbols, the data
moments), ``derivation`` (one sample, two neurons, σ undefined; sums over samples),
``spectrum`` (the two blocks' arrow eigenpairs, merged and sorted), ``hessian``
(``OriginHessian`` and its JAX export), ``taylor`` (Taylor terms of the field),
``assumptions`` (Theorem 1's and 2's checks).
"""

from flowtools.symbolic.assumptions import (
    AssumptionReport,
    Check,
    check_assumptions,
    gamma_check,
    sigma_checks,
    theorem1_failures,
)
from flowtools.symbolic.derivation import SIGMA, sigma_symbol
from flowtools.symbolic.exact import N_SYM
from flowtools.symbolic.hessian import OriginHessian, origin_hessian
from flowtools.symbolic.taylor import FieldTaylorTerm, field_taylor_term, third_order_term

__all__ = ["N_SYM", "SIGMA", "AssumptionReport", "Check", "FieldTaylorTerm", "OriginHessian",
           "check_assumptions", "field_taylor_term", "gamma_check", "origin_hessian",
           "sigma_checks", "sigma_symbol", "theorem1_failures", "third_order_term"]

"""Symbolic origin Hessian −∇²ℓ(0), its spectrum, Theorem 1's assumptions, Taylor terms."""

from flowtools.symbolic.assumptions import (
    AssumptionReport,
    Check,
    check_assumptions,
    gamma_check,
    sigma_checks,
    theorem1_failures,
)
from flowtools.symbolic.core import (
    N_SYM,
    SIGMA,
    FieldTaylorTerm,
    OriginHessian,
    field_taylor_term,
    origin_hessian,
    sigma_symbol,
    third_order_term,
)

__all__ = ["N_SYM", "SIGMA", "AssumptionReport", "Check", "FieldTaylorTerm", "OriginHessian",
           "check_assumptions", "field_taylor_term", "gamma_check", "origin_hessian",
           "sigma_checks", "sigma_symbol", "theorem1_failures", "third_order_term"]

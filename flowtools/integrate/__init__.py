"""The one integrator core of flowtools (``integrate``) and its validated options."""

from flowtools.integrate.coords import from_lognorm, lognorm_field, to_lognorm
from flowtools.integrate.core import integrate
from flowtools.integrate.options import (
    EXPLICIT,
    IMPLICIT,
    SOLVERS,
    STAGES,
    IntegratorOptions,
)

__all__ = ["EXPLICIT", "IMPLICIT", "SOLVERS", "STAGES", "IntegratorOptions",
           "from_lognorm", "integrate", "lognorm_field", "to_lognorm"]

"""Shang, Meng, Cao & Zou (2024): benign/harmful overfitting phase diagram in v0 × ‖µ‖₂.

A thin call of ``flowtools.experiments.figures.cnn_phase`` (the same as
``flowtools reproduce cnn-phase``): the model is ``flowtools.models.ReluCNN`` on
``PatchData``, trained by ``flowtools.run_gd`` at the paper's protocol (η = 0.01, T = 200)
and to a small training loss, its cells computed on the sweep engine (family
``relu_cnn``; zarr stores under OUT/cnn_phase_store/, resumed when run again); see that
module for the grid, the fitted constants and the exponents.

    python -m demos.shang2024_phase_transition [--out out/demos/] [--quick]

Writes cnn_phase.png, cnn_phase.nc, cnn_law.png, cnn_law.nc and cnn_phase_claims.json
under --out.
"""

from __future__ import annotations

from flowtools.experiments import parser, prepare
from flowtools.experiments.figures.cnn_phase import main as cnn_phase_main


def main(argv=None):
    ap = parser(__doc__, quick_help="the CI-sized grids (~2.5 min)")
    args = ap.parse_args(argv)
    out, _ = prepare(args)
    return cnn_phase_main(quick=args.quick, out=out)


if __name__ == "__main__":
    main()

"""Reproduce a figure of the papers: compute it, write its PNG and its data (netCDF).

  flowtools reproduce FIGURE [--quick] [--out OUT]

Figures (a registry of the experiments layer's figure functions):

  cnn-phase   Shang, Meng, Cao & Zou (2024): test error of the fully trainable two-layer
              ReLU CNN over v0 × ‖µ‖ for GD at the paper's protocol and trained to a small
              loss, the benign edges, the fitted constants and the exponents in v0, d/n and
              m with error bars from seeds, ‖Δv‖/‖ΔW‖ and the layer-balance ratio
              (flowtools.experiments.cnn_phase). Full mode ≈ 9 min on a 2-core CPU
              (8 min 57 s measured beside another job), --quick ≈ 40 s.

OUT (default out/reproduce) is checked (created, writable) before any work; files are
written atomically: OUT/<figure>.png and OUT/<figure>.nc (xarray.open_dataset reads it
back with named dims; the settings and the flowtools version are its attributes).
cnn-phase computes its cells on the sweep engine into zarr stores under
OUT/cnn_phase_store/MODE/ (flowtools sweep show STORE): run it again with the same OUT
and the cells already there are read, not recomputed (an interrupted run continues).

Examples:
  flowtools reproduce cnn-phase --quick --out /tmp/cnn
  flowtools reproduce cnn-phase
"""

from __future__ import annotations

NAME = "reproduce"
HELP = "compute a figure of the papers (cnn-phase); write its PNG and netCDF data"


def _cnn_phase(args):
    from flowtools.experiments import cnn_phase

    cnn_phase.main(quick=args.quick, out=args.out)
    return 0


FIGURES = {"cnn-phase": _cnn_phase}


def add_arguments(p):
    p.add_argument("figure", choices=sorted(FIGURES), help="the figure to reproduce")
    p.add_argument("--quick", action="store_true",
                   help="a coarse grid and fewer seeds (tens of seconds; for CI)")
    p.add_argument("--out", default="out/reproduce",
                   help="output folder (default out/reproduce)")


def run(args) -> int:
    from flowtools._io import check_output_dir

    check_output_dir(args.out, what="--out")  # before any work: a FlowtoolsError exits 2
    return FIGURES[args.figure](args)

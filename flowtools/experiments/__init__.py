"""The experiments layer: what the paper's figures and tables compute, above the library.

``demos/`` (one thin script per figure), ``theory/`` and the command line call this layer;
it calls the library (models, flow, descent, limiting, discretization, branches) and never
the other way round. One module per concept:

- ``alignment``: aligned time τ = t + log‖C(θ0)‖/ρ with the flow's (μ1) or GD's own escape
  rate (log(1 + ημ1)/η): ``time_shift``, ``aligned_flow``, ``aligned_gd``, ``resample``,
  ``tau_grid``, ``AlignedRuns``
- ``collapse``: the deviation of aligned runs from a reference run and its power of ‖C‖:
  ``collapse_deviation``, ``collapse_order``, ``plot_collapse``
- ``endpoint_panel``: Example 1's end points as (w, b, a) with Q1 and Q2:
  ``plot_endpoints_3d``
- ``branch_maps``: the final branch over c̃ for the flow and GD: ``branch_map``,
  ``BranchMap``, ``EX1_LRS``
- ``outputs``: a figure script's command line and files: ``parser``, ``prepare``,
  ``finish``, ``write_csv``
- ``cnn_phase``: the phase diagram of Shang et al. (2024) for the two-layer ReLU CNN —
  its grids on the sweep engine (family ``relu_cnn``), benign edges, fitted constants and
  exponents, the figure and its netCDF data: ``CNNPhaseSettings``, ``grids``, ``run``,
  ``plot``, ``edge_mu``, ``exponent`` (imported on use: ``flowtools.experiments.figures.cnn_phase``)
- ``outcomes``: the one rule that names where a run ended (Q1, Q2, a global minimum outside
  Q*, not converged, diverged) under a figure's recovery ``Criterion`` (error kind RMS or
  MSE, floor, stopping loss): ``Criterion``, ``outcome``, ``outcome_counts``
- ``claims``: ``Claim`` (the paper's claim, what was measured, agree/disagree, evidence)
  and its JSON / Markdown tables
- ``reproduce``: the figure runner — ``reproduce(name)`` writes a figure's PNG, netCDF
  (all plotted data) and claims, ``reproduce_all`` every figure plus ``claims.md``;
  ``demo_main`` is the body of a thin ``demos/`` script
- ``figures``: one module per figure and table of the main paper (``fig1`` … ``fig11``,
  ``table1``) and two results the paper could not compute (``lr_puzzle``, ``cstar``), each
  with ``compute``/``plot``/``claims`` (imported on use)

Slopes (orders, exponents) are fitted by ``flowtools.fitting.fit_slope``; library-level
matplotlib helpers are in ``flowtools.plotting``. The sweep engine (``flowtools.sweep``:
grids of a registered model family, store, executors; ``flowtools sweep``) is the
experiments' batch runner. ``flowtools reproduce NAME|all`` (``flowtools.cli.reproduce``)
runs the figures through ``reproduce``. Importing this package imports no plotting library.
"""

from flowtools.experiments.alignment import (
    AlignedRuns,
    aligned_flow,
    aligned_gd,
    resample,
    tau_grid,
    time_shift,
)
from flowtools.experiments.branch_maps import EX1_LRS, BranchMap, branch_map
from flowtools.experiments.collapse import (
    CollapseDeviation,
    collapse_deviation,
    collapse_order,
    plot_collapse,
)
from flowtools.experiments.endpoint_panel import plot_endpoints_3d
from flowtools.experiments.outputs import NULL_MEANS, finish, parser, prepare, write_csv

__all__ = [
    "EX1_LRS",
    "NULL_MEANS",
    "AlignedRuns",
    "BranchMap",
    "CollapseDeviation",
    "aligned_flow",
    "aligned_gd",
    "branch_map",
    "collapse_deviation",
    "collapse_order",
    "finish",
    "parser",
    "plot_collapse",
    "plot_endpoints_3d",
    "prepare",
    "write_csv",
    "resample",
    "tau_grid",
    "time_shift",
]

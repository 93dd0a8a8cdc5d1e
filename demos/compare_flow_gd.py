"""Flow versus gradient descent on the paper's Example 1 (n = 6 grid).

Left: the sup-gap between GD (aligned at t = k·lr) and the gradient flow, the first-order
modified flow −∇(ℓ + lr/4‖∇ℓ‖²) and the second-order one, against lr on log–log axes with
the fitted slopes (expected 1, 2, 3). Right: the aligned trajectories at lr = 0.1 (a1 and
b1 against t). With --branch-map, also the final branch over c̃ for the flow and for GD at
the paper's learning rates (slow: about two minutes).

    python -m demos.compare_flow_gd [OUT_DIR] [--branch-map]

Writes OUT_DIR/compare_flow_gd.png and .json (default OUT_DIR: out/demos/).
"""

from __future__ import annotations

import argparse
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import flowtools as ft  # noqa: E402
from flowtools.discretization import GDStabilityWarning, compare, stability_edge  # noqa: E402
from flowtools.experiments import branch_map, finish, prepare  # noqa: E402

LRS = (1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1)
SCALE, SEED, T1 = 1e-2, 0, 10.0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default="out/demos/")
    ap.add_argument("--branch-map", action="store_true")
    args = ap.parse_args(argv)
    out, t0 = prepare(args)
    pb = ft.example1()
    theta0 = pb.init_gaussian(SCALE, SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GDStabilityWarning)  # every rate here must be stable
        cmp = compare(pb, theta0, LRS, t1=T1, keep=True)
    print(cmp.table())
    edges = {name: stability_edge(pb, np.array(th)) for name, th in
             (("Q1 (a1=a2=1/2)", [0.5, 1, 1, 0.5, 1, 1.0]),
              ("Q1 (a1=1, a2=0)", [1, 1, 1, 0, 1, 1.0]),
              ("Q2 (w2=0)", [1, 1, 1, 0, 0, 0.0]),
              ("Q2 (w2=(0.3,-0.2))", [1, 1, 1, 0, 0.3, -0.2]))}
    for k, e in edges.items():
        print(f"stability edge at {k}: 2/λ_max = {e.lr_edge:.5f}, measured {e.lr_measured:.5f}")

    ncol = 3 if args.branch_map else 2
    fig, axes = plt.subplots(1, ncol, figsize=(5.2 * ncol, 4.3), constrained_layout=True)
    ax = axes[0]
    names = ("gradient flow", "modified flow, 1st order", "modified flow, 2nd order")
    for q, (name, mk) in enumerate(zip(names, "osD", strict=True)):
        line, = ax.loglog(cmp.lrs, cmp.gap[q], mk + "-", label=f"{name}: slope "
                          f"{cmp.orders[q]:.2f}")
        ref = cmp.gap[q, 0] * (cmp.lrs / cmp.lrs[0]) ** (q + 1)
        ax.loglog(cmp.lrs, ref, ":", color=line.get_color(), lw=1)
    ax.set_xlabel("learning rate lr")
    ax.set_ylabel(r"$\sup_{t\leq T}\ \|\theta_{GD}(t)-\theta(t)\|$" + f", T = {T1:g}")
    ax.set_title(f"GD vs flows, Example 1, scale {SCALE:g}, seed {SEED}\n"
                 "(dotted: slopes 1, 2, 3)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)

    ax = axes[1]
    a = cmp.alignments[-1]  # lr = 0.1
    for comp, lab, col in ((0, "a1", "C0"), (2, "b1", "C3")):
        ax.plot(a.ts, a.flows[0][:, comp], "-", color=col, lw=1.5, label=f"{lab}: flow")
        ax.plot(a.ts, a.flows[1][:, comp], "--", color=col, lw=1, label=f"{lab}: modified-1")
        ax.plot(a.ts, a.gd[:, comp], ".", color=col, ms=2.5, label=f"{lab}: GD lr={a.lr:g}")
    ax.set_xlim(0.0, T1)  # one linear axis over the whole window: no symlog switch, no kink
    ax.set_xlabel("flow time t = k·lr (linear)")
    ax.set_ylabel("parameter")
    ax.set_title("aligned trajectories (GD iterates at t = k·lr)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, alpha=0.3)

    data = {"compare": cmp.to_dict(),
            "stability_edges": {k: {"lr_edge": e.lr_edge, "lr_measured": e.lr_measured}
                                for k, e in edges.items()}}
    if args.branch_map:
        cs = np.round(np.concatenate([[0.2, 0.4, 0.6], np.arange(0.66, 0.801, 0.02),
                                      [0.9, 1.0]]), 3)
        bm = branch_map(pb, cs)
        print(bm.table())
        data["branch_map"] = bm.to_dict()
        ax = axes[2]
        code = {"Q1": 1, "Q2": 0}
        rows = [("flow (t→∞)", bm.flow)] + [(f"GD lr={lr:g}", bm.gd_limit[i])
                                           for i, lr in enumerate(bm.lrs)]
        for r, (name, labs) in enumerate(rows):
            for c, lab in zip(cs, labs, strict=True):
                col = {1: "C0", 0: "C1"}.get(code.get(lab), "0.6")
                mk = "o" if lab in code else "x"
                ax.plot(c, r, mk, color=col, ms=7)
        ax.plot([], [], "o", color="C0", label="Q1")
        ax.plot([], [], "o", color="C1", label="Q2")
        ax.plot([], [], "x", color="0.6", label="beyond edge / diverged")
        ax.set_yticks(range(len(rows)), [r[0] for r in rows])
        ax.set_xlabel(r"$\tilde c$")
        ax.set_title(f"final branch (GD: {bm.horizon:g} time units, then flow)")
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)
        ax.grid(True, axis="x", alpha=0.3)
    finish(out, "compare_flow_gd", fig, data, t0, dpi=130, json_default=str)


if __name__ == "__main__":
    main()

"""Figure 8 of Zhao, Bai & Zhang (Appendix B): end points against c̃ for d = 3 inputs.

f_θ(x) = a1 tanh(w1ᵀx + b1) + a2 tanh(w2ᵀx + b2), x ∈ ℝ³, target tanh(1ᵀx + 1), n = 10
inputs uniform on [−2, 2]³ (data seed 0). For each c̃ on a grid in (0, 1], the initial state
is ``Problem.init_ratio(c̃, 1e-20, seed=0)``, trained by the gradient flow to ℓ ≤ 1e-15
(``solve_flow``; the paper: GD, lr 0.5, 1e6 iterations). Shown against c̃: every end-point
coordinate (oriented so that each neuron's w matches +w0 when it is active), the branch
(``flowtools.branches.classify``) and the generalization error on 1000 points uniform on
[−2, 2]³. The paper's claims: every end point is in Q* (zero generalization error), c̃ near
1 gives Q1, c̃ near 0 gives Q2.

    python -m demos.fig8_high_dim [--out out/demos/] [--quick]

Writes fig8_high_dim.png and .json.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import flowtools as ft  # noqa: E402
from flowtools.branches import classify, generalization_error  # noqa: E402
from flowtools.experiments import finish, parser, prepare  # noqa: E402


def main(argv=None):
    ap = parser(__doc__, quick_help="12 values of c̃ instead of 50")
    ap.add_argument("--n", type=int, default=10, help="sample size (paper: 10)")
    ap.add_argument("--scale", type=float, default=1e-20)
    args = ap.parse_args(argv)
    out, t_start = prepare(args)
    cts = (np.concatenate([[1e-3], np.linspace(0.1, 1, 11)]) if args.quick else
           np.concatenate([[1e-3, 0.01], np.linspace(0.02, 1, 48)]))

    pb = ft.make_problem(args.n, sampling="uniform", dim=3, seed=0)
    theta0 = np.stack([pb.init_ratio(c, args.scale, seed=0) for c in cts])
    tr = ft.solve_flow(pb, theta0, t1=1e12, loss_threshold=1e-15, max_steps=100_000)
    res = classify(pb, tr.theta_final)
    lab = np.asarray(res.branch).astype(str)
    err = np.asarray(generalization_error(pb, tr.theta_final))
    # orient each neuron by the sign that maps its input weights onto +w0
    blocks = tr.theta_final.reshape(len(cts), 2, pb.block) * res.neuron_sign[..., None]
    oriented = blocks.reshape(len(cts), -1)

    names = pb.param_names
    fig, (ax_p, ax_e) = plt.subplots(1, 2, figsize=(14, 5), constrained_layout=True,
                                     gridspec_kw={"width_ratios": [1.6, 1]})
    for j, name in enumerate(names):
        ax_p.plot(cts, oriented[:, j], "o-" if j < pb.block else "s--", ms=3, lw=1,
                  color=f"C{j % pb.block}", label=name)
    for lb, col in (("Q1", "C0"), ("Q2", "C1"), ("other", "0.5")):
        m = lab == lb
        if m.any():
            ax_p.scatter(cts[m], np.full(m.sum(), -1.25), marker="|", s=120, color=col,
                         label=f"branch {lb} ({m.sum()})")
    ax_p.set_xlabel(r"$\tilde c = C_1/C_2$ at initialization")
    ax_p.set_ylabel("end-point coordinate (neuron k times its sign s_k)")
    ax_p.set_title("end points (neuron 1: circles/solid, neuron 2: squares/dashed); "
                   "ticks at the bottom: branch", fontsize=10)
    ax_p.grid(True, alpha=0.3)
    ax_p.set_ylim(-1.4, 1.15)
    ax_p.legend(fontsize=7, ncol=4, loc="lower left", bbox_to_anchor=(0.0, 0.12))
    ax_e.semilogy(cts, np.maximum(err, 1e-16), "o-", ms=3, label="generalization error")
    dq = np.minimum(res.dist_Q1, res.dist_Q2)
    ax_e.semilogy(cts, np.maximum(dq, 1e-16), "s--", ms=3,
                  label="distance of θ to Q1 ∪ Q2 (parameter space)")
    ax_e.axhline(1e-7, color="k", ls="--", lw=0.8, label="1e-7 (recovery)")
    ax_e.set_xlabel(r"$\tilde c$")
    ax_e.set_ylabel("error (generalization: 1000 points uniform on [−2, 2]³)")
    ax_e.set_title("end point: generalization error and distance to Q*", fontsize=10)
    ax_e.grid(True, which="major", alpha=0.3)
    ax_e.legend(fontsize=8)
    fig.suptitle(f"Figure 8 — m = 2, d = 3, n = {args.n} uniform samples, target tanh(1ᵀx + 1),"
                 f" scale {args.scale:g}: gradient flow to ℓ ≤ 1e-15")
    q1 = cts[lab == "Q1"]
    q2 = cts[lab == "Q2"]
    data = {"settings": {"n": args.n, "dim": 3, "scale": args.scale, "c_tilde": cts.tolist()},
            "branch": lab.tolist(), "gen_error": err.tolist(),
            "loss_final": tr.loss_final.tolist(), "t_final": tr.t_final.tolist(),
            "end_points_oriented": oriented.tolist(),
            "largest_Q2_c_tilde": float(q2.max()) if q2.size else None,
            "smallest_Q1_c_tilde": float(q1.min()) if q1.size else None,
            "max_gen_error": float(err.max()),
            "dist_to_Qstar": np.minimum(res.dist_Q1, res.dist_Q2).tolist(),
            "reached_1e-15": int(np.sum(tr.converged))}
    print(f"Figure 8: d = 3, n = {args.n}, {len(cts)} values of c̃: branches "
          f"{dict(zip(*np.unique(lab, return_counts=True), strict=True))}; Q2 up to c̃ = "
          f"{data['largest_Q2_c_tilde']}, Q1 from c̃ = {data['smallest_Q1_c_tilde']}; "
          f"max generalization error {err.max():.2e}; reached 1e-15: "
          f"{data['reached_1e-15']}/{len(cts)}")
    return finish(out, "fig8_high_dim", fig, data, t_start)


if __name__ == "__main__":
    main()

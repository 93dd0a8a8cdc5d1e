"""Shang, Meng, Cao & Zou (2024), benign/harmful overfitting phase transition in v0 × ‖µ‖₂.

"Initialization Matters: On the Benign Overfitting of Two-Layer ReLU CNN with Fully
Trainable Layers" (arXiv 2410.19139; summary in shared/papers/004_ec9bee8fb160c2af.txt).

Data (signal–noise patch model): y ∈ {±1} Rademacher, x = (x⁽¹⁾, x⁽²⁾) with signal patch
x⁽¹⁾ = y·µ and noise patch x⁽²⁾ = ξ ~ N(0, σp²(I − µµᵀ/‖µ‖²)) in ℝᵈ. Here µ = ‖µ‖₂·e₁, so the
projection just zeroes the first coordinate of ξ; one draw of (y, ξ, initial W) per seed is
shared by every grid point, only ‖µ‖₂ and v0 change.

Network (the Cao et al. 2022 CNN with a trainable output layer, as in the paper's F_j with
weights v_{j,r,p}): 2m filters w_{j,r} (j = ±1, r = 1..m) and output weights v_{j,r,p} per
filter and patch,

    F_j(W, v; x) = Σ_r Σ_{p=1,2} v_{j,r,p} · ReLU(⟨w_{j,r}, x⁽ᵖ⁾⟩),   f = F_{+1} − F_{−1},

w_{j,r}⁽⁰⁾ ~ N(0, σ0² I), v_{j,r,p}⁽⁰⁾ = v0 (both layers trained). Empirical logistic loss
L = (1/n) Σ_i log(1 + exp(−y_i f(x_i))), full-batch GD with η = 0.01 for T = 200 iterations
(defaults; the paper's values as summarized). Test error: fraction of 1000 fresh test points
with y·f(x) ≤ 0, averaged over the seeds. The summary does not give n, d, m, σp, σ0 or the
grid: the defaults below (n = 20, d = 1000, m = 10, σp = 1, σ0 = 0.01) are our choice.

Theory (paper, as summarized): large v0 behaves like the fixed-output model, benign iff
‖µ‖⁴/σp⁴ ≳ d/n (a v0-independent boundary); small v0 gives balanced layer growth, benign iff
m·v0²·‖µ‖²/σp ≳ 1 (boundary ‖µ‖ ∝ 1/v0, a line of slope −1 on log–log axes).

Right panel: ‖v⁽ᵀ⁾ − v⁽⁰⁾‖_F / ‖W⁽ᵀ⁾ − W⁽⁰⁾‖_F against v0 for a few ‖µ‖₂ (large v0 → output
layer nearly frozen; small v0 → both layers move comparably).

    python -m demos.shang2024_phase_transition [--out out/demos/] [--quick]

Writes shang2024_phase_transition.png and .json; prints a summary and the wall time.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

import flowtools  # noqa: F401  (enables float64 in JAX before any array is made)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from flowtools.experiments import finish, parser, prepare  # noqa: E402
from flowtools.fitting import fit_slope  # noqa: E402

BENIGN = 0.1  # a grid point counts as benign when its test error is below this


def make_data(key, n, d, sigma_p):
    """Labels y ∈ {±1}ⁿ and noise patches ξ ∈ ℝ^{n×d} with ξ ⊥ µ = ‖µ‖e₁ (ξ[:, 0] = 0)."""
    ky, kx = jax.random.split(key)
    y = jnp.where(jax.random.bernoulli(ky, 0.5, (n,)), 1.0, -1.0)
    xi = sigma_p * jax.random.normal(kx, (n, d))
    return y, xi.at[:, 0].set(0.0)


def net(W, V, y, xi, mu_norm):
    """f(W, v; x) for inputs (y·µ, ξ); W: (2, m, d), V: (2, m, 2), returns (n,)."""
    sig = jax.nn.relu(y[:, None, None] * mu_norm * W[None, :, :, 0])  # (n, 2, m)
    noi = jax.nn.relu(jnp.einsum("nd,jmd->njm", xi, W))  # (n, 2, m)
    F = jnp.einsum("njm,jm->nj", sig, V[..., 0]) + jnp.einsum("njm,jm->nj", noi, V[..., 1])
    return F[:, 0] - F[:, 1]


def loss(params, y, xi, mu_norm):
    W, V = params
    return jnp.mean(jnp.logaddexp(0.0, -y * net(W, V, y, xi, mu_norm)))


def train_one(W0, v0, mu_norm, y, xi, yt, xit, *, lr, steps):
    """GD from (W0, v0·1); returns (test error, train error, final loss, ‖Δv‖, ‖ΔW‖)."""
    V0 = jnp.full(W0.shape[:2] + (2,), v0)
    grad = jax.grad(loss)

    def step(p, _):
        g = grad(p, y, xi, mu_norm)
        return jax.tree_util.tree_map(lambda a, b: a - lr * b, p, g), None

    (W, V), _ = jax.lax.scan(step, (W0, V0), None, length=steps)
    test_err = jnp.mean(yt * net(W, V, yt, xit, mu_norm) <= 0)
    train_err = jnp.mean(y * net(W, V, y, xi, mu_norm) <= 0)
    return (test_err, train_err, loss((W, V), y, xi, mu_norm),
            jnp.linalg.norm(V - V0), jnp.linalg.norm(W - W0))


def run_grid(v0s, mus, *, n=20, d=1000, m=10, sigma_p=1.0, sigma0=0.01, lr=0.01, steps=200,
             n_test=1000, seeds=(0,)):
    """All grid points × seeds in one jit(vmap(...)); arrays of shape (len(seeds), nv, nmu)."""
    def one_seed(seed):
        k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
        y, xi = make_data(k1, n, d, sigma_p)
        yt, xit = make_data(k2, n_test, d, sigma_p)
        W0 = sigma0 * jax.random.normal(k3, (2, m, d))
        f = lambda v0, mu: train_one(W0, v0, mu, y, xi, yt, xit, lr=lr, steps=steps)  # noqa: E731
        return jax.vmap(jax.vmap(f, (None, 0)), (0, None))(v0s, mus)

    fn = jax.jit(jax.vmap(one_seed))
    out = fn(jnp.asarray(seeds))
    names = ("test_err", "train_err", "loss", "dv", "dW")
    return {k: np.asarray(a) for k, a in zip(names, out, strict=True)}


def boundary(test_err, mus, level=BENIGN):
    """Per v0 row: smallest ‖µ‖ from which the test error stays below level (nan if never)."""
    out = []
    for row in test_err:
        ok = row < level
        idx = [i for i in range(len(mus)) if ok[i:].all()]
        out.append(float(mus[idx[0]]) if idx else float("nan"))
    return np.array(out)


def main(argv=None):
    ap = parser(__doc__, quick_help="coarse grid, one seed (< 1 min)")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--d", type=int, default=1000)
    ap.add_argument("--m", type=int, default=10)
    ap.add_argument("--sigma-p", type=float, default=1.0)
    ap.add_argument("--sigma0", type=float, default=0.01)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds (default 3; 1 quick)")
    args = ap.parse_args(argv)
    out, t0 = prepare(args)
    if args.quick:
        v0s, mus, nseed = np.logspace(-3, 1, 9), np.linspace(0.5, 8.0, 9), 1
    else:
        v0s, mus, nseed = np.logspace(-3, 1, 21), np.linspace(0.25, 8.0, 32), 3
    nseed = args.seeds or nseed
    res = run_grid(jnp.asarray(v0s), jnp.asarray(mus), n=args.n, d=args.d, m=args.m,
                   sigma_p=args.sigma_p, sigma0=args.sigma0, lr=args.lr, steps=args.steps,
                   seeds=tuple(range(nseed)))
    err = res["test_err"].mean(0)
    train_err = res["train_err"].mean(0)
    ratio = (res["dv"] / res["dW"]).mean(0)
    bnd = boundary(err, mus)
    small = (v0s <= 0.1) & np.isfinite(bnd)
    slope = fit_slope(v0s[small], bnd[small]).slope
    wall = time.perf_counter() - t0
    large_v0_theory = args.sigma_p * (args.d / args.n) ** 0.25

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12.5, 4.8),
                                   gridspec_kw={"width_ratios": [1.25, 1]})
    # cell edges in log10 v0 and ‖µ‖ for pcolormesh
    lv = np.log10(v0s)
    ev = 10 ** np.concatenate([[lv[0] - (lv[1] - lv[0]) / 2], (lv[1:] + lv[:-1]) / 2,
                               [lv[-1] + (lv[-1] - lv[-2]) / 2]])
    em = np.concatenate([[mus[0] - (mus[1] - mus[0]) / 2], (mus[1:] + mus[:-1]) / 2,
                         [mus[-1] + (mus[-1] - mus[-2]) / 2]])
    pc = ax0.pcolormesh(ev, em, err.T, cmap="viridis", vmin=0, vmax=0.5, shading="flat")
    fig.colorbar(pc, ax=ax0, label=f"test error (1000 test points, mean of {nseed} seeds)")
    ax0.plot(v0s, bnd, "w.-", lw=1.2, label=f"measured edge (test error < {BENIGN})")
    ax0.axhline(large_v0_theory, color="r", ls="--", lw=1,
                label=r"large-$v_0$ theory shape $\|\mu\|=\sigma_p(d/n)^{1/4}$")
    ax0.set_xscale("log")
    ax0.set_ylim(em[0], em[-1])
    ax0.set_xlabel(r"output-layer initialization $v_0$ (log scale)")
    ax0.set_ylabel(r"signal strength $\|\mu\|_2$")
    ax0.set_title(f"Test error after GD (η={args.lr}, T={args.steps}); "
                  f"n={args.n}, d={args.d}, m={args.m}", fontsize=10)
    ax0.legend(loc="upper right", fontsize=7.5, framealpha=0.6)

    picks = sorted({int(i) for i in np.linspace(0, len(mus) - 1, 4).round()})
    for i in picks:
        ax1.loglog(v0s, ratio[:, i], "o-", ms=3, label=rf"$\|\mu\|_2$ = {mus[i]:.2f}")
    ax1.set_xlabel(r"output-layer initialization $v_0$ (log scale)")
    ax1.set_ylabel(r"$\|v^{(T)}-v^{(0)}\|_F \;/\; \|W^{(T)}-W^{(0)}\|_F$")
    ax1.set_title("Output-layer change / hidden-layer change", fontsize=10)
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=8)
    fig.suptitle("Shang, Meng, Cao & Zou (2024): benign vs harmful overfitting, fully "
                 "trainable two-layer ReLU CNN", fontsize=11)
    fig.tight_layout()
    data = {
        "params": {k: getattr(args, k) for k in ("n", "d", "m", "sigma_p", "sigma0", "lr",
                                                 "steps")} | {"n_test": 1000, "seeds": nseed},
        "v0": v0s.tolist(), "mu_norm": mus.tolist(),
        "test_error": err.tolist(), "train_error": train_err.tolist(),
        "final_loss": res["loss"].mean(0).tolist(),
        "dv_over_dW": ratio.tolist(),
        "boundary_mu": [None if np.isnan(b) else b for b in bnd],
        "small_v0_edge_loglog_slope": slope,
        "benign_level": BENIGN, "large_v0_theory_mu": large_v0_theory,
        "wall_s": wall,  # the training grid alone; finish adds the total as wall_time_s
    }
    print(f"v0        edge ‖µ‖ (err<{BENIGN:.2f})  max train err  dv/dW (‖µ‖={mus[-1]:.2f})")
    for k, v0 in enumerate(v0s):
        print(f"{v0:8.2e}  {bnd[k]:8.3f}          {train_err[k].max():6.3f}        "
              f"{ratio[k, -1]:9.3e}")
    print(f"small-v0 edge: log-log slope of ‖µ‖_edge vs v0 (v0 ≤ 0.1) = {slope:.2f} "
          "(theory m·v0²‖µ‖²/σp ≍ 1 gives −1)")
    print(f"large-v0 theory shape σp(d/n)^(1/4) = {large_v0_theory:.3f}")
    return finish(out, "shang2024_phase_transition", fig, data, t0, dpi=130)


if __name__ == "__main__":
    main()

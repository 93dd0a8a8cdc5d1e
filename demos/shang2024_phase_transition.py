"""Shang, Meng, Cao & Zou (2024): benign/harmful overfitting phase diagram in v0 × ‖µ‖₂.

A thin call of ``flowtools.experiments.cnn_phase`` (the same as
``flowtools reproduce cnn-phase``): the model is ``flowtools.models.ReluCNN`` on
``PatchData``, trained by ``flowtools.run_gd`` at the paper's protocol (η = 0.01, T = 200)
and to a small training loss; see that module for the grid, the fitted constants and the
exponents.

    python -m demos.shang2024_phase_transition [--out out/demos/] [--quick]

Writes cnn_phase.png and cnn_phase.nc under --out.

``run_grid`` and ``boundary`` keep the earlier interface and draws of this script (GD at
the paper's protocol over a v0 × ‖µ‖ grid from JAX-PRNG draws with µ along e₁; the first
‖µ‖ from which the test error stays below a level), now on the library's ``ReluCNN`` and
``run_gd``, for tests/test_shang2024.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from flowtools.descent import run_gd
from flowtools.experiments import parser, prepare
from flowtools.experiments.cnn_phase import main as cnn_phase_main
from flowtools.models.relu_cnn import PatchData, ReluCNN


def _old_draws(seed, n, d, m, sigma_p, sigma0, n_test):
    """The earlier script's draws (JAX PRNG, µ along e₁): PatchData at ‖µ‖ = 1 and W0."""
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)

    def patches(key, k):
        ky, kx = jax.random.split(key)
        y = jnp.where(jax.random.bernoulli(ky, 0.5, (k,)), 1.0, -1.0)
        xi = (sigma_p * jax.random.normal(kx, (k, d))).at[:, 0].set(0.0)
        return np.asarray(y), np.asarray(xi)

    (y, xi), (yt, xit) = patches(k1, n), patches(k2, n_test)
    data = PatchData(mu=np.eye(d)[0], y=y, xi=xi, y_test=yt, xi_test=xit, sigma_p=sigma_p,
                     seed=int(seed))
    return data, np.asarray(sigma0 * jax.random.normal(k3, (2, m, d)))


def run_grid(v0s, mus, *, n=20, d=1000, m=10, sigma_p=1.0, sigma0=0.01, lr=0.01, steps=200,
             n_test=1000, seeds=(0,)):
    """GD (η = lr, ``steps`` iterations; ``flowtools.run_gd`` on ``ReluCNN``) on every
    (seed, v0, ‖µ‖) from the earlier script's draws: arrays (seed, v0, mu) of test_err,
    train_err, loss, dv = ‖v − v0‖, dW = ‖W − W0‖."""
    v0s, mus = np.asarray(v0s, float), np.asarray(mus, float)
    res = {k: np.zeros((len(seeds), len(v0s), len(mus)))
           for k in ("test_err", "train_err", "loss", "dv", "dW")}
    for a, seed in enumerate(seeds):
        data, W0 = _old_draws(seed, n, d, m, sigma_p, sigma0, n_test)
        for k, mu in enumerate(mus):
            model = ReluCNN(data.with_mu_norm(mu), width=m)
            th0 = np.stack([model.join(W0, np.full((2, m, 2), v0)) for v0 in v0s])
            thf = run_gd(model, th0, lr=lr, max_iter=steps, loss_threshold=0.0,
                         n_save=2).theta_final
            res["test_err"][a, :, k] = model.test_error(thf)
            res["train_err"][a, :, k] = model.train_error(thf)
            res["loss"][a, :, k] = np.asarray(jax.vmap(model.loss)(jnp.asarray(thf)))
            dth = (thf - th0).reshape(len(v0s), -1)
            split = 2 * m * d  # θ = (W, V): the first 2md entries are the filters
            res["dv"][a, :, k] = np.linalg.norm(dth[:, split:], axis=1)
            res["dW"][a, :, k] = np.linalg.norm(dth[:, :split], axis=1)
    return res


def boundary(test_err, mus, level=0.1):
    """Per row: the smallest ‖µ‖ from which the test error stays below ``level`` (NaN if
    never)."""
    out = []
    for row in np.asarray(test_err):
        ok = np.flatnonzero(~np.cumsum((row >= level)[::-1])[::-1].astype(bool))
        out.append(float(mus[ok[0]]) if ok.size else float("nan"))
    return np.array(out)


def main(argv=None):
    ap = parser(__doc__, quick_help="the CI-sized grid (~30 s)")
    args = ap.parse_args(argv)
    out, _ = prepare(args)
    return cnn_phase_main(quick=args.quick, out=out)


if __name__ == "__main__":
    main()

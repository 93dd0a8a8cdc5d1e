"""Smoke test for demos.shang2024_phase_transition (Shang, Meng, Cao & Zou 2024).

On a tiny grid (n = 20, d = 300, 2 seeds): the trained CNN interpolates its training data
everywhere; at v0 = 1 the test error falls from near chance at ‖µ‖ = 0.5 to small at ‖µ‖ = 6
(harmful → benign overfitting); and the output-layer/hidden-layer change ratio
‖Δv‖/‖ΔW‖ is O(1) at v0 = 1e-3 (balanced growth) and much smaller at v0 = 3
(fixed-output-like regime: at least 20 times smaller), decreasing monotonically in v0.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from demos import shang2024_phase_transition as demo


def test_phase_transition_tiny_grid():
    v0s = np.array([1e-3, 1e-1, 1.0, 3.0])
    mus = np.array([0.5, 6.0])
    res = demo.run_grid(jnp.asarray(v0s), jnp.asarray(mus), n=20, d=300, m=5, seeds=(0, 1))
    assert res["train_err"].max() == 0.0  # overfitting: every training point classified
    err = res["test_err"].mean(0)
    assert err[2, 0] > 0.25 and err[2, 1] < 0.1, err
    ratio = (res["dv"] / res["dW"]).mean(0)
    assert np.all(np.diff(ratio, axis=0) < 0), ratio
    assert np.all(ratio[0] > 0.3) and np.all(ratio[0] > 20 * ratio[-1]), ratio
    # boundary(): first ‖µ‖ from which the error stays below the level
    assert demo.boundary(np.array([[0.4, 0.05, 0.2, 0.01, 0.0]]), np.arange(5.0))[0] == 3.0

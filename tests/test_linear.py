"""The unrolled LU of the implicit stages: backward stable as LAPACK's, the same solves."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

from flowtools.integrate.linear import MAX_UNROLLED, SmallLU, lu_factor, lu_solve

EPS = np.finfo(float).eps


@pytest.mark.parametrize("n", [1, 2, 3, 7, 16, MAX_UNROLLED])
def test_backward_error_is_round_off(n):
    """‖Ax − b‖ ≤ c·n·ε·‖A‖‖x‖ (Wilkinson's bound with partial pivoting's modest growth),
    on random matrices and on ones whose leading entries vanish (pivoting required)."""
    rng = np.random.default_rng(n)
    # rows of a diagonally dominant matrix reversed, its corner entry 1e-20: well
    # conditioned, and elimination without row swaps would divide by 1e-20
    swapped = (rng.standard_normal((n, n)) + 3 * n * np.eye(n))[::-1].copy()
    if n > 1:
        swapped[0, 0] = 1e-20
    for A in (rng.standard_normal((n, n)) + np.eye(n), swapped):
        b = rng.standard_normal(n)
        lu, perm = lu_factor(jnp.asarray(A))
        x = np.asarray(lu_solve(lu, perm, jnp.asarray(b)))
        res = np.linalg.norm(A @ x - b) / (np.linalg.norm(A, 2) * np.linalg.norm(x))
        assert res <= 10 * n * EPS
        # P·A = L·U exactly as factored
        L = np.tril(np.asarray(lu), -1) + np.eye(n)
        U = np.triu(np.asarray(lu))
        np.testing.assert_allclose(L @ U, A[np.asarray(perm)], atol=10 * n * EPS
                                   * np.abs(A).max())
        assert np.all(np.abs(L) <= 1 + 1e-15)  # partial pivoting: multipliers ≤ 1


def test_a_vmapped_batch_and_the_lineax_fallback():
    """Inside vmap (as in a lockstep chunk), and above MAX_UNROLLED (lineax's LU serves),
    SmallLU solves as lineax's LU does, to round-off."""
    rng = np.random.default_rng(0)
    for n in (7, MAX_UNROLLED + 8):
        A = jnp.asarray(rng.standard_normal((16, n, n)) + 3 * np.eye(n))
        b = jnp.asarray(rng.standard_normal((16, n)))

        def solve(A, b, solver):
            return lx.linear_solve(lx.MatrixLinearOperator(A), b, solver).value

        mine = jax.vmap(lambda A, b: solve(A, b, SmallLU()))(A, b)
        ref = jax.vmap(lambda A, b: solve(A, b, lx.LU()))(A, b)
        np.testing.assert_allclose(mine, ref, rtol=0, atol=1e3 * EPS * float(
            jnp.abs(ref).max()))

"""The sparse-coding step (Eq. 3) solves its LASSO exactly: KKT conditions hold."""

import numpy as np
import pytest

from ella_dist.core.sparse_code import code_task, coding_problem, lasso_quadratic


def kkt_violation(Q, c, mu, s):
    """Max violation of the optimality conditions of s'Qs - 2c's + mu||s||_1."""
    g = 2.0 * (Q @ s - c)  # gradient of the smooth part
    active = s != 0
    viol_active = np.abs(g[active] + mu * np.sign(s[active]))
    viol_zero = np.maximum(np.abs(g[~active]) - mu, 0.0)
    return max(viol_active.max(initial=0.0), viol_zero.max(initial=0.0))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("mu", [0.0, 1e-3, 0.3, 3.0])
def test_lasso_satisfies_kkt(seed, mu):
    rng = np.random.default_rng(seed)
    k = 6
    B = rng.normal(size=(10, k))
    Q = B.T @ B / 10 + 1e-3 * np.eye(k)
    c = rng.normal(size=k)
    s = lasso_quadratic(Q, c, mu)
    assert kkt_violation(Q, c, mu, s) < 1e-8
    if mu > 0:
        assert np.all(np.abs(s) < np.abs(np.linalg.solve(Q, c)).max() * 10)


def test_large_mu_gives_all_zero_code():
    Q = np.eye(3)
    c = np.array([0.1, -0.2, 0.05])
    assert not lasso_quadratic(Q, c, mu=1.0).any()  # |2c| <= mu everywhere


def test_code_task_is_kkt_optimal_for_the_safeguarded_problem():
    rng = np.random.default_rng(0)
    d, k = 8, 4
    L = rng.normal(size=(d, k))
    M = rng.normal(size=(d, d))
    D = M @ M.T / d
    theta = rng.normal(size=d)
    s = code_task(L, theta, D, mu=0.05)
    Q, c = coding_problem(L, theta, D)
    assert kkt_violation(Q, c, 0.05, s) < 1e-8


def test_singular_D_does_not_give_huge_codes():
    """A column of L almost in D's null space: the safeguard keeps s bounded."""
    d = 6
    D = np.diag([1.0, 1.0, 0, 0, 0, 0])
    L = np.zeros((d, 2))
    L[0, 0] = 1.0
    L[2, 1] = 1.0
    L[1, 1] = 1e-9  # nearly invisible to D
    theta = np.array([1.0, 1.0, 0, 0, 0, 0])
    s = code_task(L, theta, D, mu=0.0)
    assert np.all(np.abs(s) < 1e4), s


@pytest.mark.parametrize("seed", range(10))
def test_active_set_and_coordinate_descent_agree(seed):
    from ella_dist.core.sparse_code import _feature_sign, lasso_cd

    rng = np.random.default_rng(100 + seed)
    k = int(rng.integers(1, 10))
    B = rng.normal(size=(k + 3, k))
    Q = B.T @ B + 1e-4 * np.eye(k)
    c = rng.normal(size=k) * 3
    mu = float(rng.choice([1e-4, 0.1, 1.0]))
    fs = _feature_sign(Q, c, mu)
    assert fs is not None
    assert kkt_violation(Q, c, mu, fs) < 1e-8
    np.testing.assert_allclose(fs, lasso_cd(Q, c, mu), atol=1e-7)

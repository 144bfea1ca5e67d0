"""The L step equals the dense formula ((1/T) A + lam I)^-1 (1/T) b for every solver."""

import numpy as np
import pytest

from ella_dist.core.basis import RunningBasis, task_terms


def random_task(rng, d, k):
    M = rng.normal(size=(d, d))
    s = rng.normal(size=k) * (rng.random(k) < 0.7)
    return s, rng.normal(size=d), M @ M.T / d


@pytest.mark.parametrize("method", ["cholesky", "eigen", "cg"])
def test_l_step_equals_dense_formula_including_revisits(method):
    rng = np.random.default_rng(3)
    d, k, lam = 5, 3, 0.1
    basis = RunningBasis(d, k, lam, method)
    A, b = np.zeros((k * d, k * d)), np.zeros(k * d)
    tasks = [random_task(rng, d, k) for _ in range(6)]
    for task in tasks:
        basis = basis.updated(task)
        dA, db = task_terms(*task)
        A, b = A + dA, b + db
    # revisit task 2 with new statistics: T stays 6
    new = random_task(rng, d, k)
    basis = basis.updated(new, remove=tasks[2])
    A = A - task_terms(*tasks[2])[0] + task_terms(*new)[0]
    b = b - task_terms(*tasks[2])[1] + task_terms(*new)[1]
    assert basis.T == 6
    T = 6
    expected = np.linalg.solve(A / T + lam * np.eye(k * d), b / T).reshape((d, k), order="F")
    np.testing.assert_allclose(basis.solve(), expected, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(basis.A, A, atol=1e-12)


def test_vec_stacks_columns():
    """kron(ss', D) vec(L) == vec(D L s s'): the identity the L step rests on."""
    rng = np.random.default_rng(0)
    d, k = 4, 3
    s, _, D = random_task(rng, d, k)
    L = rng.normal(size=(d, k))
    lhs = task_terms(s, np.zeros(d), D)[0] @ L.ravel(order="F")
    np.testing.assert_allclose(lhs, (D @ L @ np.outer(s, s)).ravel(order="F"), atol=1e-12)


def test_updated_leaves_the_original_untouched():
    rng = np.random.default_rng(1)
    basis = RunningBasis(3, 2, 0.5, "eigen")
    before = basis.A.copy()
    basis.updated(random_task(rng, 3, 2))
    np.testing.assert_array_equal(basis.A, before)
    assert basis.T == 0

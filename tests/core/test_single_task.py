"""theta(t) is the single-task optimum and D(t) is half the Hessian of the mean loss there."""

import numpy as np
import pytest
from scipy.special import expit

from ella_dist.core.single_task import TaskData, fit_logistic, fit_squared, penalty_mask
from ella_dist.core.validation import add_intercept


def mean_objective(loss, X, y, theta, ridge, mask):
    """J(theta) of ella_dist.core.single_task, written out independently."""
    z = X @ theta
    if loss == "squared":
        total = 0.5 * np.sum((y - z) ** 2)
    else:
        total = np.sum(np.logaddexp(0.0, z) - y * z)
    return (total + 0.5 * ridge * np.sum(mask * theta**2)) / X.shape[0]


def numerical_hessian(f, x, h=1e-4):
    d = x.size
    H = np.empty((d, d))
    E = np.eye(d) * h
    for i in range(d):
        for j in range(d):
            H[i, j] = (f(x + E[i] + E[j]) - f(x + E[i] - E[j]) - f(x - E[i] + E[j]) + f(x - E[i] - E[j])) / (4 * h * h)
    return H


def numerical_gradient(f, x, h=1e-6):
    return np.array([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(x.size)])


def task(loss, n=60, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = add_intercept(rng.normal(size=(n, d)))
    w = rng.normal(size=d + 1)
    if loss == "squared":
        y = X @ w + 0.3 * rng.normal(size=n)
    else:
        y = (rng.random(n) < expit(X @ w)).astype(float)
    return X, y


@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("ridge", [0.0, 0.7])
def test_D_is_half_the_numerical_hessian_at_the_optimum(loss, ridge):
    X, y = task(loss)
    mask = penalty_mask(X.shape[1], True)
    theta, D = TaskData.from_rows(loss, X, y).fit(ridge, mask)

    def J(t):
        return mean_objective(loss, X, y, t, ridge, mask)

    np.testing.assert_allclose(numerical_gradient(J, theta), 0.0, atol=1e-6)
    np.testing.assert_allclose(D, 0.5 * numerical_hessian(J, theta), rtol=1e-4, atol=1e-6)


def test_paper_formulas_without_ridge():
    X, y = task("squared")
    theta, D = fit_squared(X.T @ X, X.T @ y, X.shape[0], 0.0, penalty_mask(X.shape[1], True))
    np.testing.assert_allclose(D, X.T @ X / (2 * X.shape[0]))
    np.testing.assert_allclose(theta, np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-10)
    Xl, yl = task("logistic")
    theta, D = fit_logistic(Xl, yl, 0.0, penalty_mask(Xl.shape[1], True))
    s = expit(Xl @ theta)
    np.testing.assert_allclose(D, (Xl.T * (s * (1 - s))) @ Xl / (2 * Xl.shape[0]), rtol=1e-12)


def test_the_intercept_is_not_regularised():
    X, y = task("squared")
    y = y + 100.0  # a large offset: a penalised intercept would shrink visibly
    mask = penalty_mask(X.shape[1], True)
    theta, D = fit_squared(X.T @ X, X.T @ y, X.shape[0], 50.0, mask)
    residual = y - X @ theta
    assert abs(residual.mean()) < 1e-8  # the unpenalised intercept absorbs the offset exactly
    assert D[-1, -1] == pytest.approx(X.shape[0] / (2 * X.shape[0]))


def test_rank_deficient_squared_task_gives_a_finite_fit():
    rng = np.random.default_rng(1)
    X = add_intercept(np.column_stack([rng.normal(size=(3, 3)), np.zeros((3, 6))]))  # 3 rows, 10 columns
    y = rng.normal(size=3)
    theta, D = fit_squared(X.T @ X, X.T @ y, 3, 0.0, penalty_mask(X.shape[1], True))
    assert np.isfinite(theta).all() and np.isfinite(D).all()
    np.testing.assert_allclose(X @ theta, y, atol=1e-8)


def test_single_class_logistic_task_is_rejected():
    X, _ = task("logistic")
    with pytest.raises(ValueError, match="single class"):
        fit_logistic(X, np.zeros(X.shape[0]), 1.0, penalty_mask(X.shape[1], True))


def test_task_data_accumulates_exactly():
    for loss in ("squared", "logistic"):
        X, y = task(loss, n=40)
        one = TaskData.from_rows(loss, X, y)
        two = TaskData.from_rows(loss, X[:15], y[:15]).add(X[15:], y[15:])
        assert two.n == one.n == 40
        mask = penalty_mask(X.shape[1], True)
        for a, b in zip(one.fit(0.1, mask), two.fit(0.1, mask)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)

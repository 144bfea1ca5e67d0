"""Single-task learners: theta(t) and D(t) for the squared and logistic losses.

Both learners minimise the same regularised mean loss over one task's n rows,

    J(theta) = (1/n) * [ sum_i loss_i(theta) + (ridge/2) * ||theta_pen||^2 ]

with ``loss_i = 0.5 * (y_i - x_i . theta)^2`` (squared) or
``loss_i = log(1 + exp(x_i . theta)) - y_i * x_i . theta`` (logistic, y in {0, 1}),
and ``theta_pen`` every coefficient but the intercept. ELLA's D(t) is half the Hessian
of J at its minimiser (paper Sec. 3.4), so ``||theta - L s||^2_D`` is the second-order
Taylor expansion of J - J(theta):

    squared:  D = (X'X + ridge I') / (2 n)
    logistic: D = (X'WX + ridge I') / (2 n),  W = diag(sigma_i (1 - sigma_i))

where I' is the identity with a 0 for the intercept. With ridge = 0 these are the
paper's formulas. The factor 1/2 in the squared loss is what makes the paper's
D = X'X/(2n) half the Hessian; GO-MTL uses the same losses so the objectives agree.

:class:`TaskData` keeps what a revisit needs to refit a task on all its data: exact
sufficient statistics (X'X, X'y, n) for the squared loss, the rows themselves for the
logistic loss (whose fit has no finite sufficient statistic).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg
from scipy.special import expit

NEWTON_TOL = 1e-10
NEWTON_MAX_ITER = 100


def penalty_mask(d: int, fit_intercept: bool) -> np.ndarray:
    """1.0 for penalised coefficients, 0.0 for the intercept (the last column)."""
    mask = np.ones(d)
    if fit_intercept:
        mask[-1] = 0.0
    return mask


def _solve_spd(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Solve H x = g for a symmetric PSD H; min-norm least squares if H is singular."""
    try:
        return linalg.cho_solve(linalg.cho_factor(H, check_finite=False), g, check_finite=False)
    except linalg.LinAlgError:
        return linalg.lstsq(H, g, check_finite=False, lapack_driver="gelsd")[0]


def fit_squared(
    XtX: np.ndarray, Xty: np.ndarray, n: int, ridge: float, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression from sufficient statistics.

    Parameters
    ----------
    XtX : ndarray of shape (d, d)
    Xty : ndarray of shape (d,)
    n : int
        Number of rows the statistics summarise.
    ridge : float
        Penalty on every coefficient with ``mask == 1``.
    mask : ndarray of shape (d,)

    Returns
    -------
    theta : ndarray of shape (d,)
    D : ndarray of shape (d, d)
        ``(X'X + ridge I') / (2 n)``.
    """
    H = XtX + np.diag(ridge * mask)
    # A rank-deficient task (few rows, constant columns: London schools) with ridge 0
    # falls back to the minimum-norm solution instead of failing.
    theta = _solve_spd(H, Xty)
    return theta, H / (2.0 * n)


def _logistic_objective(X: np.ndarray, y: np.ndarray, theta: np.ndarray, pen: np.ndarray) -> float:
    z = X @ theta
    return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.dot(pen * theta, theta))


def fit_logistic(
    X: np.ndarray, y: np.ndarray, ridge: float, mask: np.ndarray, theta0: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Ridge-penalised logistic regression by damped Newton (IRLS with a line search).

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Rows of the task, intercept column included.
    y : ndarray of shape (n,)
        Labels in {0, 1}; both classes must be present.
    ridge, mask
        As in :func:`fit_squared`.
    theta0 : ndarray of shape (d,), optional
        Warm start.

    Returns
    -------
    theta : ndarray of shape (d,)
    D : ndarray of shape (d, d)
        ``(X'WX + ridge I') / (2 n)`` at theta.

    Raises
    ------
    ValueError
        If the task holds one class only (its intercept would diverge), or the fit
        did not reach a finite optimum (it must not poison the shared basis).
    """
    n, d = X.shape
    if y.min() == y.max():
        raise ValueError(
            f"y holds a single class ({int(y[0])}) for all {n} rows of this task; the "
            "logistic loss needs both classes to fit a finite model. Send rows of both "
            "classes (they may come in the same call as later data for this task)."
        )
    pen = ridge * mask
    theta = np.zeros(d) if theta0 is None else theta0.astype(np.float64, copy=True)
    obj = _logistic_objective(X, y, theta, pen)
    for _ in range(NEWTON_MAX_ITER):
        p = expit(X @ theta)
        grad = X.T @ (p - y) + pen * theta
        if np.max(np.abs(grad)) <= NEWTON_TOL * max(n, 1):
            break
        w = p * (1.0 - p)
        H = (X.T * w) @ X + np.diag(pen)
        step = _solve_spd(H, grad)
        t = 1.0
        while True:  # backtracking (Armijo) keeps Newton monotone on badly scaled tasks
            cand = theta - t * step
            cand_obj = _logistic_objective(X, y, cand, pen)
            if cand_obj <= obj - 1e-4 * t * float(grad @ step) or t < 1e-10:
                break
            t *= 0.5
        if t < 1e-10:
            break
        theta, obj = cand, cand_obj
    p = expit(X @ theta)
    D = ((X.T * (p * (1.0 - p))) @ X + np.diag(pen)) / (2.0 * n)
    if not (np.isfinite(theta).all() and np.isfinite(D).all()):
        raise ValueError(
            "The single-task logistic fit diverged (non-finite theta); the task was "
            "rejected so that it cannot corrupt the shared basis. Use ridge > 0."
        )
    return theta, D


@dataclass(frozen=True)
class TaskData:
    """Everything needed to refit one task on all of its data seen so far.

    Immutable: :meth:`add` returns a new object, so a failed update never leaves a
    half-extended task behind.

    Attributes
    ----------
    loss : {"squared", "logistic"}
    n : int
        Rows seen so far.
    XtX, Xty : ndarray of shape (d, d) and (d,), squared loss only
    X, y : ndarray of shape (n, d) and (n,), logistic loss only
    """

    loss: str
    n: int
    XtX: np.ndarray | None = None
    Xty: np.ndarray | None = None
    X: np.ndarray | None = None
    y: np.ndarray | None = None

    @classmethod
    def from_rows(cls, loss: str, X: np.ndarray, y: np.ndarray) -> TaskData:
        if loss == "squared":
            return cls(loss, X.shape[0], XtX=X.T @ X, Xty=X.T @ y)
        return cls(loss, X.shape[0], X=X, y=y)

    def add(self, X: np.ndarray, y: np.ndarray) -> TaskData:
        """Return the data of this task extended by the rows (X, y)."""
        if self.loss == "squared":
            return TaskData(self.loss, self.n + X.shape[0], XtX=self.XtX + X.T @ X, Xty=self.Xty + X.T @ y)
        return TaskData(self.loss, self.n + X.shape[0], X=np.vstack([self.X, X]), y=np.concatenate([self.y, y]))

    def fit(self, ridge: float, mask: np.ndarray, theta0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Fit (theta, D) on all the data; see :func:`fit_squared` / :func:`fit_logistic`."""
        if self.loss == "squared":
            return fit_squared(self.XtX, self.Xty, self.n, ridge, mask)
        return fit_logistic(self.X, self.y, ridge, mask, theta0)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays to persist (see :mod:`ella_dist.core.persistence`)."""
        names = ("XtX", "Xty") if self.loss == "squared" else ("X", "y")
        return {name: getattr(self, name) for name in names}

    @classmethod
    def from_arrays(cls, loss: str, n: int, arrays: dict[str, np.ndarray]) -> TaskData:
        return cls(loss, int(n), **{k: np.array(v, dtype=np.float64) for k, v in arrays.items()})

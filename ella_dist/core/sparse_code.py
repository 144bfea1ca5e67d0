"""The sparse-coding step of ELLA (paper Eq. 3): s(t) for a task against L.

We solve, exactly up to ``tol``,

    s = argmin_s  mu * ||s||_1 + ||theta - L s||^2_D + delta * ||s||^2

which is the LASSO with design D^(1/2) L and target D^(1/2) theta, penalty ``mu``
against the *unscaled* squared residual (scikit-learn's Lasso would need
``alpha = mu / (2 d)``). Expanding the residual gives the k-dimensional quadratic

    s' Q s - 2 c' s + mu ||s||_1,   Q = L' D L + delta I,  c = L' D theta,

solved by cyclic coordinate descent: ``s_j <- soft(c_j - sum_{i!=j} Q_ji s_i, mu/2) / Q_jj``,
until no coordinate moves by more than ``tol * max(1, max|s|)``. The solver is exact
(no approximation beyond the tolerance) and k is small (<= tens), so a sweep is cheap.

``delta = 1e-6 * mean(diag(L'DL))`` is the safeguard that ALGORITHM.md asks for: when
D(t) is singular (a school with 11 rows and constant columns) a column of L can fall
almost in D's null space, Q_jj ~ 0, and an unguarded solver returns codes of 1e13 that
wreck L. With it, by Cauchy-Schwarz ``|s_j| <= ||theta||_D / (2 sqrt(delta))``; its
relative effect on well-posed problems is 1e-6.
"""

from __future__ import annotations

import numpy as np

LASSO_TOL = 1e-12
LASSO_MAX_ITER = 10_000
SAFEGUARD = 1e-6


def lasso_quadratic(
    Q: np.ndarray,
    c: np.ndarray,
    mu: float,
    *,
    s0: np.ndarray | None = None,
    tol: float = LASSO_TOL,
    max_iter: int = LASSO_MAX_ITER,
) -> np.ndarray:
    """Minimise ``s'Qs - 2c's + mu ||s||_1`` for a symmetric PSD Q with positive diagonal.

    Parameters
    ----------
    Q : ndarray of shape (k, k)
    c : ndarray of shape (k,)
    mu : float
        The l1 weight (>= 0).
    s0 : ndarray of shape (k,), optional
        Warm start.

    Returns
    -------
    s : ndarray of shape (k,)
    """
    k = c.shape[0]
    # Plain Python floats: for k <= ~30 a scalar loop beats numpy's per-call overhead.
    Ql = Q.tolist()
    cl = c.tolist()
    s = [0.0] * k if s0 is None else [float(v) for v in s0]
    half_mu = 0.5 * mu
    # g = Q s, maintained incrementally.
    g = (Q @ np.asarray(s)).tolist() if s0 is not None else [0.0] * k
    for _ in range(max_iter):
        max_move = 0.0
        max_abs = 1.0
        for j in range(k):
            qjj = Ql[j][j]
            sj = s[j]
            r = cl[j] - (g[j] - qjj * sj)
            if r > half_mu:
                new = (r - half_mu) / qjj
            elif r < -half_mu:
                new = (r + half_mu) / qjj
            else:
                new = 0.0
            move = new - sj
            if move != 0.0:
                row = Ql[j]
                for i in range(k):
                    g[i] += move * row[i]
                s[j] = new
                if abs(move) > max_move:
                    max_move = abs(move)
            if abs(new) > max_abs:
                max_abs = abs(new)
        if max_move <= tol * max_abs:
            break
    return np.array(s)


def code_task(
    L: np.ndarray, theta: np.ndarray, D: np.ndarray, mu: float, *, s0: np.ndarray | None = None
) -> np.ndarray:
    """Eq. 3: the sparse code s(t) of task (theta, D) against the basis L.

    Parameters
    ----------
    L : ndarray of shape (d, k)
    theta : ndarray of shape (d,)
    D : ndarray of shape (d, d)
    mu : float

    Returns
    -------
    s : ndarray of shape (k,)
    """
    Q, c = coding_problem(L, theta, D)
    return lasso_quadratic(Q, c, mu, s0=s0)


def coding_problem(L: np.ndarray, theta: np.ndarray, D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The safeguarded quadratic (Q, c) of Eq. 3; see the module docstring."""
    DL = D @ L
    Q = L.T @ DL
    Q = 0.5 * (Q + Q.T)
    delta = SAFEGUARD * max(float(np.trace(Q)) / Q.shape[0], 1e-300)
    Q[np.diag_indices_from(Q)] += delta
    return Q, DL.T @ theta

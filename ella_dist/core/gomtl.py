"""GO-MTL (Kumar & Daume III, ICML 2012): the batch multi-task baseline.

Minimises ELLA's Eq. 1 on the *true* losses (no Taylor expansion),

    (1/T) sum_t [ (1/n_t) sum_i loss(x_i . L s_t, y_i) + mu ||s_t||_1 ] + lam ||L||_F^2

with the losses of :mod:`.single_task` (0.5 * squared error, logistic log-loss), so
its objective is the one ELLA approximates. Alternation, as in the paper:

- codes: every s_t by an exact LASSO (squared loss: closed-form quadratic from X'X and
  X'y; logistic: proximal Newton, each step an exact k-dim LASSO, with a line search);
- basis: L exactly (squared loss: one kd x kd linear solve; logistic: damped Newton
  on vec(L) to a small gradient);

until the relative objective change is below ``tol`` (1e-3) or ``max_iter`` (2,000)
rounds. L starts from the top-k singular subspace of the single-task solutions, which
is how GO-MTL's authors initialise it and what makes it converge in tens of rounds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np
from scipy import linalg
from scipy.special import expit

from .base import TaskModelMixin
from .single_task import TaskData, penalty_mask
from .sparse_code import add_safeguard, lasso_quadratic
from .validation import LOSSES, add_intercept, check_task_data, check_task_id

_INNER_TOL = 1e-8
_INNER_MAX = 50


class GOMTL(TaskModelMixin):
    """Grouping and Overlap Multi-Task Learning, batch.

    Parameters
    ----------
    k : int, default=2
    mu : float, default=1e-3
    lam : float, default=1e-2
    loss : {"squared", "logistic"}, default="squared"
    ridge : float, default=1e-2
        Ridge of the single-task fits used only to initialise L.
    fit_intercept : bool, default=True
    tol : float, default=1e-3
        Stop when ``|F_prev - F| <= tol * |F_prev|``.
    max_iter : int, default=2000

    Attributes
    ----------
    L_ : ndarray of shape (d, k)
    codes_ : dict of str to ndarray of shape (k,)
    n_iter_ : int
    objective_ : list of float
        Objective after every round.
    """

    _parameter_constraints: ClassVar[dict[str, tuple]] = {
        "k": ("int", 1, None, True),
        "mu": ("float", 0.0, None, True),
        "lam": ("float", 0.0, None, False),
        "loss": ("choice", LOSSES),
        "ridge": ("float", 0.0, None, True),
        "fit_intercept": ("bool",),
        "tol": ("float", 0.0, None, True),
        "max_iter": ("int", 1, None, True),
    }

    def __init__(
        self,
        k: int = 2,
        mu: float = 1e-3,
        lam: float = 1e-2,
        loss: str = "squared",
        ridge: float = 1e-2,
        fit_intercept: bool = True,
        tol: float = 1e-3,
        max_iter: int = 2000,
    ) -> None:
        self.k = k
        self.mu = mu
        self.lam = lam
        self.loss = loss
        self.ridge = ridge
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self._validate_params()

    def _task_index(self) -> dict:
        return self.codes_ if hasattr(self, "codes_") else {}

    def _theta(self, task_id: str) -> np.ndarray:
        return self.L_ @ self.codes_[task_id]

    @property
    def task_ids_(self) -> list[str]:
        return list(self._task_index())

    # -- fitting ----------------------------------------------------------------------
    def fit(self, tasks: Iterable[tuple[Any, Any, Any]]) -> GOMTL:
        """Learn all ``(task_id, X, y)`` tasks jointly (a batch: every call starts over)."""
        ids, Xs, ys = [], [], []
        n_features = None
        for task_id, X, y in tasks:
            task_id = check_task_id(task_id)
            X, y = check_task_data(X, y, self.loss, n_features=n_features, task_id=task_id)
            n_features = X.shape[1]
            if task_id in ids:  # the same task twice in a batch: concatenate its rows
                j = ids.index(task_id)
                Xs[j], ys[j] = np.vstack([Xs[j], X]), np.concatenate([ys[j], y])
                continue
            ids.append(task_id)
            Xs.append(X)
            ys.append(y)
        if not ids:
            raise ValueError("GOMTL.fit needs at least one task; got an empty iterable.")
        Xs = [add_intercept(X) if self.fit_intercept else X for X in Xs]
        d = Xs[0].shape[1]
        mask = penalty_mask(d, self.fit_intercept)
        thetas = np.column_stack([TaskData.from_rows(self.loss, X, y).fit(self.ridge, mask)[0] for X, y in zip(Xs, ys)])
        U, sv, _ = np.linalg.svd(thetas, full_matrices=False)
        L = np.zeros((d, self.k))
        r = min(self.k, sv.size)
        L[:, :r] = U[:, :r] * (sv[:r] / np.sqrt(len(ids)))
        problem = _Problem(self.loss, Xs, ys, float(self.mu), float(self.lam))
        S = np.zeros((len(ids), self.k))
        history: list[float] = []
        prev = np.inf
        for _ in range(self.max_iter):
            S = problem.code_all(L, S)
            L = problem.solve_basis(L, S)
            obj = problem.objective(L, S)
            history.append(obj)
            if np.isfinite(prev) and abs(prev - obj) <= self.tol * abs(prev):
                break
            prev = obj
        self.n_features_in_ = d - int(self.fit_intercept)
        self.L_ = L
        self.codes_ = {tid: S[i].copy() for i, tid in enumerate(ids)}
        self.n_iter_ = len(history)
        self.objective_ = history
        return self


class _Problem:
    """The tasks of one GO-MTL fit, with the per-task products the solvers reuse."""

    def __init__(self, loss: str, Xs: list[np.ndarray], ys: list[np.ndarray], mu: float, lam: float) -> None:
        self.loss, self.Xs, self.ys, self.mu, self.lam = loss, Xs, ys, mu, lam
        self.T = len(Xs)
        self.ns = np.array([X.shape[0] for X in Xs], dtype=np.float64)
        if loss == "squared":
            self.G = [X.T @ X / n for X, n in zip(Xs, self.ns)]
            self.h = [X.T @ y / n for X, y, n in zip(Xs, ys, self.ns)]
            self.yy = [float(y @ y) / n for y, n in zip(ys, self.ns)]
            self.G_stack, self.h_stack = np.stack(self.G), np.stack(self.h)

    # mean loss of one task at theta
    def task_loss(self, t: int, theta: np.ndarray) -> float:
        if self.loss == "squared":
            return 0.5 * float(theta @ self.G[t] @ theta - 2.0 * self.h[t] @ theta + self.yy[t])
        z = self.Xs[t] @ theta
        return float(np.mean(np.logaddexp(0.0, z) - self.ys[t] * z))

    def objective(self, L: np.ndarray, S: np.ndarray) -> float:
        total = sum(self.task_loss(t, L @ S[t]) + self.mu * np.abs(S[t]).sum() for t in range(self.T))
        return total / self.T + self.lam * float(np.sum(L * L))

    # -- codes --------------------------------------------------------------------------
    def code_all(self, L: np.ndarray, S: np.ndarray) -> np.ndarray:
        S = S.copy()
        for t in range(self.T):
            S[t] = self._code_squared(t, L) if self.loss == "squared" else self._code_logistic(t, L, S[t])
        return S

    def _code_squared(self, t: int, L: np.ndarray) -> np.ndarray:
        # (1/2n)||y - X L s||^2 + mu||s||_1  ==  s'Qs - 2c's + mu||s||_1 (+ const)
        Q = 0.5 * (L.T @ self.G[t] @ L)
        c = 0.5 * (L.T @ self.h[t])
        add_safeguard(Q)
        return lasso_quadratic(Q, c, self.mu)

    def _code_logistic(self, t: int, L: np.ndarray, s: np.ndarray) -> np.ndarray:
        Z = self.Xs[t] @ L
        y, n = self.ys[t], self.ns[t]

        def f(v: np.ndarray) -> float:
            z = Z @ v
            return float(np.mean(np.logaddexp(0.0, z) - y * z)) + self.mu * float(np.abs(v).sum())

        F = f(s)
        for _ in range(_INNER_MAX):
            p = expit(Z @ s)
            g = Z.T @ (p - y) / n
            H = (Z.T * (p * (1.0 - p))) @ Z / n
            Q = 0.5 * H
            add_safeguard(Q, floor=1e-12)
            target = lasso_quadratic(Q, 0.5 * (H @ s - g), self.mu, s0=s)
            step = target - s
            t_ = 1.0
            while t_ > 1e-8:
                cand = s + t_ * step
                Fc = f(cand)
                if Fc <= F:
                    break
                t_ *= 0.5
            else:
                break
            moved = float(np.max(np.abs(cand - s)))
            s, F = cand, Fc
            if moved <= _INNER_TOL * max(1.0, float(np.max(np.abs(s)))):
                break
        return s

    # -- basis --------------------------------------------------------------------------
    def solve_basis(self, L: np.ndarray, S: np.ndarray) -> np.ndarray:
        d, k = L.shape
        if self.loss == "squared":
            # sum_t kron(s_t s_t', G_t) and sum_t kron(s_t, h_t) in one contraction each;
            # index (a, i) is a * d + i, i.e. vec() stacking the columns of L.
            M = np.einsum("ta,tb,tij->aibj", S, S, self.G_stack).reshape(k * d, k * d) / self.T
            rhs = np.einsum("ta,ti->ai", S, self.h_stack).reshape(k * d) / self.T
            M[np.diag_indices_from(M)] += 2.0 * self.lam
            x = linalg.cho_solve(linalg.cho_factor(M, check_finite=False), rhs, check_finite=False)
            return x.reshape((d, k), order="F")
        return self._basis_logistic(L, S)

    def _basis_objective(self, L: np.ndarray, S: np.ndarray) -> float:
        return sum(self.task_loss(t, L @ S[t]) for t in range(self.T)) / self.T + self.lam * float(np.sum(L * L))

    def _basis_logistic(self, L: np.ndarray, S: np.ndarray) -> np.ndarray:
        d, k = L.shape
        F = self._basis_objective(L, S)
        for _ in range(_INNER_MAX):
            grad = 2.0 * self.lam * L
            H = np.zeros((k * d, k * d))
            for t in range(self.T):
                X, y, n = self.Xs[t], self.ys[t], self.ns[t]
                p = expit(X @ (L @ S[t]))
                grad += np.outer(X.T @ (p - y), S[t]) / (n * self.T)
                H += np.kron(np.outer(S[t], S[t]), (X.T * (p * (1.0 - p))) @ X) / (n * self.T)
            H[np.diag_indices_from(H)] += 2.0 * self.lam
            g = grad.ravel(order="F")
            step = linalg.cho_solve(linalg.cho_factor(H, check_finite=False), g, check_finite=False)
            step = step.reshape((d, k), order="F")
            t_ = 1.0
            while t_ > 1e-8:
                cand = L - t_ * step
                Fc = self._basis_objective(cand, S)
                if Fc <= F - 1e-4 * t_ * float(g @ step.ravel(order="F")):
                    break
                t_ *= 0.5
            else:
                break
            L, F = cand, Fc
            if float(np.max(np.abs(grad))) <= 1e-8:
                break
        return L

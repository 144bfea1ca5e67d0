"""ELLA's running sums A, b and the L step (paper Eq. 7-8 and the appendix).

Each task t with code s, parameters theta and curvature D adds

    A += kron(s s', D)            (kd x kd)
    b += kron(s, D theta)         (kd,)     == vec(s' kron (theta' D)) of Algorithm 1

and the basis is ``vec(L) = ((1/T) A + lam I)^-1 (1/T) b`` with vec() stacking
columns, i.e. the minimiser of ``(1/T) sum_t ||theta_t - L s_t||^2_{D_t} + lam ||L||_F^2``.
No explicit inverse is ever formed. Three solvers, chosen by ``method``:

``"cholesky"``
    Factor ``A/T + lam I`` and back-solve: O((kd)^3 / 3) per update, exact. Fastest at
    every size measured (kd = 26 .. 1,000, ``bench/results/scaling.md``), so ``"auto"``
    always chooses it.
``"eigen"``
    The paper's appendix: keep A = U S U' and update it by the rank-d change
    kron(s s', D) = W W' (W = s kron D^(1/2)); then
    ``vec(L) = U psi, psi_i = (U'b / T)_i / (lam + S_ii / T)``, so a change of T costs
    nothing. The update is an eigendecomposition of ``S + (U'W)(U'W)'``, O((kd)^3)
    with a larger constant than Cholesky; it is kept for comparison and never chosen
    by ``"auto"`` (see bench/).
``"cg"``
    Conjugate gradient on ``(A/T + lam I) x = b/T`` (only matrix-vector products),
    warm-started from the previous L, to relative residual 1e-12: O(iterations (kd)^2).
    It would win for very large kd if few iterations sufficed, but with the small lam
    the grids choose (e^-5) the system is ill-conditioned and CG needs hundreds of
    iterations: measured 2x slower than Cholesky at kd = 1,000. Kept for experiments
    (and as the path to a matrix-free A), never chosen by ``"auto"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy.linalg import lapack

METHODS = ("auto", "cholesky", "eigen", "cg")
CG_RTOL = 1e-12


def task_terms(s: np.ndarray, theta: np.ndarray, D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One task's contribution ``(kron(s s', D), kron(s, D theta))`` to (A, b).

    Written as one broadcast product each (entry (a, i), (b, j) is s_a s_b D_ij) rather
    than ``np.kron``, whose generic reshaping cost more than the arithmetic here.
    """
    k, d = s.shape[0], D.shape[0]
    dA = (s[:, None, None, None] * s[None, None, :, None]) * D[None, :, None, :]
    return dA.reshape(k * d, k * d), (s[:, None] * (D @ theta)[None, :]).reshape(k * d)


def _psd_sqrt_factor(D: np.ndarray) -> np.ndarray:
    """W with W W' = D for a symmetric PSD D (eigen-based; tolerates singular D)."""
    w, V = np.linalg.eigh(0.5 * (D + D.T))
    return V * np.sqrt(np.clip(w, 0.0, None))


@dataclass(frozen=True)
class RunningBasis:
    """The state (A, b, T) behind L, plus the eigendecomposition when ``method="eigen"``.

    Immutable: :meth:`updated` returns a new object and leaves this one untouched,
    which is what lets a model reject a failed update without any rollback code.

    Attributes
    ----------
    d, k : int
    lam : float
    method : str
    A : ndarray of shape (kd, kd)
    b : ndarray of shape (kd,)
    T : int
        Distinct tasks folded in.
    U, S : ndarray of shape (kd, kd) and (kd,), only for ``method="eigen"``
    """

    d: int
    k: int
    lam: float
    method: str = "auto"
    A: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    b: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    T: int = 0
    U: np.ndarray | None = field(default=None, repr=False)
    S: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        kd = self.k * self.d
        if self.A is None:
            object.__setattr__(self, "A", np.zeros((kd, kd)))
            object.__setattr__(self, "b", np.zeros(kd))
        if self.resolved_method == "eigen" and self.U is None:
            S, U = np.linalg.eigh(self.A)
            object.__setattr__(self, "U", U)
            object.__setattr__(self, "S", S)

    @property
    def resolved_method(self) -> str:
        return "cholesky" if self.method == "auto" else self.method

    def updated(
        self,
        add: tuple[np.ndarray, np.ndarray, np.ndarray],
        remove: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> RunningBasis:
        """Fold in a task's (s, theta, D); ``remove`` takes its previous one out first.

        T grows by one for a new task (``remove is None``) and stays for a revisit.
        """
        dA, db = task_terms(*add)
        A, b = self.A + dA, self.b + db
        if remove is not None:
            oA, ob = task_terms(*remove)
            A -= oA
            b -= ob
        T = self.T + (remove is None)
        if self.resolved_method != "eigen":
            return replace(self, A=A, b=b, T=T)
        U, S = self.U, self.S
        # Rank-d updates of the eigendecomposition: kron(ss', D) = W W'.
        for sign, (s, _, D) in ((1.0, add),) + (((-1.0, remove),) if remove is not None else ()):
            W = np.kron(s[:, None], _psd_sqrt_factor(D))
            P = U.T @ W
            S, Q = np.linalg.eigh(np.diag(S) + sign * (P @ P.T))
            U = U @ Q
        return replace(self, A=A, b=b, T=T, U=U, S=S)

    def solve(self, L0: np.ndarray | None = None) -> np.ndarray:
        """The basis L of shape (d, k) for the current sums (zeros before any task)."""
        if self.T == 0:
            return np.zeros((self.d, self.k))
        method = self.resolved_method
        T, lam = float(self.T), self.lam
        if method == "cholesky":
            M = self.A / T
            M.flat[:: M.shape[0] + 1] += lam
            # LAPACK directly: scipy's cho_factor/cho_solve wrappers cost more than the
            # factorisation itself at the paper's sizes (profiled).
            c, info = lapack.dpotrf(M, lower=False, clean=False, overwrite_a=True)
            if info == 0:
                x, info = lapack.dpotrs(c, self.b / T, lower=False)
            if info != 0:
                raise np.linalg.LinAlgError(f"Cholesky of (A/T + lam I) failed (LAPACK info={info}).")
        elif method == "eigen":
            x = self.U @ ((self.U.T @ self.b / T) / (lam + self.S / T))
        else:
            x = _conjugate_gradient(self.A / T, lam, self.b / T, None if L0 is None else L0.ravel(order="F"))
        return x.reshape((self.d, self.k), order="F")


def _conjugate_gradient(M: np.ndarray, lam: float, rhs: np.ndarray, x0: np.ndarray | None) -> np.ndarray:
    """Solve (M + lam I) x = rhs for a symmetric PSD M by conjugate gradient."""
    x = np.zeros_like(rhs) if x0 is None else x0.copy()
    r = rhs - (M @ x + lam * x)
    p = r.copy()
    rr = float(r @ r)
    stop = (CG_RTOL * float(np.linalg.norm(rhs))) ** 2
    for _ in range(10 * rhs.shape[0]):
        if rr <= stop:
            break
        Mp = M @ p + lam * p
        alpha = rr / float(p @ Mp)
        x += alpha * p
        r -= alpha * Mp
        rr_new = float(r @ r)
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x

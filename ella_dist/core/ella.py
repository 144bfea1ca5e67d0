"""ELLA, the Efficient Lifelong Learning Algorithm (Ruvolo & Eaton, ICML 2013).

Algorithm 1 of the paper, one task (or one more batch of a known task) per call.
The model minimises, over the tasks seen so far,

    (1/T) sum_t [ mu ||s_t||_1 + ||theta_t - L s_t||^2_{D_t} ] + lam ||L||_F^2

with theta_t, D_t from the single-task learner (:mod:`.single_task`), s_t fixed when
task t is (re)visited (:mod:`.sparse_code`), and L re-solved from the running sums
(:mod:`.basis`). Task t's model is theta(t) = L s_t with the *current* L, which is
what makes early tasks improve as later ones arrive (reverse transfer).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from . import persistence
from .base import TaskModelMixin
from .basis import METHODS, RunningBasis
from .single_task import TaskData, penalty_mask
from .sparse_code import code_task
from .validation import LOSSES, add_intercept, check_task_data, check_task_id

ZERO_COLUMN_RTOL = 1e-12


@dataclass(frozen=True)
class TaskState:
    """What ELLA keeps of one task.

    Attributes
    ----------
    theta : ndarray of shape (d,)
        Single-task optimum (intercept last when ``fit_intercept``).
    D : ndarray of shape (d, d)
        Half the Hessian of the task's mean loss at theta.
    s : ndarray of shape (k,)
        Sparse code against L, fixed when the task was last (re)visited.
    n : int
        Rows of data seen for the task.
    """

    theta: np.ndarray
    D: np.ndarray
    s: np.ndarray
    n: int


class ELLA(TaskModelMixin):
    """Efficient Lifelong Learning Algorithm for linear/logistic regression tasks.

    Parameters
    ----------
    k : int, default=2
        Number of latent basis components (columns of L).
    mu : float, default=1e-3
        l1 weight on each code s_t (Eq. 3, unscaled squared residual).
    lam : float, default=1e-2
        Frobenius penalty on L; must be > 0 so the L step is well posed.
    loss : {"squared", "logistic"}, default="squared"
    ridge : float, default=1e-2
        Ridge penalty of the single-task learner (see :mod:`.single_task`); the
        intercept is never penalised.
    fit_intercept : bool, default=True
        Append a constant-1 column to X (the last coordinate of theta).
    init : {"random", "first_k", "zeros"}, default="random"
        Initial L: standard normal entries, or zeros whose columns are filled by the
        first tasks' thetas, or zeros. Whatever the choice, a column of L whose norm
        falls to zero is re-initialised before coding a task: to that task's theta
        for "first_k" (one column per task), to standard normal entries otherwise.
    random_state : int or None, default=None
        Seed for the random initialisations; fix it for reproducible models.
    l_solver : {"auto", "cholesky", "eigen", "cg"}, default="auto"
        How the L step is solved; see :mod:`.basis`.

    Attributes
    ----------
    L_ : ndarray of shape (d, k)
        The shared basis (d = n_features_in_ + fit_intercept).
    n_features_in_ : int
    n_tasks_ : int
        Distinct tasks seen (T).
    task_ids_ : list of str
        In order of first arrival.
    n_updates_ : int
        Accepted updates (calls that changed the model); a model version.

    Notes
    -----
    *Revisits.* ``partial_fit`` on a known task removes its old terms from A and b,
    refits theta and D on all of the task's rows (kept as exact sufficient statistics
    X'X, X'y for the squared loss, as rows for the logistic loss), re-codes s and adds
    the new terms back; T counts distinct tasks.

    *Single-class tasks (logistic loss).* A task whose rows so far all carry one label
    is rejected with a ValueError: its unpenalised intercept has no finite optimum, so
    theta and D would be arbitrary and would pull L with them. Land mine has tasks with
    ~6% positives, so a small batch can hit this; send the batch together with rows of
    the other class (the model is unchanged by the rejected call). A batch with one
    class *is* accepted for a task that already has both classes.

    *Transactions.* Every update is computed completely before anything is assigned, so
    a rejected call (bad input, a diverged fit) leaves the model, including its random
    state, exactly as it was.

    Examples
    --------
    >>> import numpy as np
    >>> from ella_dist import ELLA
    >>> rng = np.random.default_rng(0)
    >>> model = ELLA(k=2, random_state=0)
    >>> for t in range(4):
    ...     X = rng.normal(size=(30, 3))
    ...     _ = model.partial_fit(X, X @ [1.0, -1.0, 0.5 * t], task_id=f"t{t}")
    >>> model.n_tasks_, model.L_.shape
    (4, (4, 2))
    """

    _parameter_constraints: ClassVar[dict[str, tuple]] = {
        "k": ("int", 1, None, True),
        "mu": ("float", 0.0, None, True),
        "lam": ("float", 0.0, None, False),
        "loss": ("choice", LOSSES),
        "ridge": ("float", 0.0, None, True),
        "fit_intercept": ("bool",),
        "init": ("choice", ("random", "first_k", "zeros")),
        "random_state": ("seed",),
        "l_solver": ("choice", METHODS),
    }

    def __init__(
        self,
        k: int = 2,
        mu: float = 1e-3,
        lam: float = 1e-2,
        loss: str = "squared",
        ridge: float = 1e-2,
        fit_intercept: bool = True,
        init: str = "random",
        random_state: int | None = None,
        l_solver: str = "auto",
    ) -> None:
        self.k = k
        self.mu = mu
        self.lam = lam
        self.loss = loss
        self.ridge = ridge
        self.fit_intercept = fit_intercept
        self.init = init
        self.random_state = random_state
        self.l_solver = l_solver
        self._validate_params()

    # -- state ------------------------------------------------------------------------
    def _setup(self, n_features: int) -> None:
        d = n_features + int(self.fit_intercept)
        self.n_features_in_ = n_features
        self._rng = np.random.default_rng(self.random_state)
        self.L_ = self._rng.standard_normal((d, self.k)) if self.init == "random" else np.zeros((d, self.k))
        self._basis = RunningBasis(d, self.k, float(self.lam), self.l_solver)
        self._tasks: dict[str, TaskState] = {}
        self._data: dict[str, TaskData] = {}
        self._mask = penalty_mask(d, self.fit_intercept)
        self.n_updates_ = 0

    @property
    def n_tasks_(self) -> int:
        return len(self._tasks) if hasattr(self, "_tasks") else 0

    @property
    def task_ids_(self) -> list[str]:
        return list(self._tasks) if hasattr(self, "_tasks") else []

    def _task_index(self) -> dict:
        return self._tasks

    def _theta(self, task_id: str) -> np.ndarray:
        return self.L_ @ self._tasks[task_id].s

    def task_state(self, task_id: Any) -> TaskState:
        """theta, D, s and n of a known task (copies; the model is not exposed)."""
        task_id = self._check_known(task_id)
        st = self._tasks[task_id]
        return TaskState(st.theta.copy(), st.D.copy(), st.s.copy(), st.n)

    @property
    def A_(self) -> np.ndarray:
        """The running sum A, shape (kd, kd)."""
        return self._basis.A

    @property
    def b_(self) -> np.ndarray:
        """The running sum b, shape (kd,)."""
        return self._basis.b

    # -- learning ---------------------------------------------------------------------
    def partial_fit(self, X: Any, y: Any, task_id: Any) -> ELLA:
        """Learn a new task, or refit a known one on its old data plus (X, y).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Without the bias column.
        y : array-like of shape (n_samples,)
            Real targets (squared loss) or labels in {0, 1} / {-1, +1} (logistic).
        task_id : str

        Returns
        -------
        self

        Raises
        ------
        ValueError
            On any bad input; the model is then exactly as before the call.
        """
        task_id = check_task_id(task_id)
        n_features = getattr(self, "n_features_in_", None)
        known = task_id if task_id in getattr(self, "_tasks", ()) else None
        X, y = check_task_data(X, y, self.loss, n_features=n_features, task_id=known)
        Xb = add_intercept(X) if self.fit_intercept else X
        with self._first_call(X.shape[1]):
            old = self._data.get(task_id)
            data = TaskData.from_rows(self.loss, Xb, y) if old is None else old.add(Xb, y)
            prev = self._tasks.get(task_id)
            theta, D = data.fit(self.ridge, self._mask, None if prev is None else prev.theta)
            self._apply(task_id, theta, D, data.n, data)
        return self

    @contextmanager
    def _first_call(self, n_features: int) -> Iterator[None]:
        """Set the model up on its first call; undo the set-up if that call fails.

        Later calls need no undo: :meth:`_apply` commits only once nothing can fail.
        """
        if hasattr(self, "n_features_in_"):
            yield
            return
        before = dict(self.__dict__)
        self._setup(n_features)
        try:
            yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    def update_task(self, task_id: Any, theta: Any, D: Any, n_samples: int) -> ELLA:
        """Fold in a task from its sufficient statistics (theta, D), fitted elsewhere.

        This is Algorithm 1 after the single-task learner: the entry point of the
        distributed engine, whose learners fit (theta, D) in parallel. The model keeps
        no data for such tasks; revisits must come with (theta, D) refitted on all of
        the task's data.

        Parameters
        ----------
        task_id : str
        theta : array-like of shape (d,)
            d = n_features + fit_intercept (intercept last).
        D : array-like of shape (d, d)
            Symmetric positive semi-definite.
        n_samples : int
            Rows behind (theta, D).
        """
        task_id = check_task_id(task_id)
        theta = np.asarray(theta, dtype=np.float64)
        D = np.asarray(D, dtype=np.float64)
        if theta.ndim != 1 or D.shape != (theta.shape[0],) * 2:
            raise ValueError(f"theta must have shape (d,) and D (d, d); got {theta.shape} and {D.shape}.")
        if not (np.isfinite(theta).all() and np.isfinite(D).all()):
            raise ValueError("theta or D contains NaN or infinity; the update was rejected.")
        if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int. Got {n_samples!r}.")
        d_expected = getattr(self, "n_features_in_", theta.shape[0] - int(self.fit_intercept)) + int(self.fit_intercept)
        if theta.shape[0] != d_expected:
            raise ValueError(f"theta has {theta.shape[0]} coefficients, but the model has d={d_expected}.")
        with self._first_call(d_expected - int(self.fit_intercept)):
            self._apply(task_id, theta, D, int(n_samples), None)
        return self

    def _apply(self, task_id: str, theta: np.ndarray, D: np.ndarray, n: int, data: TaskData | None) -> None:
        """Algorithm 1 from (theta, D) on: compute everything, then commit at once."""
        prev = self._tasks.get(task_id)
        D = 0.5 * (D + D.T)  # one rounding-level symmetrisation, the same on every path
        rng_state = self._rng.bit_generator.state
        try:
            L = self._reinit_zero_columns(self.L_.copy(), theta)
            s = code_task(L, theta, D, self.mu)
            remove = None if prev is None else (prev.s, prev.theta, prev.D)
            basis = self._basis.updated((s, theta, D), remove)
            L_new = basis.solve(L0=L)
            if not np.isfinite(L_new).all():
                raise ValueError("The L step produced non-finite values; the update was rejected.")
        except BaseException:
            self._rng.bit_generator.state = rng_state
            raise
        # Commit: nothing below can fail.
        self._basis = basis
        self.L_ = L_new
        self._tasks[task_id] = TaskState(theta, D, s, n)
        if data is not None:
            self._data[task_id] = data
        self.n_updates_ += 1

    def _reinit_zero_columns(self, L: np.ndarray, theta: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(L, axis=0)
        scale = max(float(norms.max()), 1.0)
        zero = np.flatnonzero(norms <= ZERO_COLUMN_RTOL * scale)
        if zero.size == 0:
            return L
        if self.init == "first_k":
            L[:, zero[0]] = theta
        else:
            L[:, zero] = self._rng.standard_normal((L.shape[0], zero.size))
        return L

    def refine(self, n_passes: int = 1) -> ELLA:
        """Re-code every task against the current L, rebuild A, b and re-solve L.

        Not part of Algorithm 1: it removes the approximation of fixing s(t) when
        task t arrives (the main source of ELLA's gap to GO-MTL). Each pass is one
        block-coordinate step on the same objective, so it never increases it.
        """
        if not self._tasks:
            return self
        for _ in range(n_passes):
            basis = RunningBasis(self._basis.d, self.k, float(self.lam), self.l_solver)
            tasks = {}
            for tid, st in self._tasks.items():
                s = code_task(self.L_, st.theta, st.D, self.mu)
                basis = basis.updated((s, st.theta, st.D))
                tasks[tid] = TaskState(st.theta, st.D, s, st.n)
            self._tasks, self._basis = tasks, basis
            self.L_ = basis.solve(L0=self.L_)
            self.n_updates_ += 1
        return self

    def fit(self, tasks: Iterable[tuple[Any, Any, Any]]) -> ELLA:
        """Learn a stream of ``(task_id, X, y)`` in order (a convenience over partial_fit)."""
        for task_id, X, y in tasks:
            self.partial_fit(X, y, task_id=task_id)
        return self

    def objective(self) -> float:
        """ELLA's objective (see the module docstring) for the stored codes and L."""
        if not self._tasks:
            return 0.0
        total = 0.0
        for st in self._tasks.values():
            r = st.theta - self.L_ @ st.s
            total += self.mu * np.abs(st.s).sum() + float(r @ st.D @ r)
        return total / len(self._tasks) + self.lam * float(np.sum(self.L_**2))

    # -- persistence ------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The model as the bytes of a versioned ``.npz`` file (see :meth:`save`)."""
        meta: dict[str, Any] = {"params": self.get_params(), "fitted": hasattr(self, "n_features_in_")}
        arrays: dict[str, np.ndarray] = {}
        if meta["fitted"]:
            meta.update(
                n_features_in=self.n_features_in_,
                n_updates=self.n_updates_,
                T=self._basis.T,
                rng_state=self._rng.bit_generator.state,
                tasks=[{"id": tid, "n": st.n, "has_data": tid in self._data} for tid, st in self._tasks.items()],
            )
            arrays.update(L=self.L_, A=self._basis.A, b=self._basis.b)
            for i, (tid, st) in enumerate(self._tasks.items()):
                arrays.update({f"t{i}_theta": st.theta, f"t{i}_D": st.D, f"t{i}_s": st.s})
                if tid in self._data:
                    arrays.update({f"t{i}_data_{k}": v for k, v in self._data[tid].arrays().items()})
        return persistence.dump_bytes("ella", meta, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> ELLA:
        """Inverse of :meth:`to_bytes`."""
        meta, arrays = persistence.load_bytes("ella", data)
        model = cls(**meta["params"])
        if not meta["fitted"]:
            return model
        model._setup(int(meta["n_features_in"]))
        model._rng.bit_generator.state = meta["rng_state"]
        model.n_updates_ = int(meta["n_updates"])
        model.L_ = arrays["L"]
        model._basis = RunningBasis(
            model._basis.d, model.k, float(model.lam), model.l_solver, A=arrays["A"], b=arrays["b"], T=int(meta["T"])
        )
        for i, t in enumerate(meta["tasks"]):
            model._tasks[t["id"]] = TaskState(arrays[f"t{i}_theta"], arrays[f"t{i}_D"], arrays[f"t{i}_s"], int(t["n"]))
            if t["has_data"]:
                prefix = f"t{i}_data_"
                parts = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
                model._data[t["id"]] = TaskData.from_arrays(model.loss, t["n"], parts)
        return model

    def save(self, path: str) -> None:
        """Write the model to ``path`` atomically (versioned ``.npz``, no pickle)."""
        persistence.write_atomic(path, self.to_bytes())

    @classmethod
    def load(cls, path: str) -> ELLA:
        """Read a model written by :meth:`save`.

        Raises
        ------
        ModelFormatError
            If the file is not an ella-dist ELLA model or has an unknown format version.
        """
        with open(path, "rb") as fh:
            return cls.from_bytes(fh.read())

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"ELLA({params})"


__all__ = ["ELLA", "TaskState"]

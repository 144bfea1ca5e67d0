"""STL: independent single-task learners, the floor ELLA is measured against."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from .base import TaskModelMixin
from .single_task import TaskData, penalty_mask
from .validation import LOSSES, add_intercept, check_task_data, check_task_id


class STL(TaskModelMixin):
    """One ridge / logistic model per task, no sharing.

    Parameters
    ----------
    loss : {"squared", "logistic"}, default="squared"
    ridge : float, default=1e-2
        Same meaning as in :class:`ELLA` (intercept never penalised).
    fit_intercept : bool, default=True

    Attributes
    ----------
    thetas_ : dict of str to ndarray of shape (d,)
    n_features_in_ : int
    """

    _parameter_constraints: ClassVar[dict[str, tuple]] = {
        "loss": ("choice", LOSSES),
        "ridge": ("float", 0.0, None, True),
        "fit_intercept": ("bool",),
    }

    def __init__(self, loss: str = "squared", ridge: float = 1e-2, fit_intercept: bool = True) -> None:
        self.loss = loss
        self.ridge = ridge
        self.fit_intercept = fit_intercept
        self._validate_params()

    def _task_index(self) -> dict:
        return self.thetas_ if hasattr(self, "thetas_") else {}

    def _theta(self, task_id: str) -> np.ndarray:
        return self.thetas_[task_id]

    def partial_fit(self, X: Any, y: Any, task_id: Any) -> STL:
        """Fit (or refit with more rows) one task; the other tasks are untouched."""
        task_id = check_task_id(task_id)
        n_features = getattr(self, "n_features_in_", None)
        X, y = check_task_data(X, y, self.loss, n_features=n_features, task_id=task_id)
        Xb = add_intercept(X) if self.fit_intercept else X
        data = self._data.get(task_id) if n_features is not None else None
        data = TaskData.from_rows(self.loss, Xb, y) if data is None else data.add(Xb, y)
        theta, _ = data.fit(self.ridge, penalty_mask(Xb.shape[1], self.fit_intercept))
        if n_features is None:
            self.n_features_in_ = X.shape[1]
            self.thetas_: dict[str, np.ndarray] = {}
            self._data: dict[str, TaskData] = {}
        self.thetas_[task_id] = theta
        self._data[task_id] = data
        return self

    def fit(self, tasks: Iterable[tuple[Any, Any, Any]]) -> STL:
        """Fit every ``(task_id, X, y)`` independently (forgets earlier fits)."""
        for name in ("n_features_in_", "thetas_", "_data"):
            self.__dict__.pop(name, None)
        for task_id, X, y in tasks:
            self.partial_fit(X, y, task_id=task_id)
        return self

"""What every task-model estimator here shares: parameters and the prediction verbs.

ELLA, GO-MTL and STL all end with one linear model theta(t) per task; they differ
only in how they learn it. Subclasses declare ``_parameter_constraints`` and provide
``_theta(task_id)``; predictions, scores and parameter checks live here once.
"""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

import numpy as np
from scipy.special import expit

from .errors import NotFittedError, UnknownTaskError
from .validation import add_intercept, check_choice, check_scalar, check_task_data, check_task_id, check_X


class TaskModelMixin:
    """Parameters, validation and prediction for estimators with one theta per task."""

    # name -> ("int"|"float", low, high, low_inclusive) or ("choice", values) or ("bool",)
    _parameter_constraints: ClassVar[dict[str, tuple]] = {}
    loss: str
    fit_intercept: bool

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, as given (scikit-learn's contract)."""
        return {name: getattr(self, name) for name in self._parameter_constraints}

    def _validate_params(self) -> None:
        owner = type(self).__name__
        for name, rule in self._parameter_constraints.items():
            value = getattr(self, name)
            if rule[0] == "choice":
                check_choice(value, name, owner, rule[1])
            elif rule[0] == "bool":
                if not isinstance(value, (bool, np.bool_)):
                    raise ValueError(f"The '{name}' parameter of {owner} must be a bool. Got {value!r} instead.")
            elif rule[0] == "seed":
                if value is not None:
                    check_scalar(value, name, owner, kind=numbers.Integral, low=0)
            else:
                kind = numbers.Integral if rule[0] == "int" else numbers.Real
                check_scalar(value, name, owner, kind=kind, low=rule[1], high=rule[2], low_inclusive=rule[3])

    # -- prediction -------------------------------------------------------------------
    def _theta(self, task_id: str) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_known(self, task_id: Any) -> str:
        task_id = check_task_id(task_id)
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(f"This {type(self).__name__} has not been trained on any task yet.")
        if task_id not in self._task_index():
            raise UnknownTaskError(
                f"Unknown task_id {task_id!r}: the model knows {len(self._task_index())} task(s)"
                + (f", e.g. {next(iter(self._task_index()))!r}." if self._task_index() else ".")
            )
        return task_id

    def _task_index(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def _design(self, X: Any, task_id: str) -> np.ndarray:
        X = check_X(X, n_features=self.n_features_in_, task_id=task_id)
        return add_intercept(X) if self.fit_intercept else X

    def decision_function(self, X: Any, task_id: Any) -> np.ndarray:
        """``X . theta(t)`` for each row of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        task_id : str

        Returns
        -------
        ndarray of shape (n_samples,)

        Raises
        ------
        UnknownTaskError
            If the task was never trained (a ``KeyError``).
        """
        task_id = self._check_known(task_id)
        return self._design(X, task_id) @ self._theta(task_id)

    def predict_proba(self, X: Any, task_id: Any) -> np.ndarray:
        """Class probabilities ``[P(y=0), P(y=1)]`` per row (logistic loss only).

        Returns
        -------
        ndarray of shape (n_samples, 2)
        """
        if self.loss != "logistic":
            raise ValueError(f"predict_proba needs loss='logistic'; this model has loss={self.loss!r}.")
        p = expit(self.decision_function(X, task_id))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any, task_id: Any) -> np.ndarray:
        """Predicted values (squared loss) or labels in {0, 1} (logistic loss).

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        z = self.decision_function(X, task_id)
        return (z > 0.0).astype(np.float64) if self.loss == "logistic" else z

    def score(self, X: Any, y: Any, task_id: Any) -> float:
        """R^2 (squared loss) or accuracy (logistic loss) on one task, like scikit-learn."""
        task_id = self._check_known(task_id)
        X, y = check_task_data(X, y, self.loss, n_features=self.n_features_in_, task_id=task_id)
        pred = self.predict(X, task_id)
        if self.loss == "logistic":
            return float(np.mean(pred == y))
        ss_res = float(np.sum((y - pred) ** 2))
        ss_tot = float(np.sum((y - y.mean()) ** 2))
        return 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)

"""Input rules, stated once: hyper-parameters and task data.

Every public entry point of the core calls these before it touches any state, so a
rejected call leaves a model exactly as it was. Messages follow scikit-learn's wording:
name the argument, say what was expected, show what arrived.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

LOSSES = ("squared", "logistic")


def check_scalar(
    value: Any,
    name: str,
    owner: str,
    *,
    kind: type | tuple[type, ...] = numbers.Real,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
) -> Any:
    """Check one numeric hyper-parameter and return it unchanged."""
    if isinstance(value, bool) or not isinstance(value, kind) or (
        isinstance(value, numbers.Real) and not np.isfinite(value)
    ):
        kind_name = "an int" if kind is numbers.Integral else "a float"
        raise ValueError(
            f"The '{name}' parameter of {owner} must be {kind_name}"
            f"{_range_text(low, high, low_inclusive)}. Got {value!r} instead."
        )
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and value > high
    if too_low or too_high:
        kind_name = "an int" if kind is numbers.Integral else "a float"
        raise ValueError(
            f"The '{name}' parameter of {owner} must be {kind_name}"
            f"{_range_text(low, high, low_inclusive)}. Got {value!r} instead."
        )
    return value


def _range_text(low: float | None, high: float | None, low_inclusive: bool) -> str:
    if low is None and high is None:
        return ""
    left = "[" if low_inclusive else "("
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf)" if high is None else f"{high:g}]"
    return f" in the range {left}{lo}, {hi}"


def check_choice(value: Any, name: str, owner: str, choices: tuple[str, ...]) -> str:
    """Check a string option against its allowed values."""
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(
            f"The '{name}' parameter of {owner} must be one of {allowed}. Got {value!r} instead."
        )
    return value


def check_task_id(task_id: Any) -> str:
    """Task ids are non-empty strings (ints are accepted and converted)."""
    if isinstance(task_id, (int, np.integer)) and not isinstance(task_id, bool):
        task_id = str(int(task_id))
    if not isinstance(task_id, str) or not task_id:
        raise ValueError(f"task_id must be a non-empty string. Got {task_id!r} instead.")
    return task_id


def check_X(X: Any, *, n_features: int | None = None, task_id: str | None = None) -> np.ndarray:
    """Return X as a C-contiguous float64 (n, d) array, or raise ValueError.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_features : int, optional
        The number of features the model was trained with; a mismatch is an error.
    task_id : str, optional
        Only used to word the message.
    """
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"X must be a numeric 2-D array; could not convert it: {exc}") from None
    if arr.ndim != 2:
        raise ValueError(
            f"X must be a 2-D array of shape (n_samples, n_features). Got an array with "
            f"{arr.ndim} dimension(s), shape {arr.shape}."
        )
    if arr.shape[0] == 0:
        raise ValueError(f"X is empty: found 0 sample(s) (shape={arr.shape!r}); a task needs at least one.")
    if arr.shape[1] == 0:
        raise ValueError(f"X has 0 features (shape={arr.shape!r}); at least one is required.")
    if n_features is not None and arr.shape[1] != n_features:
        who = f"task {task_id!r} was" if task_id is not None else "the model was"
        raise ValueError(f"X has {arr.shape[1]} features, but {who} trained with {n_features}.")
    if not np.isfinite(arr).all():
        what = "NaN" if np.isnan(arr).any() else "infinity"
        raise ValueError(f"Input X contains {what}.")
    return np.ascontiguousarray(arr)


def check_y(y: Any, n_samples: int, loss: str) -> np.ndarray:
    """Return y as a float64 (n,) array, {0, 1} for the logistic loss, or raise ValueError.

    Labels in {-1, +1} are mapped to {0, 1}. A single class is allowed here (a batch may
    hold one class); whether a whole task may is decided by the single-task learner.
    """
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"y must be a numeric 1-D array; could not convert it: {exc}") from None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"y must be a 1-D array of shape (n_samples,). Got shape {arr.shape}.")
    if arr.shape[0] != n_samples:
        raise ValueError(
            f"X and y have inconsistent numbers of samples: X has {n_samples}, y has {arr.shape[0]}."
        )
    if not np.isfinite(arr).all():
        what = "NaN" if np.isnan(arr).any() else "infinity"
        raise ValueError(f"Input y contains {what}.")
    if loss == "logistic":
        labels = np.unique(arr)
        if np.isin(labels, (0.0, 1.0)).all():
            pass
        elif np.isin(labels, (-1.0, 1.0)).all():
            arr = (arr > 0).astype(np.float64)
        else:
            shown = ", ".join(f"{v:g}" for v in labels[:5]) + (", ..." if labels.size > 5 else "")
            raise ValueError(
                "y must hold binary labels in {0, 1} or {-1, +1} for the logistic loss. "
                f"Got the values {{{shown}}}."
            )
    return np.ascontiguousarray(arr)


def check_task_data(
    X: Any, y: Any, loss: str, *, n_features: int | None = None, task_id: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Validate one task's (X, y) pair; see :func:`check_X` and :func:`check_y`."""
    X = check_X(X, n_features=n_features, task_id=task_id)
    return X, check_y(y, X.shape[0], loss)


def add_intercept(X: np.ndarray) -> np.ndarray:
    """Append the constant-1 bias column (the last column; never regularised)."""
    return np.hstack([X, np.ones((X.shape[0], 1))])

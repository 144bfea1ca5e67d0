"""``RemoteELLA``: a scikit-learn-style estimator whose model lives on a server."""

from __future__ import annotations

from typing import Any

import numpy as np

from .client import Client
from .errors import AlreadyExists


class RemoteELLA:
    """ELLA served remotely, with the estimator verbs of ``ella_dist.ELLA``.

    Parameters
    ----------
    client : Client or str
        A connected client, or a ``host:port`` target to connect to.
    name : str
        The server-side model name.
    create : bool, default=True
        Create the model with ``params`` if it does not exist (an existing one is used
        as it is).
    **params
        ELLA hyper-parameters (``k``, ``mu``, ``lam``, ``loss``, ``ridge``, ...).

    Examples
    --------
    >>> est = RemoteELLA("127.0.0.1:50051", "mines", loss="logistic", k=2)  # doctest: +SKIP
    >>> est.partial_fit(X, y, task_id="mine-0").predict(X, task_id="mine-0")  # doctest: +SKIP
    """

    def __init__(self, client: Client | str, name: str, create: bool = True, **params: Any) -> None:
        self.client = Client(client) if isinstance(client, str) else client
        self.name = name
        self.params = params
        if create:
            try:
                self.client.create_model(name, **params)
            except AlreadyExists:
                pass

    def get_params(self) -> dict[str, Any]:
        """The model's config as the server holds it."""
        return self.client.get_config(self.name)

    def partial_fit(self, X: Any, y: Any, task_id: str) -> RemoteELLA:
        """Learn a new task or one more batch of a known task; returns self."""
        self.client.train(self.name, task_id, X, y)
        return self

    def fit(self, tasks: Any) -> RemoteELLA:
        """Learn an iterable of ``(task_id, X, y)`` in one Train stream; returns self."""
        self.client.train_stream(self.name, tasks)
        return self

    def decision_function(self, X: Any, task_id: str) -> np.ndarray:
        return self.client.decision_function(self.name, task_id, X)

    def predict(self, X: Any, task_id: str) -> np.ndarray:
        return self.client.predict(self.name, task_id, X)

    def predict_proba(self, X: Any, task_id: str) -> np.ndarray:
        return self.client.predict_proba(self.name, task_id, X)

    def score(self, X: Any, y: Any, task_id: str) -> float:
        """Accuracy (logistic) or R^2 (squared), computed from the served predictions."""
        y = np.asarray(y, dtype=np.float64).ravel()
        pred = self.predict(X, task_id)
        if self.get_params().get("loss") == "logistic":
            return float(np.mean(pred == np.where(y < 0, 0.0, y)))
        ss_tot = float(np.sum((y - y.mean()) ** 2))
        return 1.0 - float(np.sum((y - pred) ** 2)) / ss_tot if ss_tot > 0 else 0.0

    @property
    def L_(self) -> np.ndarray:
        """The shared basis, shape (d, k)."""
        return self.client.basis(self.name)

    @property
    def task_ids_(self) -> list[str]:
        return self.client.list_tasks(self.name)

    @property
    def n_tasks_(self) -> int:
        return len(self.task_ids_)

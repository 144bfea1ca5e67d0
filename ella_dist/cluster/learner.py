"""Learner: the single-task fits, (theta(t), D(t)), of the tasks routed to it.

A plain class (testable without Ray) that the engine wraps with ``ray.remote`` where it
creates the pool. Routing is sticky (:func:`route`): every batch of a task goes to the
same learner, which keeps the task's data (:class:`~ella_dist.core.single_task.TaskData`:
``X'X, X'y`` for the squared loss, the rows for the logistic loss) so that a revisit
refits on *all* of the task's rows, warm-started from the task's previous theta, exactly
as :meth:`ella_dist.core.ELLA.partial_fit` does. Only (theta, D, n) leave the learner.

Idempotence: a learner remembers the submission ids it has folded into each task; a
retried submission is answered from memory (``duplicate=True``) without adding its rows
twice. With ``store_dir`` the per-task state is written atomically after every fit and
reloaded on demand, so a restarted learner (Ray ``max_restarts``) still holds its tasks.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ella_dist.core import persistence
from ella_dist.core.errors import ModelFormatError
from ella_dist.core.single_task import TaskData, penalty_mask
from ella_dist.core.validation import add_intercept


def route(task_id: str, num_learners: int) -> int:
    """The learner index of a task: CRC-32 of its id modulo the pool size.

    Deterministic across processes (unlike ``hash``), so every driver of a cluster
    sends a task's batches to the same learner.
    """
    return zlib.crc32(task_id.encode()) % num_learners


@dataclass(frozen=True)
class FitResult:
    """What a learner sends to the parameter actor for one submission.

    Attributes
    ----------
    task_id, submission_id : str
    theta : ndarray of shape (d,) or None
        Single-task optimum on all of the task's rows (None for a duplicate).
    D : ndarray of shape (d, d) or None
        Half the Hessian of the task's mean loss at theta.
    n : int
        Rows behind (theta, D), old and new.
    n_new : int
        Rows in this submission.
    learner, node_id, pid : identify where the fit ran.
    start, end : float
        ``time.time()`` stamps around the fit, taken inside the learner process.
    duplicate : bool
        The submission id was already folded into the task; nothing was refitted.
    """

    task_id: str
    submission_id: str
    theta: np.ndarray | None
    D: np.ndarray | None
    n: int
    n_new: int
    learner: int
    node_id: str
    pid: int
    start: float
    end: float
    duplicate: bool = False


@dataclass
class _Entry:
    data: TaskData
    theta: np.ndarray
    D: np.ndarray
    subs: list[str] = field(default_factory=list)


def _node_id() -> str:
    try:
        import ray

        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    except Exception:  # pragma: no cover - outside Ray the host name is enough
        pass
    return socket.gethostname()


class Learner:
    """Fits (theta, D) for the tasks routed to it and keeps their data for revisits.

    Parameters
    ----------
    index : int
        Position in the pool (for status and routing checks).
    store_dir : str or None
        Directory for durable per-task state; None keeps it in memory only (a
        restarted learner then forgets its tasks, and a revisit of one of them is
        rejected by the parameter actor's row-count check rather than silently
        refitted on the new rows only).
    """

    def __init__(self, index: int, store_dir: str | None = None) -> None:
        self.index = index
        self._store = Path(store_dir) if store_dir else None
        self._tasks: dict[tuple[str, str, str], _Entry] = {}
        self._undo: dict[tuple[str, str, str], tuple[str, _Entry | None]] = {}
        self._node = _node_id()
        self._counters = {"fit_calls": 0, "fits": 0, "duplicates": 0, "errors": 0, "rows": 0, "discards": 0, "restored_tasks": 0}
        self._busy = 0.0
        self._started = time.time()

    # -- durable state ------------------------------------------------------------------
    def _path(self, key: tuple[str, str, str]) -> Path | None:
        if self._store is None:
            return None
        model, generation, task_id = key
        digest = hashlib.sha1(task_id.encode()).hexdigest()
        return self._store / model / generation / f"{digest}.npz"

    def _get(self, key: tuple[str, str, str], loss: str) -> _Entry | None:
        entry = self._tasks.get(key)
        if entry is not None:
            return entry
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            meta, arrays = persistence.load_bytes("learner-task", path.read_bytes())
        except ModelFormatError:
            return None
        parts = {k[5:]: v for k, v in arrays.items() if k.startswith("data_")}
        entry = _Entry(TaskData.from_arrays(loss, meta["n"], parts), arrays["theta"], arrays["D"], list(meta["subs"]))
        self._tasks[key] = entry
        self._counters["restored_tasks"] += 1
        return entry

    def _put(self, key: tuple[str, str, str], entry: _Entry | None) -> None:
        path = self._path(key)
        if entry is None:
            self._tasks.pop(key, None)
            if path is not None:
                path.unlink(missing_ok=True)
            return
        self._tasks[key] = entry
        if path is not None:
            arrays = {f"data_{k}": v for k, v in entry.data.arrays().items()}
            arrays.update(theta=entry.theta, D=entry.D)
            meta = {"task_id": key[2], "n": entry.data.n, "subs": entry.subs}
            persistence.write_atomic(path, persistence.dump_bytes("learner-task", meta, arrays))

    # -- the work -----------------------------------------------------------------------
    def fit(
        self,
        model: str,
        generation: str,
        params: dict[str, Any],
        task_id: str,
        X: np.ndarray,
        y: np.ndarray,
        submission_id: str,
    ) -> FitResult:
        """Fold (X, y) into the task and refit (theta, D) on all of its rows.

        Parameters
        ----------
        model, generation : str
            Model name and the generation of its state (a clear/load starts a new one).
        params : dict
            ``loss``, ``ridge`` and ``fit_intercept`` of the model.
        task_id : str
        X : ndarray of shape (n_new, n_features)
            Validated on the driver (:func:`ella_dist.core.validation.check_task_data`);
            without the bias column.
        y : ndarray of shape (n_new,)
            Validated; {0, 1} for the logistic loss.
        submission_id : str

        Raises
        ------
        ValueError
            The core's message when the single-task fit fails (e.g. a logistic task
            holding one class); the task's stored data is then unchanged.
        """
        start = time.time()
        key = (model, generation, task_id)
        loss, ridge, fit_intercept = params["loss"], float(params["ridge"]), bool(params["fit_intercept"])
        entry = self._get(key, loss)
        if entry is not None and submission_id in entry.subs:
            self._counters["duplicates"] += 1
            end = time.time()
            if entry.subs[-1] == submission_id:
                # The latest fold: its (theta, D) are the stored ones. A retry after this learner
                # died between storing the fit and returning it (e.g. mid-batch) must still
                # deliver them, or the parameter actor could never apply the update.
                return FitResult(task_id, submission_id, entry.theta, entry.D, entry.data.n, X.shape[0],
                                 self.index, self._node, os.getpid(), start, end)
            return FitResult(task_id, submission_id, None, None, entry.data.n, X.shape[0], self.index,
                             self._node, os.getpid(), start, end, duplicate=True)
        # Own copies: arguments arrive zero-copy from Ray's object store, and keeping a view
        # (the logistic loss keeps the rows) would pin the whole argument object - with
        # fit_many, every task's X and y of the batch - in the store for the task's lifetime.
        Xb = add_intercept(X) if fit_intercept else np.array(X, dtype=float, copy=True)
        y = np.array(y, dtype=float, copy=True)
        mask = penalty_mask(Xb.shape[1], fit_intercept)
        try:
            data = TaskData.from_rows(loss, Xb, y) if entry is None else entry.data.add(Xb, y)
            theta, D = data.fit(ridge, mask, None if entry is None else entry.theta)
        except BaseException:
            self._counters["errors"] += 1
            raise
        subs = ([] if entry is None else entry.subs) + [submission_id]
        self._undo[key] = (submission_id, entry)
        self._put(key, _Entry(data, theta, D, subs))
        end = time.time()
        self._counters["fits"] += 1
        self._counters["rows"] += X.shape[0]
        self._busy += end - start
        return FitResult(task_id, submission_id, theta, D, data.n, X.shape[0], self.index,
                         self._node, os.getpid(), start, end)

    def fit_many(self, model: str, generation: str, params: dict[str, Any],
                 items: list[tuple[str, np.ndarray, np.ndarray, str]]) -> list[FitResult | Exception]:
        """:meth:`fit` for several ``(task_id, X, y, submission_id)`` items of one model, in order.

        One actor call for a batch of small tasks (the per-call overhead of Ray is larger
        than a land-mine-sized fit). Each item succeeds or fails on its own: a failure is
        returned in its place (the core's ``ValueError``), never raised, so the other
        items' results are not lost. The coordinator sends at most one item per task in a
        batch (a task's next batch waits until the previous one is applied).
        """
        out: list[FitResult | Exception] = []
        for task_id, X, y, submission_id in items:
            try:
                out.append(self.fit(model, generation, params, task_id, X, y, submission_id))
            except Exception as exc:  # noqa: BLE001 - returned in the item's place
                out.append(exc)
        self._counters["fit_calls"] += 1
        return out

    def discard(self, model: str, generation: str, task_id: str, submission_id: str) -> bool:
        """Undo the last fit of a task if it was ``submission_id`` (the parameter actor rejected it).

        Returns
        -------
        bool
            Whether anything was undone.
        """
        key = (model, generation, task_id)
        undo = self._undo.get(key)
        if undo is None or undo[0] != submission_id:
            return False
        del self._undo[key]
        self._put(key, undo[1])
        self._counters["discards"] += 1
        return True

    def drop(self, model: str, keep_generation: str | None = None) -> int:
        """Forget every task of ``model`` (except those of ``keep_generation``); returns how many."""
        keys = [k for k in self._tasks if k[0] == model and k[1] != keep_generation]
        for key in keys:
            self._tasks.pop(key, None)
            self._undo.pop(key, None)
        if self._store is not None and (self._store / model).is_dir():
            import shutil

            for gen_dir in (self._store / model).iterdir():
                if gen_dir.name != keep_generation:
                    shutil.rmtree(gen_dir, ignore_errors=True)
        return len(keys)

    def stats(self) -> dict[str, str]:
        """Counters as a string map (for ``Engine.status``)."""
        out = {k: str(v) for k, v in self._counters.items()}
        out.update(
            index=str(self.index),
            node_id=self._node,
            pid=str(os.getpid()),
            tasks_held=str(len(self._tasks)),
            busy_seconds=f"{self._busy:.3f}",
            uptime_seconds=f"{time.time() - self._started:.1f}",
            durable=json.dumps(self._store is not None),
        )
        return out

    def ping(self) -> int:
        return os.getpid()

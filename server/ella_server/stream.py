"""Assemble a Train stream into whole tasks, or reject it whole.

The server reads every chunk before it applies anything, so that a stream which ends
in the middle of a task, or whose chunks disagree, changes nothing. This module knows
the chunk rules of ``ella.v1.TrainChunk`` and nothing of gRPC or the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .status import LimitExceededError

MAX_ROWS_PER_CHUNK = 65_536
"""Rows allowed in one TrainChunk (documented in ella.proto)."""
MAX_STREAM_BYTES = 256 * 1024 * 1024
"""X and y bytes allowed in one Train stream (the server holds the stream in memory)."""


@dataclass
class TaskSubmission:
    """One complete task of a stream: X of shape (n, d), y of shape (n,)."""

    task_id: str
    X: np.ndarray
    y: np.ndarray
    submission_id: str | None


@dataclass
class _Open:
    task_id: str
    n_features: int
    first_chunk: int
    xs: list = field(default_factory=list)
    ys: list = field(default_factory=list)
    submission_id: str = ""


class TrainStream:
    """Feed chunks with :meth:`add`, then call :meth:`finish` for the tasks.

    Raises ``ValueError`` (INVALID_ARGUMENT) naming the chunk and the field at fault, or
    :class:`LimitExceededError` (RESOURCE_EXHAUSTED) past ``max_bytes``.
    """

    def __init__(self, max_bytes: int = MAX_STREAM_BYTES, max_rows_per_chunk: int = MAX_ROWS_PER_CHUNK) -> None:
        self.max_bytes = max_bytes
        self.max_rows_per_chunk = max_rows_per_chunk
        self.model: str | None = None
        self.tasks: list[TaskSubmission] = []
        self._open: _Open | None = None
        self._n_chunks = 0
        self._bytes = 0

    def add(self, chunk) -> None:  # noqa: ANN001 - a generated TrainChunk
        i = self._n_chunks
        self._n_chunks += 1
        where = f"Train chunk {i}"
        if chunk.model:
            if self.model is None:
                self.model = chunk.model
            elif chunk.model != self.model:
                raise ValueError(f"{where}: model {chunk.model!r} differs from {self.model!r} named on chunk 0; one stream trains one model.")
        elif self.model is None:
            raise ValueError(f"{where}: 'model' must be set on the first chunk of a Train stream.")
        if not chunk.task_id:
            raise ValueError(f"{where}: 'task_id' must be a non-empty string.")
        n_rows, d = len(chunk.y), chunk.n_features
        if d < 1:
            raise ValueError(f"{where} (task {chunk.task_id!r}): 'n_features' must be >= 1. Got {d}.")
        if n_rows > self.max_rows_per_chunk:
            raise LimitExceededError(
                f"{where} (task {chunk.task_id!r}) has {n_rows} rows; at most {self.max_rows_per_chunk} rows per chunk are allowed."
            )
        if len(chunk.x) != n_rows * d:
            raise ValueError(
                f"{where} (task {chunk.task_id!r}): len(x) must be len(y) * n_features = {n_rows} * {d} = {n_rows * d}. "
                f"Got len(x) = {len(chunk.x)}."
            )
        self._bytes += 8 * (len(chunk.x) + n_rows)
        if self._bytes > self.max_bytes:
            raise LimitExceededError(
                f"Train stream is over {self.max_bytes} bytes of X and y (limit of one stream); send fewer tasks per stream."
            )
        op = self._open
        if op is not None and op.task_id != chunk.task_id:
            raise ValueError(
                f"{where}: task {chunk.task_id!r} starts before task {op.task_id!r} (from chunk {op.first_chunk}) ended; "
                "set end_of_task=true on the last chunk of each task."
            )
        if op is None:
            op = self._open = _Open(chunk.task_id, d, i)
        elif d != op.n_features:
            raise ValueError(
                f"{where}: task {chunk.task_id!r} has n_features={d}, but its chunk {op.first_chunk} had {op.n_features}; "
                "all chunks of a task must have the same n_features."
            )
        if chunk.submission_id:
            if op.submission_id and chunk.submission_id != op.submission_id:
                raise ValueError(f"{where}: task {chunk.task_id!r} has two different submission ids.")
            op.submission_id = chunk.submission_id
        op.xs.append(np.asarray(chunk.x, dtype=np.float64).reshape(n_rows, d))
        op.ys.append(np.asarray(chunk.y, dtype=np.float64))
        if chunk.end_of_task:
            X = np.concatenate(op.xs) if len(op.xs) > 1 else op.xs[0]
            y = np.concatenate(op.ys) if len(op.ys) > 1 else op.ys[0]
            self.tasks.append(TaskSubmission(op.task_id, X, y, op.submission_id or None))
            self._open = None

    def finish(self) -> tuple[str, list[TaskSubmission]]:
        """The model name and the complete tasks, in stream order."""
        if self._open is not None:
            raise ValueError(
                f"Train stream ended in the middle of task {self._open.task_id!r} (no chunk with end_of_task=true "
                f"after chunk {self._open.first_chunk}); nothing was applied."
            )
        if not self.tasks or self.model is None:
            raise ValueError("Train stream carried no task; send at least one chunk with end_of_task=true.")
        return self.model, self.tasks

"""Coordinator: the driver-side pipeline that holds the actor handles.

The one place that waits on Ray. Each submission becomes a small coroutine on a
private event loop (a daemon thread), so many submissions are in flight at once:

1. it waits for the previous submission of the *same task* to finish (a revisit must
   refit on the rows of the earlier batch, and the learner must fold batches in order),
2. sends the rows to the task's learner (sticky routing, :func:`~.learner.route`); fits
   of different tasks run in parallel on the pool,
3. waits for its *turn*: submissions are forwarded to the parameter actor in the order
   they were made (``submit_async`` call order), each with the session's next sequence
   number, and the parameter actor applies them in exactly that order,
4. resolves the caller's future with the :class:`~.parameter.Ack`.

Failures: a learner or the parameter actor that dies is retried (same submission id,
same sequence number) until ``retry_seconds`` pass; both ends are idempotent, so a
retry never counts a task twice. A ValueError from the learner (the core's message)
fails the submission before it reaches the parameter actor; one from the parameter
actor makes the learner undo the fit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import ray
from ray.exceptions import GetTimeoutError, ObjectLostError, OwnerDiedError, RayActorError, RayTaskError

from .errors import BackpressureError, EngineUnavailableError, ModelChangedError, OutOfOrderError
from .learner import FitResult, route
from .parameter import Ack

_TRANSIENT = (RayActorError, ObjectLostError, OwnerDiedError)


def unwrap(exc: BaseException) -> BaseException:
    """The exception an actor raised, without Ray's RayTaskError wrapper."""
    if isinstance(exc, RayTaskError):
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            return cause
    return exc


def get(ref: Any, timeout: float | None = None) -> Any:
    """``ray.get`` that re-raises the actor's own exception (ValueError, UnknownTaskError, ...)."""
    try:
        return ray.get(ref, timeout=timeout)
    except RayTaskError as exc:
        raise unwrap(exc) from None


@dataclass
class _Submission:
    name: str
    generation: str
    params: dict[str, Any]
    task_id: str
    X: np.ndarray
    y: np.ndarray
    submission_id: str
    future: concurrent.futures.Future
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass
class _Lane:
    """Driver-side state of one model."""

    name: str
    params: dict[str, Any]
    generation: str
    n_features: int | None
    semaphore: threading.BoundedSemaphore
    seqs: dict[str, int] = field(default_factory=dict)
    task_tail: dict[str, asyncio.Future] = field(default_factory=dict)
    turn_tail: asyncio.Future | None = None
    in_flight: int = 0


class Coordinator:
    """Holds the actor handles and runs the submission pipeline.

    Parameters
    ----------
    parameter : ActorHandle
        The :class:`~.parameter.ParameterActor`.
    learners : list of ActorHandle
        The :class:`~.learner.Learner` pool; a task goes to ``learners[route(task_id, len(learners))]``.
    max_in_flight : int
        Submissions of one model accepted but not yet acknowledged (back-pressure).
    retry_seconds : float
        How long to keep retrying an unreachable actor before failing the submission
        with :class:`EngineUnavailableError`.
    """

    def __init__(self, parameter: Any, learners: list[Any], *, max_in_flight: int = 64,
                 retry_seconds: float = 120.0) -> None:
        self.parameter = parameter
        self.learners = list(learners)
        self.max_in_flight = int(max_in_flight)
        self.retry_seconds = float(retry_seconds)
        self.session = uuid.uuid4().hex
        self._lanes: dict[str, _Lane] = {}
        self._lock = threading.Lock()
        self.counters = {"submitted": 0, "acked": 0, "failed": 0, "duplicates": 0, "learner_retries": 0,
                         "parameter_retries": 0, "backpressure_rejections": 0}
        self._latencies: list[float] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ella-coordinator", daemon=True)
        self._thread.start()
        self._closed = False

    # -- lanes (cached model config) ----------------------------------------------------------
    def lane(self, name: str, refresh: bool = False) -> _Lane:
        with self._lock:
            lane = self._lanes.get(name)
        if lane is not None and not refresh:
            return lane
        cfg = get(self.parameter.read.remote("get_config", name))
        with self._lock:
            lane = self._lanes.get(name)
            if lane is None:
                lane = _Lane(name, cfg["params"], cfg["generation"], cfg["n_features"],
                             threading.BoundedSemaphore(self.max_in_flight))
                self._lanes[name] = lane
            else:
                lane.params, lane.generation, lane.n_features = cfg["params"], cfg["generation"], cfg["n_features"]
        return lane

    def forget(self, name: str) -> None:
        with self._lock:
            self._lanes.pop(name, None)

    # -- submissions --------------------------------------------------------------------------
    def submit(self, lane: _Lane, task_id: str, X: np.ndarray, y: np.ndarray, submission_id: str,
               block: bool = True, timeout: float | None = None) -> concurrent.futures.Future:
        """Queue a validated submission; returns a future resolving to an :class:`Ack`."""
        if self._closed:
            raise RuntimeError("The engine was shut down.")
        if not lane.semaphore.acquire(blocking=block, timeout=timeout if block else None):
            self.counters["backpressure_rejections"] += 1
            raise BackpressureError(
                f"Model {lane.name!r} already has {self.max_in_flight} submissions in flight (max_in_flight); "
                "wait for some acknowledgements or retry later."
            )
        fut: concurrent.futures.Future = concurrent.futures.Future()
        sub = _Submission(lane.name, lane.generation, lane.params, task_id, X, y, submission_id, fut)
        with self._lock:
            lane.in_flight += 1
            self.counters["submitted"] += 1
        self._loop.call_soon_threadsafe(self._enqueue, lane, sub)
        return fut

    def _enqueue(self, lane: _Lane, sub: _Submission) -> None:
        # Runs on the loop thread in submit() call order: this fixes the arrival order.
        loop = self._loop
        prev_task = lane.task_tail.get(sub.task_id)
        done = loop.create_future()
        lane.task_tail[sub.task_id] = done
        prev_turn, turn = lane.turn_tail, loop.create_future()
        lane.turn_tail = turn
        loop.create_task(self._run(lane, sub, prev_task, done, prev_turn, turn))

    async def _run(self, lane: _Lane, sub: _Submission, prev_task: asyncio.Future | None, done: asyncio.Future,
                   prev_turn: asyncio.Future | None, turn: asyncio.Future) -> None:
        fit: FitResult | None = None
        error: BaseException | None = None
        try:
            if prev_task is not None:
                await asyncio.wait([prev_task])
            fit = await self._fit(sub)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's future
            error = exc
        if prev_turn is not None:
            await asyncio.wait([prev_turn])
        seq = None
        if error is None:
            seq = lane.seqs.get(sub.generation, 0)
            lane.seqs[sub.generation] = seq + 1
        turn.set_result(None)
        if error is None:
            try:
                ack = await self._apply(sub, seq, fit)
                ack = replace(ack, learner=fit.learner, node_id=fit.node_id, fit_start=fit.start, fit_end=fit.end)
                if lane.n_features is None and lane.generation == sub.generation:
                    lane.n_features = ack.n_features
            except BaseException as exc:  # noqa: BLE001
                error = exc
                if isinstance(exc, ValueError) and not fit.duplicate:
                    await self._discard(sub)
        done.set_result(None)
        if lane.task_tail.get(sub.task_id) is done:
            del lane.task_tail[sub.task_id]
        if lane.turn_tail is turn:
            lane.turn_tail = None
        with self._lock:
            lane.in_flight -= 1
            if error is None:
                self.counters["acked"] += 1
                self.counters["duplicates"] += int(ack.duplicate)
                self._latencies.append(time.perf_counter() - sub.enqueued)
                del self._latencies[:-10000]
            else:
                self.counters["failed"] += 1
        lane.semaphore.release()
        if isinstance(error, ModelChangedError):
            self._loop.run_in_executor(None, self._refresh, sub.name)
        if error is None:
            sub.future.set_result(ack)
        else:
            sub.future.set_exception(error)

    def _refresh(self, name: str) -> None:
        try:
            self.lane(name, refresh=True)
        except Exception:  # noqa: BLE001 - the model may be gone; the next call will say so
            self.forget(name)

    async def _retrying(self, what: str, make_ref: Any, counter: str) -> Any:
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.05
        while True:
            try:
                return await make_ref()
            except RayTaskError as exc:
                cause = unwrap(exc)
                if not isinstance(cause, OutOfOrderError):
                    raise cause from None
                last: BaseException = cause
            except _TRANSIENT as exc:
                last = exc
            if time.monotonic() > deadline:
                raise EngineUnavailableError(
                    f"{what} stayed unreachable for {self.retry_seconds:.0f} s: {last}"
                ) from None
            with self._lock:
                self.counters[counter] += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _fit(self, sub: _Submission) -> FitResult:
        idx = route(sub.task_id, len(self.learners))
        learner = self.learners[idx]

        def call() -> Any:
            return learner.fit.remote(sub.name, sub.generation, sub.params, sub.task_id, sub.X, sub.y,
                                      sub.submission_id)

        return await self._retrying(f"learner {idx}", call, "learner_retries")

    async def _apply(self, sub: _Submission, seq: int, fit: FitResult) -> Ack:
        def call() -> Any:
            return self.parameter.apply.remote(sub.name, sub.generation, self.session, seq, fit)

        return await self._retrying("the parameter actor", call, "parameter_retries")

    async def _discard(self, sub: _Submission) -> None:
        learner = self.learners[route(sub.task_id, len(self.learners))]
        try:
            await learner.discard.remote(sub.name, sub.generation, sub.task_id, sub.submission_id)
        except Exception:  # noqa: BLE001 - best effort: the parameter actor's row check catches a miss
            pass

    # -- bookkeeping --------------------------------------------------------------------------
    def stats(self) -> dict[str, str]:
        with self._lock:
            out = {k: str(v) for k, v in self.counters.items()}
            lat = np.array(self._latencies) if self._latencies else None
            for lane in self._lanes.values():
                out[f"model.{lane.name}.in_flight"] = str(lane.in_flight)
                out[f"model.{lane.name}.generation"] = lane.generation
        out["session"] = self.session
        out["learners"] = str(len(self.learners))
        out["max_in_flight"] = str(self.max_in_flight)
        if lat is not None:
            out["submit_latency_p50_ms"] = f"{1e3 * np.percentile(lat, 50):.2f}"
            out["submit_latency_p99_ms"] = f"{1e3 * np.percentile(lat, 99):.2f}"
        return out

    def close(self, timeout: float = 10.0) -> None:
        """Wait (up to ``timeout``) for in-flight submissions, then stop the loop thread."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(lane.in_flight for lane in list(self._lanes.values())):
            time.sleep(0.01)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


__all__ = ["Coordinator", "GetTimeoutError", "get", "unwrap"]

"""Coordinator: the driver-side pipeline that holds the actor handles.

The one place that waits on Ray. Submissions are queued per model (a *lane*) on a
private event loop (a daemon thread) and moved through two stages, in batches:

1. **fit**: a submission may go to its task's learner (sticky routing,
   :func:`~.learner.route`) once the previous submission of the *same task* has been
   applied (a revisit must refit on the rows of the earlier batch, and the learner must
   fold batches in order). Ready submissions of one learner are sent together in one
   ``fit_many`` call (at most ``max_batch`` items and ``max_batch_bytes`` of X, at most
   ``learner_depth`` calls in flight per learner and lane); fits on different learners
   run in parallel.
2. **apply**: submissions are forwarded in the order they were made (``submit*`` call
   order), each with the session's next sequence number. The longest run of
   consecutive fitted submissions at the head of the lane goes in one ``apply_many``
   call (one in flight per lane); the parameter actor applies it in exactly that order,
   logs it with one fsync, and answers per item.

Batching is adaptive (like Nagle's algorithm without the timer): a lone submission is
sent at once (two actor round trips, as before batching); whatever arrives while a call
is in flight joins the next call. ``submit_many`` enqueues whole lists at once so the
first calls are already full. Every item keeps its own submission id, sequence number,
result and error, so batching changes neither the order nor the idempotence rules.

Failures: a learner or the parameter actor that dies is retried (same items, same
submission ids, same sequence numbers) until ``retry_seconds`` pass; both ends are
idempotent, so a retry never counts a task twice. A ValueError from the learner (the
core's message) fails that submission before it reaches the parameter actor; one from
the parameter actor makes the learner undo the fit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
import uuid
from collections import deque
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


@dataclass(eq=False)
class _Submission:
    lane: _Lane
    name: str
    generation: str
    params: dict[str, Any]
    task_id: str
    X: np.ndarray
    y: np.ndarray
    submission_id: str
    future: concurrent.futures.Future
    enqueued: float = field(default_factory=time.perf_counter)
    fitted: bool = False
    fit: FitResult | None = None
    error: BaseException | None = None
    ack: Ack | None = None


@dataclass(eq=False)
class _Lane:
    """Driver-side state of one model (the queues are touched on the loop thread only)."""

    name: str
    params: dict[str, Any]
    generation: str
    n_features: int | None
    semaphore: threading.BoundedSemaphore
    seqs: dict[str, int] = field(default_factory=dict)
    waiting: deque = field(default_factory=deque)  # not yet sent to a learner, arrival order
    order: deque = field(default_factory=deque)  # not yet sent to the parameter actor, arrival order
    active_tasks: set = field(default_factory=set)  # tasks with a submission at a learner or being applied
    learner_calls: dict[int, int] = field(default_factory=dict)  # fit_many calls in flight per learner
    applying: bool = False
    pump_scheduled: bool = False
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
    max_batch : int, default=64
        Most submissions in one ``fit_many`` or ``apply_many`` call.
    max_batch_bytes : int, default=8 MiB
        Most bytes of X in one ``fit_many`` call (a larger single task still goes alone).
    learner_depth : int, default=2
        ``fit_many`` calls in flight per learner and model (2: the next batch is
        shipped while the current one is fitted).
    """

    def __init__(self, parameter: Any, learners: list[Any], *, max_in_flight: int = 64,
                 retry_seconds: float = 120.0, max_batch: int = 64, max_batch_bytes: int = 8 * 1024**2,
                 learner_depth: int = 2) -> None:
        self.parameter = parameter
        self.learners = list(learners)
        self.max_in_flight = int(max_in_flight)
        self.retry_seconds = float(retry_seconds)
        self.max_batch = max(1, int(max_batch))
        self.max_batch_bytes = int(max_batch_bytes)
        self.learner_depth = max(1, int(learner_depth))
        self.session = uuid.uuid4().hex
        self._lanes: dict[str, _Lane] = {}
        self._seen: dict[str, dict[str, int]] = {}  # model -> generation -> newest acknowledged version
        self._lock = threading.Lock()
        self.counters = {"submitted": 0, "acked": 0, "failed": 0, "duplicates": 0, "learner_retries": 0,
                         "parameter_retries": 0, "backpressure_rejections": 0, "fit_calls": 0,
                         "apply_calls": 0, "max_fit_batch": 0, "max_apply_batch": 0}
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

    def _note_version(self, name: str, generation: str, version: int) -> None:
        with self._lock:
            gens = self._seen.setdefault(name, {})
            gens[generation] = max(gens.get(generation, 0), int(version))
            while len(gens) > 4:  # generations end with clear/load; keep the recent ones
                del gens[next(iter(gens))]

    def seen_version(self, name: str, generation: str) -> int:
        """The newest model version this session was acknowledged for ``(name, generation)`` (0: none)."""
        gens = self._seen.get(name)
        return gens.get(generation, 0) if gens else 0

    def forget(self, name: str) -> None:
        with self._lock:
            self._lanes.pop(name, None)

    # -- submissions --------------------------------------------------------------------------
    def reserve(self, lane: _Lane, block: bool = True, timeout: float | None = None) -> None:
        """Take one of the model's ``max_in_flight`` slots (or raise BackpressureError)."""
        if self._closed:
            raise RuntimeError("The engine was shut down.")
        if not lane.semaphore.acquire(blocking=block, timeout=timeout if block else None):
            if block:
                with self._lock:
                    self.counters["backpressure_rejections"] += 1
                raise BackpressureError(
                    f"Model {lane.name!r} still had {self.max_in_flight} submissions in flight (max_in_flight) "
                    f"after waiting {timeout} s; wait for some acknowledgements or retry later."
                )
            with self._lock:
                self.counters["backpressure_rejections"] += 1
            raise BackpressureError(
                f"Model {lane.name!r} already has {self.max_in_flight} submissions in flight (max_in_flight); "
                "wait for some acknowledgements or retry later."
            )

    def try_reserve(self, lane: _Lane) -> bool:
        """Take a slot if one is free now (no counting, no error)."""
        if self._closed:
            raise RuntimeError("The engine was shut down.")
        return lane.semaphore.acquire(blocking=False)

    def make(self, lane: _Lane, task_id: str, X: np.ndarray, y: np.ndarray, submission_id: str) -> _Submission:
        """A submission for a reserved slot (not queued yet: see :meth:`enqueue`)."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        sub = _Submission(lane, lane.name, lane.generation, lane.params, task_id, X, y, submission_id, fut)
        with self._lock:
            lane.in_flight += 1
            self.counters["submitted"] += 1
        return sub

    def enqueue(self, subs: list[_Submission]) -> None:
        """Queue submissions (in this order) in one step on the loop thread."""
        if subs:
            self._loop.call_soon_threadsafe(self._enqueue, list(subs))  # a copy: callers reuse their buffer

    def submit(self, lane: _Lane, task_id: str, X: np.ndarray, y: np.ndarray, submission_id: str,
               block: bool = True, timeout: float | None = None) -> concurrent.futures.Future:
        """Queue a validated submission; returns a future resolving to an :class:`Ack`."""
        self.reserve(lane, block, timeout)
        sub = self.make(lane, task_id, X, y, submission_id)
        self.enqueue([sub])
        return sub.future

    def _enqueue(self, subs: list[_Submission]) -> None:
        # Runs on the loop thread in enqueue() call order: this fixes the arrival order.
        for sub in subs:
            sub.lane.waiting.append(sub)
            sub.lane.order.append(sub)
            self._schedule(sub.lane)

    def _schedule(self, lane: _Lane) -> None:
        if not lane.pump_scheduled:
            lane.pump_scheduled = True
            self._loop.call_soon(self._pump, lane)

    def _pump(self, lane: _Lane) -> None:
        lane.pump_scheduled = False
        self._dispatch_apply(lane)
        self._dispatch_fits(lane)

    def _dispatch_fits(self, lane: _Lane) -> None:
        if not lane.waiting:
            return
        n = len(self.learners)
        groups: dict[int, list[list[_Submission]]] = {}
        sizes: dict[int, int] = {}
        blocked: set[str] = set()
        keep: deque = deque()
        for sub in lane.waiting:
            idx = route(sub.task_id, n)
            ok = sub.task_id not in lane.active_tasks and sub.task_id not in blocked
            if ok:
                calls = groups.setdefault(idx, [])
                cur = calls[-1] if calls else None
                if cur is not None and (len(cur) >= self.max_batch or cur[0].generation != sub.generation
                                        or sizes[idx] + sub.X.nbytes > self.max_batch_bytes):
                    cur = None
                if cur is None:
                    if lane.learner_calls.get(idx, 0) + len(calls) >= self.learner_depth:
                        ok = False
                    else:
                        cur = []
                        calls.append(cur)
                        sizes[idx] = 0
            if not ok:
                blocked.add(sub.task_id)  # later submissions of this task wait behind it
                keep.append(sub)
                continue
            cur.append(sub)
            sizes[idx] += sub.X.nbytes
            lane.active_tasks.add(sub.task_id)
        lane.waiting = keep
        for idx, calls in groups.items():
            for group in calls:
                lane.learner_calls[idx] = lane.learner_calls.get(idx, 0) + 1
                self._loop.create_task(self._fit_batch(lane, idx, group))

    async def _fit_batch(self, lane: _Lane, idx: int, group: list[_Submission]) -> None:
        learner, first = self.learners[idx], group[0]
        items = [(s.task_id, s.X, s.y, s.submission_id) for s in group]

        def call() -> Any:
            return learner.fit_many.remote(first.name, first.generation, first.params, items)

        try:
            results = await self._retrying(f"learner {idx}", call, "learner_retries")
        except BaseException as exc:  # noqa: BLE001 - every item fails with it
            results = [exc] * len(group)
        for sub, res in zip(group, results):
            sub.fitted = True
            if isinstance(res, BaseException):
                sub.error = res
            else:
                sub.fit = res
        lane.learner_calls[idx] -= 1
        with self._lock:
            self.counters["fit_calls"] += 1
            self.counters["max_fit_batch"] = max(self.counters["max_fit_batch"], len(group))
        self._schedule(lane)

    def _dispatch_apply(self, lane: _Lane) -> None:
        if lane.applying:
            return
        run: list[_Submission] = []
        while lane.order and lane.order[0].fitted and len(run) < self.max_batch:
            sub = lane.order[0]
            if sub.error is not None:  # failed in the learner: no sequence number, never forwarded
                lane.order.popleft()
                self._finish(sub)
                continue
            if run and sub.generation != run[0].generation:
                break
            run.append(lane.order.popleft())
        if not run:
            return
        gen = run[0].generation
        seq = lane.seqs.get(gen, 0)
        lane.seqs[gen] = seq + len(run)
        lane.applying = True
        self._loop.create_task(self._apply_run(lane, seq, run))

    async def _apply_run(self, lane: _Lane, seq: int, run: list[_Submission]) -> None:
        first = run[0]
        fits = [s.fit for s in run]

        def call() -> Any:
            return self.parameter.apply_many.remote(first.name, first.generation, self.session, seq, fits)

        try:
            results = await self._retrying("the parameter actor", call, "parameter_retries")
        except BaseException as exc:  # noqa: BLE001 - every item fails with it
            results = [exc] * len(run)
        undo = []
        for sub, res in zip(run, results):
            fit = sub.fit
            if isinstance(res, BaseException):
                sub.error = res
                if isinstance(res, ValueError) and not fit.duplicate:
                    undo.append(sub)
            else:
                sub.ack = replace(res, learner=fit.learner, node_id=fit.node_id, fit_start=fit.start,
                                  fit_end=fit.end)
                if lane.n_features is None and lane.generation == sub.generation:
                    lane.n_features = sub.ack.n_features
                self._note_version(sub.name, sub.generation, res.version)  # before the caller sees the ack
        if undo:
            await asyncio.gather(*(self._discard(s) for s in undo))
        with self._lock:
            self.counters["apply_calls"] += 1
            self.counters["max_apply_batch"] = max(self.counters["max_apply_batch"], len(run))
        for sub in run:
            self._finish(sub)
        lane.applying = False
        self._schedule(lane)

    def _finish(self, sub: _Submission) -> None:
        lane, error, ack = sub.lane, sub.error, sub.ack
        lane.active_tasks.discard(sub.task_id)
        sub.X = sub.y = None  # the rows are at the learner now; free driver memory
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
        if lane.waiting:
            self._schedule(lane)

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

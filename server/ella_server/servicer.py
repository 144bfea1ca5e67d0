"""``EllaServicer``: a thin translation from protobuf messages to ``Engine`` calls.

Each RPC decodes its request, calls the engine in a worker thread (engine calls block
on Ray), and encodes the reply. Every exception goes through :func:`status.to_status`.
The only logic of its own is the Train stream: it is read whole and checked before any
task is applied (see :mod:`.stream`).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import numpy as np

from ella_dist._generated import ella_pb2 as pb
from ella_dist._generated import ella_pb2_grpc as pb_grpc
from ella_dist.core.errors import NotFittedError
from ella_dist.core.validation import check_task_data

from . import status
from .stream import MAX_ROWS_PER_CHUNK, TrainStream

CONFIG_FIELDS = ("loss", "k", "mu", "lam", "ridge", "fit_intercept", "init", "seed", "l_solver")
DEFAULT_ROWS_PER_CHUNK = 4096
DRAINING_MESSAGE = (
    "the server is shutting down (draining the calls in progress); retry shortly: a restarted server on the "
    "same --checkpoint-dir, or another replica, serves the same models"
)
INLINE_PREDICT_VALUES = 65_536
"""Predict inputs up to this many values are validated on the event loop (no thread hop)."""


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


# -- protobuf <-> numpy / dict -------------------------------------------------------------
def matrix_to_array(m: Any, field: str) -> np.ndarray:
    """A 2-D ndarray from an ``ella.v1.Matrix``, or ValueError naming ``field``."""
    shape = tuple(int(s) for s in m.shape)
    if len(shape) != 2:
        raise ValueError(f"'{field}' must be a matrix with shape [n_rows, n_features]. Got shape {list(shape)}.")
    if len(m.values) != shape[0] * shape[1]:
        raise ValueError(
            f"'{field}' has shape {list(shape)}, which needs {shape[0] * shape[1]} values. Got {len(m.values)}."
        )
    # np.asarray over the packed repeated field copies it in C (no per-element Python objects).
    return np.asarray(m.values, dtype=np.float64).reshape(shape)


def array_to_matrix(a: np.ndarray) -> Any:
    a = np.asarray(a, dtype=np.float64)
    # A list of floats fills a repeated double field about twice as fast as an ndarray
    # (which protobuf iterates element by element as numpy scalars).
    return pb.Matrix(values=a.ravel().tolist(), shape=a.shape)


def config_from_msg(cfg: Any) -> dict[str, Any]:
    """Engine keyword arguments from a ModelConfig (only the fields set; seed -> random_state)."""
    out = {}
    for f in CONFIG_FIELDS:
        if cfg.HasField(f):
            out["random_state" if f == "seed" else f] = getattr(cfg, f)
    return out


def model_params(cfg: dict[str, Any]) -> dict[str, Any]:
    """The hyper-parameters inside an engine ``get_config`` answer."""
    return cfg["params"] if isinstance(cfg.get("params"), dict) else cfg


def config_to_msg(cfg: dict[str, Any]) -> Any:
    params = model_params(cfg)
    kw = {}
    for f in CONFIG_FIELDS:
        v = params.get("random_state" if f == "seed" else f)
        if v is not None:
            kw[f] = v
    return pb.ModelConfig(**kw)


def ack_fields(ack: Any) -> tuple[int, int]:
    """(version, n_tasks) of an engine submit acknowledgement."""
    if isinstance(ack, dict):
        return int(ack["version"]), int(ack.get("n_tasks", ack.get("T", 0)))
    if hasattr(ack, "version"):
        return int(ack.version), int(getattr(ack, "n_tasks", getattr(ack, "T", 0)))
    version, n_tasks = ack[0], ack[1]
    return int(version), int(n_tasks)


def flatten_status(st: Any) -> dict[str, dict[str, str]]:
    """Engine status as ``{node: {key: value}}`` strings (nested keys dotted)."""

    def flat(prefix: str, v: Any, out: dict[str, str]) -> None:
        if isinstance(v, dict):
            for k, sub in v.items():
                flat(f"{prefix}.{k}" if prefix else str(k), sub, out)
        else:
            out[prefix or "value"] = str(v)

    if isinstance(st, dict) and st and all(isinstance(v, dict) for v in st.values()):
        nodes = st
    else:
        nodes = {"engine": st}
    result = {}
    for name, v in nodes.items():
        out: dict[str, str] = {}
        flat("", v, out)
        result[str(name)] = out
    return result


class PartialApplyError(Exception):
    """Some tasks of a checked Train stream failed in the engine while others were applied."""

    def __init__(self, failed: list[tuple[str, BaseException]], applied: list, n_tasks: int) -> None:
        super().__init__(str(failed[0][1]))
        self.failed, self.applied, self.n_tasks = failed, applied, n_tasks
        self.cause = failed[0][1]


class EllaServicer(pb_grpc.EllaServicer):
    """The ``ella.v1.Ella`` service over an ``Engine``.

    Parameters
    ----------
    engine : ella_dist.cluster.Engine
    max_workers : int
        Threads for blocking engine calls.
    """

    def __init__(self, engine: Any, max_workers: int = 16) -> None:
        self.engine = engine
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="ella-engine")
        self.started = time.time()
        self.calls = 0
        self.errors = 0
        self.draining = False
        self._in_flight = 0  # calls inside _serve (all on the server's event loop)
        self._idle = asyncio.Event()
        self._futures = hasattr(engine, "decision_function_future")
        self._warm: set[str] = set()  # models this servicer has predicted on (engine lane cached)

    def close(self) -> None:
        # After a drain no engine call is running; if the drain timed out, do not hang on
        # a call that may never return (an engine stuck on a dead cluster).
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _run(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kw))

    def start_draining(self) -> None:
        """Refuse new calls with UNAVAILABLE; the calls already being served go on."""
        self.draining = True
        if self._in_flight == 0:
            self._idle.set()

    async def drained(self, timeout: float) -> bool:
        """Wait until no call is being served (or ``timeout`` seconds); True if none is."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _serve(self, context: grpc.aio.ServicerContext, coro_fn: Callable[[], Any]) -> Any:
        """Run one RPC body; map any exception to a status code and abort with it."""
        self.calls += 1
        if self.draining:
            self.errors += 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, DRAINING_MESSAGE)
        self._in_flight += 1
        self._idle.clear()
        try:
            return await coro_fn()
        except asyncio.CancelledError:
            raise
        except _Abort as exc:
            self.errors += 1
            await context.abort(exc.code, exc.message)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a status code
            self.errors += 1
            code, message = status.to_status(exc)
            await context.abort(code, message)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0 and self.draining:
                self._idle.set()

    # -- models -------------------------------------------------------------------------
    async def CreateModel(self, request, context):  # noqa: N802
        async def body():
            await self._run(self.engine.create_model, request.name, **config_from_msg(request.config))
            cfg = await self._run(self.engine.get_config, request.name)
            return pb.CreateModelResponse(name=request.name, config=config_to_msg(cfg))

        return await self._serve(context, body)

    async def DeleteModel(self, request, context):  # noqa: N802
        async def body():
            self._warm.discard(request.name)
            await self._run(self.engine.delete_model, request.name)
            return pb.DeleteModelResponse()

        return await self._serve(context, body)

    async def ListModels(self, request, context):  # noqa: N802
        async def body():
            return pb.ListModelsResponse(names=sorted(await self._run(self.engine.list_models)))

        return await self._serve(context, body)

    async def GetConfig(self, request, context):  # noqa: N802
        async def body():
            cfg = await self._run(self.engine.get_config, request.name)
            return pb.GetConfigResponse(name=request.name, config=config_to_msg(cfg))

        return await self._serve(context, body)

    # -- training -----------------------------------------------------------------------
    def _check_tasks(self, model: str, tasks: list) -> None:
        """Validate every task of the stream before any is applied (the core's rules)."""
        cfg = self.engine.get_config(model)
        params = model_params(cfg)
        if "n_features" in cfg:
            d = cfg["n_features"]
        else:
            try:
                L = self.engine.basis(model)
                d = int(np.shape(L)[0]) - (1 if params.get("fit_intercept", True) else 0)
            except NotFittedError:
                d = None
        for t in tasks:
            try:
                X, y = check_task_data(t.X, t.y, params.get("loss", "squared"), n_features=d)
            except ValueError as exc:
                raise ValueError(f"task {t.task_id!r}: {exc} Nothing of this Train stream was applied.") from None
            t.X, t.y = X, y
            d = X.shape[1] if d is None else d

    def _apply(self, model: str, tasks: list) -> list:
        """Submit the stream's tasks pipelined (fits overlap, updates apply in stream order)."""
        items = [(t.task_id, t.X, t.y, t.submission_id) for t in tasks]
        if hasattr(self.engine, "submit_many"):
            results = self.engine.submit_many(model, items, return_exceptions=True)
        else:
            results = []
            for item in items:
                try:
                    results.append(self.engine.submit(model, *item[:3], submission_id=item[3]))
                except Exception as exc:  # noqa: BLE001 - reported below
                    results.append(exc)
                    break
        acks, failed = [], []
        for t, r in zip(tasks, results):
            if isinstance(r, BaseException):
                failed.append((t.task_id, r))
                continue
            version, n_tasks = ack_fields(r)
            acks.append(pb.TaskAck(task_id=t.task_id, n_rows=len(t.y), version=version, n_tasks=n_tasks,
                                   submission_id=getattr(r, "submission_id", None) or t.submission_id or ""))
        if failed:
            if not acks:
                raise failed[0][1]
            raise PartialApplyError(failed, acks, len(tasks))
        return acks

    async def Train(self, request_iterator: AsyncIterator, context):  # noqa: N802
        async def body():
            stream = TrainStream()
            async for chunk in request_iterator:
                stream.add(chunk)
            model, tasks = stream.finish()
            await self._run(self._check_tasks, model, tasks)
            try:
                acks = await self._run(self._apply, model, tasks)
            except PartialApplyError as exc:
                # Only failures the checks above cannot foresee get here (e.g. a logistic task
                # holding one class, an actor that stayed down): say exactly what was applied.
                code, msg = status.to_status(exc.cause)
                raise _Abort(
                    code,
                    f"{len(exc.failed)} of {exc.n_tasks} task(s) of this stream were rejected "
                    f"({[t for t, _ in exc.failed]}; first error: {msg}); the other {len(exc.applied)} were applied "
                    f"(model version {exc.applied[-1].version}): {[a.task_id for a in exc.applied]}.",
                ) from exc
            return pb.TrainResponse(acks=acks, version=acks[-1].version, n_tasks=acks[-1].n_tasks)

        return await self._serve(context, body)

    # -- prediction ---------------------------------------------------------------------
    _OUTPUTS = (
        (pb.OUTPUT_SCORES, "scores", "decision_function"),
        (pb.OUTPUT_LABELS, "labels", "predict"),
        (pb.OUTPUT_PROBABILITIES, "probabilities", "predict_proba"),
    )

    async def _predict_arrays(self, request) -> tuple[int, dict[str, np.ndarray]]:
        X = matrix_to_array(request.x, "x")
        wanted = set(request.outputs)
        if not wanted or pb.OUTPUT_UNSPECIFIED in wanted:
            wanted.add(pb.OUTPUT_SCORES)
        calls = [(key, method) for o, key, method in self._OUTPUTS if o in wanted]
        model, task_id = request.model, request.task_id
        if self._futures and model in self._warm and X.size <= INLINE_PREDICT_VALUES:
            # No thread hop: the engine validates X on the event loop and either answers
            # from its snapshot cache (the future is already done: take the result, no
            # await, no wake-up) or sends one actor call whose ObjectRef future the loop
            # awaits. Only models already served once take this path (the engine then has
            # the model's feature count cached, so nothing here blocks on Ray), and only
            # small inputs (validating X and the product are O(size)).
            futs = [getattr(self.engine, f"{method}_future")(model, task_id, X) for _, method in calls]
            if all(f.done() for f in futs):
                done = [f.result() for f in futs]
            else:
                waits = [asyncio.wrap_future(f) for f in futs]
                done = [await waits[0]] if len(waits) == 1 else await asyncio.gather(*waits)
        else:
            done = await self._run(self._predict_blocking, model, task_id, X, calls)
        return X.shape[0], dict(zip((key for key, _ in calls), done))

    def _predict_blocking(self, model: str, task_id: str, X: np.ndarray, calls: list) -> list:
        out = [getattr(self.engine, method)(model, task_id, X) for _, method in calls]
        if self._futures:
            self._warm.add(model)
        return out

    @staticmethod
    def _reply(res: dict[str, np.ndarray], lo: int, hi: int) -> Any:
        r = pb.PredictResponse(row_offset=lo)
        if "scores" in res:
            r.scores[:] = np.asarray(res["scores"][lo:hi], dtype=np.float64).tolist()
        if "labels" in res:
            r.labels[:] = np.asarray(res["labels"][lo:hi], dtype=np.float64).tolist()
        if "probabilities" in res:
            r.probabilities.CopyFrom(array_to_matrix(res["probabilities"][lo:hi]))
        return r

    async def Predict(self, request, context):  # noqa: N802
        async def body():
            n, res = await self._predict_arrays(request)
            return self._reply(res, 0, n)

        return await self._serve(context, body)

    async def PredictStream(self, request, context):  # noqa: N802
        async def body():
            step = request.rows_per_chunk or DEFAULT_ROWS_PER_CHUNK
            if not 1 <= step <= MAX_ROWS_PER_CHUNK:
                raise ValueError(f"'rows_per_chunk' must be in 1..{MAX_ROWS_PER_CHUNK}. Got {step}.")
            n, res = await self._predict_arrays(request)
            return [self._reply(res, lo, min(n, lo + step)) for lo in range(0, n, step)]

        replies = await self._serve(context, body)
        for r in replies or []:
            yield r

    # -- inspection ---------------------------------------------------------------------
    async def GetTaskModel(self, request, context):  # noqa: N802
        async def body():
            st = await self._run(self.engine.task_state, request.model, request.task_id)
            L = np.asarray(await self._run(self.engine.basis, request.model))
            return pb.GetTaskModelResponse(
                task_id=request.task_id,
                theta=L @ np.asarray(st.s),
                s=np.asarray(st.s, dtype=np.float64),
                n=int(st.n),
                theta_single=np.asarray(st.theta, dtype=np.float64),
                hessian=array_to_matrix(np.asarray(st.D)),
            )

        return await self._serve(context, body)

    def _basis_info(self, model: str) -> tuple[np.ndarray, int, int]:
        version, n_tasks = self._version(model)
        L = np.asarray(self.engine.basis(model))
        return L, version, n_tasks

    def _version(self, model: str) -> tuple[int, int]:
        """(version, T) of a model, from the engine's status."""
        cfg = self.engine.get_config(model)
        if "version" in cfg:
            return int(cfg["version"]), int(cfg.get("n_tasks", 0))
        return 0, len(self.engine.list_tasks(model))

    async def GetBasis(self, request, context):  # noqa: N802
        async def body():
            L, version, n_tasks = await self._run(self._basis_info, request.model)
            return pb.GetBasisResponse(basis=array_to_matrix(L), version=version, n_tasks=n_tasks)

        return await self._serve(context, body)

    async def ListTasks(self, request, context):  # noqa: N802
        async def body():
            return pb.ListTasksResponse(task_ids=list(await self._run(self.engine.list_tasks, request.model)))

        return await self._serve(context, body)

    # -- operations ---------------------------------------------------------------------
    async def Save(self, request, context):  # noqa: N802
        async def body():
            await self._run(self.engine.save, request.model, request.id)
            version, _ = await self._run(self._version, request.model)
            return pb.SaveResponse(model=request.model, id=request.id, version=version)

        return await self._serve(context, body)

    async def Load(self, request, context):  # noqa: N802
        async def body():
            await self._run(self.engine.load, request.model, request.id)
            version, n_tasks = await self._run(self._version, request.model)
            return pb.LoadResponse(model=request.model, id=request.id, version=version, n_tasks=n_tasks)

        return await self._serve(context, body)

    async def Clear(self, request, context):  # noqa: N802
        async def body():
            await self._run(self.engine.clear, request.model)
            return pb.ClearResponse()

        return await self._serve(context, body)

    async def GetStatus(self, request, context):  # noqa: N802
        async def body():
            nodes = flatten_status(await self._run(self.engine.status))
            nodes["server"] = {
                "uptime_s": f"{time.time() - self.started:.1f}",
                "calls": str(self.calls),
                "errors": str(self.errors),
                "max_message_bytes": str(4 * 1024 * 1024),
            }
            return pb.GetStatusResponse(nodes={k: pb.NodeStatus(fields=v) for k, v in nodes.items()})

        return await self._serve(context, body)

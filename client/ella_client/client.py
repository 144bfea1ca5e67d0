"""``Client``: numpy in, numpy out, over the ``ella.v1.Ella`` gRPC service.

Needs numpy, grpcio and protobuf only (no Ray, no ``ella_dist.core``), so it runs on
machines that only talk to a server. The same code works against an embedded server
and against one in front of a Ray cluster.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import numpy as np

from ._stubs import pb, pb_grpc
from .errors import EllaError, InvalidArgument, from_rpc_error

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""Largest gRPC message the service accepts or sends (see the limits in ella.proto)."""
MAX_ROWS_PER_CHUNK = 65_536
"""Largest number of rows in one Train chunk (checked by the server too)."""
DEFAULT_CHUNK_BYTES = 1024 * 1024
"""Bytes of X per Train chunk / Predict request the client aims for."""

_RETRYABLE = (grpc.StatusCode.UNAVAILABLE,)
_CONFIG_FIELDS = ("loss", "k", "mu", "lam", "ridge", "fit_intercept", "init", "seed", "l_solver")
T = TypeVar("T")


@dataclass(frozen=True)
class TrainAck:
    """The server's acknowledgement of one applied task.

    Attributes
    ----------
    task_id : str
    n_rows : int
        Rows of this submission.
    version : int
        Model version right after this task was applied.
    n_tasks : int
        Distinct tasks T the model knows after it.
    submission_id : str
        Idempotency key of the submission (a retry with it is not counted twice).
    """

    task_id: str
    n_rows: int
    version: int
    n_tasks: int
    submission_id: str


def _as_matrix(X: Any) -> np.ndarray:
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(grpc.StatusCode.INVALID_ARGUMENT, f"X must be a numeric 2-D array: {exc}") from None
    if arr.ndim != 2:
        raise InvalidArgument(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"X must be a 2-D array of shape (n_samples, n_features). Got shape {arr.shape}.",
        )
    return np.ascontiguousarray(arr)


def matrix_msg(X: np.ndarray) -> Any:
    """An ``ella.v1.Matrix`` holding X (row-major)."""
    # A list of floats fills a packed repeated double field about twice as fast as an
    # ndarray, which protobuf walks element by element as numpy scalars.
    return pb.Matrix(values=X.ravel().tolist(), shape=X.shape)


def matrix_array(m: Any) -> np.ndarray:
    """The ndarray of an ``ella.v1.Matrix``."""
    return np.asarray(m.values, dtype=np.float64).reshape(tuple(m.shape))


def _vector(values: Any) -> np.ndarray:
    """A float64 ndarray of a repeated double field (copied in C, not element by element)."""
    return np.asarray(values, dtype=np.float64)


def config_dict(cfg: Any) -> dict[str, Any]:
    """A ``ModelConfig`` as a dict of the fields set (``seed`` as ``random_state``)."""
    out = {}
    for f in _CONFIG_FIELDS:
        if cfg.HasField(f):
            out["random_state" if f == "seed" else f] = getattr(cfg, f)
    return out


def config_msg(params: dict[str, Any]) -> Any:
    """A ``ModelConfig`` from Python names (``random_state`` or ``seed``; ``lam``)."""
    params = dict(params)
    if "random_state" in params:
        params["seed"] = params.pop("random_state")
    unknown = sorted(set(params) - set(_CONFIG_FIELDS))
    if unknown:
        raise TypeError(f"Unknown model parameter(s) {unknown}; expected some of {list(_CONFIG_FIELDS)}.")
    return pb.ModelConfig(**{k: v for k, v in params.items() if v is not None})


class Client:
    """A connection to an ella-dist server.

    Parameters
    ----------
    target : str
        ``host:port`` of the server, e.g. ``"127.0.0.1:50051"``.
    token : str, optional
        Bearer token, sent as ``authorization: Bearer <token>`` metadata on every call.
    timeout : float, default=10.0
        Deadline of each call in seconds (each attempt when retried).
    root_certificates : bytes, optional
        PEM CA certificate(s): connect with TLS and trust these. ``tls=True`` without
        them uses the system's trust store.
    tls : bool, default=False
    retries : int, default=3
        Extra attempts after an ``UNAVAILABLE`` error, with exponential backoff
        (``backoff * 2**i`` seconds, jittered, at most 2 s). Other errors are not retried.
    backoff : float, default=0.1
    chunk_bytes : int, default=1 MiB
        Size of X per Train chunk / Predict request; large tasks are split by rows.
    server_name : str, optional
        TLS name to check the certificate against (``grpc.ssl_target_name_override``).

    Examples
    --------
    >>> with Client("127.0.0.1:50051") as c:                       # doctest: +SKIP
    ...     c.create_model("mines", loss="logistic", k=2)
    ...     c.train("mines", "mine-0", X, y)
    ...     c.predict_proba("mines", "mine-0", X)[:, 1]
    """

    def __init__(
        self,
        target: str,
        token: str | None = None,
        timeout: float = 10.0,
        *,
        root_certificates: bytes | None = None,
        tls: bool = False,
        retries: int = 3,
        backoff: float = 0.1,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        server_name: str | None = None,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.chunk_bytes = chunk_bytes
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        if tls or root_certificates is not None:
            creds = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.secure_channel(target, creds, options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._stub = pb_grpc.EllaStub(self._channel)

    # -- plumbing ---------------------------------------------------------------------
    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, fn: Callable[..., T], request: Any, *, retry: bool = True) -> T:
        attempt = 0
        while True:
            try:
                return fn(request() if callable(request) else request, timeout=self.timeout, metadata=self._metadata)
            except grpc.RpcError as err:
                if not retry or err.code() not in _RETRYABLE or attempt >= self.retries:
                    raise from_rpc_error(err) from None
                time.sleep(min(2.0, self.backoff * 2**attempt) * (0.5 + random.random() / 2))
                attempt += 1

    def _rows_per_chunk(self, n_features: int) -> int:
        return int(max(1, min(MAX_ROWS_PER_CHUNK, self.chunk_bytes // (8 * max(1, n_features + 1)))))

    # -- models -----------------------------------------------------------------------
    def create_model(self, name: str, **params: Any) -> dict[str, Any]:
        """Create a model; returns its full config. Parameters as ``ella_dist.ELLA``
        (``loss``, ``k``, ``mu``, ``lam``, ``ridge``, ``fit_intercept``, ``init``,
        ``random_state``/``seed``, ``l_solver``). Raises ``AlreadyExists``."""
        resp = self._call(self._stub.CreateModel, pb.CreateModelRequest(name=name, config=config_msg(params)))
        return config_dict(resp.config)

    def delete_model(self, name: str) -> None:
        self._call(self._stub.DeleteModel, pb.DeleteModelRequest(name=name))

    def list_models(self) -> list[str]:
        return list(self._call(self._stub.ListModels, pb.ListModelsRequest()).names)

    def get_config(self, name: str) -> dict[str, Any]:
        return config_dict(self._call(self._stub.GetConfig, pb.GetConfigRequest(name=name)).config)

    # -- training ---------------------------------------------------------------------
    def _chunks(self, name: str, tasks: Iterable[tuple[Any, Any, Any]], sent: list) -> Iterator[Any]:
        first = True
        for item in tasks:
            task_id, X, y = item[0], item[1], item[2]
            sub_id = item[3] if len(item) > 3 and item[3] else uuid.uuid4().hex
            X = _as_matrix(X)
            y = np.asarray(y, dtype=np.float64).ravel()
            n, d = X.shape
            step = self._rows_per_chunk(d)
            starts = list(range(0, max(n, 1), step))
            for i, lo in enumerate(starts):
                hi = min(n, lo + step) if i < len(starts) - 1 else max(n, len(y))
                chunk = pb.TrainChunk(
                    model=name if first else "",
                    task_id=str(task_id),
                    n_features=d,
                    x=X[lo:hi].ravel().tolist(),
                    y=y[lo:hi].tolist(),
                    end_of_task=(i == len(starts) - 1),
                    submission_id=sub_id,
                )
                first = False
                sent.append(chunk)
                yield chunk

    def train_stream(self, name: str, tasks: Iterable[tuple[Any, Any, Any]]) -> list[TrainAck]:
        """Train on a stream of tasks in one Train call; one ack per task, in order.

        Parameters
        ----------
        name : str
        tasks : iterable of (task_id, X, y) or (task_id, X, y, submission_id)
            X of shape (n_t, d), y of shape (n_t,). Large tasks are split into chunks.

        Returns
        -------
        list of TrainAck

        Notes
        -----
        The server applies nothing unless the whole stream arrives intact. Every task
        carries a submission id (a fresh uuid unless given) so that a retry after
        ``UNAVAILABLE`` (the chunks are replayed) cannot count a task twice.
        """
        sent: list = []
        failure: list[BaseException] = []

        def guarded() -> Iterator[Any]:
            # An exception inside a request iterator reaches the caller as UNKNOWN; keep it
            # and end the stream instead (the server then rejects it whole, nothing applied).
            try:
                yield from self._chunks(name, tasks, sent)
            except Exception as exc:  # noqa: BLE001 - re-raised below
                failure.append(exc)
                # end in the middle of a task, so that complete tasks sent before are not applied
                yield pb.TrainChunk(task_id="client-side-error", n_features=1, x=[0.0], y=[0.0], end_of_task=False)

        gen = guarded()
        attempt = [0]

        def request() -> Iterator[Any]:
            if attempt[0] == 0:
                attempt[0] += 1
                return gen
            for _ in gen:  # drain what the first attempt did not send, then replay all
                pass
            return iter(list(sent))

        try:
            resp = self._call(self._stub.Train, request)
        except EllaError:
            if failure:
                raise failure[0] from None
            raise
        if failure:  # pragma: no cover - the server rejects a stream cut short
            raise failure[0]
        return [TrainAck(a.task_id, a.n_rows, a.version, a.n_tasks, a.submission_id) for a in resp.acks]

    def train(self, name: str, task_id: str, X: Any, y: Any, submission_id: str | None = None) -> TrainAck:
        """Train on one task (or one more batch of a known task); returns its ack.

        X of shape (n_samples, n_features), y of shape (n_samples,).
        """
        return self.train_stream(name, [(task_id, X, y, submission_id)])[0]

    # -- prediction -------------------------------------------------------------------
    def _predict(self, name: str, task_id: str, X: Any, output: int) -> list[Any]:
        X = _as_matrix(X)
        n, d = X.shape
        step = self._rows_per_chunk(d)
        if n <= step:  # the common case: one request
            req = pb.PredictRequest(model=name, task_id=str(task_id), x=matrix_msg(X), outputs=(output,))
            return [self._call(self._stub.Predict, req)]
        replies = []
        for lo in range(0, n, step):
            req = pb.PredictRequest(model=name, task_id=str(task_id), x=matrix_msg(X[lo : lo + step]), outputs=(output,))
            replies.append(self._call(self._stub.Predict, req))
        return replies

    @staticmethod
    def _join(parts: list[np.ndarray]) -> np.ndarray:
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def decision_function(self, name: str, task_id: str, X: Any) -> np.ndarray:
        """``X . theta(t)``; X of shape (n_samples, n_features) -> shape (n_samples,)."""
        return self._join([_vector(r.scores) for r in self._predict(name, task_id, X, pb.OUTPUT_SCORES)])

    def predict(self, name: str, task_id: str, X: Any) -> np.ndarray:
        """Labels in {0, 1} (logistic) or predicted values (squared); shape (n_samples,)."""
        return self._join([_vector(r.labels) for r in self._predict(name, task_id, X, pb.OUTPUT_LABELS)])

    def predict_proba(self, name: str, task_id: str, X: Any) -> np.ndarray:
        """``[P(y=0), P(y=1)]`` per row, shape (n_samples, 2); logistic models only."""
        return self._join([matrix_array(r.probabilities) for r in self._predict(name, task_id, X, pb.OUTPUT_PROBABILITIES)])

    def predict_stream(
        self, name: str, task_id: str, X: Any, rows_per_chunk: int = 4096, outputs: tuple[str, ...] = ("scores",)
    ) -> Iterator[dict[str, np.ndarray]]:
        """Server-streamed predictions: yields ``{"row_offset", "scores", ...}`` per chunk.

        X must fit in one request message (see ``MAX_MESSAGE_BYTES``).
        """
        which = {"scores": pb.OUTPUT_SCORES, "labels": pb.OUTPUT_LABELS, "probabilities": pb.OUTPUT_PROBABILITIES}
        req = pb.PredictRequest(
            model=name,
            task_id=str(task_id),
            x=matrix_msg(_as_matrix(X)),
            outputs=[which[o] for o in outputs],
            rows_per_chunk=rows_per_chunk,
        )
        try:
            for r in self._stub.PredictStream(req, timeout=self.timeout, metadata=self._metadata):
                out: dict[str, Any] = {"row_offset": int(r.row_offset)}
                if "scores" in outputs:
                    out["scores"] = np.asarray(r.scores)
                if "labels" in outputs:
                    out["labels"] = np.asarray(r.labels)
                if "probabilities" in outputs:
                    out["probabilities"] = matrix_array(r.probabilities)
                yield out
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None

    # -- inspection -------------------------------------------------------------------
    def task_model(self, name: str, task_id: str) -> dict[str, Any]:
        """One task's model: ``theta`` (d,) = L s, ``s`` (k,), ``n`` rows seen,
        ``theta_single`` (d,) the single-task optimum and ``D`` (d, d)."""
        r = self._call(self._stub.GetTaskModel, pb.GetTaskModelRequest(model=name, task_id=str(task_id)))
        return {
            "task_id": r.task_id,
            "theta": np.asarray(r.theta),
            "s": np.asarray(r.s),
            "n": int(r.n),
            "theta_single": np.asarray(r.theta_single),
            "D": matrix_array(r.hessian),
        }

    def basis(self, name: str) -> np.ndarray:
        """The shared basis L, shape (d, k)."""
        return matrix_array(self._call(self._stub.GetBasis, pb.GetBasisRequest(model=name)).basis)

    def basis_info(self, name: str) -> dict[str, Any]:
        """``{"L", "version", "n_tasks"}`` in one call."""
        r = self._call(self._stub.GetBasis, pb.GetBasisRequest(model=name))
        return {"L": matrix_array(r.basis), "version": int(r.version), "n_tasks": int(r.n_tasks)}

    def list_tasks(self, name: str) -> list[str]:
        return list(self._call(self._stub.ListTasks, pb.ListTasksRequest(model=name)).task_ids)

    # -- operations (Jubatus verbs) ---------------------------------------------------
    def save(self, name: str, id: str) -> int:
        """Save the model under ``id``; returns the version saved."""
        return int(self._call(self._stub.Save, pb.SaveRequest(model=name, id=id)).version)

    def load(self, name: str, id: str) -> int:
        """Replace the model by the one saved under ``id``; returns the version after."""
        return int(self._call(self._stub.Load, pb.LoadRequest(model=name, id=id)).version)

    def clear(self, name: str) -> None:
        """Forget everything the model learned; its name and config stay."""
        self._call(self._stub.Clear, pb.ClearRequest(model=name))

    def status(self) -> dict[str, dict[str, str]]:
        """Per node/actor status, ``{node: {key: value}}`` (Jubatus's get_status)."""
        r = self._call(self._stub.GetStatus, pb.GetStatusRequest())
        return {k: dict(v.fields) for k, v in r.nodes.items()}

    def health(self, service: str = "") -> str:
        """The standard health check: ``"SERVING"``, ``"NOT_SERVING"``, ...

        Needs the ``grpcio-health-checking`` package.
        """
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        stub = health_pb2_grpc.HealthStub(self._channel)
        r = self._call(stub.Check, health_pb2.HealthCheckRequest(service=service))
        return health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)

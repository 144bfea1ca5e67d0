"""The one mapping from exceptions to gRPC status codes.

Every RPC of the servicer goes through :func:`to_status`. The core's and the engine's
messages are passed through unchanged (they name the field and what was expected).
Anything unexpected becomes INTERNAL and is logged with its traceback.
"""

from __future__ import annotations

import logging

import grpc

from ella_dist.core.errors import ModelFormatError, NotFittedError, UnknownTaskError

log = logging.getLogger("ella_server")

try:  # the cluster layer's own errors (ella_dist/cluster/errors.py)
    from ella_dist.cluster import errors as _cluster_errors
except ImportError:  # pragma: no cover - only while the engine is not installed
    _cluster_errors = None

try:
    from ray.exceptions import RayActorError, RayTaskError
except ImportError:  # pragma: no cover
    RayActorError = RayTaskError = ()  # type: ignore[assignment,misc]


class LimitExceededError(Exception):
    """A request over one of the service's documented limits (RESOURCE_EXHAUSTED)."""


class UnknownSaveIdError(KeyError):
    """Load of a save id that does not exist (NOT_FOUND)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _cluster(name: str) -> tuple[type, ...]:
    cls = getattr(_cluster_errors, name, None) if _cluster_errors is not None else None
    return (cls,) if isinstance(cls, type) else ()


def _unwrap(exc: BaseException) -> BaseException:
    """The user-level exception inside a Ray task error (its message without the remote traceback)."""
    while RayTaskError and isinstance(exc, RayTaskError) and getattr(exc, "cause", None) is not None:
        exc = exc.cause
    return exc


def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyError):  # KeyError's str() is the repr of its argument
        return str(exc.args[0]) if exc.args else type(exc).__name__
    return str(exc) or type(exc).__name__


def to_status(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """``(code, message)`` for an exception raised while serving a call.

    ====================================================  ====================
    exception                                             code
    ====================================================  ====================
    LimitExceededError, cluster BackpressureError         RESOURCE_EXHAUSTED
    UnknownTaskError, cluster UnknownModelError,          NOT_FOUND
    unknown save id (UnknownSaveIdError, FileNotFoundError,
    cluster UnknownSaveError)
    cluster ModelExistsError                              ALREADY_EXISTS
    cluster ModelChangedError (cleared/loaded meanwhile)  ABORTED
    NotFittedError, ModelFormatError                      FAILED_PRECONDITION
    ValueError, TypeError (bad input)                     INVALID_ARGUMENT
    RayActorError (an actor died), cluster                UNAVAILABLE
    EngineUnavailableError
    anything else                                         INTERNAL (logged)
    ====================================================  ====================
    """
    inner = _unwrap(exc)
    msg = _message(inner)
    if isinstance(inner, (LimitExceededError, *_cluster("BackpressureError"))):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, msg
    not_found = (UnknownTaskError, UnknownSaveIdError, FileNotFoundError)
    not_found += _cluster("UnknownModelError") + _cluster("UnknownSaveError") + _cluster("UnknownSaveIdError")
    if isinstance(inner, not_found):
        return grpc.StatusCode.NOT_FOUND, msg
    if isinstance(inner, _cluster("ModelExistsError")):
        return grpc.StatusCode.ALREADY_EXISTS, msg
    if isinstance(inner, _cluster("ModelChangedError")):
        return grpc.StatusCode.ABORTED, msg
    if isinstance(inner, (NotFittedError, ModelFormatError)):
        return grpc.StatusCode.FAILED_PRECONDITION, msg
    if isinstance(inner, (ValueError, TypeError)):
        return grpc.StatusCode.INVALID_ARGUMENT, msg
    if isinstance(exc, RayActorError) or isinstance(inner, (RayActorError, *_cluster("EngineUnavailableError"))):
        return grpc.StatusCode.UNAVAILABLE, f"the engine is unavailable ({type(inner).__name__}): {msg}; retry later"
    log.error("internal error while serving a call", exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error ({type(inner).__name__}); see the server log"

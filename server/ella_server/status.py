"""The one mapping from exceptions to gRPC status codes.

Every RPC of the servicer goes through :func:`to_status`. The core's and the engine's
messages are passed through unchanged (they name the field and what was expected).
Anything unexpected becomes INTERNAL and is logged with its traceback.
"""

from __future__ import annotations

import logging
import sys

import grpc

from ella_dist.core.errors import ModelFormatError, NotFittedError, UnknownTaskError

log = logging.getLogger("ella_server")

# The Ray layer's and Ray's own exceptions are looked up in ``sys.modules`` when an error is
# mapped, never imported here: importing ``ella_dist.cluster`` imports Ray (~1 s, and a
# Ray runtime dependency for the servicer's pure parts: stream checks, conversions). If a
# module is not loaded, no exception of its classes can exist, so nothing is missed.
_CLUSTER_ERRORS = "ella_dist.cluster.errors"
_RAY_EXCEPTIONS = "ray.exceptions"


def _loaded(module: str, *names: str) -> tuple[type, ...]:
    """The classes ``module.<name>`` if that module is already imported, else ()."""
    mod = sys.modules.get(module)
    if mod is None:
        return ()
    return tuple(cls for cls in (getattr(mod, n, None) for n in names) if isinstance(cls, type))


def _cluster(name: str) -> tuple[type, ...]:
    return _loaded(_CLUSTER_ERRORS, name)


class LimitExceededError(Exception):
    """A request over one of the service's documented limits (RESOURCE_EXHAUSTED)."""


class UnknownSaveIdError(KeyError):
    """Load of a save id that does not exist (NOT_FOUND)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _unwrap(exc: BaseException) -> BaseException:
    """The user-level exception inside a Ray task error (its message without the remote traceback)."""
    task_error = _loaded(_RAY_EXCEPTIONS, "RayTaskError")
    while task_error and isinstance(exc, task_error) and getattr(exc, "cause", None) is not None:
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
    actor_error = _loaded(_RAY_EXCEPTIONS, "RayActorError")
    if isinstance(exc, actor_error) or isinstance(inner, (*actor_error, *_cluster("EngineUnavailableError"))):
        return grpc.StatusCode.UNAVAILABLE, unavailable_message(inner)
    log.error("internal error while serving a call", exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error ({type(inner).__name__}); see the server log"


MAX_CAUSE_CHARS = 300


def unavailable_message(exc: BaseException) -> str:
    """What a client can do about a dead or unreachable engine actor, and why it happened.

    Ray's actor errors run to many lines (the actor's ids, addresses, the exit cause);
    the first line (at most ``MAX_CAUSE_CHARS``) is kept and the full error is logged.
    """
    first = (_message(exc).strip().splitlines() or [""])[0]
    if len(first) > MAX_CAUSE_CHARS:
        first = first[: MAX_CAUSE_CHARS - 3] + "..."
    log.warning("engine unavailable while serving a call: %s", exc)
    return (
        f"the engine is unavailable: an actor of the Ray engine died or is unreachable ({type(exc).__name__}: {first}). "
        "Retry later (safe for Train: each task carries a submission id, so one that did land is not applied "
        "twice); if this persists, check 'ella-dist status' for an unreachable 'parameter' or 'learner-<i>' and "
        "restart the server on the same --checkpoint-dir, which restores every acknowledged update."
    )

"""The client's exceptions: one class per gRPC status code the service uses.

Each carries ``code`` (a :class:`grpc.StatusCode`) and ``message`` (the server's text,
which names the field and what was expected). They also subclass the built-in exception
a Python caller would expect, so ``except ValueError`` / ``except KeyError`` work.
"""

from __future__ import annotations

import grpc


class EllaError(Exception):
    """A failed call. ``code`` is the gRPC status code, ``message`` the server's details."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class InvalidArgument(EllaError, ValueError):
    """INVALID_ARGUMENT: bad shapes, NaN/inf, labels, empty task, bad config."""


class NotFound(EllaError, KeyError):
    """NOT_FOUND: unknown model, task or save id."""

    __str__ = EllaError.__str__


class AlreadyExists(EllaError):
    """ALREADY_EXISTS: a model with that name exists."""


class FailedPrecondition(EllaError):
    """FAILED_PRECONDITION: e.g. the model has not been trained yet."""


class ResourceExhausted(EllaError):
    """RESOURCE_EXHAUSTED: over a size limit, or the engine's back-pressure."""


class Unauthenticated(EllaError):
    """UNAUTHENTICATED: missing or wrong bearer token."""


class Unavailable(EllaError):
    """UNAVAILABLE: server down or an engine actor died (retried with backoff first)."""


class DeadlineExceeded(EllaError):
    """DEADLINE_EXCEEDED: the call took longer than its timeout."""


_BY_CODE: dict[grpc.StatusCode, type[EllaError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


def from_rpc_error(err: grpc.RpcError) -> EllaError:
    """Turn a ``grpc.RpcError`` into the matching :class:`EllaError` subclass."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else str(err)
    return _BY_CODE.get(code, EllaError)(code, details or "")

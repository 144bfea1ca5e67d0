"""Exceptions of the Ray layer.

Like the core's, each subclasses the built-in a caller would expect and takes one
message argument (so that Ray can re-raise it across processes). The server maps them
to gRPC codes: ``UnknownModelError`` -> NOT_FOUND, ``ModelExistsError`` ->
ALREADY_EXISTS, ``BackpressureError`` -> RESOURCE_EXHAUSTED, ``ModelChangedError`` ->
ABORTED, ``EngineUnavailableError`` -> UNAVAILABLE.
"""

from __future__ import annotations

from ella_dist.core.errors import UnknownTaskError


class UnknownModelError(UnknownTaskError):
    """A model name that the engine does not hold (a ``KeyError``, like an unknown task)."""


class ModelExistsError(ValueError):
    """``create_model`` with a name that is already taken."""


class BackpressureError(RuntimeError):
    """Too many submissions of one model are in flight; retry later (or block)."""


class ModelChangedError(RuntimeError):
    """The model was cleared, deleted or loaded while a submission was in flight.

    The submission was not applied to the new model; submit it again if it is wanted.
    """


class OutOfOrderError(RuntimeError):
    """The parameter actor waited too long for an earlier submission of a session.

    Internal: the coordinator retries in order; it reaches callers only if an earlier
    submission of the same engine session never arrived (e.g. its driver died).
    """


class EngineUnavailableError(RuntimeError):
    """An actor of the engine stayed unreachable past the retry deadline."""


__all__ = [
    "BackpressureError",
    "EngineUnavailableError",
    "ModelChangedError",
    "ModelExistsError",
    "OutOfOrderError",
    "UnknownModelError",
]

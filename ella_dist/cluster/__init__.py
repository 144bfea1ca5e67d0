"""The Ray layer: a learner pool, a central ELLA parameter actor and the :class:`Engine`.

Imports the core and Ray, never gRPC. See ``docs/cluster.md`` for the design.
"""

from .engine import Engine, init_local_ray
from .errors import (
    BackpressureError,
    EngineUnavailableError,
    ModelChangedError,
    ModelExistsError,
    OutOfOrderError,
    UnknownModelError,
)
from .learner import FitResult, Learner, route
from .parameter import Ack, ModelView, ParameterActor, ParameterServer

__all__ = [
    "Ack",
    "BackpressureError",
    "Engine",
    "EngineUnavailableError",
    "FitResult",
    "Learner",
    "ModelChangedError",
    "ModelExistsError",
    "ModelView",
    "OutOfOrderError",
    "ParameterActor",
    "ParameterServer",
    "UnknownModelError",
    "init_local_ray",
    "route",
]

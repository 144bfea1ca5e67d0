"""The ELLA algorithm and its baselines in plain numpy/scipy (no Ray, no gRPC)."""

from .ella import ELLA, TaskState
from .errors import ModelFormatError, NotFittedError, UnknownTaskError
from .gomtl import GOMTL
from .stl import STL

__all__ = ["ELLA", "GOMTL", "STL", "TaskState", "ModelFormatError", "NotFittedError", "UnknownTaskError"]

"""ella-dist: ELLA lifelong learning as a distributed service.

Importing this package loads only numpy/scipy code; the Ray layer
(``ella_dist.cluster``) and the gRPC server are imported explicitly.
"""

from .core import ELLA, GOMTL, STL, ModelFormatError, NotFittedError, TaskState, UnknownTaskError

__version__ = "0.1.0"
__all__ = ["ELLA", "GOMTL", "STL", "TaskState", "ModelFormatError", "NotFittedError", "UnknownTaskError"]

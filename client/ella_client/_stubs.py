"""Load the generated stubs without importing the rest of ``ella_dist``.

``ella_dist/_generated`` holds protoc output whose modules import each other as
``ella.v1.*``; that folder must be an import root. Putting it on ``sys.path`` directly
(found with ``find_spec``, which does not execute ``ella_dist/__init__.py``) keeps the
client free of ``ella_dist.core`` and Ray: numpy, grpcio and protobuf only.
"""

from __future__ import annotations

import importlib.util
import os
import sys

_spec = importlib.util.find_spec("ella_dist")
if _spec is None or not _spec.submodule_search_locations:  # pragma: no cover - broken install
    raise ImportError("ella_client needs the generated stubs shipped in the 'ella_dist' package (pip install ella-dist).")
_ROOT = os.path.join(list(_spec.submodule_search_locations)[0], "_generated")
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

from ella.v1 import ella_pb2 as pb  # noqa: E402
from ella.v1 import ella_pb2_grpc as pb_grpc  # noqa: E402

__all__ = ["pb", "pb_grpc"]

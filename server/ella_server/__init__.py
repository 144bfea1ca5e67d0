"""The ella-dist gRPC server: ``ella.v1.Ella`` in front of ``ella_dist.cluster.Engine``.

- :mod:`.servicer`: protobuf <-> Engine, one method per RPC.
- :mod:`.status`: the one exception -> gRPC status code mapping.
- :mod:`.stream`: Train streams are assembled and checked whole before anything applies.
- :mod:`.options`: the ``serve`` command-line options (cheap to import).
- :mod:`.app`: the grpc.aio server (health, reflection, token auth, TLS, SIGTERM drain).
- :mod:`.embedded`: a server in a background thread (demo, benchmark, tests).

Submodules are imported on first use, so ``ella_server.options`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"start_server": "app", "RunningServer": "app", "MAX_MESSAGE_BYTES": "app", "EllaServicer": "servicer",
         "EmbeddedServer": "embedded"}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'ella_server' has no attribute {name!r}")

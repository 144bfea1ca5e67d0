"""The ella-dist gRPC server: ``ella.v1.Ella`` in front of ``ella_dist.cluster.Engine``.

- :mod:`.servicer`: protobuf <-> Engine, one method per RPC.
- :mod:`.status`: the one exception -> gRPC status code mapping.
- :mod:`.stream`: Train streams are assembled and checked whole before anything applies.
- :mod:`.app`: the grpc.aio server (health, reflection, token auth, TLS, SIGTERM drain).
"""

from .app import MAX_MESSAGE_BYTES, RunningServer, start_server
from .servicer import EllaServicer

__all__ = ["EllaServicer", "RunningServer", "start_server", "MAX_MESSAGE_BYTES"]

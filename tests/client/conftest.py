"""One real local Ray + Engine + in-process gRPC server (port 0, loopback) per package."""

from __future__ import annotations

import pytest
from ella_server.embedded import EmbeddedServer

from tests.server.support import local_engine


@pytest.fixture(scope="package")
def engine(tmp_path_factory):
    with local_engine(str(tmp_path_factory.mktemp("ckpt"))) as eng:
        yield eng


@pytest.fixture(scope="package")
def server(engine):
    with EmbeddedServer(engine, "127.0.0.1", 0) as srv:
        yield srv


@pytest.fixture
def client(server):
    from ella_client import Client

    with Client(server.target, timeout=30.0) as c:
        yield c


@pytest.fixture
def stub(server):
    """Raw generated stub (no client library)."""
    import grpc

    from ella_dist._generated import ella_pb2_grpc

    with grpc.insecure_channel(server.target) as ch:
        yield ella_pb2_grpc.EllaStub(ch)

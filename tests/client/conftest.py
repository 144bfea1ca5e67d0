"""The client tests run against the same fixtures as the server tests: one real local Ray,
Engine and in-process gRPC server (port 0, loopback) for this package."""

from tests.server.conftest import client, engine, server, stub  # noqa: F401  (fixtures)

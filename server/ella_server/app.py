"""Run the ella-dist gRPC server: ``ella-dist serve`` / ``python -m ella_server``.

grpc.aio server with the ``ella.v1.Ella`` service, the standard health service and
server reflection; optional bearer-token auth and TLS. SIGTERM (or SIGINT) drains
in-flight calls, writes a final checkpoint and exits with status 0.

Limits: gRPC messages of at most ``MAX_MESSAGE_BYTES`` = 4 MiB in both directions
(gRPC itself answers RESOURCE_EXHAUSTED past that); see ``proto/ella/v1/ella.proto``.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from ella_dist._generated import ella_pb2 as pb
from ella_dist._generated import ella_pb2_grpc as pb_grpc

from .options import add_arguments
from .servicer import EllaServicer

log = logging.getLogger("ella_server")

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""Largest message received or sent (gRPC's default, set explicitly and documented)."""
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Ella"].full_name
UNAUTHENTICATED_METHODS_PREFIX = "/grpc.health.v1.Health/"
"""Health checks need no token (load balancers and probes call them)."""
DRAIN_SECONDS = 30.0


class TokenAuthInterceptor(grpc.aio.ServerInterceptor):
    """Reject calls without ``authorization: Bearer <token>`` metadata (UNAUTHENTICATED)."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        if details.method.startswith(UNAUTHENTICATED_METHODS_PREFIX):
            return await continuation(details)
        got = dict(details.invocation_metadata or ()).get("authorization", "")
        if hmac.compare_digest(str(got).encode(), self._expected):
            return await continuation(details)
        handler = await continuation(details)
        return _deny(handler, "missing or wrong 'authorization: Bearer <token>' metadata" if got else
                     "this server requires 'authorization: Bearer <token>' metadata")


def _deny(handler: Any, message: str) -> Any:
    async def abort(request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def abort_stream(request: Any, context: grpc.aio.ServicerContext):  # noqa: ANN202
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield  # pragma: no cover

    if handler is None:
        return None
    kw = dict(request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort_stream, **kw)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort, **kw)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort_stream, **kw)
    return grpc.unary_unary_rpc_method_handler(abort, **kw)


@dataclass
class RunningServer:
    """A started server: the grpc.aio server, its bound port, the servicer and health."""

    server: grpc.aio.Server
    port: int
    servicer: EllaServicer
    health: HealthServicer

    async def stop(self, grace: float = DRAIN_SECONDS) -> None:
        """Report NOT_SERVING, drain in-flight calls for up to ``grace`` seconds, stop.

        New calls get UNAVAILABLE ("shutting down", which clients retry) while the calls
        in progress, e.g. a Train stream still arriving, are served to the end; then the
        transport stops. (Stopping the transport first would answer calls that reach it
        during the grace period with a bare CANCELLED.)
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        await self.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.servicer.start_draining()
        if not await self.servicer.drained(grace):
            log.warning("calls still in progress after %.0f s of draining; cancelling them", grace)
        await self.server.stop(max(0.5, deadline - loop.time()))
        self.servicer.close()


async def start_server(
    engine: Any,
    host: str = "127.0.0.1",
    port: int = 50051,
    *,
    token: str | None = None,
    tls_cert: bytes | None = None,
    tls_key: bytes | None = None,
) -> RunningServer:
    """Start serving ``engine`` on ``host:port`` (port 0 picks a free port).

    Parameters
    ----------
    engine : ella_dist.cluster.Engine
    token : str, optional
        Require ``authorization: Bearer <token>`` on every call but health checks.
    tls_cert, tls_key : bytes, optional
        PEM certificate chain and private key: serve TLS instead of plaintext.
    """
    interceptors = [TokenAuthInterceptor(token)] if token else []
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    servicer = EllaServicer(engine)
    pb_grpc.add_EllaServicer_to_server(servicer, server)
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection((SERVICE_NAME, reflection.SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name), server)
    address = f"{host}:{port}"
    if tls_cert is not None or tls_key is not None:
        if tls_cert is None or tls_key is None:
            raise ValueError("TLS needs both a certificate and a key (--tls-cert and --tls-key).")
        bound = server.add_secure_port(address, grpc.ssl_server_credentials([(tls_key, tls_cert)]))
    else:
        bound = server.add_insecure_port(address)
    if not bound:
        raise OSError(f"could not bind {address}")
    await server.start()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    await health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server, bound, servicer, health)


def make_engine(
    ray_address: str | None,
    checkpoint_dir: str | None,
    num_learners: int | None = None,
    snapshot_max_age: float = 0.2,
) -> Any:
    """An embedded local Ray engine, or one joined to the cluster at ``ray_address``."""
    from ella_dist.cluster import Engine

    options = dict(num_learners=num_learners, checkpoint_dir=checkpoint_dir, snapshot_max_age=snapshot_max_age)
    return Engine.connect(ray_address, **options) if ray_address else Engine.local(**options)


def final_checkpoint(engine: Any) -> None:
    """Write every model's state durably before exit."""
    if hasattr(engine, "checkpoint"):
        engine.checkpoint()


async def serve(args: argparse.Namespace, ready: Callable[[int], None] | None = None) -> int:
    """Run until SIGTERM/SIGINT; returns the exit status."""
    token = None
    if args.auth_token_file:
        with open(args.auth_token_file) as f:
            token = f.read().strip()
        if not token:
            raise SystemExit(f"error: the token file {args.auth_token_file} is empty")
    cert = key = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise SystemExit("error: --tls-cert and --tls-key go together")
        with open(args.tls_cert, "rb") as f:
            cert = f.read()
        with open(args.tls_key, "rb") as f:
            key = f.read()
    loop = asyncio.get_running_loop()
    engine = await loop.run_in_executor(
        None, make_engine, args.ray_address, args.checkpoint_dir, args.num_learners, args.snapshot_max_age
    )
    running = await start_server(engine, args.host, args.port, token=token, tls_cert=cert, tls_key=key)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.warning(
        "ella-dist serving on %s:%d (%s%s), checkpoints in %s", args.host, running.port,
        "TLS" if cert else "plaintext", ", token auth" if token else "", args.checkpoint_dir or "(none)",
    )
    print(f"ella-dist: serving on {args.host}:{running.port}", flush=True)
    if ready is not None:
        ready(running.port)
    await stop.wait()
    print("ella-dist: draining in-flight calls", flush=True)
    await running.stop(DRAIN_SECONDS)
    await loop.run_in_executor(None, final_checkpoint, engine)
    await loop.run_in_executor(None, engine.shutdown)
    print("ella-dist: final checkpoint written, stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ella-dist serve", description="Serve ELLA models over gRPC (ella.v1.Ella).")
    add_arguments(p)
    args = p.parse_args(argv)
    return run(args)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return asyncio.run(serve(args))

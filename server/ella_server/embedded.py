"""A gRPC server running in a background thread of this process.

For the demo, the benchmark and tests: the caller keeps the engine, the server serves
it on its own asyncio loop, and the same client code talks to it as to a remote one.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from .app import RunningServer, start_server


class EmbeddedServer:
    """Serve ``engine`` from a background thread; use as a context manager.

    Parameters
    ----------
    engine : ella_dist.cluster.Engine
    host : str, default="127.0.0.1"
    port : int, default=0
        0 picks a free port; read it back from :attr:`port` / :attr:`target`.
    **kw
        ``token``, ``tls_cert``, ``tls_key`` as for :func:`start_server`.
    """

    def __init__(self, engine: Any, host: str = "127.0.0.1", port: int = 0, **kw: Any) -> None:
        self.engine, self.host = engine, host
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ella-grpc", daemon=True)
        self._thread.start()
        try:
            self.running: RunningServer = self._submit(start_server(engine, host, port, **kw))
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            raise
        self.port = self.running.port
        self.target = f"{host}:{self.port}"

    def _submit(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def stop(self, grace: float = 5.0) -> None:
        """Drain and stop the server (the engine is left running)."""
        if self._thread.is_alive():
            self._submit(self.running.stop(grace))
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def __enter__(self) -> EmbeddedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

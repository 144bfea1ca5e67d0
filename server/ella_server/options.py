"""Command-line options of ``ella-dist serve`` (argparse only, so ``--help`` stays fast)."""

from __future__ import annotations

import argparse
import os


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=50051, help="TCP port (default: 50051; 0 picks a free one)")
    p.add_argument("--ray-address", default=None,
                   help="join this Ray cluster (e.g. 10.0.0.1:6379 or 'auto'); default: an embedded local Ray")
    p.add_argument("--checkpoint-dir", default=None,
                   help="where models are checkpointed; a restart on the same dir serves the same models")
    p.add_argument("--num-learners", type=int, default=None,
                   help="learner actors (default: the CPUs Ray reports)")
    p.add_argument("--snapshot-max-age", type=float, default=0.2,
                   help="seconds a prediction may lag writes made through *other* servers (default: 0.2; "
                   "this server's own writes are always visible; 0 asks the parameter actor on every call)")
    p.add_argument("--auth-token-file", default=None,
                   help="file holding a bearer token; every call but health checks must send "
                   "'authorization: Bearer <token>' metadata")
    p.add_argument("--tls-cert", default=None, help="PEM certificate chain: serve TLS (with --tls-key)")
    p.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")
    p.add_argument("--log-level", default=os.environ.get("ELLA_LOG_LEVEL", "WARNING"),
                   help="logging level (default: WARNING, or $ELLA_LOG_LEVEL)")

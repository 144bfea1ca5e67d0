"""Shared by tests/server and tests/client: a small real local Ray, an Engine, a server.

Ray is kept small (2 CPUs, 200 MB object store), on loopback, with token auth off
(RAY_AUTH_MODE=disabled, see shared/PLATFORM_NOTES.md), and always shut down.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ella_dist.datasets import load_landmine, make_synthetic

REPO = Path(__file__).resolve().parents[2]
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
LOGISTIC = dict(loss="logistic", k=2, mu=1e-3, lam=1e-2, ridge=1e-2, random_state=0)


def subprocess_env() -> dict[str, str]:
    env = {**os.environ, **RAY_ENV, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "server"), str(REPO / "client"), env.get("PYTHONPATH", "")])
    return env


@contextlib.contextmanager
def local_engine(checkpoint_dir: str) -> Iterator[object]:
    """A real local Ray (started here unless one is up) and an Engine with 2 learners."""
    os.environ.update(RAY_ENV)
    import ray

    from ella_dist.cluster import Engine

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                 object_store_memory=200 * 1024**2)
    engine = Engine.local(num_learners=2, checkpoint_dir=checkpoint_dir)
    try:
        yield engine
    finally:
        try:
            engine.shutdown()
        finally:
            if started:
                ray.shutdown()


def logistic_tasks(n_tasks: int = 6) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The first land-mine tasks, or synthetic binary tasks when the data set is absent."""
    try:
        tasks = load_landmine()[:n_tasks]
        return [(t.task_id, t.X, t.y) for t in tasks]
    except FileNotFoundError:
        tasks = make_synthetic(n_tasks=n_tasks, n_per_task=120, d=9, random_state=0)
        return [(t.task_id, t.X, (t.y > np.median(t.y)).astype(float)) for t in tasks]


def regression_tasks(n_tasks: int = 4, n: int = 60, d: int = 5) -> list[tuple[str, np.ndarray, np.ndarray]]:
    return [(t.task_id, t.X, t.y) for t in make_synthetic(n_tasks=n_tasks, n_per_task=n, d=d, k=2, random_state=1)]


def python() -> str:
    return sys.executable

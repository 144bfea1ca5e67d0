"""A real local Ray for the cluster tests: started once per session, loopback only.

The multi-node module shuts it down to run its own ``ray.cluster_utils.Cluster`` and
the next test that asks for ``ray_local`` starts it again.
"""

from __future__ import annotations

import os

os.environ["RAY_AUTH_MODE"] = "disabled"
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import ray  # noqa: E402

from ella_dist.cluster import init_local_ray  # noqa: E402
from ella_dist.core import ELLA  # noqa: E402
from ella_dist.datasets import Task, load_landmine, make_synthetic  # noqa: E402


@pytest.fixture(scope="session")
def _ray_session():
    yield
    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture
def ray_local(_ray_session):
    """The session's local Ray (2 CPUs, 200 MB object store), started on first use."""
    if not ray.is_initialized():
        init_local_ray(num_cpus=2, object_store_memory=200 * 1024**2, auth_mode="disabled")
    yield


@pytest.fixture(scope="session")
def landmine():
    """The land-mine tasks; when the data set is absent (a clean checkout in CI), logistic
    tasks of the same shape, so that equality, batching and kill-and-recover still run."""
    try:
        return load_landmine()
    except FileNotFoundError:
        return landmine_like()


def landmine_like(n_tasks: int = 29, d: int = 9, seed: int = 0) -> list[Task]:
    """Synthetic stand-in for land mine: 29 logistic tasks, 9 features, 445-690 rows,
    a shared 2-component basis and a negative bias (a minority of positives)."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(d + 1, 2))
    tasks = []
    for t in range(n_tasks):
        n = int(rng.integers(445, 691))
        X = rng.normal(size=(n, d))
        z = np.hstack([X, np.ones((n, 1))]) @ (basis @ rng.normal(size=2)) - 2.0
        y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.float64)
        y[:2] = [0.0, 1.0]  # both classes in every task (and in every revisit's prefix)
        tasks.append(Task(f"mine-{t}", X, y))
    return tasks


@pytest.fixture(scope="session")
def synthetic():
    return make_synthetic(n_tasks=30, n_per_task=40, random_state=0)


def assert_same_model(got: ELLA, want: ELLA, atol: float = 1e-10) -> None:
    """Every piece of ELLA state equal to ``atol``; task order and counts exactly."""
    assert got.task_ids_ == want.task_ids_
    assert got.n_tasks_ == want.n_tasks_
    assert got.n_updates_ == want.n_updates_
    np.testing.assert_allclose(got.L_, want.L_, rtol=0, atol=atol)
    np.testing.assert_allclose(got.A_, want.A_, rtol=0, atol=atol)
    np.testing.assert_allclose(got.b_, want.b_, rtol=0, atol=atol)
    for tid in want.task_ids_:
        a, b = got.task_state(tid), want.task_state(tid)
        assert a.n == b.n, tid
        for x, y in ((a.theta, b.theta), (a.D, b.D), (a.s, b.s)):
            np.testing.assert_allclose(x, y, rtol=0, atol=atol)

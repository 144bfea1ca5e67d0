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
from ella_dist.datasets import load_landmine, make_synthetic  # noqa: E402


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
    try:
        return load_landmine()
    except FileNotFoundError as exc:
        pytest.skip(f"land-mine data absent: {exc}")


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

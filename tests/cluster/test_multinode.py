"""Head + 2 worker nodes (ray.cluster_utils.Cluster) with their own custom resources.

Runs its own cluster: the session's local Ray is shut down first (the next test that
needs it starts it again) and everything is torn down at the end of the module.
"""

from __future__ import annotations

import pytest
import ray
from ray.cluster_utils import Cluster

from ella_dist.cluster import Engine
from ella_dist.core import ELLA

from .conftest import assert_same_model

PARAMS = dict(k=3, mu=1e-3, lam=1e-2, loss="squared", ridge=1e-2, random_state=2)
MB = 1024**2


@pytest.fixture(scope="module")
def cluster(_ray_session):
    if ray.is_initialized():
        ray.shutdown()
    c = Cluster(initialize_head=True,
                head_node_args=dict(num_cpus=1, include_dashboard=False, object_store_memory=100 * MB))
    try:
        for res in ("node_a", "node_b"):
            c.add_node(num_cpus=1, resources={res: 1}, object_store_memory=100 * MB)
        c.wait_for_nodes()
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()


def test_learners_on_two_nodes_give_the_core_model(cluster, synthetic):
    eng = Engine.connect(cluster.address, num_learners=2, app="multinode",
                         learner_options=[{"resources": {"node_a": 1}}, {"resources": {"node_b": 1}}])
    try:
        nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        assert len(nodes) == 3
        eng.create_model("syn", **PARAMS)
        stream = [(t.task_id, t.X, t.y) for t in synthetic] + [(t.task_id, t.X[:10], t.y[:10]) for t in synthetic[:6]]
        acks = eng.submit_many("syn", stream)
        learner_nodes = {a.learner: a.node_id for a in acks}
        assert set(learner_nodes) == {0, 1}
        assert learner_nodes[0] != learner_nodes[1] and set(learner_nodes.values()) <= nodes
        head = ray.get_runtime_context().get_node_id()
        assert head not in learner_nodes.values()  # pinned by the custom resources, not on the head
        want = ELLA(**PARAMS)
        for tid, X, y in stream:
            want.partial_fit(X, y, tid)
        assert_same_model(eng.snapshot("syn"), want)
        st = eng.status()
        assert st["learner-0"]["node_id"] == learner_nodes[0] and st["learner-1"]["node_id"] == learner_nodes[1]
    finally:
        eng.shutdown(kill_actors=True)

"""Real faults: engine actors killed under a running server (no mocks).

The test owns its engine (on the package's Ray, learners reserving no CPU) and its
server, so killing actors does not disturb the other tests.
"""

from __future__ import annotations

import numpy as np
import pytest
from ella_client import Client, Unavailable
from ella_server.embedded import EmbeddedServer

from .support import LOGISTIC, logistic_tasks


def routed_to(learner: int, n_learners: int, prefix: str) -> str:
    """A task id that the engine's sticky routing sends to ``learner``."""
    from ella_dist.cluster.learner import route

    return next(f"{prefix}-{i}" for i in range(1000) if route(f"{prefix}-{i}", n_learners) == learner)


@pytest.fixture
def own_engine(engine, tmp_path):
    """An engine of this test only: 2 learners, retries give up after 1 s."""
    import ray

    from ella_dist.cluster import Engine

    assert ray.is_initialized()  # the package engine started Ray; this one joins it
    eng = Engine.local(num_learners=2, checkpoint_dir=str(tmp_path), learner_num_cpus=0, retry_seconds=1.0)
    try:
        yield eng
    finally:
        eng.shutdown()


def test_dead_actors_are_unavailable_with_an_actionable_message_and_the_rest_keeps_serving(own_engine):
    import ray

    tasks = logistic_tasks(4)
    (_, X0, y0), (_, X1, y1) = tasks[0], tasks[1]
    on0, on1 = routed_to(0, 2, "a"), routed_to(1, 2, "b")
    with EmbeddedServer(own_engine) as srv, Client(srv.target, timeout=60, retries=0) as c:
        for name in ("m1", "m2"):
            c.create_model(name, **LOGISTIC)
            c.train(name, on1, X1, y1)
        before = c.basis_info("m1")

        # 1. A learner dies for good: the tasks routed to it get UNAVAILABLE, nothing changes,
        #    and everything else (other tasks, other models, predictions) keeps working.
        ray.kill(own_engine.learners[0], no_restart=True)
        with pytest.raises(Unavailable) as info:
            c.train("m1", on0, X0, y0)
        msg = str(info.value)
        assert "engine is unavailable" in msg and "ella-dist status" in msg and "--checkpoint-dir" in msg, msg
        assert "Traceback" not in msg and len(msg) < 1000, msg
        after = c.basis_info("m1")
        assert (after["version"], after["n_tasks"]) == (before["version"], before["n_tasks"])
        np.testing.assert_array_equal(after["L"], before["L"])
        assert c.list_tasks("m1") == [on1]
        assert c.train("m2", routed_to(1, 2, "c"), X0, y0).n_tasks == 2  # the live learner still trains
        np.testing.assert_array_equal(c.decision_function("m2", on1, X1[:8]), own_engine.decision_function("m2", on1, X1[:8]))
        assert c.predict("m1", on1, X1[:8]).shape == (8,)
        assert c.status()["learner-0"]["state"] == "unreachable"

        # 2. The parameter actor (every model's L, A, b) dies for good: every model's reads
        #    and writes are UNAVAILABLE with the same advice; the server process itself
        #    keeps answering (health, status naming the unreachable actor).
        ray.kill(own_engine.parameter_actor, no_restart=True)
        for call in (lambda: c.decision_function("m2", on1, X1[:8]),  # a model served before: the future path
                     lambda: c.predict_proba("m1", on1, X1[:8]),
                     lambda: c.list_tasks("m1"),
                     lambda: c.train("m2", routed_to(1, 2, "d"), X0, y0)):
            with pytest.raises(Unavailable, match="restart the server on the same --checkpoint-dir"):
                call()
        assert c.health() == "SERVING"
        st = c.status()
        assert st["parameter"]["state"] == "unreachable" and int(st["server"]["errors"]) >= 5

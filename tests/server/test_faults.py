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
def own_engine(engine, tmp_path, request):
    """An engine of this test only: 2 learners, retries give up after 1 s.

    ``snapshot_max_age`` (indirect parameter, default 0: no snapshot cache, every
    prediction asks the parameter actor) is the engine's option.
    """
    import ray

    from ella_dist.cluster import Engine

    assert ray.is_initialized()  # the package engine started Ray; this one joins it
    max_age = getattr(request, "param", 0.0)
    eng = Engine.local(num_learners=2, checkpoint_dir=str(tmp_path), learner_num_cpus=0, retry_seconds=1.0,
                       snapshot_max_age=max_age)
    try:
        yield eng
    finally:
        eng.shutdown()


def test_dead_actors_are_unavailable_with_an_actionable_message_and_the_rest_keeps_serving(own_engine):
    # snapshot_max_age=0 (the fixture's default): predictions ask the parameter actor, so
    # its death shows on every read. With the cache, see the next test.
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


@pytest.mark.parametrize("own_engine", [3600.0], indirect=True)
def test_dead_parameter_actor_with_a_fresh_snapshot_reads_answer_and_writes_are_unavailable(own_engine):
    """The documented behaviour with the snapshot cache: a prediction that the engine may
    answer from its snapshot (here: fetched after the last acknowledged write, and the
    staleness bound is an hour) is answered while the parameter actor is dead; everything
    that needs the actor (training, task lists, a model without a snapshot) is UNAVAILABLE."""
    import ray

    from ella_dist.core import ELLA

    tasks = logistic_tasks(3)
    (t0, X0, y0), (t1, X1, y1), (t2, X2, y2) = tasks
    with EmbeddedServer(own_engine) as srv, Client(srv.target, timeout=60, retries=0) as c:
        c.create_model("m", **LOGISTIC)
        c.create_model("cold", **LOGISTIC)
        c.train("m", t0, X0, y0)
        c.train("m", t1, X1, y1)
        c.train("cold", t0, X0, y0)
        want = ELLA(**LOGISTIC)
        want.partial_fit(X0, y0, t0)
        want.partial_fit(X1, y1, t1)
        first = c.predict_proba("m", t0, X0[:16])  # fetches the snapshot of version 2
        np.testing.assert_allclose(first, want.predict_proba(X0[:16], t0), rtol=0, atol=1e-12)

        ray.kill(own_engine.parameter_actor, no_restart=True)
        np.testing.assert_array_equal(c.predict_proba("m", t0, X0[:16]), first)
        np.testing.assert_allclose(c.decision_function("m", t1, X1[:8]), want.decision_function(X1[:8], t1),
                                   rtol=0, atol=1e-12)
        for call in (lambda: c.train("m", t2, X2, y2),
                     lambda: c.list_tasks("m"),
                     lambda: c.predict("cold", t0, X0[:8])):  # never predicted on: no snapshot
            with pytest.raises(Unavailable, match="restart the server on the same --checkpoint-dir"):
                call()
        assert c.health() == "SERVING"

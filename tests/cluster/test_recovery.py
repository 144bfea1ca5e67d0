"""Kill the parameter actor, then a learner, mid-stream: the final model equals an uninterrupted run."""

from __future__ import annotations

import numpy as np
import ray

from ella_dist.cluster import Engine, route
from ella_dist.core import ELLA

from .conftest import assert_same_model

PARAMS = dict(k=3, mu=1e-3, lam=1e-2, loss="logistic", ridge=1e-2, random_state=0)


def _stream(tasks):
    rng = np.random.default_rng(5)
    first = [(t.task_id, t.X[: len(t.y) // 2], t.y[: len(t.y) // 2], f"{t.task_id}/a") for t in tasks]
    second = [(t.task_id, t.X[len(t.y) // 2:], t.y[len(t.y) // 2:], f"{t.task_id}/b") for t in tasks]
    return first + [second[i] for i in rng.permutation(len(second))]


def _core(stream):
    model = ELLA(**PARAMS)
    for tid, X, y, _ in stream:
        model.partial_fit(X, y, tid)
    return model


def test_kill_parameter_then_learner_mid_stream(ray_local, landmine, tmp_path):
    stream = _stream(landmine[:16])
    eng = Engine.local(num_learners=2, checkpoint_dir=tmp_path, checkpoint_every=5, learner_num_cpus=0.5)
    try:
        eng.create_model("mines", **PARAMS)
        futures = [eng.submit_async("mines", *item) for item in stream[:12]]
        ray.kill(eng.parameter_actor, no_restart=False)
        pending_at_kill = sum(not f.done() for f in futures)
        futures += [eng.submit_async("mines", *item) for item in stream[12:20]]
        acks = [f.result(timeout=120) for f in futures]
        # The learner owning the next revisit dies; its task data must come back from its store.
        victim = route(stream[20][0], 2)
        ray.kill(eng.learners[victim], no_restart=False)
        acks += [f.result(timeout=120) for f in [eng.submit_async("mines", *item) for item in stream[20:]]]

        assert pending_at_kill > 0
        assert [a.version for a in acks] == list(range(1, len(stream) + 1))  # each applied once, in order
        assert not any(a.duplicate for a in acks)
        want = _core(stream)
        got = eng.snapshot("mines")
        assert_same_model(got, want)
        for t in landmine[:16]:
            assert got.task_state(t.task_id).n == len(t.y)  # no rows lost or doubled

        status = eng.status()
        assert status["parameter"]["reconstructed"] == "true"
        assert int(status["parameter"]["restored_models"]) == 1
        assert int(status[f"learner-{victim}"]["restored_tasks"]) >= 1

        # A client retry of an acknowledged submission is answered, not re-applied.
        again = eng.submit("mines", *stream[3])
        assert again.duplicate and again.version == acks[3].version
        assert eng.get_config("mines")["version"] == len(stream)
    finally:
        eng.shutdown()

    # A new engine on the same directory restores the model from checkpoint + log.
    eng2 = Engine.local(num_learners=2, checkpoint_dir=tmp_path, learner_num_cpus=0.5)
    try:
        assert eng2.list_models() == ["mines"]
        assert_same_model(eng2.snapshot("mines"), want)
        # learners' task data survived too: one more revisit still refits on all rows
        t = landmine[0]
        eng2.submit("mines", t.task_id, t.X[:40], t.y[:40])
        want.partial_fit(t.X[:40], t.y[:40], t.task_id)
        assert_same_model(eng2.snapshot("mines"), want)
        path = eng2.save("mines", "v1")
        assert_same_model(ELLA.load(path), want)
        eng2.clear("mines")
        assert eng2.list_tasks("mines") == []
        cfg = eng2.load("mines", "v1")
        assert cfg["version"] == want.n_updates_
        assert_same_model(eng2.snapshot("mines"), want)
    finally:
        eng2.shutdown()


def test_kill_parameter_and_learner_during_batched_submit_many(ray_local, landmine, tmp_path):
    """The batched path (fit_many / apply_many runs) under the same kills: nothing lost or doubled."""
    import threading
    import time

    stream = _stream(landmine[:20])
    n = len(stream)
    paused, resume = threading.Event(), threading.Event()

    def producer():  # a lazy stream that stops after 16 items until the kills are done
        for i, item in enumerate(stream[8:], start=8):
            if i == 16:
                paused.set()
                resume.wait(60)
            yield item

    eng = Engine.local(num_learners=2, checkpoint_dir=tmp_path, checkpoint_every=7, learner_num_cpus=0.5)
    out: dict = {}
    try:
        eng.create_model("mines", **PARAMS)
        # a list first (handed over in chunks: full batches from the start)
        out["head"] = eng.submit_many("mines", stream[:8])
        worker = threading.Thread(target=lambda: out.setdefault("tail", eng.submit_many("mines", producer())))
        worker.start()
        assert paused.wait(60)
        while eng.get_config("mines")["version"] < 12:  # some of the 8 queued ones applied
            time.sleep(0.005)
        ray.kill(eng.parameter_actor, no_restart=False)
        victim = route(stream[16][0], 2)
        ray.kill(eng.learners[victim], no_restart=False)
        resume.set()  # the rest arrives while both actors restart: retried in batches
        worker.join(180)
        assert not worker.is_alive()
        acks = out["head"] + out["tail"]

        assert [a.version for a in acks] == list(range(1, n + 1))  # each applied once, in order
        assert [a.submission_id for a in acks] == [item[3] for item in stream]
        want = _core(stream)
        got = eng.snapshot("mines")
        assert_same_model(got, want)
        for t in landmine[:20]:
            assert got.task_state(t.task_id).n == len(t.y)  # no rows lost or doubled
        status = eng.status()
        assert status["parameter"]["reconstructed"] == "true"
        assert int(status["driver"]["max_fit_batch"]) > 1 and int(status["driver"]["max_apply_batch"]) > 1

        again = eng.submit_many("mines", stream[5:9])  # a client replaying part of the stream
        assert all(a.duplicate for a in again) and eng.get_config("mines")["version"] == n
    finally:
        resume.set()
        eng.shutdown()

    eng2 = Engine.local(num_learners=2, checkpoint_dir=tmp_path, learner_num_cpus=0.5)
    try:
        assert_same_model(eng2.snapshot("mines"), want)
        t = landmine[4]  # the learners' rows survived too: a revisit refits on all of them
        eng2.submit_many("mines", [(t.task_id, t.X[:30], t.y[:30])])
        want.partial_fit(t.X[:30], t.y[:30], t.task_id)
        assert_same_model(eng2.snapshot("mines"), want)
    finally:
        eng2.shutdown()

"""Two slow fits on two learners overlap in time (stamps taken inside the learner processes)."""

from __future__ import annotations

import numpy as np

from ella_dist.cluster import Engine, route


def test_two_learners_fit_in_parallel(ray_local):
    eng = Engine.local(num_learners=2, learner_num_cpus=0.5)
    try:
        eng.create_model("slow", loss="logistic", k=2, random_state=0)
        ids = ["slow-0"] + [f"slow-{i}" for i in range(1, 50) if route(f"slow-{i}", 2) != route("slow-0", 2)][:1]
        rng = np.random.default_rng(0)
        batches = []
        for tid in ids:
            X = rng.normal(size=(20_000, 60))
            y = (X @ rng.normal(size=60) + rng.logistic(size=20_000) > 0).astype(float)
            batches.append((tid, X, y))
        a, b = eng.submit_many("slow", batches)
        assert a.learner != b.learner
        # Both fits were running at the same moment: each started before the other ended.
        assert a.fit_start < b.fit_end and b.fit_start < a.fit_end
        assert {a.version, b.version} == {1, 2}
        learners = [eng.status()[f"learner-{i}"] for i in range(2)]
        assert learners[0]["pid"] != learners[1]["pid"]
    finally:
        eng.shutdown()

"""ParameterServer and Learner as plain classes (no Ray): ordering, dedup, log replay."""

from __future__ import annotations

import numpy as np
import pytest

from ella_dist.cluster import Learner, OutOfOrderError, ParameterServer
from ella_dist.cluster.parameter import read_log
from ella_dist.core import ELLA

from .conftest import assert_same_model

PARAMS = ELLA(k=2, mu=1e-3, lam=1e-2, loss="squared", ridge=1e-2, random_state=0).get_params()


def _batches(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return [(f"t{i % 5}", rng.normal(size=(15, 3)), rng.normal(size=15)) for i in range(n)]


def _feed(server, learner, gen, batches, start=0, session="s"):
    acks = []
    for i, (tid, X, y) in enumerate(batches, start=start):
        fit = learner.fit("m", gen, PARAMS, tid, X, y, f"sub{i}")
        acks.append(server.apply("m", gen, session, i, fit))
    return acks


def _core(batches):
    model = ELLA(**PARAMS)
    for tid, X, y in batches:
        model.partial_fit(X, y, tid)
    return model


def test_plain_classes_equal_core_and_replay_log_after_crash(tmp_path):
    batches = _batches()
    server = ParameterServer(str(tmp_path), checkpoint_every=5, checkpoint_seconds=1e9, fsync=False)
    gen = server.create_model("m", PARAMS)["generation"]
    learner = Learner(0, str(tmp_path / "learners"))
    acks = _feed(server, learner, gen, batches)
    assert [a.version for a in acks] == list(range(1, 13))
    model = ELLA.from_bytes(server.model_bytes("m"))
    assert_same_model(model, _core(batches))
    # "Crash": drop the server without a final checkpoint; 12 = 2 checkpoints (10) + 2 logged.
    del server
    restored = ParameterServer(str(tmp_path), checkpoint_every=5, checkpoint_seconds=1e9, fsync=False)
    assert restored.counters["replayed"] == 2
    assert_same_model(ELLA.from_bytes(restored.model_bytes("m")), model)
    # retries of old sequence numbers are answered from the dedup table
    fit = Learner(0, str(tmp_path / "learners")).fit("m", gen, PARAMS, "t1", batches[1][1], batches[1][2], "sub1")
    assert fit.duplicate
    assert restored.apply("m", gen, "s", 1, fit).duplicate
    with pytest.raises(OutOfOrderError):
        restored.apply("m", gen, "s", 14, fit)


def test_torn_log_tail_is_ignored(tmp_path):
    batches = _batches(4)
    server = ParameterServer(str(tmp_path), checkpoint_every=100, checkpoint_seconds=1e9, fsync=False)
    gen = server.create_model("m", PARAMS)["generation"]
    _feed(server, Learner(0), gen, batches)
    log = next((tmp_path / "models" / "m").glob("log-*.bin"))
    assert len(read_log(log)) == 4
    with open(log, "ab") as fh:
        fh.write(b"\x10\x00\x00\x00partial record")  # a crash mid-append (never acknowledged)
    del server
    restored = ParameterServer(str(tmp_path), checkpoint_every=100, checkpoint_seconds=1e9, fsync=False)
    assert_same_model(ELLA.from_bytes(restored.model_bytes("m")), _core(batches))


def test_rejected_update_is_undone_in_learner():
    server = ParameterServer()
    gen = server.create_model("m", PARAMS)["generation"]
    learner = Learner(0)
    rng = np.random.default_rng(0)
    _feed(server, learner, gen, [("a", rng.normal(size=(10, 3)), rng.normal(size=10))])
    fit = learner.fit("m", gen, PARAMS, "b", rng.normal(size=(10, 4)), rng.normal(size=10), "bad")
    with pytest.raises(ValueError, match="X has 4 features, but task 'b' was trained with 3"):
        server.apply("m", gen, "s", 1, fit)
    assert learner.discard("m", gen, "b", "bad")
    assert server.get_config("m")["version"] == 1

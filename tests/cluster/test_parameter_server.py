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


def test_apply_many_equals_one_by_one_logs_each_item_and_answers_per_item(tmp_path):
    """A run is applied like single applies: same model, one log record per item, per-item errors."""
    batches = _batches(10, seed=3)
    one = ParameterServer()
    gen1 = one.create_model("m", PARAMS)["generation"]
    _feed(one, Learner(0), gen1, batches)

    server = ParameterServer(str(tmp_path), checkpoint_every=100, checkpoint_seconds=1e9, fsync=True)
    gen = server.create_model("m", PARAMS)["generation"]
    learner = Learner(0, str(tmp_path / "learners"))
    # at most one item per task per fit_many call (what the coordinator sends)
    first = [(tid, X, y, f"sub{i}") for i, (tid, X, y) in enumerate(batches[:5])]
    fits = learner.fit_many("m", gen, PARAMS, first)
    bad = learner.fit_many("m", gen, PARAMS, [("zz", np.ones((4, 4)), np.ones(4), "bad")])  # 4 features, not 3
    rest = learner.fit_many("m", gen, PARAMS, [(tid, X, y, f"sub{i}") for i, (tid, X, y)
                                                 in enumerate(batches[5:], start=5)])
    out = server.apply_many("m", gen, "s", 0, fits + bad + rest)
    assert isinstance(out[5], ValueError) and "4 features" in str(out[5])  # only that item failed
    assert [a.version for a in out[:5] + out[6:]] == list(range(1, 11))
    assert learner.discard("m", gen, "zz", "bad")  # the coordinator undoes a rejected fit
    assert_same_model(ELLA.from_bytes(server.model_bytes("m")), ELLA.from_bytes(one.model_bytes("m")))
    log = next((tmp_path / "models" / "m").glob("log-*.bin"))
    assert [r[0]["kind"] for r in read_log(log)] == ["update"] * 5 + ["reject"] + ["update"] * 5
    assert [r[0]["seq"] for r in read_log(log)] == list(range(11))

    # the coordinator resending the same run (same seqs): every item answered from the dedup table
    again = server.apply_many("m", gen, "s", 0, fits + bad + rest)
    assert all(a.duplicate for i, a in enumerate(again) if i != 5)
    assert [a.version for i, a in enumerate(again) if i != 5] == list(range(1, 11))
    assert isinstance(again[5], ValueError) and str(again[5]) == str(out[5])
    assert server.get_config("m")["version"] == 10
    # a run ahead of the session's next number, or for an old generation, fails as a whole
    with pytest.raises(OutOfOrderError):
        server.apply_many("m", gen, "s", 12, rest)
    # a crash after the run: the log replays it (one write, one fsync, all records)
    del server
    restored = ParameterServer(str(tmp_path), checkpoint_every=100, checkpoint_seconds=1e9, fsync=True)
    assert restored.counters["replayed"] == 10
    assert_same_model(ELLA.from_bytes(restored.model_bytes("m")), ELLA.from_bytes(one.model_bytes("m")))


def test_learner_resent_latest_fold_returns_stored_fit(tmp_path):
    """A learner that died after storing a fit but before replying still delivers it on the retry."""
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(10, 3)), rng.normal(size=10)
    a = Learner(0, str(tmp_path))
    first = a.fit_many("m", "g", PARAMS, [("t", X, y, "s1")])[0]
    restarted = Learner(0, str(tmp_path))  # the actor restarted: state reloaded from its store
    again = restarted.fit_many("m", "g", PARAMS, [("t", X, y, "s1")])[0]
    assert not again.duplicate and again.n == first.n == 10
    np.testing.assert_array_equal(again.theta, first.theta)
    restarted.fit("m", "g", PARAMS, "t", X, y, "s2")
    older = restarted.fit("m", "g", PARAMS, "t", X, y, "s1")  # not the latest fold any more: a duplicate
    assert older.duplicate and older.theta is None and older.n == 20

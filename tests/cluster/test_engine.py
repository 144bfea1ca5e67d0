"""Engine on a real local Ray: equality with the core, errors, idempotence, management."""

from __future__ import annotations

import numpy as np
import pytest

from ella_dist.cluster import BackpressureError, Engine, ModelExistsError, UnknownModelError
from ella_dist.core import ELLA
from ella_dist.core.errors import NotFittedError, UnknownTaskError

from .conftest import assert_same_model

LOGISTIC = dict(k=3, mu=1e-3, lam=1e-2, loss="logistic", ridge=1e-2, random_state=0)
SQUARED = dict(k=4, mu=1e-3, lam=1e-2, loss="squared", ridge=1e-2, random_state=1)


@pytest.fixture(scope="module")
def engine(_ray_session):
    import ray

    from ella_dist.cluster import init_local_ray

    if not ray.is_initialized():
        init_local_ray(num_cpus=2, auth_mode="disabled")
    eng = Engine.local(num_learners=2, learner_num_cpus=0.5)
    yield eng
    eng.shutdown()


def _core(params, stream):
    model = ELLA(**params)
    for tid, X, y in stream:
        model.partial_fit(X, y, tid)
    return model


def _stream_with_revisits(tasks, rng_seed=0):
    """Every task split into two batches; the second halves come back later, shuffled."""
    rng = np.random.default_rng(rng_seed)
    first = [(t.task_id, t.X[: len(t.y) // 2], t.y[: len(t.y) // 2]) for t in tasks]
    second = [(t.task_id, t.X[len(t.y) // 2:], t.y[len(t.y) // 2:]) for t in tasks]
    order = rng.permutation(len(second))
    return first + [second[i] for i in order]


def test_landmine_equals_core(engine, landmine):
    engine.create_model("mines", **LOGISTIC)
    stream = [(t.task_id, t.X, t.y) for t in landmine]
    acks = engine.submit_many("mines", stream)
    assert [a.version for a in acks] == list(range(1, len(stream) + 1))
    assert acks[-1].n_tasks == 29
    want = _core(LOGISTIC, stream)
    assert_same_model(engine.snapshot("mines"), want)
    for t in landmine[:5]:
        np.testing.assert_allclose(engine.predict_proba("mines", t.task_id, t.X),
                                   want.predict_proba(t.X, t.task_id), rtol=0, atol=1e-10)
        np.testing.assert_array_equal(engine.predict("mines", t.task_id, t.X), want.predict(t.X, t.task_id))
    engine.delete_model("mines")


def test_landmine_revisits_refit_on_all_rows(engine, landmine):
    """Revisits (logistic: the learner keeps the rows) give the core's model, sequentially or pipelined."""
    engine.create_model("mines-rev", **LOGISTIC)
    stream = _stream_with_revisits(landmine[:12])
    for item in stream[:6]:
        engine.submit("mines-rev", *item)
    engine.submit_many("mines-rev", stream[6:])
    want = _core(LOGISTIC, stream)
    got = engine.snapshot("mines-rev")
    assert_same_model(got, want)
    assert got.task_state("mine-3").n == len(landmine[3].y)
    engine.delete_model("mines-rev")


def test_synthetic_squared_equals_core(engine, synthetic):
    engine.create_model("syn", **SQUARED)
    stream = _stream_with_revisits(synthetic, rng_seed=1)
    engine.submit_many("syn", stream)
    want = _core(SQUARED, stream)
    assert_same_model(engine.snapshot("syn"), want)
    t = synthetic[7]
    np.testing.assert_allclose(engine.decision_function("syn", t.task_id, t.X),
                               want.decision_function(t.X, t.task_id), rtol=0, atol=1e-10)
    ts, ws = engine.task_state("syn", t.task_id), want.task_state(t.task_id)
    np.testing.assert_allclose(ts.s, ws.s, rtol=0, atol=1e-10)
    np.testing.assert_allclose(engine.basis("syn"), want.L_, rtol=0, atol=1e-10)
    assert engine.list_tasks("syn") == want.task_ids_
    engine.delete_model("syn")


def _version_and_calls(engine, name):
    st = engine.status()["parameter"]
    return st[f"model.{name}.version"], st["apply_calls"]


BAD_INPUTS = [
    ("t0", np.full((5, 3), np.nan), np.zeros(5)),
    ("t0", np.ones((5, 4)), np.zeros(5)),  # wrong feature count
    ("t0", np.ones((5, 3)), np.zeros(4)),  # inconsistent lengths
    ("t0", np.ones((0, 3)), np.zeros(0)),  # empty
    ("t0", np.ones(5), np.zeros(5)),  # 1-D X
    ("t0", np.ones((5, 3)), np.array([0, 1, 2, 0, 1])),  # not binary
    ("", np.ones((5, 3)), np.zeros(5)),  # bad task id
    (None, np.ones((5, 3)), np.zeros(5)),
    ("t0", [["a", "b", "c"]], [0]),
    ("t9", np.ones((6, 3)), np.ones(6)),  # one class: the single-task fit fails (in the learner)
]


@pytest.mark.parametrize("task_id, X, y", BAD_INPUTS)
def test_bad_input_gives_core_errors_and_changes_nothing(engine, task_id, X, y):
    rng = np.random.default_rng(0)
    X0, y0 = rng.normal(size=(40, 3)), np.tile([0.0, 1.0], 20)
    if "bad" not in engine.list_models():
        engine.create_model("bad", **LOGISTIC)
        engine.submit("bad", "t0", X0, y0)
    core = _core(LOGISTIC, [("t0", X0, y0)])
    with pytest.raises(ValueError) as want:
        core.partial_fit(X, y, task_id)
    before = _version_and_calls(engine, "bad")
    with pytest.raises(ValueError) as got:
        engine.submit("bad", task_id, X, y)
    assert type(got.value) is type(want.value)
    assert str(got.value) == str(want.value)
    assert _version_and_calls(engine, "bad") == before  # nothing reached the parameter actor
    assert_same_model(engine.snapshot("bad"), core)


def test_prediction_errors_match_core(engine):
    engine.create_model("pred", **SQUARED)
    core = ELLA(**SQUARED)
    X = np.ones((3, 2))
    with pytest.raises(NotFittedError) as want:
        core.predict(X, "a")
    with pytest.raises(NotFittedError) as got:
        engine.predict("pred", "a", X)
    assert str(got.value) == str(want.value)
    with pytest.raises(NotFittedError):
        engine.basis("pred")
    rng = np.random.default_rng(0)
    Xa, ya = rng.normal(size=(20, 2)), rng.normal(size=20)
    engine.submit("pred", "a", Xa, ya)
    core.partial_fit(Xa, ya, "a")
    for call in (lambda m: m.predict(X, "zz"), lambda m: m.predict_proba(X, "a"), lambda m: m.predict(X[:, :1], "a")):
        with pytest.raises((KeyError, ValueError)) as want:
            call(core)
        with pytest.raises((KeyError, ValueError)) as got:
            call(_EngineAsModel(engine, "pred"))
        assert type(got.value) is type(want.value)
        assert str(got.value) == str(want.value)
    with pytest.raises(UnknownTaskError):
        engine.task_state("pred", "zz")
    engine.delete_model("pred")


class _EngineAsModel:
    """The core's (X, task_id) call shape on top of the engine's (name, task_id, X)."""

    def __init__(self, engine, name):
        self.engine, self.name = engine, name

    def predict(self, X, task_id):
        return self.engine.predict(self.name, task_id, X)

    def predict_proba(self, X, task_id):
        return self.engine.predict_proba(self.name, task_id, X)


def test_model_management(engine, tmp_path):
    with pytest.raises(UnknownModelError) as exc:
        engine.submit("nope", "t", np.ones((2, 2)), np.ones(2))
    assert isinstance(exc.value, KeyError)
    with pytest.raises(ValueError, match="parameter of ELLA"):
        engine.create_model("m1", k=0)
    with pytest.raises(ValueError, match="Unknown ELLA parameter"):
        engine.create_model("m1", kk=2)
    with pytest.raises(ValueError, match="model name"):
        engine.create_model("bad name/..", k=2)
    cfg = engine.create_model("m1", **SQUARED)
    assert cfg["params"]["k"] == SQUARED["k"] and cfg["version"] == 0 and cfg["n_features"] is None
    with pytest.raises(ModelExistsError):
        engine.create_model("m1", k=2)
    assert "m1" in engine.list_models()
    rng = np.random.default_rng(3)
    engine.submit("m1", "a", rng.normal(size=(10, 2)), rng.normal(size=10))
    assert engine.get_config("m1")["n_tasks"] == 1
    with pytest.raises(ValueError, match="checkpoint_dir"):
        engine.save("m1", "v1")
    cfg2 = engine.clear("m1")
    assert cfg2["version"] == 0 and cfg2["generation"] != cfg["generation"]
    assert engine.list_tasks("m1") == []
    # after a clear the feature count may change (a fresh model)
    engine.submit("m1", "a", rng.normal(size=(10, 3)), rng.normal(size=10))
    assert engine.get_config("m1")["n_features"] == 3
    engine.delete_model("m1")
    assert "m1" not in engine.list_models()
    with pytest.raises(UnknownModelError):
        engine.get_config("m1")


def test_idempotent_submission_ids(engine):
    engine.create_model("idem", **SQUARED)
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(12, 2)), rng.normal(size=12)
    a1 = engine.submit("idem", "a", X, y, submission_id="sub-1")
    a2 = engine.submit("idem", "a", X, y, submission_id="sub-1")
    assert not a1.duplicate and a2.duplicate
    assert a2.version == a1.version == 1 and a2.n_samples == 12
    assert engine.task_state("idem", "a").n == 12  # rows not counted twice
    a3 = engine.submit("idem", "a", X, y, submission_id="sub-2")
    assert a3.version == 2 and a3.n_samples == 24
    engine.delete_model("idem")


def test_backpressure_rejects_when_full(_ray_session):
    import ray

    from ella_dist.cluster import init_local_ray

    if not ray.is_initialized():
        init_local_ray(num_cpus=2, auth_mode="disabled")
    eng = Engine.local(num_learners=1, max_in_flight=2, learner_num_cpus=0)
    try:
        eng.create_model("bp", loss="logistic", k=2, random_state=0)
        rng = np.random.default_rng(0)
        X = rng.normal(size=(20_000, 30))
        y = (X[:, 0] > 0).astype(float)
        f1 = eng.submit_async("bp", "a", X, y)
        f2 = eng.submit_async("bp", "b", X, y)
        with pytest.raises(BackpressureError, match="max_in_flight"):
            eng.submit_async("bp", "c", X, y, block=False)
        assert f1.result().version == 1 and f2.result().version == 2
        assert eng.submit_async("bp", "c", X, y, block=False).result().version == 3
        assert eng.status()["driver"]["backpressure_rejections"] == "1"
    finally:
        eng.shutdown()


def test_status_maps(engine):
    st = engine.status()
    assert set(st) == {"driver", "parameter", "learner-0", "learner-1"}
    for key, m in st.items():
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in m.items()), key
    assert st["parameter"]["state"] == "alive" and "node_id" in st["learner-1"]
    assert "apply_waiting" in st["parameter"] and "in_flight" not in st["driver"]


def test_local_ray_is_loopback_only(engine):
    import ray

    addresses = {n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]}
    assert addresses == {"127.0.0.1"}


def test_predict_futures_equal_sync_and_raise_the_same_errors(engine):
    import asyncio
    import concurrent.futures

    engine.create_model("fut", **LOGISTIC)
    rng = np.random.default_rng(7)
    X = rng.normal(size=(30, 3))
    y = (X[:, 0] > 0).astype(float)
    core = ELLA(**LOGISTIC)
    # before any task: NotFittedError from the future, like the sync call
    with pytest.raises(NotFittedError) as want:
        core.decision_function(X, "a")
    fut = engine.decision_function_future("fut", "a", X)
    assert isinstance(fut, concurrent.futures.Future)
    with pytest.raises(NotFittedError) as got:
        fut.result(timeout=30)
    assert str(got.value) == str(want.value)

    engine.submit("fut", "a", X, y)
    core.partial_fit(X, y, "a")
    for method in ("decision_function", "predict", "predict_proba"):
        got = getattr(engine, f"{method}_future")("fut", "a", X).result(timeout=30)
        np.testing.assert_array_equal(got, getattr(engine, method)("fut", "a", X))
        np.testing.assert_allclose(got, getattr(core, method)(X, "a"), rtol=0, atol=1e-10)

    # validation and unknown models raise synchronously, before a future exists
    for call, exc in ((lambda: engine.predict_future("fut", "a", X[:, :2]), ValueError),
                      (lambda: engine.predict_future("fut", "", X), ValueError),
                      (lambda: engine.predict_future("fut", "a", np.full((2, 3), np.nan)), ValueError),
                      (lambda: engine.predict_future("no-such-model", "a", X), UnknownModelError)):
        with pytest.raises(exc) as got:
            call()
        assert not isinstance(got.value, concurrent.futures.Future)
    with pytest.raises(ValueError) as want:
        core.predict(X[:, :2], "a")
    with pytest.raises(ValueError) as got:
        engine.predict_future("fut", "a", X[:, :2])
    assert str(got.value) == str(want.value)

    # an unknown task: the core's UnknownTaskError (a KeyError), unwrapped, from the future
    with pytest.raises(UnknownTaskError) as want:
        core.predict(X, "zz")
    with pytest.raises(UnknownTaskError) as got:
        engine.predict_future("fut", "zz", X).result(timeout=30)
    assert type(got.value) is type(want.value) and str(got.value) == str(want.value)

    # what the server does: await it on an event loop, many at once
    async def many():
        futs = [asyncio.wrap_future(engine.predict_proba_future("fut", "a", X[i:i + 5])) for i in range(0, 30, 5)]
        return await asyncio.gather(*futs)

    parts = asyncio.run(many())
    np.testing.assert_allclose(np.vstack(parts), core.predict_proba(X, "a"), rtol=0, atol=1e-10)

    # predict_proba on the squared loss: the core's ValueError from the future
    engine.create_model("fut-sq", **SQUARED)
    ysq = rng.normal(size=30)
    engine.submit("fut-sq", "a", X, ysq)
    sq = ELLA(**SQUARED).partial_fit(X, ysq, "a")
    with pytest.raises(ValueError) as want:
        sq.predict_proba(X, "a")
    with pytest.raises(ValueError) as got:
        engine.predict_proba_future("fut-sq", "a", X).result(timeout=30)
    assert type(got.value) is type(want.value) and str(got.value) == str(want.value)
    engine.delete_model("fut-sq")
    engine.delete_model("fut")


def test_batched_submit_many_equals_core_and_is_idempotent(engine, landmine):
    """submit_many sends several tasks per learner call and runs of updates per parameter call,
    and still gives the core's model; replaying the same ids applies nothing twice."""
    engine.create_model("batched", **LOGISTIC)
    stream = [(tid, X, y, f"{tid}/{i}") for i, (tid, X, y) in enumerate(_stream_with_revisits(landmine, 3))]
    before = engine.status()["driver"]
    acks = engine.submit_many("batched", stream)
    after = engine.status()["driver"]
    fit_calls = int(after["fit_calls"]) - int(before["fit_calls"])
    apply_calls = int(after["apply_calls"]) - int(before["apply_calls"])
    assert fit_calls < len(stream) and apply_calls < len(stream)  # batched (58 items)
    assert int(after["max_apply_batch"]) > 1 and int(after["max_fit_batch"]) > 1
    assert [a.version for a in acks] == list(range(1, len(stream) + 1))
    assert [a.task_id for a in acks] == [item[0] for item in stream]
    assert [a.submission_id for a in acks] == [item[3] for item in stream]
    want = _core(LOGISTIC, [item[:3] for item in stream])
    assert_same_model(engine.snapshot("batched"), want)

    again = engine.submit_many("batched", stream)  # a client replaying the whole stream
    assert all(a.duplicate for a in again)
    assert [a.version for a in again] == [a.version for a in acks]
    assert engine.get_config("batched")["version"] == len(stream)
    assert_same_model(engine.snapshot("batched"), want)

    # a bad item in the middle: return_exceptions keeps the others; nothing of it is applied
    extra = [("new-a", landmine[0].X, landmine[0].y), ("new-b", landmine[1].X[:, :3], landmine[1].y),
             ("new-c", landmine[2].X, np.ones(len(landmine[2].y))), ("new-d", landmine[3].X, landmine[3].y)]
    out = engine.submit_many("batched", extra, return_exceptions=True)
    assert isinstance(out[1], ValueError) and isinstance(out[2], ValueError)  # driver check, learner fit
    assert [out[0].version, out[3].version] == [len(stream) + 1, len(stream) + 2]
    want.partial_fit(landmine[0].X, landmine[0].y, "new-a")
    want.partial_fit(landmine[3].X, landmine[3].y, "new-d")
    assert_same_model(engine.snapshot("batched"), want)
    engine.delete_model("batched")


def _second_driver(engine, snapshot_max_age):
    """Another engine session (its own coordinator and snapshot cache) on the same actors."""
    from ella_dist.cluster.coordinator import Coordinator

    co = Coordinator(engine.parameter_actor, engine.learners)
    return Engine(co, owns_ray=False, owns_actors=False, checkpoint_dir=None, snapshot_max_age=snapshot_max_age)


def test_snapshot_cache_read_your_writes_staleness_bound_and_invalidation(engine):
    import time

    rng = np.random.default_rng(11)
    data = {t: (rng.normal(size=(25, 3)), rng.normal(size=25)) for t in ("a", "b", "c", "d")}
    X = rng.normal(size=(64, 3))
    cached = _second_driver(engine, 3600.0)  # a snapshot never expires by age: only acks/invalidation refresh it
    short = _second_driver(engine, 0.05)
    uncached = _second_driver(engine, 0.0)
    try:
        cached.create_model("snap", **SQUARED)
        core = ELLA(**SQUARED)
        with pytest.raises(NotFittedError):  # caches the unfitted snapshot
            cached.predict("snap", "a", X)

        # (1) read-your-writes: every ack this engine receives makes the next read refresh
        for tid in ("a", "b", "a"):
            Xt, yt = data[tid]
            cached.submit("snap", tid, Xt, yt)
            core.partial_fit(Xt, yt, tid)
            for t in {"a", "b"} & set(core.task_ids_):
                np.testing.assert_allclose(cached.decision_function("snap", t, X), core.decision_function(X, t),
                                           rtol=0, atol=1e-12)
        fetches = cached.cache_stats["fetches"]
        for _ in range(5):
            cached.predict_future("snap", "a", X).result(timeout=0)  # already done: answered from the cache
            cached.predict("snap", "b", X)
        assert cached.cache_stats["fetches"] == fetches

        # (2) another driver's write: not seen by a snapshot within its bound (documented),
        #     seen by an uncached engine at once and by a short bound after it passes
        uncached.submit("snap", "c", *data["c"])
        core.partial_fit(*data["c"], "c")
        with pytest.raises(UnknownTaskError):
            cached.predict("snap", "c", X)
        np.testing.assert_allclose(uncached.predict("snap", "c", X), core.predict(X, "c"), rtol=0, atol=1e-12)
        short.predict("snap", "a", X)
        time.sleep(0.1)  # > short's bound
        np.testing.assert_allclose(short.predict("snap", "c", X), core.predict(X, "c"), rtol=0, atol=1e-12)
        # ... and a write of this engine refreshes, bringing the other driver's write along
        cached.submit("snap", "d", *data["d"])
        core.partial_fit(*data["d"], "d")
        for t in "abcd":
            np.testing.assert_allclose(cached.predict_future("snap", t, X).result(timeout=30), core.predict(X, t),
                                       rtol=0, atol=1e-12)

        # (3) clear / delete / create invalidate the snapshot of this engine at once
        cached.clear("snap")
        with pytest.raises(NotFittedError) as got:
            cached.predict("snap", "a", X)
        with pytest.raises(NotFittedError) as want:
            ELLA(**SQUARED).predict(X, "a")
        assert str(got.value) == str(want.value)
        cached.submit("snap", "b", *data["b"])
        with pytest.raises(UnknownTaskError) as got:
            cached.predict("snap", "a", X)
        with pytest.raises(UnknownTaskError) as want:
            ELLA(**SQUARED).partial_fit(*data["b"], "b").predict(X, "a")
        assert str(got.value) == str(want.value)
        cached.delete_model("snap")
        with pytest.raises(UnknownModelError):
            cached.predict("snap", "b", X)
        cached.create_model("snap", **LOGISTIC)
        with pytest.raises(NotFittedError):
            cached.predict_future("snap", "b", X).result(timeout=30)
        st = cached.status()["driver"]
        assert st["snapshot_max_age"] == "3600.0" and int(st["snapshot_hits"]) >= 10
    finally:
        try:
            cached.delete_model("snap")
        except UnknownModelError:
            pass
        for e in (cached, short, uncached):
            e.shutdown()


def test_snapshot_max_age_is_checked():
    with pytest.raises(ValueError, match="snapshot_max_age"):
        Engine.local(snapshot_max_age=-1)

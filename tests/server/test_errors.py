"""Every bad request gets its status code, a message naming the field, and changes nothing."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from ella_dist._generated import ella_pb2 as pb

from .support import LOGISTIC, logistic_tasks

C = grpc.StatusCode


@pytest.fixture(scope="module")
def trained(server):
    """A logistic model 'err' trained on 3 tasks, and those tasks."""
    from ella_client import Client

    tasks = logistic_tasks(3)
    with Client(server.target, timeout=30.0) as c:
        c.create_model("err", **LOGISTIC)
        c.train_stream("err", tasks)
        c.create_model("err-empty", **LOGISTIC)
    return tasks


def state(stub, name="err"):
    """What must not change: version, T, L and the task list."""
    b = stub.GetBasis(pb.GetBasisRequest(model=name), timeout=30)
    tasks = stub.ListTasks(pb.ListTasksRequest(model=name), timeout=30).task_ids
    return b.version, b.n_tasks, list(b.basis.values), list(tasks)


def expect(code, fn, match=""):
    with pytest.raises(grpc.RpcError) as info:
        fn()
    assert info.value.code() == code, info.value.details()
    assert match.lower() in info.value.details().lower(), info.value.details()
    return info.value.details()


def task_chunks(model, tid, X, y, end=True, **kw):
    return pb.TrainChunk(model=model, task_id=tid, n_features=X.shape[1], x=X.ravel(), y=y, end_of_task=end, **kw)


def train(stub, chunks):
    return stub.Train(iter(chunks), timeout=30)


def test_bad_train_input_is_invalid_argument_and_changes_nothing(stub, trained):
    tid, X, y = trained[0]
    good = task_chunks("err", "new-task", X, y)
    before = state(stub)
    cases = [
        ([task_chunks("err", "t", np.where(np.eye(*X.shape) > 0, np.nan, X), y)], "NaN"),
        ([task_chunks("err", "t", np.where(np.eye(*X.shape) > 0, np.inf, X), y)], "infinity"),
        ([task_chunks("err", "t", X, np.full_like(y, 2.0))], "y"),  # not a logistic label
        ([task_chunks("err", "t", X[:0], y[:0])], "empty"),
        ([task_chunks("err", "t", X[:, :4], y)], "features"),
        ([pb.TrainChunk(model="err", task_id="t", n_features=9, x=X[:3].ravel(), y=y[:4], end_of_task=True)], "len(x)"),
        # the stream ends in the middle of a task: the complete task before it is not applied either
        ([good, task_chunks("", "t2", X[:5], y[:5], end=False)], "ended in the middle of task 't2'"),
        # chunks of one task disagree on the number of features
        ([task_chunks("err", "t", X[:5], y[:5], end=False), task_chunks("", "t", X[5:10, :8], y[5:10])], "n_features"),
        # a bad task after a good one: nothing of the stream is applied
        ([good, task_chunks("", "t3", X[:5] * np.nan, y[:5])], "nothing of this train stream was applied"),
        ([task_chunks("", "t", X, y)], "'model' must be set"),
    ]
    for chunks, match in cases:
        expect(C.INVALID_ARGUMENT, lambda chunks=chunks: train(stub, chunks), match)
        assert state(stub) == before, match


def test_unknown_model_task_and_save_id_are_not_found(stub, trained):
    tid, X, y = trained[0]
    before = state(stub)
    expect(C.NOT_FOUND, lambda: train(stub, [task_chunks("nope", tid, X, y)]), "nope")
    x = pb.Matrix(values=X[:2].ravel(), shape=[2, 9])
    expect(C.NOT_FOUND, lambda: stub.Predict(pb.PredictRequest(model="nope", task_id=tid, x=x), timeout=30), "nope")
    expect(C.NOT_FOUND, lambda: stub.Predict(pb.PredictRequest(model="err", task_id="zz", x=x), timeout=30), "zz")
    expect(C.NOT_FOUND, lambda: stub.GetTaskModel(pb.GetTaskModelRequest(model="err", task_id="zz"), timeout=30), "zz")
    expect(C.NOT_FOUND, lambda: stub.Load(pb.LoadRequest(model="err", id="never-saved"), timeout=30))
    expect(C.NOT_FOUND, lambda: stub.GetConfig(pb.GetConfigRequest(name="nope"), timeout=30), "nope")
    expect(C.NOT_FOUND, lambda: stub.DeleteModel(pb.DeleteModelRequest(name="nope"), timeout=30), "nope")
    expect(C.NOT_FOUND, lambda: stub.Clear(pb.ClearRequest(model="nope"), timeout=30), "nope")
    assert state(stub) == before


def test_bad_predict_and_ops_requests_are_invalid_argument(stub, trained):
    tid, X, y = trained[0]
    before = state(stub)
    bad_shape = pb.Matrix(values=X[:2].ravel(), shape=[3, 9])
    expect(C.INVALID_ARGUMENT, lambda: stub.Predict(pb.PredictRequest(model="err", task_id=tid, x=bad_shape), timeout=30), "'x'")
    few = pb.Matrix(values=X[:2, :4].ravel(), shape=[2, 4])
    expect(C.INVALID_ARGUMENT, lambda: stub.Predict(pb.PredictRequest(model="err", task_id=tid, x=few), timeout=30), "features")
    nan = pb.Matrix(values=[np.nan] * 9, shape=[1, 9])
    expect(C.INVALID_ARGUMENT, lambda: stub.Predict(pb.PredictRequest(model="err", task_id=tid, x=nan), timeout=30), "NaN")
    x = pb.Matrix(values=X[:2].ravel(), shape=[2, 9])
    req = pb.PredictRequest(model="err", task_id=tid, x=x, rows_per_chunk=10**6)
    expect(C.INVALID_ARGUMENT, lambda: list(stub.PredictStream(req, timeout=30)), "rows_per_chunk")
    expect(C.INVALID_ARGUMENT, lambda: stub.Save(pb.SaveRequest(model="err", id="../escape"), timeout=30), "model id")
    assert state(stub) == before


def test_bad_config_is_invalid_argument_and_creates_nothing(stub, trained):
    for config, match in [(pb.ModelConfig(k=0), "k"), (pb.ModelConfig(loss="hinge"), "loss"),
                          (pb.ModelConfig(mu=-1.0), "mu"), (pb.ModelConfig(lam=0.0), "lam"),
                          (pb.ModelConfig(init="bogus"), "init")]:
        expect(C.INVALID_ARGUMENT, lambda config=config: stub.CreateModel(
            pb.CreateModelRequest(name="bad-config", config=config), timeout=30), match)
        assert "bad-config" not in stub.ListModels(pb.ListModelsRequest(), timeout=30).names
    expect(C.INVALID_ARGUMENT, lambda: stub.CreateModel(pb.CreateModelRequest(name=""), timeout=30), "model name")


def test_existing_model_is_already_exists_and_keeps_its_config(stub, trained):
    before = state(stub)
    expect(C.ALREADY_EXISTS, lambda: stub.CreateModel(
        pb.CreateModelRequest(name="err", config=pb.ModelConfig(k=5)), timeout=30), "err")
    assert stub.GetConfig(pb.GetConfigRequest(name="err"), timeout=30).config.k == 2
    assert state(stub) == before


def test_untrained_model_is_failed_precondition(stub, trained):
    x = pb.Matrix(values=[0.0] * 9, shape=[1, 9])
    expect(C.FAILED_PRECONDITION, lambda: stub.GetBasis(pb.GetBasisRequest(model="err-empty"), timeout=30))
    expect(C.FAILED_PRECONDITION, lambda: stub.Predict(pb.PredictRequest(model="err-empty", task_id="a", x=x), timeout=30))


def test_oversize_messages_are_resource_exhausted_and_name_the_limit(stub, trained):
    tid, X, y = trained[0]
    before = state(stub)
    rows = 5 * 1024 * 1024 // (8 * 9) + 1  # > 4 MiB of doubles
    big = pb.Matrix(values=np.zeros(rows * 9), shape=[rows, 9])
    details = expect(C.RESOURCE_EXHAUSTED, lambda: stub.Predict(pb.PredictRequest(model="err", task_id=tid, x=big), timeout=60))
    assert "4194304" in details
    big_chunk = pb.TrainChunk(model="err", task_id="big", n_features=9, x=np.zeros(rows * 9), y=np.zeros(rows), end_of_task=True)
    expect(C.RESOURCE_EXHAUSTED, lambda: train(stub, [big_chunk]), "4194304")
    many = 70_000  # over MAX_ROWS_PER_CHUNK = 65,536 rows but under 4 MiB with one feature
    rows_chunk = pb.TrainChunk(model="err", task_id="rows", n_features=1, x=np.zeros(many), y=np.zeros(many), end_of_task=True)
    expect(C.RESOURCE_EXHAUSTED, lambda: train(stub, [rows_chunk]), "65536 rows per chunk")
    assert state(stub) == before


def test_predict_proba_needs_logistic(client, trained):
    from ella_client import InvalidArgument

    client.create_model("err-sq", k=2, random_state=0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    client.train("err-sq", "a", X, X @ [1.0, 2.0, 3.0])
    with pytest.raises(InvalidArgument, match="logistic") as info:
        client.predict_proba("err-sq", "a", X)
    assert isinstance(info.value, ValueError) and info.value.code == C.INVALID_ARGUMENT
    client.delete_model("err-sq")


def test_server_keeps_serving_after_errors(client, trained):
    tid, X, _ = trained[0]
    assert client.predict("err", tid, X[:3]).shape == (3,)


def test_failure_only_the_engine_can_see_is_reported_with_what_was_applied(client):
    """A logistic task with one class passes the input checks but is refused by the single-task
    fit; the error says which tasks of the stream were applied (here: the good one)."""
    from ella_client import InvalidArgument

    tasks = logistic_tasks(2)
    client.create_model("err-partial", **LOGISTIC)
    tid, X, y = tasks[1]
    with pytest.raises(InvalidArgument, match="were applied") as info:
        client.train_stream("err-partial", [tasks[0], ("one-class", X, np.ones_like(y))])
    assert tasks[0][0] in str(info.value)
    assert client.list_tasks("err-partial") == [tasks[0][0]]
    client.delete_model("err-partial")


def test_predict_errors_keep_their_codes_once_the_model_is_served(stub, engine, trained):
    """After a first prediction the server awaits the engine's futures on its event loop
    (no worker thread): answers equal the engine's and every error keeps its code."""
    tid, X, _ = trained[0]
    x = pb.Matrix(values=X[:5].ravel(), shape=[5, 9])
    every = [pb.OUTPUT_SCORES, pb.OUTPUT_LABELS, pb.OUTPUT_PROBABILITIES]
    for _ in range(2):  # the first call warms the model, the second takes the future path
        r = stub.Predict(pb.PredictRequest(model="err", task_id=tid, x=x, outputs=every), timeout=30)
        np.testing.assert_array_equal(r.scores, engine.decision_function("err", tid, X[:5]))
        np.testing.assert_array_equal(r.labels, engine.predict("err", tid, X[:5]))
        np.testing.assert_array_equal(np.reshape(r.probabilities.values, (5, 2)), engine.predict_proba("err", tid, X[:5]))
    expect(C.NOT_FOUND, lambda: stub.Predict(pb.PredictRequest(model="err", task_id="zz", x=x), timeout=30), "zz")
    few = pb.Matrix(values=X[:2, :4].ravel(), shape=[2, 4])
    expect(C.INVALID_ARGUMENT, lambda: stub.Predict(pb.PredictRequest(model="err", task_id=tid, x=few), timeout=30), "features")
    nan = pb.Matrix(values=[np.nan] * 9, shape=[1, 9])
    expect(C.INVALID_ARGUMENT, lambda: stub.Predict(pb.PredictRequest(model="err", task_id=tid, x=nan), timeout=30), "NaN")
    expect(C.INVALID_ARGUMENT, lambda: stub.Predict(pb.PredictRequest(model="err", task_id="", x=x), timeout=30), "task")
    assert stub.Predict(pb.PredictRequest(model="err", task_id=tid, x=x), timeout=30).scores == r.scores

"""Models served after a Train stream equal the core's; predictions through the client too."""

from __future__ import annotations

import json
import subprocess
import sys

import grpc
import numpy as np
import pytest
from ella_client import Client

from ella_dist import ELLA

from .support import LOGISTIC, REPO, logistic_tasks, regression_tasks, subprocess_env

TOL = 1e-10


def core_model(tasks, **params):
    ref = ELLA(**params)
    for tid, X, y in tasks:
        ref.partial_fit(X, y, tid)
    return ref


def assert_same_model(client, name, ref):
    np.testing.assert_allclose(client.basis(name), ref.L_, atol=TOL, rtol=0)
    assert client.list_tasks(name) == ref.task_ids_
    for tid in ref.task_ids_:
        tm, st = client.task_model(name, tid), ref.task_state(tid)
        np.testing.assert_allclose(tm["s"], st.s, atol=TOL, rtol=0)
        np.testing.assert_allclose(tm["theta_single"], st.theta, atol=TOL, rtol=0)
        np.testing.assert_allclose(tm["D"], st.D, atol=TOL, rtol=0)
        np.testing.assert_allclose(tm["theta"], ref.L_ @ st.s, atol=TOL, rtol=0)
        assert tm["n"] == st.n


def test_train_stream_equals_core_logistic(client):
    tasks = logistic_tasks(6)
    client.create_model("e2e-log", **LOGISTIC)
    acks = client.train_stream("e2e-log", tasks)
    ref = core_model(tasks, **LOGISTIC)
    assert [a.task_id for a in acks] == [t[0] for t in tasks]
    assert [a.n_tasks for a in acks] == list(range(1, 7))
    assert [a.version for a in acks] == sorted({a.version for a in acks})  # strictly increasing
    assert_same_model(client, "e2e-log", ref)
    for tid, X, _ in tasks:
        np.testing.assert_allclose(client.decision_function("e2e-log", tid, X), ref.decision_function(X, tid), atol=TOL)
        np.testing.assert_array_equal(client.predict("e2e-log", tid, X), ref.predict(X, tid))
        np.testing.assert_allclose(client.predict_proba("e2e-log", tid, X), ref.predict_proba(X, tid), atol=TOL)
    client.delete_model("e2e-log")


def test_chunked_tasks_and_revisits_equal_core(server):
    """Tasks split over many chunks (tiny chunk size) and revisited later: same as the core."""
    tasks = regression_tasks(3, n=200, d=5)
    stream = tasks + [(tasks[0][0], tasks[0][1][:50] + 1.0, tasks[0][2][:50])]
    params = dict(k=2, mu=1e-2, lam=1e-2, random_state=3)
    with Client(server.target, timeout=30.0, chunk_bytes=8 * 6 * 7) as c:  # 7 rows per chunk
        c.create_model("e2e-chunks", **params)
        acks = c.train_stream("e2e-chunks", stream)
        assert [a.n_rows for a in acks] == [200, 200, 200, 50]
        assert_same_model(c, "e2e-chunks", core_model(stream, **params))
        c.delete_model("e2e-chunks")


def test_predict_stream_equals_predict(client):
    tasks = regression_tasks(2, n=300, d=4)
    client.create_model("e2e-ps", k=2, random_state=0)
    client.train_stream("e2e-ps", tasks)
    tid, X, _ = tasks[1]
    parts = list(client.predict_stream("e2e-ps", tid, X, rows_per_chunk=64, outputs=("scores", "labels")))
    assert [p["row_offset"] for p in parts] == list(range(0, 300, 64))
    np.testing.assert_array_equal(np.concatenate([p["scores"] for p in parts]), client.decision_function("e2e-ps", tid, X))
    client.delete_model("e2e-ps")


def test_models_side_by_side_and_operations(client, tmp_path):
    tasks = logistic_tasks(3)
    client.create_model("ops-a", **LOGISTIC)
    client.create_model("ops-b", **{**LOGISTIC, "k": 3})
    assert {"ops-a", "ops-b"} <= set(client.list_models())
    assert client.get_config("ops-b")["k"] == 3 and client.get_config("ops-a")["loss"] == "logistic"
    client.train_stream("ops-a", tasks[:2])
    saved = client.save("ops-a", "v1")
    L1 = client.basis("ops-a")
    client.train("ops-a", *tasks[2])
    assert client.list_tasks("ops-a") == [t[0] for t in tasks]
    client.load("ops-a", "v1")
    np.testing.assert_array_equal(client.basis("ops-a"), L1)
    assert client.list_tasks("ops-a") == [t[0] for t in tasks[:2]]
    assert client.basis_info("ops-a")["version"] == saved
    client.clear("ops-a")
    assert client.list_tasks("ops-a") == [] and client.get_config("ops-a")["k"] == 2
    status = client.status()
    assert "server" in status and all(isinstance(v, str) for node in status.values() for v in node.values())
    client.delete_model("ops-a")
    client.delete_model("ops-b")
    assert "ops-a" not in client.list_models()


RAW_CLIENT = r"""
import json, sys
import grpc
sys.path.insert(0, sys.argv[1])
from ella.v1 import ella_pb2 as pb, ella_pb2_grpc as pbg
tasks = json.loads(sys.stdin.read())
with grpc.insecure_channel(sys.argv[2]) as ch:
    stub = pbg.EllaStub(ch)
    stub.CreateModel(pb.CreateModelRequest(name="raw", config=pb.ModelConfig(loss="logistic", k=2, mu=1e-3, lam=1e-2, ridge=1e-2, seed=0)))
    def chunks():
        for i, (tid, X, y) in enumerate(tasks):
            yield pb.TrainChunk(model="raw" if i == 0 else "", task_id=tid, n_features=len(X[0]),
                                x=[v for row in X for v in row], y=y, end_of_task=True)
    resp = stub.Train(chunks())
    tid, X, _ = tasks[-1]
    pred = stub.Predict(pb.PredictRequest(model="raw", task_id=tid, outputs=[pb.OUTPUT_SCORES, pb.OUTPUT_LABELS],
                                          x=pb.Matrix(values=[v for row in X for v in row], shape=[len(X), len(X[0])])))
    print(json.dumps({"n_tasks": resp.n_tasks, "acks": [a.task_id for a in resp.acks],
                      "scores": list(pred.scores), "labels": list(pred.labels), "modules": sorted(m for m in sys.modules if m.startswith(("ella", "ray")))}))
"""


def test_client_generated_from_the_proto_alone(server, tmp_path):
    """The .proto is the contract: stubs generated from it alone (no ella_client) train and predict."""
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", str(REPO / "proto"), f"--python_out={tmp_path}",
                    f"--grpc_python_out={tmp_path}", str(REPO / "proto/ella/v1/ella.proto")], check=True)
    tasks = logistic_tasks(3)
    payload = json.dumps([(tid, X.tolist(), y.tolist()) for tid, X, y in tasks])
    env = subprocess_env()
    env["PYTHONPATH"] = ""  # only grpcio + protobuf from site-packages, and the fresh stubs
    out = subprocess.run([sys.executable, "-c", RAW_CLIENT, str(tmp_path), server.target], input=payload,
                         capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["acks"] == [t[0] for t in tasks] and got["n_tasks"] == 3
    assert got["modules"] == ["ella", "ella.v1", "ella.v1.ella_pb2", "ella.v1.ella_pb2_grpc"]
    ref = core_model(tasks, **LOGISTIC)
    tid, X, _ = tasks[-1]
    np.testing.assert_allclose(got["scores"], ref.decision_function(X, tid), atol=TOL)
    np.testing.assert_array_equal(got["labels"], ref.predict(X, tid))
    with Client(server.target) as c:
        c.delete_model("raw")


def test_health_serving_and_reflection_lists_the_service(server):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    with grpc.insecure_channel(server.target) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for service in ("", "ella.v1.Ella"):
            assert health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status == \
                health_pb2.HealthCheckResponse.SERVING
        db = ProtoReflectionDescriptorDatabase(ch)
        services = db.get_services()
        assert "ella.v1.Ella" in services and "grpc.health.v1.Health" in services
        method_names = {m.name for m in db.FindFileContainingSymbol("ella.v1.Ella").service[0].method}
        assert {"Train", "Predict", "PredictStream", "Save", "Load", "Clear", "GetStatus"} <= method_names


@pytest.mark.parametrize("n_rows", [1, 8, 64])
def test_predict_batches(client, n_rows):
    tasks = logistic_tasks(2)
    name = f"batch-{n_rows}"
    client.create_model(name, **LOGISTIC)
    client.train_stream(name, tasks)
    tid, X, _ = tasks[0]
    ref = core_model(tasks, **LOGISTIC)
    np.testing.assert_allclose(client.decision_function(name, tid, X[:n_rows]), ref.decision_function(X[:n_rows], tid), atol=TOL)
    client.delete_model(name)

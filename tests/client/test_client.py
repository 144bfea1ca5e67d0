"""The client library: no Ray import, numpy round trips, errors, retries, RemoteELLA."""

from __future__ import annotations

import socket
import subprocess
import sys

import grpc
import numpy as np
import pytest
from ella_client import (
    AlreadyExists,
    Client,
    EllaError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    RemoteELLA,
    Unavailable,
)

from ella_dist import ELLA
from tests.server.support import LOGISTIC, logistic_tasks, regression_tasks, subprocess_env


def test_import_does_not_load_ray_or_the_core():
    code = ("import sys, ella_client; bad = sorted(m for m in sys.modules if m == 'ray' or m.startswith(('ray.', "
            "'ella_dist.core', 'ella_dist.cluster', 'scipy'))); print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(), timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_remote_ella_matches_the_core(server):
    tasks = logistic_tasks(4)
    est = RemoteELLA(server.target, "remote", **LOGISTIC)
    ref = ELLA(**LOGISTIC)
    for tid, X, y in tasks:
        assert est.partial_fit(X, y, task_id=tid) is est
        ref.partial_fit(X, y, tid)
    for tid, X, y in tasks:
        np.testing.assert_array_equal(est.predict(X, task_id=tid), ref.predict(X, tid))
        np.testing.assert_allclose(est.predict_proba(X, task_id=tid), ref.predict_proba(X, tid), atol=1e-10)
        assert est.score(X, y, task_id=tid) == pytest.approx(ref.score(X, y, tid))
    np.testing.assert_allclose(est.L_, ref.L_, atol=1e-10)
    assert est.task_ids_ == ref.task_ids_ and est.n_tasks_ == 4
    assert est.get_params()["k"] == LOGISTIC["k"]
    # an existing model is reused, not recreated
    again = RemoteELLA(est.client, "remote", **LOGISTIC)
    assert again.n_tasks_ == 4
    est.client.delete_model("remote")
    est.client.close()


def test_large_tasks_are_chunked_and_equal_the_core(server):
    """A task of ~2.4 MB with 64 KiB chunks (~37 chunks) and a predict split over requests."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 100))
    y = X[:, :3] @ [1.0, -2.0, 0.5] + 0.1 * rng.standard_normal(3000)
    with Client(server.target, timeout=60, chunk_bytes=64 * 1024) as c:
        c.create_model("big", k=2, random_state=0)
        ack = c.train("big", "t", X, y)
        assert ack.n_rows == 3000 and ack.n_tasks == 1
        ref = ELLA(k=2, random_state=0).partial_fit(X, y, "t")
        np.testing.assert_allclose(c.decision_function("big", "t", X), ref.decision_function(X, "t"), atol=1e-9)
        c.delete_model("big")


def test_errors_are_a_small_hierarchy_with_code_and_message(client):
    tasks = regression_tasks(1)
    client.create_model("errs", k=2)
    with pytest.raises(AlreadyExists) as info:
        client.create_model("errs", k=2)
    assert info.value.code == grpc.StatusCode.ALREADY_EXISTS and "errs" in info.value.message
    with pytest.raises(FailedPrecondition):
        client.basis("errs")
    client.train_stream("errs", tasks)
    with pytest.raises(NotFound) as nf:
        client.predict("errs", "unknown-task", tasks[0][1])
    assert isinstance(nf.value, KeyError) and "unknown-task" in str(nf.value)
    with pytest.raises(InvalidArgument) as ia:
        client.train("errs", "t", np.ones(5), np.ones(5))  # 1-D X is refused before sending
    assert isinstance(ia.value, ValueError)
    # a bad task after a good one in the same stream: the error is raised, nothing is applied
    before = client.basis_info("errs")
    with pytest.raises(InvalidArgument, match="2-D"):
        client.train_stream("errs", [("fine", *tasks[0][1:]), ("bad", np.ones(3), np.ones(3))])
    assert client.basis_info("errs")["version"] == before["version"] and client.list_tasks("errs") == [tasks[0][0]]
    with pytest.raises(TypeError, match="Unknown model parameter"):
        client.create_model("errs2", kk=3)
    assert all(issubclass(c, EllaError) for c in (AlreadyExists, NotFound, InvalidArgument, Unavailable))
    client.delete_model("errs")


def test_unavailable_is_retried_a_bounded_number_of_times_then_raised():
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Client(f"127.0.0.1:{port}", timeout=2, retries=2, backoff=0.01) as c:
        with pytest.raises(Unavailable) as info:
            c.list_models()
    assert info.value.code == grpc.StatusCode.UNAVAILABLE


def test_retried_train_stream_is_not_counted_twice(client):
    """Replaying a stream with the same submission ids (what a retry does) applies each task once."""
    tasks = logistic_tasks(2)
    client.create_model("idem", **LOGISTIC)
    stream = [(tid, X, y, f"sub-{tid}") for tid, X, y in tasks]
    first = client.train_stream("idem", stream)
    again = client.train_stream("idem", stream)
    assert [a.version for a in again] == [a.version for a in first]
    assert client.basis_info("idem")["version"] == first[-1].version
    assert client.list_tasks("idem") == [t[0] for t in tasks]
    client.delete_model("idem")

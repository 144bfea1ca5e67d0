"""Train stream assembly rules (no server): whole tasks or a clear rejection."""

from __future__ import annotations

import numpy as np
import pytest
from ella_server.status import LimitExceededError
from ella_server.stream import TrainStream

from ella_dist._generated import ella_pb2 as pb


def chunk(task, rows, d=3, end=True, model="m", **kw):
    return pb.TrainChunk(model=model, task_id=task, n_features=d, x=np.arange(rows * d, dtype=float),
                         y=np.zeros(rows), end_of_task=end, **kw)


def test_tasks_spanning_chunks_are_reassembled_in_order():
    s = TrainStream()
    s.add(chunk("a", 2, end=False))
    s.add(chunk("a", 3, model=""))
    s.add(chunk("b", 1, model=""))
    s.add(chunk("a", 1, model=""))  # a revisit later in the stream
    model, tasks = s.finish()
    assert model == "m" and [t.task_id for t in tasks] == ["a", "b", "a"]
    assert tasks[0].X.shape == (5, 3) and tasks[0].y.shape == (5,)
    np.testing.assert_array_equal(tasks[0].X[2:], np.arange(9.0).reshape(3, 3))


@pytest.mark.parametrize(
    "chunks, match",
    [
        ([chunk("a", 2, end=False)], "ended in the middle of task 'a'"),
        ([chunk("a", 2, end=False), chunk("b", 2, model="")], "starts before task 'a'"),
        ([chunk("a", 2, end=False), chunk("a", 2, d=4, model="")], "n_features=4"),
        ([pb.TrainChunk(model="m", task_id="a", n_features=3, x=[1.0] * 5, y=[0, 1], end_of_task=True)], r"len\(x\)"),
        ([chunk("a", 1, model="")], "'model' must be set"),
        ([chunk("a", 1), chunk("b", 1, model="other")], "one stream trains one model"),
        ([chunk("", 1)], "task_id"),
        ([chunk("a", 1, d=0)], "n_features"),
        ([], "carried no task"),
    ],
)
def test_malformed_streams_are_rejected_whole(chunks, match):
    s = TrainStream()
    with pytest.raises(ValueError, match=match):
        for c in chunks:
            s.add(c)
        s.finish()


def test_limits_are_resource_errors_that_name_the_limit():
    with pytest.raises(LimitExceededError, match="at most 4 rows"):
        TrainStream(max_rows_per_chunk=4).add(chunk("a", 5))
    s = TrainStream(max_bytes=1000)
    with pytest.raises(LimitExceededError, match="1000 bytes"):
        for _ in range(10):
            s.add(chunk("a", 5))


def test_pure_server_modules_do_not_load_ray():
    """The stream checks, conversions and the status mapping work without importing Ray
    (the mapping finds Ray's and the engine's exception classes only once they are loaded)."""
    import subprocess
    import sys

    from .support import subprocess_env

    code = (
        "import sys\n"
        "import ella_server.servicer, ella_server.stream, ella_server.status as st\n"
        "assert 'ray' not in sys.modules and 'ella_dist.cluster' not in sys.modules, sorted(sys.modules)\n"
        "assert st.to_status(ValueError('bad'))[0].name == 'INVALID_ARGUMENT'\n"
        "assert st.to_status(st.LimitExceededError('big'))[0].name == 'RESOURCE_EXHAUSTED'\n"
        "assert st.to_status(KeyError('t'))[0].name == 'INTERNAL'\n"
        "assert 'ray' not in sys.modules\n"
        "from ray.exceptions import ActorDiedError\n"
        "from ella_dist.cluster.errors import BackpressureError, EngineUnavailableError, UnknownModelError\n"
        "assert st.to_status(ActorDiedError())[0].name == 'UNAVAILABLE'\n"
        "assert st.to_status(EngineUnavailableError('down'))[0].name == 'UNAVAILABLE'\n"
        "assert st.to_status(BackpressureError('full'))[0].name == 'RESOURCE_EXHAUSTED'\n"
        "assert st.to_status(UnknownModelError('m'))[0].name == 'NOT_FOUND'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr

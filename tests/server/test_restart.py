"""SIGTERM drains and checkpoints; a restart on the same --checkpoint-dir serves the same models."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import numpy as np
from ella_client import Client

from .support import LOGISTIC, logistic_tasks, subprocess_env


class ServerProcess:
    """``python -m ella_server`` in a subprocess on a free loopback port."""

    def __init__(self, checkpoint_dir: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ella_server", "--host", "127.0.0.1", "--port", "0", "--num-learners", "1",
             "--checkpoint-dir", checkpoint_dir],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=subprocess_env(),
        )
        self.lines: list[str] = []
        ready = threading.Event()

        def pump() -> None:
            for line in self.proc.stdout:
                self.lines.append(line)
                if line.startswith("ella-dist: serving on "):
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(180) or self.proc.poll() is not None:
            self.proc.kill()
            raise AssertionError("server did not start:\n" + "".join(self.lines))
        self.target = next(ln for ln in self.lines if ln.startswith("ella-dist: serving on ")).split()[-1]

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(120)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def wait_until(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_sigterm_drains_in_flight_calls_then_restart_serves_every_acknowledged_task(tmp_path):
    """SIGTERM while a Train stream is half sent and predictions are running: the stream
    completes (drain), predictions answer or get a clean UNAVAILABLE, and a server
    restarted on the same checkpoint dir holds exactly the acknowledged tasks, once each."""
    from ella_client import Unavailable

    from ella_dist import ELLA

    tasks = logistic_tasks(9)
    first = ServerProcess(str(tmp_path))
    half_sent, resume = threading.Event(), threading.Event()
    result: dict = {}
    outcomes: list = []
    try:
        with Client(first.target, timeout=60, retries=0) as c:
            c.create_model("durable", **LOGISTIC)
            acks = c.train_stream("durable", tasks[:3])
            scores = c.decision_function("durable", tasks[0][0], tasks[0][1])
            calls_before = int(c.status()["server"]["calls"])

            def slow_tasks():
                yield tasks[3]
                half_sent.set()  # the Train call is open and its first task sent
                resume.wait(60)
                yield from tasks[4:9]

            def stream() -> None:
                with Client(first.target, timeout=60, retries=0) as c2:
                    try:
                        result["acks"] = c2.train_stream("durable", slow_tasks())
                    except Exception as exc:  # noqa: BLE001 - asserted below
                        result["error"] = exc

            def predictions() -> None:
                with Client(first.target, timeout=60, retries=0) as c3:
                    while not result.get("stop"):
                        try:
                            outcomes.append(c3.decision_function("durable", tasks[0][0], tasks[0][1][:64]).shape)
                        except Exception as exc:  # noqa: BLE001 - asserted below
                            outcomes.append(exc)
                            return

            streamer = threading.Thread(target=stream)
            streamer.start()
            assert half_sent.wait(60)
            # the server has accepted the Train call: it counts a call when it starts serving
            # it, and each status poll counts itself
            polls = [0]

            def train_started() -> bool:
                polls[0] += 1
                return int(c.status()["server"]["calls"]) - calls_before - polls[0] >= 1

            wait_until(train_started)
            predictor = threading.Thread(target=predictions)
            predictor.start()
            wait_until(lambda: len(outcomes) > 0)
            first.proc.send_signal(signal.SIGTERM)
            wait_until(lambda: any(ln.startswith("ella-dist: draining") for ln in first.lines))
            resume.set()  # the rest of the stream arrives after SIGTERM, while the server drains
            streamer.join(120)
            result["stop"] = True
            predictor.join(120)
    finally:
        resume.set()
        code = first.terminate()
    assert code == 0, "".join(first.lines)
    assert any("final checkpoint written" in ln for ln in first.lines), "".join(first.lines)
    # the stream that was in flight at SIGTERM completed: all 6 of its tasks acknowledged
    assert "error" not in result, result.get("error")
    stream_acks = result["acks"]
    assert [a.task_id for a in stream_acks] == [t[0] for t in tasks[3:9]]
    assert [a.version for a in stream_acks] == list(range(4, 10))
    # predictions running across SIGTERM either answered or got a clean UNAVAILABLE
    assert outcomes and all(o == (64,) or isinstance(o, Unavailable) for o in outcomes), outcomes[-3:]

    second = ServerProcess(str(tmp_path))
    try:
        with Client(second.target, timeout=60) as c:
            assert c.list_models() == ["durable"]
            assert c.get_config("durable")["k"] == LOGISTIC["k"]
            # every acknowledged task, once each (9 tasks, 9 updates, each task's rows counted once)
            assert c.list_tasks("durable") == [t[0] for t in tasks]
            info = c.basis_info("durable")
            assert info["version"] == stream_acks[-1].version == 9 and info["n_tasks"] == 9
            assert acks[-1].version == 3
            for tid, X, _ in tasks:
                assert c.task_model("durable", tid)["n"] == len(X)
            # and it is the model the core builds from those 9 tasks in that order
            core = ELLA(**LOGISTIC)
            for tid, X, y in tasks:
                core.partial_fit(X, y, tid)
            np.testing.assert_allclose(info["L"], core.L_, atol=1e-10)
            np.testing.assert_allclose(c.decision_function("durable", tasks[0][0], tasks[0][1]),
                                       core.decision_function(tasks[0][1], tasks[0][0]), atol=1e-10)
            assert scores.shape == (len(tasks[0][1]),)
            assert c.train("durable", *logistic_tasks(10)[9]).n_tasks == 10  # and it keeps learning
    finally:
        assert second.terminate() == 0, "".join(second.lines)

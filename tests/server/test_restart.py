"""SIGTERM drains and checkpoints; a restart on the same --checkpoint-dir serves the same models."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

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


def test_sigterm_then_restart_on_the_same_checkpoint_dir(tmp_path):
    tasks = logistic_tasks(4)
    first = ServerProcess(str(tmp_path))
    try:
        with Client(first.target, timeout=60) as c:
            c.create_model("durable", **LOGISTIC)
            acks = c.train_stream("durable", tasks[:3])
            L = c.basis("durable")
            scores = c.decision_function("durable", tasks[0][0], tasks[0][1])
    finally:
        code = first.terminate()
    assert code == 0, "".join(first.lines)
    assert any("final checkpoint written" in ln for ln in first.lines), "".join(first.lines)

    second = ServerProcess(str(tmp_path))
    try:
        with Client(second.target, timeout=60) as c:
            assert c.list_models() == ["durable"]
            assert c.get_config("durable")["k"] == LOGISTIC["k"]
            assert c.list_tasks("durable") == [t[0] for t in tasks[:3]]
            info = c.basis_info("durable")
            assert info["version"] == acks[-1].version and info["n_tasks"] == 3
            np.testing.assert_array_equal(info["L"], L)
            np.testing.assert_array_equal(c.decision_function("durable", tasks[0][0], tasks[0][1]), scores)
            assert c.train("durable", *tasks[3]).n_tasks == 4  # and it keeps learning
    finally:
        assert second.terminate() == 0, "".join(second.lines)

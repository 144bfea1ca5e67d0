"""The ella-dist command's client-side sub-commands against the real server."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ella_dist.cli import build_parser, load_tasks, main
from tests.server.support import logistic_tasks


def test_help_explains_every_command(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    for cmd in ("demo", "serve", "submit", "predict", "status", "bench"):
        assert cmd in out
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    assert "--checkpoint-dir" in capsys.readouterr().out


def test_load_tasks_from_npz_and_csv(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((6, 2)), np.arange(6.0)
    task = np.array(["a", "b", "a", "b", "a", "b"])
    np.savez(tmp_path / "t.npz", X=X, y=y, task=task)
    csv = tmp_path / "t.csv"
    csv.write_text("task,f0,y,f1\n" + "".join(f"{t},{x0},{yy},{x1}\n" for t, (x0, x1), yy in zip(task, X, y)))
    for path in (tmp_path / "t.npz", csv):
        tasks = load_tasks(str(path))
        assert [t[0] for t in tasks] == ["a", "b"]
        np.testing.assert_allclose(tasks[0][1], X[::2])
        np.testing.assert_allclose(tasks[1][2], y[1::2])
    with pytest.raises(ValueError, match="unsupported"):
        load_tasks(str(tmp_path / "t.txt"))


def test_submit_predict_status(server, tmp_path, capsys):
    tasks = logistic_tasks(3)
    np.savez(tmp_path / "mines.npz", **{f"X_{tid}": X for tid, X, _ in tasks}, **{f"y_{tid}": y for tid, _, y in tasks})
    conn = ["--target", server.target]
    assert main(["submit", "cli", str(tmp_path / "mines.npz"), "--create", "--loss", "logistic", "--k", "2",
                 "--quiet", *conn]) == 0
    assert "applied 3 task(s)" in capsys.readouterr().out
    tid, X, _ = tasks[0]
    np.savetxt(tmp_path / "rows.csv", X[:5], delimiter=",")
    assert main(["predict", "cli", tid, str(tmp_path / "rows.csv"), "--output", "labels", *conn]) == 0
    labels = [float(v) for v in capsys.readouterr().out.split()]
    assert len(labels) == 5 and set(labels) <= {0.0, 1.0}
    assert main(["status", "--json", *conn]) == 0
    st = json.loads(capsys.readouterr().out)
    assert "cli" in st["models"] and "parameter" in st["nodes"]
    assert main(["predict", "cli", "no-such-task", str(tmp_path / "rows.csv"), *conn]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err

"""The committed stubs are exactly what `make proto` produces from the .proto."""

from __future__ import annotations

import filecmp
import subprocess
import sys

from .support import REPO

GENERATED = ("ella_pb2.py", "ella_pb2.pyi", "ella_pb2_grpc.py")


def test_committed_stubs_match_the_proto(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", str(REPO / "proto"), f"--python_out={tmp_path}",
         f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}", str(REPO / "proto/ella/v1/ella.proto")],
        check=True,
    )
    committed = REPO / "ella_dist/_generated/ella/v1"
    for name in GENERATED:
        assert filecmp.cmp(tmp_path / "ella/v1" / name, committed / name, shallow=False), (
            f"ella_dist/_generated/ella/v1/{name} is stale: run `make proto` and commit"
        )


def test_every_proto_field_is_commented():
    """The .proto is the contract: each message field carries a comment (shape/units)."""
    lines = (REPO / "proto/ella/v1/ella.proto").read_text().splitlines()
    uncommented = []
    for i, line in enumerate(lines):
        s = line.strip()
        is_field = s.endswith(";") and "=" in s and not s.startswith(("//", "option", "syntax", "package", "rpc"))
        in_enum = s.split()[0].isupper() if s else False
        if is_field and not in_enum and "//" not in s and not lines[i - 1].strip().startswith("//"):
            uncommented.append(s)
    assert uncommented == []

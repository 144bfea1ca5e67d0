"""The on-disk model format: one ``.npz`` file, no pickle, with a format version.

Layout: a ``__meta__`` entry holding UTF-8 JSON (format name, format version,
constructor parameters, task ids and scalar state) plus named float64 arrays. Loading
uses ``allow_pickle=False``, so a file can never execute code. Writes go to a
temporary file in the same directory and are renamed into place (atomic on POSIX), so
a crash mid-write leaves the previous file intact; the Ray layer's checkpoints rely on it.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelFormatError

FORMAT_VERSION = 1


def dump_bytes(kind: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    """Serialise a model to the bytes of an ``.npz`` file."""
    header = {"format": f"ella-dist/{kind}", "format_version": FORMAT_VERSION, **meta}
    buf = io.BytesIO()
    np.savez(buf, __meta__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)
    return buf.getvalue()


def load_bytes(kind: str, data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Inverse of :func:`dump_bytes`; raises :class:`ModelFormatError` on a foreign file."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except Exception as exc:  # zipfile/ValueError/OSError: all mean "not our file"
        raise ModelFormatError(f"Not an ella-dist model file (could not read it as .npz: {exc}).") from None
    if "__meta__" not in arrays:
        raise ModelFormatError("Not an ella-dist model file: it has no '__meta__' entry.")
    meta = json.loads(arrays.pop("__meta__").tobytes().decode())
    if meta.get("format") != f"ella-dist/{kind}":
        raise ModelFormatError(f"Expected a file of format 'ella-dist/{kind}', got {meta.get('format')!r}.")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(
            f"Unsupported model format version {version!r}: this ella-dist reads version "
            f"{FORMAT_VERSION}. Upgrade ella-dist to load it."
        )
    return meta, arrays


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

"""The parameter side: one ELLA per named model, updated one submission at a time.

:class:`ParameterServer` is a plain class (testable without Ray) that owns the models
(L, A, b, T and every task's theta, D, s) and applies sufficient statistics through
:meth:`ella_dist.core.ELLA.update_task`, i.e. Algorithm 1 after the single-task fit, so a
model equals the in-process ELLA fed the same tasks in the same order.
:class:`ParameterActor` is the async Ray actor around it.

Ordering
    Every engine session (one :class:`~ella_dist.cluster.coordinator.Coordinator`)
    numbers its submissions to a model 0, 1, 2, ... when it forwards them. The server
    applies a session's submissions strictly in that order: a lower number is a retry
    (answered from the dedup table), a higher one waits (in the actor) for the gap to
    fill. Sessions interleave in arrival order. All writes run on one thread.

Readers
    After each update the server swaps in a new immutable :class:`ModelView`
    (version, L and the tasks' states). Predictions read the current view on the
    actor's event loop, so they never wait behind an update running on the writer
    thread, and always see one consistent version.

Durability (when ``checkpoint_dir`` is set)
    ``<dir>/models/<name>/``: ``engine.json`` (the pointer: generation, checkpoint
    file, session counters, dedup table), ``checkpoint-<gen>-<version>.npz`` (the
    model in :meth:`ELLA.save`'s versioned format) and ``log-<gen>-<version>.bin``, an
    append-only log of the updates acknowledged since that checkpoint (sufficient
    statistics, CRC-checked records, fsync'd before the ack). A checkpoint is taken
    every ``checkpoint_every`` updates, every ``checkpoint_seconds`` and on demand;
    the pointer is switched by an atomic rename, then stale files are removed. On
    start (also after a Ray restart) the server loads each pointer's checkpoint and
    replays the log records newer than it, so no acknowledged update is lost and
    none is applied twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import struct
import threading
import time
import uuid
import zlib
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ella_dist.core import ELLA, TaskState, persistence
from ella_dist.core.base import TaskModelMixin
from ella_dist.core.errors import NotFittedError
from ella_dist.core.validation import check_task_id

from .errors import ModelChangedError, ModelExistsError, OutOfOrderError, UnknownModelError
from .learner import FitResult

DEDUP_WINDOW = 100_000


@dataclass(frozen=True)
class Ack:
    """The acknowledgement of one applied submission.

    Attributes
    ----------
    model, task_id, submission_id : str
    version : int
        The model version (``ELLA.n_updates_``) right after this update.
    n_tasks : int
        T after this update.
    n_samples : int
        Rows of the task behind its (theta, D).
    n_features : int
    duplicate : bool
        The submission id had been applied before; nothing changed now.
    learner : int
        Index of the learner that fitted the task (-1 if unknown).
    node_id : str
        Ray node of that learner.
    fit_start, fit_end : float
        Wall-clock stamps around the fit, taken inside the learner (0 if unknown).
    """

    model: str
    task_id: str
    submission_id: str
    version: int
    n_tasks: int
    n_samples: int
    n_features: int
    duplicate: bool = False
    learner: int = -1
    node_id: str = ""
    fit_start: float = 0.0
    fit_end: float = 0.0


class ModelView(TaskModelMixin):
    """A read-only, versioned snapshot of a model: L and the tasks' (theta, D, s, n).

    Predictions use the core's code (:class:`~ella_dist.core.base.TaskModelMixin`), so
    they equal the in-process ELLA's bit for bit and raise the same errors.

    Attributes
    ----------
    name : str
    version : int
        ``n_updates_`` of the model the view was taken from.
    generation : str
        Changes on create, clear and load.
    L_ : ndarray of shape (d, k) or None (unfitted)
    tasks : dict of str -> TaskState
    """

    _parameter_constraints: ClassVar[dict[str, tuple]] = ELLA._parameter_constraints

    def __init__(self, name: str, params: dict[str, Any], version: int, generation: str,
                 L: np.ndarray | None, tasks: dict[str, TaskState], n_features: int | None) -> None:
        self.name = name
        for key, value in params.items():
            setattr(self, key, value)
        self.version = version
        self.generation = generation
        self.L_ = L
        self.tasks = tasks
        if n_features is not None:
            self.n_features_in_ = n_features

    @property
    def n_tasks_(self) -> int:
        return len(self.tasks)

    @property
    def task_ids_(self) -> list[str]:
        return list(self.tasks)

    def _task_index(self) -> dict:
        return self.tasks

    def _theta(self, task_id: str) -> np.ndarray:
        return self.L_ @ self.tasks[task_id].s

    def _check_known(self, task_id: Any) -> str:
        if not hasattr(self, "n_features_in_"):
            check_task_id(task_id)
            raise NotFittedError("This ELLA has not been trained on any task yet.")
        return super()._check_known(task_id)

    def task_state(self, task_id: Any) -> TaskState:
        """Copies of theta, D, s and n of a known task."""
        st = self.tasks[self._check_known(task_id)]
        return TaskState(st.theta.copy(), st.D.copy(), st.s.copy(), st.n)


class CodesView(ModelView):
    """What predictions need of a :class:`ModelView`: L and every task's code s, nothing else.

    The reply the parameter actor sends to an engine's snapshot cache (see
    :meth:`ParameterActor.read` ``"codes"``): d x k for L plus one k-vector per task, in
    one (T, k) array, instead of each task's (theta, D). Predictions and their errors are
    :class:`ModelView`'s, i.e. the core's code: ``X (+ intercept) @ (L @ s)``.
    ``task_state`` is not available (it needs theta and D).
    """

    def __init__(self, view: ModelView) -> None:
        super().__init__(view.name, view.get_params(), view.version, view.generation, view.L_, {},
                         getattr(view, "n_features_in_", None))
        self.task_rows = {tid: i for i, tid in enumerate(view.tasks)}
        k = view.L_.shape[1] if view.L_ is not None else 0
        self.S = (np.array([st.s for st in view.tasks.values()], dtype=np.float64) if view.tasks
                  else np.zeros((0, k)))

    @property
    def n_tasks_(self) -> int:
        return len(self.task_rows)

    @property
    def task_ids_(self) -> list[str]:
        return list(self.task_rows)

    def _task_index(self) -> dict:
        return self.task_rows

    def _theta(self, task_id: str) -> np.ndarray:
        return self.L_ @ self.S[self.task_rows[task_id]]

    def task_state(self, task_id: Any) -> TaskState:
        raise TypeError("A CodesView holds L and the codes only; ask the parameter actor for task_state.")


# -- the update log ------------------------------------------------------------------------
_HEAD = struct.Struct("<II")
_CRC = struct.Struct("<I")


def _encode_record(meta: dict[str, Any], arrays: tuple[np.ndarray, ...] = ()) -> bytes:
    body = json.dumps(meta).encode() + b"".join(np.ascontiguousarray(a, dtype="<f8").tobytes() for a in arrays)
    head = _HEAD.pack(len(json.dumps(meta).encode()), len(body))
    return head + body + _CRC.pack(zlib.crc32(head + body))


def read_log(path: Path) -> list[tuple[dict[str, Any], bytes]]:
    """Records of one log file, stopping at the first torn or corrupt one (an un-acked tail)."""
    out = []
    data = path.read_bytes()
    pos = 0
    while pos + _HEAD.size <= len(data):
        jlen, blen = _HEAD.unpack_from(data, pos)
        end = pos + _HEAD.size + blen + _CRC.size
        if end > len(data) or jlen > blen:
            break
        (crc,) = _CRC.unpack_from(data, end - _CRC.size)
        if crc != zlib.crc32(data[pos:end - _CRC.size]):
            break
        body = data[pos + _HEAD.size:end - _CRC.size]
        out.append((json.loads(body[:jlen]), body[jlen:]))
        pos = end
    return out


class _UpdateLog:
    """Append-only file of acknowledged updates since a checkpoint."""

    def __init__(self, path: Path, fsync: bool) -> None:
        self.path = path
        self.fsync = fsync
        self._fh = open(path, "ab")  # noqa: SIM115 - closed in close()
        self.records = 0

    def append(self, record: bytes) -> None:
        self.append_many([record])

    def append_many(self, records: list[bytes]) -> None:
        """Append records with one write and (if enabled) one fsync."""
        self._fh.write(b"".join(records))
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())
        self.records += len(records)

    def close(self) -> None:
        self._fh.close()


@dataclass
class _Model:
    name: str
    ella: ELLA
    generation: str
    view: ModelView
    sessions: dict[str, int]
    acks: OrderedDict[str, dict[str, Any]]
    rejects: OrderedDict[str, str]
    log: _UpdateLog | None = None
    checkpoint_version: int = -1
    checkpoint_time: float = 0.0
    dirty: int = 0
    applied: int = 0
    duplicates: int = 0
    rejected: int = 0
    replayed: int = 0


def _version(ella: ELLA) -> int:
    return int(getattr(ella, "n_updates_", 0))


def _n_features(ella: ELLA) -> int | None:
    return getattr(ella, "n_features_in_", None)


def _task_states(ella: ELLA) -> dict[str, TaskState]:
    return {tid: ella.task_state(tid) for tid in ella.task_ids_}


class ParameterServer:
    """Owns one ELLA per named model and applies updates one at a time.

    Parameters
    ----------
    checkpoint_dir : str or None
        Where checkpoints, logs and saved models live; None keeps everything in
        memory (a restart then starts empty: nothing is durable).
    checkpoint_every : int, default=100
        Take a checkpoint after this many updates of a model.
    checkpoint_seconds : float, default=30.0
        ... or when the oldest un-checkpointed update is this old (checked after
        each update and by :meth:`tick`).
    fsync : bool, default=True
        fsync the log after each record, before the ack (durable against power loss,
        not just process death).
    engine_info : dict, optional
        Deployment facts kept for drivers that connect later (e.g. the learner count).
    """

    def __init__(self, checkpoint_dir: str | None = None, checkpoint_every: int = 100,
                 checkpoint_seconds: float = 30.0, fsync: bool = True,
                 engine_info: dict[str, Any] | None = None) -> None:
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.checkpoint_every = int(checkpoint_every)
        self.checkpoint_seconds = float(checkpoint_seconds)
        self.fsync = bool(fsync)
        self.engine_info = dict(engine_info or {})
        self._models: dict[str, _Model] = {}
        self._lock = threading.RLock()  # writer thread vs. reads of the dicts
        self.counters = {"apply_calls": 0, "applied": 0, "duplicates": 0, "rejected": 0,
                         "checkpoints": 0, "replayed": 0, "restored_models": 0}
        self.started = time.time()
        if self.checkpoint_dir is not None:
            self._restore_all()

    # -- model registry -------------------------------------------------------------------
    def _get(self, name: str) -> _Model:
        try:
            return self._models[name]
        except KeyError:
            raise UnknownModelError(
                f"Unknown model {name!r}: the engine holds {len(self._models)} model(s)"
                + (f" ({', '.join(sorted(self._models)[:5])})." if self._models else ".")
            ) from None

    def _dir(self, name: str) -> Path:
        assert self.checkpoint_dir is not None
        return self.checkpoint_dir / "models" / name

    def _new_model(self, name: str, ella: ELLA, generation: str | None = None) -> _Model:
        gen = generation or uuid.uuid4().hex[:12]
        m = _Model(name, ella, gen, self._make_view(name, ella, gen, _task_states(ella)), {}, OrderedDict(),
                   OrderedDict(), checkpoint_time=time.time())
        return m

    @staticmethod
    def _make_view(name: str, ella: ELLA, generation: str, tasks: dict[str, TaskState]) -> ModelView:
        L = getattr(ella, "L_", None)
        return ModelView(name, ella.get_params(), _version(ella), generation, L, tasks, _n_features(ella))

    def create_model(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Create an empty model; raises ModelExistsError if the name is taken."""
        with self._lock:
            if name in self._models:
                raise ModelExistsError(f"A model named {name!r} already exists; delete it or pick another name.")
            m = self._new_model(name, ELLA(**params))
            self._models[name] = m
            self._checkpoint(m)
            return self.get_config(name)

    def delete_model(self, name: str) -> None:
        with self._lock:
            m = self._get(name)
            if m.log is not None:
                m.log.close()
            del self._models[name]
            if self.checkpoint_dir is not None:
                d = self._dir(name)
                if d.exists():  # rename first so a crash cannot leave a half-deleted model behind
                    trash = d.with_name(f".deleted-{name}-{uuid.uuid4().hex[:6]}")
                    os.replace(d, trash)
                    shutil.rmtree(trash, ignore_errors=True)

    def list_models(self) -> list[str]:
        return sorted(self._models)

    def get_config(self, name: str) -> dict[str, Any]:
        """Parameters, generation, version and n_features of a model."""
        m = self._get(name)
        v = m.view
        return {"name": name, "params": m.ella.get_params(), "generation": v.generation, "version": v.version,
                "n_features": getattr(v, "n_features_in_", None), "n_tasks": v.n_tasks_}

    def replace_model(self, name: str, ella: ELLA, create: bool = True) -> dict[str, Any]:
        """Swap in ``ella`` under a new generation (clear, load); checkpointed at once."""
        with self._lock:
            if name not in self._models and not create:
                self._get(name)
            old = self._models.get(name)
            if old is not None and old.log is not None:
                old.log.close()
            m = self._new_model(name, ella)
            self._models[name] = m
            self._checkpoint(m)
            return self.get_config(name)

    def clear(self, name: str) -> dict[str, Any]:
        """Forget everything the model learned, keeping its parameters."""
        return self.replace_model(name, ELLA(**self._get(name).ella.get_params()), create=False)

    # -- updates ----------------------------------------------------------------------------
    def expected_seq(self, name: str, generation: str, session: str) -> int | None:
        """The next sequence number of ``session``, or None if it would not wait (unknown/changed model)."""
        m = self._models.get(name)
        if m is None or m.generation != generation:
            return None
        return m.sessions.get(session, 0)

    def apply(self, name: str, generation: str, session: str, seq: int, fit: FitResult) -> Ack:
        """Apply one learner result; see the module docstring for the ordering rules.

        Raises
        ------
        UnknownModelError, ModelChangedError
            No such model, or it was cleared/loaded since the submission was routed.
        OutOfOrderError
            ``seq`` is ahead of the session's next number (the caller retries later).
        ValueError
            The core rejected the update (feature count, non-finite L step) or the
            learner's row count disagrees with the model's (its data were lost).
        """
        (out,) = self.apply_many(name, generation, session, seq, [fit])
        if isinstance(out, BaseException):
            raise out
        return out

    def apply_many(self, name: str, generation: str, session: str, seq: int,
                   fits: list[FitResult]) -> list[Ack | Exception]:
        """Apply a run of consecutive submissions ``seq, seq + 1, ...`` of one session, in order.

        Each item is applied exactly as :meth:`apply` would (same dedup, row checks and
        core update), and answered on its own: an ``Ack``, or the ``ValueError`` /
        ``OutOfOrderError`` that item alone would have raised, in its place. The run's log
        records are appended in one write and one fsync, before any of them is returned
        (durable before the ack). ``UnknownModelError``, ``ModelChangedError`` and an
        ``OutOfOrderError`` for the first ``seq`` concern the whole run and are raised.
        """
        with self._lock:
            self.counters["apply_calls"] += 1
            m = self._get(name)
            if generation != m.generation:
                subs = ", ".join(repr(f.submission_id) for f in fits[:3]) + (", ..." if len(fits) > 3 else "")
                raise ModelChangedError(
                    f"Model {name!r} was cleared, deleted or loaded while submission(s) {subs} "
                    "were in flight; they were not applied to the new model."
                )
            expected = m.sessions.get(session, 0)
            if seq > expected:
                raise OutOfOrderError(f"Submission #{seq} of session {session} arrived before #{expected}.")
            out: list[Ack | Exception] = []
            records: list[bytes] = []
            try:
                for i, fit in enumerate(fits):
                    try:
                        out.append(self._apply_one(m, session, seq + i, fit, records))
                    except (ValueError, OutOfOrderError) as exc:
                        out.append(exc)
            finally:
                if records and m.log is not None:
                    m.log.append_many(records)
            self._maybe_checkpoint(m)
            return out

    def _apply_one(self, m: _Model, session: str, seq: int, fit: FitResult, records: list[bytes]) -> Ack:
        expected = m.sessions.get(session, 0)
        sub = fit.submission_id
        if seq < expected:  # the coordinator resent this (session, seq): answer from the dedup table
            return self._replay_answer(m, sub)
        if sub in m.acks or sub in m.rejects:
            m.sessions[session] = expected + 1
            return self._replay_answer(m, sub)
        try:
            ack = self._apply_new(m, fit)
        except ValueError as exc:
            m.sessions[session] = expected + 1
            m.rejects[sub] = str(exc)
            m.rejected += 1
            self.counters["rejected"] += 1
            records.append(_encode_record({"kind": "reject", "session": session, "seq": seq, "sub": sub,
                                           "error": str(exc)}))
            raise
        m.sessions[session] = expected + 1
        m.acks[sub] = asdict(ack)
        while len(m.acks) > DEDUP_WINDOW:
            m.acks.popitem(last=False)
        records.append(_encode_record(
            {"kind": "update", "session": session, "seq": seq, "sub": sub, "task": fit.task_id, "n": fit.n,
             "d": int(fit.theta.shape[0]), "version": ack.version, "ack": asdict(ack)}, (fit.theta, fit.D)))
        m.applied += 1
        self.counters["applied"] += 1
        return ack

    def _replay_answer(self, m: _Model, sub: str) -> Ack:
        m.duplicates += 1
        self.counters["duplicates"] += 1
        if sub in m.acks:
            return Ack(**{**m.acks[sub], "duplicate": True})
        if sub in m.rejects:
            raise ValueError(m.rejects[sub])
        raise OutOfOrderError(f"Submission {sub!r} was sequenced before but is no longer in the dedup table.")

    def _apply_new(self, m: _Model, fit: FitResult) -> Ack:
        ella, tid = m.ella, fit.task_id
        if fit.duplicate:
            raise ValueError(
                f"The learner already folded submission {fit.submission_id!r} of task {tid!r} into its data, but "
                "the model never applied it (the parameter state was lost: no checkpoint_dir?)."
            )
        nf = _n_features(ella)
        d = fit.theta.shape[0]
        if nf is not None and d != nf + int(ella.fit_intercept):
            raise ValueError(f"X has {d - int(ella.fit_intercept)} features, but task {tid!r} was trained with {nf}.")
        prev_n = m.view.tasks[tid].n if tid in m.view.tasks else 0
        if fit.n != prev_n + fit.n_new:
            raise ValueError(
                f"Task {tid!r} has {prev_n} row(s) in model {m.name!r} but its learner refitted on "
                f"{fit.n - fit.n_new} old + {fit.n_new} new; the learner's copy of the task's data was lost "
                "(a learner restart without checkpoint_dir, or a model loaded from a file), so the revisit "
                "cannot refit on all of the task's data. The update was rejected."
            )
        self._core_update(m, tid, fit.theta, fit.D, fit.n)
        v = m.view
        return Ack(m.name, tid, fit.submission_id, v.version, v.n_tasks_, fit.n, v.n_features_in_,
                   learner=fit.learner, node_id=fit.node_id, fit_start=fit.start, fit_end=fit.end)

    def _core_update(self, m: _Model, tid: str, theta: np.ndarray, D: np.ndarray, n: int) -> None:
        m.ella.update_task(tid, theta, D, n)
        tasks = dict(m.view.tasks)
        tasks[tid] = m.ella.task_state(tid)
        m.view = self._make_view(m.name, m.ella, m.generation, tasks)  # swapped in whole: readers see one version
        m.dirty += 1

    # -- durability -------------------------------------------------------------------------
    def _log(self, m: _Model, meta: dict[str, Any], arrays: tuple[np.ndarray, ...] = ()) -> None:
        if m.log is not None:
            m.log.append(_encode_record(meta, arrays))

    def _maybe_checkpoint(self, m: _Model) -> None:
        if self.checkpoint_dir is None or m.dirty == 0:
            return
        if m.dirty >= self.checkpoint_every or time.time() - m.checkpoint_time >= self.checkpoint_seconds:
            self._checkpoint(m)

    def tick(self) -> int:
        """Checkpoint every model whose un-checkpointed updates are older than ``checkpoint_seconds``."""
        n = 0
        with self._lock:
            for m in list(self._models.values()):
                if m.dirty and time.time() - m.checkpoint_time >= self.checkpoint_seconds:
                    self._checkpoint(m)
                    n += 1
        return n

    def checkpoint(self, name: str | None = None) -> list[str]:
        """Checkpoint one model (or all) now; returns the checkpoint files."""
        with self._lock:
            models = [self._get(name)] if name is not None else list(self._models.values())
            return [str(p) for m in models if (p := self._checkpoint(m)) is not None]

    def _checkpoint(self, m: _Model) -> Path | None:
        m.checkpoint_time = time.time()
        if self.checkpoint_dir is None:
            m.dirty = 0
            return None
        d = self._dir(m.name)
        d.mkdir(parents=True, exist_ok=True)
        v = _version(m.ella)
        ckpt = d / f"checkpoint-{m.generation}-{v:012d}.npz"
        log_path = d / f"log-{m.generation}-{v:012d}.bin"
        persistence.write_atomic(ckpt, m.ella.to_bytes())
        if m.log is not None and m.log.path != log_path:
            m.log.close()
            m.log = None
        if m.log is None:
            m.log = _UpdateLog(log_path, self.fsync)
        pointer = {"format": "ella-dist/engine-model", "format_version": 1, "name": m.name,
                   "generation": m.generation, "checkpoint": ckpt.name, "version": v, "log": log_path.name,
                   "sessions": m.sessions, "acks": list(m.acks.items()), "rejects": list(m.rejects.items())}
        persistence.write_atomic(d / "engine.json", json.dumps(pointer).encode())
        for stale in d.iterdir():  # only after the pointer switched: a crash before leaves the old set intact
            if stale.name.startswith(("checkpoint-", "log-")) and stale.name not in (ckpt.name, log_path.name):
                stale.unlink(missing_ok=True)
        m.checkpoint_version, m.dirty = v, 0
        self.counters["checkpoints"] += 1
        return ckpt

    def _restore_all(self) -> None:
        root = self.checkpoint_dir / "models"
        if not root.is_dir():
            return
        for d in sorted(root.iterdir()):
            if d.name.startswith(".") or not (d / "engine.json").is_file():
                continue
            m = self._restore(d)
            self._models[m.name] = m
            self.counters["restored_models"] += 1

    def _restore(self, d: Path) -> _Model:
        pointer = json.loads((d / "engine.json").read_bytes())
        ella = ELLA.from_bytes((d / pointer["checkpoint"]).read_bytes())
        m = self._new_model(pointer["name"], ella, pointer["generation"])
        m.sessions = {k: int(v) for k, v in pointer["sessions"].items()}
        m.acks = OrderedDict((k, v) for k, v in pointer["acks"])
        m.rejects = OrderedDict((k, v) for k, v in pointer["rejects"])
        gen = pointer["generation"]
        logs = sorted(p for p in d.iterdir() if p.name.startswith(f"log-{gen}-"))
        for path in logs:
            for meta, blob in read_log(path):
                m.sessions[meta["session"]] = max(m.sessions.get(meta["session"], 0), meta["seq"] + 1)
                if meta["kind"] == "reject":
                    m.rejects[meta["sub"]] = meta["error"]
                    continue
                if meta["version"] <= _version(m.ella):
                    continue  # already inside the checkpoint
                dd = meta["d"]
                arr = np.frombuffer(blob, dtype="<f8")
                theta, D = arr[:dd].copy(), arr[dd:].reshape(dd, dd).copy()
                self._core_update(m, meta["task"], theta, D, meta["n"])
                if _version(m.ella) != meta["version"]:
                    raise RuntimeError(f"Replaying {path.name} gave version {_version(m.ella)}, expected "
                                       f"{meta['version']}: the log does not match the checkpoint.")
                m.acks[meta["sub"]] = meta["ack"]
                m.replayed += 1
                self.counters["replayed"] += 1
        # Continue appending to the pointer's log: records already there stay valid.
        m.checkpoint_version = int(pointer["version"])
        m.log = _UpdateLog(d / pointer["log"], self.fsync)
        m.dirty = _version(m.ella) - m.checkpoint_version
        return m

    # -- save / load by id ------------------------------------------------------------------
    def _saved_path(self, name: str, model_id: str) -> Path:
        if self.checkpoint_dir is None:
            raise ValueError("save/load need an engine started with checkpoint_dir; this one has none.")
        return self.checkpoint_dir / "saved" / name / f"{model_id}.npz"

    def save(self, name: str, model_id: str) -> str:
        """Write the model to ``<dir>/saved/<name>/<id>.npz`` (ELLA's format); returns the path."""
        with self._lock:
            m = self._get(name)
            return str(persistence.write_atomic(self._saved_path(name, model_id), m.ella.to_bytes()))

    def load(self, name: str, model_id: str) -> dict[str, Any]:
        """Replace (or create) model ``name`` with the file saved under ``model_id``."""
        path = self._saved_path(name, model_id)
        if not path.is_file():
            raise UnknownModelError(f"No saved model {model_id!r} for {name!r} (looked for {path}).")
        return self.replace_model(name, ELLA.from_bytes(path.read_bytes()))

    def model_bytes(self, name: str) -> bytes:
        with self._lock:
            return self._get(name).ella.to_bytes()

    # -- reads ------------------------------------------------------------------------------
    def view(self, name: str) -> ModelView:
        return self._get(name).view

    def stats(self) -> dict[str, str]:
        out = {k: str(v) for k, v in self.counters.items()}
        out["models"] = str(len(self._models))
        out["durable"] = json.dumps(self.checkpoint_dir is not None)
        out["uptime_seconds"] = f"{time.time() - self.started:.1f}"
        for m in list(self._models.values()):
            v = m.view
            p = f"model.{m.name}."
            out[p + "version"] = str(v.version)
            out[p + "T"] = str(v.n_tasks_)
            out[p + "generation"] = v.generation
            out[p + "checkpoint_version"] = str(m.checkpoint_version)
            out[p + "checkpoint_age_seconds"] = f"{time.time() - m.checkpoint_time:.1f}"
            out[p + "log_records"] = str(m.log.records if m.log else 0)
            out[p + "updates_since_checkpoint"] = str(m.dirty)
            out[p + "applied"] = str(m.applied)
            out[p + "duplicates"] = str(m.duplicates)
            out[p + "rejected"] = str(m.rejected)
            out[p + "replayed"] = str(m.replayed)
            out[p + "sessions"] = str(len(m.sessions))
        return out


class ParameterActor:
    """Async Ray actor around :class:`ParameterServer`.

    Writes (updates and model management) run one at a time on a single writer
    thread; reads run on the event loop against the current :class:`ModelView`, so a
    prediction never queues behind an update. ``apply`` waits (up to
    ``order_timeout`` seconds) until its sequence number is the session's next one.
    """

    def __init__(self, order_timeout: float = 60.0, **kwargs: Any) -> None:
        self._server = ParameterServer(**kwargs)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ella-param-writer")
        self._order_timeout = order_timeout
        self._cond: asyncio.Condition | None = None
        self._waiting = 0
        self._ticker: asyncio.Task | None = None
        self._codes: dict[str, tuple[ModelView, CodesView]] = {}  # per model: the view and its CodesView
        try:
            import ray

            self._reconstructed = bool(ray.get_runtime_context().was_current_actor_reconstructed)
        except Exception:  # pragma: no cover
            self._reconstructed = False

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
            if self._server.checkpoint_dir is not None:
                self._ticker = asyncio.get_running_loop().create_task(self._tick_loop())
        return self._cond

    async def _tick_loop(self) -> None:
        period = max(0.5, min(self._server.checkpoint_seconds, 30.0) / 2)
        while True:
            await asyncio.sleep(period)
            await self._write(self._server.tick)

    async def _write(self, fn: Any, *args: Any) -> Any:
        self._condition()
        return await asyncio.get_running_loop().run_in_executor(self._writer, fn, *args)

    async def apply(self, name: str, generation: str, session: str, seq: int, fit: FitResult) -> Ack:
        return await self._in_turn(name, generation, session, seq, self._server.apply, fit)

    async def apply_many(self, name: str, generation: str, session: str, seq: int,
                         fits: list[FitResult]) -> list[Ack | Exception]:
        """A run of consecutive submissions in one call (see :meth:`ParameterServer.apply_many`)."""
        return await self._in_turn(name, generation, session, seq, self._server.apply_many, fits)

    async def _in_turn(self, name: str, generation: str, session: str, seq: int, fn: Any, arg: Any) -> Any:
        cond = self._condition()

        def ready() -> bool:
            expected = self._server.expected_seq(name, generation, session)
            return expected is None or expected >= seq

        self._waiting += 1
        try:
            async with cond:
                try:
                    await asyncio.wait_for(cond.wait_for(ready), self._order_timeout)
                except TimeoutError:
                    raise OutOfOrderError(
                        f"Submission #{seq} of session {session} waited {self._order_timeout:.0f} s for an "
                        "earlier submission of the same session that never arrived."
                    ) from None
        finally:
            self._waiting -= 1
        try:
            return await self._write(fn, name, generation, session, seq, arg)
        finally:
            async with cond:
                cond.notify_all()

    async def manage(self, method: str, *args: Any) -> Any:
        """Run a management call (create_model, delete_model, clear, save, load, checkpoint, model_bytes)."""
        if method not in ("create_model", "delete_model", "clear", "save", "load", "checkpoint", "model_bytes"):
            raise ValueError(f"Unknown management method {method!r}.")
        if method in ("delete_model", "clear", "load", "create_model") and args:
            self._codes.pop(args[0], None)
        try:
            return await self._write(getattr(self._server, method), *args)
        finally:
            async with self._condition():
                self._condition().notify_all()  # a changed generation releases waiting applies

    async def read(self, method: str, name: str, *args: Any) -> Any:
        """A read against the current view: decision_function, predict, predict_proba, task_state, ..."""
        if method == "get_config":
            return self._server.get_config(name)
        view = self._server.view(name)
        if method == "view":
            return view
        if method == "codes":  # args: the (generation, version) the caller holds, if any
            if args and (view.generation, view.version) == tuple(args):
                return None  # unchanged: the caller keeps its copy
            memo = self._codes.get(name)
            if memo is None or memo[0] is not view:
                memo = (view, CodesView(view))
                self._codes[name] = memo
            return memo[1]
        if method == "basis":
            if view.L_ is None:
                raise NotFittedError("This ELLA has not been trained on any task yet.")
            return view.L_
        if method == "list_tasks":
            return view.task_ids_
        if method in ("decision_function", "predict", "predict_proba", "task_state"):
            return getattr(view, method)(*args)
        raise ValueError(f"Unknown read method {method!r}.")

    async def list_models(self) -> list[str]:
        return self._server.list_models()

    async def info(self) -> dict[str, Any]:
        return dict(self._server.engine_info)

    async def stats(self) -> dict[str, str]:
        out = self._server.stats()
        out["apply_waiting"] = str(self._waiting)
        out["writer_queue"] = str(self._writer._work_queue.qsize())
        out["reconstructed"] = json.dumps(self._reconstructed)
        out["pid"] = str(os.getpid())
        try:
            import ray

            out["node_id"] = ray.get_runtime_context().get_node_id()
        except Exception:  # pragma: no cover
            pass
        return out

    async def ping(self) -> int:
        return os.getpid()

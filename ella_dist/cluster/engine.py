"""Engine: the one entry point of the Ray layer (used by the gRPC server and by users).

>>> from ella_dist.cluster import Engine                                  # doctest: +SKIP
>>> engine = Engine.local(num_learners=2, checkpoint_dir="/tmp/ella")    # doctest: +SKIP
>>> engine.create_model("mines", k=2, mu=1e-3, lam=1e-2, loss="logistic")  # doctest: +SKIP
>>> ack = engine.submit("mines", "mine-0", X, y)                         # doctest: +SKIP
>>> engine.predict_proba("mines", "mine-0", X)                           # doctest: +SKIP
>>> engine.shutdown()                                                    # doctest: +SKIP

Input is validated here, on the driver, with the core's own checks
(:mod:`ella_dist.core.validation`), so bad input never reaches an actor and raises the
core's ``ValueError`` unchanged. Errors raised inside actors are re-raised as the
original exception (``ValueError``, :class:`~ella_dist.core.errors.UnknownTaskError`,
:class:`~ella_dist.core.errors.NotFittedError`, :mod:`.errors`), not as Ray wrappers.
All methods are thread-safe.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ella_dist.core import ELLA, TaskState
from ella_dist.core.validation import check_task_data, check_task_id, check_X

from .coordinator import Coordinator, get, unwrap
from .errors import EngineUnavailableError, UnknownModelError
from .learner import Learner
from .parameter import Ack, CodesView, ParameterActor

NAMESPACE = "ella_dist"
DEFAULT_OBJECT_STORE = 200 * 1024**2
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def _check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(
            f"{what} must be 1-128 characters of letters, digits, '_', '.' or '-', starting with a letter or "
            f"digit. Got {value!r} instead."
        )
    return value


def init_local_ray(num_cpus: int | None = None, object_store_memory: int = DEFAULT_OBJECT_STORE,
                   auth_mode: str | None = None) -> bool:
    """Start an embedded, loopback-only Ray for this process unless one is running.

    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is applied before ``ray.init`` (checked with
    ``ss -ltnp``: every Ray listener then binds to 127.0.0.1; Ray reads the variable at
    import, so the constant it was read into is set too); no dashboard, no usage stats, a small object
    store, and ``num_cpus`` defaulting to ``os.cpu_count()``. ``auth_mode`` (``"token"`` or
    ``"disabled"``) is exported as ``RAY_AUTH_MODE`` so that every Ray process started
    from here agrees; None keeps the environment's choice (Ray's default is token).

    Returns
    -------
    bool
        True if this call started Ray (the engine then shuts it down).
    """
    import ray

    if ray.is_initialized():
        return False
    # Ray reads this variable once, when it is imported, into ray_constants; the node IP
    # (and so every listener's bind address) is then the loopback one. Set both: the
    # environment for processes started from here, the constant for this one.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if auth_mode is not None:
        os.environ["RAY_AUTH_MODE"] = auth_mode
    # address="local": always a new instance of our own, never another process's cluster found
    # through /tmp/ray (on a shared machine ray.init() would otherwise join it).
    ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR", object_store_memory=object_store_memory, namespace=NAMESPACE)
    return True


def _check_max_age(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"snapshot_max_age must be a finite number of seconds >= 0. Got {value!r} instead.")
    return float(value)


def _completed(fn: Any, *args: Any) -> concurrent.futures.Future:
    """A future already holding ``fn(*args)`` or the exception it raised."""
    fut: concurrent.futures.Future = concurrent.futures.Future()
    try:
        fut.set_result(fn(*args))
    except Exception as exc:  # noqa: BLE001 - handed to the caller's future
        fut.set_exception(exc)
    return fut


def _unwrapped(inner: concurrent.futures.Future) -> concurrent.futures.Future:
    """A future with ``inner``'s result, or the actor's own exception (not Ray's wrapper)."""
    outer: concurrent.futures.Future = concurrent.futures.Future()

    def done(f: concurrent.futures.Future) -> None:
        if not outer.set_running_or_notify_cancel():
            return
        try:
            outer.set_result(f.result())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's future
            outer.set_exception(unwrap(exc))

    inner.add_done_callback(done)
    return outer


class Engine:
    """ELLA models served by a Ray learner pool and a central parameter actor.

    Create one with :meth:`local` (embedded Ray) or :meth:`connect` (existing
    cluster). Several named models live side by side.

    Back-pressure: at most ``max_in_flight`` submissions per model are accepted and not
    yet acknowledged. :meth:`submit_async` then blocks (``block=True``, optionally up to
    ``timeout`` seconds) or raises :class:`~.errors.BackpressureError`
    (``block=False``); memory stays bounded by ``max_in_flight`` tasks' rows per model.

    Ordering: submissions of one engine to one model are applied in the order the
    ``submit*`` calls were made; with the same order the model equals the in-process
    :class:`~ella_dist.core.ELLA` (to 1e-10; see ``docs/cluster.md``).
    """

    def __init__(self, coordinator: Coordinator, *, owns_ray: bool, owns_actors: bool,
                 checkpoint_dir: str | None, snapshot_max_age: float = 0.2) -> None:
        self._co = coordinator
        self._owns_ray = owns_ray
        self._owns_actors = owns_actors
        self.checkpoint_dir = checkpoint_dir
        self.snapshot_max_age = _check_max_age(snapshot_max_age)
        self._closed = False
        # The snapshot cache: model -> (CodesView, monotonic time its fetch was sent).
        # ``_epochs`` counts invalidations, so a fetch sent before one is not installed after it.
        self._views: dict[str, tuple[CodesView, float]] = {}
        self._epochs: dict[str, int] = {}
        self._vlock = threading.Lock()
        self.cache_stats = {"hits": 0, "fetches": 0, "unchanged": 0}

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def local(cls, num_learners: int | None = None, checkpoint_dir: str | os.PathLike | None = None, *,
              num_cpus: int | None = None, object_store_memory: int = DEFAULT_OBJECT_STORE,
              max_in_flight: int = 64, checkpoint_every: int = 100, checkpoint_seconds: float = 30.0,
              fsync: bool = True, learner_options: Sequence[dict[str, Any]] | None = None,
              app: str | None = None, auth_mode: str | None = None, retry_seconds: float = 120.0,
              learner_num_cpus: float | None = None, snapshot_max_age: float = 0.2) -> Engine:
        """An engine on an embedded local Ray (started here unless this process already runs one).

        Parameters
        ----------
        num_learners : int, optional
            Learner actors; default the CPUs Ray reports. With more learners than CPUs
            each asks for a fraction of a CPU (they then share cores).
        checkpoint_dir : path, optional
            Durable state: parameter checkpoints + update log, learners' task data,
            ``save``/``load`` files. None: in memory only (an actor restart loses state).
        num_cpus : int, optional
            CPUs of the embedded Ray (default ``os.cpu_count()``).
        object_store_memory : int, default=200 MiB
        max_in_flight : int, default=64
            Back-pressure bound per model (see the class docstring).
        checkpoint_every : int, default=100
        checkpoint_seconds : float, default=30.0
            Checkpoint a model after this many updates or this many seconds.
        fsync : bool, default=True
            fsync each log record before acknowledging.
        learner_options : sequence of dict, optional
            Extra ``.options(...)`` for learner i (e.g. ``{"resources": {"node_a": 1}}``).
        app : str, optional
            Prefix of the named actors; default a fresh one (engines do not share actors).
        auth_mode : {"token", "disabled"}, optional
            Exported as ``RAY_AUTH_MODE`` before Ray starts (see :func:`init_local_ray`).
        retry_seconds : float, default=120.0
            How long a submission retries a dead/restarting actor before failing.
        learner_num_cpus : float, optional
            CPUs each learner reserves; default ``min(1, CPUs / num_learners)`` (one
            core per learner when there are enough). Lower it to run several engines
            on one Ray.
        snapshot_max_age : float, default=0.2
            Predictions are answered on this process from a cached snapshot (L and the
            codes) that is refreshed when this engine has been acknowledged a newer
            version (read-your-writes) or the snapshot is older than this many seconds
            (other drivers' writes show up within that bound). 0: no cache, every
            prediction asks the parameter actor. See ``docs/cluster.md``.
        """
        _check_max_age(snapshot_max_age)
        owns_ray = init_local_ray(num_cpus, object_store_memory, auth_mode)
        try:
            return cls._build(num_learners, checkpoint_dir, max_in_flight=max_in_flight,
                              checkpoint_every=checkpoint_every, checkpoint_seconds=checkpoint_seconds, fsync=fsync,
                              learner_options=learner_options, app=app or f"ella-{uuid.uuid4().hex[:8]}",
                              detached=False, owns_ray=owns_ray, retry_seconds=retry_seconds,
                              learner_num_cpus=learner_num_cpus, snapshot_max_age=snapshot_max_age)
        except BaseException:
            if owns_ray:
                import ray

                ray.shutdown()
            raise

    @classmethod
    def connect(cls, address: str, *, num_learners: int | None = None,
                checkpoint_dir: str | os.PathLike | None = None, max_in_flight: int = 64,
                checkpoint_every: int = 100, checkpoint_seconds: float = 30.0, fsync: bool = True,
                learner_options: Sequence[dict[str, Any]] | None = None, app: str = "ella",
                auth_mode: str | None = None, retry_seconds: float = 120.0,
                learner_num_cpus: float | None = None, snapshot_max_age: float = 0.2) -> Engine:
        """An engine on an existing Ray cluster (``"127.0.0.1:26379"``, or ``"auto"``).

        The actors are named (``<app>-parameter``, ``<app>-learner-<i>`` in namespace
        ``ella_dist``) and detached: if they exist they are reused (the learner count
        and checkpoint directory are then the existing ones), otherwise they are created
        with the arguments given here and outlive this driver. ``checkpoint_dir`` must
        be reachable by every node (shared storage) for learners' task data to survive
        a move. See :meth:`local` for the other parameters.
        """
        import ray

        _check_max_age(snapshot_max_age)
        if auth_mode is not None:
            os.environ["RAY_AUTH_MODE"] = auth_mode
        owns_ray = False
        if not ray.is_initialized():
            ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, logging_level="ERROR")
            owns_ray = True
        return cls._build(num_learners, checkpoint_dir, max_in_flight=max_in_flight,
                          checkpoint_every=checkpoint_every, checkpoint_seconds=checkpoint_seconds, fsync=fsync,
                          learner_options=learner_options, app=app, detached=True, owns_ray=owns_ray,
                          retry_seconds=retry_seconds, learner_num_cpus=learner_num_cpus,
                          snapshot_max_age=snapshot_max_age)

    @classmethod
    def _build(cls, num_learners: int | None, checkpoint_dir: str | os.PathLike | None, *, max_in_flight: int,
               checkpoint_every: int, checkpoint_seconds: float, fsync: bool,
               learner_options: Sequence[dict[str, Any]] | None, app: str, detached: bool, owns_ray: bool,
               retry_seconds: float, learner_num_cpus: float | None, snapshot_max_age: float = 0.2) -> Engine:
        import ray

        _check_name(app, "app")
        _check_max_age(snapshot_max_age)
        if not isinstance(max_in_flight, int) or max_in_flight < 1:
            raise ValueError(f"max_in_flight must be a positive int. Got {max_in_flight!r} instead.")
        ckpt = str(checkpoint_dir) if checkpoint_dir is not None else None
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        common = dict(namespace=NAMESPACE, get_if_exists=True, max_restarts=-1, max_task_retries=0)
        if detached:
            common["lifetime"] = "detached"
        pname = f"{app}-parameter"
        try:
            existing = ray.get_actor(pname, namespace=NAMESPACE)
        except ValueError:
            existing = None
        if existing is not None:
            info = get(existing.info.remote())
            num_learners, ckpt = int(info["num_learners"]), info.get("checkpoint_dir")
        n = int(num_learners) if num_learners is not None else max(1, int(cpus))
        if n < 1:
            raise ValueError(f"num_learners must be a positive int. Got {num_learners!r} instead.")
        if learner_options is not None and len(learner_options) != n:
            raise ValueError(f"learner_options must hold one dict per learner ({n}); got {len(learner_options)}.")
        info = {"num_learners": n, "checkpoint_dir": ckpt, "app": app, "created": time.time()}
        param = existing or ray.remote(ParameterActor).options(name=pname, num_cpus=0, **common).remote(
            checkpoint_dir=ckpt, checkpoint_every=checkpoint_every, checkpoint_seconds=checkpoint_seconds,
            fsync=fsync, engine_info=info)
        learner_cpus = min(1.0, cpus / n) if learner_num_cpus is None else float(learner_num_cpus)
        store = os.path.join(ckpt, "learners") if ckpt else None
        learners = []
        for i in range(n):
            opts = {"num_cpus": learner_cpus, **common, **(learner_options[i] if learner_options else {})}
            learners.append(ray.remote(Learner).options(name=f"{app}-learner-{i}", **opts).remote(i, store))
        try:
            get([param.ping.remote()] + [a.ping.remote() for a in learners], timeout=120)
        except ray.exceptions.GetTimeoutError:
            raise EngineUnavailableError(
                f"The engine's actors did not start within 120 s: {n} learners x {learner_cpus:g} CPU (plus any "
                f"custom resources in learner_options) may not fit the cluster ({ray.cluster_resources()})."
            ) from None
        co = Coordinator(param, learners, max_in_flight=max_in_flight, retry_seconds=retry_seconds)
        return cls(co, owns_ray=owns_ray, owns_actors=not detached, checkpoint_dir=ckpt,
                   snapshot_max_age=snapshot_max_age)

    # -- models -------------------------------------------------------------------------------
    def create_model(self, name: str, **params: Any) -> dict[str, Any]:
        """Create an empty model with ELLA's hyper-parameters.

        Parameters
        ----------
        name : str
            1-128 of ``[A-Za-z0-9_.-]``.
        **params
            ``k, mu, lam, loss, ridge, fit_intercept, init, random_state, l_solver``
            (see :class:`ella_dist.core.ELLA`); checked here with the core's rules.

        Returns
        -------
        dict
            The config (see :meth:`get_config`).

        Raises
        ------
        ValueError
            Bad name or parameter (the core's message).
        ModelExistsError
            The name is taken.
        """
        _check_name(name, "The model name")
        allowed = tuple(ELLA._parameter_constraints)
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ValueError(f"Unknown ELLA parameter(s) {', '.join(map(repr, unknown))}; valid: {', '.join(allowed)}.")
        full = ELLA(**params).get_params()  # the core's checks, on the driver
        cfg = self._manage("create_model", name, full)
        self._co.forget(name)
        self._invalidate(name)
        return cfg

    def delete_model(self, name: str) -> None:
        """Delete a model and its durable state (checkpoints, logs; saved files stay)."""
        self._manage("delete_model", _check_name(name, "The model name"))
        self._drop_learner_data(name, None)
        self._co.forget(name)
        self._invalidate(name)

    def list_models(self) -> list[str]:
        """Names of the models, sorted."""
        return get(self._co.parameter.list_models.remote())

    def get_config(self, name: str) -> dict[str, Any]:
        """``{"name", "params", "generation", "version", "n_features", "n_tasks"}`` of a model.

        Raises
        ------
        UnknownModelError
        """
        return self._read("get_config", name)

    # -- training -----------------------------------------------------------------------------
    def _prepare(self, name: str, task_id: Any, X: Any, y: Any, submission_id: str | None):
        lane = self._co.lane(_check_name(name, "The model name"))
        tid = check_task_id(task_id)
        Xc, yc = check_task_data(X, y, lane.params["loss"], n_features=lane.n_features, task_id=tid)
        if submission_id is None:
            submission_id = uuid.uuid4().hex
        elif not isinstance(submission_id, str) or not submission_id:
            raise ValueError(f"submission_id must be a non-empty string. Got {submission_id!r} instead.")
        return lane, tid, Xc, yc, submission_id

    def submit_async(self, name: str, task_id: Any, X: Any, y: Any, submission_id: str | None = None, *,
                     block: bool = True, timeout: float | None = None) -> concurrent.futures.Future:
        """Queue one batch of a task; returns a future of its :class:`Ack`.

        Validation happens now (and raises now); fitting and the update happen in the
        background. Use ``future.result()`` (threads) or ``asyncio.wrap_future`` (asyncio).
        Submissions are applied in call order.

        Parameters
        ----------
        name : str
        task_id : str (or int)
        X : array-like of shape (n_samples, n_features)
            Without the bias column.
        y : array-like of shape (n_samples,)
        submission_id : str, optional
            Idempotency key; a retry with the same id is applied once (the ack then has
            ``duplicate=True``). Default: a fresh uuid.
        block : bool, default=True
            When ``max_in_flight`` submissions are pending: wait (True) or raise.
        timeout : float, optional
            Longest wait when blocking.

        Raises
        ------
        ValueError
            Bad input (the core's message); nothing was sent.
        UnknownModelError
        BackpressureError
            The model's queue is full and ``block=False`` (or ``timeout`` passed).

        The future raises ``ValueError`` if the single-task fit fails (e.g. a logistic
        task holding one class) or the parameter actor rejects the update,
        :class:`ModelChangedError` if the model was cleared meanwhile,
        :class:`EngineUnavailableError` if an actor stayed down.
        """
        lane, tid, Xc, yc, sub = self._prepare(name, task_id, X, y, submission_id)
        return self._co.submit(lane, tid, Xc, yc, sub, block=block, timeout=timeout)

    def submit(self, name: str, task_id: Any, X: Any, y: Any, submission_id: str | None = None,
               timeout: float | None = None) -> Ack:
        """Learn one batch of a task and return once the model has applied it.

        See :meth:`submit_async` for the parameters and errors.

        Returns
        -------
        Ack
            ``version`` (model version after the update), ``n_tasks`` (T), ``task_id``, ...
        """
        return self.submit_async(name, task_id, X, y, submission_id).result(timeout)

    def submit_many(self, name: str, tasks: Iterable[Any], *, return_exceptions: bool = False,
                    timeout: float | None = None) -> list[Ack | BaseException]:
        """Pipeline many batches: fits run in parallel on the pool, updates apply in order.

        The batched path: ready submissions go to a learner several per ``fit_many``
        call and to the parameter actor as runs of consecutive submissions per
        ``apply_many`` call (one log write and fsync per run); each item is still
        sequenced, deduplicated, logged and acknowledged on its own, so the result is
        the same as calling :meth:`submit` for each item in order.

        Parameters
        ----------
        tasks : iterable of (task_id, X, y) or (task_id, X, y, submission_id)
            Anything with those fields in that order (e.g. :class:`ella_dist.datasets.Task`).
        return_exceptions : bool, default=False
            Put a failed batch's exception in the result list instead of raising the
            first one (after all batches have finished).

        Returns
        -------
        list of Ack (or exceptions), in input order.
        """
        co = self._co
        futures: list[concurrent.futures.Future | BaseException] = []
        buf: list[Any] = []
        # A list is handed over in chunks of max_batch, so the first learner and parameter
        # calls are already full batches; a lazy iterable is handed over item by item (a
        # slow producer must not hold back what it already yielded).
        chunk = co.max_batch if isinstance(tasks, Sequence) else 1

        def flush() -> None:
            co.enqueue(buf)
            buf.clear()

        try:
            for item in tasks:
                item = tuple(item)
                try:
                    lane, tid, Xc, yc, sub = self._prepare(name, *item[:3], item[3] if len(item) > 3 else None)
                except (ValueError, KeyError) as exc:
                    if not return_exceptions:
                        flush()
                        concurrent.futures.wait([f for f in futures if not isinstance(f, BaseException)])
                        raise
                    futures.append(exc)
                    continue
                if not co.try_reserve(lane):
                    flush()  # what is queued must move before we wait for a slot
                    co.reserve(lane, block=True)
                s = co.make(lane, tid, Xc, yc, sub)
                buf.append(s)
                futures.append(s.future)
                if len(buf) >= chunk:
                    flush()
        finally:
            flush()
        out: list[Ack | BaseException] = []
        first: BaseException | None = None
        for f in futures:
            if isinstance(f, BaseException):
                out.append(f)
                continue
            try:
                out.append(f.result(timeout))
            except Exception as exc:  # noqa: BLE001
                out.append(exc)
                first = first or exc
        if first is not None and not return_exceptions:
            raise first
        return out

    # -- reading ------------------------------------------------------------------------------
    def _read(self, method: str, name: str, *args: Any) -> Any:
        return get(self._co.parameter.read.remote(method, _check_name(name, "The model name"), *args))

    # -- the snapshot cache (see docs/cluster.md, "Snapshot cache") ------------------------------
    def _invalidate(self, name: str) -> None:
        with self._vlock:
            self._epochs[name] = self._epochs.get(name, 0) + 1
            self._views.pop(name, None)

    def _cached_view(self, name: str) -> CodesView | None:
        """The cached snapshot of ``name`` if it may answer now, else None.

        Fresh = fetched at most ``snapshot_max_age`` seconds ago and not older than the
        newest version this engine has been acknowledged for (same generation).
        """
        entry = self._views.get(name)
        if entry is None:
            return None
        view, fetched = entry
        if time.monotonic() - fetched > self.snapshot_max_age:
            return None
        if self._co.seen_version(name, view.generation) > view.version:
            return None
        self.cache_stats["hits"] += 1
        return view

    def _fetch_view(self, name: str) -> tuple[Any, Any]:
        """Send one ``codes`` read; returns (ObjectRef, install) where install(reply) -> CodesView."""
        sent = time.monotonic()
        with self._vlock:
            epoch = self._epochs.get(name, 0)
            entry = self._views.get(name)
        held = entry[0] if entry is not None else None
        args = (held.generation, held.version) if held is not None else ()
        ref = self._co.parameter.read.remote("codes", name, *args)
        self.cache_stats["fetches"] += 1

        def install(reply: CodesView | None) -> CodesView:
            if reply is None:  # unchanged since the copy we hold
                self.cache_stats["unchanged"] += 1
                reply = held
            with self._vlock:
                if self._epochs.get(name, 0) == epoch:  # no clear/load/delete/create since we asked
                    cur = self._views.get(name)
                    if cur is None or cur[1] <= sent:
                        self._views[name] = (reply, sent)
            return reply

        return ref, install

    def _view_now(self, name: str) -> CodesView:
        """A fresh-enough snapshot of ``name``, fetching it (one actor call) if needed."""
        view = self._cached_view(name)
        if view is not None:
            return view
        ref, install = self._fetch_view(name)
        try:
            reply = get(ref)
        except UnknownModelError:
            self._invalidate(name)
            raise
        return install(reply)

    def _checked(self, name: str, task_id: Any, X: Any) -> tuple[str, np.ndarray]:
        lane = self._co.lane(_check_name(name, "The model name"))  # UnknownModelError
        tid = check_task_id(task_id)
        return tid, check_X(X, n_features=lane.n_features, task_id=tid)  # the core's ValueError

    def _predict(self, method: str, name: str, task_id: Any, X: Any) -> np.ndarray:
        tid, Xc = self._checked(name, task_id, X)
        if self.snapshot_max_age <= 0:
            return self._read(method, name, Xc, tid)
        return getattr(self._view_now(name), method)(Xc, tid)

    def _predict_future(self, method: str, name: str, task_id: Any, X: Any) -> concurrent.futures.Future:
        tid, Xc = self._checked(name, task_id, X)  # raise now
        if self.snapshot_max_age <= 0:
            return _unwrapped(self._co.parameter.read.remote(method, name, Xc, tid).future())
        view = self._cached_view(name)
        if view is not None:  # answered here, now: the future is already done
            return _completed(getattr(view, method), Xc, tid)
        ref, install = self._fetch_view(name)
        outer: concurrent.futures.Future = concurrent.futures.Future()

        def done(f: concurrent.futures.Future) -> None:
            if not outer.set_running_or_notify_cancel():
                return
            try:
                try:
                    reply = f.result()
                except BaseException as exc:  # noqa: BLE001
                    raise unwrap(exc) from None
                outer.set_result(getattr(install(reply), method)(Xc, tid))
            except UnknownModelError as exc:
                self._invalidate(name)
                outer.set_exception(exc)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's future
                outer.set_exception(exc)

        ref.future().add_done_callback(done)
        return outer

    def decision_function_future(self, name: str, task_id: Any, X: Any) -> concurrent.futures.Future:
        """:meth:`decision_function` without blocking: a ``concurrent.futures.Future`` of the array.

        Validation happens now, on the calling thread, and raises now: ``ValueError``
        (bad ``X`` or task id, the core's message) and :class:`UnknownModelError` (a model
        this engine does not know). The future resolves from the parameter actor's
        ``ObjectRef`` (no thread of this engine waits on it) and raises what the
        synchronous method raises, unwrapped: ``UnknownTaskError``, ``NotFittedError``,
        ``ValueError`` (e.g. ``predict_proba`` on the squared loss), ``UnknownModelError``
        (the model was deleted by another driver meanwhile), or a Ray error if the
        parameter actor is unreachable. In asyncio: ``await asyncio.wrap_future(fut)``.
        """
        return self._predict_future("decision_function", name, task_id, X)

    def predict_future(self, name: str, task_id: Any, X: Any) -> concurrent.futures.Future:
        """:meth:`predict` as a future; see :meth:`decision_function_future`."""
        return self._predict_future("predict", name, task_id, X)

    def predict_proba_future(self, name: str, task_id: Any, X: Any) -> concurrent.futures.Future:
        """:meth:`predict_proba` as a future; see :meth:`decision_function_future`."""
        return self._predict_future("predict_proba", name, task_id, X)

    def decision_function(self, name: str, task_id: Any, X: Any) -> np.ndarray:
        """``X . theta(t)`` per row, from the latest snapshot; shape (n_samples,).

        Raises
        ------
        ValueError, UnknownTaskError, NotFittedError, UnknownModelError
        """
        return self._predict("decision_function", name, task_id, X)

    def predict(self, name: str, task_id: Any, X: Any) -> np.ndarray:
        """Values (squared loss) or labels in {0, 1} (logistic loss); shape (n_samples,)."""
        return self._predict("predict", name, task_id, X)

    def predict_proba(self, name: str, task_id: Any, X: Any) -> np.ndarray:
        """``[P(y=0), P(y=1)]`` per row (logistic loss only); shape (n_samples, 2)."""
        return self._predict("predict_proba", name, task_id, X)

    def task_state(self, name: str, task_id: Any) -> TaskState:
        """theta (d,), D (d, d), s (k,) and n of a task, as :meth:`ELLA.task_state`."""
        return self._read("task_state", name, check_task_id(task_id))

    def basis(self, name: str) -> np.ndarray:
        """The current L, shape (d, k). Raises NotFittedError before the first task."""
        return self._read("basis", name)

    def list_tasks(self, name: str) -> list[str]:
        """Task ids in order of first arrival."""
        return self._read("list_tasks", name)

    def snapshot(self, name: str) -> ELLA:
        """An in-process :class:`ELLA` equal to the served model (L, A, b, T, tasks, rng).

        It holds no raw task data (the learners do), so ``partial_fit`` on a revisited
        task refits on the new rows only; new tasks and predictions are exact.
        """
        return ELLA.from_bytes(self._manage("model_bytes", _check_name(name, "The model name")))

    # -- persistence --------------------------------------------------------------------------
    def save(self, name: str, model_id: str) -> str:
        """Write the model as ``<checkpoint_dir>/saved/<name>/<model_id>.npz`` (ELLA's format).

        Returns
        -------
        str
            The path (loadable with :meth:`ELLA.load`). Needs ``checkpoint_dir``.
        """
        return self._manage("save", _check_name(name, "The model name"), _check_name(model_id, "The model id"))

    def load(self, name: str, model_id: str) -> dict[str, Any]:
        """Replace (or create) ``name`` with the file saved under ``model_id``.

        The learners do not hold the loaded tasks' rows: a revisit of a loaded task is
        rejected with a ValueError (new tasks train normally).

        Raises
        ------
        UnknownModelError
            No such saved file.
        """
        cfg = self._manage("load", _check_name(name, "The model name"), _check_name(model_id, "The model id"))
        self._drop_learner_data(name, cfg["generation"])
        self._co.lane(name, refresh=True)
        self._invalidate(name)
        return cfg

    def clear(self, name: str) -> dict[str, Any]:
        """Forget all tasks of a model (new generation; parameters kept). Returns the config."""
        cfg = self._manage("clear", _check_name(name, "The model name"))
        self._drop_learner_data(name, cfg["generation"])
        self._co.lane(name, refresh=True)
        self._invalidate(name)
        return cfg

    def checkpoint(self, name: str | None = None) -> list[str]:
        """Checkpoint one model (or all) now; returns the files written (none without checkpoint_dir)."""
        return self._manage("checkpoint", None if name is None else _check_name(name, "The model name"))

    def _manage(self, method: str, *args: Any) -> Any:
        return get(self._co.parameter.manage.remote(method, *args))

    def _drop_learner_data(self, name: str, keep: str | None) -> None:
        get([a.drop.remote(name, keep) for a in self._co.learners])

    # -- status -------------------------------------------------------------------------------
    def status(self, timeout: float = 10.0) -> dict[str, dict[str, str]]:
        """Per-actor string maps (Jubatus ``get_status``).

        Keys ``"driver"``, ``"parameter"``, ``"learner-<i>"``; each map has ``node_id``
        (except the driver) and counters: submissions, retries, in-flight per model and
        submit latency (driver); version, T, checkpoint age, log records, applies waiting
        for their turn and the writer queue (parameter); fits, rows, tasks held, busy
        seconds (learners). An unreachable actor reports ``{"state": "unreachable"}``.
        """
        import ray

        out: dict[str, dict[str, str]] = {"driver": self._co.stats()}
        out["driver"]["snapshot_max_age"] = str(self.snapshot_max_age)
        out["driver"].update({f"snapshot_{k}": str(v) for k, v in self.cache_stats.items()})
        actors = {"parameter": self._co.parameter.stats.remote()}
        actors.update({f"learner-{i}": a.stats.remote() for i, a in enumerate(self._co.learners)})
        for key, ref in actors.items():
            try:
                out[key] = {"state": "alive", **get(ref, timeout=timeout)}
            except (ray.exceptions.RayError, TimeoutError) as exc:
                out[key] = {"state": "unreachable", "error": type(exc).__name__}
        return out

    @property
    def num_learners(self) -> int:
        return len(self._co.learners)

    @property
    def learners(self) -> list[Any]:
        """The learner actor handles (for tests and operations, e.g. ``ray.kill``)."""
        return list(self._co.learners)

    @property
    def parameter_actor(self) -> Any:
        """The parameter actor handle."""
        return self._co.parameter

    def shutdown(self, kill_actors: bool | None = None) -> None:
        """Stop this engine: wait briefly for in-flight submissions, then release Ray.

        Parameters
        ----------
        kill_actors : bool, optional
            Kill the actors. Default: yes for :meth:`local` engines, no for
            :meth:`connect` (the detached service keeps running for other drivers).
        """
        import ray

        if self._closed:
            return
        self._closed = True
        self._co.close()
        kill = self._owns_actors if kill_actors is None else kill_actors
        if kill and ray.is_initialized():
            for actor in [self._co.parameter, *self._co.learners]:
                try:
                    ray.kill(actor, no_restart=True)
                except Exception:  # noqa: BLE001 - already gone
                    pass
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


__all__ = ["Engine", "UnknownModelError", "init_local_ray"]

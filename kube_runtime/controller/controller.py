"""The Controller: watches that trigger reconciles, a scheduler, a runner, and a result stream.

::

    controller = (
        Controller(Api(client, CONFIG_MAP_GENERATOR), WatcherConfig())
        .owns(Api(client, ApiResource.builtin("ConfigMap")), WatcherConfig())
        .with_config(concurrency=8)
        .shutdown_on_signal()
    )
    async with controller.run(reconcile, error_policy, ctx) as results:
        async for item in results:
            ...  # Reconciled(ref, action) or a ControllerError value

Guarantees (kube-rs ``controller/mod.rs`` semantics unless noted):

* Triggers: the main watch reconciles every applied object (its deletes do not trigger: handle
  deletion with a finalizer); ``owns`` maps children, including their deletes, to the owners named
  in their ``ownerReferences``; ``watches`` maps related objects through a mapper. Each trigger
  stream has its own backoff, so one failing watch does not pause the others (kube-rs shares one
  backoff between all triggers, stalling every trigger while one watch fails).
* Relists: after a (re)list, paged or streaming, every object in the new state is reconciled
  against that state; objects deleted during the outage are dropped at the swap (no
  ``ObjectNotFound`` for them). The main trigger fires per watch ``Apply`` and, once ``InitDone``
  has swapped the new list into the store, for every object in it, never per ``InitApply``
  (:func:`~kube_runtime.streams.synced_objects`). kube-rs's ``Controller::new`` triggers on each
  ``InitApply`` while its store still shows the old state, so a reconcile during a relist reads
  the old object or none and is never re-triggered (stackabletech/hdfs-operator#774). A reconcile
  running at the swap is followed by another one that reads the new state. Shared stores
  (``for_shared``) trigger in the same way. An ``owns``/``watches`` object deleted while its
  watch was away triggers, at that watch's relist, what it last mapped to (kube-rs: nothing).
* The scheduler/runner rules hold (see :mod:`~kube_runtime.controller.scheduler` and
  :mod:`~kube_runtime.controller.runner`): one entry per object, never two concurrent reconciles
  of one object, a global concurrency limit, and nothing runs before the main store is ready.
* Every finished attempt yields one item: ``Reconciled`` or ``ReconcilerFailed``; plus
  ``ObjectNotFound`` when a due object is gone, ``QueueError`` for each trigger-stream error and
  ``RunnerError``. Nothing but shutdown ends the stream.
* Nothing runs unless the results are consumed: the output is unbuffered and the runner starts
  nothing new while a finished reconcile waits to hand over its result.
* Requeues go straight into the scheduler when a reconcile finishes (it is synchronous and
  O(log n)); kube-rs passes them through a bounded channel (100) that deadlocked the runner when
  full (kube-rs #926). There is no channel to fill here.
* Failing reconciles get a per-object exponential backoff (5 ms doubling to 1000 s, forgotten on
  success) when the error policy returns ``Action.requeue_with_backoff()`` or is ``None``
  (kube-rs has none, #1916).
* Shutdown: graceful (``graceful_shutdown_on``, first signal) starts nothing new, drops what is
  queued, lets running reconciles finish and yield, then ends the stream; forceful (second
  signal, or leaving the ``async with`` block early) cancels running reconciles at once. A
  graceful shutdown turns forceful after ``graceful_shutdown_timeout`` (default 25 s), with a
  warning naming the cancelled reconciles (:mod:`~kube_runtime.controller.shutdown`).

Watch instrumentation: each watch the controller opens itself (the main watch, ``owns`` and
``watches``) has a stable name, ``<controller name>/<Kind>`` (``configmapgen/ConfigMapGenerator``,
``configmapgen/ConfigMap``; a second watch of the same kind gets ``#2``, ``#3``...), listed by
:attr:`Controller.watch_names`. :meth:`Controller.instrument_watches` wraps each raw watcher stream
before its backoff, and hands the wrapper the watch's name and a
:class:`~kube_runtime.watcher.progress.WatchProgress` that the watcher stamps on every list page and
watch line, bookmarks included. This is how the observe layer (which sits above this one) attaches
its watch metrics without this module importing it. Streams given to ``for_stream``,
``for_shared``, ``reconcile_on`` and ``reconcile_all_on`` belong to the caller: instrument them there.

Concurrency default: 16. kube-rs defaults to unbounded, which at startup starts one reconcile per
listed object at once (thousands of simultaneous API calls, connection-pool exhaustion, 429s);
controller-runtime defaults to 1, which serialises work that on asyncio is nearly all waiting on
the network. 16 keeps a useful number of requests in flight and well below an HTTP client's
connection pool (httpx: 100), leaving room for the watches. ``concurrency=0`` is unbounded.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import logging
import uuid
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Generator, Iterable
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Final, Generic, Protocol, TypeVar

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from prometheus_client import CollectorRegistry

from kube_runtime.client.api import Api
from kube_runtime.client.json import KubeObject
from kube_runtime.client.resource import ApiResource
from kube_runtime.controller.action import MAX_REQUEUE_SECONDS, Action, ReconcileReason, ReconcileRequest
from kube_runtime.controller.backoff import ReconcileBackoff
from kube_runtime.controller.context import ReconcileInfo, _current
from kube_runtime.controller.errors import (
    ControllerError,
    ObjectDecodeFailed,
    ObjectNotFound,
    QueueError,
    ReconcilerFailed,
)
from kube_runtime.controller.metrics import QueueMetrics
from kube_runtime.controller.related import RelatedRequests
from kube_runtime.controller.result import ControllerResult, Reconciled
from kube_runtime.controller.runner import Runner, loop_clock
from kube_runtime.controller.shutdown import (
    DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT,
    ShutdownDeadline,
    check_graceful_shutdown_timeout,
)
from kube_runtime.controller.signals import shutdown_on_signals
from kube_runtime.predicates import Predicate
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.store.shared import SharedReflector
from kube_runtime.store.store import Store, store
from kube_runtime.streams import DEFAULT_PREDICATE_TTL, DeletedObject, WatchStream, predicate_filter
from kube_runtime.watcher.backoff import Backoff, default_backoff
from kube_runtime.watcher.config import WatcherConfig
from kube_runtime.watcher.progress import WatchProgress
from kube_runtime.watcher.state import WatcherItem
from kube_runtime.watcher.watcher import metadata_watcher, watcher

__all__ = [
    "DEFAULT_CONCURRENCY",
    "Controller",
    "ControllerConfig",
    "ControllerRun",
    "ErrorPolicy",
    "Reconciler",
    "WatchInstrument",
]

_log = logging.getLogger("kube_runtime.controller")
#: Reconcile ids: a random per-process prefix and a counter (unique, and far cheaper than uuid4).
_ID_PREFIX: Final = uuid.uuid4().hex[:12]
_id_counter = itertools.count(1)
_tracer = trace.get_tracer("kube_runtime.controller")

C = TypeVar("C")

#: See the module docstring for why 16.
DEFAULT_CONCURRENCY: Final = 16

#: ``reconcile(obj, ctx) -> Action``.
Reconciler = Callable[[KubeObject, C], Awaitable[Action]]
#: ``error_policy(obj, error, ctx) -> Action`` (sync or async).
ErrorPolicy = Callable[[KubeObject, Exception, C], Action | Awaitable[Action]]
#: ``wrap(stream, watch_name, progress) -> stream``: see :meth:`Controller.instrument_watches`.
WatchInstrument = Callable[[AsyncIterable[WatcherItem], str, WatchProgress], AsyncIterable[WatcherItem]]


class _Waitable(Protocol):
    def wait(self) -> Awaitable[Any]: ...


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    """``concurrency``: most reconciles at once (0 = unbounded). ``debounce``: trailing delay in
    seconds before a triggered reconcile starts (pitfall: an object changing more often than that
    is never reconciled). ``graceful_shutdown_timeout``: seconds a graceful shutdown waits for
    running reconciles before cancelling them (``None``: forever; see
    :mod:`~kube_runtime.controller.shutdown`)."""

    concurrency: int = DEFAULT_CONCURRENCY
    debounce: float = 0.0
    graceful_shutdown_timeout: float | None = DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT

    def __post_init__(self) -> None:
        if self.concurrency < 0:
            raise ValueError(f"concurrency must be >= 0 (0 = unbounded), got {self.concurrency}")
        if self.debounce < 0:
            raise ValueError(f"debounce must be >= 0, got {self.debounce}")
        check_graceful_shutdown_timeout(self.graceful_shutdown_timeout)


@dataclass(slots=True)
class _Trigger:
    """One source of reconcile requests. ``open`` builds its stream when the controller runs."""

    name: str
    open: Callable[[], AsyncIterable[Any]]
    to_requests: Callable[[Any], Iterable[ReconcileRequest]]
    #: The watch name (metrics label) of a watch the controller opens itself; None otherwise.
    watch: str | None = None


class Controller:
    """Builds and runs a controller for the kind of ``api``. Builder methods return ``self``.

    ``name`` (default: the lowercase kind) labels metrics and logs; it must be unique per metrics
    registry. ``registry`` receives the work-queue metrics (default: prometheus_client's global).

    ``compact_store`` (default ``True``) keeps the main store compact (see
    :func:`~kube_runtime.store.store`): each reconcile gets a freshly decoded private copy of its
    object, which it may mutate (controller-runtime's cache deep-copies every object it hands out
    in the same way), for about a quarter of the memory of decoded dicts and no GC pauses however
    large the cache. ``compact_store=False`` caches the decoded dicts: reconcilers then get the
    cached object itself (read-only; mutating it corrupts the cache) and the process gets the
    ``FreezeAfterSync`` GC policy.
    """

    def __init__(
        self,
        api: Api,
        watcher_config: WatcherConfig | None = None,
        *,
        name: str | None = None,
        registry: CollectorRegistry | None = None,
        compact_store: bool = True,
    ) -> None:
        resource: ApiResource = api.resource
        reader, writer = store(resource, compact=compact_store)
        config = watcher_config or WatcherConfig()
        self._init(resource, reader, name, registry)

        watch = self._new_watch_name(resource.kind)

        def open_main() -> AsyncIterable[Any]:
            raw = self._open_watch(watch, lambda progress: watcher(api, config, progress=progress))
            return raw.backoff(self._new_backoff()).reflect(writer).synced_objects(reader)

        self._triggers.append(_Trigger(f"watch {resource.kind}", open_main, self._self_requests, watch))

    @classmethod
    def for_stream(
        cls,
        resource: ApiResource,
        stream: AsyncIterable[Any],
        reader: Store,
        *,
        name: str | None = None,
        registry: CollectorRegistry | None = None,
    ) -> Controller:
        """A controller whose main trigger is ``stream``: applied objects of ``resource`` that the
        caller already reflects into ``reader``'s store (and may filter with predicates). Error
        items become ``QueueError``; deleted objects are ignored. The stream is iterated once:
        run such a controller once.

        Pitfall: build it with :func:`~kube_runtime.streams.synced_objects` (``...reflect(writer)
        .synced_objects(reader)``), not ``applied_objects``, whose relist objects arrive before
        the store shows them (see "Relists" in the module docs)."""
        self = cls.__new__(cls)
        self._init(resource, reader, name, registry)
        self._triggers.append(_Trigger(f"stream {resource.kind}", lambda: stream, self._self_requests))
        return self

    @classmethod
    def for_shared(
        cls,
        shared: SharedReflector,
        resource: ApiResource | None = None,
        *,
        predicate: Predicate | None = None,
        predicate_ttl: float = DEFAULT_PREDICATE_TTL,
        name: str | None = None,
        registry: CollectorRegistry | None = None,
    ) -> Controller:
        """A controller on a store shared with other controllers: one watch, one cache, and a
        subscription per controller run. The caller runs ``shared`` (``async with shared``).

        ``predicate`` filters this controller's subscription only, with
        :func:`~kube_runtime.streams.predicate_filter` semantics: an object whose fingerprint did
        not change since this controller last saw it does not trigger it (deletes and objects
        without a fingerprint always pass). Use it so that one controller's own writes (an
        annotation, a status) do not re-trigger another that only cares about, say, labels
        (``predicate=predicates.labels``). Every controller built on one ``shared`` reads the same
        store object (:attr:`store`), so metrics that track stores by identity count it once.
        """
        reader = _shared_reader(shared)
        res = resource or reader.resource
        if res is None:
            raise ValueError("pass the resource: the shared store does not know its kind")
        self = cls.__new__(cls)
        self._init(res, reader, name, registry)

        def open_shared() -> AsyncIterable[Any]:
            subscription = shared.subscribe()
            if predicate is None:
                return subscription
            return predicate_filter(subscription, predicate, ttl=predicate_ttl)

        self._triggers.append(_Trigger(f"shared {res.kind}", open_shared, self._self_requests))
        return self

    def _init(
        self, resource: ApiResource, reader: Store, name: str | None, registry: CollectorRegistry | None
    ) -> None:
        self.resource = resource
        self.name = name or resource.kind.lower()
        self._store = reader
        self._registry = registry
        self._triggers: list[_Trigger] = []
        self._config = ControllerConfig()
        self._graceful: list[Awaitable[Any] | _Waitable] = []
        self._on_signal = False
        self._backoff_factory: Callable[[], Backoff] = default_backoff
        self._error_backoff = ReconcileBackoff()
        self._running = False
        self._instruments: list[WatchInstrument] = []
        self._decode: Callable[[KubeObject], Any] | None = None

    # -- builder ------------------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The main store (kube-rs ``Controller::store``): read it from reconcilers."""
        return self._store

    def owns(self, api: Api, watcher_config: WatcherConfig | None = None) -> Controller:
        """Reconcile the owners of ``api``'s objects (changes and deletes): every
        ``ownerReferences`` entry of this controller's kind (``controller: true`` is not needed).
        Watches metadata only and keeps no cache of the children, only the owner requests each
        maps to, so a child deleted while the watch was away triggers its owners at the relist
        (see :mod:`~kube_runtime.controller.related`)."""
        child: ApiResource = api.resource
        config = watcher_config or WatcherConfig()
        owner = self.resource

        watch = self._new_watch_name(child.kind)

        def open_owns() -> AsyncIterable[Any]:
            raw = self._open_watch(watch, lambda progress: metadata_watcher(api, config, progress=progress))
            related.reset()
            return raw.backoff(self._new_backoff())

        def to_requests(obj: KubeObject) -> Iterable[ReconcileRequest]:
            meta = obj.get("metadata") or {}
            owner_refs = meta.get("ownerReferences")
            if not owner_refs:
                return ()
            reason = ReconcileReason.related_object_updated(ObjectRef.from_obj(obj, child))
            namespace = meta.get("namespace")
            requests = []
            for owner_ref in owner_refs:
                ref = ObjectRef.from_owner_ref(namespace, owner_ref, owner)
                if ref is not None:
                    requests.append(ReconcileRequest(ref, reason))
            return requests

        related = RelatedRequests(to_requests)
        self._triggers.append(_Trigger(f"owns {child.kind}", open_owns, related, watch))
        return self

    def watches(
        self,
        api: Api,
        watcher_config: WatcherConfig | None,
        mapper: Callable[[KubeObject], Iterable[ObjectRef]],
    ) -> Controller:
        """Reconcile the objects ``mapper`` names for each change (or delete: the mapper gets a
        :class:`~kube_runtime.streams.DeletedObject`) of ``api``'s objects. Keeps no cache of
        them, only what each mapped to: one deleted while the watch was away triggers that at the
        relist, without calling ``mapper`` again. An exception from ``mapper`` is yielded as a
        ``QueueError``."""
        other: ApiResource = api.resource
        config = watcher_config or WatcherConfig()

        watch = self._new_watch_name(other.kind)

        def open_watches() -> AsyncIterable[Any]:
            raw = self._open_watch(watch, lambda progress: watcher(api, config, progress=progress))
            related.reset()
            return raw.backoff(self._new_backoff())

        def to_requests(obj: KubeObject) -> Iterable[ReconcileRequest]:
            reason = ReconcileReason.related_object_updated(ObjectRef.from_obj(obj, other))
            return [ReconcileRequest(ref, reason) for ref in mapper(obj)]

        related = RelatedRequests(to_requests)
        self._triggers.append(_Trigger(f"watches {other.kind}", open_watches, related, watch))
        return self

    def reconcile_on(self, stream: AsyncIterable[ObjectRef | Exception]) -> Controller:
        """Reconcile each ref ``stream`` yields (reason ``unknown``); error items become
        ``QueueError``. The controller keeps running when the stream ends."""
        self._triggers.append(_Trigger("reconcile_on", lambda: stream, lambda ref: (ReconcileRequest(ref),)))
        return self

    def reconcile_all_on(self, stream: AsyncIterable[Any]) -> Controller:
        """Reconcile every object in the store (reason ``bulk reconcile requested``) for each item of
        ``stream``. The controller keeps running when the stream ends."""

        def to_requests(_item: Any) -> Iterable[ReconcileRequest]:
            reason = ReconcileReason.BULK_RECONCILE
            return [ReconcileRequest(ObjectRef.from_obj(obj, self.resource), reason) for obj in self._store]

        self._triggers.append(_Trigger("reconcile_all_on", lambda: stream, to_requests))
        return self

    def with_config(
        self,
        config: ControllerConfig | None = None,
        *,
        concurrency: int | None = None,
        debounce: float | None = None,
    ) -> Controller:
        """Set the concurrency limit and/or debounce (keywords override ``config``)."""
        base = config or self._config
        self._config = replace(
            base,
            concurrency=base.concurrency if concurrency is None else concurrency,
            debounce=base.debounce if debounce is None else debounce,
        )
        return self

    def with_graceful_shutdown_timeout(self, seconds: float | None) -> Controller:
        """Cancel running reconciles ``seconds`` after a graceful shutdown began (``None``: wait
        for them forever; default 25 s: see :mod:`~kube_runtime.controller.shutdown`)."""
        self._config = replace(self._config, graceful_shutdown_timeout=seconds)
        return self

    def trigger_backoff(self, factory: Callable[[], Backoff]) -> Controller:
        """The backoff policy of each watch trigger (a new instance per trigger and run;
        default: client-go's 0.8 s doubling to 30 s, reset after 120 s)."""
        self._backoff_factory = factory
        return self

    def error_backoff(self, backoff: ReconcileBackoff) -> Controller:
        """The per-object backoff used by ``Action.requeue_with_backoff()``."""
        self._error_backoff = backoff
        return self

    def graceful_shutdown_on(self, signal_: Awaitable[Any] | _Waitable) -> Controller:
        """Shut down gracefully once ``signal_`` completes: an awaitable (awaited once, so run the
        controller once) or anything with an async ``wait()`` (an ``anyio.Event``, a leader
        elector's ``lost``). Additive: the first to fire wins."""
        self._graceful.append(signal_)
        return self

    def shutdown_on_signal(self) -> Controller:
        """First SIGINT/SIGTERM: graceful shutdown; second: forceful. Process-wide: every
        controller (and every :func:`~kube_runtime.controller.signals.shutdown_on_signals` block)
        running in the process hears the same signals, so two controllers stop together; the
        process's previous handlers are restored when the last of them ends. A run starting after
        the first signal shuts down gracefully at once. Needs the main thread."""
        self._on_signal = True
        return self

    def instrument_watches(self, wrap: WatchInstrument) -> Controller:
        """Wrap the raw watcher stream of every watch this controller opens (main, ``owns``,
        ``watches``): ``wrap(stream, watch_name, progress)`` returns the stream to use instead.

        The wrapper sits directly on the watcher, before the trigger's backoff, so it sees every
        ``Init``/``InitApply``/``InitDone``/``Apply``/``Delete`` and every error value, and must
        pass them all on (errors included: the backoff needs them). ``progress`` is stamped by the
        watcher on every list page and watch line, bookmarks included. It is called once per watch
        and run, when the run opens the watch; with several instruments, each wraps the previous
        one's result. Without any, watchers run without a progress object (no per-line cost).
        Pitfall: a wrapper that swallows items or raises changes what the controller sees.
        """
        self._instruments.append(wrap)
        return self

    def decode_objects(self, decode: Callable[[KubeObject], Any]) -> Controller:
        """Hand the reconciler and error policy ``decode(obj)`` instead of the store's dict (typed
        resources install their model's decoder here). It runs once per reconcile, on the object
        read from the store; if it raises, that reconcile yields
        :class:`~kube_runtime.controller.errors.ObjectDecodeFailed` and is not retried until the
        object changes. The store, triggers and mappers keep seeing dicts."""
        self._decode = decode
        return self

    @property
    def watch_names(self) -> list[str]:
        """The names of the watches this controller opens, main watch first (see the module docs)."""
        return [trigger.watch for trigger in self._triggers if trigger.watch is not None]

    def _new_watch_name(self, kind: str) -> str:
        base = f"{self.name}/{kind}"
        taken = set(self.watch_names)
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}#{n}"
        return name

    def _open_watch(
        self, watch: str, start: Callable[[WatchProgress | None], WatchStream[WatcherItem]]
    ) -> WatchStream[WatcherItem]:
        if not self._instruments:
            return start(None)
        progress = WatchProgress()
        stream: AsyncIterable[WatcherItem] = start(progress)
        for wrap in self._instruments:
            stream = wrap(stream, watch, progress)
        return stream if isinstance(stream, WatchStream) else WatchStream(stream)

    def _new_backoff(self) -> Backoff:
        return self._backoff_factory()

    def _self_requests(self, obj: Any) -> Iterable[ReconcileRequest]:
        if isinstance(obj, DeletedObject):
            return ()
        return (ReconcileRequest(ObjectRef.from_obj(obj, self.resource), ReconcileReason.OBJECT_UPDATED),)

    # -- running ------------------------------------------------------------------------------------

    def run(
        self,
        reconcile: Reconciler[C],
        error_policy: ErrorPolicy[C] | None,
        context: C,
    ) -> ControllerRun[C]:
        """The controller's run: ``async with controller.run(...) as results: async for item in results``.

        ``await controller.run(...)`` also works: it consumes the results (logging errors at debug
        level) until shutdown. ``error_policy=None`` retries every failure with the per-object
        backoff. See :class:`ControllerRun`.

        A controller runs at most once at a time (its store has a single writer); running it again
        after a run ended starts fresh watches. Streams given to ``for_stream``, ``reconcile_on``
        and ``reconcile_all_on`` and awaitables given to ``graceful_shutdown_on`` are consumed by
        the first run.
        """
        return ControllerRun(self, reconcile, error_policy, context)


class ControllerRun(Generic[C]):
    """One run of a controller: an async context manager owning its tasks (watch drivers, requeue
    drain, reconciles), whose value is the result stream.

    Leaving the block stops the run: if the stream has not ended yet, that is a forceful stop
    (running reconciles are cancelled). Iterating it without ``async with`` is refused: the run's
    tasks need an owner, and an iterator that a ``break`` abandons would leave them running
    outside any task group (the reason anyio forbids task groups in async generators). Use
    ``await run`` to consume everything until shutdown instead.
    """

    def __init__(
        self,
        controller: Controller,
        reconcile: Reconciler[C],
        error_policy: ErrorPolicy[C] | None,
        context: C,
    ) -> None:
        self._controller = controller
        self._reconcile = reconcile
        self._error_policy = error_policy
        self._context = context
        self._task_group: TaskGroup | None = None
        self._force = anyio.CancelScope()
        self._runner: Runner[ReconcileRequest, ControllerResult] | None = None
        self._requested_graceful = False
        self._deadline: ShutdownDeadline | None = None
        self._receive: MemoryObjectReceiveStream[ControllerResult] | None = None

    # -- public control ------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Graceful shutdown: start nothing new, let running reconciles finish (cancelled after the
        ``graceful_shutdown_timeout``), end the stream."""
        self._requested_graceful = True
        if self._runner is not None:
            self._runner.close()
        if self._deadline is not None:
            self._deadline.start()

    def force_shutdown(self) -> None:
        """Forceful shutdown: cancel running reconciles and end the stream now."""
        self._force.cancel()

    # -- context manager / await ---------------------------------------------------------------------

    async def __aenter__(self) -> MemoryObjectReceiveStream[ControllerResult]:
        if self._task_group is not None:
            raise RuntimeError("a ControllerRun can be entered once; call controller.run() again")
        send, receive = anyio.create_memory_object_stream[ControllerResult](0)
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(
            self._main, send, name=f"kube_runtime.controller[{self._controller.name}]"
        )
        self._receive = receive
        return receive

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._task_group is not None
        self._force.cancel()
        try:
            return await self._task_group.__aexit__(exc_type, exc, tb)
        finally:
            if self._receive is not None:
                self._receive.close()

    def __aiter__(self) -> AsyncIterator[ControllerResult]:
        raise TypeError(
            "iterate the results inside `async with controller.run(...) as results:` "
            "(or `await controller.run(...)` to consume them until shutdown)"
        )

    def __await__(self) -> Generator[Any, None, None]:
        return self._consume().__await__()

    async def _consume(self) -> None:
        async with self as results:
            async for item in results:
                if isinstance(item, ControllerError):
                    _log.debug("controller %s: %s", self._controller.name, item)

    # -- the run ---------------------------------------------------------------------------------------

    async def _main(self, send: MemoryObjectSendStream[ControllerResult]) -> None:
        ctl = self._controller
        if ctl._running:
            send.close()
            raise RuntimeError(f"controller {ctl.name!r} is already running (its store has one writer)")
        ctl._running = True
        try:
            await self._run(send)
        finally:
            ctl._running = False

    async def _run(self, send: MemoryObjectSendStream[ControllerResult]) -> None:
        ctl = self._controller
        config = ctl._config
        metrics = QueueMetrics(ctl.name, ctl._registry)
        metrics.set_max_concurrency(config.concurrency)
        runner: Runner[ReconcileRequest, ControllerResult] = Runner(
            self._reconcile_one,
            concurrency=config.concurrency,
            debounce=config.debounce,
            ready=ctl._store.wait_until_ready,
            hooks=metrics,
        )
        self._runner = runner
        self._runner_for_requeues = runner
        self._metrics = metrics
        self._clock = loop_clock()
        deadline = ShutdownDeadline(
            ctl.name, config.graceful_shutdown_timeout, runner.running.keys, self.force_shutdown
        )
        self._deadline = deadline
        if self._requested_graceful:
            runner.close()
            deadline.start()
        metrics.attach_inflight(runner.running, self._clock)  # type: ignore[arg-type]
        signals = (
            shutdown_on_signals(self.shutdown, self.force_shutdown, name=f"controller {ctl.name}")
            if ctl._on_signal
            else contextlib.nullcontext()
        )
        try:
            with self._force, signals:
                async with anyio.create_task_group() as tg:
                    for trigger in ctl._triggers:
                        tg.start_soon(self._drive, trigger, runner, send, name=f"trigger {trigger.name}")
                    for waitable in ctl._graceful:
                        tg.start_soon(self._shutdown_after, waitable)
                    tg.start_soon(deadline.run, name="graceful shutdown deadline")
                    _log.debug("applier runner held until store is ready")
                    await runner.run(send)
                    _log.debug("applier runner terminated")
                    tg.cancel_scope.cancel()
        finally:
            metrics.detach_inflight()
            metrics.active_workers.set(0)
            send.close()
            _log.debug("applier terminated")

    async def _drive(
        self,
        trigger: _Trigger,
        runner: Runner[ReconcileRequest, ControllerResult],
        send: MemoryObjectSendStream[Any],
    ) -> None:
        stream = trigger.open()
        to_requests = trigger.to_requests
        try:
            async for item in stream:
                if isinstance(item, Exception):
                    await send.send(QueueError(item))
                    continue
                try:
                    requests = to_requests(item)
                    now = runner.clock()
                    for request in requests:
                        runner.schedule(request, now)
                except Exception as exc:  # a mapper bug or an object without a name
                    await send.send(QueueError(exc))
            _log.debug("trigger %s ended", trigger.name)
        except Exception as exc:  # a custom stream that raised instead of yielding its error
            _log.warning("trigger %s failed and stopped: %r", trigger.name, exc)
            await send.send(QueueError(exc))
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                with anyio.move_on_after(5, shield=True):
                    await close()

    async def _shutdown_after(self, waitable: Awaitable[Any] | _Waitable) -> None:
        if inspect.isawaitable(waitable):
            await waitable
        else:
            await waitable.wait()
        _log.debug("applier queue terminated, starting graceful shutdown")
        self.shutdown()

    # -- one reconcile -------------------------------------------------------------------------------

    async def _reconcile_one(self, request: ReconcileRequest, _due_at: float) -> ControllerResult:
        ctl = self._controller
        obj_ref = request.obj_ref
        obj = ctl._store.get(obj_ref)
        backoff = ctl._error_backoff
        if obj is None:
            backoff.forget(obj_ref)
            return ObjectNotFound(obj_ref)
        decode = ctl._decode
        if decode is not None:
            try:
                obj = decode(obj)
            except Exception as error:
                backoff.forget(obj_ref)
                return ObjectDecodeFailed(error, obj_ref)
        reason = request.reason
        _current.set(
            ReconcileInfo(obj_ref, reason, _next_reconcile_id(), ctl.name, backoff.failures(obj_ref))
        )
        active = self._metrics.active_workers
        tracer = _reconcile_tracer()
        span_scope = (
            _NO_SPAN
            if tracer is None
            else tracer.start_as_current_span(
                "reconciling object", attributes={"object.ref": str(obj_ref), "object.reason": str(reason)}
            )
        )
        with span_scope as span:
            clock = self._clock
            started = clock()
            duration = 0.0
            active.inc()
            try:
                try:
                    action = await self._reconcile(obj, self._context)
                finally:
                    duration = clock() - started
                    active.dec()
                if not isinstance(action, Action):
                    raise TypeError(f"reconcile returned {action!r}, expected an Action")
            except Exception as error:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, str(error)))
                delay = await self._apply_error_policy(obj, error, backoff.next_delay(obj_ref))
                self._requeue_after(obj_ref, ReconcileReason.ERROR_POLICY_REQUESTED_RETRY, delay)
                return ReconcilerFailed(error, obj_ref, reason=reason, duration=duration)
            backoff.forget(obj_ref)
            self._requeue_after(obj_ref, ReconcileReason.RECONCILER_REQUESTED_RETRY, action.requeue_after)
            return Reconciled(obj_ref, action, reason=reason, duration=duration)

    async def _apply_error_policy(
        self, obj: KubeObject, error: Exception, backoff_delay: float
    ) -> float | None:
        policy = self._error_policy
        if policy is None:
            return backoff_delay
        try:
            action = policy(obj, error, self._context)
            if inspect.isawaitable(action):
                action = await action
            if not isinstance(action, Action):
                raise TypeError(f"error_policy returned {action!r}, expected an Action")
        except Exception:
            _log.exception("controller %s: error_policy failed; retrying with backoff", self._controller.name)
            return backoff_delay
        return backoff_delay if action.backoff else action.requeue_after

    def _requeue_after(self, obj_ref: ObjectRef, reason: ReconcileReason, delay: float | None) -> None:
        if delay is None:
            return
        self._metrics.on_retry()
        run_at = self._clock() + min(delay, MAX_REQUEUE_SECONDS)
        # Once shutting down (the runner is closed) the requeue is dropped.
        self._runner_for_requeues.schedule(ReconcileRequest(obj_ref, reason), run_at)


#: One reader per shared reflector: ``SharedReflector.store`` hands out a new handle per call.
_shared_readers: weakref.WeakKeyDictionary[SharedReflector, Store] = weakref.WeakKeyDictionary()


def _shared_reader(shared: SharedReflector) -> Store:
    reader = _shared_readers.get(shared)
    if reader is None:
        reader = _shared_readers[shared] = shared.store
    return reader


#: Stands in for the reconcile span while no tracer provider is installed (every span would be a
#: non-recording no-op then; skipping it saves most of a reconcile's own cost).
_NO_SPAN: Final = contextlib.nullcontext(trace.INVALID_SPAN)


class _ResolvedTracer:
    """The real tracer behind OpenTelemetry's proxy, resolved once per installed provider."""

    __slots__ = ("provider", "tracer")

    def __init__(self) -> None:
        self.provider: object = None
        self.tracer: trace.Tracer | None = None


_resolved = _ResolvedTracer()


def _reconcile_tracer() -> trace.Tracer | None:
    """The tracer for reconcile spans, or None when no span can record (no provider installed).

    Checked per reconcile, so installing a provider later, or replacing ``_tracer``, takes effect.
    Going through the proxy tracer costs a generator-based context manager per span, so the real
    tracer is used directly once a provider is installed.
    """
    tracer = _tracer
    if not isinstance(tracer, trace.ProxyTracer):
        return tracer
    provider = trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None
    resolved = _resolved
    if resolved.provider is not provider or resolved.tracer is None:
        resolved.tracer = provider.get_tracer("kube_runtime.controller")
        resolved.provider = provider
    return resolved.tracer


def _next_reconcile_id() -> str:
    return f"{_ID_PREFIX}-{next(_id_counter):x}"

"""The Controller builder: watches that trigger reconciles, frozen into a run of the applier.

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
  watch was away triggers, at that watch's relist, what it last mapped to (kube-rs: nothing);
  such a relist also reconciles every main object, for related objects created and deleted
  while the watch was away (:mod:`~kube_runtime.controller.related`).
* The scheduler/runner rules hold (see :mod:`~kube_runtime.controller.scheduler` and
  :mod:`~kube_runtime.controller.runner`): one entry per object, never two concurrent reconciles
  of one object, a global concurrency limit, and nothing runs before the main store is ready.
  Live changes run before objects a relist (or ``reconcile_all_on``) queued, which wait at
  ``LOW_PRIORITY`` (controller-runtime's priority queue; ``ControllerConfig(priority_queue=False)``
  turns it off), with a starvation bound of ``priority_max_wait``.
* Every finished attempt yields one item: ``Reconciled`` or ``ReconcilerFailed`` (its subclasses
  ``ReconcileTimedOut``, ``ReconcilerFailedTerminally`` and ``ReconcilerPanicked`` say why:
  :mod:`~kube_runtime.controller.reconcile`, :mod:`~kube_runtime.controller.failures`); plus
  ``ObjectNotFound`` when a due object is gone (a notice, not an error: it was deleted),
  ``QueueError`` for each trigger-stream error and ``RunnerError``. Nothing but shutdown ends the stream.
* Nothing runs far ahead of the consumer: the result stream holds at most as many untaken
  results as the concurrency limit (16 when unbounded), and while it is full the runner starts
  nothing new (so with a limit, an unconsumed run stops after at most twice the limit of
  reconciles).
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

Watch instrumentation: each watch the controller opens itself has a stable name, listed by
:attr:`Controller.watch_names`, and :meth:`Controller.instrument_watches` wraps it (see
:mod:`~kube_runtime.controller.watch_names`). Streams given to ``for_stream``, ``for_shared``,
``reconcile_on`` and ``reconcile_all_on`` belong to the caller: instrument them there.

Concurrency default: 16 (kube-rs: unbounded, which exhausts connection pools at startup;
controller-runtime: 1, serialising work that is nearly all network waits). ``0`` is unbounded.

Layout (kube-rs ``controller/mod.rs``): this module is the builder only. :meth:`Controller.run`
freezes the settings into an :class:`~kube_runtime.controller.applier.ApplierSpec` whose triggers
are built with :mod:`~kube_runtime.controller.triggers`; :mod:`~kube_runtime.controller.applier`
runs it (scheduler, runner, result stream, shutdown) and :mod:`~kube_runtime.controller.reconcile`
performs each attempt.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import CollectorRegistry

from kube_runtime.client.api import Api
from kube_runtime.client.json import KubeObject
from kube_runtime.client.resource import ApiResource
from kube_runtime.controller.action import ReconcileReason, ReconcileRequest
from kube_runtime.controller.applier import (
    DEFAULT_CONCURRENCY,
    ApplierSpec,
    ControllerConfig,
    ControllerRun,
    ShutdownSignal,
    Trigger,
    applier,
)
from kube_runtime.controller.backoff import ReconcileBackoff
from kube_runtime.controller.leadership import LeaderElection, Leadership
from kube_runtime.controller.reconcile import ErrorPolicy, Reconciler
from kube_runtime.controller.triggers import (
    RequestItem,
    store_requests,
    trigger_others,
    trigger_owners,
    trigger_self,
    trigger_with,
)
from kube_runtime.controller.watch_names import WatchInstrument, WatchNames
from kube_runtime.predicates import Predicate, combine
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.store.shared import SharedReflector
from kube_runtime.store.store import Store, store
from kube_runtime.streams import DEFAULT_PREDICATE_TTL, PredicateMemory, predicate_filter
from kube_runtime.watcher.backoff import Backoff, default_backoff_policy
from kube_runtime.watcher.config import WatcherConfig
from kube_runtime.watcher.watcher import metadata_watcher, watcher

if TYPE_CHECKING:
    from kube_runtime.sharding.run import ShardedController

__all__ = [
    "DEFAULT_CONCURRENCY",
    "Controller",
    "ControllerConfig",
    "ControllerRun",
    "ErrorPolicy",
    "Reconciler",
    "WatchInstrument",
]

C = TypeVar("C")


@dataclass(frozen=True, slots=True)
class _Main:
    """The main trigger of a controller not built on an ``Api`` (``for_stream``, ``for_shared``):
    its kind, its store, and how a run opens it."""

    resource: ApiResource
    store: Store
    open: Callable[[Controller], AsyncIterable[RequestItem]]
    label: str


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

    ``predicates`` filter what triggers from the main watch (controller-runtime's
    ``WithEventFilter``/``WithPredicates``), e.g. ``predicates=[predicates.generation]`` so that
    the controller's own status writes do not wake it. An object triggers when any of their
    fingerprints changed since the controller last saw it (:func:`~kube_runtime.predicates.combine`;
    controller-runtime requires every predicate to pass), with
    :func:`~kube_runtime.streams.predicate_filter` semantics and memory (``predicate_ttl``). The
    filter sits after the store, so the store, the watch metrics (bookmarks, progress, staleness)
    and requeues see every change. Pitfalls: with the :func:`~kube_runtime.finalizer.finalizer`
    helper, include ``finalizers`` (its patch adding the finalizer must trigger the next
    reconcile), and a finalizer controller must see the update that sets ``deletionTimestamp``
    (``generation`` does on kube-apiserver, :func:`~kube_runtime.predicates.deletion` always).
    """

    def __init__(
        self,
        api: Api | _Main,
        watcher_config: WatcherConfig | None = None,
        *,
        name: str | None = None,
        registry: CollectorRegistry | None = None,
        compact_store: bool = True,
        predicates: Sequence[Predicate] = (),
        predicate_ttl: float = DEFAULT_PREDICATE_TTL,
    ) -> None:
        if isinstance(api, _Main):
            if predicates:
                raise ValueError("predicates apply to Controller(api); for_shared takes its own")
            main = api
        else:
            config = watcher_config or WatcherConfig()
            main = _watch_main(api, config, compact_store, _one_predicate(predicates), predicate_ttl)
        self.resource: ApiResource = main.resource
        self.name = name or main.resource.kind.lower()
        self._store = main.store
        self._registry = registry
        self._triggers: list[Trigger] = []
        self._watches = WatchNames(self.name)
        self._config = ControllerConfig()
        self._leader_election: LeaderElection | None = None
        self._graceful: list[ShutdownSignal] = []
        self._on_signal = False
        self._backoff_factory: Callable[[], Backoff] = default_backoff_policy
        self._error_backoff = ReconcileBackoff()
        self._deletion_listeners: list[Callable[[ObjectRef], object]] = []
        self._decode: Callable[[KubeObject], Any] | None = None
        self._api = api if isinstance(api, Api) else None
        self._owned: list[ApiResource] = []
        self._scope: str | None = None
        if isinstance(api, Api):
            self._watches.reserve(main.resource.kind)
        self._triggers.append(Trigger(f"{main.label} {main.resource.kind}", lambda: main.open(self)))

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
        main = _Main(
            resource, reader, lambda ctl: trigger_self(stream, resource, on_delete=ctl._deleted), "stream"
        )
        return cls(main, name=name, registry=registry)

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
        A run that starts after the store synced (or a run again after one ended) first takes
        every cached object, as a run started with the watch takes the first list, so no object
        goes unreconciled whenever the run starts (``SharedReflector.subscribe(catch_up=True)``).

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

        def open_shared(ctl: Controller) -> AsyncIterable[RequestItem]:
            subscription: AsyncIterable[Any] = shared.subscribe(lazy=True, catch_up=True)
            if predicate is not None:
                subscription = predicate_filter(subscription, predicate, ttl=predicate_ttl)
            return trigger_self(subscription, res, on_delete=ctl._deleted)

        return cls(_Main(res, reader, open_shared, "shared"), name=name, registry=registry)

    # -- builder ------------------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The main store (kube-rs ``Controller::store``): read it from reconcilers."""
        return self._store

    def owns(
        self,
        api: Api,
        watcher_config: WatcherConfig | None = None,
        *,
        predicates: Sequence[Predicate] = (),
        predicate_ttl: float = DEFAULT_PREDICATE_TTL,
    ) -> Controller:
        """Reconcile the owners of ``api``'s objects (changes and deletes): every
        ``ownerReferences`` entry of this controller's kind and API group, whatever its version
        (``controller: true`` is not needed). Watches metadata only and keeps no cache of the
        children, only the owner requests each maps to, so a child deleted while the watch was
        away triggers its owners at the relist (see "Relists" in the module docs), and a child
        moved to another owner, or orphaned, triggers the owner it left too.

        ``predicates`` filter changed children as on the main watch (they see metadata only:
        ``generation``, ``labels``, ``annotations``, ``finalizers``, ``deletion``...); deletes,
        children gone at a relist, and owners a child left always trigger."""
        child: ApiResource = api.resource
        config = watcher_config or WatcherConfig()
        owner = self.resource
        watch = self._watches.reserve(child.kind)
        predicate = _one_predicate(predicates)
        self._owned.append(child)

        def open_owns() -> AsyncIterable[RequestItem]:
            scoped = self._scoped(config)
            raw = self._watches.open(watch, lambda progress: metadata_watcher(api, scoped, progress=progress))
            memory = None if predicate is None else PredicateMemory(predicate, ttl=predicate_ttl)
            stream = raw.backoff(self._backoff_factory())
            return trigger_owners(stream, owner, child, memory, on_relist=self._relisted(child))

        self._triggers.append(Trigger(f"owns {child.kind}", open_owns))
        return self

    def watches(
        self,
        api: Api,
        watcher_config: WatcherConfig | None,
        mapper: Callable[[KubeObject], Iterable[ObjectRef]],
        *,
        predicates: Sequence[Predicate] = (),
        predicate_ttl: float = DEFAULT_PREDICATE_TTL,
    ) -> Controller:
        """Reconcile the objects ``mapper`` names for each change (or delete: the mapper gets a
        :class:`~kube_runtime.streams.DeletedObject`) of ``api``'s objects. Keeps no cache of
        them, only what each mapped to: one deleted while the watch was away triggers that at the
        relist, without calling ``mapper`` again, and one whose mapping no longer names an object
        triggers that object too. An exception from ``mapper`` is yielded as a ``QueueError``.
        ``predicates`` filter changed objects as in :meth:`owns`."""
        other: ApiResource = api.resource
        config = watcher_config or WatcherConfig()
        watch = self._watches.reserve(other.kind)
        predicate = _one_predicate(predicates)

        def open_watches() -> AsyncIterable[RequestItem]:
            raw = self._watches.open(watch, lambda progress: watcher(api, config, progress=progress))
            memory = None if predicate is None else PredicateMemory(predicate, ttl=predicate_ttl)
            stream = raw.backoff(self._backoff_factory())
            return trigger_others(stream, other, mapper, memory, on_relist=self._relisted(other))

        self._triggers.append(Trigger(f"watches {other.kind}", open_watches))
        return self

    def _relisted(self, related: ApiResource) -> Callable[[], list[ReconcileRequest]]:
        reason = ReconcileReason.custom(f"{related.kind} watch relisted")
        return store_requests(self._store, self.resource, reason)

    def reconcile_on(self, stream: AsyncIterable[ObjectRef | Exception]) -> Controller:
        """Reconcile each ref ``stream`` yields (reason ``unknown``); error items become
        ``QueueError``. The controller keeps running when the stream ends."""
        self._triggers.append(
            Trigger("reconcile_on", lambda: trigger_with(stream, lambda ref: (ReconcileRequest(ref),)))
        )
        return self

    def reconcile_all_on(self, stream: AsyncIterable[Any]) -> Controller:
        """Reconcile every object in the store (reason ``bulk reconcile requested``) for each item of
        ``stream``, at low priority (like a resync). The controller keeps running when the stream
        ends."""
        every = store_requests(self._store, self.resource, ReconcileReason.BULK_RECONCILE)
        self._triggers.append(Trigger("reconcile_all_on", lambda: trigger_with(stream, lambda _: every())))
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

    @property
    def leader_election(self) -> LeaderElection | None:
        """The election this controller's runs are gated on (``with_leader_election``), if any."""
        return self._leader_election

    def with_leader_election(self, elector: Leadership, *, warmup: bool = False) -> Controller:
        """Reconcile only while ``elector`` leads, and stop when its term ends. ``warmup``: run
        the watches while a standby so a failover starts from synced stores (controller-runtime's
        ``EnableWarmup``; see :mod:`~kube_runtime.controller.leadership`)."""
        self._leader_election = LeaderElection(elector, warmup)
        return self

    def with_reconcile_timeout(self, seconds: float | None) -> Controller:
        """Cancel a reconcile after ``seconds`` (``None``: never, the default) and report it as
        ``ReconcileTimedOut``; ``Action.with_timeout`` overrides it for one requeue.

        Pitfall: a reconcile that catches the cancellation and returns an ``Action`` (or raises)
        is still reported as ``ReconcileTimedOut`` and retried with backoff: what it returned is
        dropped."""
        self._config = replace(self._config, reconcile_timeout=seconds)
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

    def graceful_shutdown_on(self, signal_: ShutdownSignal) -> Controller:
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
        watcher on every list page and watch event, bookmarks included (not ``ERROR`` lines). It is
        called once per watch and run, when the run opens the watch; with several instruments, each
        wraps the previous one's result. Without any, watchers run without a progress object (no
        per-line cost).
        Pitfall: a wrapper that swallows items or raises changes what the controller sees.
        """
        self._watches.instruments.append(wrap)
        return self

    def on_object_deleted(self, listener: Callable[[ObjectRef], object]) -> Controller:
        """Call ``listener(ref)`` for every delete of a main object the main trigger sees (on the
        event loop, before later items of that trigger: keep it O(1)), so that state kept per
        object goes with the object (``Observability`` registers its result recorder's).
        The controller itself forgets the object's failure backoff then. Pitfall: objects that
        vanished while the watch was away (dropped at a relist) are not reported; and a reconcile
        that was running at the delete still yields its result afterwards.
        """
        self._deletion_listeners.append(listener)
        return self

    def _deleted(self, ref: ObjectRef) -> None:
        self._error_backoff.forget(ref)
        for listener in self._deletion_listeners:
            listener(ref)

    def decode_objects(self, decode: Callable[[KubeObject], Any]) -> Controller:
        """Hand the reconciler and error policy ``decode(obj)`` instead of the store's dict (typed
        resources install their model's decoder here). It runs once per reconcile, on the object
        read from the store; if it raises, that reconcile yields
        :class:`~kube_runtime.controller.errors.ObjectDecodeFailed` and is not retried until the
        object changes. The store, triggers and mappers keep seeing dicts."""
        self._decode = decode
        return self

    def scope_watches(self, label_selector: str | None) -> Controller:
        """Add ``label_selector`` to the main watch and every ``owns`` watch (not ``watches``) of the
        runs that start from now on: their stores and triggers then hold only matching objects."""
        self._scope = label_selector
        return self

    def sharded(self, ring: str, lease_namespace: str, **options: Any) -> ShardedController:
        """This controller as one replica of the sharded ring ``ring``: a
        :class:`~kube_runtime.sharding.ShardedController` (run it like a controller). The
        controller must be built on an ``Api``; ``options`` are that class's keywords."""
        # The sharding package sits on top of this one; imported here to keep the layers one-way.
        from kube_runtime.sharding.run import ShardedController

        if self._api is None:
            raise ValueError(
                "a sharded controller needs Controller(api, ...): it watches and labels the kind"
            )
        return ShardedController(self, self._api, list(self._owned), ring, lease_namespace, **options)

    def _scoped(self, config: WatcherConfig) -> WatcherConfig:
        if not self._scope:
            return config
        selector = f"{config.label_selector},{self._scope}" if config.label_selector else self._scope
        return config.labels(selector)

    @property
    def watch_names(self) -> list[str]:
        """The names of the watches this controller opens, main watch first (see the module docs)."""
        return list(self._watches.names)

    # -- running ------------------------------------------------------------------------------------

    def spec(self) -> ApplierSpec:
        """The settings as they are now, frozen for one run of the applier."""
        return ApplierSpec(
            name=self.name,
            store=self._store,
            triggers=tuple(self._triggers),
            config=self._config,
            graceful_shutdown_on=tuple(self._graceful),
            shutdown_on_signal=self._on_signal,
            error_backoff=self._error_backoff,
            decode=self._decode,
            registry=self._registry,
            exclusive=self,
            leader_election=self._leader_election,
        )

    def run(
        self,
        reconcile: Reconciler[C],
        error_policy: ErrorPolicy[C] | None,
        context: C,
    ) -> ControllerRun[C]:
        """The controller's run: ``async with controller.run(...) as results: async for item in results``.

        ``await controller.run(...)`` also works: it consumes the results (logging errors at debug
        level) until shutdown. ``error_policy=None`` retries every failure with the per-object
        backoff. See :class:`~kube_runtime.controller.applier.ControllerRun`.

        A controller runs at most once at a time (its store has a single writer); running it again
        after a run ended starts fresh watches. Streams given to ``for_stream``, ``reconcile_on``
        and ``reconcile_all_on`` and awaitables given to ``graceful_shutdown_on`` are consumed by
        the first run.
        """
        return applier(self.spec(), reconcile, error_policy, context)


def _one_predicate(predicates: Sequence[Predicate]) -> Predicate | None:
    if not predicates:
        return None
    return predicates[0] if len(predicates) == 1 else combine(*predicates)


def _watch_main(
    api: Api, config: WatcherConfig, compact_store: bool, predicate: Predicate | None, predicate_ttl: float
) -> _Main:
    """The main trigger of ``Controller(api, ...)``: a watch reflected into a new store, its
    objects yielded once the store shows them (and, with a predicate, once they changed)."""
    resource: ApiResource = api.resource
    reader, writer = store(resource, compact=compact_store)

    def open_main(ctl: Controller) -> AsyncIterable[RequestItem]:
        watch = ctl._watches.names[0]
        scoped = ctl._scoped(config)
        raw = ctl._watches.open(watch, lambda progress: watcher(api, scoped, progress=progress))
        # Deletes flow too (they trigger nothing): the predicate memory and per-object state
        # listeners forget the object at once. Lazy: refs and predicates read heads only.
        reflected = raw.backoff(ctl._backoff_factory()).reflect(writer)
        synced = reflected.synced_objects(reader, deletes=True, lazy=True)
        if predicate is not None:
            synced = synced.predicate_filter(predicate, ttl=predicate_ttl)
        return trigger_self(synced, resource, on_delete=ctl._deleted)

    return _Main(resource, reader, open_main, "watch")


#: One reader per shared reflector: ``SharedReflector.store`` hands out a new handle per call.
_shared_readers: weakref.WeakKeyDictionary[SharedReflector, Store] = weakref.WeakKeyDictionary()


def _shared_reader(shared: SharedReflector) -> Store:
    reader = _shared_readers.get(shared)
    if reader is None:
        reader = _shared_readers[shared] = shared.store
    return reader

"""Everything at once: the metrics/health server, loop-lag monitoring and per-controller wiring.

::

    obs = Observability(ServerOptions.from_arguments(args), client=client)
    async with obs:
        await obs.run(controller, reconcile, error_policy, ctx)   # until the controller shuts down

``add_controller`` (which ``run`` calls for a controller not added yet) registers, for the
controller's name: the readiness check of its store (``/readyz/<name>``), its store gauges
(``kube_runtime_store_*{store=...}``, once per distinct store: controllers sharing a cache publish
it once, under the first controller's name or an explicit ``store_name``), the reconcile-loop
liveness check (``/livez/<name>``, failing after ``livez_threshold`` seconds without a result
while work is pending), the watch metrics of every watch the controller opens (through
``Controller.instrument_watches``: ``kube_runtime_watch_*{watch="<controller>/<Kind>"}``, with the
last-event timestamp moved by bookmarks too) and a :class:`ResultRecorder` (reconcile metrics,
hot-loop detection), told of every deleted object (``Controller.on_object_deleted``) so that its
per-object state goes with the object. ``run`` consumes the controller's results through that
recorder; to consume them yourself, wrap the stream instead (``recorder.observe(results)``).
Entering starts the event-loop lag monitor and the server in a task group owned by this object;
leaving stops both.

With ``metrics_secure``, pass ``client=`` (the API client): scrapes are then reviewed with
TokenReview and SubjectAccessReview through it (or pass your own ``authorizer``).

With leader election, either add (or run) the controller once this replica leads (inside
``elector.run_while_leading``): a standby runs no controller, so its store would never fill,
failing ``/readyz`` (a rolling update would then wait forever for the new, standby pod) and
reporting ``kube_runtime_store_ready 0``; until then the probes answer with the built-in passing
``ping`` check, as controller-runtime's standbys do. Or gate the controller on the elector
(``Controller.with_leader_election``) and add and run it from the start: the probes and store
metrics then account for standing by (:mod:`kube_runtime.observe.standby`).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Protocol, TypeVar

import anyio
import anyio.abc
from prometheus_client import REGISTRY, CollectorRegistry

from kube_runtime._tasks import BackgroundTasks
from kube_runtime.controller.reconcile import ErrorPolicy, Reconciler
from kube_runtime.observe.auth import ReviewClient, TokenReviewAuthorizer
from kube_runtime.observe.health import HealthChecks
from kube_runtime.observe.hotloop import HotLoopDetector
from kube_runtime.observe.loop import EventLoopLagMonitor
from kube_runtime.observe.metrics import DeletionSource, ResultRecorder
from kube_runtime.observe.progress import ReconcileProgress, pending_work_from_metrics
from kube_runtime.observe.server import ObservabilityServer, ServerOptions
from kube_runtime.observe.standby import StandbyStore, leading_check
from kube_runtime.observe.watch_metrics import ReadableStore, observe_watch, track_store
from kube_runtime.watcher.progress import WatchProgress
from kube_runtime.watcher.state import WatcherItem

__all__ = [
    "InstrumentableController",
    "ItemCallback",
    "Observability",
    "ObservedController",
    "RunnableController",
]

C = TypeVar("C")

#: ``on_item(item)`` for :meth:`Observability.run`: sync or async, called for every result item.
ItemCallback = Callable[[Any], Awaitable[None] | None]


class ObservedController(Protocol):
    """What :meth:`Observability.add_controller` reads from a ``Controller``."""

    @property
    def name(self) -> str: ...

    @property
    def store(self) -> ReadableStore: ...


class InstrumentableController(ObservedController, Protocol):
    """A controller whose own watches can be wrapped (``Controller.instrument_watches``)."""

    def instrument_watches(
        self,
        wrap: Callable[[AsyncIterable[WatcherItem], str, WatchProgress], AsyncIterable[WatcherItem]],
    ) -> object: ...


class ControllerRunLike(AbstractAsyncContextManager[AsyncIterable[Any]], Protocol):
    """A run of a :class:`RunnableController`: its results, and whether its shutdown was forced."""

    @property
    def forced_shutdown(self) -> bool: ...


class RunnableController(ObservedController, Protocol):
    """What :meth:`Observability.run` runs: a ``Controller`` (its watches are instrumented too
    when it has ``instrument_watches``)."""

    def run(
        self, reconcile: Reconciler[C], error_policy: ErrorPolicy[C] | None, context: C
    ) -> ControllerRunLike: ...


class Observability:
    """The built-in observability of a process running one or more controllers."""

    def __init__(
        self,
        options: ServerOptions | None = None,
        *,
        registry: CollectorRegistry | None = None,
        authorizer: TokenReviewAuthorizer | None = None,
        client: ReviewClient | None = None,
        livez_threshold: float = 300.0,
        lag_interval: float = 0.25,
    ) -> None:
        self.registry = REGISTRY if registry is None else registry
        self.checks = HealthChecks()
        self.server = ObservabilityServer(
            options, checks=self.checks, registry=self.registry, authorizer=authorizer, client=client
        )
        self.lag = EventLoopLagMonitor(lag_interval, registry=self.registry)
        self.livez_threshold = livez_threshold
        self.recorders: dict[str, ResultRecorder] = {}
        #: The name each added controller's store is published under (``kube_runtime_store_*``).
        self.store_names: dict[str, str] = {}
        self._controllers: dict[str, ObservedController] = {}
        #: Cold standbys' stores as reported (held here: store metrics hold stores weakly).
        self._standby_stores: dict[str, StandbyStore] = {}
        self._tasks: BackgroundTasks | None = None

    def add_controller(
        self,
        controller: ObservedController,
        *,
        hot_loops: HotLoopDetector | bool = True,
        watches: bool = True,
        store_name: str | None = None,
    ) -> ResultRecorder:
        """Wire one controller (see the module docs); returns the recorder for its results.

        Call it before the controller runs: its watches are instrumented when a run opens them.
        ``watches=False`` (or a controller without ``instrument_watches``) leaves the watch
        metrics out. ``store_name`` names the store's series (default: the name it already has,
        else the controller's name); the readiness check stays per controller either way.
        """
        name = controller.name
        if name in self.recorders:
            raise ValueError(f"controller {name!r} already added")
        leading, warm = leading_check(controller)
        store: ReadableStore = controller.store
        if leading is not None and not warm:
            store = self._standby_stores[name] = StandbyStore(store, leading)
        self.checks.add_store(name, store)
        self.store_names[name] = track_store(
            store_name or name, store, registry=self.registry, rename=store_name is not None
        )
        progress = ReconcileProgress(
            self.livez_threshold, pending=pending_work_from_metrics(name, self.registry), active=leading
        )
        self.checks.add_livez(name, progress.check)
        recorder = ResultRecorder(
            name,
            registry=self.registry,
            hot_loops=hot_loops,
            progress=progress,
            deletions=controller if isinstance(controller, DeletionSource) else None,
        )
        self.recorders[name] = recorder
        self._controllers[name] = controller
        instrument = getattr(controller, "instrument_watches", None)
        if watches and instrument is not None:
            instrument(self._watch_instrument())
        return recorder

    async def run(
        self,
        controller: RunnableController,
        reconcile: Reconciler[C],
        error_policy: ErrorPolicy[C] | None,
        context: C,
        *,
        on_item: ItemCallback | None = None,
    ) -> bool:
        """Run ``controller`` until it shuts down, recording every result (reconcile metrics,
        hot loops, ``/livez`` progress, error logs) and passing it to ``on_item`` if given.
        Returns whether the shutdown was forceful (``ControllerRun.forced_shutdown``).

        Adds the controller first unless it was added already (add it yourself for non-default
        ``add_controller`` options). Shutdown is the controller's: ``shutdown_on_signal()``,
        ``graceful_shutdown_on(...)``, or cancelling this call (a forceful stop). An exception
        from ``on_item`` stops the run forcefully and propagates. Runs several controllers side by
        side in a task group (``tg.start_soon(obs.run, ...)``); does not need this object to be
        entered, but nothing is served until it is.
        """
        added = self._controllers.get(controller.name)
        if added is None:
            recorder = self.add_controller(controller)
        elif added is controller:
            recorder = self.recorders[controller.name]
        else:
            raise ValueError(f"another controller named {controller.name!r} was added")
        run = controller.run(reconcile, error_policy, context)
        async with run as results:
            async for item in results:
                recorder.record(item)
                if on_item is not None:
                    outcome = on_item(item)
                    if inspect.isawaitable(outcome):
                        await outcome
        return run.forced_shutdown

    def _watch_instrument(
        self,
    ) -> Callable[[AsyncIterable[WatcherItem], str, WatchProgress], AsyncIterable[WatcherItem]]:
        registry = self.registry

        def wrap(
            stream: AsyncIterable[WatcherItem], watch: str, progress: WatchProgress
        ) -> AsyncIterable[WatcherItem]:
            return observe_watch(stream, watch, registry=registry, progress=progress)

        return wrap

    async def __aenter__(self) -> Observability:
        tasks = BackgroundTasks()
        await tasks.__aenter__()
        try:
            await tasks.start(self._run_lag_monitor, name="kube_runtime event loop lag monitor")
            await tasks.start(self.server.run, name="kube_runtime observability server")
        except BaseException as exc:
            await tasks.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._tasks = tasks
        return self

    async def _run_lag_monitor(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        async with self.lag:
            task_status.started()
            await anyio.sleep_forever()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        tasks, self._tasks = self._tasks, None
        assert tasks is not None
        return await tasks.__aexit__(exc_type, exc, tb)

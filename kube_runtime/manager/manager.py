"""A Manager runs a process's controllers: shared caches, leader election, the metrics and probe
servers, admission webhooks, signals and graceful shutdown, from one object and one ``run()``
(controller-runtime's ``Manager``)::

    options = ManagerOptions.parse(name="website-operator")      # the Helm chart's flags
    async with Client.infer() as client:
        manager = Manager(client, options, name="website-operator")
        manager.add(manager.controller(WEBSITE).owns(manager.api(CONFIG_MAP)), reconcile, None, ctx)
        await manager.run()

What ``run()`` does, in order: configures logging (``configure_logging`` with the options' filter
and format) and tracing (``setup_tracing``: exports only when the ``OTEL_*`` environment asks),
serves ``/metrics``, ``/readyz`` and ``/livez`` (and webhooks when a certificate was given); with
``--leader-elect``, waits as a standby (probes pass, no controller runs, no cache fills) until it
holds the Lease; then starts the shared reflectors and every controller, wired to the
observability (store readiness, watch and reconcile metrics, hot-loop detection), and runs them
until shutdown. Every controller is gated on the Lease (``Controller.with_leader_election``): no
reconcile starts unless the elector leads, also in the instant between a paused process resuming
past its renew deadline and the elector declaring the loss. With ``--leader-election-warmup`` (or
``Manager(warmup=True)``) a standby starts the reflectors and controllers at once (``warmup=True``):
its caches sync while it waits, and it reconciles as soon as it leads.

Shutdown:

* First SIGINT/SIGTERM: graceful. Controllers start nothing new and let running reconciles finish
  (at most ``--graceful-shutdown-timeout``); then the reflectors stop, the Lease is released (an
  INFO line, not a leadership-lost warning) and ``run()`` returns. A signal while standing by
  returns at once. Second signal: forceful, everything is cancelled (``forced_shutdown``; ``main``
  returns 1, as it does when the graceful-shutdown deadline cancelled reconciles).
* :meth:`stop` does the same as the first signal, from code.
* Leadership lost (the renew deadline passed): the controllers are cancelled at once, as
  client-go requires, and ``run()`` raises :class:`~kube_runtime.leader.LeaderElectionLost`:
  exit non-zero so that the pod restarts and campaigns again.
* A controller whose run fails ends the others and its exception propagates.

Each controller added gets the options' ``--concurrency``, ``--graceful-shutdown-timeout`` and
``--reconcile-timeout`` (set your own afterwards to override). Add everything before ``run()``; a
manager runs once.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import anyio
from prometheus_client import REGISTRY, CollectorRegistry

from kube_runtime._tasks import BackgroundTasks
from kube_runtime.client import Api, ApiResource, Client
from kube_runtime.client.json import KubeObject
from kube_runtime.controller import Controller, ErrorPolicy, Reconciler, shutdown_on_signals
from kube_runtime.leader import LeaderElectionLost, LeaderElector
from kube_runtime.manager.event_loop import EventLoopChoice, run_event_loop
from kube_runtime.manager.options import ManagerOptions
from kube_runtime.observe import Observability, configure_logging, observe_watch, setup_tracing
from kube_runtime.observe.observability import ItemCallback
from kube_runtime.predicates import Predicate
from kube_runtime.store import SharedReflector, store
from kube_runtime.streams import EventItem, WatchStream
from kube_runtime.watcher import WatcherConfig, watcher
from kube_runtime.webhooks import Webhooks

__all__ = ["Manager"]

_log = logging.getLogger("kube_runtime.manager")

C = TypeVar("C")


@dataclass(frozen=True)
class _Entry(Generic[C]):
    controller: Controller
    reconcile: Reconciler[C]
    error_policy: ErrorPolicy[C] | None
    context: C
    on_item: ItemCallback | None
    store_name: str | None


class Manager:
    """Runs controllers and everything around them (see the module docs).

    ``name`` names the process: the tracing service, the default Lease (``--leader-election-id``)
    and the log lines of the manager. ``registry`` receives every metric (default:
    prometheus_client's global). ``configure_logs=False`` leaves logging as the caller set it up;
    ``tracing=False`` skips ``setup_tracing`` (log lines still carry ids, from unrecorded spans).
    ``warmup=True`` (with ``--leader-elect``) keeps warm standbys: a standby runs its watches and
    fills its stores (its ``/readyz`` waits for them) but reconciles nothing until it leads, so a
    failover starts from synced caches (controller-runtime's ``EnableWarmup``; see
    :mod:`~kube_runtime.controller.leadership`), at the cost of the watches' traffic and memory.
    """

    def __init__(
        self,
        client: Client,
        options: ManagerOptions | None = None,
        *,
        name: str,
        registry: CollectorRegistry | None = None,
        configure_logs: bool = True,
        tracing: bool = True,
        warmup: bool = False,
    ) -> None:
        self.client = client
        self.options = options or ManagerOptions()
        self.name = name
        self.registry = REGISTRY if registry is None else registry
        self.observability = Observability(self.options.server, registry=self.registry, client=client)
        self._configure_logs = configure_logs
        self._tracing = tracing
        self._warmup = warmup
        self._entries: list[_Entry[Any]] = []
        self._shared: list[SharedReflector] = []
        self._webhooks: Webhooks | None = None
        self._stopping = anyio.Event()
        #: Set once the metrics, probe and webhook servers listen (before any election).
        self.serving = anyio.Event()
        self._standby: anyio.CancelScope | None = None
        self._ran = False
        #: True once a second signal (or :meth:`run`'s forceful stop) cut the graceful shutdown short,
        #: or a controller's graceful-shutdown deadline cancelled reconciles still running.
        self.forced_shutdown = False
        #: The parsed command line when started by :meth:`main` (your own flags included).
        self.arguments = argparse.Namespace()

    # -- building -------------------------------------------------------------------------------------

    @property
    def namespace(self) -> str | None:
        """The namespace to watch (``--namespace``; ``None``: all)."""
        return self.options.controller.namespace

    def api(self, resource: ApiResource) -> Api:
        """An ``Api`` for ``resource`` in the watched namespace (or all of them)."""
        return Api(self.client, resource, self.namespace)

    def controller(
        self,
        resource: ApiResource,
        watcher_config: WatcherConfig | None = None,
        *,
        predicates: Sequence[Predicate] = (),
        name: str | None = None,
    ) -> Controller:
        """A :class:`~kube_runtime.controller.Controller` for ``resource`` in the watched
        namespace, on this manager's registry. Hand it to :meth:`add`."""
        return Controller(
            self.api(resource), watcher_config, name=name, registry=self.registry, predicates=predicates
        )

    def shared(
        self,
        resource: ApiResource,
        watcher_config: WatcherConfig | None = None,
        *,
        name: str | None = None,
        modify: Callable[[KubeObject], None] | None = None,
    ) -> SharedReflector:
        """One watch and cache of ``resource`` for several controllers
        (``Controller.for_shared(manager.shared(KIND), predicate=...)``). The manager runs it
        while the controllers run (after winning the election). Its watch metrics are labelled
        ``watch=name`` (default ``shared/<Kind>``); publish its store once under the same name
        with ``add(..., store_name=name)`` on one of its controllers. ``modify`` edits each
        object before it is cached (``streams.drop_managed_fields``)."""
        _reader, writer = store(resource)
        raw = watcher(self.api(resource), watcher_config or WatcherConfig())
        watch = name or f"shared/{resource.kind}"
        stream: WatchStream[EventItem] = observe_watch(raw, watch, registry=self.registry).default_backoff()
        if modify is not None:
            stream = stream.modify(modify)
        shared = SharedReflector(writer, stream)
        self._shared.append(shared)
        return shared

    def add(
        self,
        controller: Controller,
        reconcile: Reconciler[C],
        error_policy: ErrorPolicy[C] | None,
        context: C,
        *,
        on_item: ItemCallback | None = None,
        store_name: str | None = None,
    ) -> Controller:
        """Run ``controller`` with ``reconcile`` (``error_policy=None``: retry failures with the
        per-object backoff) when the manager runs; ``on_item`` sees every result item. Applies
        the options' concurrency, graceful-shutdown and reconcile timeouts. ``store_name`` names its
        store's series (``kube_runtime_store_*{store=...}``; default: the controller's name; a store
        shared by several controllers is published once). Returns the controller."""
        if any(entry.controller.name == controller.name for entry in self._entries):
            raise ValueError(f"a controller named {controller.name!r} was added already")
        ctl = self.options.controller
        controller.with_config(concurrency=ctl.concurrency)
        controller.with_graceful_shutdown_timeout(ctl.graceful_shutdown_timeout)
        controller.with_reconcile_timeout(ctl.reconcile_timeout)
        controller.graceful_shutdown_on(self._stopping)
        self._entries.append(_Entry(controller, reconcile, error_policy, context, on_item, store_name))
        return controller

    def serve_webhooks(self, webhooks: Webhooks) -> None:
        """Serve ``webhooks`` on every replica (leading or not) when the options carry a webhook
        certificate (``--webhook-cert-file``); ``/readyz`` waits for the listener."""
        self._webhooks = webhooks

    # -- a whole process ------------------------------------------------------------------------------

    @classmethod
    def main(
        cls,
        name: str,
        setup: Callable[[Manager], Awaitable[None]],
        argv: Sequence[str] | None = None,
        *,
        add_arguments: Callable[[argparse.ArgumentParser], object] | None = None,
        description: str | None = None,
        warmup: bool = False,
        event_loop: EventLoopChoice = "auto",
    ) -> int:
        """A controller process in one call; returns its exit status (``sys.exit(main())``).

        Parses ``argv`` (default ``sys.argv[1:]``) with the chart's flags
        (:class:`~kube_runtime.manager.ManagerOptions`) plus the ones ``add_arguments(parser)``
        adds (read them back from :attr:`arguments`), connects with ``Client.infer()``, awaits
        ``setup(manager)`` (add the controllers there) and runs the manager. Returns 0 after a
        graceful shutdown, 1 when leadership was lost (so that the pod restarts and campaigns
        again), a listener could not bind, or the shutdown was forced by a second signal or by the
        graceful-shutdown deadline (reconciles were cancelled mid-way, as controller-runtime exits 1
        then); a bad flag exits with usage
        (status 2). ``warmup``: warm standbys (see :class:`Manager`). ``event_loop``: the loop the
        process runs on (default: uvloop when installed, see :mod:`~kube_runtime.manager.event_loop`)."""
        parser = ManagerOptions.parser(name=name, description=description)
        if add_arguments is not None:
            add_arguments(parser)
        args = parser.parse_args(argv)
        options = ManagerOptions.from_parsed(parser, args)

        forced: list[bool] = []

        async def run() -> None:
            async with Client.infer() as client:
                manager = cls(client, options, name=name, warmup=warmup)
                manager.arguments = args
                await setup(manager)
                await manager.run()
                forced.append(manager.forced_shutdown)

        status = 0
        try:
            run_event_loop(run, event_loop=event_loop)
        except* (LeaderElectionLost, OSError) as group:
            print(f"{name}: {group.exceptions[0]}", file=sys.stderr)
            status = 1
        if forced and forced[0]:
            status = 1
        return status

    # -- running --------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Shut down gracefully, as the first SIGINT/SIGTERM does."""
        self._stopping.set()
        if self._standby is not None:
            self._standby.cancel()

    async def run(self) -> None:
        """Run until shutdown (see the module docs). Must run on the main thread (signals)."""
        if self._ran:
            raise RuntimeError("a Manager runs once")
        self._ran = True
        if not self._entries:
            raise ValueError("add at least one controller before running the manager")
        if self._configure_logs:
            configure_logging(self.options.log_filter, fmt=self.options.log_format)
        provider = setup_tracing(self.name) if self._tracing else None
        try:
            with anyio.CancelScope() as forceful:
                with shutdown_on_signals(self.stop, forceful.cancel, name=f"manager {self.name}"):
                    async with self._serving():
                        await self._run_controllers_when_leading()
            if forceful.cancelled_caught:
                self.forced_shutdown = True
            if self.forced_shutdown:
                _log.warning("manager %s: forced shutdown", self.name)
        finally:
            if provider is not None:
                provider.shutdown()  # export what is still queued

    @asynccontextmanager
    async def _serving(self) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            webhooks = self.options.webhooks
            if self._webhooks is not None and webhooks is not None:
                server = webhooks.server(self._webhooks)
                await stack.enter_async_context(server)
                self.observability.checks.add_readyz("webhooks", server.started_check())
            await stack.enter_async_context(self.observability)
            served = self.observability.server
            _log.info(
                "serving",
                extra={"manager": self.name, "metrics": served.metrics_url, "probes": served.health_url},
            )
            self.serving.set()
            yield

    async def _run_controllers_when_leading(self) -> None:
        ctl = self.options.controller
        if not ctl.leader_elect:
            await self._lead()
            return
        lease, namespace = ctl.leader_election_id, ctl.lease_namespace()
        assert lease is not None  # ControllerOptions: --leader-elect comes with a Lease name
        async with LeaderElector(self.client, lease, namespace, registry=self.registry) as elector:
            warmup = self._warmup or ctl.leader_election_warmup
            if warmup:
                _log.info("manager %s: standing by warm for the lease %s", self.name, elector.name)
            else:
                _log.info("manager %s: waiting for the lease %s/%s", self.name, namespace, lease)
                with anyio.CancelScope() as standby:
                    self._standby = standby
                    if self._stopping.is_set():
                        standby.cancel()
                    await elector.wait_until_leading()
                self._standby = None
                if standby.cancelled_caught:
                    _log.info("manager %s: stopping before leading", self.name)
                    return
            await self._lead_gated(elector, warmup)

    async def _lead_gated(self, elector: LeaderElector, warmup: bool) -> None:
        """Run everything, every controller gated on ``elector``: no reconcile starts unless it
        leads (each attempt asks ``is_leader`` first), and the controllers stop when the term ends.
        Then raise ``LeaderElectionLost`` unless the manager was stopped."""
        for entry in self._entries:
            entry.controller.with_leader_election(elector, warmup=warmup)
        await self._lead()
        if not self._stopping.is_set() and (elector.lost.is_set() or not elector.is_leader):
            raise LeaderElectionLost(f"lease {elector.name!r}: {elector.lost_reason or 'leadership lost'}")

    async def _lead(self) -> None:
        """Run the shared reflectors and every controller until they all stop."""
        obs = self.observability
        async with AsyncExitStack() as stack:
            for shared in self._shared:
                await stack.enter_async_context(shared)
            tasks = await stack.enter_async_context(BackgroundTasks())
            done: list[anyio.Event] = []
            forced: list[bool] = []
            for entry in self._entries:
                if entry.controller.name not in obs.recorders:
                    obs.add_controller(entry.controller, store_name=entry.store_name)
                finished = anyio.Event()
                done.append(finished)
                run = functools.partial(
                    obs.run, entry.controller, entry.reconcile, entry.error_policy, entry.context
                )
                tasks.start_soon(
                    _run_then_set, run, entry.on_item, finished, forced, name=entry.controller.name
                )
            for finished in done:
                await finished.wait()
            if any(forced):
                self.forced_shutdown = True


async def _run_then_set(
    run: Any, on_item: ItemCallback | None, finished: anyio.Event, forced: list[bool]
) -> None:
    """Await ``run``, appending whether its shutdown was forced to ``forced``; then set ``finished``."""
    try:
        forced.append(await run(on_item=on_item))
    finally:
        finished.set()

"""A sharded controller: one replica of a ring, its member Lease, and (when it leads) the assigner.

::

    sharded = (
        Controller(Api(client, CONFIG_MAP_GENERATOR), WatcherConfig())
        .owns(Api(client, ApiResource.builtin("ConfigMap")), WatcherConfig())
        .shutdown_on_signal()
        .sharded(ring="configmapgen", lease_namespace="operators", identity=pod_name)
    )
    health.add_store("shard", sharded)          # /readyz: the member Lease is held and the store synced
    async with sharded.run(reconcile, error_policy, ctx) as results:
        async for item in results:
            ...

A run is a sequence of *member terms*. In each term the replica campaigns for its member Lease
(named after its identity, ``holderIdentity`` the identity, labelled with the ring), then runs the
controller with its main and ``owns`` watches scoped to ``shard.alpha.sharding.timebertt.dev/<ring>
=<identity>``, through the :class:`~kube_runtime.sharding.member.ShardGate`. The term ends:

* when the controller's result stream ends (graceful shutdown: running reconciles finish, then the
  Lease is released so the assigner moves the objects at once); the run ends with it;
* when the Lease is lost or its renew deadline passes: the controller run is cancelled in that
  instant (the fence), and a new term starts after ``retry_period``.

Alongside, every replica campaigns for the ring's leader Lease ``<ring>-assigner``; the holder runs
the :class:`~kube_runtime.sharding.assigner.Assigner` for as long as it holds it (``assigner=False``
leaves assignment to someone else, such as kubernetes-controller-sharding's sharder).

Timing: ``lease_duration > renew_deadline > 1.2 * retry_period``; the objects of a crashed replica
move ``lease_duration`` (plus up to a ``retry_period``) after its last renew; the safety margin is
``lease_duration - renew_deadline``, which must exceed the event-loop latency of a replica (a
reconcile stops at its next await once cancelled).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Generator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
from prometheus_client import CollectorRegistry

from kube_runtime._tasks import BackgroundTasks
from kube_runtime.client import Api
from kube_runtime.client.resource import ApiResource
from kube_runtime.controller.applier import ControllerRun
from kube_runtime.controller.channel import ResultSender, ResultStream, result_channel
from kube_runtime.controller.errors import ControllerError
from kube_runtime.controller.reconcile import ErrorPolicy, Reconciler
from kube_runtime.controller.result import ControllerResult
from kube_runtime.leader import (
    DEFAULT_LEASE_DURATION,
    DEFAULT_RENEW_DEADLINE,
    DEFAULT_RETRY_PERIOD,
    LeaderElectionLost,
    LeaderElector,
)
from kube_runtime.sharding.assigner import Assigner, ShardedKind
from kube_runtime.sharding.hashring import DEFAULT_TOKENS
from kube_runtime.sharding.labels import RING_LABEL, member_selector
from kube_runtime.sharding.member import ShardGate
from kube_runtime.sharding.metrics import shard_metrics

if TYPE_CHECKING:
    from kube_runtime.controller.controller import Controller, WatchInstrument

__all__ = ["ShardedController", "ShardedRun", "default_instance_id"]

log = logging.getLogger(__name__)

C = TypeVar("C")


def default_instance_id() -> str:
    """The pod name (``$POD_NAME``, else the hostname), lowercased: stable across restarts of a
    StatefulSet pod, so a restarted replica gets its objects back without moves."""
    return (os.environ.get("POD_NAME") or socket.gethostname()).lower()


class ShardedController:
    """A :class:`~kube_runtime.controller.Controller` run as one replica of ``ring``
    (build it with ``Controller(...).sharded(...)``).

    ``identity`` names this replica (its member Lease and the shard label value; a DNS subdomain,
    unique in the ring). Lease timings default to controller-runtime's leader election. ``tokens``
    is the number of virtual nodes per member. ``registry`` receives the sharding and
    leader-election metrics.
    """

    def __init__(
        self,
        controller: Controller,
        api: Api,
        owned: Sequence[ApiResource],
        ring: str,
        lease_namespace: str,
        *,
        identity: str | None = None,
        lease_duration: float = DEFAULT_LEASE_DURATION,
        renew_deadline: float = DEFAULT_RENEW_DEADLINE,
        retry_period: float = DEFAULT_RETRY_PERIOD,
        tokens: int = DEFAULT_TOKENS,
        assigner: bool = True,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if not ring or len(ring) > 63:
            raise ValueError(f"ring name {ring!r} must be 1-63 characters (it is part of a label key)")
        self.controller = controller
        self.ring = ring
        self.lease_namespace = lease_namespace
        self.identity = identity or default_instance_id()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.tokens = tokens
        self.runs_assigner = assigner
        self.registry = registry
        self.kinds = [ShardedKind(api.resource, drains=True)] + [ShardedKind(r, drains=False) for r in owned]
        self._api = api
        self._member: LeaderElector | None = None
        self.assigner: Assigner | None = None
        """The assigner of the current term while this replica leads the ring, else None."""
        controller.scope_watches(member_selector(ring, self.identity))
        # Validates the timings and the identity before anything runs.
        self._elector(self.identity, labels=True)

    @property
    def name(self) -> str:
        """The controller's name (metrics and logs)."""
        return self.controller.name

    @property
    def store(self) -> Any:
        """The controller's store: this replica's objects only."""
        return self.controller.store

    # The controller's run settings, so a Manager can apply its options to a sharded controller.

    def with_config(self, config: Any = None, **settings: Any) -> ShardedController:
        self.controller.with_config(config, **settings)
        return self

    def with_graceful_shutdown_timeout(self, seconds: float | None) -> ShardedController:
        self.controller.with_graceful_shutdown_timeout(seconds)
        return self

    def with_reconcile_timeout(self, seconds: float | None) -> ShardedController:
        self.controller.with_reconcile_timeout(seconds)
        return self

    def graceful_shutdown_on(self, signal_: Any) -> ShardedController:
        """Leave the ring gracefully when ``signal_`` fires (see :meth:`ShardedRun.leave`)."""
        self.controller.graceful_shutdown_on(signal_)
        return self

    def instrument_watches(self, wrap: WatchInstrument) -> ShardedController:
        """See :meth:`Controller.instrument_watches <kube_runtime.controller.Controller.instrument_watches>`
        (the observe layer attaches its watch metrics through it)."""
        self.controller.instrument_watches(wrap)
        return self

    def is_member(self) -> bool:
        """True while this replica holds its member Lease within its renew deadline."""
        return self._member is not None and self._member.is_leader

    def is_ready(self) -> bool:
        """Ready (``/readyz``) once this replica holds its member Lease and its store has synced."""
        return self.is_member() and bool(self.controller.store.is_ready())

    def run(self, reconcile: Reconciler[C], error_policy: ErrorPolicy[C] | None, context: C) -> ShardedRun[C]:
        """Like :meth:`Controller.run <kube_runtime.controller.Controller.run>`: ``async with
        sharded.run(...) as results`` or ``await sharded.run(...)``."""
        return ShardedRun(self, reconcile, error_policy, context)

    def _elector(self, name: str, *, labels: bool) -> LeaderElector:
        return LeaderElector(
            self._api.client,
            name,
            self.lease_namespace,
            identity=self.identity,
            lease_duration=self.lease_duration,
            renew_deadline=self.renew_deadline,
            retry_period=self.retry_period,
            registry=self.registry,
            labels={RING_LABEL: self.ring} if labels else None,
        )


class ShardedRun(Generic[C]):
    """One run of a sharded controller; its value is the result stream of every member term."""

    def __init__(
        self,
        sharded: ShardedController,
        reconcile: Reconciler[C],
        error_policy: ErrorPolicy[C] | None,
        context: C,
    ) -> None:
        self._sharded = sharded
        self._reconcile = reconcile
        self._error_policy = error_policy
        self._context = context
        self._tasks: BackgroundTasks | None = None
        self._current: ControllerRun[C] | None = None
        self._leaving = False
        self._forced = False
        self.terms = 0
        """Member terms started so far."""

    @property
    def forced_shutdown(self) -> bool:
        """Whether the shutdown of a member term's controller run was forced
        (``ControllerRun.forced_shutdown``)."""
        return self._forced

    def leave(self) -> None:
        """Leave the ring gracefully: the controller shuts down gracefully (running reconciles
        finish), then the member Lease is released and the run ends."""
        self._leaving = True
        if self._current is not None:
            self._current.shutdown()

    async def __aenter__(self) -> ResultStream[ControllerResult]:
        send: ResultSender[ControllerResult]
        receive: ResultStream[ControllerResult]
        send, receive = result_channel(0)
        tasks = BackgroundTasks()
        await tasks.__aenter__()
        tasks.start_soon(self._main, send, name=f"kube_runtime.sharding[{self._sharded.ring}]")
        self._tasks = tasks
        return receive

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        tasks, self._tasks = self._tasks, None
        assert tasks is not None
        return await tasks.__aexit__(exc_type, exc, tb)

    def __await__(self) -> Generator[Any, None, None]:
        return self._consume().__await__()

    async def _consume(self) -> None:
        async with self as results:
            async for item in results:
                if isinstance(item, ControllerError):
                    log.debug("sharded controller %s: %s", self._sharded.controller.name, item)

    async def _main(self, send: ResultSender[ControllerResult]) -> None:
        async with send, anyio.create_task_group() as tg:
            if self._sharded.runs_assigner:
                tg.start_soon(
                    self._assigner_terms, name=f"kube_runtime.sharding[{self._sharded.ring}]/assigner"
                )
            await self._member_terms(send)
            tg.cancel_scope.cancel()

    async def _member_terms(self, send: ResultSender[ControllerResult]) -> None:
        sharded = self._sharded
        status = shard_metrics(sharded.registry).member_status.labels(
            ring=sharded.ring, shard=sharded.identity
        )
        status.set(0)
        while not self._leaving:
            elector = sharded._elector(sharded.identity, labels=True)
            async with elector:
                sharded._member = elector
                try:
                    await elector.wait_until_leading()
                    status.set(1)
                    self.terms += 1
                    log.info("ring %s: %s joined (term %d)", sharded.ring, sharded.identity, self.terms)
                    await elector.run_while_leading(self._serve, elector, send)
                    return
                except LeaderElectionLost as exc:
                    log.warning("ring %s: %s left the ring: %s", sharded.ring, sharded.identity, exc)
                finally:
                    status.set(0)
            await anyio.sleep(sharded.retry_period)

    async def _serve(self, elector: LeaderElector, send: ResultSender[ControllerResult]) -> None:
        sharded = self._sharded
        gate: ShardGate[C] = ShardGate(
            self._reconcile,
            client=sharded._api.client,
            resource=sharded._api.resource,
            ring=sharded.ring,
            member=sharded.identity,
            holds_lease=lambda: elector.is_leader,
            retry_period=sharded.retry_period,
            registry=sharded.registry,
        )
        run = sharded.controller.run(gate, self._error_policy, self._context)
        self._current = run
        try:
            if self._leaving:
                run.shutdown()
            async with run as results:
                async for item in results:
                    await send.send(item)
        finally:
            self._current = None
            self._forced = self._forced or run.forced_shutdown

    async def _assigner_terms(self) -> None:
        sharded = self._sharded
        while True:
            elector = sharded._elector(f"{sharded.ring}-assigner", labels=False)
            async with elector:
                assigner = Assigner(
                    sharded._api.client,
                    ring=sharded.ring,
                    lease_namespace=sharded.lease_namespace,
                    kinds=sharded.kinds,
                    identity=sharded.identity,
                    lease_duration=sharded.lease_duration,
                    renew_deadline=sharded.renew_deadline,
                    retry_period=sharded.retry_period,
                    tokens=sharded.tokens,
                    registry=sharded.registry,
                )
                try:
                    await elector.wait_until_leading()
                    sharded.assigner = assigner
                    await elector.run_while_leading(assigner.run)
                except LeaderElectionLost as exc:
                    log.warning("ring %s: %s stopped assigning: %s", sharded.ring, sharded.identity, exc)
                finally:
                    sharded.assigner = None
            await anyio.sleep(sharded.retry_period)

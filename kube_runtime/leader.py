"""Leader election on a ``coordination.k8s.io/v1`` Lease (client-go's protocol).

::

    async with LeaderElector(client, "my-controller", "my-namespace") as elector:
        await elector.run_while_leading(controller.run, reconcile, error_policy, ctx)

or, for a controller that drains gracefully on loss, ``controller.graceful_shutdown_on(elector.lost)``
after ``await elector.wait_until_leading()``.
A controller can also be gated on the elector itself, optionally warming up while a standby:
``controller.with_leader_election(elector, warmup=True)`` (see
:mod:`kube_runtime.controller.leadership`).

Protocol (as client-go, defaults from controller-runtime): lease duration 15 s, renew deadline 10 s,
retry period 2 s, identity ``<hostname>_<uuid4>``. A candidate takes the lease when it does not
exist, has no holder, or its record has not changed for ``leaseDurationSeconds`` *as measured on
the candidate's own clock since it first saw that record* (no cross-machine clock comparison).
Every write is a create or a replace carrying the observed ``resourceVersion``, so of two candidates
racing for the same record, exactly one wins (the other gets 409). ``leaseTransitions`` is
incremented whenever the holder changes. Each attempt (read and write) is bounded by the renew
deadline: a request on a connection that went silently dead is given up then, and the next attempt
connects afresh (otherwise a standby would wait out the client's read timeout).

Safety guarantee (never two leaders): a leader considers itself leading only until
``renew_deadline`` after it *started* its last successful renew, and ``renew_deadline`` must be
shorter than ``lease_duration``; any rival must see the renewed record unchanged for a full
``lease_duration`` after it was written. :attr:`LeaderElector.is_leader` reads the clock each time,
so it turns false at the deadline even if the renew loop is stuck, and a watchdog task fires
:attr:`LeaderElector.lost` at that moment. Check ``is_leader`` (or be cancelled via ``lost``) before
acting. The guarantee assumes clocks that run at the same rate, not synchronized clocks.

An elector holds one term: once lost, it does not campaign again (as client-go, the process or the
caller decides what to do, usually exit and restart). On exit of the ``async with`` block it
releases the lease (clears ``holderIdentity``) if it still holds it, so a standby takes over at its
next retry instead of waiting out the lease duration; pass ``release_on_shutdown=False`` to keep
controller-runtime's default. The campaign runs in a task the elector owns
(:mod:`kube_runtime._tasks`): an exception from the ``async with`` body comes out as itself.

Metric: ``leader_election_master_status{name}`` (1 while leading, else 0) in the given registry.
"""

from __future__ import annotations

import logging
import math
import random
import socket
import uuid
from collections.abc import Awaitable, Callable, Generator, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol, TypeVar, TypeVarTuple

import anyio
from prometheus_client import REGISTRY, CollectorRegistry, Gauge

from kube_runtime._tasks import BackgroundTasks
from kube_runtime.client import Api, Client
from kube_runtime.client.errors import ApiError, KubeError, TransportError
from kube_runtime.client.json import KubeObject
from kube_runtime.client.names import is_dns_subdomain
from kube_runtime.client.resource import ApiResource
from kube_runtime.metric_families import PerRegistry

__all__ = [
    "DEFAULT_LEASE_DURATION",
    "DEFAULT_RENEW_DEADLINE",
    "DEFAULT_RETRY_PERIOD",
    "LEASE_RESOURCE",
    "LeaderElectionLost",
    "LeaderElector",
    "LeadershipSignal",
    "LeaseApi",
    "default_identity",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

DEFAULT_LEASE_DURATION = 15.0
DEFAULT_RENEW_DEADLINE = 10.0
DEFAULT_RETRY_PERIOD = 2.0
_JITTER = 0.2  # client-go's JitterFactor 1.2 on the acquire retry period

LEASE_RESOURCE = ApiResource.builtin("Lease", "coordination.k8s.io/v1")


class LeaseApi(Protocol):
    """The slice of :class:`kube_runtime.client.Api` the elector needs (Lease verbs)."""

    async def get_opt(self, name: str) -> KubeObject | None: ...

    async def create(self, obj: KubeObject, *, field_manager: str | None = ...) -> KubeObject: ...

    async def replace(self, name: str, obj: KubeObject) -> KubeObject: ...


class LeaderElectionLost(KubeError):
    """Leadership was lost while work that needs it was running."""


class LeadershipSignal:
    """A reusable awaitable that completes once its event fires (``await signal`` any number of times)."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = anyio.Event()

    def __await__(self) -> Generator[Any, Any, None]:
        return self._event.wait().__await__()

    async def wait(self) -> None:
        await self._event.wait()

    def is_set(self) -> bool:
        return self._event.is_set()

    def _set(self) -> None:
        self._event.set()


def default_identity() -> str:
    """``<hostname>_<uuid4>``: unique per process, readable in ``kubectl get lease``."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def _micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _master_status_family(registry: CollectorRegistry) -> Gauge:
    return Gauge(
        "leader_election_master_status",
        "1 while this process holds the named leader-election lease, 0 while it is a standby.",
        ["name"],
        registry=registry,
    )


_master_status_gauge: PerRegistry[Gauge] = PerRegistry(_master_status_family)


class LeaderElector:
    """Campaigns for, holds and releases one Lease; an async context manager owning its tasks.

    ``lease_duration``, ``renew_deadline`` and ``retry_period`` are seconds and must satisfy
    ``lease_duration > renew_deadline > 1.2 * retry_period > 0``; ``leaseDurationSeconds`` is written
    rounded up to whole seconds, as the API requires. ``lease_api`` replaces the HTTP Lease API
    (anything with ``get_opt``/``create``/``replace`` and Kubernetes' 404/409 semantics).
    ``labels`` are set on the Lease when it is created and on every write that takes or renews it
    (a sharded controller's member Lease carries its ring label this way).
    """

    def __init__(
        self,
        client: Client | None,
        name: str,
        namespace: str = "default",
        *,
        identity: str | None = None,
        lease_duration: float = DEFAULT_LEASE_DURATION,
        renew_deadline: float = DEFAULT_RENEW_DEADLINE,
        retry_period: float = DEFAULT_RETRY_PERIOD,
        release_on_shutdown: bool = True,
        registry: CollectorRegistry | None = None,
        lease_api: LeaseApi | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        if not is_dns_subdomain(name):
            raise ValueError(f"lease name {name!r} is not a DNS-1123 subdomain (lowercase, digits, '-', '.')")
        if not 0 < retry_period * (1 + _JITTER) < renew_deadline < lease_duration:
            raise ValueError(
                "need lease_duration > renew_deadline > 1.2 * retry_period > 0, got "
                f"lease_duration={lease_duration}, renew_deadline={renew_deadline}, "
                f"retry_period={retry_period}"
            )
        if lease_api is None:
            if client is None:
                raise ValueError("pass a client or a lease_api")
            lease_api = Api(client, LEASE_RESOURCE, namespace)
        self.name = name
        self.namespace = namespace
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.release_on_shutdown = release_on_shutdown
        self.labels: dict[str, str] = dict(labels or {})
        self._api = lease_api
        self._gauge = _master_status_gauge(registry if registry is not None else REGISTRY).labels(name=name)
        self._acquired = LeadershipSignal()
        self.lost = LeadershipSignal()
        """Fires when leadership ends (lease lost, renew deadline passed, or the elector stopped)."""
        self.lost_reason: str | None = None
        self._valid_until = -math.inf
        self._observed_key: tuple[Any, ...] | None = None
        self._observed_time = -math.inf
        self._observed_spec: KubeObject = {}
        self._tasks: BackgroundTasks | None = None
        self._entered = False
        self._on_lost: list[Callable[[], None]] = []

    # -- public state ------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        """True only while this elector holds the lease and its renew deadline has not passed."""
        return self._acquired.is_set() and not self.lost.is_set() and anyio.current_time() < self._valid_until

    @property
    def observed_holder(self) -> str:
        """The holderIdentity of the last lease record seen ("" when none)."""
        return str(self._observed_spec.get("holderIdentity") or "")

    @property
    def leading(self) -> LeadershipSignal:
        """Fires when this elector first acquires the lease."""
        return self._acquired

    async def wait_until_leading(self) -> None:
        """Return once this elector leads; raise :class:`LeaderElectionLost` if its term already ended."""
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:

                async def stop_on_loss() -> None:
                    await self.lost.wait()
                    scope.cancel()

                tg.start_soon(stop_on_loss)
                await self._acquired.wait()
                tg.cancel_scope.cancel()
        if not self.is_leader:
            raise LeaderElectionLost(f"lease {self.name!r}: {self.lost_reason or 'not leading'}")

    async def run_while_leading(self, fn: Callable[[*Ts], Awaitable[T]], *args: *Ts, grace: float = 0.0) -> T:
        """Wait for leadership, then run ``fn(*args)`` until it returns or leadership is lost.

        On loss, ``fn`` gets ``grace`` seconds to return on its own (e.g. a Controller that was
        given ``graceful_shutdown_on(elector.lost)``), then it is cancelled; with ``grace=0`` the
        cancellation is requested in the same instant the loss is declared, so ``fn`` stops at its
        next await (a step already resumed still runs: check :attr:`is_leader` before acting).
        Keep ``grace`` below ``lease_duration - renew_deadline`` to stop before a rival can take
        over. Returns ``fn``'s result if it finished while leading; raises
        :class:`LeaderElectionLost` otherwise. An exception from ``fn`` propagates unchanged.
        """
        await self.wait_until_leading()
        outcome: list[T] = []
        error: Exception | None = None
        async with anyio.create_task_group() as tg:
            if grace > 0:

                async def stop_on_loss() -> None:
                    await self.lost.wait()
                    await anyio.sleep(grace)
                    tg.cancel_scope.cancel()

                tg.start_soon(stop_on_loss)
            else:
                # Cancel in the instant the loss is declared: fn stops at its next await.
                self._on_lost.append(tg.cancel_scope.cancel)
            try:
                outcome.append(await fn(*args))
            except Exception as exc:
                error = exc
            finally:
                if tg.cancel_scope.cancel in self._on_lost:
                    self._on_lost.remove(tg.cancel_scope.cancel)
            tg.cancel_scope.cancel()
        if error is not None:
            raise error
        if outcome and not self.lost.is_set():
            return outcome[0]
        raise LeaderElectionLost(f"lease {self.name!r}: {self.lost_reason or 'leadership lost'}")

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> LeaderElector:
        if self._entered:
            raise RuntimeError("a LeaderElector can only be entered once")
        self._entered = True
        self._gauge.set(0)
        tasks = BackgroundTasks()
        await tasks.__aenter__()
        tasks.start_soon(self._run, name=f"kube_runtime.leader[{self.name}]")
        self._tasks = tasks
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        tasks, self._tasks = self._tasks, None
        assert tasks is not None
        try:
            return await tasks.__aexit__(exc_type, exc, tb)
        finally:
            was_acquired = self._acquired.is_set()
            self._declare_lost("elector stopped", stopping=True)
            if self.release_on_shutdown and was_acquired:
                with anyio.CancelScope(shield=True), anyio.move_on_after(self.renew_deadline):
                    await self.release()

    async def release(self) -> bool:
        """Give the lease up if this elector still holds it; True if released.

        The write is guarded by resourceVersion, so it never clears a rival's hold.
        """
        self._declare_lost("released", stopping=True)
        try:
            lease = await self._api.get_opt(self.name)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return False
            spec = dict(lease.get("spec") or {})
            now = _micro_time(datetime.now(UTC))
            spec.update(holderIdentity="", leaseDurationSeconds=1, acquireTime=now, renewTime=now)
            await self._api.replace(self.name, {**lease, "spec": spec})
        except (ApiError, TransportError) as exc:
            log.warning("lease %s/%s: release failed: %s", self.namespace, self.name, exc)
            return False
        log.info("lease %s/%s: released by %s", self.namespace, self.name, self.identity)
        return True

    # -- campaign and renewal ----------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if await self._try_acquire_or_renew():
                break
            await anyio.sleep(self.retry_period * (1 + random.random() * _JITTER))
        self._acquired._set()
        self._gauge.set(1)
        log.info("lease %s/%s: acquired by %s", self.namespace, self.name, self.identity)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._renew_loop)
            await self._watch_deadline()
            tg.cancel_scope.cancel()

    async def _watch_deadline(self) -> None:
        """Declare the loss at the renew deadline even if the renew loop is stuck."""
        while not self.lost.is_set():
            remaining = self._valid_until - anyio.current_time()
            if remaining <= 0:
                self._declare_lost(f"not renewed within the {self.renew_deadline} s renew deadline")
                return
            with anyio.move_on_after(remaining):
                await self.lost.wait()

    async def _renew_loop(self) -> None:
        while True:
            await anyio.sleep(self.retry_period)
            if await self._try_acquire_or_renew(renewing=True):
                continue
            holder = self.observed_holder
            if holder != self.identity:
                self._declare_lost(
                    f"lease taken by {holder}" if holder else "lease released or deleted by someone else"
                )
                return

    async def _try_acquire_or_renew(self, *, renewing: bool = False) -> bool:
        """One attempt; True if this elector holds a freshly written lease afterwards.

        When ``renewing``, a lease that vanished or names another holder is never re-claimed: the
        term is over even if that record looks stale.
        """
        started = anyio.current_time()
        # Bounded by the renew deadline, as client-go bounds its renewals: a connection that went
        # silently dead (a NAT or load balancer failover) would otherwise hold the attempt for the
        # client's read timeout (minutes). Cancelling the request closes its connection, so the
        # next attempt connects afresh.
        written: KubeObject | None = None
        with anyio.move_on_after(self.renew_deadline) as bound:
            try:
                written = await self._write_lease(renewing)
            except (ApiError, TransportError) as exc:
                if not (isinstance(exc, ApiError) and exc.code == 409):
                    log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
                return False
        if bound.cancelled_caught:
            log.warning(
                "lease %s/%s: no answer within the %s s renew deadline",
                self.namespace,
                self.name,
                self.renew_deadline,
            )
            return False
        if written is None:
            return False
        self._observe(written)
        if not self.lost.is_set():
            self._valid_until = started + self.renew_deadline
        return True

    async def _write_lease(self, renewing: bool) -> KubeObject | None:
        """Read the lease and write this elector's claim; the written lease, or ``None`` when
        there is nothing to claim (held by another, or gone while renewing)."""
        lease = await self._api.get_opt(self.name)
        if lease is None:
            if renewing:
                self._observed_spec = {}
                return None
            return await self._api.create(self._new_lease())
        self._observe(lease)
        if renewing and self.observed_holder != self.identity:
            return None
        body = self._claim(lease)
        if body is None:
            return None
        return await self._api.replace(self.name, body)

    def _new_lease(self) -> KubeObject:
        now = _micro_time(datetime.now(UTC))
        return {
            "apiVersion": LEASE_RESOURCE.api_version,
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace, **self._labels_field()},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": math.ceil(self.lease_duration),
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        }

    def _claim(self, lease: KubeObject) -> KubeObject | None:
        """The replace body that takes or renews ``lease``, or None while a rival validly holds it."""
        spec: KubeObject = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        if holder and holder != self.identity and self._observed_record_valid():
            return None
        now = _micro_time(datetime.now(UTC))
        transitions = int(spec.get("leaseTransitions") or 0)
        renewing = holder == self.identity
        new_spec = {
            **spec,
            "holderIdentity": self.identity,
            "leaseDurationSeconds": math.ceil(self.lease_duration),
            "acquireTime": spec.get("acquireTime") if renewing and spec.get("acquireTime") else now,
            "renewTime": now,
            "leaseTransitions": transitions if renewing else transitions + 1,
        }
        # The body keeps metadata.resourceVersion: the replace fails with 409 if anyone wrote since.
        metadata = lease.get("metadata") or {}
        if self.labels:
            metadata = {**metadata, "labels": {**(metadata.get("labels") or {}), **self.labels}}
        return {**lease, "metadata": metadata, "spec": new_spec}

    def _labels_field(self) -> KubeObject:
        return {"labels": dict(self.labels)} if self.labels else {}

    def _observe(self, lease: KubeObject) -> None:
        spec: KubeObject = lease.get("spec") or {}
        key = (
            (lease.get("metadata") or {}).get("resourceVersion"),
            spec.get("holderIdentity"),
            spec.get("renewTime"),
            spec.get("acquireTime"),
            spec.get("leaseTransitions"),
            spec.get("leaseDurationSeconds"),
        )
        if key != self._observed_key:
            self._observed_key = key
            self._observed_spec = spec
            self._observed_time = anyio.current_time()

    def _observed_record_valid(self) -> bool:
        duration = self._observed_spec.get("leaseDurationSeconds") or self.lease_duration
        return anyio.current_time() < self._observed_time + float(duration)

    def _declare_lost(self, reason: str, *, stopping: bool = False) -> None:
        """End the term; ``stopping``: the elector's own shutdown (INFO), not a loss (WARNING)."""
        if self.lost.is_set():
            return
        self.lost_reason = reason
        self.lost._set()
        for callback in self._on_lost:
            callback()
        self._gauge.set(0)
        if self._acquired.is_set() and stopping:
            log.info("lease %s/%s: %s stepped down: %s", self.namespace, self.name, self.identity, reason)
        elif self._acquired.is_set():
            log.warning(
                "lease %s/%s: %s lost leadership: %s", self.namespace, self.name, self.identity, reason
            )

"""In-process replicas of a sharded controller for tests, and a journal of their reconciles.

Each :class:`Replica` has its own ``Client`` (so one replica can be cut off from the API server by
its :class:`PartitionTransport`), its own metrics registry and a reconciler that writes a start and
an end record per reconcile into the shared :class:`Journal`. The journal checks, as records
arrive, that no object is ever reconciled by two replicas at overlapping times, and tracks which
resourceVersion of each object was last reconciled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import httpx
from prometheus_client import CollectorRegistry

from kube_runtime.client import Api, Client
from kube_runtime.client.config import ClientConfig
from kube_runtime.client.resource import ApiResource
from kube_runtime.client.tls import ssl_context
from kube_runtime.client.transport import KubeTransport
from kube_runtime.controller import Controller
from kube_runtime.controller.action import Action
from kube_runtime.sharding import ShardedController, ShardedRun, shard_label

CONFIGMAPS = ApiResource.builtin("ConfigMap")
RING = "demo"
#: Upper bound on waits (virtual seconds on the virtual clock): a condition, never a timing assertion.
WAIT = 600.0


class PartitionTransport(httpx.AsyncBaseTransport):
    """The client's usual transport, except that while ``partitioned`` every request fails to connect,
    and so does every request ``refused`` returns true for (a partial partition)."""

    def __init__(self, config: ClientConfig) -> None:
        context = ssl_context(
            ca_file=config.ca_file,
            ca_data=config.ca_data,
            client_cert_file=config.client_cert_file,
            client_key_file=config.client_key_file,
            client_cert_data=config.client_cert_data,
            client_key_data=config.client_key_data,
            insecure_skip_tls_verify=config.insecure_skip_tls_verify,
        )
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=16, keepalive_expiry=30.0)
        self.inner = KubeTransport(ssl_context=context, http2=False, limits=limits)
        self.partitioned = False
        self.refused: Callable[[httpx.Request], bool] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.partitioned or (self.refused is not None and self.refused(request)):
            raise httpx.ConnectError("partitioned from the API server", request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Journal:
    """Reconcile records of every replica: ``(replica, object, resourceVersion)`` with times."""

    active: dict[str, str] = field(default_factory=dict)
    overlaps: list[tuple[str, str, str]] = field(default_factory=list)
    reconciled: dict[str, set[str]] = field(default_factory=dict)
    by_replica: dict[str, int] = field(default_factory=dict)
    count: int = 0
    #: ``(time, "start" | "end", replica, object)`` in order.
    events: list[tuple[float, str, str, str]] = field(default_factory=list)

    def start(self, replica: str, name: str) -> None:
        self.events.append((anyio.current_time(), "start", replica, name))
        other = self.active.get(name)
        if other is not None and other != replica:
            self.overlaps.append((name, other, replica))
        self.active[name] = replica

    def end(self, replica: str, name: str, version: str) -> None:
        self.events.append((anyio.current_time(), "end", replica, name))
        if self.active.get(name) == replica:
            del self.active[name]
        self.reconciled.setdefault(name, set()).add(version)
        self.by_replica[replica] = self.by_replica.get(replica, 0) + 1
        self.count += 1


class Replica:
    """One sharded controller replica with its own client, run in a task the test owns."""

    def __init__(
        self,
        server_kubeconfig: str,
        identity: str,
        journal: Journal,
        *,
        work: float = 0.05,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        owns: bool = False,
    ) -> None:
        self.identity = identity
        self.journal = journal
        self.work = work
        config = ClientConfig.from_kubeconfig(server_kubeconfig)
        self.transport = PartitionTransport(config)
        self.client = Client(config, transport=self.transport, metrics_registry=CollectorRegistry())
        self.registry = CollectorRegistry()
        controller = Controller(Api(self.client, CONFIGMAPS, "default"), name="cm", registry=self.registry)
        if owns:
            controller.owns(Api(self.client, ApiResource.builtin("Secret"), "default"))
        self.sharded: ShardedController = controller.sharded(
            ring=RING,
            lease_namespace="default",
            identity=identity,
            lease_duration=lease_duration,
            renew_deadline=renew_deadline,
            retry_period=retry_period,
            registry=self.registry,
        )
        self.run: ShardedRun[None] | None = None
        self.scope: anyio.CancelScope | None = None
        self.done = anyio.Event()
        self.reconciling = 0
        self.on_reconcile: Callable[[dict[str, Any]], None] | None = None

    async def reconcile(self, obj: dict[str, Any], _ctx: None) -> Action:
        name = obj["metadata"]["name"]
        self.journal.start(self.identity, name)
        self.reconciling += 1
        try:
            if self.on_reconcile is not None:
                self.on_reconcile(obj)
            await anyio.sleep(self.work)
        finally:
            self.reconciling -= 1
            self.journal.end(self.identity, name, obj["metadata"]["resourceVersion"])
        return Action.await_change()

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        with anyio.CancelScope() as scope:
            self.scope = scope
            self.run = self.sharded.run(self.reconcile, None, None)
            task_status.started()
            try:
                async with self.run as results:
                    async for _ in results:
                        pass
            finally:
                self.done.set()
                await self.client.aclose()

    def leave(self) -> None:
        assert self.run is not None
        self.run.leave()

    def crash(self) -> None:
        """Stop at once without releasing anything (the release fails: the network is gone first)."""
        self.transport.partitioned = True
        assert self.scope is not None
        self.scope.cancel()


async def until(check: Callable[[], bool], *, interval: float = 0.1) -> None:
    with anyio.fail_after(WAIT):
        while not check():  # noqa: ASYNC110 (the conditions read server state; no event to await)
            await anyio.sleep(interval)


def labelled(objects: list[dict[str, Any]]) -> dict[str, str | None]:
    """Each object's shard label value."""
    key = shard_label(RING)
    return {o["metadata"]["name"]: (o["metadata"].get("labels") or {}).get(key) for o in objects}

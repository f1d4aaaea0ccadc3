"""Moving parts of the end-to-end fault scenarios: a cuttable TCP path to the API server, a writer that
keeps changing ConfigMaps, and a reflector (watcher + store) whose cache is compared with the server.

The writer and the server-side reads use plain httpx with the admin token, so what is checked is only
the runtime under test: ``watcher`` -> ``reflector`` -> ``Store`` over ``kube_runtime.client``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from anyio.abc import SocketStream, TaskGroup
from prometheus_client import CollectorRegistry

from kube_runtime.client import Api, ApiError, ApiResource, Client, ClientConfig
from kube_runtime.store import Store, reflector, store
from kube_runtime.watcher import Init, InitDone, WatcherConfig, WatcherError, watcher

__all__ = ["ConfigMapWriter", "Partition", "ReflectorProbe", "StateKey", "server_state"]

CONFIG_MAP = ApiResource.builtin("ConfigMap")
StateKey = frozenset[tuple[str, str]]  # {(uid, resourceVersion)}
#: Upper bound for anything a scenario waits for (a condition, never a timing assertion).
WAIT = 90.0


def state_of(objects: list[dict[str, Any]]) -> StateKey:
    return frozenset((o["metadata"]["uid"], o["metadata"]["resourceVersion"]) for o in objects)


async def server_state(http: httpx.AsyncClient, namespace: str) -> StateKey:
    """The (uid, resourceVersion) pairs of every ConfigMap in ``namespace``, read from the server."""
    response = await http.get(f"/api/v1/namespaces/{namespace}/configmaps")
    response.raise_for_status()
    return state_of(response.json()["items"])


# ------------------------------------------------------------------------------------------ partition


class Partition:
    """A loopback TCP forwarder to the API server that a test can cut.

    ``cut()`` breaks every open connection and makes new ones fail (accepted, then closed at once) until
    ``heal()``; the listening port stays the same, so a client pointed at :attr:`url` simply sees the
    network go away and come back. TLS passes through untouched (the serving certificate is for
    127.0.0.1, so verification still holds).
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.partitioned = False
        self._scopes: set[anyio.CancelScope] = set()
        self._tg: TaskGroup | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def cut(self) -> None:
        self.partitioned = True
        for scope in list(self._scopes):
            scope.cancel()

    def heal(self) -> None:
        self.partitioned = False

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Partition]:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, self._forward, tg)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()

    async def _forward(self, downstream: SocketStream) -> None:
        async with downstream:
            if self.partitioned:
                return
            with anyio.CancelScope() as scope:
                self._scopes.add(scope)
                try:
                    upstream = await anyio.connect_tcp("127.0.0.1", self.target_port)
                except OSError:
                    return
                async with upstream, anyio.create_task_group() as tg:
                    tg.start_soon(_pump, downstream, upstream, tg)
                    tg.start_soon(_pump, upstream, downstream, tg)
            self._scopes.discard(scope)


async def _pump(source: SocketStream, sink: SocketStream, tg: TaskGroup) -> None:
    """Copy bytes until either side ends; then end the whole connection (both directions)."""
    try:
        async for chunk in source:
            await sink.send(chunk)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass
    finally:
        tg.cancel_scope.cancel()


# ---------------------------------------------------------------------------------------------- writer


#: Names of :class:`ConfigMapWriter` that are never deleted.
KEPT = 4


@dataclass
class ConfigMapWriter:
    """Keeps creating, updating and deleting ConfigMaps in one namespace, tolerating any failure.

    Each step is one request with a short timeout; failures (server down, etcd down) are counted and the
    next step goes on. :meth:`settle` stops it after a number of successful writes made from now on.
    """

    http: httpx.AsyncClient
    namespace: str
    names: int = 12
    ok: int = 0
    failed: int = 0
    _stop_after: int | None = None
    _stopped: anyio.Event = field(default_factory=anyio.Event)
    _progress: anyio.Event = field(default_factory=anyio.Event)

    @property
    def path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/configmaps"

    async def step(self, n: int) -> None:
        name = f"cm-{n % self.names:02d}"
        # Create a round of names, update them, delete them; the first KEPT names are updated instead
        # of deleted, so the namespace is never empty once a round has been created (a test that stops
        # the writer at any point still has objects to compare).
        action = (n // self.names) % 3
        if action == 2 and n % self.names < KEPT:
            action = 1
        params = {"timeout": "2s"}
        if action == 0:
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name},
                "data": {"n": str(n)},
            }
            response = await self.http.post(self.path, json=body, params=params)
        elif action == 1:
            response = await self.http.patch(
                f"{self.path}/{name}",
                content=b'{"data":{"n":"%d"}}' % n,
                headers={"Content-Type": "application/merge-patch+json"},
                params=params,
            )
        else:
            response = await self.http.delete(f"{self.path}/{name}", params=params)
        # 404/409 follow from an earlier step that failed on the client side but committed: not a fault.
        if response.status_code >= 500:
            raise httpx.HTTPStatusError("server error", request=response.request, response=response)

    async def run(self) -> None:
        n = 0
        while not self._stopped.is_set():
            try:
                await self.step(n)
            except httpx.HTTPError:
                self.failed += 1
                await anyio.sleep(0.1)  # the server is down: do not spin
            else:
                self.ok += 1
                if self._stop_after is not None:
                    self._stop_after -= 1
                    if self._stop_after <= 0:
                        self._stopped.set()
            self._progress.set()
            self._progress = anyio.Event()
            n += 1
            await anyio.sleep(0.02)

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        with anyio.fail_after(WAIT):
            while not condition():
                await self._progress.wait()

    async def settle(self, successful_writes: int = 10) -> None:
        """Stop after ``successful_writes`` more successful writes; returns once stopped."""
        self._stop_after = successful_writes
        with anyio.fail_after(WAIT):
            await self._stopped.wait()


# --------------------------------------------------------------------------------------------- reflector


def reflector_client(server: str, token: str, ca_path: str) -> Client:
    """A runtime client of its own (own connection pool and metrics registry) for the reflector."""
    config = ClientConfig(server=server, token=token, ca_file=ca_path, connect_timeout=5.0)
    return Client(config, metrics_registry=CollectorRegistry())


@dataclass
class ReflectorProbe:
    """A watcher + reflector over one namespace's ConfigMaps, driven by a task; records what it yields."""

    cache: Store
    errors: list[WatcherError] = field(default_factory=list)
    inits: int = 0
    synced: int = 0
    events: int = 0
    _changed: anyio.Event = field(default_factory=anyio.Event)

    def state(self) -> StateKey:
        return state_of(self.cache.state())

    def error_codes(self) -> list[int | None]:
        """HTTP codes behind the yielded errors (None for transport failures)."""
        codes: list[int | None] = []
        for err in self.errors:
            cause = getattr(err, "error", None) or err.__cause__
            codes.append(cause.code if isinstance(cause, ApiError) else None)
        return codes

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition()`` holds, checking after every item the reflector yields."""
        with anyio.fail_after(WAIT):
            while not condition():
                await self._changed.wait()

    def _note(self, item: object) -> None:
        if isinstance(item, WatcherError):
            self.errors.append(item)
        elif isinstance(item, Init):
            self.inits += 1
        elif isinstance(item, InitDone):
            self.synced += 1
        else:
            self.events += 1
        self._changed.set()
        self._changed = anyio.Event()

    @classmethod
    @asynccontextmanager
    async def running(cls, client: Client, namespace: str) -> AsyncIterator[ReflectorProbe]:
        """Start the reflector (default backoff, kube-rs defaults) and wait for its first sync."""
        reader, writer = store(CONFIG_MAP)
        probe = cls(reader)
        stream = reflector(
            writer, watcher(Api(client, CONFIG_MAP, namespace), WatcherConfig()).default_backoff()
        )

        async def drive() -> None:
            async with stream:
                async for item in stream:
                    probe._note(item)

        async with anyio.create_task_group() as tg:
            tg.start_soon(drive)
            await probe.wait_for(lambda: probe.synced >= 1)
            try:
                yield probe
            finally:
                tg.cancel_scope.cancel()


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"

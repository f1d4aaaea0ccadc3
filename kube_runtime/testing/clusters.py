"""The clusters a controller property test runs against: the embedded API server, or a real one.

Both implement :class:`Cluster`, which the harness
(:mod:`kube_runtime.testing.controller_harness`) uses to make the schedule's writes, read the final
state and inject its faults:

* :class:`EmbeddedCluster` writes straight into the embedded server's storage (never through HTTP,
  so injected failures, latency and a stopped listener only ever hit the controller under test) and
  supports every fault of :mod:`kube_runtime.testing.schedules`.
* :class:`EnvtestCluster` writes through its own admin client to a real kube-apiserver
  (:class:`~kube_runtime.testing.envtest.ThreadedEnvtest`) and supports restarts (``StopServing`` /
  ``StartServing``: kube-apiserver stopped and started again) and ``Compact`` (etcd compaction; run
  the API server with ``watch_cache=False`` so that resumed watches see the 410). Writes while the
  API server is stopped cannot happen there, so they are skipped (reported as no-ops).

Every write reports whether it changed the server's state (a create of an existing object, an
update to the same content or a delete of a missing object report ``False``): the harness only
expects a reconcile after a write that changed something.
"""

from __future__ import annotations

from typing import Any, Protocol

from kube_runtime.client import Api, ApiError, ApiResource, Client, TransportError
from kube_runtime.testing.apiserver.silence import silence_watches
from kube_runtime.testing.apiserver.status import StatusError
from kube_runtime.testing.envtest import ThreadedEnvtest
from kube_runtime.testing.schedules import (
    Compact,
    DropWatches,
    FailRequests,
    Latency,
    SilenceWatches,
    StartServing,
    Step,
    StopServing,
)
from kube_runtime.testing.server import ApiServer

__all__ = ["Cluster", "EmbeddedCluster", "EnvtestCluster", "merge_patch"]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch of ``patch`` onto ``target`` (neither is modified)."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


class Cluster(Protocol):
    """What the harness needs from a cluster (all writes bypass the faults it injects)."""

    @property
    def client(self) -> Client:
        """The client the controller under test uses (subject to the faults)."""
        ...

    @property
    def namespace(self) -> str: ...

    def supports(self, step: Step) -> bool:
        """Whether :meth:`fault` can inject ``step`` (churn and ``Pause`` are always supported)."""
        ...

    async def create(self, resource: ApiResource, obj: dict[str, Any]) -> bool: ...

    async def patch(self, resource: ApiResource, name: str, patch: dict[str, Any]) -> bool:
        """Merge-patch the object; ``False`` when it does not exist or nothing changed."""
        ...

    async def delete(self, resource: ApiResource, name: str) -> bool: ...

    async def objects(self, resource: ApiResource) -> dict[str, dict[str, Any]]:
        """The objects of ``resource`` in the namespace, by name."""
        ...

    async def versions(self, resource: ApiResource) -> dict[str, str]:
        """name -> resourceVersion of every object of ``resource`` in the namespace (cheap)."""
        ...

    async def version(self, resource: ApiResource, name: str) -> str | None: ...

    async def fault(self, step: Step) -> None:
        """Inject the fault ``step`` (one :meth:`supports` accepts)."""
        ...

    async def heal(self) -> None:
        """Stop every fault: serve again, no failures, no latency, silent connections reset."""
        ...


class EmbeddedCluster:
    """The embedded :class:`~kube_runtime.testing.ApiServer` (in this loop) as a :class:`Cluster`."""

    def __init__(self, server: ApiServer, namespace: str = "default") -> None:
        self.server = server
        self._namespace = namespace

    @property
    def client(self) -> Client:
        client: Client = self.server.client
        return client

    @property
    def namespace(self) -> str:
        return self._namespace

    def supports(self, step: Step) -> bool:
        return True

    def _coll(self, resource: ApiResource) -> Any:
        return self.server.ops.collection(self.server.resource_type(resource))

    async def create(self, resource: ApiResource, obj: dict[str, Any]) -> bool:
        try:
            self.server.ops.create(self.server.resource_type(resource), self._namespace, obj)
        except StatusError as err:
            if err.code == 409:
                return False
            raise
        return True

    async def patch(self, resource: ApiResource, name: str, patch: dict[str, Any]) -> bool:
        record = self._coll(resource).get(self._namespace, name)
        if record is None:
            return False
        current = record.copy_obj()
        merged = merge_patch(current, patch)
        if merged == current:
            return False
        rtype = self.server.resource_type(resource)
        self.server.ops.update(rtype, self._namespace, name, merged, require_rv=False)
        return True

    async def delete(self, resource: ApiResource, name: str) -> bool:
        record = self._coll(resource).get(self._namespace, name)
        if record is None or (record.obj.get("metadata") or {}).get("deletionTimestamp"):
            return False
        self.server.ops.delete(self.server.resource_type(resource), self._namespace, name)
        return True

    async def objects(self, resource: ApiResource) -> dict[str, dict[str, Any]]:
        return {o["metadata"]["name"]: o for o in self.server.objects(resource, self._namespace)}

    async def versions(self, resource: ApiResource) -> dict[str, str]:
        return {
            key[1]: str(record.rv)
            for key, record in self._coll(resource).objects.items()
            if key[0] == self._namespace
        }

    async def version(self, resource: ApiResource, name: str) -> str | None:
        record = self._coll(resource).get(self._namespace, name)
        return None if record is None else str(record.rv)

    async def fault(self, step: Step) -> None:
        faults = self.server.faults
        if isinstance(step, DropWatches):
            faults.close_watches()
        elif isinstance(step, Compact):
            faults.compact()
        elif isinstance(step, FailRequests):
            faults.fail_next(step.count, step.code, retry_after=step.retry_after)
        elif isinstance(step, Latency):
            faults.set_latency(step.seconds)
        elif isinstance(step, SilenceWatches):
            silence_watches(self.server.storage)
        elif isinstance(step, StopServing):
            await faults.stop_serving()
        elif isinstance(step, StartServing):
            await faults.start_serving()
        else:
            raise ValueError(f"not a fault: {step!r}")

    async def heal(self) -> None:
        faults = self.server.faults
        faults.reset()
        await faults.start_serving()
        for coll in self.server.storage.collections.values():
            for watcher in list(coll.watchers):
                if watcher.silent:
                    watcher.close()  # the partition heals: the half-open connection is reset


class EnvtestCluster:
    """A real kube-apiserver + etcd hosted by ``hosted`` (its own thread), as a :class:`Cluster`.

    ``admin`` makes the schedule's writes and reads; ``client`` (a separate one) is the controller's.
    Both must belong to the loop the harness runs on.
    """

    def __init__(self, hosted: ThreadedEnvtest, admin: Client, client: Client, namespace: str) -> None:
        self.hosted = hosted
        self._admin = admin
        self._client = client
        self._namespace = namespace
        self._stopped = False

    @property
    def client(self) -> Client:
        return self._client

    @property
    def namespace(self) -> str:
        return self._namespace

    def supports(self, step: Step) -> bool:
        return isinstance(step, Compact | StopServing | StartServing)

    def _api(self, resource: ApiResource) -> Api:
        return Api(self._admin, resource, self._namespace)

    async def create(self, resource: ApiResource, obj: dict[str, Any]) -> bool:
        if self._stopped:
            return False
        try:
            await self._api(resource).create(obj)
        except ApiError as err:
            if err.code == 409:
                return False
            raise
        return True

    async def patch(self, resource: ApiResource, name: str, patch: dict[str, Any]) -> bool:
        if self._stopped:
            return False
        api = self._api(resource)
        current = await api.get_opt(name)
        if current is None or merge_patch(current, patch) == current:
            return False
        try:
            await api.patch(name, patch)
        except ApiError as err:
            if err.code == 404:
                return False
            raise
        return True

    async def delete(self, resource: ApiResource, name: str) -> bool:
        if self._stopped:
            return False
        api = self._api(resource)
        current = await api.get_opt(name)
        if current is None or current["metadata"].get("deletionTimestamp"):
            return False
        try:
            await api.delete(name)
        except ApiError as err:
            if err.code == 404:
                return False
            raise
        return True

    async def objects(self, resource: ApiResource) -> dict[str, dict[str, Any]]:
        listed = await self._api(resource).list()
        return {o["metadata"]["name"]: o for o in listed["items"]}

    async def versions(self, resource: ApiResource) -> dict[str, str]:
        return {name: o["metadata"]["resourceVersion"] for name, o in (await self.objects(resource)).items()}

    async def version(self, resource: ApiResource, name: str) -> str | None:
        try:
            found = await self._api(resource).get_opt(name)
        except TransportError:
            return None
        return None if found is None else str(found["metadata"]["resourceVersion"])

    async def fault(self, step: Step) -> None:
        env = self.hosted.env
        if isinstance(step, Compact):
            await self.hosted.run(env.compact)
        elif isinstance(step, StopServing):
            if not self._stopped:
                await self.hosted.run(env.stop_apiserver)
                self._stopped = True
        elif isinstance(step, StartServing):
            await self._start()
        else:
            raise ValueError(f"envtest cannot inject {step!r}")

    async def _start(self) -> None:
        if self._stopped:
            await self.hosted.run(self.hosted.env.start_apiserver)
            self._stopped = False

    async def heal(self) -> None:
        await self._start()

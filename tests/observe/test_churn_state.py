"""State kept per object goes with the object: objects created, reconciled (some failing) and
deleted leave nothing behind in the recorder's hot-loop detector or the failure backoff."""

from __future__ import annotations

from typing import Any

import anyio
from prometheus_client import CollectorRegistry

from kube_runtime.client.api import Api
from kube_runtime.client.client import Client
from kube_runtime.client.resource import ApiResource
from kube_runtime.controller.action import Action
from kube_runtime.controller.backoff import ReconcileBackoff
from kube_runtime.controller.controller import Controller
from kube_runtime.controller.errors import ReconcilerFailed
from kube_runtime.controller.result import ObjectNotFound, Reconciled
from kube_runtime.observe import Observability
from kube_runtime.observe.metrics import ResultRecorder
from kube_runtime.predicates import generation
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.testing.server import ApiServer
from kube_runtime.watcher.config import WatcherConfig

from .results import reconciled, ref, stream

CM = ApiResource.builtin("ConfigMap")
N = 40


async def churn(client: Client, registry: CollectorRegistry, n: int) -> tuple[set[str], int, int]:
    """Create ``n`` labelled ConfigMaps, reconcile them all (the odd ones failing, with no retry),
    check that their state is kept, delete them and wait until the controller reported every
    delete. Returns the deleted names, and then the objects tracked by the recorder's hot-loop
    detector and by the failure backoff."""
    api = Api(client, CM, "default")
    backoff = ReconcileBackoff()
    watch = WatcherConfig().labels("churn-state=yes")
    controller = Controller(api, watch, name="churn", registry=registry, predicates=[generation])
    controller.error_backoff(backoff).with_config(concurrency=4)
    recorder = Observability(registry=registry).add_controller(controller)
    detector = recorder.hot_loops
    assert detector is not None
    deleted: set[str] = set()
    all_deleted = anyio.Event()

    def on_deleted(ref: ObjectRef) -> None:
        deleted.add(ref.name)
        if len(deleted) == n:
            all_deleted.set()

    controller.on_object_deleted(on_deleted)

    async def reconcile(obj: dict[str, Any], _ctx: None) -> Action:
        if int(obj["metadata"]["name"].rsplit("-", 1)[1]) % 2:
            raise RuntimeError("odd objects fail")
        return Action.await_change()

    def error_policy(_obj: dict[str, Any], _error: Exception, _ctx: None) -> Action:
        return Action.await_change()  # no retry: only the delete can clear the backoff

    names = [f"churn-{i}" for i in range(n)]
    reconciled: set[str] = set()
    run = controller.run(reconcile, error_policy, None)
    async with run as results:
        for name in names:
            meta = {"name": name, "labels": {"churn-state": "yes"}}
            await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta})
        with anyio.fail_after(60):
            async for item in recorder.observe(results):
                if isinstance(item, Reconciled | ReconcilerFailed):
                    reconciled.add(item.obj_ref.name)
                if reconciled == set(names):
                    break
            assert len(detector) == n
            assert len(backoff) == n // 2
            for name in names:
                await api.delete(name)
            await all_deleted.wait()
        run.shutdown()
    return deleted, len(detector), len(backoff)


async def test_deleted_objects_leave_no_per_object_state(api_server: ApiServer) -> None:
    registry = CollectorRegistry()
    async with Client.from_kubeconfig(str(api_server.kubeconfig_path), metrics_registry=registry) as client:
        deleted, tracked, failing = await churn(client, registry, N)
    assert deleted == {f"churn-{i}" for i in range(N)}
    assert (tracked, failing) == (0, 0)


class Deletions:
    """A deletion source as a controller is one: it keeps the listeners it is given."""

    def __init__(self) -> None:
        self.listeners: list[Any] = []

    def on_object_deleted(self, listener: Any) -> None:
        self.listeners.append(listener)


async def test_recorder_forgets_reported_deletes_and_missing_objects(registry: CollectorRegistry) -> None:
    deletions = Deletions()
    recorder = ResultRecorder("forget", registry=registry, deletions=deletions)
    assert recorder.hot_loops is not None
    names = [f"o{i}" for i in range(10)]
    async for _ in recorder.observe(stream([reconciled(ref(n), Action.await_change()) for n in names])):
        pass
    assert len(recorder.hot_loops) == 10
    (listener,) = deletions.listeners
    for name in names[:5]:
        listener(ref(name))
    assert len(recorder.hot_loops) == 5
    for name in names[5:]:
        recorder.record(ObjectNotFound(ref(name)))
    assert len(recorder.hot_loops) == 0

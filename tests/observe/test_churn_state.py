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
from kube_runtime.controller.result import ObjectNotFound
from kube_runtime.observe import Observability
from kube_runtime.observe.metrics import ResultRecorder
from kube_runtime.predicates import generation
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.testing.server import ApiServer

from .results import reconciled, ref, stream

CM = ApiResource.builtin("ConfigMap")
N = 40


async def test_deleted_objects_leave_no_per_object_state(api_server: ApiServer) -> None:
    registry = CollectorRegistry()
    async with Client.from_kubeconfig(str(api_server.kubeconfig_path), metrics_registry=registry) as client:
        api = Api(client, CM, "default")
        backoff = ReconcileBackoff()
        controller = Controller(api, name="churn", registry=registry, predicates=[generation])
        controller.error_backoff(backoff).with_config(concurrency=4)
        recorder = Observability(registry=registry).add_controller(controller)
        detector = recorder.hot_loops
        assert detector is not None
        deleted: set[ObjectRef] = set()
        all_deleted = anyio.Event()

        def on_deleted(ref: ObjectRef) -> None:
            deleted.add(ref)
            if len(deleted) == N:
                all_deleted.set()

        controller.on_object_deleted(on_deleted)

        async def reconcile(obj: dict[str, Any], _ctx: None) -> Action:
            if int(obj["metadata"]["name"].rsplit("-", 1)[1]) % 2:
                raise RuntimeError("odd objects fail")
            return Action.await_change()

        def error_policy(_obj: dict[str, Any], _error: Exception, _ctx: None) -> Action:
            return Action.await_change()  # no retry: only the delete can clear the backoff

        names = [f"cm-{i}" for i in range(N)]
        reconciled: set[str] = set()
        run = controller.run(reconcile, error_policy, None)
        async with run as results:
            for name in names:
                await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
            with anyio.fail_after(30):
                async for item in recorder.observe(results):
                    ref = item[0] if isinstance(item, tuple) else item.obj_ref
                    reconciled.add(ref.name)
                    if reconciled == set(names):
                        break
                assert len(detector) == N
                assert len(backoff) == N // 2
                for name in names:
                    await api.delete(name)
                await all_deleted.wait()
            run.shutdown()
    assert {ref.name for ref in deleted} == set(names)
    assert len(detector) == 0
    assert len(backoff) == 0


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

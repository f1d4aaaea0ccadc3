"""The small pieces sharding adds below it: ``LeaderElector(labels=)``, ``Controller.scope_watches``
and ``Controller.sharded``'s checks."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from kube_runtime.client import Api
from kube_runtime.controller import Action, Controller
from kube_runtime.leader import LEASE_RESOURCE, LeaderElector
from kube_runtime.sharding import RING_LABEL, member_selector
from kube_runtime.store import store
from kube_runtime.testing.server import ApiServer
from kube_runtime.watcher import WatcherConfig
from tests.sharding.harness import CONFIGMAPS


def lease_labels(server: ApiServer, name: str) -> dict[str, str]:
    lease = next(o for o in server.objects(LEASE_RESOURCE, "default") if o["metadata"]["name"] == name)
    labels: dict[str, str] = lease["metadata"].get("labels") or {}
    return labels


async def test_elector_labels_the_lease_it_creates_and_the_one_it_takes(api_server: ApiServer) -> None:
    options: dict[str, Any] = {"lease_duration": 3.0, "renew_deadline": 2.0, "retry_period": 0.5}
    labels = {RING_LABEL: "demo"}
    async with LeaderElector(
        api_server.client, "m1", identity="m1", labels=labels, registry=CollectorRegistry(), **options
    ) as elector:
        await elector.wait_until_leading()
        assert lease_labels(api_server, "m1") == labels
    # A Lease created without labels (here: by an elector without them) gets them when taken over.
    async with LeaderElector(
        api_server.client, "m2", identity="x", registry=CollectorRegistry(), **options
    ) as e:
        await e.wait_until_leading()
    assert lease_labels(api_server, "m2") == {}
    async with LeaderElector(
        api_server.client, "m2", identity="m2", labels=labels, registry=CollectorRegistry(), **options
    ) as elector:
        await elector.wait_until_leading()
        assert lease_labels(api_server, "m2") == labels


async def test_scoped_watches_see_only_matching_objects(api_server: ApiServer) -> None:
    api = Api(api_server.client, CONFIGMAPS, "default")
    await api.create({"metadata": {"name": "mine", "labels": {"app": "x", "shard": "a"}}})
    await api.create({"metadata": {"name": "other", "labels": {"app": "x", "shard": "b"}}})
    await api.create({"metadata": {"name": "unrelated", "labels": {"shard": "a"}}})
    seen: list[str] = []

    async def reconcile(obj: dict[str, Any], _ctx: None) -> Action:
        seen.append(obj["metadata"]["name"])
        run.shutdown()
        return Action.await_change()

    controller = Controller(api, WatcherConfig().labels("app=x"), registry=CollectorRegistry())
    controller.scope_watches("shard=a")  # added to the controller's own selector
    run = controller.run(reconcile, None, None)
    async with run as results:
        async for _ in results:
            pass
    assert seen == ["mine"]
    assert [o["metadata"]["name"] for o in controller.store] == ["mine"]


def test_sharded_needs_an_api_and_a_short_ring_name(api_server: ApiServer) -> None:
    reader, _writer = store(CONFIGMAPS)

    async def nothing() -> Any:
        yield None

    with pytest.raises(ValueError, match="needs Controller"):
        Controller.for_stream(CONFIGMAPS, nothing(), reader).sharded("ring", "default")
    api = Api(api_server.client, CONFIGMAPS, "default")
    with pytest.raises(ValueError, match="63 characters"):
        Controller(api, registry=CollectorRegistry()).sharded("r" * 64, "default", identity="a")
    sharded = Controller(api, registry=CollectorRegistry()).sharded("demo", "default", identity="a")
    assert sharded.name == "configmap"
    assert not sharded.is_ready()
    assert member_selector("demo", "a") == "shard.alpha.sharding.timebertt.dev/demo=a"

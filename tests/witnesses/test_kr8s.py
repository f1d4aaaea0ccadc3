"""kr8s (its public asyncio API) against both servers: create, get, list, patch, scale, watch, delete."""

from __future__ import annotations

from typing import Any

import anyio
import kr8s.asyncio
import pytest
from kr8s.asyncio.objects import ConfigMap, Deployment

from tests.witnesses.conftest import Crd, Target
from tests.witnesses.test_official_clients import deployment


@pytest.fixture
async def api(target: Target) -> Any:
    return await kr8s.asyncio.api(kubeconfig=str(target.kubeconfig))


def body(name: str, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}


async def test_create_get_and_list(api: Any, namespace: str) -> None:
    for name, tier in (("a", "web"), ("b", "db")):
        obj = await ConfigMap(body(name, tier=tier), namespace=namespace, api=api)
        await obj.create()
        assert obj.metadata.uid
    got = await ConfigMap.get("a", namespace=namespace, api=api)
    assert got.raw["data"] == {"k": "v"}
    listed = [o.name async for o in api.get("configmaps", namespace=namespace, label_selector="tier")]
    assert sorted(listed) == ["a", "b"]
    web = [o.name async for o in api.get("configmaps", namespace=namespace, label_selector={"tier": "web"})]
    assert web == ["a"]
    assert await ConfigMap(body("a"), namespace=namespace, api=api).exists()
    assert not await ConfigMap(body("zz"), namespace=namespace, api=api).exists()


async def test_patch_merge_and_json(api: Any, namespace: str) -> None:
    obj = await ConfigMap(body("p"), namespace=namespace, api=api)
    await obj.create()
    await obj.patch({"data": {"merged": "1"}})
    assert obj.raw["data"] == {"k": "v", "merged": "1"}
    await obj.patch([{"op": "remove", "path": "/data/k"}], type="json")
    assert obj.raw["data"] == {"merged": "1"}
    await obj.refresh()
    assert obj.raw["data"] == {"merged": "1"}


async def test_status_patch_of_a_custom_resource(api: Any, namespace: str, crd: Crd) -> None:
    Widget = kr8s.asyncio.objects.new_class(kind="Widget", version=crd.api_version, namespaced=True)
    widget = await Widget(crd.obj("w", {"size": 1}), namespace=namespace, api=api)
    await widget.create()
    await widget.patch({"status": {"ready": True}}, subresource="status")
    await widget.refresh()
    assert widget.raw["status"] == {"ready": True}
    assert widget.raw["metadata"]["generation"] == 1


async def test_scale_a_deployment(api: Any, namespace: str) -> None:
    dep = await Deployment({"apiVersion": "apps/v1", "kind": "Deployment", **deployment("web")}, api=api)
    dep.namespace = namespace
    await dep.create()
    with anyio.fail_after(20):
        await dep.scale(3)
    assert dep.raw["spec"]["replicas"] == 3


async def test_watch_since_a_resource_version(api: Any, namespace: str) -> None:
    obj = await ConfigMap(body("w"), namespace=namespace, api=api)
    await obj.create()
    rv = obj.metadata.resourceVersion
    await obj.patch({"data": {"k": "2"}})
    await obj.delete()
    seen: list[tuple[str, str]] = []
    with anyio.fail_after(20):
        async for event, o in api.watch("configmaps", namespace=namespace, since=rv):
            if o.name == "w":
                seen.append((event, o.raw["data"]["k"]))
            if len(seen) == 2:
                break
    assert seen == [("MODIFIED", "2"), ("DELETED", "2")]


async def test_delete_with_propagation(api: Any, namespace: str) -> None:
    owner = await ConfigMap(body("owner"), namespace=namespace, api=api)
    await owner.create()
    dependent_body = body("dependent")
    dependent_body["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    ]
    dependent = await ConfigMap(dependent_body, namespace=namespace, api=api)
    await dependent.create()
    await owner.delete(propagation_policy="Background")
    with anyio.fail_after(30):
        while True:
            if not (await dependent.exists() or await owner.exists()):
                break
            await anyio.sleep(0.1)

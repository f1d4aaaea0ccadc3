"""Status subresource, generation, finalizers, garbage collection."""

from __future__ import annotations

from typing import Any

import httpx

from tests.contract.conftest import wait_for
from tests.contract.helpers import configmap, create_crd, delete_crd, open_watch

MERGE = {"Content-Type": "application/merge-patch+json"}


async def test_status_subresource_and_generation(http: httpx.AsyncClient, namespace: str) -> None:
    crd = await create_crd(http)
    try:
        created = (await http.post(crd.path(namespace), json=crd.obj("g", {"size": 1}))).json()
        assert created["metadata"]["generation"] == 1
        assert "status" not in created
        # status written through the main resource is ignored
        resp = await http.patch(crd.path(namespace, "g"), json={"status": {"ready": True}}, headers=MERGE)
        assert "status" not in resp.json()
        assert resp.json()["metadata"]["generation"] == 1
        # status changes do not bump generation
        resp = await http.patch(
            crd.path(namespace, "g", "status"), json={"status": {"ready": True}}, headers=MERGE
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == {"ready": True}
        assert resp.json()["metadata"]["generation"] == 1
        # spec written through /status is ignored
        resp = await http.patch(crd.path(namespace, "g", "status"), json={"spec": {"size": 5}}, headers=MERGE)
        assert resp.json()["spec"] == {"size": 1}
        # metadata-only changes do not bump generation; spec changes do
        resp = await http.patch(
            crd.path(namespace, "g"), json={"metadata": {"labels": {"l": "v"}}}, headers=MERGE
        )
        assert resp.json()["metadata"]["generation"] == 1
        resp = await http.patch(crd.path(namespace, "g"), json={"spec": {"size": 2}}, headers=MERGE)
        assert resp.json()["metadata"]["generation"] == 2
        assert resp.json()["status"] == {"ready": True}
        # PUT on /status
        current = resp.json()
        current["status"] = {"ready": False}
        resp = await http.put(crd.path(namespace, "g", "status"), json=current)
        assert resp.status_code == 200
        assert resp.json()["status"] == {"ready": False}
        assert resp.json()["metadata"]["generation"] == 2
    finally:
        await delete_crd(http, crd)


async def test_finalizer_holds_deletion_until_removed(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    body = configmap("fin")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    created = (await http.post(path, json=body)).json()
    rv = created["metadata"]["resourceVersion"]
    async with open_watch(http, path, {"resourceVersion": rv}) as watch:
        resp = await http.delete(f"{path}/fin")
        assert resp.status_code in (200, 202)
        held = (await http.get(f"{path}/fin")).json()
        assert held["metadata"]["deletionTimestamp"]
        assert held["metadata"]["finalizers"] == ["example.com/hold"]
        # no new finalizers while deleting
        resp = await http.patch(
            f"{path}/fin", json={"metadata": {"finalizers": ["example.com/hold", "x.com/new"]}}, headers=MERGE
        )
        assert resp.status_code == 422
        await http.patch(f"{path}/fin", json={"metadata": {"finalizers": None}}, headers=MERGE)
        events = await watch.take(2)
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]
    assert events[0]["object"]["metadata"]["deletionTimestamp"]
    assert (await http.get(f"{path}/fin")).status_code == 404


async def test_deleted_event_after_last_finalizer_carries_last_stored_state(
    http: httpx.AsyncClient, namespace: str
) -> None:
    """When a write removes the last finalizer of an object being deleted, the object is deleted and
    the DELETED event carries its last stored state (finalizers included) at a newer resourceVersion,
    whether the write is a patch or a PUT; the writer's response shows no finalizers."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for name in ("by-patch", "by-put"):
        body = configmap(name)
        body["metadata"]["finalizers"] = ["example.com/a", "example.com/b"]
        created = (await http.post(path, json=body)).json()
        async with open_watch(
            http, path, {"resourceVersion": created["metadata"]["resourceVersion"]}
        ) as watch:
            assert (await http.delete(f"{path}/{name}")).status_code == 200
            patch = {"metadata": {"finalizers": ["example.com/b"]}}
            assert (await http.patch(f"{path}/{name}", json=patch, headers=MERGE)).status_code == 200
            if name == "by-patch":
                resp = await http.patch(
                    f"{path}/{name}", json={"metadata": {"finalizers": None}}, headers=MERGE
                )
            else:
                current = (await http.get(f"{path}/{name}")).json()
                current["metadata"]["finalizers"] = []
                resp = await http.put(f"{path}/{name}", json=current)
            assert resp.status_code == 200, resp.text
            assert not resp.json()["metadata"].get("finalizers")
            events = await watch.take(3)
        assert [e["type"] for e in events] == ["MODIFIED", "MODIFIED", "DELETED"]
        last, deleted = events[1]["object"]["metadata"], events[2]["object"]["metadata"]
        assert deleted["finalizers"] == ["example.com/b"]
        assert deleted["deletionTimestamp"] == last["deletionTimestamp"]
        assert int(deleted["resourceVersion"]) > int(last["resourceVersion"])
        assert (await http.get(f"{path}/{name}")).status_code == 404


async def test_garbage_collection_of_dependents(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    owner = (await http.post(path, json=configmap("owner"))).json()
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    for name in ("child-1", "child-2"):
        body = configmap(name)
        body["metadata"]["ownerReferences"] = [ref]
        assert (await http.post(path, json=body)).status_code == 201
    other_owner = (await http.post(path, json=configmap("other"))).json()
    shared = configmap("shared")
    other_ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "other",
        "uid": other_owner["metadata"]["uid"],
    }
    shared["metadata"]["ownerReferences"] = [ref, other_ref]
    await http.post(path, json=shared)
    await http.delete(f"{path}/owner")

    async def children_gone() -> bool:
        codes = [(await http.get(f"{path}/{n}")).status_code for n in ("child-1", "child-2")]
        return codes == [404, 404]

    await wait_for(children_gone)

    async def shared_ref_dropped() -> bool:
        got = (await http.get(f"{path}/shared")).json()
        return [r["name"] for r in got["metadata"].get("ownerReferences", [])] == ["other"]

    await wait_for(shared_ref_dropped)


async def test_orphan_propagation_keeps_dependents(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    owner = (await http.post(path, json=configmap("o"))).json()
    body = configmap("kept")
    body["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": owner["metadata"]["uid"]}
    ]
    await http.post(path, json=body)
    resp = await http.request("DELETE", f"{path}/o", json={"propagationPolicy": "Orphan"})
    assert resp.status_code in (200, 202)

    async def owner_gone() -> bool:
        return (await http.get(f"{path}/o")).status_code == 404

    await wait_for(owner_gone)
    kept = (await http.get(f"{path}/kept")).json()
    assert not kept["metadata"].get("ownerReferences")


async def test_deleting_a_namespace_removes_its_objects(http: httpx.AsyncClient) -> None:
    name = "contract-ns-delete-x7"
    await http.post(
        "/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )
    await http.post(f"/api/v1/namespaces/{name}/configmaps", json=configmap("inside"))
    resp = await http.delete(f"/api/v1/namespaces/{name}")
    assert resp.status_code == 200
    terminating = (await http.get(f"/api/v1/namespaces/{name}")).json()
    if terminating.get("kind") == "Namespace":
        assert terminating["status"]["phase"] == "Terminating"
        resp = await http.post(f"/api/v1/namespaces/{name}/configmaps", json=configmap("late"))
        assert resp.status_code in (403, 404)

    async def gone() -> bool:
        return (await http.get(f"/api/v1/namespaces/{name}")).status_code == 404

    await wait_for(gone, within=60)


async def test_garbage_collection_of_dangling_owner_references(
    http: httpx.AsyncClient, namespace: str
) -> None:
    """An object created with owner references to uids that do not exist is collected in the
    background when all its owners are absent, and only loses the dangling references otherwise."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    owner = (await http.post(path, json=configmap("gone-owner"))).json()
    assert (await http.delete(f"{path}/gone-owner")).status_code == 200
    gone_ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "gone-owner",
        "uid": owner["metadata"]["uid"],
    }
    never_ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "never",
        "uid": "00000000-0000-4000-8000-000000000001",
    }
    live = (await http.post(path, json=configmap("live"))).json()
    live_ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "live", "uid": live["metadata"]["uid"]}
    for name, refs in (("late", [gone_ref]), ("orphaned", [never_ref]), ("mixed", [live_ref, never_ref])):
        body = configmap(name)
        body["metadata"]["ownerReferences"] = refs
        assert (await http.post(path, json=body)).status_code == 201

    async def collected() -> bool:
        codes = [(await http.get(f"{path}/{n}")).status_code for n in ("late", "orphaned")]
        return codes == [404, 404]

    await wait_for(collected)

    async def dangling_ref_dropped() -> bool:
        got = (await http.get(f"{path}/mixed")).json()
        return [r["name"] for r in got["metadata"].get("ownerReferences", [])] == ["live"]

    await wait_for(dangling_ref_dropped)
    assert (await http.get(f"{path}/live")).status_code == 200


def _workload(kind: str, name: str) -> dict[str, Any]:
    labels = {"app": name}
    spec: dict[str, Any] = {
        "replicas": 0,
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
    }
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


async def test_deployment_generation_counts_annotations(http: httpx.AsyncClient, namespace: str) -> None:
    """A Deployment's generation is bumped by annotation changes (added, changed, removed) as by
    spec changes, not by label changes; ReplicaSets and StatefulSets count only their spec."""
    base = f"/apis/apps/v1/namespaces/{namespace}"
    path = f"{base}/deployments"
    assert (await http.post(path, json=_workload("Deployment", "d"))).status_code == 201

    async def generation_after(patch: dict[str, Any], target: str = f"{path}/d") -> int:
        resp = await http.patch(target, json=patch, headers=MERGE)
        assert resp.status_code == 200, resp.text
        generation: int = resp.json()["metadata"]["generation"]
        return generation

    assert await generation_after({"metadata": {"labels": {"l": "1"}}}) == 1
    assert await generation_after({"metadata": {"annotations": {"a": "1"}}}) == 2
    assert await generation_after({"metadata": {"annotations": {"a": "1"}}}) == 2
    assert await generation_after({"metadata": {"annotations": {"a": "2"}}}) == 3
    assert await generation_after({"metadata": {"annotations": {"a": None}}}) == 4
    assert await generation_after({"spec": {"replicas": 1}}) == 5
    for kind, plural in (("ReplicaSet", "replicasets"), ("StatefulSet", "statefulsets")):
        assert (await http.post(f"{base}/{plural}", json=_workload(kind, "w"))).status_code == 201
        assert await generation_after({"metadata": {"annotations": {"a": "1"}}}, f"{base}/{plural}/w") == 1

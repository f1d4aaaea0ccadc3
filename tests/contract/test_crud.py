"""Create, get, update and delete with their metadata rules and error Status objects."""

from __future__ import annotations

import httpx

from tests.contract.helpers import configmap, create_crd, delete_crd


async def test_create_sets_server_fields(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    resp = await http.post(path, json=configmap("a", k="v"))
    assert resp.status_code == 201
    obj = resp.json()
    meta = obj["metadata"]
    assert meta["name"] == "a"
    assert meta["namespace"] == namespace
    assert meta["uid"]
    assert meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) > 0
    got = (await http.get(f"{path}/a")).json()
    assert got["metadata"]["uid"] == meta["uid"]
    assert got["data"] == {"k": "v"}


async def test_generate_name(http: httpx.AsyncClient, namespace: str) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}}
    first = (await http.post(f"/api/v1/namespaces/{namespace}/configmaps", json=body)).json()
    second = (await http.post(f"/api/v1/namespaces/{namespace}/configmaps", json=body)).json()
    assert first["metadata"]["name"].startswith("gen-")
    assert len(first["metadata"]["name"]) > len("gen-")
    assert first["metadata"]["name"] != second["metadata"]["name"]


async def test_create_twice_is_409_already_exists(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    assert (await http.post(path, json=configmap("dup"))).status_code == 201
    resp = await http.post(path, json=configmap("dup"))
    assert resp.status_code == 409
    status = resp.json()
    assert status["reason"] == "AlreadyExists"
    assert status["details"]["name"] == "dup"
    assert status["details"]["kind"] == "configmaps"


async def test_get_missing_is_404_status(http: httpx.AsyncClient, namespace: str) -> None:
    resp = await http.get(f"/api/v1/namespaces/{namespace}/configmaps/nope")
    assert resp.status_code == 404
    status = resp.json()
    assert status["kind"] == "Status"
    assert status["status"] == "Failure"
    assert status["reason"] == "NotFound"
    assert status["message"] == 'configmaps "nope" not found'


async def test_update_with_stale_resource_version_is_409(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    created = (await http.post(path, json=configmap("u", k="1"))).json()
    fresh = dict(created, data={"k": "2"})
    updated = await http.put(f"{path}/u", json=fresh)
    assert updated.status_code == 200
    assert int(updated.json()["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    stale = dict(created, data={"k": "3"})
    resp = await http.put(f"{path}/u", json=stale)
    assert resp.status_code == 409
    assert resp.json()["reason"] == "Conflict"
    assert (await http.get(f"{path}/u")).json()["data"] == {"k": "2"}


async def test_noop_update_keeps_resource_version(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    created = (await http.post(path, json=configmap("same", k="1"))).json()
    again = (await http.put(f"{path}/same", json=created)).json()
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_delete_returns_and_removes(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await http.post(path, json=configmap("d"))
    resp = await http.delete(f"{path}/d")
    assert resp.status_code == 200
    assert (await http.get(f"{path}/d")).status_code == 404
    assert (await http.delete(f"{path}/d")).status_code == 404


async def test_delete_precondition_uid_mismatch_is_409(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await http.post(path, json=configmap("p"))
    body = {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "preconditions": {"uid": "00000000-0000-0000-0000-000000000000"},
    }
    resp = await http.request("DELETE", f"{path}/p", json=body)
    assert resp.status_code == 409
    assert resp.json()["reason"] == "Conflict"
    assert (await http.get(f"{path}/p")).status_code == 200


async def test_create_in_missing_namespace_is_404(http: httpx.AsyncClient) -> None:
    resp = await http.post("/api/v1/namespaces/no-such-namespace-x1/configmaps", json=configmap("x"))
    assert resp.status_code == 404
    assert resp.json()["reason"] == "NotFound"


async def test_custom_resources_namespaced_and_cluster_scoped(
    http: httpx.AsyncClient, namespace: str
) -> None:
    namespaced = await create_crd(http, namespaced=True)
    cluster = await create_crd(http, namespaced=False)
    try:
        resp = await http.post(namespaced.path(namespace), json=namespaced.obj("w1", {"size": 1}))
        assert resp.status_code == 201, resp.text
        assert resp.json()["metadata"]["generation"] == 1
        resp = await http.post(cluster.path(), json=cluster.obj("c1", {"size": 2}))
        assert resp.status_code == 201, resp.text
        assert "namespace" not in resp.json()["metadata"]
        assert (await http.get(namespaced.path(namespace, "w1"))).json()["spec"] == {"size": 1}
        listed = (await http.get(cluster.path())).json()
        assert listed["kind"] == "WidgetList"
        assert [i["metadata"]["name"] for i in listed["items"]] == ["c1"]
        all_ns = (await http.get(namespaced.path())).json()
        assert [i["metadata"]["name"] for i in all_ns["items"]] == ["w1"]
        # Custom resources require a resourceVersion on update.
        obj = (await http.get(cluster.path(name="c1"))).json()
        del obj["metadata"]["resourceVersion"]
        resp = await http.put(cluster.path(name="c1"), json=obj)
        assert resp.status_code == 422
        assert resp.json()["reason"] == "Invalid"
    finally:
        await delete_crd(http, namespaced)
        await delete_crd(http, cluster)


async def test_a_body_meant_for_an_object_since_recreated_is_refused(
    http: httpx.AsyncClient, namespace: str
) -> None:
    """A PUT carrying the uid of the object it was read from is a precondition: the object of that
    name was deleted and created again, so the write is refused (409) instead of overwriting the new
    one. In a patch the uid is immutable (422)."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    first = (
        await http.post(path, json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    ).json()
    assert (await http.delete(f"{path}/x")).status_code == 200
    second = (
        await http.post(path, json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    ).json()
    stale = {
        **first,
        "metadata": {**first["metadata"], "resourceVersion": second["metadata"]["resourceVersion"]},
    }
    stale["data"] = {"written": "to the old object"}
    resp = await http.put(f"{path}/x", json=stale)
    assert resp.status_code == 409, resp.text
    assert "Precondition failed: UID in precondition" in resp.json()["message"]
    patched = await http.patch(
        f"{path}/x",
        json={"metadata": {"uid": first["metadata"]["uid"]}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 422, patched.text
    assert (await http.get(f"{path}/x")).json()["metadata"]["uid"] == second["metadata"]["uid"]
    assert "data" not in (await http.get(f"{path}/x")).json()


async def test_an_immutable_config_map_keeps_its_data_and_keys_are_checked(
    http: httpx.AsyncClient, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "frozen"}, "data": {"k": "v"}}
    assert (await http.post(path, json={**body, "immutable": True})).status_code == 201
    merge = {"Content-Type": "application/merge-patch+json"}
    for change in ({"data": {"k": "w"}}, {"immutable": False}, {"binaryData": {"b": "AA=="}}):
        resp = await http.patch(f"{path}/frozen", json=change, headers=merge)
        assert resp.status_code == 422, (change, resp.text)
    assert (await http.get(f"{path}/frozen")).json()["data"] == {"k": "v"}
    labelled = await http.patch(f"{path}/frozen", json={"metadata": {"labels": {"a": "b"}}}, headers=merge)
    assert labelled.status_code == 200  # metadata may still change
    bad_key = await http.post(path, json={**body, "metadata": {"name": "spaced"}, "data": {"a b": "v"}})
    assert bad_key.status_code == 422
    assert "data[a b]" in {cause["field"] for cause in bad_key.json()["details"]["causes"]}


async def test_an_unknown_dry_run_value_is_refused_and_writes_nothing(
    http: httpx.AsyncClient, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    resp = await http.post(f"{path}?dryRun=Foo", json=configmap("dry"))
    assert resp.status_code == 422, resp.text
    assert (await http.get(f"{path}/dry")).status_code == 404

"""List: selectors, paging over a consistent snapshot, resourceVersion semantics."""

from __future__ import annotations

import httpx
import pytest

from tests.contract.helpers import CLUSTER_PROVIDED, configmap, create_crd, delete_crd, names, own


async def _names(http: httpx.AsyncClient, path: str, **params: str) -> list[str]:
    """Names of the test's own objects listed at ``path`` (cluster-provided ones left out)."""
    resp = await http.get(path, params=params)
    assert resp.status_code == 200, resp.text
    return names(resp.json()["items"])


@pytest.fixture
async def labelled(http: httpx.AsyncClient, namespace: str) -> str:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for name, labels in [
        ("a", {"app": "web", "tier": "front"}),
        ("b", {"app": "web", "tier": "back"}),
        ("c", {"app": "db"}),
        ("d", {}),
    ]:
        assert (await http.post(path, json=configmap(name, labels))).status_code == 201
    return path


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["a", "b"]),
        ("app==web", ["a", "b"]),
        ("app!=web", ["c", "d"]),
        ("app in (web,db)", ["a", "b", "c"]),
        ("app notin (web)", ["c", "d"]),
        ("tier", ["a", "b"]),
        ("!tier", ["c", "d"]),
        ("app=web,tier=back", ["b"]),
        ("app=nothing", []),
    ],
)
async def test_label_selectors(
    http: httpx.AsyncClient, labelled: str, selector: str, expected: list[str]
) -> None:
    assert await _names(http, labelled, labelSelector=selector) == expected


async def test_field_selectors(http: httpx.AsyncClient, labelled: str, namespace: str) -> None:
    assert await _names(http, labelled, fieldSelector="metadata.name=c") == ["c"]
    assert await _names(http, labelled, fieldSelector="metadata.name!=c") == ["a", "b", "d"]
    names = await _names(http, "/api/v1/configmaps", fieldSelector=f"metadata.namespace={namespace}")
    assert names == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("param", "value"),
    [("labelSelector", "app in (web"), ("labelSelector", "a=b=c"), ("fieldSelector", "spec.nothing=1")],
)
async def test_bad_selector_is_400(http: httpx.AsyncClient, labelled: str, param: str, value: str) -> None:
    resp = await http.get(labelled, params={param: value})
    assert resp.status_code == 400
    assert resp.json()["reason"] == "BadRequest"


async def test_pages_are_a_consistent_snapshot(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    # Whatever the cluster put into the namespace by itself is listed too (and counted).
    provided = [i["metadata"]["name"] for i in (await http.get(path)).json()["items"]]
    assert set(provided) <= CLUSTER_PROVIDED
    for i in range(25):
        await http.post(path, json=configmap(f"cm-{i:02d}", v=str(i)))
    expected = sorted([f"cm-{i:02d}" for i in range(25)] + provided)
    first = (await http.get(path, params={"limit": "10"})).json()
    rv = first["metadata"]["resourceVersion"]
    assert [i["metadata"]["name"] for i in first["items"]] == expected[:10]
    assert first["metadata"]["continue"]
    assert first["metadata"]["remainingItemCount"] == len(expected) - 10
    # Writes between pages must not show up in later pages.
    await http.post(path, json=configmap("cm-99"))
    await http.delete(f"{path}/cm-20")
    patched = await http.patch(
        f"{path}/cm-15",
        json={"data": {"v": "changed"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200
    items = list(first["items"])
    token = first["metadata"]["continue"]
    while token:
        page = (await http.get(path, params={"limit": "10", "continue": token})).json()
        assert page["metadata"]["resourceVersion"] == rv
        items += page["items"]
        token = page["metadata"].get("continue")
    assert [i["metadata"]["name"] for i in items] == expected
    assert next(i for i in items if i["metadata"]["name"] == "cm-15")["data"] == {"v": "15"}


async def test_limit_with_selector_fills_pages(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(12):
        await http.post(path, json=configmap(f"s-{i:02d}", {"even": str(i % 2 == 0).lower()}))
    names: list[str] = []
    params = {"limit": "2", "labelSelector": "even=true"}
    while True:
        page = (await http.get(path, params=params)).json()
        assert len(page["items"]) <= 2
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
        params = {**params, "continue": token}
    assert names == [f"s-{i:02d}" for i in range(0, 12, 2)]


async def test_exact_resource_version_reads_the_past(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await http.post(path, json=configmap("x", v="1"))
    rv = (await http.get(path)).json()["metadata"]["resourceVersion"]
    await http.post(path, json=configmap("y"))
    await http.patch(
        f"{path}/x", json={"data": {"v": "2"}}, headers={"Content-Type": "application/merge-patch+json"}
    )
    past = (await http.get(path, params={"resourceVersion": rv, "resourceVersionMatch": "Exact"})).json()
    assert past["metadata"]["resourceVersion"] == rv
    assert [(i["metadata"]["name"], i["data"]) for i in own(past["items"])] == [("x", {"v": "1"})]
    now = (
        await http.get(path, params={"resourceVersion": rv, "resourceVersionMatch": "NotOlderThan"})
    ).json()
    assert int(now["metadata"]["resourceVersion"]) >= int(rv)
    assert names(now["items"]) == ["x", "y"]


async def test_list_metadata_only(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await http.post(path, json=configmap("m", {"k": "v"}, big="x" * 100))
    accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
    resp = await http.get(path, headers={"Accept": accept})
    body = resp.json()
    assert body["kind"] == "PartialObjectMetadataList"
    assert body["apiVersion"] == "meta.k8s.io/v1"
    assert {i["kind"] for i in body["items"]} == {"PartialObjectMetadata"}
    assert names(body["items"]) == ["m"]
    (item,) = own(body["items"])
    assert item["metadata"]["labels"] == {"k": "v"}
    assert "data" not in item
    one = await http.get(
        f"{path}/m", headers={"Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"}
    )
    assert one.json()["kind"] == "PartialObjectMetadata"
    assert "data" not in one.json()


async def test_builtin_list_items_carry_no_type_fields(http: httpx.AsyncClient, namespace: str) -> None:
    """Items of a built-in resource's list have no ``kind``/``apiVersion`` (the list names them),
    whatever the order the object was written in; single reads, metadata-only list items and custom
    resource list items keep them."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    assert (await http.post(path, json=configmap("first", k="1"))).status_code == 201
    last = {"metadata": {"name": "last"}, "data": {"k": "v"}, "kind": "ConfigMap", "apiVersion": "v1"}
    assert (await http.post(path, json=last)).status_code == 201
    lists = {
        "namespaced": await http.get(path),
        "all namespaces": await http.get("/api/v1/configmaps", params={"labelSelector": ""}),
        "cluster-scoped": await http.get("/api/v1/namespaces"),
    }
    for where, resp in lists.items():
        body = resp.json()
        assert resp.status_code == 200, where
        assert body["apiVersion"] == "v1", where
        assert body["items"], where
        typed = [i["metadata"]["name"] for i in body["items"] if "kind" in i or "apiVersion" in i]
        assert typed == [], f"{where}: items with type fields: {typed}"
    mine = {i["metadata"]["name"]: i for i in own((await http.get(path)).json()["items"])}
    assert mine["last"]["data"] == {"k": "v"}
    assert mine["first"]["data"] == {"k": "1"}
    single = (await http.get(f"{path}/last")).json()
    assert (single["kind"], single["apiVersion"]) == ("ConfigMap", "v1")
    meta_list = await http.get(
        path, headers={"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"}
    )
    assert {(i["kind"], i["apiVersion"]) for i in meta_list.json()["items"]} == {
        ("PartialObjectMetadata", "meta.k8s.io/v1")
    }
    crd = await create_crd(http)
    try:
        assert (await http.post(crd.path(namespace), json=crd.obj("w"))).status_code == 201
        items = (await http.get(crd.path(namespace))).json()["items"]
        assert [(i["kind"], i["apiVersion"]) for i in items] == [(crd.kind, crd.api_version)]
    finally:
        await delete_crd(http, crd)

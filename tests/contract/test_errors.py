"""Bad requests get the right Status and never hurt the server or its objects."""

from __future__ import annotations

import httpx
import pytest

from tests.contract.helpers import configmap


@pytest.fixture
async def stored(http: httpx.AsyncClient, namespace: str) -> str:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    assert (await http.post(path, json=configmap("keep", k="v"))).status_code == 201
    return path


async def _still_there(http: httpx.AsyncClient, path: str) -> None:
    resp = await http.get(f"{path}/keep")
    assert resp.status_code == 200
    assert resp.json()["data"] == {"k": "v"}


async def test_malformed_json_is_400(http: httpx.AsyncClient, stored: str) -> None:
    resp = await http.post(
        stored, content=b'{"apiVersion": "v1", "kind": ', headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400
    assert resp.json()["kind"] == "Status"
    assert resp.json()["reason"] == "BadRequest"
    resp = await http.put(f"{stored}/keep", content=b"not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    resp = await http.patch(
        f"{stored}/keep", content=b"{broken", headers={"Content-Type": "application/merge-patch+json"}
    )
    assert resp.status_code == 400
    await _still_there(http, stored)


NOT_FOUND_STATUS = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "the server could not find the requested resource",
    "reason": "NotFound",
    "details": {},
    "code": 404,
}


async def test_unknown_resource_in_a_served_group_is_404_status(
    http: httpx.AsyncClient, stored: str, namespace: str
) -> None:
    """Under /api and under a group the server serves, an unknown version or resource is a JSON Status."""
    for url in (
        f"/api/v1/namespaces/{namespace}/doesnotexist",
        "/api/v1/doesnotexist",
        "/api/v9/pods",
        "/apis/apps/v9/deployments",
        "/apis/apps/v9",
        "/apis/apps/v1/nothings",
        f"/apis/apps/v1/namespaces/{namespace}/nothings/x",
    ):
        resp = await http.get(url)
        assert resp.status_code == 404, url
        assert resp.headers["content-type"] == "application/json", url
        assert resp.json() == NOT_FOUND_STATUS, url
    await _still_there(http, stored)


async def test_path_no_group_serves_is_plain_404(http: httpx.AsyncClient, stored: str) -> None:
    """kube-apiserver's HTTP mux answers a path that no API group claims (an unknown group under /apis, an
    unknown top-level path) with a plain-text 404, not a Status, whatever the verb."""
    for method, url in (
        ("GET", "/apis/nosuchgroup.example.com/v1/things"),
        ("GET", "/apis/nosuchgroup.example.com/v1"),
        ("GET", "/apis/nosuchgroup.example.com"),
        ("POST", "/apis/nosuchgroup.example.com/v1/namespaces/default/things"),
        ("GET", "/nonsense"),
    ):
        resp = await http.request(method, url, json={} if method == "POST" else None)
        assert resp.status_code == 404, url
        assert resp.headers["content-type"] == "text/plain; charset=utf-8", url
        assert resp.content == b"404 page not found\n", url
    await _still_there(http, stored)


async def test_wrong_kind_in_body_is_400(http: httpx.AsyncClient, stored: str) -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "wrong"}}
    resp = await http.post(stored, json=body)
    assert resp.status_code == 400
    await _still_there(http, stored)


async def test_invalid_name_is_422(http: httpx.AsyncClient, stored: str) -> None:
    resp = await http.post(stored, json=configmap("Not_Valid"))
    assert resp.status_code == 422
    status = resp.json()
    assert status["reason"] == "Invalid"
    assert status["details"]["causes"][0]["field"] == "metadata.name"
    resp = await http.post(stored, json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})
    assert resp.status_code == 422
    await _still_there(http, stored)


async def test_json_patch_failing_test_is_422_and_changes_nothing(
    http: httpx.AsyncClient, stored: str
) -> None:
    ops = [
        {"op": "replace", "path": "/data/k", "value": "other"},
        {"op": "test", "path": "/data/k", "value": "v"},
    ]
    resp = await http.patch(
        f"{stored}/keep", json=ops, headers={"Content-Type": "application/json-patch+json"}
    )
    assert resp.status_code == 422
    await _still_there(http, stored)


async def test_unsupported_patch_type_is_415(http: httpx.AsyncClient, stored: str) -> None:
    resp = await http.patch(f"{stored}/keep", content=b"{}", headers={"Content-Type": "text/plain"})
    assert resp.status_code == 415
    assert resp.json()["reason"] == "UnsupportedMediaType"
    await _still_there(http, stored)


async def test_bad_continue_token_is_400(http: httpx.AsyncClient, stored: str) -> None:
    resp = await http.get(stored, params={"limit": "1", "continue": "!!!garbage!!!"})
    assert resp.status_code == 400
    await _still_there(http, stored)

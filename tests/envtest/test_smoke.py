"""Smoke tests against a real kube-apiserver + etcd: CRUD, list, watch, watch-list, auth, version."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest

from kube_runtime.testing.envtest import ADMIN_USER, Envtest

from .conftest import kubeconfig_client

pytestmark = [pytest.mark.envtest, pytest.mark.anyio]

CM_PATH = "/api/v1/namespaces/default/configmaps"


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


@asynccontextmanager
async def watch_lines(
    client: httpx.AsyncClient, path: str, params: dict[str, str]
) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
    """Open a watch; yields an iterator of decoded events (raises on a non-200 start)."""
    async with client.stream("GET", path, params={"watch": "true", **params}) as response:
        if response.status_code != 200:
            await response.aread()
            response.raise_for_status()

        async def events() -> AsyncIterator[dict[str, Any]]:
            async for line in response.aiter_lines():
                if line:
                    yield json.loads(line)

        yield events()


async def test_configmap_create_get_list_watch_over_kubeconfig(shared_envtest: Envtest) -> None:
    async with kubeconfig_client(shared_envtest.kubeconfig_path) as client:
        created = (await client.post(CM_PATH, json=configmap("smoke", a="1"))).raise_for_status().json()
        assert created["metadata"]["name"] == "smoke"
        assert created["data"] == {"a": "1"}

        fetched = (await client.get(f"{CM_PATH}/smoke")).raise_for_status().json()
        assert fetched["metadata"]["uid"] == created["metadata"]["uid"]

        listed = (await client.get(CM_PATH)).raise_for_status().json()
        assert listed["kind"] == "ConfigMapList"
        assert "smoke" in [item["metadata"]["name"] for item in listed["items"]]
        list_rv = listed["metadata"]["resourceVersion"]
        assert int(list_rv) >= int(created["metadata"]["resourceVersion"])

        missing = await client.get(f"{CM_PATH}/absent")
        assert missing.status_code == 404
        assert missing.json()["reason"] == "NotFound"

        params = {"resourceVersion": list_rv, "timeoutSeconds": "60", "allowWatchBookmarks": "true"}
        with anyio.fail_after(60):
            async with watch_lines(client, CM_PATH, params) as events:
                merge = {"Content-Type": "application/merge-patch+json"}
                patched = await client.patch(f"{CM_PATH}/smoke", content=b'{"data":{"a":"2"}}', headers=merge)
                patched.raise_for_status()
                (await client.delete(f"{CM_PATH}/smoke")).raise_for_status()
                seen: list[tuple[str, str]] = []
                async for event in events:
                    if event["type"] == "BOOKMARK":
                        continue
                    seen.append((event["type"], event["object"]["metadata"]["name"]))
                    if event["type"] == "MODIFIED":
                        assert event["object"]["data"] == {"a": "2"}
                    if event["type"] == "DELETED":
                        break
        assert seen == [("MODIFIED", "smoke"), ("DELETED", "smoke")]


async def test_watch_list_streams_initial_events_then_bookmark(shared_envtest: Envtest) -> None:
    """sendInitialEvents needs etcd's RequestWatchProgress (etcd >= 3.5.13): the built 3.6 has it."""
    async with shared_envtest.http_client() as client:
        for name in ("wl-a", "wl-b"):
            (await client.post(CM_PATH, json=configmap(name))).raise_for_status()
        params = {
            "sendInitialEvents": "true",
            "resourceVersionMatch": "NotOlderThan",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "60",
        }
        names: list[str] = []
        with anyio.fail_after(60):
            async with watch_lines(client, CM_PATH, params) as events:
                async for event in events:
                    if event["type"] == "BOOKMARK":
                        annotations = event["object"]["metadata"].get("annotations", {})
                        if annotations.get("k8s.io/initial-events-end") == "true":
                            break
                        continue
                    assert event["type"] == "ADDED"
                    names.append(event["object"]["metadata"]["name"])
        assert {"wl-a", "wl-b"} <= set(names)


async def test_version_is_stamped(shared_envtest: Envtest) -> None:
    async with shared_envtest.http_client() as client:
        version = (await client.get("/version")).raise_for_status().json()
    assert version["major"] == "1"
    assert version["gitVersion"].startswith(f"v1.{version['minor']}.")
    assert version["gitTreeState"] == "clean"


async def test_rbac_denies_unbound_user_and_admin_cert_authenticates(shared_envtest: Envtest) -> None:
    async with shared_envtest.http_client(token=shared_envtest.limited_token) as limited:
        denied = await limited.get(CM_PATH)
    assert denied.status_code == 403
    assert denied.json()["reason"] == "Forbidden"

    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    tls = shared_envtest.ssl_context()
    tls.load_cert_chain(shared_envtest.client_cert_path, shared_envtest.client_key_path)
    async with httpx.AsyncClient(base_url=shared_envtest.url, verify=tls) as by_cert:
        response = await by_cert.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", json=review)
    user = response.raise_for_status().json()["status"]["userInfo"]
    assert user["username"] == ADMIN_USER
    assert "system:masters" in user["groups"]


async def test_bad_token_is_unauthorized(shared_envtest: Envtest) -> None:
    async with shared_envtest.http_client(token="not-a-token") as client:
        response = await client.get(CM_PATH)
    assert response.status_code == 401

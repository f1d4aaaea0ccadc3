"""Request helpers shared by the contract tests (plain httpx, no kube_runtime client)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import orjson

__all__ = [
    "CLUSTER_PROVIDED",
    "Crd",
    "configmap",
    "create_crd",
    "delete_crd",
    "names",
    "open_watch",
    "own",
    "read_events",
]

# Objects a real cluster puts into every namespace by itself: kube-controller-manager's root CA publisher
# writes this ConfigMap into each new namespace, asynchronously. The suite leaves such objects out of what
# it compares (and nothing else), so it holds on any cluster, with or without that controller.
CLUSTER_PROVIDED = frozenset({"kube-root-ca.crt"})


def is_cluster_provided(obj: dict[str, Any]) -> bool:
    return (obj.get("metadata") or {}).get("name") in CLUSTER_PROVIDED


def own(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``items`` without the objects the cluster created by itself (order kept)."""
    return [i for i in items if not is_cluster_provided(i)]


def names(items: list[dict[str, Any]]) -> list[str]:
    """Names of the test's own objects in ``items``, in the server's order."""
    return [i["metadata"]["name"] for i in own(items)]


def configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


class WatchReader:
    """Decoded events of one watch response, read line by line."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self, within: float = 10.0) -> dict[str, Any] | None:
        """The next event, or None when the server ended the stream."""
        with anyio.fail_after(within):
            async for line in self._lines:
                if line.strip():
                    event: dict[str, Any] = orjson.loads(line)
                    return event
        return None

    async def take(
        self, count: int, *, skip_bookmarks: bool = True, within: float = 10.0
    ) -> list[dict[str, Any]]:
        """The next ``count`` events, leaving out bookmarks and events of cluster-provided objects."""
        out: list[dict[str, Any]] = []
        while len(out) < count:
            event = await self.next(within)
            if event is None:
                break
            if skip_bookmarks and event["type"] == "BOOKMARK":
                continue
            if is_cluster_provided(event["object"]):
                continue
            out.append(event)
        return out


@asynccontextmanager
async def open_watch(
    http: httpx.AsyncClient, path: str, params: dict[str, str], headers: dict[str, str] | None = None
) -> AsyncIterator[WatchReader]:
    params = {"watch": "true", **params}
    async with http.stream("GET", path, params=params, headers=headers or {}, timeout=None) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        yield WatchReader(response)


async def read_events(http: httpx.AsyncClient, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    """Every event of a watch that the server ends by itself (use timeoutSeconds), except events of
    cluster-provided objects."""
    out: list[dict[str, Any]] = []
    async with open_watch(http, path, params) as reader:
        while (event := await reader.next(within=30)) is not None:
            if not is_cluster_provided(event["object"]):
                out.append(event)
    return out


class Crd:
    """A CustomResourceDefinition made for one test, with a unique group."""

    def __init__(self, group: str, plural: str, kind: str, namespaced: bool) -> None:
        self.group = group
        self.plural = plural
        self.kind = kind
        self.namespaced = namespaced
        self.name = f"{plural}.{group}"
        self.api_version = f"{group}/v1"

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        base = f"/apis/{self.group}/v1"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if sub:
            base += f"/{sub}"
        return base

    def obj(self, name: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": {"name": name},
            "spec": spec or {},
        }


async def create_crd(
    http: httpx.AsyncClient,
    *,
    namespaced: bool = True,
    schema: dict[str, Any] | None = None,
    printer_columns: list[dict[str, Any]] | None = None,
) -> Crd:
    """A new CRD with a unique group, served and established; ``schema`` is its v1
    ``openAPIV3Schema`` (by default an object that keeps every field), ``printer_columns`` its
    ``additionalPrinterColumns``."""
    group = f"t{secrets.token_hex(4)}.contract.kube-runtime.dev"
    crd = Crd(group, "widgets", "Widget", namespaced)
    body = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": crd.name},
        "spec": {
            "group": group,
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "scope": "Namespaced" if namespaced else "Cluster",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": schema
                        or {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                    **({"additionalPrinterColumns": printer_columns} if printer_columns else {}),
                }
            ],
        },
    }
    resp = await http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=body)
    assert resp.status_code == 201, resp.text
    with anyio.fail_after(30):
        while True:
            got = await http.get(f"/apis/{group}/v1")
            if got.status_code == 200 and any(r["name"] == "widgets" for r in got.json()["resources"]):
                listed = await http.get(crd.path())
                if listed.status_code == 200:
                    return crd
            await anyio.sleep(0.05)


async def delete_crd(http: httpx.AsyncClient, crd: Crd) -> None:
    await http.delete(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd.name}")

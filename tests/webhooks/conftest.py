"""Webhook test fixtures: review bodies, an in-process client for a Webhooks app, and the
observability fixtures (fresh registry, in-memory spans) shared with tests/observe."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from kube_runtime.webhooks import Webhooks
from tests.observe.conftest import registry, spans

__all__ = ["admission_body", "conversion_body", "registry", "spans", "widget"]


def widget(name: str = "w1", *, replicas: int = 1, version: str = "v1") -> dict[str, Any]:
    return {
        "apiVersion": f"example.com/{version}",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": "default", "uid": str(uuid.uuid4())},
        "spec": {"replicas": replicas},
    }


def admission_body(
    obj: dict[str, Any] | None,
    *,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    dry_run: bool = False,
    sub_resource: str = "",
    uid: str | None = None,
) -> bytes:
    source = obj or old or {}
    request: dict[str, Any] = {
        "uid": uid or str(uuid.uuid4()),
        "kind": {"group": "example.com", "version": "v1", "kind": "Widget"},
        "resource": {"group": "example.com", "version": "v1", "resource": "widgets"},
        "requestKind": {"group": "example.com", "version": "v1", "kind": "Widget"},
        "requestResource": {"group": "example.com", "version": "v1", "resource": "widgets"},
        "name": source.get("metadata", {}).get("name", ""),
        "namespace": "default",
        "operation": operation,
        "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
        "object": obj,
        "oldObject": old,
        "dryRun": dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    }
    if sub_resource:
        request["subResource"] = request["requestSubResource"] = sub_resource
    return orjson.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})


def conversion_body(objects: list[dict[str, Any]], desired: str, *, uid: str | None = None) -> bytes:
    return orjson.dumps(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "ConversionReview",
            "request": {"uid": uid or str(uuid.uuid4()), "desiredAPIVersion": desired, "objects": objects},
        }
    )


@pytest.fixture
def hooks(registry: CollectorRegistry) -> Webhooks:
    return Webhooks(registry=registry)


@pytest.fixture
async def client(hooks: Webhooks) -> AsyncIterator[httpx.AsyncClient]:
    """Talks to ``hooks.routes()`` in process; routes are read at the first request."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await Starlette(routes=hooks.routes())(scope, receive, send)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://webhooks") as http:
        yield http

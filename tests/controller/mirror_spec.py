"""A small controller for the randomized fault test: every labelled ConfigMap ("parent") owns a
Secret of the same name holding its ``data.content`` (server-side apply, one request a reconcile)."""

from __future__ import annotations

import base64
from typing import Any

from prometheus_client import CollectorRegistry

from kube_runtime.client import Api, ApiResource, Client
from kube_runtime.controller import Action, Controller
from kube_runtime.testing.controller_harness import ClusterState, ControllerSpec, ControllerUnderTest
from kube_runtime.watcher import WatcherConfig

CONFIG_MAP = ApiResource.builtin("ConfigMap")
SECRET = ApiResource.builtin("Secret")
LABEL = "kube-runtime.test/role"


def encode(content: str) -> str:
    return base64.b64encode(content.encode()).decode()


def parent(name: str, content: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {LABEL: "parent"}},
        "data": {"content": content},
    }


async def reconcile(obj: dict[str, Any], client: Client) -> Action:
    meta = obj["metadata"]
    if meta.get("deletionTimestamp"):
        return Action.await_change()
    owner = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
    }
    child = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": meta["name"], "ownerReferences": [owner]},
        "data": {"content": encode((obj.get("data") or {}).get("content", ""))},
    }
    secrets = Api(client, SECRET, meta["namespace"])
    await secrets.patch(meta["name"], child, patch_type="apply", field_manager="mirror", force=True)
    return Action.await_change()


def build(client: Client, config: WatcherConfig) -> ControllerUnderTest:
    parents = Api(client, CONFIG_MAP, "default")
    controller = Controller(
        parents, config.labels(f"{LABEL}=parent"), name="mirror", registry=CollectorRegistry()
    ).owns(Api(client, SECRET, "default"), config)
    return ControllerUnderTest(controller, reconcile, None, client)


def every_parent_has_its_secret(state: ClusterState) -> None:
    """Every live parent controls exactly one Secret named after it, holding its content."""
    for name, obj in state.objects.items():
        if obj["metadata"].get("deletionTimestamp"):
            continue
        secret = state.children.get(name)
        assert secret is not None, f"{name}: no Secret"
        want = encode((obj.get("data") or {}).get("content", ""))
        got = (secret.get("data") or {}).get("content")
        assert got == want, f"{name}: Secret holds {got!r}, parent wants {want!r}"
        owners = [o["uid"] for o in secret["metadata"].get("ownerReferences") or [] if o.get("controller")]
        assert owners == [obj["metadata"]["uid"]], f"{name}: Secret controlled by {owners}"


MIRROR = ControllerSpec(
    resource=CONFIG_MAP,
    build=build,
    make_object=parent,
    content_patch=lambda content: {"data": {"content": content}},
    child_resource=SECRET,
    child_patch=lambda content: {"data": {"content": encode(content)}},
    invariants=[every_parent_has_its_secret],
)


async def observe(obj: dict[str, Any], client: Client) -> Action:
    """Reconciles nothing: the built-in checks (latest version reconciled, no overlap) still apply."""
    return Action.await_change()


def build_observer(client: Client, config: WatcherConfig) -> ControllerUnderTest:
    parents = Api(client, CONFIG_MAP, "default")
    controller = Controller(
        parents, config.labels(f"{LABEL}=parent"), name="observer", registry=CollectorRegistry()
    )
    return ControllerUnderTest(controller, observe, None, client)


#: For schedules with thousands of objects: no writes of its own, so a run costs list and watch only.
OBSERVER = ControllerSpec(
    resource=CONFIG_MAP,
    build=build_observer,
    make_object=parent,
    content_patch=lambda content: {"data": {"content": content}},
)

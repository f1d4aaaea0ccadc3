"""The official ``kubernetes`` client and ``kubernetes_asyncio`` against both servers: same outcomes.

Every scenario runs with both clients (see :mod:`tests.witnesses.official`) against the embedded
server and a real kube-apiserver (see conftest). Bodies are the clients' own serializations: models
are sent without ``kind``/``apiVersion`` when the caller leaves them out, as real programs do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from tests.witnesses.conftest import Crd, Target
from tests.witnesses.official import CLIENTS, Official

CORE = "CoreV1Api"
APPS = "AppsV1Api"
CUSTOM = "CustomObjectsApi"
# kubernetes_asyncio sends a dict body to CustomObjectsApi.patch_* as a JSON patch unless told otherwise
# (both servers then refuse it alike), so the scenarios name the patch type.
MERGE = {"_content_type": "application/merge-patch+json"}


@pytest.fixture(params=CLIENTS)
async def k(request: pytest.FixtureRequest, target: Target) -> AsyncIterator[Official]:
    client = await Official.connect(request.param, target.kubeconfig)
    try:
        yield client
    finally:
        await client.close()


def cm(k: Official, name: str | None = None, *, generate: str | None = None, **labels: str) -> Any:
    """A V1ConfigMap model with neither kind nor apiVersion set."""
    meta = k.client.V1ObjectMeta(name=name, generate_name=generate, labels=labels or None)
    return k.client.V1ConfigMap(metadata=meta, data={"k": "v"})


async def test_create_without_kind_or_api_version(k: Official, namespace: str) -> None:
    created = await k.call(CORE, "create_namespaced_config_map", namespace, cm(k, "plain"))
    assert created.kind == "ConfigMap"
    assert created.api_version == "v1"
    assert created.metadata.uid
    got = await k.call(CORE, "read_namespaced_config_map", "plain", namespace)
    assert got.data == {"k": "v"}


async def test_generate_name(k: Official, namespace: str) -> None:
    first = await k.call(CORE, "create_namespaced_config_map", namespace, cm(k, generate="gen-"))
    second = await k.call(CORE, "create_namespaced_config_map", namespace, cm(k, generate="gen-"))
    assert first.metadata.name.startswith("gen-")
    assert len(first.metadata.name) == len("gen-") + 5
    assert first.metadata.name != second.metadata.name


async def test_optimistic_concurrency_conflict(k: Official, namespace: str) -> None:
    created = await k.call(CORE, "create_namespaced_config_map", namespace, cm(k, "occ"))
    created.data = {"k": "first"}
    await k.call(CORE, "replace_namespaced_config_map", "occ", namespace, created)
    created.data = {"k": "stale"}
    exc = await k.fails(CORE, "replace_namespaced_config_map", "occ", namespace, created)
    assert exc.status == 409
    assert "the object has been modified" in exc.body


async def test_label_selectors(k: Official, namespace: str) -> None:
    for name, tier in (("a", "web"), ("b", "db"), ("c", "cache")):
        await k.call(CORE, "create_namespaced_config_map", namespace, cm(k, name, tier=tier, app="x"))
    await k.call(CORE, "create_namespaced_config_map", namespace, cm(k, "d"))

    async def names(selector: str) -> list[str]:
        listed = await k.call(CORE, "list_namespaced_config_map", namespace, label_selector=selector)
        return sorted(i.metadata.name for i in listed.items)

    assert await names("tier=web") == ["a"]
    assert await names("tier in (web,db)") == ["a", "b"]
    assert await names("app=x,tier!=db") == ["a", "c"]
    assert await names("app,!tier") == []
    assert await names("tier notin (web),app") == ["b", "c"]


async def test_paging_with_limit_and_continue(k: Official, namespace: str) -> None:
    for i in range(5):
        await k.call(CORE, "create_namespaced_config_map", namespace, cm(k, f"p{i}", paged="yes"))
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = await k.call(
            CORE,
            "list_namespaced_config_map",
            namespace,
            label_selector="paged=yes",
            limit=2,
            _continue=token,
        )
        pages += 1
        assert len(page.items) <= 2
        seen += [i.metadata.name for i in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert pages == 3
    assert seen == [f"p{i}" for i in range(5)]


async def test_watch_from_a_resource_version(k: Official, namespace: str) -> None:
    created = await k.call(CORE, "create_namespaced_config_map", namespace, cm(k, "w"))
    rv = created.metadata.resource_version
    await k.call(CORE, "patch_namespaced_config_map", "w", namespace, {"data": {"k": "2"}})
    await k.call(CORE, "delete_namespaced_config_map", "w", namespace)
    events = await k.watch(
        CORE,
        "list_namespaced_config_map",
        namespace,
        resource_version=rv,
        field_selector="metadata.name=w",
        timeout_seconds=10,
        count=2,
    )
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("MODIFIED", "w"), ("DELETED", "w")]
    assert events[0]["object"].data == {"k": "2"}


async def test_delete_with_foreground_propagation(k: Official, namespace: str) -> None:
    owner = await k.call(CORE, "create_namespaced_config_map", namespace, cm(k, "owner"))
    ref = k.client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid, block_owner_deletion=True
    )
    dependent = cm(k, "dependent")
    dependent.metadata.owner_references = [ref]
    await k.call(CORE, "create_namespaced_config_map", namespace, dependent)
    opts = k.client.V1DeleteOptions(propagation_policy="Foreground")
    await k.call(CORE, "delete_namespaced_config_map", "owner", namespace, body=opts)
    # Each list is one consistent snapshot: while the owner is there it is held by foregroundDeletion,
    # and it may only go once its (blocking) dependent has gone.
    with anyio.fail_after(30):
        while True:
            listed = await k.call(CORE, "list_namespaced_config_map", namespace)
            by_name = {i.metadata.name: i for i in listed.items}
            if "owner" in by_name:
                assert by_name["owner"].metadata.deletion_timestamp is not None
                assert "foregroundDeletion" in by_name["owner"].metadata.finalizers
            else:
                assert "dependent" not in by_name, "the owner went before its dependent"
                break
            await anyio.sleep(0.1)


async def test_delete_with_preconditions(k: Official, namespace: str) -> None:
    created = await k.call(CORE, "create_namespaced_config_map", namespace, cm(k, "pre"))
    stale = k.client.V1DeleteOptions(preconditions=k.client.V1Preconditions(resource_version="1"))
    exc = await k.fails(CORE, "delete_namespaced_config_map", "pre", namespace, body=stale)
    assert exc.status == 409
    wrong_uid = k.client.V1DeleteOptions(
        preconditions=k.client.V1Preconditions(uid="00000000-0000-0000-0000-000000000000")
    )
    exc = await k.fails(CORE, "delete_namespaced_config_map", "pre", namespace, body=wrong_uid)
    assert exc.status == 409
    right = k.client.V1DeleteOptions(
        preconditions=k.client.V1Preconditions(
            uid=created.metadata.uid, resource_version=created.metadata.resource_version
        )
    )
    await k.call(CORE, "delete_namespaced_config_map", "pre", namespace, body=right)
    exc = await k.fails(CORE, "read_namespaced_config_map", "pre", namespace)
    assert exc.status == 404


async def test_status_subresource(k: Official, namespace: str, crd: Crd) -> None:
    args = (crd.group, crd.version, namespace, crd.plural)
    created = await k.call(CUSTOM, "create_namespaced_custom_object", *args, crd.obj("s", {"size": 1}))
    assert created["metadata"]["generation"] == 1
    # status through the main resource is ignored; spec through /status is ignored
    through_main = await k.call(
        CUSTOM, "patch_namespaced_custom_object", *args, "s", {"status": {"ready": True}}, **MERGE
    )
    assert "status" not in through_main
    patched = await k.call(
        CUSTOM,
        "patch_namespaced_custom_object_status",
        *args,
        "s",
        {"status": {"ready": True}, "spec": {"size": 9}},
        **MERGE,
    )
    assert patched["status"] == {"ready": True}
    assert patched["spec"] == {"size": 1}
    assert patched["metadata"]["generation"] == 1
    spec_change = await k.call(
        CUSTOM, "patch_namespaced_custom_object", *args, "s", {"spec": {"size": 2}}, **MERGE
    )
    assert spec_change["metadata"]["generation"] == 2
    assert spec_change["status"] == {"ready": True}


async def test_patch_types(k: Official, namespace: str) -> None:
    base = cm(k, "pt", team="a")
    await k.call(CORE, "create_namespaced_config_map", namespace, base)
    # a list body is sent as a JSON patch
    ops = [{"op": "add", "path": "/data/json", "value": "1"}]
    out = await k.call(CORE, "patch_namespaced_config_map", "pt", namespace, ops)
    assert out.data == {"k": "v", "json": "1"}
    # a dict body is sent as a strategic merge patch
    out = await k.call(CORE, "patch_namespaced_config_map", "pt", namespace, {"data": {"smp": "1"}})
    assert out.data == {"k": "v", "json": "1", "smp": "1"}
    out = await k.call(
        CORE,
        "patch_namespaced_config_map",
        "pt",
        namespace,
        {"data": {"k": None}},
        _content_type="application/merge-patch+json",
    )
    assert out.data == {"json": "1", "smp": "1"}
    applied = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "pt"}, "data": {"ssa": "1"}}
    out = await k.call(
        CORE,
        "patch_namespaced_config_map",
        "pt",
        namespace,
        applied,
        field_manager="witness",
        _content_type="application/apply-patch+yaml",
    )
    assert out.data == {"json": "1", "smp": "1", "ssa": "1"}
    assert "witness" in {m.manager for m in out.metadata.managed_fields}
    bad = [{"op": "test", "path": "/data/ssa", "value": "nope"}]
    exc = await k.fails(CORE, "patch_namespaced_config_map", "pt", namespace, bad)
    assert exc.status == 422


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    """A Deployment body without kind or apiVersion."""
    labels = {"app": name}
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": "registry.invalid/none:1"}]},
            },
        },
    }


async def test_scale_subresource_of_a_deployment(k: Official, namespace: str) -> None:
    await k.call(APPS, "create_namespaced_deployment", namespace, deployment("web"))
    scale = await k.call(APPS, "read_namespaced_deployment_scale", "web", namespace)
    assert (scale.kind, scale.api_version) == ("Scale", "autoscaling/v1")
    assert scale.spec.replicas == 1
    assert scale.metadata.name == "web"
    patched = await k.call(
        APPS, "patch_namespaced_deployment_scale", "web", namespace, {"spec": {"replicas": 3}}
    )
    assert patched.spec.replicas == 3
    got = await k.call(APPS, "read_namespaced_deployment", "web", namespace)
    assert got.spec.replicas == 3
    assert got.metadata.generation == 2
    stale = await k.call(APPS, "read_namespaced_deployment_scale", "web", namespace)
    # kube-controller-manager writes the Deployment's status meanwhile: read-modify-write until it sticks
    with anyio.fail_after(20):
        while True:
            scale = await k.call(APPS, "read_namespaced_deployment_scale", "web", namespace)
            scale.spec.replicas = 0
            try:
                replaced = await k.call(APPS, "replace_namespaced_deployment_scale", "web", namespace, scale)
                break
            except k.ApiException as exc:
                if getattr(exc, "status", None) != 409:
                    raise
    assert not replaced.spec.replicas  # 0 is left out of a Scale (omitempty): the client reads None
    stale.spec.replicas = 5
    exc = await k.fails(APPS, "replace_namespaced_deployment_scale", "web", namespace, stale)
    assert exc.status == 409


async def test_scale_subresource_of_a_custom_resource(k: Official, namespace: str, scalable_crd: Crd) -> None:
    crd = scalable_crd
    args = (crd.group, crd.version, namespace, crd.plural)
    await k.call(CUSTOM, "create_namespaced_custom_object", *args, crd.obj("r", {"replicas": 2}))
    await k.call(
        CUSTOM,
        "patch_namespaced_custom_object_status",
        *args,
        "r",
        {"status": {"replicas": 1, "selector": "app=r"}},
        **MERGE,
    )
    scale = await k.call(CUSTOM, "get_namespaced_custom_object_scale", *args, "r")
    assert scale["kind"] == "Scale"
    assert scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 1, "selector": "app=r"}
    # The two clients pick the patch type of *_custom_object_scale differently (kubernetes_asyncio always
    # sends a JSON patch, kubernetes a merge patch): each gets a body of the type it sends.
    if k.is_async:
        out = await k.call(
            CUSTOM,
            "patch_namespaced_custom_object_scale",
            *args,
            "r",
            [{"op": "replace", "path": "/spec/replicas", "value": 4}],
        )
    else:
        out = await k.call(
            CUSTOM, "patch_namespaced_custom_object_scale", *args, "r", {"spec": {"replicas": 4}}, **MERGE
        )
    assert out["spec"] == {"replicas": 4}
    got = await k.call(CUSTOM, "get_namespaced_custom_object", *args, "r")
    assert got["spec"]["replicas"] == 4

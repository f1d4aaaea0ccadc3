"""Behaviour that clients nobody here wrote rely on (found by the witness suite, tests/witnesses/)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.contract.conftest import wait_for
from tests.contract.helpers import create_crd, delete_crd, open_watch
from tests.contract.protowire import envelope, field, map_entry, varint_field

MERGE = {"Content-Type": "application/merge-patch+json"}


async def test_body_without_kind_and_api_version_takes_them_from_the_url(
    http: httpx.AsyncClient, namespace: str
) -> None:
    # The official Python client and client-go typed clients may leave both out.
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    created = await http.post(path, json={"metadata": {"name": "bare"}, "data": {"k": "1"}})
    assert created.status_code == 201, created.text
    assert (created.json()["kind"], created.json()["apiVersion"]) == ("ConfigMap", "v1")
    body = {"metadata": created.json()["metadata"], "data": {"k": "2"}}
    replaced = await http.put(f"{path}/bare", json=body)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["kind"] == "ConfigMap"
    assert replaced.json()["data"] == {"k": "2"}
    only_kind = await http.post(path, json={"kind": "ConfigMap", "metadata": {"name": "kind-only"}})
    assert only_kind.status_code == 201, only_kind.text
    assert only_kind.json()["apiVersion"] == "v1"


async def test_deletion_held_by_a_finalizer_bumps_generation(http: httpx.AsyncClient, namespace: str) -> None:
    crd = await create_crd(http)
    try:
        body = crd.obj("held", {"size": 1})
        body["metadata"]["finalizers"] = ["example.com/hold"]
        created = (await http.post(crd.path(namespace), json=body)).json()
        assert created["metadata"]["generation"] == 1
        resp = await http.delete(crd.path(namespace, "held"))
        assert resp.status_code in (200, 202), resp.text
        held = (await http.get(crd.path(namespace, "held"))).json()
        assert held["metadata"]["deletionTimestamp"]
        assert held["metadata"]["generation"] == 2
        # a second delete of an object already being deleted does not bump it again
        await http.delete(crd.path(namespace, "held"))
        again = (await http.get(crd.path(namespace, "held"))).json()
        assert again["metadata"]["generation"] == 2
        await http.patch(crd.path(namespace, "held"), json={"metadata": {"finalizers": None}}, headers=MERGE)
    finally:
        await delete_crd(http, crd)


def _deployment(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": "registry.invalid/none:1"}]},
            },
        },
    }


async def test_scale_subresource_of_a_deployment(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    assert (await http.post(path, json=_deployment("web"))).status_code == 201
    discovery = (await http.get("/apis/apps/v1")).json()
    scale_entry = next(r for r in discovery["resources"] if r["name"] == "deployments/scale")
    assert (scale_entry["group"], scale_entry["version"], scale_entry["kind"]) == (
        "autoscaling",
        "v1",
        "Scale",
    )
    scale = (await http.get(f"{path}/web/scale")).json()
    assert (scale["kind"], scale["apiVersion"]) == ("Scale", "autoscaling/v1")
    assert scale["metadata"]["name"] == "web"
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"]["selector"] == "app=web"
    patched = await http.patch(f"{path}/web/scale", json={"spec": {"replicas": 5}}, headers=MERGE)
    assert patched.status_code == 200, patched.text
    assert patched.json()["spec"] == {"replicas": 5}
    got = (await http.get(f"{path}/web")).json()
    assert got["spec"]["replicas"] == 5
    assert got["metadata"]["generation"] == 2
    stale = dict(scale, spec={"replicas": 1})
    assert (await http.put(f"{path}/web/scale", json=stale)).status_code == 409
    negative = await http.patch(f"{path}/web/scale", json={"spec": {"replicas": -1}}, headers=MERGE)
    assert negative.status_code == 422
    missing = await http.get(f"{path}/nope/scale")
    assert missing.status_code == 404


async def test_scale_subresource_of_a_custom_resource(http: httpx.AsyncClient, namespace: str) -> None:
    crd = await create_crd(http)
    try:
        crd_path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd.name}"
        current = (await http.get(crd_path)).json()
        current["spec"]["versions"][0]["subresources"]["scale"] = {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
        }
        assert (await http.put(crd_path, json=current)).status_code == 200
        await wait_for(lambda: _has_scale(http, crd.group))
        assert (await http.post(crd.path(namespace), json=crd.obj("r", {"replicas": 3}))).status_code == 201
        scale = (await http.get(crd.path(namespace, "r", "scale"))).json()
        assert scale["spec"] == {"replicas": 3}
        assert scale["status"] == {"replicas": 0}
        replaced = await http.put(crd.path(namespace, "r", "scale"), json=dict(scale, spec={"replicas": 0}))
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["spec"] == {}
        got = (await http.get(crd.path(namespace, "r"))).json()
        assert got["spec"]["replicas"] == 0
    finally:
        await delete_crd(http, crd)


async def _has_scale(http: httpx.AsyncClient, group: str) -> bool:
    resp = await http.get(f"/apis/{group}/v1")
    return resp.status_code == 200 and any(r["name"] == "widgets/scale" for r in resp.json()["resources"])


def protobuf_deployment(name: str, *, replicas: int, extra_spec: bytes = b"") -> bytes:
    """A Deployment as kubectl's typed client encodes it, with the empty fields gogo-protobuf writes."""
    labels = map_entry(11, "app", name)
    meta = field(1, name) + field(2, "") + field(3, "") + varint_field(7, 0) + labels
    container = field(1, "main") + field(2, "registry.invalid/none:1") + field(5, "") + field(8, b"")
    container += field(6, field(1, "http") + varint_field(3, 8080) + field(4, "TCP"))
    pod_spec = field(2, container) + field(3, "") + varint_field(11, 0)
    template = field(1, labels) + field(2, pod_spec)
    selector = field(1, field(1, "app") + field(2, name))
    spec = varint_field(1, replicas) + field(2, selector) + field(3, template) + field(4, b"")
    spec += varint_field(5, 0) + varint_field(7, 0) + extra_spec
    status = varint_field(1, 0) + varint_field(2, 0)
    return envelope("apps/v1", "Deployment", field(1, meta) + field(2, spec) + field(3, status))


async def test_protobuf_deployment_body(http: httpx.AsyncClient, namespace: str) -> None:
    # kubectl create deployment sends this; replicas is a pointer, so 0 is a value and must survive
    resp = await http.post(
        f"/apis/apps/v1/namespaces/{namespace}/deployments",
        content=protobuf_deployment("pb", replicas=0),
        headers={"Content-Type": "application/vnd.kubernetes.protobuf", "Accept": "application/json"},
    )
    assert resp.status_code == 201, resp.text
    got = resp.json()
    assert got["metadata"]["labels"] == {"app": "pb"}
    assert got["spec"]["replicas"] == 0
    assert got["spec"]["selector"] == {"matchLabels": {"app": "pb"}}
    container = got["spec"]["template"]["spec"]["containers"][0]
    assert (container["name"], container["image"]) == ("main", "registry.invalid/none:1")
    assert container["ports"][0]["containerPort"] == 8080
    assert container["ports"][0]["name"] == "http"
    assert "paused" not in got["spec"]


def _new_api_event(name: str, namespace: str, regarding_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "contract.kube-runtime.dev/test",
        "reportingInstance": "contract-1",
        "action": "Check",
        "reason": "Checked",
        "note": "via events.k8s.io",
        "type": "Normal",
        "regarding": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": regarding_name,
            "namespace": namespace,
        },
    }


async def test_events_are_one_store_served_by_both_apis(http: httpx.AsyncClient, namespace: str) -> None:
    core_path = f"/api/v1/namespaces/{namespace}/events"
    new_path = f"/apis/events.k8s.io/v1/namespaces/{namespace}/events"
    created = await http.post(new_path, json=_new_api_event("e1", namespace, "target"))
    assert created.status_code == 201, created.text
    assert created.json()["note"] == "via events.k8s.io"
    as_core = (await http.get(f"{core_path}/e1")).json()
    assert (as_core["apiVersion"], as_core["kind"]) == ("v1", "Event")
    assert as_core["message"] == "via events.k8s.io"
    assert as_core["involvedObject"]["name"] == "target"
    assert as_core["reportingComponent"] == "contract.kube-runtime.dev/test"
    assert as_core["metadata"]["uid"] == created.json()["metadata"]["uid"]
    core_event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e2", "namespace": namespace},
        "involvedObject": {"kind": "ConfigMap", "name": "other", "namespace": namespace},
        "reason": "Old",
        "message": "via core",
        "source": {"component": "contract"},
        "count": 3,
        "type": "Warning",
    }
    assert (await http.post(core_path, json=core_event)).status_code == 201
    as_new = (await http.get(f"{new_path}/e2")).json()
    assert (as_new["apiVersion"], as_new["kind"]) == ("events.k8s.io/v1", "Event")
    assert as_new["note"] == "via core"
    assert as_new["regarding"]["name"] == "other"
    assert as_new["deprecatedCount"] == 3
    assert as_new["deprecatedSource"] == {"component": "contract"}
    listed = (await http.get(new_path)).json()
    assert listed["apiVersion"] == "events.k8s.io/v1"
    assert sorted(i["metadata"]["name"] for i in listed["items"]) == ["e1", "e2"]
    assert sorted(i["note"] for i in listed["items"]) == ["via core", "via events.k8s.io"]
    selected = (await http.get(new_path, params={"fieldSelector": "regarding.name=other"})).json()
    assert [i["metadata"]["name"] for i in selected["items"]] == ["e2"]
    series = {"count": 2, "lastObservedTime": "2026-01-01T00:00:01.000000Z"}
    patched = await http.patch(f"{new_path}/e1", json={"series": series}, headers=MERGE)
    assert patched.status_code == 200, patched.text
    assert patched.json()["series"]["count"] == 2
    assert (await http.get(f"{core_path}/e1")).json()["series"]["count"] == 2


async def test_watch_on_events_k8s_io_sees_core_writes(http: httpx.AsyncClient, namespace: str) -> None:
    new_path = f"/apis/events.k8s.io/v1/namespaces/{namespace}/events"
    rv = (await http.get(new_path)).json()["metadata"]["resourceVersion"]
    async with open_watch(http, new_path, {"resourceVersion": rv}) as watch:
        event = _new_api_event("w1", namespace, "x")
        core = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "w1", "namespace": namespace},
            "involvedObject": event["regarding"],
            "reason": "Core",
            "message": "written through core/v1",
        }
        assert (await http.post(f"/api/v1/namespaces/{namespace}/events", json=core)).status_code == 201
        seen = await watch.take(1)
    assert seen[0]["type"] == "ADDED"
    assert seen[0]["object"]["apiVersion"] == "events.k8s.io/v1"
    assert seen[0]["object"]["note"] == "written through core/v1"

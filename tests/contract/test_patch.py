"""Patches: JSON merge, JSON patch (with test), strategic merge, server-side apply."""

from __future__ import annotations

import datetime
from typing import Any

import anyio
import httpx
import yaml

from tests.contract.helpers import configmap, create_crd, delete_crd

MERGE = {"Content-Type": "application/merge-patch+json"}
JSONPATCH = {"Content-Type": "application/json-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}
APPLY = {"Content-Type": "application/apply-patch+yaml"}


async def test_merge_patch_sets_and_removes(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await http.post(path, json=configmap("m", a="1", b="2"))
    resp = await http.patch(f"{path}/m", json={"data": {"a": "9", "b": None, "c": "3"}}, headers=MERGE)
    assert resp.status_code == 200
    assert resp.json()["data"] == {"a": "9", "c": "3"}


async def test_json_patch_with_test_op(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await http.post(path, json=configmap("j", a="1"))
    ok = [{"op": "test", "path": "/data/a", "value": "1"}, {"op": "replace", "path": "/data/a", "value": "2"}]
    resp = await http.patch(f"{path}/j", json=ok, headers=JSONPATCH)
    assert resp.status_code == 200
    assert resp.json()["data"] == {"a": "2"}
    failing = [
        {"op": "test", "path": "/data/a", "value": "1"},
        {"op": "replace", "path": "/data/a", "value": "3"},
    ]
    resp = await http.patch(f"{path}/j", json=failing, headers=JSONPATCH)
    assert resp.status_code == 422
    assert resp.json()["kind"] == "Status"
    assert resp.json()["reason"] == "Invalid"
    assert (await http.get(f"{path}/j")).json()["data"] == {"a": "2"}


async def test_json_patch_test_null_matches_a_missing_key(http: httpx.AsyncClient, namespace: str) -> None:
    """kube-rs's finalizer helper adds the first finalizer with ``test /metadata/finalizers ==
    null``: the server's JSON patch treats a missing key as null, and a non-null test still fails."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await http.post(path, json=configmap("fin", a="1"))
    add_first = [
        {"op": "test", "path": "/metadata/finalizers", "value": None},
        {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/cleanup"]},
    ]
    resp = await http.patch(f"{path}/fin", json=add_first, headers=JSONPATCH)
    assert resp.status_code == 200, resp.text
    assert resp.json()["metadata"]["finalizers"] == ["example.com/cleanup"]
    resp = await http.patch(f"{path}/fin", json=add_first, headers=JSONPATCH)
    assert resp.status_code == 422
    missing = [{"op": "test", "path": "/data/nope", "value": "x"}]
    assert (await http.patch(f"{path}/fin", json=missing, headers=JSONPATCH)).status_code == 422
    cleanup = [{"op": "remove", "path": "/metadata/finalizers"}]
    assert (await http.patch(f"{path}/fin", json=cleanup, headers=JSONPATCH)).status_code == 200


async def test_patch_with_stale_resource_version_is_409(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    created = (await http.post(path, json=configmap("c"))).json()
    await http.patch(f"{path}/c", json={"data": {"x": "1"}}, headers=MERGE)
    stale = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "data": {"x": "2"}}
    resp = await http.patch(f"{path}/c", json=stale, headers=MERGE)
    assert resp.status_code == 409
    assert resp.json()["reason"] == "Conflict"


def _deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": "main", "image": "busybox:1", "env": [{"name": "A", "value": "1"}]},
                        {"name": "side", "image": "busybox:1"},
                    ]
                },
            },
        },
    }


async def test_strategic_merge_merges_containers_by_name(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    resp = await http.post(path, json=_deployment("smp"))
    assert resp.status_code == 201, resp.text
    assert resp.json()["metadata"]["generation"] == 1
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox:2"}]}}}}
    resp = await http.patch(f"{path}/smp", json=patch, headers=STRATEGIC)
    assert resp.status_code == 200, resp.text
    containers = resp.json()["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("main", "busybox:1"), ("side", "busybox:2")]
    assert containers[0]["env"] == [{"name": "A", "value": "1"}]
    assert resp.json()["metadata"]["generation"] == 2
    delete = {"spec": {"template": {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}}}
    resp = await http.patch(f"{path}/smp", json=delete, headers=STRATEGIC)
    assert [c["name"] for c in resp.json()["spec"]["template"]["spec"]["containers"]] == ["main"]


# (live list, patch list) -> merged list, as kube-apiserver orders a strategic merge.
_SMP_ORDERS = [
    (["a", "b"], ["z", "b"], ["z", "a", "b"]),
    (["a", "b", "c"], ["x", "y"], ["x", "y", "a", "b", "c"]),
    (["a", "b", "c"], ["c", "x", "a"], ["b", "c", "x", "a"]),
    (["a", "b", "c", "d"], ["x", "c"], ["x", "a", "b", "c", "d"]),
    (["a", "b", "c"], ["c", "b", "x"], ["a", "c", "b", "x"]),
    (["a", "b"], ["b", "a"], ["b", "a"]),
]


async def test_strategic_merge_orders_merged_lists(http: httpx.AsyncClient, namespace: str) -> None:
    """A strategic merge of a list with a merge key (containers) or of merged primitives
    (finalizers) puts the patch's items in its order, new items first unless the patch names a live
    item after them, and the other live items in their order before the patch items that followed
    them."""
    deployments = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    configmaps = f"/api/v1/namespaces/{namespace}/configmaps"
    for i, (live, patch, merged) in enumerate(_SMP_ORDERS):
        body = _deployment(f"order-{i}")
        body["spec"]["template"]["spec"]["containers"] = [{"name": n, "image": "busybox:1"} for n in live]
        assert (await http.post(deployments, json=body)).status_code == 201
        containers = [{"name": n, "image": "busybox:2"} for n in patch]
        resp = await http.patch(
            f"{deployments}/order-{i}",
            json={"spec": {"template": {"spec": {"containers": containers}}}},
            headers=STRATEGIC,
        )
        assert resp.status_code == 200, resp.text
        got = [c["name"] for c in resp.json()["spec"]["template"]["spec"]["containers"]]
        assert got == merged, f"containers {live} patched with {patch}"
        held = configmap(f"order-{i}")
        held["metadata"]["finalizers"] = [f"example.com/{n}" for n in live]
        assert (await http.post(configmaps, json=held)).status_code == 201
        finalizers = [f"example.com/{n}" for n in patch]
        resp = await http.patch(
            f"{configmaps}/order-{i}", json={"metadata": {"finalizers": finalizers}}, headers=STRATEGIC
        )
        assert resp.status_code == 200, resp.text
        got = [f.removeprefix("example.com/") for f in resp.json()["metadata"]["finalizers"]]
        assert got == merged, f"finalizers {live} patched with {patch}"
        resp = await http.patch(
            f"{configmaps}/order-{i}", json={"metadata": {"finalizers": None}}, headers=MERGE
        )
        assert resp.status_code == 200, resp.text


async def test_server_side_apply_records_manager_and_detects_conflicts(
    http: httpx.AsyncClient, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps/ssa"
    body = yaml.safe_dump(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1"}}
    )
    resp = await http.patch(path, content=body, headers=APPLY, params={"fieldManager": "alice"})
    assert resp.status_code == 201, resp.text
    managers = {e["manager"]: e for e in resp.json()["metadata"]["managedFields"]}
    assert managers["alice"]["operation"] == "Apply"
    assert "f:a" in managers["alice"]["fieldsV1"]["f:data"]
    other = yaml.safe_dump(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "2"}}
    )
    resp = await http.patch(path, content=other, headers=APPLY, params={"fieldManager": "bob"})
    assert resp.status_code == 409
    assert resp.json()["reason"] == "Conflict"
    resp = await http.patch(
        path, content=other, headers=APPLY, params={"fieldManager": "bob", "force": "true"}
    )
    assert resp.status_code == 200
    assert resp.json()["data"] == {"a": "2"}
    owners = {
        e["manager"] for e in resp.json()["metadata"]["managedFields"] if "f:data" in e.get("fieldsV1", {})
    }
    assert owners == {"bob"}


async def test_apply_removes_fields_the_manager_no_longer_applies(
    http: httpx.AsyncClient, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps/shrink"
    full = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "shrink"},
        "data": {"a": "1", "b": "2"},
    }
    await http.patch(path, content=yaml.safe_dump(full), headers=APPLY, params={"fieldManager": "m"})
    full["data"] = {"a": "1"}
    resp = await http.patch(path, content=yaml.safe_dump(full), headers=APPLY, params={"fieldManager": "m"})
    assert resp.status_code == 200
    assert resp.json()["data"] == {"a": "1"}


async def _next_wall_second(after: str) -> None:
    """Wait until the wall clock reads a later second than the managedFields time ``after``: the
    servers stamp entries to the second, so only then can a moved stamp show."""
    stamp = datetime.datetime.strptime(after, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    later = stamp + datetime.timedelta(seconds=1)
    await anyio.sleep(max(0.0, (later - datetime.datetime.now(datetime.UTC)).total_seconds()) + 0.01)
    assert datetime.datetime.now(datetime.UTC) >= later


def _entry_of(obj: dict[str, Any], manager: str) -> dict[str, Any]:
    return next(e for e in obj["metadata"]["managedFields"] if e["manager"] == manager)


async def test_a_repeated_apply_is_a_no_op_in_a_later_second(http: httpx.AsyncClient, namespace: str) -> None:
    """Applying the same fields again changes nothing, not even the manager's ``time``, however
    much later it comes: no new resourceVersion, so no watch event for a controller's own
    unchanged status write."""
    path = f"/api/v1/namespaces/{namespace}/configmaps/again"
    body = yaml.safe_dump(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "again"}, "data": {"a": "1"}}
    )
    first = (await http.patch(path, content=body, headers=APPLY, params={"fieldManager": "m"})).json()
    await _next_wall_second(_entry_of(first, "m")["time"])
    resp = await http.patch(path, content=body, headers=APPLY, params={"fieldManager": "m"})
    assert resp.status_code == 200, resp.text
    again = resp.json()
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert _entry_of(again, "m")["time"] == _entry_of(first, "m")["time"]


async def test_a_manager_time_moves_when_its_apply_changes_a_value(
    http: httpx.AsyncClient, namespace: str
) -> None:
    """An apply that changes a value moves the manager's ``time`` (a write, new resourceVersion).
    One that only claims a field already holding the applied value is a write too (the field set
    changed) but keeps the ``time``: it moves with the object's values, not with ownership."""
    path = f"/api/v1/namespaces/{namespace}/configmaps/stamp"
    cm: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "stamp"},
        "data": {"a": "1"},
    }

    async def apply(manager: str) -> dict[str, Any]:
        resp = await http.patch(
            path, content=yaml.safe_dump(cm), headers=APPLY, params={"fieldManager": manager}
        )
        assert resp.status_code in (200, 201), resp.text
        body: dict[str, Any] = resp.json()
        return body

    first = await apply("m")
    await _next_wall_second(_entry_of(first, "m")["time"])
    cm["data"] = {"a": "2"}
    value = await apply("m")
    assert value["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    assert _entry_of(value, "m")["time"] > _entry_of(first, "m")["time"]
    cm["data"] = {"b": "3"}
    other = await apply("other")
    await _next_wall_second(_entry_of(value, "m")["time"])
    cm["data"] = {"a": "2", "b": "3"}
    claimed = await apply("m")
    assert claimed["data"] == {"a": "2", "b": "3"}
    assert "f:b" in _entry_of(claimed, "m")["fieldsV1"]["f:data"]
    assert claimed["metadata"]["resourceVersion"] != other["metadata"]["resourceVersion"]
    assert _entry_of(claimed, "m")["time"] == _entry_of(value, "m")["time"]


async def test_an_update_moves_its_manager_time_only_when_it_changes_the_object(
    http: httpx.AsyncClient, namespace: str
) -> None:
    """The same for an ``Update`` entry (a merge patch): a patch that changes nothing keeps the
    ``time`` and the resourceVersion; one that changes a value moves both."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    created = (await http.post(path, json=configmap("upd", a="1"), params={"fieldManager": "u"})).json()
    await _next_wall_second(_entry_of(created, "u")["time"])
    same = await http.patch(
        f"{path}/upd", json={"data": {"a": "1"}}, headers=MERGE, params={"fieldManager": "u"}
    )
    assert same.status_code == 200, same.text
    assert same.json()["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert _entry_of(same.json(), "u")["time"] == _entry_of(created, "u")["time"]
    changed = await http.patch(
        f"{path}/upd", json={"data": {"a": "2"}}, headers=MERGE, params={"fieldManager": "u"}
    )
    assert changed.json()["data"] == {"a": "2"}
    assert _entry_of(changed.json(), "u")["time"] > _entry_of(created, "u")["time"]


async def test_apply_without_field_manager_is_rejected(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps/nofm"
    body = yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nofm"}})
    resp = await http.patch(path, content=body, headers=APPLY)
    assert resp.status_code in (400, 422)
    assert resp.json()["kind"] == "Status"


async def test_an_apply_body_needs_its_kind_and_no_managed_fields(
    http: httpx.AsyncClient, namespace: str
) -> None:
    """Applying an object as it was read back (managedFields included), or a body without
    apiVersion and kind, is refused: a controller doing either fails on a cluster."""
    path = f"/api/v1/namespaces/{namespace}/configmaps/ssa"
    query = "?fieldManager=ctl"
    bare = {"metadata": {"name": "ssa"}, "data": {"k": "v"}}
    resp = await http.patch(path + query, content=yaml.safe_dump(bare), headers=APPLY)
    assert resp.status_code == 400, resp.text
    assert (await http.get(path)).status_code == 404
    body = {"apiVersion": "v1", "kind": "ConfigMap", **bare}
    created = await http.patch(path + query, content=yaml.safe_dump(body), headers=APPLY)
    assert created.status_code == 201, created.text
    read_back = (await http.get(path)).json()
    assert read_back["metadata"]["managedFields"]
    resp = await http.patch(path + query, content=yaml.safe_dump(read_back), headers=APPLY)
    assert resp.status_code == 400, resp.text
    assert "managedFields must be nil" in resp.json()["message"]


async def test_apply_to_the_status_of_a_missing_object_is_404_and_creates_nothing(
    http: httpx.AsyncClient, namespace: str
) -> None:
    """Server-side apply creates objects only through the main resource: a status apply for an
    object deleted meanwhile (a reconcile racing a delete) must not bring it back."""
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "gone"},
        "status": {"observedGeneration": 1},
    }
    resp = await http.patch(
        f"{path}/gone/status",
        content=yaml.safe_dump(body),
        headers=APPLY,
        params={"fieldManager": "ctl", "force": "true"},
    )
    assert resp.status_code == 404, resp.text
    assert resp.json()["reason"] == "NotFound"
    assert (await http.get(f"{path}/gone")).status_code == 404


async def test_an_apply_body_reads_exponent_numbers_as_numbers(
    http: httpx.AsyncClient, namespace: str
) -> None:
    """An apply body is YAML to the server, and ``1e16``, ``1e-7`` and ``5e-324`` (JSON numbers
    without a fraction) are numbers there, not strings."""
    crd = await create_crd(http)
    try:
        text = (
            f'{{"apiVersion": "{crd.api_version}", "kind": "{crd.kind}", "metadata": {{"name": "n"}}, '
            '"spec": {"big": 1e16, "small": 1e-7, "tiny": 5e-324, "plain": 2.5, "signed": -3E+2}}'
        )
        path = crd.path(namespace, "n") + "?fieldManager=ctl"
        resp = await http.patch(path, content=text, headers=APPLY)
        assert resp.status_code == 201, resp.text
        spec = (await http.get(crd.path(namespace, "n"))).json()["spec"]
        assert all(isinstance(value, int | float) for value in spec.values()), spec
        assert spec == {"big": 1e16, "small": 1e-7, "tiny": 5e-324, "plain": 2.5, "signed": -300}
    finally:
        await delete_crd(http, crd)


async def test_an_apply_body_folds_unescaped_line_separators(http: httpx.AsyncClient, namespace: str) -> None:
    """JSON sent as an apply body is read as YAML: an unescaped LINE SEPARATOR is a line break
    there and changes the string, while its JSON escape keeps it (why clients escape it)."""
    path = f"/api/v1/namespaces/{namespace}/configmaps/sep?fieldManager=ctl"
    escaped = (
        r'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "sep"}, "data": {"k": "a \u2028 b"}}'
    )
    unescaped = escaped.replace(r"\u2028", "\u2028")
    resp = await http.patch(path, content=unescaped.encode(), headers=APPLY)
    assert resp.status_code == 201, resp.text
    assert resp.json()["data"]["k"] != "a \u2028 b"
    resp = await http.patch(path, content=escaped.encode(), headers=APPLY)
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["k"] == "a \u2028 b"

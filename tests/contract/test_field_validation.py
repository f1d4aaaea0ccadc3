"""Server-side field validation (the ``fieldValidation`` parameter): Warn headers, Strict errors, Ignore.

Every expectation is what kube-apiserver answers (each test also runs against a real one): the exact
``Warning`` header values, the Status message of a Strict create/update (400) and patch (422), and
server-side apply's 500 for a field its schema does not declare, whatever the parameter says.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.contract.helpers import Crd, create_crd, delete_crd

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "size": {"type": "string"},
                "items": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"a": {"type": "string"}}},
                },
                "labels": {
                    "type": "object",
                    "additionalProperties": {"type": "object", "properties": {"x": {"type": "string"}}},
                },
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        },
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
    },
}
UNKNOWN = ["metadata.bogus", "spec.foo", "spec.items[0].b", "spec.labels.k.y", "topbogus"]
MERGE = {"content-type": "application/merge-patch+json"}
APPLY = {"content-type": "application/apply-patch+yaml"}


@pytest.fixture
async def crd(http: httpx.AsyncClient) -> AsyncIterator[Crd]:
    made = await create_crd(http, schema=SCHEMA)
    yield made
    await delete_crd(http, made)


def _warnings(resp: httpx.Response) -> list[str]:
    return [v for k, v in resp.headers.multi_items() if k.lower() == "warning"]


def _warned(*messages: str) -> list[str]:
    return ["299 - " + json.dumps(m) for m in messages]


def _typo(crd: Crd, name: str) -> dict[str, Any]:
    obj = crd.obj(
        name, {"size": "s", "foo": 1, "items": [{"a": "x", "b": 2}], "labels": {"k": {"x": "1", "y": 2}}}
    )
    obj["spec"]["extra"] = {"kept": 1}  # preserved: not unknown
    obj["metadata"]["bogus"] = 1
    obj["topbogus"] = 2
    return obj


def _failure(code: int, reason: str | None, message: str) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
    out["message"] = message
    if reason:
        out["reason"] = reason
    out["code"] = code
    return out


@pytest.mark.parametrize("directive", ["", "Warn"])
async def test_unknown_fields_warn_by_default_and_are_dropped(
    http: httpx.AsyncClient, namespace: str, crd: Crd, directive: str
) -> None:
    query = f"?fieldValidation={directive}" if directive else ""
    resp = await http.post(crd.path(namespace) + query, json=_typo(crd, "w"))
    assert resp.status_code == 201, resp.text
    assert _warnings(resp) == _warned(*(f'unknown field "{p}"' for p in UNKNOWN))
    stored = resp.json()
    assert "bogus" not in stored["metadata"]
    assert "topbogus" not in stored
    assert stored["spec"] == {
        "size": "s",
        "items": [{"a": "x"}],
        "labels": {"k": {"x": "1"}},
        "extra": {"kept": 1},
    }


async def test_strict_create_is_a_bad_request_naming_every_unknown_field(
    http: httpx.AsyncClient, namespace: str, crd: Crd
) -> None:
    resp = await http.post(crd.path(namespace) + "?fieldValidation=Strict", json=_typo(crd, "s"))
    fields = ", ".join(f'unknown field "{p}"' for p in UNKNOWN)
    message = f'Widget in version "v1" cannot be handled as a Widget: strict decoding error: {fields}'
    assert (resp.status_code, resp.json()) == (400, _failure(400, "BadRequest", message))
    assert (await http.get(crd.path(namespace, "s"))).status_code == 404


async def test_ignore_says_nothing(http: httpx.AsyncClient, namespace: str, crd: Crd) -> None:
    resp = await http.post(crd.path(namespace) + "?fieldValidation=Ignore", json=_typo(crd, "i"))
    assert resp.status_code == 201, resp.text
    assert _warnings(resp) == []
    assert "foo" not in resp.json()["spec"]


async def test_duplicate_fields_of_a_json_body(http: httpx.AsyncClient, namespace: str, crd: Crd) -> None:
    body = (
        f'{{"apiVersion":"{crd.group}/v1","kind":"Widget","metadata":{{"name":"NAME","name":"NAME"}},'
        '"spec":{"size":"a","size":"b"}}'
    )
    headers = {"content-type": "application/json"}
    warn = await http.post(crd.path(namespace), content=body.replace("NAME", "d1"), headers=headers)
    assert warn.status_code == 201, warn.text
    assert _warnings(warn) == _warned('duplicate field "metadata.name"', 'duplicate field "spec.size"')
    assert warn.json()["spec"] == {"size": "b"}  # the last value wins
    strict = await http.post(
        crd.path(namespace) + "?fieldValidation=Strict", content=body.replace("NAME", "d2"), headers=headers
    )
    message = (
        'Widget in version "v1" cannot be handled as a Widget: strict decoding error: '
        'duplicate field "metadata.name", duplicate field "spec.size"'
    )
    assert strict.json() == _failure(400, "BadRequest", message)


async def test_update_and_patches(http: httpx.AsyncClient, namespace: str, crd: Crd) -> None:
    assert (await http.post(crd.path(namespace), json=crd.obj("u", {"size": "s"}))).status_code == 201
    current = (await http.get(crd.path(namespace, "u"))).json()
    current["spec"]["foo"] = 1
    warned = await http.put(crd.path(namespace, "u"), json=current)
    assert (warned.status_code, _warnings(warned)) == (200, _warned('unknown field "spec.foo"'))
    current = warned.json()
    current["spec"]["foo"] = 1
    strict = await http.put(crd.path(namespace, "u") + "?fieldValidation=Strict", json=current)
    message = 'Widget in version "v1" cannot be handled as a Widget: strict decoding error: '
    message += 'unknown field "spec.foo"'
    assert strict.json() == _failure(400, "BadRequest", message)

    patch = b'{"spec":{"foo":1,"bar":2}}'
    merged = await http.patch(crd.path(namespace, "u"), content=patch, headers=MERGE)
    assert merged.status_code == 200
    assert _warnings(merged) == _warned('unknown field "spec.bar"', 'unknown field "spec.foo"')
    status = await http.patch(
        crd.path(namespace, "u", "status"), content=b'{"status":{"foo":1}}', headers=MERGE
    )
    assert (status.status_code, _warnings(status)) == (200, _warned('unknown field "status.foo"'))

    before = (await http.get(crd.path(namespace, "u"))).json()
    refused = await http.patch(
        crd.path(namespace, "u") + "?fieldValidation=Strict", content=patch, headers=MERGE
    )
    assert refused.status_code == 422
    got = refused.json()
    head, tail = (
        ' "" is invalid: patch: Invalid value: ',
        ': strict decoding error: unknown field "spec.bar", unknown field "spec.foo"',
    )
    assert got["message"].startswith(head), got["message"]
    assert got["message"].endswith(tail), got["message"]
    quoted = json.loads(json.loads(got["message"][len(head) : -len(tail)]))
    assert quoted["spec"] == {**before["spec"], "foo": 1, "bar": 2}
    assert quoted["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    cause = {
        "reason": "FieldValueInvalid",
        "message": got["message"][1 + len(' "" is invalid: patch:') :],
        "field": "patch",
    }
    assert (got["reason"], got["details"]) == ("Invalid", {"causes": [cause]})


@pytest.mark.parametrize("directive", ["Ignore", "Strict"])
async def test_server_side_apply_refuses_an_undeclared_field_whatever_the_directive(
    http: httpx.AsyncClient, namespace: str, crd: Crd, directive: str
) -> None:
    manifest = (
        f"apiVersion: {crd.group}/v1\nkind: Widget\nmetadata:\n  name: a\n  namespace: {namespace}\n"
        "spec:\n  size: s\n  foo: 1\n"
    )
    resp = await http.patch(
        crd.path(namespace, "a") + f"?fieldManager=m&fieldValidation={directive}",
        content=manifest.encode(),
        headers=APPLY,
    )
    message = (
        f"failed to create typed patch object ({namespace}/a; {crd.group}/v1, Kind=Widget): "
        ".spec.foo: field not declared in schema"
    )
    assert (resp.status_code, resp.json()) == (500, _failure(500, None, message))


@pytest.mark.parametrize(("method", "options"), [("POST", "CreateOptions"), ("PATCH", "PatchOptions")])
async def test_an_unknown_directive_is_invalid(
    http: httpx.AsyncClient, namespace: str, crd: Crd, method: str, options: str
) -> None:
    path = crd.path(namespace) if method == "POST" else crd.path(namespace, "x")
    content_type = "application/json" if method == "POST" else MERGE["content-type"]
    resp = await http.request(
        method,
        path + "?fieldValidation=strict",
        json=crd.obj("x", {"size": "s"}),
        headers={"content-type": content_type},
    )
    supported = 'supported values: "", "Ignore", "Strict", "Warn"'
    message = f'Unsupported value: "strict": {supported}'
    assert resp.status_code == 422
    assert resp.json()["message"] == f'{options}.meta.k8s.io "" is invalid: fieldValidation: {message}'
    assert resp.json()["details"] == {
        "group": "meta.k8s.io",
        "kind": options,
        "causes": [{"reason": "FieldValueNotSupported", "message": message, "field": "fieldValidation"}],
    }


async def test_built_in_kinds_top_level_and_metadata(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    typo = {"metadata": {"name": "cm", "bogus": 1}, "data": {"a": "b"}, "dta": {"c": "d"}}
    warned = await http.post(path, json=typo)
    assert warned.status_code == 201, warned.text
    assert _warnings(warned) == _warned('unknown field "metadata.bogus"', 'unknown field "dta"')
    assert "dta" not in warned.json()
    assert "bogus" not in warned.json()["metadata"]
    strict = await http.post(path + "?fieldValidation=Strict", json={**typo, "metadata": {"name": "cm2"}})
    message = 'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
    message += 'unknown field "dta"'
    assert strict.json() == _failure(400, "BadRequest", message)
    dup = await http.post(
        path,
        content=b'{"metadata":{"name":"cm3"},"data":{"a":"b","a":"c"}}',
        headers={"content-type": "application/json"},
    )
    assert (dup.status_code, _warnings(dup)) == (201, _warned('duplicate field "data.a"'))

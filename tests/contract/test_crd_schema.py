"""Custom resources follow their CRD's structural schema: validation, pruning, defaulting, ratcheting.

Every expectation here is what kube-apiserver answers (the same test runs against a real one), down to
the Status message and each cause's reason, field and message.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.contract.conftest import wait_for
from tests.contract.helpers import Crd, create_crd, delete_crd

SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["size"],
    "properties": {
        "size": {"type": "string", "enum": ["small", "large"]},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
        "name": {"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[a-z]+$"},
        "ratio": {"type": "number", "maximum": 1.5, "exclusiveMaximum": True},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
        "port": {"x-kubernetes-int-or-string": True},
        "target": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
        "when": {"type": "string", "format": "date-time"},
        "note": {"type": "string", "nullable": True},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "template": {
            "type": "object",
            "x-kubernetes-embedded-resource": True,
            "x-kubernetes-preserve-unknown-fields": True,
        },
        "mode": {"type": "string", "default": "auto"},
        "nested": {
            "type": "object",
            "default": {},
            "properties": {"level": {"type": "integer", "default": 3}, "flag": {"type": "boolean"}},
        },
    },
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": SPEC_SCHEMA,
        "status": {
            "type": "object",
            "properties": {
                "phase": {"type": "string", "enum": ["Ready", "Failed"]},
                "replicas": {"type": "integer"},
            },
        },
    },
}


@pytest.fixture
async def crd(http: httpx.AsyncClient) -> AsyncIterator[Crd]:
    made = await create_crd(http, schema=SCHEMA)
    yield made
    await delete_crd(http, made)


def _status(crd: Crd, name: str, causes: list[tuple[str, str, str]]) -> dict[str, Any]:
    """The 422 Status kube-apiserver answers for one invalid custom resource."""
    text = [f"{field}: {message}" for field, _, message in causes]
    summary = text[0] if len(text) == 1 else "[" + ", ".join(text) + "]"
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'Widget.{crd.group} "{name}" is invalid: {summary}',
        "reason": "Invalid",
        "details": {
            "name": name,
            "group": crd.group,
            "kind": "Widget",
            "causes": [{"reason": r, "message": m, "field": f} for f, r, m in causes],
        },
        "code": 422,
    }


T = "FieldValueTypeInvalid"
I = "FieldValueInvalid"  # noqa: E741
ONE_RULE_BROKEN: list[tuple[dict[str, Any], tuple[str, str, str]]] = [
    (
        {"replicas": "three"},
        (
            "spec.replicas",
            T,
            'Invalid value: "string": spec.replicas in body must be of type integer: "string"',
        ),
    ),
    (
        {"replicas": 2.5},
        (
            "spec.replicas",
            T,
            'Invalid value: "number": spec.replicas in body must be of type integer: "number"',
        ),
    ),
    (
        {"replicas": 0},
        ("spec.replicas", I, "Invalid value: 0: spec.replicas in body should be greater than or equal to 1"),
    ),
    (
        {"replicas": 11},
        ("spec.replicas", I, "Invalid value: 11: spec.replicas in body should be less than or equal to 10"),
    ),
    (
        {"size": "medium"},
        (
            "spec.size",
            "FieldValueNotSupported",
            'Unsupported value: "medium": supported values: "small", "large"',
        ),
    ),
    (
        {"name": "a"},
        ("spec.name", I, 'Invalid value: "a": spec.name in body should be at least 2 chars long'),
    ),
    ({"name": "abcdefg"}, ("spec.name", "FieldValueTooLong", "Too long: may not be more than 5 bytes")),
    ({"name": "AB"}, ("spec.name", I, "Invalid value: \"AB\": spec.name in body should match '^[a-z]+$'")),
    ({"ratio": 1.5}, ("spec.ratio", I, "Invalid value: 1.5: spec.ratio in body should be less than 1.5")),
    ({"tags": []}, ("spec.tags", I, "Invalid value: 0: spec.tags in body should have at least 1 items")),
    ({"tags": ["a", "b", "c"]}, ("spec.tags", "FieldValueTooMany", "Too many: 3: must have at most 2 items")),
    (
        {"tags": [7]},
        (
            "spec.tags[0]",
            T,
            'Invalid value: "integer": spec.tags[0] in body must be of type string: "integer"',
        ),
    ),
    (
        {"tags": ["a", None]},
        ("spec.tags[1]", T, 'Invalid value: "null": spec.tags[1] in body must be of type string: "null"'),
    ),
    (
        {"port": True},
        (
            "spec.port",
            T,
            'Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean"',
        ),
    ),
    (
        {"when": "yesterday"},
        (
            "spec.when",
            T,
            'Invalid value: "yesterday": spec.when in body must be of type date-time: "yesterday"',
        ),
    ),
    (
        {"labels": {"team": 1}},
        (
            "spec.labels.team",
            T,
            'Invalid value: "integer": spec.labels.team in body must be of type string: "integer"',
        ),
    ),
    ({"template": {"kind": "Pod"}}, ("spec.template.apiVersion", "FieldValueRequired", "Required value")),
    (
        {"nested": {"flag": "yes"}},
        (
            "spec.nested.flag",
            T,
            'Invalid value: "string": spec.nested.flag in body must be of type boolean: "string"',
        ),
    ),
]


@pytest.mark.parametrize(
    ("fields", "cause"), ONE_RULE_BROKEN, ids=[c[0] + "-" + c[2][:40] for _, c in ONE_RULE_BROKEN]
)
async def test_create_breaking_one_rule_is_422_with_the_real_cause(
    http: httpx.AsyncClient, namespace: str, crd: Crd, fields: dict[str, Any], cause: tuple[str, str, str]
) -> None:
    resp = await http.post(crd.path(namespace), json=crd.obj("w", {"size": "small", **fields}))
    assert resp.status_code == 422, resp.text
    assert resp.json() == _status(crd, "w", [cause])
    assert (await http.get(crd.path(namespace, "w"))).status_code == 404


async def test_missing_required_field_and_wrong_type_of_a_whole_object(
    http: httpx.AsyncClient, namespace: str, crd: Crd
) -> None:
    resp = await http.post(crd.path(namespace), json=crd.obj("w", {"replicas": 2}))
    assert resp.json() == _status(crd, "w", [("spec.size", "FieldValueRequired", "Required value")])
    body = crd.obj("w")
    body["spec"] = "big"
    resp = await http.post(crd.path(namespace), json=body)
    cause = ("spec", T, 'Invalid value: "string": spec in body must be of type object: "string"')
    assert resp.json() == _status(crd, "w", [cause])


async def test_int_or_string_with_any_of_as_controller_gen_writes_it(
    http: httpx.AsyncClient, namespace: str, crd: Crd
) -> None:
    for good in (8080, "http"):
        resp = await http.post(
            crd.path(namespace), json=crd.obj(f"w{good}", {"size": "small", "target": good})
        )
        assert resp.status_code == 201, resp.text
    resp = await http.post(crd.path(namespace), json=crd.obj("w", {"size": "small", "target": True}))
    assert resp.status_code == 422
    causes = sorted((c["field"], c["reason"], c["message"]) for c in resp.json()["details"]["causes"])
    assert causes == [
        ("<nil>", I, 'Invalid value: "": "spec.target" must validate at least one schema (anyOf)'),
        (
            "spec.target",
            T,
            'Invalid value: "boolean": spec.target in body must be of type integer,string: "boolean"',
        ),
        (
            "spec.target",
            T,
            'Invalid value: "boolean": spec.target in body must be of type integer: "boolean"',
        ),
    ]


async def test_every_broken_rule_is_a_cause(http: httpx.AsyncClient, namespace: str, crd: Crd) -> None:
    """Several causes: the real server lists them in Go's map order, so only the set is compared."""
    resp = await http.post(
        crd.path(namespace), json=crd.obj("w", {"size": "medium", "replicas": "three", "name": "a"})
    )
    assert resp.status_code == 422
    got = resp.json()
    causes = got["details"]["causes"]
    assert sorted(c["field"] for c in causes) == ["spec.name", "spec.replicas", "spec.size"]
    assert got["message"].startswith(f'Widget.{crd.group} "w" is invalid: [')
    for c in causes:
        assert f"{c['field']}: {c['message']}" in got["message"]


async def test_unknown_fields_are_pruned_and_defaults_applied(
    http: httpx.AsyncClient, namespace: str, crd: Crd
) -> None:
    template = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {"any": [1]}}
    body = crd.obj(
        "w",
        {
            "size": "small",
            "bogus": 1,
            "note": None,
            "name": None,
            "mode": None,
            "labels": {"team": "a"},
            "extra": {"deep": {"er": True}},
            "template": template,
            "port": "http",
        },
    )
    body["topLevel"] = "dropped"
    resp = await http.post(crd.path(namespace), json=body)
    assert resp.status_code == 201, resp.text
    expected_spec = {
        "size": "small",
        "replicas": 1,
        "note": None,
        "mode": "auto",
        "nested": {"level": 3},
        "labels": {"team": "a"},
        "extra": {"deep": {"er": True}},
        "template": template,
        "port": "http",
    }
    created = resp.json()
    assert created["spec"] == expected_spec
    assert "topLevel" not in created
    got = (await http.get(crd.path(namespace, "w"))).json()
    assert got["spec"] == expected_spec
    assert "topLevel" not in got


async def test_updates_and_every_patch_type_are_validated_pruned_and_defaulted(
    http: httpx.AsyncClient, namespace: str, crd: Crd
) -> None:
    path = crd.path(namespace, "w")
    resp = await http.post(crd.path(namespace), json=crd.obj("w", {"size": "small", "replicas": 2}))
    assert resp.status_code == 201, resp.text
    cause = (
        "spec.replicas",
        I,
        "Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
    )
    bad = copy.deepcopy(resp.json())
    bad["spec"]["replicas"] = 0
    resp = await http.put(path, json=bad)
    assert resp.json() == _status(crd, "w", [cause])
    for content_type, patch in (
        ("application/merge-patch+json", {"spec": {"replicas": 0}}),
        ("application/json-patch+json", [{"op": "replace", "path": "/spec/replicas", "value": 0}]),
    ):
        resp = await http.patch(path, json=patch, headers={"Content-Type": content_type})
        assert resp.json() == _status(crd, "w", [cause]), content_type
    applied = {
        "apiVersion": crd.api_version,
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"replicas": 0},
    }
    resp = await http.patch(
        path,
        json=applied,
        params={"fieldManager": "tester", "force": "true"},
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    assert resp.json() == _status(crd, "w", [cause])
    assert (await http.get(path)).json()["spec"] == {
        "size": "small",
        "replicas": 2,
        "mode": "auto",
        "nested": {"level": 3},
    }
    resp = await http.patch(
        path,
        json={"spec": {"replicas": None, "mode": "manual", "unknown": 1}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["spec"] == {"size": "small", "replicas": 1, "mode": "manual", "nested": {"level": 3}}


async def test_status_subresource_validates_only_status(
    http: httpx.AsyncClient, namespace: str, crd: Crd
) -> None:
    resp = await http.post(crd.path(namespace), json=crd.obj("w", {"size": "small"}))
    assert resp.status_code == 201, resp.text
    current = resp.json()
    # A bad spec in a status write is ignored (spec is not written there) ...
    body = {**current, "spec": {"size": "bogus"}, "status": {"phase": "Ready", "replicas": 1, "junk": 1}}
    resp = await http.put(crd.path(namespace, "w", "status"), json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["spec"]["size"] == "small"
    assert resp.json()["status"] == {"phase": "Ready", "replicas": 1}
    # ... a bad status is not, and its messages name fields from the status down.
    body = {**resp.json(), "status": {"phase": "Bogus", "replicas": "two"}}
    resp = await http.put(crd.path(namespace, "w", "status"), json=body)
    assert resp.status_code == 422
    causes = sorted((c["field"], c["reason"], c["message"]) for c in resp.json()["details"]["causes"])
    assert causes == [
        (
            "status.phase",
            "FieldValueNotSupported",
            'Unsupported value: "Bogus": supported values: "Ready", "Failed"',
        ),
        ("status.replicas", T, 'Invalid value: "string": replicas in body must be of type integer: "string"'),
    ]
    resp = await http.patch(
        crd.path(namespace, "w", "status"),
        json={"status": {"phase": "Bogus"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert resp.json() == _status(
        crd,
        "w",
        [
            (
                "status.phase",
                "FieldValueNotSupported",
                'Unsupported value: "Bogus": supported values: "Ready", "Failed"',
            )
        ],
    )
    # A bad status sent to the main resource is ignored with the rest of the status.
    got = (await http.get(crd.path(namespace, "w"))).json()
    resp = await http.put(crd.path(namespace, "w"), json={**got, "status": {"phase": "Bogus"}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == {"phase": "Ready", "replicas": 1}


async def _set_schema(http: httpx.AsyncClient, crd: Crd, spec_schema: dict[str, Any]) -> None:
    path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd.name}"
    stored = (await http.get(path)).json()
    schema = copy.deepcopy(SCHEMA)
    schema["properties"]["spec"] = spec_schema
    stored["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = schema
    resp = await http.put(path, json=stored)
    assert resp.status_code == 200, resp.text


async def test_stricter_schema_ratchets_unchanged_values(
    http: httpx.AsyncClient, namespace: str, crd: Crd
) -> None:
    """A value made invalid by a schema change does not block writes that leave it alone."""
    resp = await http.post(crd.path(namespace), json=crd.obj("w", {"size": "small", "replicas": 8}))
    assert resp.status_code == 201, resp.text
    stricter = copy.deepcopy(SPEC_SCHEMA)
    stricter["properties"]["replicas"]["maximum"] = 5
    await _set_schema(http, crd, stricter)

    async def stricter_served() -> bool:  # the real server serves a changed schema a moment later
        probe = crd.obj("probe", {"size": "small", "replicas": 8})
        if (await http.post(crd.path(namespace), json=probe)).status_code == 422:
            return True
        await http.delete(crd.path(namespace, "probe"))
        return False

    await wait_for(stricter_served, within=30)
    resp = await http.patch(
        crd.path(namespace, "w"),
        json={"spec": {"mode": "manual"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["spec"]["replicas"] == 8
    resp = await http.patch(
        crd.path(namespace, "w"),
        json={"spec": {"replicas": 9}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    cause = ("spec.replicas", I, "Invalid value: 9: spec.replicas in body should be less than or equal to 5")
    assert resp.json() == _status(crd, "w", [cause])


async def test_schema_change_defaults_and_prunes_stored_objects_on_read(
    http: httpx.AsyncClient, namespace: str, crd: Crd
) -> None:
    resp = await http.post(crd.path(namespace), json=crd.obj("w", {"size": "small", "name": "abc"}))
    assert resp.status_code == 201, resp.text
    rv = resp.json()["metadata"]["resourceVersion"]
    changed = copy.deepcopy(SPEC_SCHEMA)
    del changed["properties"]["name"]
    changed["properties"]["color"] = {"type": "string", "default": "blue"}
    await _set_schema(http, crd, changed)
    expected = {"size": "small", "replicas": 1, "mode": "auto", "nested": {"level": 3}, "color": "blue"}

    async def read() -> dict[str, Any] | None:
        got: dict[str, Any] = (await http.get(crd.path(namespace, "w"))).json()
        return got if got["spec"] == expected else None

    got = await wait_for(read, within=30)
    assert got["metadata"]["resourceVersion"] == rv

    async def list_specs() -> list[Any] | None:
        # kube-apiserver rebuilds the resource's storage after a schema change; a list can briefly
        # answer with a Status instead of the list, on a loaded machine.
        answer = await http.get(crd.path(namespace))
        return [i["spec"] for i in answer.json()["items"]] if answer.status_code == 200 else None

    assert await wait_for(list_specs, within=30) == [expected]

"""ObjectMeta rules every kind follows: label keys and values, annotation keys and size, finalizer
names, owner references. A controller that writes a 64-character label value must fail against the
embedded server as it fails against a cluster."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.contract.helpers import configmap

OWNER = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "name": "owner",
    "uid": "6f2c1c58-0d5e-4b7e-9b0e-0d1c2e3f4a5b",
}


def with_meta(name: str, **meta: Any) -> dict[str, Any]:
    obj = configmap(name)
    obj["metadata"].update(meta)
    return obj


REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "long-label-value": ({"labels": {"app": "x" * 64}}, "metadata.labels"),
    "label-value-space": ({"labels": {"app": "a b"}}, "metadata.labels"),
    "label-key-two-slashes": ({"labels": {"a/b/c": "v"}}, "metadata.labels"),
    "annotation-key-space": ({"annotations": {"a b": "v"}}, "metadata.annotations"),
    "annotations-too-large": ({"annotations": {"big": "x" * (256 * 1024 + 1)}}, "metadata.annotations"),
    "finalizer-without-domain": ({"finalizers": ["nodomain"]}, "metadata.finalizers[0]"),
    "owner-without-uid": ({"ownerReferences": [{**OWNER, "uid": ""}]}, "metadata.ownerReferences.uid"),
    "two-controllers": (
        {
            "ownerReferences": [
                {**OWNER, "controller": True},
                {**OWNER, "name": "other", "uid": "7f2c1c58-0d5e-4b7e-9b0e-0d1c2e3f4a5b", "controller": True},
            ]
        },
        "metadata.ownerReferences",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
async def test_metadata_a_cluster_refuses_is_refused(
    http: httpx.AsyncClient, namespace: str, case: str
) -> None:
    meta, field = REFUSED[case]
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    resp = await http.post(path, json=with_meta(case, **meta))
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["reason"] == "Invalid"
    assert field in {cause["field"] for cause in body["details"]["causes"]}, body
    assert (await http.get(f"{path}/{case}")).status_code == 404


async def test_metadata_a_cluster_accepts_is_accepted(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    meta = {
        "labels": {"app.kubernetes.io/name": "x" * 63, "empty": "", "Mixed_Case.v-1": "A_b.c-9"},
        "annotations": {"example.com/Note": "any text at all: spaces, / and : too", "UPPER": "v"},
        "finalizers": ["example.com/cleanup", "orphan"],
        "ownerReferences": [OWNER],
    }
    resp = await http.post(path, json=with_meta("fine", **meta))
    assert resp.status_code == 201, resp.text
    patched = await http.patch(
        f"{path}/fine",
        json={"metadata": {"labels": {"app.kubernetes.io/name": "y" * 64}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 422  # updates are checked as creates are
    released = await http.patch(
        f"{path}/fine",
        json={"metadata": {"finalizers": None}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert released.status_code == 200  # nothing left to hold the namespace's deletion


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("a" * 64, 201),  # a name is a DNS subdomain: no 63-character limit on a part
        ("a" * 200 + ".b", 201),
        ("a" * 253, 201),
        ("a" * 254, 422),
        ("a" * 63 + "." + "-b", 422),
    ],
)
async def test_object_names_are_dns_subdomains_of_at_most_253_characters(
    http: httpx.AsyncClient, namespace: str, name: str, status: int
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    resp = await http.post(path, json=configmap(name))
    assert resp.status_code == status, resp.text

"""Secrets as a controller meets them: ``stringData`` comes back merged into ``data`` (and is not
stored), ``data`` must be base64, ``type`` is immutable, a TLS Secret needs its two keys."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest


def secret(name: str, **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, **fields}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def test_string_data_is_merged_into_data_and_not_stored(
    http: httpx.AsyncClient, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/secrets"
    body = secret(
        "s", type="Opaque", data={"user": b64("old"), "keep": b64("k")}, stringData={"user": "admin"}
    )
    created = await http.post(path, json=body)
    assert created.status_code == 201, created.text
    for answer in (created.json(), (await http.get(f"{path}/s")).json()):
        assert "stringData" not in answer
        assert answer["data"] == {"user": b64("admin"), "keep": b64("k")}  # stringData wins
    patched = await http.patch(
        f"{path}/s",
        json={"stringData": {"password": "hunter2"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["password"] == b64("hunter2")
    assert "stringData" not in (await http.get(f"{path}/s")).json()


async def test_data_must_be_base64_and_type_is_immutable(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/secrets"
    bad = await http.post(path, json=secret("bad", type="Opaque", data={"k": "not base64!"}))
    assert bad.status_code == 400
    assert (await http.get(f"{path}/bad")).status_code == 404
    assert (await http.post(path, json=secret("t", type="Opaque", data={"k": b64("v")}))).status_code == 201
    changed = await http.patch(
        f"{path}/t",
        json={"type": "example.com/other"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert changed.status_code == 422
    assert "type" in {cause["field"] for cause in changed.json()["details"]["causes"]}
    tls = await http.post(path, json=secret("tls", type="kubernetes.io/tls", data={"tls.crt": b64("c")}))
    assert tls.status_code == 422
    assert "data[tls.key]" in {cause["field"] for cause in tls.json()["details"]["causes"]}


@pytest.mark.parametrize("kind", ["configmaps", "secrets"])
async def test_data_over_one_mebibyte_is_refused(http: httpx.AsyncClient, namespace: str, kind: str) -> None:
    """The values (a Secret's decoded): at most 1 MiB in all. A controller tested against the
    embedded server used to write such objects without the cluster's 422."""
    path = f"/api/v1/namespaces/{namespace}/{kind}"
    kind_name = "ConfigMap" if kind == "configmaps" else "Secret"

    def body(name: str, size: int) -> dict[str, Any]:
        value = "x" * size
        data = {"k": value} if kind == "configmaps" else {"k": base64.b64encode(value.encode()).decode()}
        return {"apiVersion": "v1", "kind": kind_name, "metadata": {"name": name}, "data": data}

    fits = 1024 * 1024
    assert (await http.post(path, json=body("fits", fits))).status_code == 201
    resp = await http.post(path, json=body("too-big", fits + 1))
    assert resp.status_code == 422, resp.text[:300]
    status = resp.json()
    assert status["reason"] == "Invalid"
    assert "Too long: may not be more than 1048576 bytes" in status["message"]
    causes = status["details"]["causes"]
    assert [cause["reason"] for cause in causes] == ["FieldValueTooLong"]
    assert causes[0]["field"] == ("data" if kind == "secrets" else "[]")

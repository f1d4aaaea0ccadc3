"""Discovery documents and authentication."""

from __future__ import annotations

import httpx

from tests.contract.helpers import create_crd, delete_crd
from tests.contract.kubeconfig import ContractTarget


async def test_core_and_group_discovery(http: httpx.AsyncClient) -> None:
    api = (await http.get("/api")).json()
    assert api["kind"] == "APIVersions"
    assert "v1" in api["versions"]
    core = (await http.get("/api/v1")).json()
    assert core["kind"] == "APIResourceList"
    assert core["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in core["resources"]}
    for plural, kind, namespaced in [
        ("namespaces", "Namespace", False),
        ("configmaps", "ConfigMap", True),
        ("secrets", "Secret", True),
        ("pods", "Pod", True),
        ("services", "Service", True),
        ("events", "Event", True),
    ]:
        assert by_name[plural]["kind"] == kind
        assert by_name[plural]["namespaced"] is namespaced
        assert {"get", "list", "watch", "create", "patch", "delete"} <= set(by_name[plural]["verbs"])
    assert "pods/status" in by_name
    groups = {g["name"]: g for g in (await http.get("/apis")).json()["groups"]}
    for group in ("apps", "coordination.k8s.io", "events.k8s.io", "apiextensions.k8s.io"):
        assert any(v["version"] == "v1" for v in groups[group]["versions"]), group
    apps = (await http.get("/apis/apps/v1")).json()
    names = {r["name"] for r in apps["resources"]}
    assert {"deployments", "deployments/status"} <= names
    leases = (await http.get("/apis/coordination.k8s.io/v1")).json()
    assert any(r["name"] == "leases" and r["kind"] == "Lease" for r in leases["resources"])


async def test_version(http: httpx.AsyncClient) -> None:
    version = (await http.get("/version")).json()
    assert version["major"]
    assert version["minor"]
    assert version["gitVersion"].startswith("v1.")


async def test_crd_appears_in_discovery_and_goes_away(http: httpx.AsyncClient) -> None:
    crd = await create_crd(http, namespaced=False)
    try:
        groups = {g["name"] for g in (await http.get("/apis")).json()["groups"]}
        assert crd.group in groups
        resources = (await http.get(f"/apis/{crd.group}/v1")).json()["resources"]
        widgets = next(r for r in resources if r["name"] == "widgets")
        assert widgets["kind"] == "Widget"
        assert widgets["namespaced"] is False
        assert any(r["name"] == "widgets/status" for r in resources)
    finally:
        await delete_crd(http, crd)


async def test_wrong_token_is_401(contract_target: ContractTarget) -> None:
    kwargs = contract_target.client_kwargs()
    kwargs["headers"] = {"Authorization": "Bearer not-the-token"}
    kwargs.pop("cert", None)
    async with httpx.AsyncClient(**kwargs) as client:
        resp = await client.get("/api/v1/namespaces")
    assert resp.status_code == 401
    status = resp.json()
    assert status["kind"] == "Status"
    assert status["code"] == 401
    assert status["reason"] == "Unauthorized"

"""``matchPolicy: Equivalent`` for a CRD whose versions convert with strategy ``None`` (only
``apiVersion`` changes): a webhook whose rules name only v2 reviews a write at v1 as a v2 object.
Runs against the embedded server and the real kube-apiserver (envtest)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import anyio
import httpx
from prometheus_client import CollectorRegistry

from kube_runtime.webhooks import AdmissionRequest, Verdict, WebhookRule, Webhooks, allow
from kube_runtime.webhooks.certs import SelfSignedCA
from kube_runtime.webhooks.config import WebhookClientConfig, validating_webhook_configuration
from kube_runtime.webhooks.server import WebhookServer
from tests.webhooks.test_apiserver_calls import ADMISSION, create, envtest_kubeconfig, eventually, http

__all__ = ["envtest_kubeconfig", "http"]  # fixtures shared with test_apiserver_calls


def crd(group: str) -> dict[str, Any]:
    schema = {
        "openAPIV3Schema": {
            "type": "object",
            "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
        }
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gizmos.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo", "listKind": "GizmoList"},
            "versions": [
                {"name": "v1", "served": True, "storage": True, "schema": schema},
                {"name": "v2", "served": True, "storage": False, "schema": schema},
            ],
        },
    }


async def test_an_equivalent_version_without_a_converter_is_reviewed_with_its_api_version(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    group = f"g{secrets.token_hex(3)}.example.com"
    seen: list[AdmissionRequest] = []

    async def record(request: AdmissionRequest) -> Verdict:
        seen.append(request)
        return allow()

    hooks = Webhooks(registry=CollectorRegistry())
    hooks.validating("/v2", record, name=f"v2.{group}", rules=[WebhookRule((group,), ("v2",), ("gizmos",))])
    pair = await anyio.to_thread.run_sync(lambda: SelfSignedCA().issue(tmp_path, hosts=["127.0.0.1"]))
    server = WebhookServer(
        hooks, cert_file=pair.cert_file, key_file=pair.key_file, bind_address="127.0.0.1:0"
    )
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    configs = f"{ADMISSION}/validatingwebhookconfigurations"
    path = f"/apis/{group}/v1/namespaces/default/gizmos"
    async with server:
        await create(http, crds, crd(group))
        client = WebhookClientConfig(url=server.url, ca_bundle=pair.ca_pem)
        await create(http, configs, validating_webhook_configuration(hooks, name=group, client=client))
        try:

            async def reviewed() -> bool:
                probe = {
                    "apiVersion": f"{group}/v1",
                    "kind": "Gizmo",
                    "metadata": {"name": "probe"},
                    "spec": {},
                }
                response = await http.post(path, params={"dryRun": "All"}, json=probe)
                return response.status_code == 201 and bool(seen)

            await eventually(reviewed)
            seen.clear()
            body = {"apiVersion": f"{group}/v1", "kind": "Gizmo", "metadata": {"name": "g"}, "spec": {"n": 1}}
            await create(http, path, body)
            (review,) = seen
            assert (review.kind["version"], (review.request_kind or {}).get("version")) == ("v2", "v1")
            assert review.object["apiVersion"] == f"{group}/v2"
            assert review.object["spec"] == {"n": 1}
        finally:
            await http.delete(f"{configs}/{group}")
            await http.delete(f"{crds}/gizmos.{group}")

"""``kubectl get`` of a custom resource prints the CRD's printer columns, and ``kubectl`` reports a
schema violation, the same way against both servers (skipped only without the kubectl binary)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.contract.helpers import create_crd, delete_crd
from tests.contract.kubeconfig import ContractTarget

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.kubectl

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "size": {"type": "string", "enum": ["small", "large"]},
                "replicas": {"type": "integer", "minimum": 1, "default": 1},
            },
        },
        "status": {
            "type": "object",
            "properties": {
                "conditions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"type": {"type": "string"}, "status": {"type": "string"}},
                    },
                }
            },
        },
    },
}
COLUMNS: list[dict[str, Any]] = [
    {"name": "Size", "type": "string", "jsonPath": ".spec.size"},
    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "Wide", "type": "string", "jsonPath": ".spec.size", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


async def _kubectl(target: ContractTarget, cache: Path, *args: str, ok: bool = True) -> str:
    assert KUBECTL is not None, "kubectl is not installed (scripts/test installs it)"
    assert target.kubeconfig_path is not None
    env = {**os.environ, "KUBECONFIG": str(target.kubeconfig_path), "HOME": str(cache)}
    result = await anyio.run_process([KUBECTL, f"--cache-dir={cache}", *args], env=env, check=False)
    out = result.stdout.decode() + result.stderr.decode()
    assert (result.returncode == 0) == ok, out
    return out


def _ages(text: str) -> str:
    return re.sub(r"\b\d+s\b", "<age>", text)


async def test_kubectl_get_shows_printer_columns_and_schema_errors(
    http: httpx.AsyncClient, contract_target: ContractTarget, namespace: str, tmp_path: Path
) -> None:
    crd = await create_crd(http, schema=SCHEMA, printer_columns=COLUMNS)
    try:
        assert (
            await http.post(crd.path(namespace), json=crd.obj("w1", {"size": "large", "replicas": 3}))
        ).status_code == 201
        assert (await http.post(crd.path(namespace), json=crd.obj("w2"))).status_code == 201
        resp = await http.patch(
            crd.path(namespace, "w1", "status"),
            json={"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert resp.status_code == 200, resp.text
        out = await _kubectl(contract_target, tmp_path, "get", f"widgets.{crd.group}", "-n", namespace)
        assert _ages(out) == (
            "NAME   SIZE    REPLICAS   READY   AGE\n"
            "w1     large   3          True    <age>\n"
            "w2             1                  <age>\n"
        )
        out = await _kubectl(
            contract_target, tmp_path, "get", f"widgets.{crd.group}", "-n", namespace, "-o", "wide"
        )
        assert _ages(out).splitlines()[0] == "NAME   SIZE    REPLICAS   READY   WIDE    AGE"
        bad = tmp_path / "bad.yaml"
        bad.write_text(
            f"apiVersion: {crd.api_version}\nkind: Widget\nmetadata: {{name: w3, namespace: {namespace}}}\n"
            "spec: {size: medium, replicas: 0}\n"
        )
        out = await _kubectl(contract_target, tmp_path, "create", "-f", str(bad), ok=False)
        assert 'The Widget "w3" is invalid: ' in out
        assert 'spec.size: Unsupported value: "medium": supported values: "small", "large"' in out
        assert (
            "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"
            in out
        )
    finally:
        await delete_crd(http, crd)

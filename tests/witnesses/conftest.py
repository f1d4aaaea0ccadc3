"""Fixtures of the witness suite: clients nobody here wrote, run against both servers.

``target`` is parametrized over the embedded server (the ``python -m kube_runtime.testing serve``
CLI in a child process, so synchronous clients, kubectl and operator processes reach it like any
cluster) and a real kube-apiserver + etcd + kube-controller-manager started from the envtest binaries
(scripts/build-envtest.sh). Both are started once per package. Nothing here is skipped: when the
envtest binaries are missing the real-server tests fail, naming them, because a witness that cannot
run proves nothing.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from kube_runtime.testing.envtest import EnvtestBinaries, ThreadedEnvtest
from tests.contract.kubeconfig import read_kubeconfig

__all__ = ["Target"]


@dataclass(frozen=True)
class Target:
    """One server under test: its name (``embedded`` or ``envtest``) and a kubeconfig file for it."""

    name: str
    kubeconfig: Path

    def http(self) -> httpx.Client:
        """A plain synchronous httpx client for setup and for checking what a client did."""
        return httpx.Client(**read_kubeconfig(self.kubeconfig, self.name).client_kwargs(), timeout=30)


@pytest.fixture(scope="package")
def embedded_kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("embedded") / "kubeconfig"
    cmd = [sys.executable, "-m", "kube_runtime.testing", "serve", "--port", "0", "--kubeconfig", str(path)]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(b"serving https://127.0.0.1:"), line
        yield path
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture(scope="package")
def real_kubeconfig() -> Iterator[Path]:
    # EnvtestBinaries.locate raises (naming what is missing) instead of skipping.
    with ThreadedEnvtest(EnvtestBinaries.locate(controller_manager=True), controller_manager=True) as hosted:
        yield hosted.env.kubeconfig_path


@pytest.fixture(params=["embedded", pytest.param("envtest", marks=pytest.mark.envtest)])
def target(request: pytest.FixtureRequest) -> Target:
    fixture = "embedded_kubeconfig" if request.param == "embedded" else "real_kubeconfig"
    return Target(request.param, request.getfixturevalue(fixture))


@pytest.fixture
def namespace(target: Target) -> Iterator[str]:
    """A fresh namespace, deleted (without waiting) after the test."""
    name = f"witness-{secrets.token_hex(4)}"
    with target.http() as http:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        resp = http.post("/api/v1/namespaces", json=body)
        assert resp.status_code == 201, resp.text
        yield name
        http.delete(f"/api/v1/namespaces/{name}")


@dataclass(frozen=True)
class Crd:
    """A namespaced CRD with a status subresource and a unique group, served before the test starts."""

    group: str
    plural: str = "widgets"
    kind: str = "Widget"
    version: str = "v1"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    def obj(self, name: str, spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": {"name": name, **meta},
            "spec": spec or {},
        }


def crd_body(group: str, *, scale: bool = False, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    subresources: dict[str, Any] = {"status": {}}
    if scale:
        subresources["scale"] = {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": subresources,
                    "schema": {
                        "openAPIV3Schema": schema
                        or {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


def served_crd(target: Target, *, scale: bool = False, schema: dict[str, Any] | None = None) -> Iterator[Crd]:
    """Create a CRD (``schema``: its openAPIV3Schema, by default keeping every field), wait until its
    resource is listed by discovery and listable, delete it after."""
    crd = Crd(f"t{secrets.token_hex(4)}.witness.kube-runtime.dev")
    with target.http() as http:
        resp = http.post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            json=crd_body(crd.group, scale=scale, schema=schema),
        )
        assert resp.status_code == 201, resp.text
        deadline = time.monotonic() + 30
        while True:
            got = http.get(f"/apis/{crd.group}/v1")
            discovered = got.status_code == 200 and any(
                r["name"] == "widgets" for r in got.json()["resources"]
            )
            if discovered and http.get(f"/apis/{crd.group}/v1/widgets").status_code == 200:
                break
            assert time.monotonic() < deadline, "the CRD was not served within 30s"
            time.sleep(0.05)
        yield crd
        http.delete(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{crd.group}")


@pytest.fixture
def crd(target: Target) -> Iterator[Crd]:
    yield from served_crd(target)


@pytest.fixture
def scalable_crd(target: Target) -> Iterator[Crd]:
    yield from served_crd(target, scale=True)

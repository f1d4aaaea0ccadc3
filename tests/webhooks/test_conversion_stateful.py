"""A hypothesis state machine writes a two-version custom resource on the embedded API server at
either version (creates, replaces, merge patches of the spec and of labels, deletes) while the CRD
converts through our conversion webhook.

After every step, each object reads the same at both versions (converted shapes of one state, one
resourceVersion: converting on read or before a write changes no version), lists agree with gets,
and the state equals a model of the writes: a write at one version is never applied to the other
version's fields, whichever version the object was last written at.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from prometheus_client import CollectorRegistry

from kube_runtime.testing import ApiServer
from kube_runtime.webhooks import Webhooks
from kube_runtime.webhooks.certs import SelfSignedCA
from kube_runtime.webhooks.config import WebhookClientConfig, with_conversion
from kube_runtime.webhooks.server import WebhookServer
from tests.contract.kubeconfig import read_kubeconfig
from tests.webhooks.test_apiserver_calls import convert, crd_manifest

GROUP = "stateful.example.com"
VERSIONS = st.sampled_from(["v1", "v2"])
NAMES = st.sampled_from(["a", "b", "c"])
REPLICAS = st.integers(min_value=0, max_value=9)
_namespaces = itertools.count()


@dataclass
class Harness:
    """An embedded API server and our conversion webhook on a loop in a helper thread."""

    portal: BlockingPortal
    http: httpx.AsyncClient
    registry: CollectorRegistry


@asynccontextmanager
async def _served(directory: str) -> AsyncIterator[tuple[httpx.AsyncClient, CollectorRegistry]]:
    registry = CollectorRegistry()
    hooks = Webhooks(registry=registry)
    hooks.converter("/convert", convert, crd=f"widgets.{GROUP}")
    pair = SelfSignedCA().issue(directory, hosts=["127.0.0.1"])
    webhook_server = WebhookServer(
        hooks, cert_file=pair.cert_file, key_file=pair.key_file, bind_address="127.0.0.1:0", registry=registry
    )
    async with ApiServer(create_client=False) as server, webhook_server:
        target = read_kubeconfig(server.kubeconfig_path, "embedded")
        async with httpx.AsyncClient(**target.client_kwargs(), timeout=30) as http:
            manifest = with_conversion(
                crd_manifest(GROUP),
                hooks,
                client=WebhookClientConfig(url=webhook_server.url, ca_bundle=pair.ca_pem),
            )
            created = await http.post(
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=manifest
            )
            assert created.status_code == 201, created.text
            yield http, registry


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    with (
        tempfile.TemporaryDirectory() as directory,
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(_served(directory)) as (http, registry),
    ):
        yield Harness(portal, http, registry)


def spec_at(version: str, replicas: int) -> dict[str, Any]:
    return {"replicas": replicas} if version == "v1" else {"size": {"count": replicas}}


class ConversionMachine(RuleBasedStateMachine):
    harness: Harness

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, tuple[int, str]] = {}  # name -> (replicas, label "tag")
        self.rvs: dict[str, int] = {}  # name -> resourceVersion of its last write

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.harness.portal.call(lambda: self.harness.http.request(method, path, **kwargs))

    def path(self, version: str, name: str = "") -> str:
        base = f"/apis/{GROUP}/{version}/namespaces/{self.namespace}/widgets"
        return f"{base}/{name}" if name else base

    def wrote(self, response: httpx.Response, changed: bool, code: int = 200) -> dict[str, Any]:
        """The written object; its resourceVersion moved on exactly when the write changed it."""
        assert response.status_code == code, response.text
        body: dict[str, Any] = response.json()
        name, rv = body["metadata"]["name"], int(body["metadata"]["resourceVersion"])
        before = self.rvs.get(name, 0)
        assert (rv > before) if changed else (rv == before), (name, before, rv, changed)
        self.rvs[name] = rv
        return body

    @initialize()
    def namespace_for_this_example(self) -> None:
        self.namespace = f"conv-{next(_namespaces)}"
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
        assert self.request("POST", "/api/v1/namespaces", json=ns).status_code == 201

    @precondition(lambda self: len(self.model) < 3)
    @rule(name=NAMES, version=VERSIONS, replicas=REPLICAS)
    def create(self, name: str, version: str, replicas: int) -> None:
        body = {
            "apiVersion": f"{GROUP}/{version}",
            "kind": "Widget",
            "metadata": {"name": name, "labels": {"tag": "new"}},
            "spec": spec_at(version, replicas),
        }
        response = self.request("POST", self.path(version), json=body)
        if name in self.model:
            assert response.status_code == 409, response.text
            return
        created = self.wrote(response, True, 201)
        assert created["spec"] == spec_at(version, replicas)
        self.model[name] = (replicas, "new")

    @precondition(lambda self: bool(self.model))
    @rule(name=NAMES, version=VERSIONS, replicas=REPLICAS)
    def replace(self, name: str, version: str, replicas: int) -> None:
        if name not in self.model:
            return
        current = self.request("GET", self.path(version, name)).json()
        current["spec"] = spec_at(version, replicas)
        changed = replicas != self.model[name][0]
        self.wrote(self.request("PUT", self.path(version, name), json=current), changed)
        self.model[name] = (replicas, self.model[name][1])

    @precondition(lambda self: bool(self.model))
    @rule(name=NAMES, version=VERSIONS, replicas=REPLICAS)
    def patch_spec(self, name: str, version: str, replicas: int) -> None:
        if name not in self.model:
            return
        merge = {"content-type": "application/merge-patch+json"}
        patch = {"spec": spec_at(version, replicas)}
        changed = replicas != self.model[name][0]
        self.wrote(self.request("PATCH", self.path(version, name), json=patch, headers=merge), changed)
        self.model[name] = (replicas, self.model[name][1])

    @precondition(lambda self: bool(self.model))
    @rule(name=NAMES, version=VERSIONS, tag=st.sampled_from(["x", "y"]))
    def patch_label(self, name: str, version: str, tag: str) -> None:
        if name not in self.model:
            return
        merge = {"content-type": "application/merge-patch+json"}
        patch = {"metadata": {"labels": {"tag": tag}}}
        response = self.request("PATCH", self.path(version, name), json=patch, headers=merge)
        patched = self.wrote(response, tag != self.model[name][1])
        assert patched["spec"] == spec_at(version, self.model[name][0])  # the spec is untouched
        self.model[name] = (self.model[name][0], tag)

    @precondition(lambda self: bool(self.model))
    @rule(name=NAMES, version=VERSIONS)
    def delete(self, name: str, version: str) -> None:
        response = self.request("DELETE", self.path(version, name))
        if name not in self.model:
            assert response.status_code == 404, response.text
            return
        assert response.status_code == 200, response.text
        del self.model[name]
        del self.rvs[name]

    @invariant()
    def both_versions_read_the_modelled_state(self) -> None:
        if not hasattr(self, "namespace"):
            return
        versions: dict[str, str] = {}
        for version in ("v1", "v2"):
            listed = self.request("GET", self.path(version)).json()
            got = {
                item["metadata"]["name"]: (
                    item["apiVersion"],
                    item["spec"],
                    item["metadata"]["labels"]["tag"],
                )
                for item in listed["items"]
            }
            assert got == {
                name: (f"{GROUP}/{version}", spec_at(version, replicas), tag)
                for name, (replicas, tag) in self.model.items()
            }, version
            for name in self.model:
                one = self.request("GET", self.path(version, name)).json()
                assert (one["apiVersion"], one["spec"]) == (f"{GROUP}/{version}", got[name][1])
                rv = one["metadata"]["resourceVersion"]
                assert versions.setdefault(name, rv) == rv, "reading at another version changed the object"


@pytest.mark.timeout(900)
def test_writes_at_either_version_keep_both_versions_consistent(harness: Harness) -> None:
    ConversionMachine.harness = harness
    run = ConversionMachine.TestCase
    run.settings = settings(
        max_examples=20,
        stateful_step_count=15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    run().runTest()
    converted = harness.registry.get_sample_value(
        "kube_runtime_webhook_admission_results_total", {"webhook": "/convert", "result": "converted"}
    )
    assert converted is not None
    assert converted > 0

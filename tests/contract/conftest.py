"""Fixtures of the contract suite: the protocol behaviour any Kubernetes API server must show.

``contract_target`` is parametrized over the servers to check: always the embedded server, plus a
real kube-apiserver when ``KUBE_RUNTIME_CONTRACT_KUBECONFIG`` names its kubeconfig. Tests use only
plain httpx and assert behaviour both servers share; embedded-only features live in tests/testing.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

from kube_runtime.testing import ApiServer
from tests.contract.kubeconfig import ContractTarget, read_kubeconfig

ENV = "KUBE_RUNTIME_CONTRACT_KUBECONFIG"
_TARGETS = ["embedded"] + (["kubeconfig"] if os.environ.get(ENV) else [])


@pytest.fixture(params=_TARGETS)
async def contract_target(
    request: pytest.FixtureRequest, anyio_backend: Any
) -> AsyncIterator[ContractTarget]:
    if request.param == "embedded":
        async with ApiServer(create_client=False) as server:
            target = read_kubeconfig(server.kubeconfig_path, "embedded")
            target.embedded = server
            yield target
    else:
        yield read_kubeconfig(os.environ[ENV], "kubeconfig")


@pytest.fixture
async def http(contract_target: ContractTarget) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(**contract_target.client_kwargs(), timeout=30) as client:
        yield client


@pytest.fixture
async def namespace(http: httpx.AsyncClient) -> AsyncIterator[str]:
    """A fresh namespace, deleted after the test."""
    name = f"contract-{secrets.token_hex(4)}"
    resp = await http.post(
        "/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )
    assert resp.status_code == 201, resp.text
    yield name
    await http.delete(f"/api/v1/namespaces/{name}")


async def wait_for(predicate: Any, *, within: float = 20.0) -> Any:
    """Poll an async predicate until it returns a truthy value (for asynchronous server work such as GC)."""
    with anyio.fail_after(within):
        while True:
            value = await predicate()
            if value:
                return value
            await anyio.sleep(0.05)

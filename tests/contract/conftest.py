"""Fixtures of the contract suite: the protocol behaviour any Kubernetes API server must show.

``contract_target`` is parametrized over the servers to check: always the embedded server, plus a
real one: the cluster named by ``KUBE_RUNTIME_CONTRACT_KUBECONFIG`` when that is set, else a real
kube-apiserver + etcd + kube-controller-manager started once for the suite from the envtest
binaries (that parameter is skipped, naming the missing binaries, when they are not built). Tests use
only plain httpx and assert behaviour both servers share; embedded-only features live in tests/testing.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from kube_runtime.testing import ApiServer
from kube_runtime.testing.envtest import Envtest, ThreadedEnvtest, locate_or_skip
from tests.contract.kubeconfig import ContractTarget, read_kubeconfig

ENV = "KUBE_RUNTIME_CONTRACT_KUBECONFIG"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
_REAL_TARGET = "kubeconfig" if os.environ.get(ENV) else pytest.param("envtest", marks=pytest.mark.envtest)
_TARGETS = ["embedded", _REAL_TARGET]


async def wait_for(predicate: Any, *, within: float = 20.0) -> Any:
    """Poll an async predicate until it returns a truthy value (for asynchronous server work such as GC)."""
    with anyio.fail_after(within):
        while True:
            value = await predicate()
            if value:
                return value
            await anyio.sleep(0.05)


async def _root_ca_published(env: Envtest) -> None:
    """Wait until kube-controller-manager has published the root CA ConfigMap into ``default``.

    The ``namespace`` fixture takes its presence there as the sign that the cluster publishes it, so it
    must be there before the first test runs.
    """
    async with env.http_client(timeout=10) as http:

        async def published() -> bool:
            resp = await http.get(f"/api/v1/namespaces/default/configmaps/{ROOT_CA_CONFIGMAP}")
            return resp.status_code == 200

        await wait_for(published, within=60)


@pytest.fixture(scope="package")
def envtest_kubeconfig() -> Iterator[Path]:
    """Kubeconfig of a real control plane shared by the whole contract suite (stopped once it is done),
    with every kube-controller-manager controller (so namespaces get their root CA ConfigMap, as on
    any cluster)."""
    with ThreadedEnvtest(locate_or_skip(controller_manager=True), controller_manager=True) as hosted:
        hosted.call(_root_ca_published, hosted.env)
        yield hosted.env.kubeconfig_path


@pytest.fixture(params=_TARGETS)
async def contract_target(
    request: pytest.FixtureRequest, anyio_backend: Any
) -> AsyncIterator[ContractTarget]:
    if request.param == "embedded":
        async with ApiServer(create_client=False) as server:
            target = read_kubeconfig(server.kubeconfig_path, "embedded")
            target.embedded = server
            yield target
    elif request.param == "envtest":
        yield read_kubeconfig(request.getfixturevalue("envtest_kubeconfig"), "envtest")
    else:
        yield read_kubeconfig(os.environ[ENV], "kubeconfig")


@pytest.fixture
async def http(contract_target: ContractTarget) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(**contract_target.client_kwargs(), timeout=30) as client:
        yield client


@pytest.fixture
async def namespace(http: httpx.AsyncClient) -> AsyncIterator[str]:
    """A fresh namespace, deleted after the test.

    On a cluster that publishes the root CA ConfigMap into every namespace (it is in ``default``), the
    fixture waits until it is in the new one as well, so it is there from the test's first request (the
    tests leave it out of what they compare, see ``helpers.CLUSTER_PROVIDED``).
    """
    name = f"contract-{secrets.token_hex(4)}"
    resp = await http.post(
        "/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )
    assert resp.status_code == 201, resp.text
    published = await http.get(f"/api/v1/namespaces/default/configmaps/{ROOT_CA_CONFIGMAP}")
    if published.status_code == 200:

        async def settled() -> bool:
            got = await http.get(f"/api/v1/namespaces/{name}/configmaps/{ROOT_CA_CONFIGMAP}")
            return got.status_code == 200

        await wait_for(settled, within=30)
    yield name
    await http.delete(f"/api/v1/namespaces/{name}")

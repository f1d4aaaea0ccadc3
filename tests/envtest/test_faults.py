"""Fault controls: restarting kube-apiserver and etcd, and compacting etcd history (410 Gone)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest

from kube_runtime.testing.envtest import Envtest, EnvtestBinaries

pytestmark = [pytest.mark.envtest, pytest.mark.anyio]

CM_PATH = "/api/v1/namespaces/default/configmaps"


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


async def resumed_watch_outcome(client: httpx.AsyncClient, resource_version: str) -> tuple[int, Any]:
    """(HTTP status, first event) of a watch resumed at ``resource_version``."""
    params = {"watch": "true", "resourceVersion": resource_version, "timeoutSeconds": "30"}
    with anyio.fail_after(60):
        async with client.stream("GET", CM_PATH, params=params) as response:
            if response.status_code != 200:
                return response.status_code, json.loads(await response.aread())
            async for line in response.aiter_lines():
                if line:
                    return 200, json.loads(line)
    return 200, None


def is_gone(outcome: tuple[int, Any]) -> bool:
    """A real kube-apiserver answers 200 and then sends one ERROR event carrying a 410 Expired Status."""
    status, body = outcome
    return bool(
        status == 200
        and body
        and body.get("type") == "ERROR"
        and body["object"].get("code") == 410
        and body["object"].get("reason") == "Expired"
    )


async def write_history(client: httpx.AsyncClient, name: str, updates: int) -> str:
    """Create ``name`` and update it ``updates`` times; returns the first resourceVersion."""
    created = (await client.post(CM_PATH, json=configmap(name, n="0"))).raise_for_status().json()
    for n in range(1, updates + 1):
        body = json.dumps({"data": {"n": str(n)}}).encode()
        headers = {"Content-Type": "application/merge-patch+json"}
        (await client.patch(f"{CM_PATH}/{name}", content=body, headers=headers)).raise_for_status()
    return str(created["metadata"]["resourceVersion"])


async def test_restart_apiserver_comes_back_on_same_url(envtest: Envtest) -> None:
    url, first_pid = envtest.url, envtest.pids["kube-apiserver"]
    async with envtest.http_client() as client:
        (await client.post(CM_PATH, json=configmap("survivor", k="v"))).raise_for_status()
        params = {"watch": "true", "timeoutSeconds": "120"}
        async with client.stream("GET", CM_PATH, params=params) as watch:
            assert watch.status_code == 200
            await envtest.stop_apiserver()
            # The open watch ends (cleanly or broken) when its server goes away.
            with anyio.fail_after(30):
                try:
                    async for _ in watch.aiter_lines():
                        pass
                except httpx.TransportError:
                    pass
        with pytest.raises(httpx.ConnectError):
            await client.get("/readyz")
        await envtest.start_apiserver()
        assert envtest.url == url
        assert envtest.pids["kube-apiserver"] != first_pid
        survivor = (await client.get(f"{CM_PATH}/survivor")).raise_for_status().json()
    assert survivor["data"] == {"k": "v"}


async def test_etcd_crash_keeps_data(envtest: Envtest) -> None:
    async with envtest.http_client() as client:
        (await client.post(CM_PATH, json=configmap("durable"))).raise_for_status()
        await envtest.stop_etcd(kill=True)
        # Without etcd a write cannot commit: the server gives up at the request's own timeout.
        failed = await client.post(f"{CM_PATH}?timeout=3s", json=configmap("while-down"), timeout=60)
        assert failed.status_code >= 500, failed.text
        await envtest.start_etcd()
        durable = await client.get(f"{CM_PATH}/durable")
        assert durable.status_code == 200
        (await client.post(CM_PATH, json=configmap("after-restart"))).raise_for_status()


async def test_compaction_then_apiserver_restart_makes_resumed_watch_gone(envtest: Envtest) -> None:
    async with envtest.http_client() as client:
        old_rv = await write_history(client, "compacted", updates=3)
        assert not is_gone(await resumed_watch_outcome(client, old_rv))
        compacted_at = await envtest.compact()
        assert compacted_at > int(old_rv)
        # The watch cache still covers old_rv until it is rebuilt from a fresh list.
        assert not is_gone(await resumed_watch_outcome(client, old_rv))
        await envtest.restart_apiserver()
        outcome = await resumed_watch_outcome(client, old_rv)
    assert is_gone(outcome), outcome


async def test_compaction_without_watch_cache_makes_resumed_watch_gone(
    envtest_binaries: EnvtestBinaries,
) -> None:
    async with Envtest(envtest_binaries, watch_cache=False) as env, env.http_client() as client:
        old_rv = await write_history(client, "compacted", updates=3)
        first = await resumed_watch_outcome(client, old_rv)
        assert first[0] == 200
        assert first[1]["type"] == "MODIFIED"
        await env.compact()
        outcome = await resumed_watch_outcome(client, old_rv)
        exact = await client.get(CM_PATH, params={"resourceVersion": old_rv, "resourceVersionMatch": "Exact"})
    assert is_gone(outcome), outcome
    assert exact.status_code == 410
    assert exact.json()["reason"] == "Expired"

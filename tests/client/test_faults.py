"""Retries and re-authentication against the embedded API server's injected faults, on the virtual
clock (the server runs on the test's loop, so Retry-After waits take no wall time)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry

from kube_runtime.client import Api, ApiError, ApiResource, Client, ClientConfig, WatchEvent
from kube_runtime.testing import ApiServer
from kube_runtime.testing.clock import virtual_clock_backend
from tests.client.conftest import Traces

pytestmark = pytest.mark.usefixtures("anyio_backend")

CONFIGMAPS = ApiResource.builtin("ConfigMap")


@pytest.fixture
def anyio_backend() -> Any:
    return virtual_clock_backend()


@pytest.fixture
async def server() -> AsyncIterator[ApiServer]:
    async with ApiServer(create_client=False) as server:
        yield server


@pytest.fixture
async def client(server: ApiServer, registry: CollectorRegistry, traces: Traces) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(
        str(server.kubeconfig_path), metrics_registry=registry, tracer_provider=traces.provider
    ) as client:
        yield client


def _cm(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}


async def test_429_with_retry_after_is_retried_after_the_wait(
    server: ApiServer, client: Client, registry: CollectorRegistry, traces: Traces
) -> None:
    api = Api(client, CONFIGMAPS, "default")
    await api.create(_cm("a"))
    server.faults.fail_next(2, 429, retry_after=3)
    started = anyio.current_time()
    assert (await api.get("a"))["metadata"]["name"] == "a"
    assert anyio.current_time() - started >= 6
    assert server.faults.injected_failures == 2
    host = f"127.0.0.1:{server.port}"
    assert (
        registry.get_sample_value(
            "rest_client_request_retries_total", {"code": "429", "verb": "GET", "host": host}
        )
        == 2
    )
    get_span = next(s for s in traces.spans() if s.name == "get")
    delays = [e.attributes["retry.delay_s"] for e in get_span.events if e.attributes]
    assert delays == [3.0, 3.0]


async def test_429_retries_even_a_create(server: ApiServer, client: Client) -> None:
    server.faults.fail_next(1, 429, retry_after=1)
    created = await Api(client, CONFIGMAPS, "default").create(_cm("a"))
    assert created["metadata"]["name"] == "a"
    assert len(server.objects("configmaps", "default")) == 1


async def test_503_is_not_retried_for_a_create(server: ApiServer, client: Client) -> None:
    server.faults.fail_next(1, 503, retry_after=1)
    with pytest.raises(ApiError) as caught:
        await Api(client, CONFIGMAPS, "default").create(_cm("a"))
    assert caught.value.code == 503
    assert caught.value.retry_after == 1


async def test_persistent_503_gives_up_after_max_retries(server: ApiServer, client: Client) -> None:
    server.faults.fail_next(100, 503)
    before = server.app.requests
    with pytest.raises(ApiError) as caught:
        await Api(client, CONFIGMAPS, "default").list()
    assert caught.value.code == 503
    assert server.app.requests - before == 9  # 1 + RetryPolicy().max_retries


async def test_watch_start_is_retried(server: ApiServer, client: Client) -> None:
    api = Api(client, CONFIGMAPS, "default")
    await api.create(_cm("a"))
    server.faults.fail_next(2, 504, retry_after=2)
    async with api.watch(resource_version="0") as events:
        with anyio.fail_after(30):
            item = await events.__anext__()
    assert isinstance(item, WatchEvent)
    assert item.object["metadata"]["name"] == "a"


async def test_expired_token_reauthenticates_once_then_fails(server: ApiServer, client: Client) -> None:
    server.faults.expire_token()
    before = server.app.requests
    with pytest.raises(ApiError) as caught:
        await Api(client, CONFIGMAPS, "default").list()
    assert caught.value.code == 401
    assert server.app.requests - before == 2
    server.faults.restore_token()
    assert (await Api(client, CONFIGMAPS, "default").list())["items"] == []


async def test_rotated_token_file_recovers_after_401(
    tmp_path: Path, server: ApiServer, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(server.token)
    config = ClientConfig.from_kubeconfig(str(server.kubeconfig_path))
    config.token = None
    config.token_file = str(token_file)
    old_token = server.token
    caplog.set_level(logging.DEBUG)
    async with Client(config, metrics_registry=registry) as client:
        api = Api(client, CONFIGMAPS, "default")
        await api.list()
        server.token = "rotated-" + old_token
        token_file.write_text(server.token)
        before = server.app.requests
        await api.list()  # 401 with the cached token, re-read the file, resend
        assert server.app.requests - before == 2
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert "re-authenticating after 401" in logged
    assert old_token not in logged
    assert server.token not in logged

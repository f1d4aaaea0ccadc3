"""A watch's idle timeout: a silent watch ends, a talking one does not, on any transport."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from kube_runtime.client import Api, ApiResource, Client, ClientConfig, WatchEvent, WatchTimeout
from kube_runtime.client.tls import ssl_context
from kube_runtime.testing import ApiServer
from kube_runtime.testing.clock import virtual_clock_backend

CONFIGMAPS = ApiResource.builtin("ConfigMap")


async def test_a_silent_watch_ends_after_its_idle_timeout(api_server: ApiServer) -> None:
    api = Api(api_server.client, CONFIGMAPS, "default")
    listed = await api.list()
    rv = listed["metadata"]["resourceVersion"]
    with anyio.fail_after(10):
        async with api.watch(
            resource_version=rv, timeout_seconds=60, allow_bookmarks=False, idle_timeout=0.3
        ) as events:
            items = [item async for item in events]
    assert items == []
    assert events.idle_timed_out


async def test_events_arriving_within_the_idle_timeout_keep_the_watch_open(api_server: ApiServer) -> None:
    api = Api(api_server.client, CONFIGMAPS, "default")
    rv = (await api.list())["metadata"]["resourceVersion"]
    seen: list[str] = []
    with anyio.fail_after(20):
        async with (
            api.watch(
                resource_version=rv, timeout_seconds=60, allow_bookmarks=False, idle_timeout=1.0
            ) as events,
            anyio.create_task_group() as tg,
        ):

            async def write() -> None:
                for i in range(6):  # 6 x 0.4 s: longer than the idle timeout in total, never idle
                    await api.create(
                        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}"}}
                    )
                    await anyio.sleep(0.4)

            tg.start_soon(write)
            async for item in events:
                assert isinstance(item, WatchEvent)
                seen.append(item.object["metadata"]["name"])
                if len(seen) == 6:
                    break
    assert seen == [f"cm-{i}" for i in range(6)]
    assert not events.idle_timed_out


async def test_a_consumer_slower_than_the_idle_timeout_loses_nothing(api_server: ApiServer) -> None:
    """The idle clock only runs while a read waits: time the consumer spends elsewhere between
    reads (here, longer than the idle timeout) does not end the watch."""
    api = Api(api_server.client, CONFIGMAPS, "default")
    rv = (await api.list())["metadata"]["resourceVersion"]
    seen: list[str] = []
    with anyio.fail_after(20):
        async with api.watch(
            resource_version=rv, timeout_seconds=60, allow_bookmarks=False, idle_timeout=0.3
        ) as events:
            await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "first"}})
            async for item in events:
                assert isinstance(item, WatchEvent)
                seen.append(item.object["metadata"]["name"])
                if len(seen) == 1:
                    # Busy elsewhere for three idle timeouts; the next object arrives meanwhile.
                    await anyio.sleep(0.5)
                    await api.create(
                        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "second"}}
                    )
                    await anyio.sleep(0.5)
    assert seen == ["first", "second"]
    assert events.idle_timed_out  # and then the silence ended it


async def test_over_a_transport_passed_in_the_same_watchdog_ends_a_silent_watch(
    api_server: ApiServer,
) -> None:
    """The idle timeout does not depend on the transport: with httpx's own transport (as an
    instrumented application passes one in) a silent watch still ends at its bound."""
    config = ClientConfig.from_kubeconfig(str(api_server.kubeconfig_path))
    transport = httpx.AsyncHTTPTransport(verify=ssl_context(ca_data=api_server.ca_pem))
    async with Client(config, transport=transport) as client:
        api = Api(client, CONFIGMAPS, "default")
        rv = (await api.list())["metadata"]["resourceVersion"]
        with anyio.fail_after(10):
            async with api.watch(
                resource_version=rv, timeout_seconds=60, allow_bookmarks=False, idle_timeout=0.3
            ) as events:
                await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "only"}})
                items = [item async for item in events]
    assert [i.object["metadata"]["name"] for i in items if isinstance(i, WatchEvent)] == ["only"]
    assert events.idle_timed_out


# -- the request itself: connect and response headers, on the virtual clock over TLS -----------------


@pytest.mark.parametrize("anyio_backend", [virtual_clock_backend()])
async def test_a_watch_whose_headers_never_arrive_fails_after_its_idle_timeout(anyio_backend: Any) -> None:
    """The server accepts the request and never answers (its latency fault, over
    TLS). Opening the watch raises WatchTimeout once the idle timeout has passed since sending."""
    async with ApiServer() as server:
        assert server.tls
        api = Api(server.client, CONFIGMAPS, "default")
        rv = (await api.list())["metadata"]["resourceVersion"]
        server.faults.set_latency(3600)
        started = anyio.current_time()
        with anyio.fail_after(600), pytest.raises(WatchTimeout) as raised:
            async with api.watch(resource_version=rv, timeout_seconds=290, idle_timeout=15):
                pass
        assert anyio.current_time() - started == pytest.approx(15, abs=0.5)
        assert raised.value.phase == "headers"
        assert raised.value.seconds == 15
        assert raised.value.url.endswith("/namespaces/default/configmaps")
        # The connection was abandoned, not left waiting; with the fault gone the next watch opens.
        server.faults.set_latency(0)
        with anyio.fail_after(600):
            async with api.watch(resource_version=rv, idle_timeout=15) as events:
                assert not events.idle_timed_out


@pytest.mark.parametrize("anyio_backend", [virtual_clock_backend()])
async def test_a_shorter_idle_timeout_set_on_an_open_watch_applies_to_the_waiting_read(
    anyio_backend: Any,
) -> None:
    """The watcher tightens an open watch's bound once it has learned the bookmark cadence: the
    read already waiting ends at the new bound, counted from when it started."""
    async with ApiServer() as server:
        api = Api(server.client, CONFIGMAPS, "default")
        rv = (await api.list())["metadata"]["resourceVersion"]
        with anyio.fail_after(600):
            async with api.watch(
                resource_version=rv, timeout_seconds=290, allow_bookmarks=False, idle_timeout=295
            ) as events:
                started = anyio.current_time()
                async with anyio.create_task_group() as tg:

                    async def retime() -> None:
                        await anyio.sleep(1)  # the read below is waiting by now
                        events.set_idle_timeout(6)

                    tg.start_soon(retime)
                    items = [item async for item in events]
    assert items == []
    assert events.idle_timed_out
    assert events.idle_timeout == 6
    assert events.url == "/api/v1/namespaces/default/configmaps"
    # Counted from the start of the waiting read (t=0), not from the retiming (t=1).
    assert anyio.current_time() - started == pytest.approx(6, abs=0.1)

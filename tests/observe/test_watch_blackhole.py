"""Watches over a network path that fails, not over a server that does: a TCP proxy between the
watcher and the embedded API server (real HTTP, TLS unless said otherwise, virtual clock) stops
forwarding while every connection stays open (no bytes, no FIN), or resets the connections.

Silence is a watch timeout, counted in ``kube_runtime_watch_idle_timeouts_total`` (what the
``KubeRuntimeWatchTimeouts`` alert reads) and as ``kube_runtime_watch_errors_total{code="timeout"}``:
``phase="idle"`` for an open watch gone silent, ``phase="headers"`` for a watch request that got no
answer, whether the silence came before the response headers or before the connection or its TLS
handshake was up. A reset is an answer, not silence: ``code="transport"``, no timeout."""

from __future__ import annotations

import io
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry

from kube_runtime.client import Client, ClientConfig
from kube_runtime.client.api import Api
from kube_runtime.client.errors import TransportError, WatchTimeout
from kube_runtime.client.resource import ApiResource
from kube_runtime.observe.logging import configure_logging
from kube_runtime.observe.watch_metrics import observe_watch
from kube_runtime.testing.clock import virtual_clock_backend
from kube_runtime.testing.server import ApiServer
from kube_runtime.watcher import Apply, InitDone, WatcherError, WatchFailed, WatchStartFailed, watcher
from tests.observe.blackhole import BlackHoleProxy
from tests.observe.test_watch_timeouts import Marks, WatchItems, timeout_logs

pytestmark = pytest.mark.parametrize("anyio_backend", [virtual_clock_backend()])

CM = ApiResource.builtin("ConfigMap")
PATH = "/api/v1/namespaces/default/configmaps"


def cm(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}


def proxied(server: ApiServer, proxy: BlackHoleProxy) -> Client:
    """A client of ``server`` whose every connection goes through ``proxy``."""
    scheme = "https" if server.tls else "http"
    config = ClientConfig(
        server=f"{scheme}://127.0.0.1:{proxy.port}", token=server.token, ca_data=server.ca_pem
    )
    return Client(config, metrics_registry=CollectorRegistry())


class Samples:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def __call__(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, {"watch": "configmaps", **labels}) or 0.0


async def test_an_open_watch_black_holed_mid_body_is_an_idle_timeout(anyio_backend: Any) -> None:
    """The bookmarks stop arriving because the path dropped them, not because the server stopped
    sending: given up after three missed bookmarks, as ``phase="idle"``."""
    registry = CollectorRegistry()
    out = io.StringIO()
    configure_logging("info", stream=out)
    marks = Marks()
    recorded = WatchItems()
    failed, applied = recorded.failed, recorded.applied
    async with (
        ApiServer(bookmark_interval=2) as server,
        BlackHoleProxy(server.port) as proxy,
        proxied(server, proxy) as client,
    ):
        api = Api(client, CM, "default")
        stream = observe_watch(
            watcher(api, progress=marks), "configmaps", registry=registry, progress=marks
        ).default_backoff()

        with anyio.fail_after(300):
            async with anyio.create_task_group() as tg:
                tg.start_soon(recorded.consume, stream)
                await marks.reach(1 + 3)  # the list page, then three bookmarks 2 s apart
                proxy.black_hole()
                silent_from = anyio.current_time()
                await failed.wait()
                proxy.restore()  # the retry (after the backoff) gets through
                await Api(server.client, CM, "default").create(cm("after"))
                await applied.wait()
                tg.cancel_scope.cancel()

    recorded.assert_one_idle_timeout(silent_from, 6)
    sample = Samples(registry)
    assert sample("kube_runtime_watch_idle_timeouts_total", phase="idle") == 1
    assert sample("kube_runtime_watch_idle_timeouts_total", phase="headers") == 0
    assert sample("kube_runtime_watch_errors_total", code="timeout") == 1
    assert sample("kube_runtime_watch_errors_total", code="transport") == 0
    assert sample("kube_runtime_watch_restarts_total") == 1
    [logged] = timeout_logs(out)
    assert (logged["phase"], logged["path"]) == ("idle", PATH)


@pytest.mark.parametrize(
    ("tls", "bound"),
    [
        # Over TLS the handshake itself gets no answer: given up at the connect timeout (30 s).
        pytest.param(True, 30, id="tls"),
        # In the clear the request goes out and no response comes: given up at the idle bound.
        pytest.param(False, 295, id="plain"),
    ],
)
async def test_a_watch_request_into_a_black_hole_is_a_headers_timeout(
    anyio_backend: Any, tls: bool, bound: float
) -> None:
    registry = CollectorRegistry()
    out = io.StringIO()
    configure_logging("info", stream=out)
    failure: WatcherError | None = None
    async with (
        ApiServer(bookmark_interval=3600, tls=tls) as server,
        BlackHoleProxy(server.port) as proxy,
        proxied(server, proxy) as client,
    ):
        stream = observe_watch(
            watcher(Api(client, CM, "default")), "configmaps", registry=registry
        ).default_backoff()
        silent_from = failed_at = 0.0
        with anyio.fail_after(600):
            async with stream:
                async for item in stream:
                    if isinstance(item, InitDone):
                        proxy.black_hole()  # the watch's connection (its own) is accepted, then silence
                        silent_from = anyio.current_time()
                    elif isinstance(item, WatcherError):
                        assert failure is None, f"one timeout expected, got {item!r} too"
                        failure, failed_at = item, anyio.current_time()
                        proxy.restore()
                        await Api(server.client, CM, "default").create(cm("after"))
                    elif isinstance(item, Apply):
                        assert item.object["metadata"]["name"] == "after"
                        break
        assert proxy.swallowed == 1
    assert isinstance(failure, WatchStartFailed)
    cause = failure.__cause__
    assert isinstance(cause, WatchTimeout), repr(cause)
    assert (cause.phase, cause.seconds, cause.url) == ("headers", bound, PATH)
    assert failed_at - silent_from == pytest.approx(bound, abs=0.1)
    sample = Samples(registry)
    assert sample("kube_runtime_watch_idle_timeouts_total", phase="headers") == 1
    assert sample("kube_runtime_watch_idle_timeouts_total", phase="idle") == 0
    assert sample("kube_runtime_watch_errors_total", code="timeout") == 1
    assert sample("kube_runtime_watch_errors_total", code="transport") == 0
    [logged] = timeout_logs(out)
    assert (logged["phase"], logged["timeout_seconds"], logged["path"]) == ("headers", bound, PATH)


async def test_a_watch_whose_connection_is_reset_is_a_transport_error(anyio_backend: Any) -> None:
    """A reset is the path answering: no timeout is counted, and the watch resumes."""
    registry = CollectorRegistry()
    marks = Marks()
    failure: WatcherError | None = None
    async with (
        ApiServer(bookmark_interval=2) as server,
        BlackHoleProxy(server.port) as proxy,
        proxied(server, proxy) as client,
    ):
        stream = observe_watch(
            watcher(Api(client, CM, "default"), progress=marks), "configmaps", registry=registry
        ).default_backoff()
        with anyio.fail_after(300):
            async with stream, anyio.create_task_group() as tg:

                async def reset_once_watching() -> None:
                    await marks.reach(1 + 1)  # the list page, then a bookmark: the watch is open
                    assert await proxy.reset() >= 1

                tg.start_soon(reset_once_watching)
                async for item in stream:
                    if isinstance(item, WatcherError):
                        assert failure is None, f"one error expected, got {item!r} too"
                        failure = item
                        await Api(server.client, CM, "default").create(cm("after"))
                    elif isinstance(item, Apply):
                        break
    assert isinstance(failure, WatchFailed)
    assert isinstance(failure.__cause__, TransportError)
    assert not isinstance(failure.__cause__, WatchTimeout)
    sample = Samples(registry)
    assert sample("kube_runtime_watch_errors_total", code="transport") == 1
    assert sample("kube_runtime_watch_errors_total", code="timeout") == 0
    assert sample("kube_runtime_watch_idle_timeouts_total", phase="idle") == 0
    assert sample("kube_runtime_watch_idle_timeouts_total", phase="headers") == 0

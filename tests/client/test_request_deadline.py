"""The overall deadline of an ordinary request (``ClientConfig.request_timeout``), over real loopback
HTTP on the virtual clock (the scripted server runs on the test's loop, so its drips and the
client's deadline share one clock and the tests take no wall time).

kube-rs (and this client before the fix) bounded a request by its per-read timeout only: a body
sent one byte every 50 ms never trips a read timeout, so a reconcile awaiting the answer hung.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import orjson
import pytest
from prometheus_client import CollectorRegistry

from kube_runtime.client import (
    Api,
    ApiError,
    ApiResource,
    Client,
    ClientConfig,
    RequestTimeout,
    TransportError,
    WatchEvent,
)
from kube_runtime.testing.clock import virtual_clock_backend
from tests.client.conftest import Traces
from tests.client.loopback import Abort, LoopbackServer, Received, Reply, json_reply

pytestmark = pytest.mark.usefixtures("anyio_backend")

CONFIGMAPS = ApiResource.builtin("ConfigMap")
DRIP_INTERVAL = 0.05
#: 80 bytes at one per 50 ms: 4 s, longer than the deadlines below, so without a deadline the
#: request completes (slowly) instead of failing.
DRIP_BODY = orjson.dumps({"kind": "ConfigMap", "metadata": {"name": "drip"}, "data": {"k": "v" * 17}})


@pytest.fixture
def anyio_backend() -> Any:
    return virtual_clock_backend()


def _client(url: str, registry: CollectorRegistry, traces: Traces | None = None, **config: Any) -> Client:
    # read_timeout well above the drip interval: every read succeeds, only the deadline can fire.
    config.setdefault("read_timeout", 1.0)
    return Client(
        ClientConfig(server=url, token="t0k3n", **config),
        metrics_registry=registry,
        tracer_provider=traces.provider if traces else None,
    )


async def _drip(body: bytes) -> AsyncIterator[bytes]:
    for i in range(len(body)):
        await anyio.sleep(DRIP_INTERVAL)
        yield body[i : i + 1]


def _dripping(path_suffix: str) -> Callable[[Received], Any]:
    """A handler that drips the answer to paths ending in ``path_suffix`` and answers others at once."""

    async def handler(req: Received) -> Reply:
        if req.path.endswith(path_suffix):
            return 200, [("content-type", "application/json")], _drip(DRIP_BODY)
        return json_reply(200, b'{"kind":"ConfigMap"}')

    return handler


def _count(registry: CollectorRegistry, code: str, method: str, port: int) -> float:
    labels = {"code": code, "method": method, "host": f"127.0.0.1:{port}"}
    return registry.get_sample_value("rest_client_requests_total", labels) or 0.0


async def test_a_body_dripping_past_the_deadline_raises_request_timeout_and_the_connection_is_discarded(
    registry: CollectorRegistry, traces: Traces
) -> None:
    """kube-rs's gap: each byte arrives well within the read timeout, the whole never within the
    deadline. The error is typed and names the verb, path and bound; the half-read connection is
    closed (the server sees it end) and the next request on the client gets a new one."""
    async with (
        LoopbackServer(_dripping("/drip")) as server,
        _client(server.url, registry, traces, request_timeout=2.0) as client,
    ):
        api = Api(client, CONFIGMAPS, "ns")
        started = anyio.current_time()
        with anyio.fail_after(30), pytest.raises(RequestTimeout) as caught:
            await api.get("drip")
        assert 2.0 <= anyio.current_time() - started < 2.0 + DRIP_INTERVAL * 2
        error = caught.value
        assert isinstance(error, TransportError)
        assert (error.phase, error.seconds, error.verb) == ("body", 2.0, "get")
        assert error.url == "/api/v1/namespaces/ns/configmaps/drip"
        assert "get GET /api/v1/namespaces/ns/configmaps/drip" in str(error)
        assert "within 2s" in str(error)

        with anyio.fail_after(5):
            await server.wait_closed(1)  # the client closed the connection mid-body
            assert await api.get("next") == {"kind": "ConfigMap"}
        assert server.connections == 2
        assert len(server.received) == 2  # the timed-out GET was not retried

    assert _count(registry, "<error>", "GET", server.port) == 1
    assert _count(registry, "200", "GET", server.port) == 1
    timed_out, answered = traces.spans()
    assert (timed_out.name, timed_out.status.status_code.name) == ("get", "ERROR")
    assert timed_out.attributes["error.type"] == "RequestTimeout"
    assert answered.status.status_code.name == "UNSET"


async def test_a_server_that_never_answers_raises_request_timeout_before_the_headers(
    registry: CollectorRegistry, traces: Traces
) -> None:
    release = anyio.Event()

    async def handler(req: Received) -> Reply:
        if req.path.endswith("/silent"):
            await release.wait()
        return json_reply(200, b"{}")

    async with (
        LoopbackServer(handler) as server,
        _client(server.url, registry, traces, read_timeout=300.0, request_timeout=5.0) as client,
    ):
        started = anyio.current_time()
        with anyio.fail_after(30), pytest.raises(RequestTimeout) as caught:
            await Api(client, CONFIGMAPS, "ns").get("silent")
        assert anyio.current_time() - started == pytest.approx(5.0, abs=0.01)
        assert caught.value.phase == "headers"
        assert "no response headers yet" in str(caught.value)
        release.set()
        assert len(server.received) == 1
    assert _count(registry, "<error>", "GET", server.port) == 1
    (span,) = traces.spans()
    assert span.attributes["error.type"] == "RequestTimeout"


async def test_the_per_call_request_timeout_overrides_the_configured_one(registry: CollectorRegistry) -> None:
    """A status patch bounded per call on a client without a bound; and a call that lifts the
    client's bound (``math.inf``) waits for the whole slow body."""
    async with LoopbackServer(_dripping("/drip/status")) as server:
        async with _client(server.url, registry, request_timeout=None) as client:
            started = anyio.current_time()
            with anyio.fail_after(30), pytest.raises(RequestTimeout) as caught:
                await Api(client, CONFIGMAPS, "ns").patch_status(
                    "drip", {"status": {"ok": True}}, request_timeout=0.5
                )
            assert anyio.current_time() - started < 0.5 + DRIP_INTERVAL * 2
            assert (caught.value.verb, caught.value.seconds) == ("patch_status", 0.5)
            assert "patch_status PATCH /api/v1/namespaces/ns/configmaps/drip/status" in str(caught.value)
        async with _client(server.url, registry, request_timeout=0.5) as client:
            with anyio.fail_after(30):
                answer = await Api(client, CONFIGMAPS, "ns").get_status("drip", request_timeout=math.inf)
            assert answer["metadata"]["name"] == "drip"


async def test_a_retry_whose_wait_would_end_past_the_deadline_is_not_made(
    registry: CollectorRegistry,
) -> None:
    """The first 429 asks for 1 s, which fits in the 3 s budget: retried. The second asks for 5 s:
    the caller gets that 429 (with its Retry-After) at once instead of a timeout 2 s later."""
    waits = iter(["1", "5"])

    async def handler(req: Received) -> Reply:
        status = b'{"kind":"Status","code":429,"reason":"TooManyRequests"}'
        return json_reply(429, status, ("retry-after", next(waits)))

    async with (
        LoopbackServer(handler) as server,
        _client(server.url, registry, request_timeout=3.0) as client,
    ):
        started = anyio.current_time()
        with anyio.fail_after(30), pytest.raises(ApiError) as caught:
            await Api(client, CONFIGMAPS, "ns").get("a")
        assert anyio.current_time() - started == pytest.approx(1.0, abs=0.01)
        assert (caught.value.code, caught.value.retry_after) == (429, 5.0)
        assert len(server.received) == 2


async def test_a_body_cut_mid_way_counts_as_an_error_not_as_its_status(registry: CollectorRegistry) -> None:
    """An attempt whose body could not be read got no answer: ``<error>``, like the deadline."""

    async def handler(req: Received) -> Reply:
        async def cut() -> AsyncIterator[bytes]:
            yield DRIP_BODY[:10]
            raise Abort

        return 200, [("content-type", "application/json")], cut()

    async with LoopbackServer(handler) as server, _client(server.url, registry) as client:
        with anyio.fail_after(30), pytest.raises(TransportError):
            await Api(client, CONFIGMAPS, "ns").get("a")
    assert _count(registry, "<error>", "GET", server.port) == 1
    assert _count(registry, "200", "GET", server.port) == 0


@pytest.mark.parametrize("idle_timeout", [None, 5.0])
async def test_a_watch_outlives_the_request_timeout(
    registry: CollectorRegistry, idle_timeout: float | None
) -> None:
    """A watch is a stream: neither its length (4.5 s) nor a silence longer than the deadline (1.5 s
    against 1 s) ends it; only its idle timeout, when it has one, could."""

    async def handler(req: Received) -> Reply:
        assert req.query.get("watch") == "true"

        async def events() -> AsyncIterator[bytes]:
            for i in range(4):
                if i:
                    await anyio.sleep(1.5)
                event = {"type": "ADDED", "object": {"kind": "ConfigMap", "metadata": {"name": f"cm-{i}"}}}
                yield orjson.dumps(event) + b"\n"

        return 200, [("content-type", "application/json")], events()

    seen: list[str] = []
    async with (
        LoopbackServer(handler) as server,
        _client(server.url, registry, request_timeout=1.0) as client,
    ):
        started = anyio.current_time()
        with anyio.fail_after(30):
            async with Api(client, CONFIGMAPS, "ns").watch(idle_timeout=idle_timeout) as stream:
                async for item in stream:
                    assert isinstance(item, WatchEvent)
                    seen.append(item.object["metadata"]["name"])
        assert not stream.idle_timed_out
        assert anyio.current_time() - started >= 4.5
    assert seen == ["cm-0", "cm-1", "cm-2", "cm-3"]


async def test_typed_api_verbs_take_the_per_call_request_timeout(registry: CollectorRegistry) -> None:
    """TypedApi passes ``request_timeout`` to the dict Api under it: each verb, bounded per call on
    a client without a bound, raises RequestTimeout naming its own verb."""
    from kube_runtime.resources import ConfigMap, ObjectMeta, TypedApi

    drip = ConfigMap(metadata=ObjectMeta(name="drip", namespace="ns"))
    calls: list[tuple[str, Callable[[TypedApi[ConfigMap]], Any]]] = [
        ("get", lambda api: api.get("drip", request_timeout=0.5)),
        ("get", lambda api: api.get_opt("drip", request_timeout=0.5)),
        ("list", lambda api: api.list(request_timeout=0.5)),
        ("create", lambda api: api.create(drip, request_timeout=0.5)),
        ("replace", lambda api: api.replace(drip, request_timeout=0.5)),
        ("patch", lambda api: api.apply(drip, field_manager="t", request_timeout=0.5)),
        ("patch", lambda api: api.patch("drip", {"data": {}}, request_timeout=0.5)),
        ("patch_status", lambda api: api.patch_status("drip", {"status": {}}, request_timeout=0.5)),
        ("delete", lambda api: api.delete("drip", request_timeout=0.5)),
    ]

    async def drip_all(req: Received) -> Reply:
        return 200, [("content-type", "application/json")], _drip(DRIP_BODY)

    async with (
        LoopbackServer(drip_all) as server,
        _client(server.url, registry, request_timeout=None) as client,
    ):
        api = TypedApi(client, ConfigMap, "ns")
        for verb, call in calls:
            started = anyio.current_time()
            with anyio.fail_after(30), pytest.raises(RequestTimeout) as caught:
                await call(api)
            assert anyio.current_time() - started < 0.5 + DRIP_INTERVAL * 2, verb
            assert (caught.value.verb, caught.value.seconds) == (verb, 0.5)

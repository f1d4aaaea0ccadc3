"""kube_runtime.client.transport/network: our httpx transport and anyio backend on real sockets.

They stand in for httpx's default transport, so they must fail the way it fails (the same httpx
exception types), reuse only live keep-alive connections, and stay invisible to an application that
instruments httpx globally (one span per API request: the client's own).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from kube_runtime.client import Api, ApiResource, Client, ClientConfig, TransportError
from kube_runtime.client.transport import KubeTransport
from kube_runtime.testing.server import ApiServer
from tests.client.loopback import LoopbackServer, Received, Reply

CONFIGMAPS = ApiResource.builtin("ConfigMap")
LIMITS = httpx.Limits(max_connections=4, max_keepalive_connections=2, keepalive_expiry=30.0)


def _http(**timeouts: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=KubeTransport(ssl_context=None, http2=False, limits=LIMITS),
        timeout=httpx.Timeout(5.0, **timeouts),
    )


async def test_refused_connection_is_httpx_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with _http() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/")


async def test_a_connection_closed_during_the_tls_handshake_is_a_typed_transport_error(
    registry: CollectorRegistry,
) -> None:
    """A TCP front with no backend (a load balancer while the API server restarts) accepts and
    closes at once: httpx's ConnectError through our transport, the client's TransportError
    through the client (anyio's EndOfStream escaped untyped)."""

    async def close_at_once(stream: anyio.abc.SocketStream) -> None:
        await stream.aclose()

    async with (
        await anyio.create_tcp_listener(local_host="127.0.0.1") as listener,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(listener.serve, close_at_once)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        context = ssl.create_default_context()
        async with httpx.AsyncClient(
            transport=KubeTransport(ssl_context=context, http2=False, limits=LIMITS), timeout=5.0
        ) as http:
            with pytest.raises(httpx.ConnectError, match="TLS handshake"):
                await http.get(f"https://127.0.0.1:{port}/")
        config = ClientConfig(server=f"https://127.0.0.1:{port}", token="t0k3n")
        async with Client(config, metrics_registry=registry) as client:
            with pytest.raises(TransportError):
                await Api(client, CONFIGMAPS, "ns").get_opt("lease")
        tg.cancel_scope.cancel()


async def test_unanswered_request_is_httpx_read_timeout() -> None:
    async def never(_req: Received) -> Reply:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async with LoopbackServer(never) as server, _http(read=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(f"{server.url}/")


async def test_connection_closed_by_the_server_while_idle_is_not_reused() -> None:
    """The server closes each connection right after answering, without saying so in a header.
    The pool must see that the idle connection was closed and open a new one, not send into it."""
    connections = 0
    closed = anyio.Event()

    async def answer_then_close(stream: anyio.abc.SocketStream) -> None:
        nonlocal connections, closed
        connections += 1
        async with stream:
            head = b""
            while b"\r\n\r\n" not in head:
                head += await stream.receive()
            body = b'{"ok":true}'
            await stream.send(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        closed.set()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg, _http() as http:
        tg.start_soon(listener.serve, answer_then_close)
        assert (await http.get(f"http://127.0.0.1:{port}/a")).json() == {"ok": True}
        await closed.wait()
        closed = anyio.Event()
        assert (await http.get(f"http://127.0.0.1:{port}/b")).json() == {"ok": True}
        assert connections == 2
        tg.cancel_scope.cancel()


async def test_response_shows_its_network_stream_and_socket(api_server: ApiServer) -> None:
    async with Client.from_kubeconfig(api_server.kubeconfig_path) as client:
        response = await client.send("get", "GET", "/api/v1/namespaces")
        stream = response.extensions["network_stream"]
        assert stream.get_extra_info("socket").fileno() >= 0
        assert stream.get_extra_info("ssl_object") is not None  # the embedded server speaks TLS
        assert stream.get_extra_info("is_readable") is False
        assert stream.get_extra_info("no such thing") is None


@pytest.fixture
def global_httpx_instrumentation() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield exporter
    finally:
        instrumentor.uninstrument()


async def test_global_httpx_instrumentation_does_not_double_the_clients_spans(
    api_server: ApiServer, global_httpx_instrumentation: InMemorySpanExporter
) -> None:
    ours = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ours))
    config = ClientConfig.from_kubeconfig(api_server.kubeconfig_path)
    async with Client(config, tracer_provider=provider, metrics_registry=CollectorRegistry()) as client:
        api = Api(client, CONFIGMAPS, "default")
        await api.create(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "one"}, "data": {"k": "v"}}
        )
        await api.get("one")
        async with api.watch(timeout_seconds=1) as events:
            async for _ in events:
                break
    assert [span.name for span in ours.get_finished_spans()] == ["create", "get", "watch"]
    assert global_httpx_instrumentation.get_finished_spans() == ()

    # The instrumentation is live: a plain httpx client gets its span.
    async with httpx.AsyncClient(verify=False) as plain:
        await plain.get(f"{api_server.url}/version")
    assert len(global_httpx_instrumentation.get_finished_spans()) == 1

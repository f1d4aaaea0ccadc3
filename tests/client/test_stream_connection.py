"""kube_runtime.client.stream_connection: a watch's own HTTP/1.1 connection, read by a protocol.

The protocol is fed the bytes of one response however the network cuts them, so the framing tests
drive it with every kind of split; the socket tests check what a client sees over real connections:
each body framing, broken and malformed bodies as httpx's exceptions, a cancelled wait that closes
the connection, connections never reused, and HTTP/2 clients keeping the pool.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace

from kube_runtime.client.stream_connection import (
    _HIGH_WATER,
    BODY_EXTENSION,
    StreamBudget,
    _StreamProtocol,
    open_stream,
)
from kube_runtime.client.streaming import ResponseStream
from kube_runtime.client.tracing import RequestSpan
from kube_runtime.client.transport import OWN_CONNECTION, KubeTransport
from tests.client.loopback import LoopbackServer, Received, Reply

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
LIMITS = httpx.Limits(max_connections=4, max_keepalive_connections=2, keepalive_expiry=30.0)


class FakeTransport:
    """What the protocol calls on its transport, recorded."""

    def __init__(self) -> None:
        self.paused = False
        self.pauses = 0
        self.closed = False

    def pause_reading(self) -> None:
        self.paused = True
        self.pauses += 1

    def resume_reading(self) -> None:
        self.paused = False

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def chunked(pieces: list[bytes], extensions: bool = False) -> bytes:
    ext = b";name=value" if extensions else b""
    body = b"".join(b"%x%s\r\n%s\r\n" % (len(p), ext, p) for p in pieces if p)
    return body + b"0\r\nTrailer-One: x\r\n\r\n"


def cut(data: bytes, points: list[int]) -> list[bytes]:
    bounds = sorted({0, len(data), *(p % (len(data) + 1) for p in points)})
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


async def feed(wire: list[bytes], *, method: str = "GET") -> tuple[_StreamProtocol, bytes]:
    """Feed ``wire`` to a fresh protocol, reading between arrivals; return it and the body read."""
    protocol = _StreamProtocol(httpx.Request(method, "http://test/watch"))
    protocol.connection_made(FakeTransport())  # type: ignore[arg-type]
    body = bytearray()
    for piece in wire:
        protocol.data_received(piece)
        while protocol.head.done() and (protocol._chunks or protocol.complete):
            data = await protocol.next_chunk()
            if not data:
                break
            body += data
    return protocol, bytes(body)


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(st.binary(min_size=0, max_size=300), max_size=8),
    points=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
    extensions=st.booleans(),
    interim=st.booleans(),
)
def test_any_split_of_a_chunked_response_yields_exactly_its_body(
    pieces: list[bytes], points: list[int], extensions: bool, interim: bool
) -> None:
    head = (b"HTTP/1.1 102 Processing\r\n\r\n" if interim else b"") + HEAD
    wire = cut(head + chunked(pieces, extensions), points)

    async def check() -> None:
        protocol, body = await feed(wire)
        status, _reason, headers = protocol.head.result()
        assert status == 200
        assert (b"Transfer-Encoding", b"chunked") in headers
        assert body == b"".join(pieces)
        assert protocol.complete
        assert protocol.error is None

    asyncio.run(check())


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", b"hello"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA", b"hello"),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b""),
    ],
)
async def test_length_framed_bodies_end_at_their_length(wire: bytes, expected: bytes) -> None:
    protocol, body = await feed([wire])
    assert body == expected
    assert protocol.complete
    assert await protocol.next_chunk() == b""


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        (HEAD + b"zz\r\n", "bad chunk size"),
        (HEAD + b"3\r\nabcX\r\n", "missing CRLF"),
        (HEAD + b"1" * 5000, "chunk size line too long"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "unsupported transfer-encoding"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "bad content-length"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"a" * 70_000, "response head longer"),
        (b"SPDY/9 200 OK\r\n\r\n", "bad status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "bad header line"),
    ],
)
async def test_a_malformed_response_is_a_remote_protocol_error_and_closes(wire: bytes, error: str) -> None:
    protocol = _StreamProtocol(httpx.Request("GET", "http://test/watch"))
    transport = FakeTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    protocol.data_received(wire)
    assert isinstance(protocol.error, httpx.RemoteProtocolError)
    assert error in str(protocol.error)
    assert protocol.error.request.url.path == "/watch"
    assert transport.closed
    if protocol.head.done() and protocol.head.exception() is None:
        while protocol._chunks:  # the body bytes that came before the error come first
            await protocol.next_chunk()
        with pytest.raises(httpx.RemoteProtocolError):
            await protocol.next_chunk()
    else:
        with pytest.raises(httpx.RemoteProtocolError):
            protocol.head.result()


async def test_the_connection_lost_mid_body_is_an_error_but_a_close_framed_body_just_ends() -> None:
    protocol, body = await feed([HEAD + b"5\r\nhel"])
    assert body == b"hel"
    protocol.connection_lost(None)
    with pytest.raises(httpx.RemoteProtocolError, match="before the end of the body"):
        await protocol.next_chunk()

    protocol, _ = await feed([HEAD])
    protocol.connection_lost(ConnectionResetError("reset by peer"))
    with pytest.raises(httpx.ReadError, match="reset by peer"):
        await protocol.next_chunk()

    protocol, body = await feed([b"HTTP/1.1 200 OK\r\n\r\nuntil", b" close"])
    protocol.connection_lost(None)
    assert body == b"until close"
    assert await protocol.next_chunk() == b""


async def test_reading_stops_while_the_reader_is_behind_and_resumes_when_it_catches_up() -> None:
    protocol = _StreamProtocol(httpx.Request("GET", "http://test/watch"))
    transport = FakeTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    protocol.data_received(HEAD)
    piece = b"x" * 65536
    sent = 0
    while not transport.paused:
        protocol.data_received(b"%x\r\n%s\r\n" % (len(piece), piece))
        sent += len(piece)
    assert _HIGH_WATER < sent <= _HIGH_WATER + len(piece)
    assert len(await protocol.next_chunk()) == sent
    assert not transport.paused
    assert transport.pauses == 1


# -- over real sockets --------------------------------------------------------------------------------


def watch_request(url: str, **extensions: Any) -> httpx.Request:
    return httpx.Request("GET", url, extensions={"timeout": {"connect": 5.0, "read": None}, **extensions})


async def test_each_stream_gets_a_connection_of_its_own_and_closes_it() -> None:
    async def events(_req: Received) -> Reply:
        async def body() -> Any:
            yield b'{"type":"ADDED"}\n'
            yield b'{"type":"MODIFIED"}\n'

        return 200, [("content-type", "application/json")], body()

    async with LoopbackServer(events) as server:
        for _ in range(2):
            response = await open_stream(watch_request(f"{server.url}/w"), None)
            assert response.status_code == 200
            assert response.extensions["http_version"] == b"HTTP/1.1"
            assert response.extensions["network_stream"].get_extra_info("socket") is not None
            assert isinstance(response.stream, httpx.AsyncByteStream)
            assert b"".join([chunk async for chunk in response.stream]) == (
                b'{"type":"ADDED"}\n{"type":"MODIFIED"}\n'
            )
            await response.aclose()
        assert server.connections == 2
        assert [r.path for r in server.received] == ["/w", "/w"]
        assert server.received[0].headers["host"] == f"127.0.0.1:{server.port}"


async def test_a_response_stream_reads_its_own_connections_body_directly() -> None:
    """httpx wraps a transport's body in a generator of its own; a ResponseStream of an own
    connection iterates the body itself (the extension), and closing the response still closes
    the connection."""

    async def events(_req: Received) -> Reply:
        async def body() -> Any:
            yield b'{"type":"ADDED"}\n'
            yield b'{"type":"MODIFIED"}\n'

        return 200, [("content-type", "application/json")], body()

    async with (
        LoopbackServer(events) as server,
        httpx.AsyncClient(transport=KubeTransport(ssl_context=None, http2=False, limits=LIMITS)) as http,
    ):
        request = http.build_request("GET", f"{server.url}/w", extensions={OWN_CONNECTION: True})
        response = await http.send(request, stream=True)
        body = response.extensions[BODY_EXTENSION]
        assert response.stream is not body  # httpx's own wrapper
        stream = ResponseStream(response, RequestSpan(trace.INVALID_SPAN, "watch", "GET", "/w"), "watch")
        assert stream._chunks is body
        assert b"".join([chunk async for chunk in stream]) == b'{"type":"ADDED"}\n{"type":"MODIFIED"}\n'
        transport = response.extensions["network_stream"]._transport
        await response.aclose()
        assert transport.is_closing()


async def test_through_the_transport_only_http1_streams_take_their_own_connection() -> None:
    async def answer(_req: Received) -> Reply:
        return 200, [("content-type", "application/json")], b"{}"

    for http2, connections in ((False, 3), (True, 1)):
        async with (
            LoopbackServer(answer) as server,
            httpx.AsyncClient(transport=KubeTransport(ssl_context=None, http2=http2, limits=LIMITS)) as http,
        ):
            for _ in range(3):
                request = http.build_request("GET", f"{server.url}/w", extensions={OWN_CONNECTION: True})
                response = await http.send(request)
                assert response.json() == {}
            # Plain HTTP has no HTTP/2 here (no ALPN), so the HTTP/2 client's pool keeps its one
            # HTTP/1.1 connection alive; own connections are never reused.
            assert server.connections == connections


async def test_a_refused_connection_is_httpx_connect_error() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    with pytest.raises(httpx.ConnectError) as caught:
        await open_stream(watch_request(f"http://127.0.0.1:{port}/w"), None)
    assert caught.value.request.url.port == port


async def test_cancelling_the_wait_for_the_head_closes_the_connection() -> None:
    hung_up = anyio.Event()

    async def silent(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            try:
                while True:
                    await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                hung_up.set()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, silent)
        with anyio.move_on_after(0.2) as scope:
            await open_stream(watch_request(f"http://127.0.0.1:{port}/w"), None)
        assert scope.cancelled_caught
        with anyio.fail_after(5):
            await hung_up.wait()
        tg.cancel_scope.cancel()


async def test_a_connect_cancelled_once_the_connection_is_made_leaves_no_unretrieved_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cancelled between the connection being made and the connect returning (a run stopping
    while its watch connects): asyncio closes the new connection, whose loss fails the head that
    nobody will await; that failure must not surface as "exception was never retrieved"."""
    reported: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    opening: list[asyncio.Task[Any]] = []
    lost = asyncio.Event()
    made, lose = _StreamProtocol.connection_made, _StreamProtocol.connection_lost

    def connection_made(self: _StreamProtocol, transport: asyncio.BaseTransport) -> None:
        made(self, transport)
        opening[0].cancel()  # the connect's wait is cancelled as it is about to return

    def connection_lost(self: _StreamProtocol, exc: Exception | None) -> None:
        lose(self, exc)
        assert isinstance(self.error, httpx.RemoteProtocolError)  # the head's failure, now or never
        lost.set()

    monkeypatch.setattr(_StreamProtocol, "connection_made", connection_made)
    monkeypatch.setattr(_StreamProtocol, "connection_lost", connection_lost)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    try:
        async with listener:
            task = asyncio.ensure_future(open_stream(watch_request(f"http://127.0.0.1:{port}/w"), None))
            opening.append(task)
            with pytest.raises(asyncio.CancelledError):
                await task
            del task
            opening.clear()
            if not type(loop).__module__.startswith("uvloop"):
                # asyncio closes the new connection and reports its loss a few passes later;
                # uvloop drops a connection whose connect was cancelled without calling
                # connection_lost, so there the head never fails at all.
                with anyio.fail_after(5):
                    await lost.wait()
            gc.collect()  # the head future goes; an unretrieved failure would be reported now
            await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert reported == []


async def test_no_head_within_the_read_timeout_is_httpx_read_timeout() -> None:
    async def never(_req: Received) -> Reply:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async with LoopbackServer(never) as server:
        request = httpx.Request(
            "GET", f"{server.url}/w", extensions={"timeout": {"connect": 5.0, "read": 0.1}}
        )
        with pytest.raises(httpx.ReadTimeout):
            await open_stream(request, None)


async def test_a_stream_beyond_the_budget_waits_for_a_slot_then_times_out_like_the_pool() -> None:
    async def events(_req: Received) -> Reply:
        async def body() -> Any:
            yield b'{"type":"ADDED"}\n'
            await anyio.sleep_forever()

        return 200, [("content-type", "application/json")], body()

    budget = StreamBudget(1)
    async with LoopbackServer(events) as server:
        request = watch_request(f"{server.url}/w")
        request.extensions["timeout"]["pool"] = 0.2
        first = await open_stream(request, None, budget)
        with pytest.raises(httpx.PoolTimeout, match="1 open"):
            await open_stream(request, None, budget)
        await first.aclose()
        # The slot comes back when the connection is gone, so the next stream opens at once.
        with anyio.fail_after(5):
            second = await open_stream(request, None, budget)
        await second.aclose()
        assert server.connections == 2


async def test_a_connect_cancelled_once_the_connection_is_made_gives_its_slot_back_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On both loops: uvloop reports the loss of such a connection only when the loop closes, so a
    slot freed on that loss alone stayed taken, and the next watch failed with PoolTimeout."""
    opening: list[asyncio.Task[Any]] = []
    made = _StreamProtocol.connection_made

    def connection_made(self: _StreamProtocol, transport: asyncio.BaseTransport) -> None:
        made(self, transport)
        if opening:
            opening.pop().cancel()

    async def events(_req: Received) -> Reply:
        async def body() -> Any:
            yield b'{"type":"ADDED"}\n'
            await anyio.sleep_forever()

        return 200, [("content-type", "application/json")], body()

    monkeypatch.setattr(_StreamProtocol, "connection_made", connection_made)
    budget = StreamBudget(1)
    async with LoopbackServer(events) as server:
        request = watch_request(f"{server.url}/w")
        request.extensions["timeout"]["pool"] = 2.0
        for _ in range(3):
            task = asyncio.ensure_future(open_stream(request, None, budget))
            opening.append(task)
            with pytest.raises(asyncio.CancelledError):
                await task
        response = await open_stream(request, None, budget)  # PoolTimeout while a slot is held
        assert response.status_code == 200
        await response.aclose()
        assert server.connections == 4


async def test_a_failed_connect_gives_its_slot_back() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    budget = StreamBudget(1)
    for _ in range(3):  # a slot kept by a failed connect would make the second one a PoolTimeout
        request = watch_request(f"http://127.0.0.1:{port}/w")
        request.extensions["timeout"]["pool"] = 0.2
        with pytest.raises(httpx.ConnectError):
            await open_stream(request, None, budget)

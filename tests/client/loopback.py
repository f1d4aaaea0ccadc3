"""A scripted HTTP/1.1 server on a real loopback socket, for transport faults the embedded API
server cannot express (connections cut mid-body, TLS with client certificates, odd bodies).

Each request is handed to an async handler returning ``(status, headers, body)``; ``body`` is bytes
or an async iterator of chunks (sent with chunked encoding). Raising :class:`Abort` from the handler
or from the chunk iterator closes the connection on the spot.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
import h11
from anyio.streams.tls import TLSAttribute, TLSListener

__all__ = ["Abort", "LoopbackServer", "Received", "Reply", "json_reply"]


class Abort(Exception):
    """Close the connection now, mid-response if one is under way."""


@dataclass
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    peer_cn: str | None = None

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> dict[str, str]:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(self.target.split("?", 1)[1])) if "?" in self.target else {}


Reply = tuple[int, list[tuple[str, str]], bytes | AsyncIterator[bytes]]
Handler = Callable[[Received], Awaitable[Reply]]


class LoopbackServer:
    """``async with LoopbackServer(handler) as server``: serves until the block ends."""

    def __init__(self, handler: Handler, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.received: list[Received] = []
        self.connections = 0
        #: Connections that have ended: the client closed them, or the server did.
        self.closed_connections = 0
        self._closed = anyio.Event()
        self._group: anyio.abc.TaskGroup | None = None
        self.port = 0

    async def wait_closed(self, count: int) -> None:
        """Until ``count`` connections have ended."""
        while self.closed_connections < count:
            await self._closed.wait()

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def __aenter__(self) -> LoopbackServer:
        listener: anyio.abc.Listener[anyio.abc.ByteStream]
        tcp = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = tcp.extra(anyio.abc.SocketAttribute.local_port)
        listener = TLSListener(tcp, self.ssl_context, standard_compatible=False) if self.ssl_context else tcp
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        self._group.start_soon(listener.serve, self._connection)
        self._listener = listener
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._group is not None
        self._group.cancel_scope.cancel()
        await self._group.__aexit__(exc_type, exc, tb)
        await self._listener.aclose()

    async def _connection(self, stream: anyio.abc.ByteStream) -> None:
        self.connections += 1
        peer_cn = _peer_common_name(stream)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024 * 1024)
        try:
            async with stream:
                while True:
                    request = await self._read_request(conn, stream)
                    if request is None:
                        return
                    request.peer_cn = peer_cn
                    self.received.append(request)
                    status, headers, body = await self.handler(request)
                    await self._respond(conn, stream, status, headers, body)
                    if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                        return
                    conn.start_next_cycle()
        except (
            Abort,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            ssl.SSLError,
            h11.LocalProtocolError,
        ):
            return
        finally:
            self.closed_connections += 1
            self._closed.set()
            self._closed = anyio.Event()

    async def _read_request(self, conn: h11.Connection, stream: anyio.abc.ByteStream) -> Received | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return None
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                headers = {k.decode().lower(): v.decode() for k, v in head.headers}
                return Received(head.method.decode(), head.target.decode(), headers, bytes(body))
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return None

    async def _respond(
        self,
        conn: h11.Connection,
        stream: anyio.abc.ByteStream,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes | AsyncIterator[bytes],
    ) -> None:
        if isinstance(body, bytes):
            all_headers = [*headers, ("content-length", str(len(body)))]
            await stream.send(conn.send(h11.Response(status_code=status, headers=all_headers)) or b"")
            if body:
                await stream.send(conn.send(h11.Data(data=body)) or b"")
            await stream.send(conn.send(h11.EndOfMessage()) or b"")
            return
        await stream.send(conn.send(h11.Response(status_code=status, headers=headers)) or b"")
        async for chunk in body:
            await stream.send(conn.send(h11.Data(data=chunk)) or b"")
        await stream.send(conn.send(h11.EndOfMessage()) or b"")


def _peer_common_name(stream: anyio.abc.ByteStream) -> str | None:
    certificate = stream.extra(TLSAttribute.peer_certificate, None)
    if not certificate:
        return None
    subject: Any = certificate.get("subject", ())
    for rdn in subject:
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def json_reply(status: int, body: bytes, *headers: tuple[str, str]) -> Reply:
    return status, [("content-type", "application/json"), *headers], body

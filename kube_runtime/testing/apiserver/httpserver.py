"""A small HTTP/1.1 server on anyio sockets with httptools parsing.

Chosen over uvicorn after measuring (see ``benches/bench_apiserver.py``): it has no per-request
ASGI dict building, no signal handling, closes every connection at once when serving stops (the
"server went away" fault), and every connection task belongs to the caller's task group.

Supports keep-alive, ``Content-Length`` and chunked request bodies, fixed-length responses and
chunked streaming responses. While a response streams, the connection is also read so that a
client hang-up cancels the stream immediately instead of at the next write.
"""

from __future__ import annotations

import logging
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import anyio
import anyio.abc
import httptools
import orjson
from anyio.streams.tls import TLSListener

__all__ = ["HttpServer", "Request", "Response", "StreamingResponse"]

_log = logging.getLogger(__name__)


class _TLSListener(TLSListener):
    """anyio's TLS listener, with a failed handshake logged at DEBUG instead of ERROR.

    A client that leaves during the handshake (a test ending, a connect timeout, a client that
    does not trust the server's CA) is the client's business, as for kube-apiserver (which logs
    it at a low level): an ERROR line from the test server would read as a failure of the code
    under test. Uses anyio's documented hook, ``handle_handshake_error``, and does what its
    default does otherwise (close the stream; cancellation and base exceptions propagate)."""

    @staticmethod
    async def handle_handshake_error(exc: BaseException, stream: anyio.abc.AnyByteStream) -> None:
        await anyio.aclose_forcefully(stream)
        if isinstance(exc, anyio.get_cancelled_exc_class()) or not isinstance(exc, Exception):
            raise exc
        _log.debug("TLS handshake failed: %s: %s", type(exc).__name__, exc)


ChunkSender = Callable[[bytes], Awaitable[None]]


@dataclass(slots=True)
class Request:
    """One parsed request; header names are lower-cased, the last query value wins."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    keep_alive: bool = True


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class StreamingResponse:
    """A chunked response; ``writer`` sends chunks until it returns (the response then ends)."""

    status: int
    writer: Callable[[ChunkSender], Awaitable[None]]
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = field(default=())


Handler = Callable[[Request], Awaitable[Response | StreamingResponse]]


class _Parser:
    """httptools callbacks collecting complete requests."""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.ready: deque[Request] = deque()
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        val = value.decode("latin-1")
        prev = self._headers.get(key)
        self._headers[key] = val if prev is None else f"{prev},{val}"

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        parsed = httptools.parse_url(self._url)
        query = parsed.query.decode("latin-1") if parsed.query else ""
        self.ready.append(
            Request(
                method=self.parser.get_method().decode("ascii"),
                path=parsed.path.decode("latin-1"),
                query=dict(parse_qsl(query, keep_blank_values=True)) if query else {},
                headers=self._headers,
                body=b"".join(self._body),
                keep_alive=self.parser.should_keep_alive(),
            )
        )


def _status_json(code: int, reason: str, message: str) -> bytes:
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
    return orjson.dumps({**status, "message": message, "reason": reason, "code": code})


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _head(status: int, content_type: str, headers: tuple[tuple[str, str], ...], extra: str) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {_reason(status)}",
        f"Content-Type: {content_type}",
        "Cache-Control: no-cache, private",
    ]
    lines.extend(f"{k}: {v}" for k, v in headers)
    lines.append(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_CLOSED = (
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    ConnectionError,
    OSError,
    ssl.SSLError,
)


class HttpServer:
    """Serves ``handler`` on one listening socket until cancelled."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self._handler = handler
        self._ssl = ssl_context

    async def serve(
        self,
        host: str,
        port: int,
        *,
        task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on ``host:port`` (0 picks a free port; reported through ``task_status``)."""
        tcp = await anyio.create_tcp_listener(local_host=host, local_port=port, backlog=1024)
        bound = tcp.extra(anyio.abc.SocketAttribute.local_port)
        listener: anyio.abc.Listener[Any] = tcp
        if self._ssl is not None:
            listener = _TLSListener(tcp, self._ssl, standard_compatible=False, handshake_timeout=10)
        async with listener, anyio.create_task_group() as tg:
            task_status.started(bound)
            await listener.serve(self._connection, task_group=tg)

    async def _connection(self, stream: anyio.abc.ByteStream) -> None:
        parser = _Parser()
        try:
            while True:
                while not parser.ready:
                    data = await stream.receive(262144)
                    try:
                        parser.parser.feed_data(data)
                    except httptools.HttpParserUpgrade:
                        pass
                    except httptools.HttpParserError as exc:
                        body = _status_json(400, "BadRequest", f"malformed HTTP request: {exc!s}")
                        await stream.send(
                            _head(
                                400,
                                "application/json",
                                (),
                                f"Content-Length: {len(body)}\r\nConnection: close",
                            )
                            + body
                        )
                        return
                request = parser.ready.popleft()
                response = await self._handler(request)
                if isinstance(response, Response):
                    extra = f"Content-Length: {len(response.body)}"
                    if not request.keep_alive:
                        extra += "\r\nConnection: close"
                    await stream.send(
                        _head(response.status, response.content_type, response.headers, extra) + response.body
                    )
                else:
                    await self._stream(stream, response)
                if not request.keep_alive:
                    return
        except _CLOSED:
            pass
        finally:
            with anyio.CancelScope(shield=True):
                await stream.aclose()

    async def _stream(self, stream: anyio.abc.ByteStream, response: StreamingResponse) -> None:
        await stream.send(
            _head(response.status, response.content_type, response.headers, "Transfer-Encoding: chunked")
        )
        hung_up = False

        async def send_chunk(data: bytes) -> None:
            if data:
                await stream.send(b"%x\r\n%b\r\n" % (len(data), data))

        try:
            async with anyio.create_task_group() as tg:

                async def watch_hangup() -> None:
                    nonlocal hung_up
                    try:
                        while True:
                            await stream.receive()
                    except _CLOSED:
                        hung_up = True
                        tg.cancel_scope.cancel()

                tg.start_soon(watch_hangup)
                await response.writer(send_chunk)
                await stream.send(b"0\r\n\r\n")
                tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # A client that resets the connection mid-stream makes the writer fail inside the group;
            # that is a hang-up, not a server error.
            if group.split(_CLOSED)[1] is not None:
                raise
            hung_up = True
        if hung_up:
            raise anyio.EndOfStream

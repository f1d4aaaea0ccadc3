"""A streaming GET on a connection of its own: HTTP/1.1 read by an asyncio protocol.

Guarantees: the answer is an ``httpx.Response`` whose body yields the de-chunked body bytes as they
arrive; every failure is the ``httpx`` exception httpx's default transport raises for it
(``ConnectError``, ``ConnectTimeout``, ``ReadError``, ``RemoteProtocolError``), so the client's
retries, typed errors and idle timeout treat both transports alike. The connection is never reused:
closing the response (or cancelling the wait for its headers) closes it. A body that stops before
its declared end (a connection closed mid-chunk) raises ``RemoteProtocolError``; a body framed by
the connection's end ends normally there. Flow control: the socket stops being read while more than
``_HIGH_WATER`` bytes wait for the reader, so a slow consumer holds at most about that much.

Why our own: a watch holds its connection for minutes and sends one small chunk per event. Through
httpcore, h11 and a TLS stream over an anyio socket, each chunk passed about a dozen Python frames
and two async generators before the watch decoder saw it, about a third of the CPU of a no-op
controller at 1k events/s. Here the event loop's own transport (with its native TLS) hands the
bytes to :meth:`_StreamProtocol.data_received`, which strips the chunk framing in place and wakes
the reader once. Only streaming GETs over HTTP/1.1 without a proxy take this path (see
:class:`~kube_runtime.client.transport.KubeTransport`); every other request uses the pool.

Pitfalls: asyncio only (the runtime's one backend). No request body, no ``Expect: 100-continue``,
no upgrade: a watch needs none of them.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any, Final, cast

import httpx

__all__ = ["BODY_EXTENSION", "StreamBudget", "open_stream"]

#: The response extension holding the body's own iterator. httpx wraps every transport's body in
#: an async generator of its own (one more frame per chunk); a reader of this key iterates the body
#: directly. Closing the response still closes it.
BODY_EXTENSION: Final = "kube_runtime.body"

_HIGH_WATER: Final = 1 << 20
_MAX_HEAD: Final = 64 * 1024
_MAX_CHUNK_LINE: Final = 4096

# Body framings.
_LENGTH: Final = 0
_CHUNKED: Final = 1
_UNTIL_CLOSE: Final = 2

# Chunked-body states.
_SIZE: Final = 0  # reading "<hex size>[;ext]\r\n"
_DATA: Final = 1  # reading the chunk's bytes
_DATA_END: Final = 2  # reading the "\r\n" after them
_TRAILERS: Final = 3  # after the last chunk: trailer lines until an empty one


class _StreamProtocol(asyncio.Protocol):
    """Parses one response: its head, then its body into a queue of byte strings for one reader."""

    def __init__(self, request: httpx.Request, on_closed: Callable[[], object] | None = None) -> None:
        self._request = request
        self._on_closed = on_closed
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self.head: asyncio.Future[tuple[int, bytes, list[tuple[bytes, bytes]]]] = (
            asyncio.get_running_loop().create_future()
        )
        self._head_done = False
        self._framing = _UNTIL_CLOSE
        self._remaining = 0  # bytes left: of the body (_LENGTH) or of the current chunk (_CHUNKED)
        self._chunk_state = _SIZE
        self._chunks: collections.deque[bytes] = collections.deque()
        self._queued = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self.complete = False
        self.error: httpx.TransportError | None = None

    # -- transport callbacks ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream connection's transport: asyncio.Transport's interface (uvloop's transports have
        # it without subclassing it).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.complete or self.error is not None:
            return
        try:
            if not self._head_done:
                self._buffer += data
                if not self._parse_head():
                    return
                data, self._buffer = bytes(self._buffer), bytearray()
                if not data:
                    return
            self._body_received(data)
        except httpx.RemoteProtocolError as exc:
            self._fail(exc)
            if self.transport is not None:
                self.transport.close()

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost says what the end means

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed()
        if self.complete or self.error is not None:
            self._wake()
            return
        if self._head_done and self._framing == _UNTIL_CLOSE and exc is None:
            self.complete = True
            self._wake()
            return
        if exc is None:
            where = "body" if self._head_done else "response headers"
            self._fail(
                httpx.RemoteProtocolError(f"server closed the connection before the end of the {where}")
            )
        else:
            self._fail(httpx.ReadError(str(exc) or type(exc).__name__))

    # -- parsing --------------------------------------------------------------------------------------

    def _parse_head(self) -> bool:
        """Parse the head once it is complete (skipping 1xx heads); False while it is not."""
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > _MAX_HEAD:
                    raise httpx.RemoteProtocolError(f"response head longer than {_MAX_HEAD} bytes")
                return False
            lines = bytes(self._buffer[:end]).split(b"\r\n")
            del self._buffer[: end + 4]
            status, reason = _status_line(lines[0])
            headers = [_header(line) for line in lines[1:] if line]
            if 100 <= status < 200:
                continue  # an interim answer (e.g. 102 Processing): the real one follows
            break
        self._head_done = True
        self._frame(status, headers)
        if not self.head.done():
            self.head.set_result((status, reason, headers))
        return True

    def _frame(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        encodings = [v.strip().lower() for k, v in headers if k.lower() == b"transfer-encoding"]
        lengths = [v.strip() for k, v in headers if k.lower() == b"content-length"]
        if self._request.method == "HEAD" or status in (204, 304):
            self._framing, self._remaining = _LENGTH, 0
        elif encodings:
            if encodings[-1].split(b",")[-1].strip() != b"chunked":
                raise httpx.RemoteProtocolError(f"unsupported transfer-encoding {encodings[-1]!r}")
            self._framing = _CHUNKED
        elif lengths:
            if len(set(lengths)) != 1 or not lengths[0].isdigit():
                raise httpx.RemoteProtocolError(f"bad content-length {lengths!r}")
            self._framing, self._remaining = _LENGTH, int(lengths[0])
        else:
            self._framing = _UNTIL_CLOSE
        if self._framing == _LENGTH and self._remaining == 0:
            self.complete = True

    def _body_received(self, data: bytes) -> None:
        if self._framing == _CHUNKED:
            self._dechunk(data)
        elif self._framing == _LENGTH:
            if len(data) >= self._remaining:
                # Bytes past the declared length are not ours (the connection is never reused).
                data = data[: self._remaining]
                self.complete = True
            self._remaining -= len(data)
            self._push(data)
        else:
            self._push(data)
        self._wake()

    def _dechunk(self, data: bytes) -> None:
        """Strip chunk framing from ``data``; each chunk's bytes are pushed as they arrive."""
        view = memoryview(data)
        pos, size = 0, len(data)
        while pos < size:
            state = self._chunk_state
            if state == _SIZE and not self._buffer:
                # A whole chunk with a bare size line, all in ``data`` (a watch event, usually):
                # taken in one step. Anything else (an extension, a split, the last chunk, a
                # framing error) goes through the states below from this same position.
                end = data.find(b"\r\n", pos, pos + 18)
                if end > pos:
                    try:
                        length = int(data[pos:end], 16)
                    except ValueError:
                        length = 0
                    stop = end + 2 + length
                    if length > 0 and data[stop : stop + 2] == b"\r\n":
                        self._push(data[end + 2 : stop])
                        pos = stop + 2
                        continue
            if state == _DATA:
                take = min(self._remaining, size - pos)
                self._push(data if take == size else bytes(view[pos : pos + take]))
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._chunk_state = _DATA_END
                continue
            # A line-framed state: _SIZE, _DATA_END or _TRAILERS.
            end = data.find(b"\n", pos)
            if end < 0:
                self._buffer += view[pos:]
                if len(self._buffer) > _MAX_CHUNK_LINE:
                    raise httpx.RemoteProtocolError("chunk size line too long")
                return
            if self._buffer:
                self._buffer += view[pos : end + 1]
                line, self._buffer = bytes(self._buffer), bytearray()
            else:
                line = data[pos : end + 1]
            pos = end + 1
            self._line(line.rstrip(b"\r\n"))
            if self.complete:
                return

    def _line(self, line: bytes) -> None:
        state = self._chunk_state
        if state == _DATA_END:
            if line:
                raise httpx.RemoteProtocolError("missing CRLF after a chunk")
            self._chunk_state = _SIZE
        elif state == _SIZE:
            digits = line.split(b";", 1)[0].strip()
            try:
                self._remaining = int(digits, 16)
            except ValueError:
                raise httpx.RemoteProtocolError(f"bad chunk size {digits[:20]!r}") from None
            if self._remaining < 0:
                raise httpx.RemoteProtocolError(f"bad chunk size {digits[:20]!r}")
            self._chunk_state = _TRAILERS if self._remaining == 0 else _DATA
        elif not line:  # _TRAILERS: the empty line ends the message
            self.complete = True

    def _push(self, data: bytes) -> None:
        if not data:
            return
        self._chunks.append(data)
        self._queued += len(data)
        if self._queued > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def _fail(self, exc: httpx.TransportError) -> None:
        exc.request = self._request
        self.error = exc
        if not self.head.done():
            self.head.set_exception(exc)
            # Marked retrieved: a request that gave up before taking the head (its connect
            # cancelled just as the connection was made) never awaits it, and the failure is kept
            # in ``error`` anyway; an awaiting request still gets it raised.
            self.head.exception()
        self._wake()

    def _closed(self) -> None:
        """Run ``on_closed`` once: at the connection's loss or when the request gives it up."""
        on_closed, self._on_closed = self._on_closed, None
        if on_closed is not None:
            on_closed()

    def give_up(self) -> None:
        """The request will not use this connection: close it and run ``on_closed`` now.

        uvloop closes the socket of a connect cancelled after ``connection_made`` without calling
        ``connection_lost`` until much later (at the loop's close), so waiting for the loss would
        hold the connection's stream slot that long.
        """
        if self.transport is not None:
            self.transport.close()
        self._closed()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- the reader ----------------------------------------------------------------------------------

    async def next_chunk(self) -> bytes:
        """The body bytes received since the last call (waiting for some); ``b""`` at the end."""
        while True:
            chunks = self._chunks
            if chunks:
                data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                self._queued = 0
                if self._paused and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                return data
            if self.error is not None:
                raise self.error
            if self.complete:
                return b""
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None


def _status_line(line: bytes) -> tuple[int, bytes]:
    parts = line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise httpx.RemoteProtocolError(f"bad status line {line[:80]!r}")
    return int(parts[1]), parts[2] if len(parts) > 2 else b""


def _header(line: bytes) -> tuple[bytes, bytes]:
    name, sep, value = line.partition(b":")
    if not sep or not name or name != name.strip():
        raise httpx.RemoteProtocolError(f"bad header line {line[:80]!r}")
    return name, value.strip()


class _StreamBody(httpx.AsyncByteStream):
    """The response body: its own async iterator (no generator frame per chunk)."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: _StreamProtocol) -> None:
        self._protocol = protocol

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        data = await self._protocol.next_chunk()
        if not data:
            raise StopAsyncIteration
        return data

    async def aclose(self) -> None:
        transport = self._protocol.transport
        if transport is not None:
            transport.close()


class _NetworkStream:
    """What the response's ``network_stream`` extension shows: the connection's extra info."""

    __slots__ = ("_transport",)

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "is_readable":
            return self._transport.is_closing()
        return None


class StreamBudget:
    """At most ``limit`` stream connections open at once (the client's ``max_watches``).

    A stream beyond it waits for one to close, at most the request's ``pool`` timeout, then fails
    with ``httpx.PoolTimeout``, as a request waiting for the pool does. A slot is held from before
    connecting until the connection is lost (closed by either side) or the request gives it up (a
    failed or cancelled connect, no head in time), whichever comes first; a response nobody closed
    keeps its slot, as it keeps its socket.
    """

    __slots__ = ("_slots", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots = asyncio.Semaphore(limit)

    async def acquire(self, request: httpx.Request, within: float | None) -> None:
        """Take a slot, waiting at most ``within`` seconds (None: forever)."""
        try:
            async with asyncio.timeout(within):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise httpx.PoolTimeout(
                f"no stream connection free within {within} s ({self.limit} open)", request=request
            ) from exc

    def release(self) -> None:
        self._slots.release()


def _request_head(request: httpx.Request) -> bytes:
    url = request.url
    lines = [b"%s %s HTTP/1.1" % (request.method.encode("ascii"), url.raw_path)]
    lines.extend(b"%s: %s" % (name, value) for name, value in request.headers.raw)
    lines.append(b"\r\n")
    return b"\r\n".join(lines)


async def open_stream(
    request: httpx.Request, ssl_context: ssl.SSLContext | None, budget: StreamBudget | None = None
) -> httpx.Response:
    """Send a body-less ``request`` on a new connection and return its response once the head is in.

    ``request.extensions``: ``timeout`` (httpx's: ``pool`` bounds the wait for a slot of ``budget``,
    ``connect`` the connection and TLS handshake, ``read`` the wait for the head), ``sni_hostname``.
    Cancelling closes the connection.
    """
    url = request.url
    timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
    secure = url.scheme == "https"
    context = (ssl_context or ssl.create_default_context()) if secure else None
    server_hostname = request.extensions.get("sni_hostname") or url.host if secure else None
    port = url.port or (443 if secure else 80)
    loop = asyncio.get_running_loop()
    if budget is not None:
        await budget.acquire(request, timeouts.get("pool"))
    protocol = _StreamProtocol(request, on_closed=budget.release if budget is not None else None)
    try:
        async with asyncio.timeout(timeouts.get("connect")):
            await loop.create_connection(
                lambda: protocol, url.host, port, ssl=context, server_hostname=server_hostname
            )
    except BaseException as exc:
        protocol.give_up()
        if isinstance(exc, TimeoutError):
            raise httpx.ConnectTimeout(f"connecting to {url.host}:{port} timed out", request=request) from exc
        if isinstance(exc, OSError | ssl.SSLError):
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
        raise
    transport = protocol.transport
    assert transport is not None
    try:
        transport.write(_request_head(request))
        async with asyncio.timeout(timeouts.get("read")):
            status, reason, headers = await protocol.head
    except TimeoutError as exc:
        protocol.give_up()
        raise httpx.ReadTimeout("no response headers in time", request=request) from exc
    except httpx.TransportError as exc:
        protocol.give_up()
        exc.request = request
        raise
    except BaseException:
        protocol.give_up()
        raise
    body = _StreamBody(protocol)
    return httpx.Response(
        status_code=status,
        headers=headers,
        stream=body,
        extensions={
            "http_version": b"HTTP/1.1",
            "reason_phrase": reason,
            "network_stream": _NetworkStream(transport),
            BODY_EXTENSION: body,
        },
    )

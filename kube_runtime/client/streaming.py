"""The body of an open streaming response (a watch) and the watchdog that ends it when idle.

Guarantees: iteration yields raw body chunks; a broken connection raises
:class:`~kube_runtime.client.errors.TransportError`; the normal end of the body, or no byte within
the idle timeout, ends the iteration (``idle_timed_out`` tells them apart). The idle clock only
runs while a read waits, so a slow consumer is never cut off.

Over httpx's HTTP/1.1 transport each watch owns its connection, and one timer per watch (the
watchdog) shuts an idle connection's socket down: a clock read per chunk instead of a deadline
armed and cancelled per read. Pitfall: the socket comes from the response's ``network_stream``
extension; a connection that does not show one falls back to a deadline around each read.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx

from kube_runtime.client.errors import TransportError
from kube_runtime.client.tracing import RequestSpan

__all__ = ["ResponseStream"]

logger = logging.getLogger("kube_runtime.client")


class ResponseStream:
    """An open streaming response: an async iterator of raw body chunks (``bytes``).

    A broken connection raises :class:`TransportError` from iteration; the normal end of the body
    ends the iteration. ``headers`` are the response headers.
    """

    __slots__ = (
        "_chunks",
        "_clock",
        "_idle_timeout",
        "_read_deadline",
        "_read_scope",
        "_read_started",
        "_reading",
        "_response",
        "_span",
        "_verb",
        "_watchdog",
        "headers",
        "idle_timed_out",
        "status_code",
    )

    def __init__(
        self, response: httpx.Response, span: RequestSpan, verb: str, *, watchdog: float | None = None
    ) -> None:
        self._response = response
        self._span = span
        self._verb = verb
        # Without a content encoding, read the transport's byte stream itself: aiter_bytes() and the
        # aiter_raw() under it are two more async generators (plus a decoder and a chunker) per chunk,
        # and a slow watch hands over about one event per chunk.
        encoded = response.headers.get("content-encoding", "identity").strip().lower() != "identity"
        stream = response.stream
        self._chunks: AsyncIterator[bytes] = (
            aiter(stream)
            if not encoded and isinstance(stream, httpx.AsyncByteStream)
            else response.aiter_bytes()
        )
        self.headers = response.headers
        self.status_code = response.status_code
        #: True once the stream ended because no bytes arrived within its idle timeout.
        self.idle_timed_out = False
        self._idle_timeout = watchdog
        self._reading = False
        self._read_started = 0.0
        self._watchdog: asyncio.TimerHandle | None = None
        #: A deadline per read instead of the watchdog, for a connection that does not show its
        #: socket (not seen over httpx's HTTP/1.1 transport; kept so a watch never waits forever).
        self._read_deadline: float | None = None
        #: The cancel scope of the read waiting under ``_read_deadline`` (None between reads).
        self._read_scope: anyio.CancelScope | None = None
        if watchdog is not None:
            if _socket_of(response) is None:
                self._read_deadline = watchdog
            else:
                loop = asyncio.get_running_loop()
                self._clock = loop.time
                self._watchdog = loop.call_at(self._clock() + watchdog, self._check_idle)

    def __aiter__(self) -> ResponseStream:
        return self

    @property
    def url(self) -> str:
        """The request's path (no query string: nothing secret, fit for logs)."""
        return self._span.path

    @property
    def verb(self) -> str:
        return self._verb

    def set_idle_timeout(self, seconds: float) -> None:
        """Bound the reads from now on (the one waiting included) by ``seconds`` without a byte.

        The watcher tightens a watch's bound once it has learned the server's bookmark cadence.
        With the watchdog, its timer is re-armed at the new due time; a stream whose bound was
        httpx's read timeout (HTTP/2, a custom transport) gets a deadline per read instead, so
        the shorter of the two applies. No effect once the stream has timed out.
        """
        if self.idle_timed_out:
            return
        if self._watchdog is not None:
            self._idle_timeout = seconds
            self._watchdog.cancel()
            since = self._read_started if self._reading else self._clock()
            self._watchdog = asyncio.get_running_loop().call_at(since + seconds, self._check_idle)
        else:
            self._read_deadline = seconds
            scope = self._read_scope
            if scope is not None:
                scope.deadline = self._read_started + seconds

    async def __anext__(self) -> bytes:
        if self._watchdog is not None:
            self._read_started = self._clock()
            self._reading = True
        elif self._read_deadline is not None and self._read_scope is None:
            return await self._read_with_deadline(self._read_deadline)
        try:
            return await self._chunks.__anext__()
        except httpx.ReadTimeout:
            # The idle timeout as httpx's read timeout: an end of the stream, not a failure.
            self.idle_timed_out = True
            raise StopAsyncIteration from None
        except httpx.TransportError as exc:
            if self.idle_timed_out:  # the watchdog cut the connection
                raise StopAsyncIteration from None
            self._span.failure(exc)
            raise TransportError(
                f"stream broken: {type(exc).__name__}: {exc}", verb=self._verb, url=self._span.path
            ) from exc
        finally:
            self._reading = False

    async def _read_with_deadline(self, seconds: float) -> bytes:
        self._read_started = anyio.current_time()
        with anyio.CancelScope(deadline=self._read_started + seconds) as scope:
            self._read_scope = scope  # also makes __anext__ read through the main path
            try:
                return await self.__anext__()
            finally:
                self._read_scope = None
        self.idle_timed_out = True
        raise StopAsyncIteration

    def _check_idle(self) -> None:
        """The watchdog: ends a read that has waited ``idle_timeout`` by shutting the socket down
        (the pending read then fails, and ``__anext__`` turns that into the end of the stream)."""
        assert self._idle_timeout is not None
        now = self._clock()
        due = now + self._idle_timeout
        if self._reading:
            due = self._read_started + self._idle_timeout
            if now >= due:
                self._watchdog = None
                self.idle_timed_out = True
                _shutdown(self._response)
                return
        self._watchdog = asyncio.get_running_loop().call_at(due, self._check_idle)

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None


def _socket_of(response: httpx.Response) -> Any:
    """The connection's socket (on asyncio, a ``TransportSocket`` that still offers ``shutdown``)."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    return sock if callable(getattr(sock, "shutdown", None)) else None


def _shutdown(response: httpx.Response) -> None:
    sock = _socket_of(response)
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError as exc:  # already closed or reset: the read fails anyway
        logger.debug("idle watch: shutting the socket down failed: %s", exc)

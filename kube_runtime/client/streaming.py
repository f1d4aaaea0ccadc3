"""The body of an open streaming response (a watch), ended by its idle timeout.

Guarantees: iteration yields raw body chunks; a broken connection raises
:class:`~kube_runtime.client.errors.TransportError`; the normal end of the body, or a read that
waits longer than the idle timeout, ends the iteration (``idle_timed_out`` tells them apart). The
idle timeout is :mod:`kube_runtime.client.idle`'s watchdog: one timer per stream, the clock only
running while a read waits, so a slow consumer is never cut off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx

from kube_runtime.client.errors import TransportError
from kube_runtime.client.idle import IdleWatchdog
from kube_runtime.client.stream_connection import BODY_EXTENSION
from kube_runtime.client.tracing import RequestSpan

__all__ = ["ResponseStream"]

logger = logging.getLogger("kube_runtime.client")


class ResponseStream:
    """An open streaming response: an async iterator of raw body chunks (``bytes``).

    A broken connection raises :class:`TransportError` from iteration; the normal end of the body
    ends the iteration. ``headers`` are the response headers. With an ``idle_timeout``, it is an
    :class:`~kube_runtime.client.idle.IdleTimedStream` of chunks.
    """

    __slots__ = ("_chunks", "_response", "_span", "_verb", "_watchdog", "headers", "status_code")

    def __init__(
        self, response: httpx.Response, span: RequestSpan, verb: str, *, idle_timeout: float | None = None
    ) -> None:
        self._response = response
        self._span = span
        self._verb = verb
        # Without a content encoding, read the transport's byte stream itself: aiter_bytes() and the
        # aiter_raw() under it are two more async generators (plus a decoder and a chunker) per chunk,
        # and a slow watch hands over about one event per chunk. A stream connection's body is read
        # directly (its extension), not through the generator httpx wraps every body in.
        encoded = response.headers.get("content-encoding", "identity").strip().lower() != "identity"
        stream = response.extensions.get(BODY_EXTENSION) or response.stream
        self._chunks: AsyncIterator[bytes] = (
            aiter(stream)
            if not encoded and isinstance(stream, httpx.AsyncByteStream)
            else response.aiter_bytes()
        )
        self.headers = response.headers
        self.status_code = response.status_code
        self._watchdog = IdleWatchdog(idle_timeout) if idle_timeout is not None else None

    def __aiter__(self) -> ResponseStream:
        return self

    @property
    def url(self) -> str:
        """The request's path (no query string: nothing secret, fit for logs)."""
        return self._span.path

    @property
    def verb(self) -> str:
        return self._verb

    @property
    def idle_timeout(self) -> float | None:
        """Seconds a read may wait for bytes (``None``: forever)."""
        return self._watchdog.timeout if self._watchdog is not None else None

    @property
    def idle_timed_out(self) -> bool:
        """True once the stream ended because a read waited longer than ``idle_timeout``."""
        return self._watchdog is not None and self._watchdog.timed_out

    def set_idle_timeout(self, seconds: float) -> None:
        """Bound the read in progress (from its start) and the reads to come by ``seconds``.

        The watcher tightens a watch's bound once it has learned the server's bookmark cadence.
        No effect once the stream has timed out."""
        if self._watchdog is None:
            self._watchdog = IdleWatchdog(seconds)
        elif not self._watchdog.timed_out:
            self._watchdog.retime(seconds)

    async def __anext__(self) -> bytes:
        watchdog = self._watchdog
        if watchdog is not None:
            if watchdog.timed_out:
                raise StopAsyncIteration
            watchdog.begin()
        try:
            return await self._chunks.__anext__()
        except asyncio.CancelledError:
            if watchdog is not None and watchdog.expired():
                raise StopAsyncIteration from None
            raise
        except (httpx.TransportError, httpx.DecodingError) as exc:  # a corrupt gzip body too
            self._span.failure(exc)
            raise TransportError(
                f"stream broken: {type(exc).__name__}: {exc}", verb=self._verb, url=self._span.path
            ) from exc
        finally:
            if watchdog is not None:
                watchdog.end()

    def close(self) -> None:
        """Stop the idle timer (the response itself is closed by whoever opened it)."""
        if self._watchdog is not None:
            self._watchdog.close()

"""The sockets under the client's connection pool: an httpcore network backend of our own, on anyio.

Guarantees: reads without a timeout (watch bodies, whose idle timeout is a watchdog, see
:class:`~kube_runtime.client.streaming.ResponseStream`) go straight to the anyio stream with no
cancel scope; reads and writes with a timeout, connects and TLS handshakes are bounded by
``anyio.fail_after``. Every failure surfaces as the httpcore exception httpx maps to its own
(``ConnectError``, ``ReadTimeout``...), so callers see the same errors as with httpx's defaults.

Why our own: httpcore's anyio backend wraps every socket read in a cancel scope even without a
timeout, and a slow watch reads about once per event; that scope cost more than decoding the event
(cachegrind: ~52k instructions per read against ~45k for ``orjson.loads`` of a 1.3 KB ConfigMap).
httpcore takes a backend through its public ``network_backend`` argument, so this one is plugged in
by :class:`~kube_runtime.client.transport.KubeTransport` without touching httpx or httpcore
internals.
"""

# httpcore's interface takes timeouts as arguments (ASYNC109 is about our own APIs, not this one).
# ruff: noqa: ASYNC109

from __future__ import annotations

import contextlib
import select
import socket
import ssl
from collections.abc import Iterable, Iterator
from typing import Any

import anyio
import anyio.abc
import httpcore
from anyio.streams.tls import TLSAttribute, TLSStream

__all__ = ["AnyioNetworkBackend"]

# A failure of the underlying stream, as anyio and the OS report it.
_BROKEN = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError, ssl.SSLError)


@contextlib.contextmanager
def _bounded(timeout: float | None, on_timeout: type[Exception], on_error: type[Exception]) -> Iterator[None]:
    """``timeout`` seconds at most (None: unbounded); anyio/OS failures become ``on_error``."""
    try:
        with anyio.fail_after(timeout):
            yield
    except TimeoutError as exc:
        raise on_timeout(f"timed out after {timeout} s") from exc
    except _BROKEN as exc:
        raise on_error(str(exc) or type(exc).__name__) from exc


def _is_readable(sock: socket.socket | None) -> bool:
    """Whether an idle pooled connection has something to read: the server closed it (EOF) or sent
    bytes nobody asked for. Either way httpcore must not reuse it."""
    if sock is None or sock.fileno() < 0:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class _Stream(httpcore.AsyncNetworkStream):
    """One connection's byte stream (TCP, or TLS over TCP)."""

    __slots__ = ("_stream",)

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if timeout is None:
            try:
                return await self._stream.receive(max_bytes)
            except anyio.EndOfStream:
                return b""
            except _BROKEN as exc:
                raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc
        with _bounded(timeout, httpcore.ReadTimeout, httpcore.ReadError):
            try:
                return await self._stream.receive(max_bytes)
            except anyio.EndOfStream:
                return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        with _bounded(timeout, httpcore.WriteTimeout, httpcore.WriteError):
            await self._stream.send(buffer)

    async def aclose(self) -> None:
        with contextlib.suppress(*_BROKEN):
            await self._stream.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        try:
            with _bounded(timeout, httpcore.ConnectTimeout, httpcore.ConnectError):
                try:
                    tls = await TLSStream.wrap(
                        self._stream,
                        hostname=server_hostname,
                        ssl_context=ssl_context,
                        standard_compatible=False,
                    )
                except anyio.EndOfStream as exc:  # a proxy with no backend accepts, then closes
                    raise httpcore.ConnectError("connection closed during the TLS handshake") from exc
        except BaseException:
            await self.aclose()
            raise
        return _Stream(tls)

    def get_extra_info(self, info: str) -> Any:
        extra = self._stream.extra
        if info == "ssl_object":
            return extra(TLSAttribute.ssl_object, None)
        if info == "client_addr":
            return extra(anyio.abc.SocketAttribute.local_address, None)
        if info == "server_addr":
            return extra(anyio.abc.SocketAttribute.remote_address, None)
        if info == "socket":
            return extra(anyio.abc.SocketAttribute.raw_socket, None)
        if info == "is_readable":
            return _is_readable(extra(anyio.abc.SocketAttribute.raw_socket, None))
        return None


class AnyioNetworkBackend(httpcore.AsyncNetworkBackend):
    """TCP and Unix-socket connections on anyio, with untimed reads that need no cancel scope."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        with _bounded(timeout, httpcore.ConnectTimeout, httpcore.ConnectError):
            stream: anyio.abc.SocketStream = await anyio.connect_tcp(host, port, local_host=local_address)
        _apply_socket_options(stream, socket_options)
        return _Stream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        with _bounded(timeout, httpcore.ConnectTimeout, httpcore.ConnectError):
            stream: anyio.abc.SocketStream = await anyio.connect_unix(path)
        _apply_socket_options(stream, socket_options)
        return _Stream(stream)

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


def _apply_socket_options(stream: anyio.abc.SocketStream, options: Iterable[Any] | None) -> None:
    sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    for option in options or ():
        sock.setsockopt(*option)

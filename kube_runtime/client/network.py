"""httpcore's network backend without a cancel scope around reads that have no timeout.

httpcore wraps every socket read in ``anyio.fail_after(timeout)``, even when ``timeout`` is None.
A slow watch reads about once per event, and that scope costs more than decoding the event
(measured with cachegrind: ~52k instructions per read against ~45k for ``orjson.loads`` of a
1.3 KB ConfigMap). Watch streams are read with no read timeout (their idle timeout is a
watchdog, see :class:`~kube_runtime.client.streaming.ResponseStream`), so this backend reads them
straight from the anyio stream and maps errors exactly as httpcore does. Reads with a timeout,
writes, connects and TLS go through httpcore's own anyio backend unchanged.

Pitfall: httpx offers no public way to choose httpcore's backend, so :func:`install` sets it on
the default transport's connection pool when that pool looks as expected (httpx 0.27/0.28) and
otherwise leaves httpx alone: correctness never depends on it, only the cost per read.
"""

# httpcore's interface takes timeouts as arguments (ASYNC109 is about our own APIs, not this one).
# ruff: noqa: ASYNC109

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
import httpcore
import httpx

__all__ = ["UntimedReadBackend", "install"]

_Receive = Callable[[int], Awaitable[bytes]]


class _Stream(httpcore.AsyncNetworkStream):
    __slots__ = ("_inner", "_receive")

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        anyio_stream = getattr(inner, "_stream", None)
        receive = getattr(anyio_stream, "receive", None)
        self._receive: _Receive | None = receive if callable(receive) else None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        receive = self._receive
        if timeout is not None or receive is None:
            return await self._inner.read(max_bytes, timeout)
        try:
            return await receive(max_bytes)
        except anyio.EndOfStream:
            return b""
        except (anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class UntimedReadBackend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend whose streams skip the cancel scope on reads without a timeout."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return _Stream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(path, timeout=timeout, socket_options=socket_options)
        return _Stream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def install(client: httpx.AsyncClient) -> bool:
    """Use :class:`UntimedReadBackend` for ``client``'s default transport; True when installed.

    Proxy transports (mounts) are left alone. Must be called before the first request.
    """
    transport = getattr(client, "_transport", None)
    pool = getattr(transport, "_pool", None)
    if not isinstance(transport, httpx.AsyncHTTPTransport) or not isinstance(
        pool, httpcore.AsyncConnectionPool
    ):
        return False
    if not hasattr(pool, "_network_backend"):
        return False
    pool._network_backend = UntimedReadBackend()
    return True

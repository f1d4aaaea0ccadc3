"""The client's HTTP transport: httpx's request/response types over an httpcore connection pool.

Guarantees: behaves as httpx's default transport does for the same pool settings (HTTP/1.1, or
HTTP/2 when asked; the same ``httpx`` exceptions for the same failures; the response's
``network_stream`` extension shows the connection), on :class:`~kube_runtime.client.network.
AnyioNetworkBackend`.

Why our own: httpx has no public way to choose httpcore's network backend, and an application that
instruments httpx globally (``HTTPXClientInstrumentor().instrument()``) wraps httpx's transport
class, which would give every API request a second span beside the client's own (see
:mod:`kube_runtime.client.tracing`). Built on httpcore's public ``AsyncConnectionPool`` and httpx's
public ``AsyncBaseTransport``, this transport avoids both. Proxies configured for the client use
httpx's own proxy transport.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterator

import httpcore
import httpx

from kube_runtime.client.network import AnyioNetworkBackend
from kube_runtime.client.stream_connection import StreamBudget, open_stream

__all__ = ["OWN_CONNECTION", "KubeTransport"]

#: A request extension: ``True`` asks for a body-less GET to be sent on a connection of its own and
#: its body read as it arrives (:mod:`kube_runtime.client.stream_connection`). The client sets it on
#: watches; it is ignored over HTTP/2 and by transports other than this one.
OWN_CONNECTION = "kube_runtime.own_connection"

# Most specific first: the first match wins.
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _httpx_errors(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for source, target in _ERRORS:
            if isinstance(exc, source):
                raise target(str(exc), request=request) from exc
        raise


class _Body(httpx.AsyncByteStream):
    """A response body from the pool, its failures raised as httpx's exceptions."""

    __slots__ = ("_request", "_response", "_stream")

    def __init__(
        self, response: httpcore.Response, stream: AsyncIterable[bytes], request: httpx.Request
    ) -> None:
        self._response = response
        self._stream = stream
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors(self._request):
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        with _httpx_errors(self._request):
            await self._response.aclose()


class KubeTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` over one ``httpcore.AsyncConnectionPool``.

    ``limits`` are httpx's; ``ssl_context`` is used for every ``https`` connection (None: no TLS
    configuration of ours, for plain-HTTP servers). ``max_streams`` bounds the requests on
    connections of their own (``OWN_CONNECTION``) open at once; None: no bound.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None,
        http2: bool,
        limits: httpx.Limits,
        max_streams: int | None = None,
    ) -> None:
        self._ssl_context = ssl_context
        # Over HTTP/2 a watch is one more stream on a shared connection: only HTTP/1.1 gives each
        # watch its own connection.
        self._own_streams = not http2
        self._streams = StreamBudget(max_streams) if max_streams is not None else None
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=http2,
            network_backend=AnyioNetworkBackend(),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = request.stream
        if not isinstance(body, httpx.AsyncByteStream):
            raise TypeError("KubeTransport sends async request bodies only")
        if self._own_streams and request.extensions.get(OWN_CONNECTION) and request.method == "GET":
            return await open_stream(request, self._ssl_context, self._streams)
        url = request.url
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw,
            content=body,
            extensions=request.extensions,
        )
        with _httpx_errors(request):
            response = await self._pool.handle_async_request(core_request)
        stream = response.stream
        if not isinstance(stream, AsyncIterable):
            raise TypeError("httpcore returned a synchronous body to an async pool")
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response, stream, request),
            extensions=response.extensions,
        )

    async def close_idle_connections(self) -> None:
        """Close the pooled connections no request is using; later requests open new ones. A TLS
        connection keeps the client certificate of its handshake: after the certificate changes
        (an exec plugin's, rotated), an idle connection would present the old one again."""
        for connection in self._pool.connections:  # httpcore's public view of the pool
            if connection.is_idle():
                await connection.aclose()

    async def aclose(self) -> None:
        await self._pool.aclose()

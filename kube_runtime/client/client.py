"""The HTTP client: one ``httpx.AsyncClient`` behind tracing, retry, metrics and auth layers.

A request goes through, outermost first (kube-rs's order, with tracing moved outside retry so one
span covers all attempts):

1. :mod:`~kube_runtime.client.tracing`: one client span per request, named after the API verb;
2. :mod:`~kube_runtime.client.retry`: 429/503/504 retried with backoff and ``Retry-After``;
3. auth (:mod:`~kube_runtime.client.auth`): credentials refreshed before they lapse; a 401 triggers
   one re-authentication and one resend per request;
4. :mod:`~kube_runtime.client.metrics`: ``rest_client_*`` per HTTP attempt;
5. httpx, over :mod:`~kube_runtime.client.transport` (httpcore's pool on our anyio sockets,
   :mod:`~kube_runtime.client.network`); an application's global httpx instrumentation does not
   see it, so each request has one span, the client's own.

Guarantees: every failure is typed: a non-2xx answer raises :class:`ApiError` (with the server's
``Status`` and any ``Retry-After``), a missing answer raises :class:`TransportError`, credentials
that cannot be obtained raise :class:`AuthenticationError`. An ordinary (non-streaming) request
returns or raises within its deadline (``ClientConfig.request_timeout``, 90 s, or the call's
``request_timeout``), which covers the whole call: every attempt, retry wait and re-authentication,
connecting, sending, the headers and the whole body (``read_timeout`` bounds one read, so a body
sent a byte at a time could otherwise hold a call for ever). Past it the call raises
:class:`RequestTimeout` (not retried, as in client-go); the connection is closed, not pooled
half-read; the span and ``rest_client_requests_total`` (``<error>``) record it. Pitfall: over HTTP/2
the timed-out stream is only abandoned (httpcore sends no ``RST_STREAM``). Streams get no read
timeout and no deadline. A stream opened with an idle timeout is bounded by it from the moment each
attempt is sent until its response headers arrive (a server or proxy that accepts the request and
never answers, or a connection unanswered within ``connect_timeout``, raises :class:`WatchTimeout`),
and then by it between bytes. Over HTTP/1.1 each watch holds a connection of its own, outside the
pool, and at most ``max_watches`` are open at once; a watch beyond that waits ``pool_timeout`` for
one to close. The pool holds ``max_watches + max_concurrent_requests`` connections (over HTTP/2 or a
proxy, watches share it), so open watches cannot starve ordinary requests; a request that finds no
connection fails after ``pool_timeout``.

HTTP/1.1 is the default (``ClientConfig.http2`` opts in). Measured on loopback (2-core box under
load, so only the ratios mean much): against the embedded API server, which speaks only HTTP/1.1,
the client costs ~1.7 ms CPU per GET sequentially and ~3.7 ms at 32 concurrent requests (httpx's
pool overhead, encode/httpx#3215); against a dual-protocol test server, h2c was level sequentially
and ~40% cheaper at 32 concurrent requests. It is not the default because over HTTP/2 every watch
shares one TCP connection and, in httpcore, one connection-level flow-control window (16 MiB) that
is only reopened as each stream's body is consumed: one slow watch consumer can stall them all. Over
HTTP/1.1 each watch owns its connection and the pool is sized for that.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import anyio
import httpx
import orjson
from opentelemetry.trace import TracerProvider
from prometheus_client import CollectorRegistry

from kube_runtime.client.auth import Authenticator, Credentials
from kube_runtime.client.config import ClientConfig
from kube_runtime.client.errors import (
    ApiError,
    KubeError,
    ObjectDecodeError,
    RequestTimeout,
    TransportError,
    WatchTimeout,
)
from kube_runtime.client.json import dumps_for_yaml
from kube_runtime.client.metrics import ClientMetrics
from kube_runtime.client.redact import redact
from kube_runtime.client.retry import RetryPolicy, parse_retry_after, send_with_retries
from kube_runtime.client.streaming import ResponseStream
from kube_runtime.client.tls import load_client_certificate, ssl_context
from kube_runtime.client.tracing import RequestSpan, RequestTracer
from kube_runtime.client.transport import OWN_CONNECTION, KubeTransport

__all__ = ["Client", "PendingClient", "ResponseStream"]

#: What httpx raises for an answer that could not be read: the connection failed, or the body did
#: not decode (a corrupt gzip or deflate body, which httpx reports as a ``DecodingError``, not a
#: ``TransportError``). Both become our :class:`TransportError`.
_UNREADABLE = (httpx.TransportError, httpx.DecodingError)

logger = logging.getLogger("kube_runtime.client")

Params = Mapping[str, str | int | bool | None]


class _Attempts:
    """Per-request state shared by all attempts: the credential used, whether 401 was retried, the
    request's deadline (a cancel scope around all attempts, infinite for a stream), whether an
    attempt is reading its response body (it got the headers), the span's trace headers."""

    __slots__ = ("credentials", "deadline", "reading_body", "reauthenticated", "trace_headers")

    def __init__(self, deadline: anyio.CancelScope, trace_headers: dict[str, str]) -> None:
        self.trace_headers = trace_headers
        self.credentials: Credentials | None = None
        self.reauthenticated = False
        self.deadline = deadline
        self.reading_body = False


class Client:
    """A connection to one API server. ``async with Client(config) as client`` or
    ``await client.aclose()`` when done.

    ``retry_policy`` defaults to :class:`RetryPolicy()`; ``tracer_provider`` to the global one;
    ``metrics_registry`` to ``prometheus_client.REGISTRY``. ``transport`` replaces httpx's network
    transport (for instrumentation; tests use real sockets).
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        retry_policy: RetryPolicy | None = None,
        tracer_provider: TracerProvider | None = None,
        metrics_registry: CollectorRegistry | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        base = httpx.URL(config.server)
        if base.scheme not in ("http", "https"):
            raise KubeError(f"unsupported server URL {config.server!r}")
        self.host = base.netloc.decode("ascii")
        self._ssl = (
            ssl_context(
                ca_file=config.ca_file,
                ca_data=config.ca_data,
                client_cert_file=config.client_cert_file,
                client_key_file=config.client_key_file,
                client_cert_data=config.client_cert_data,
                client_key_data=config.client_key_data,
                insecure_skip_tls_verify=config.insecure_skip_tls_verify,
            )
            if base.scheme == "https"
            else None
        )
        self._request_timeouts = httpx.Timeout(
            connect=config.connect_timeout,
            read=config.read_timeout,
            write=config.write_timeout,
            pool=config.pool_timeout,
        )
        self._stream_timeout = httpx.Timeout(
            connect=config.connect_timeout, read=None, write=config.write_timeout, pool=config.pool_timeout
        )
        limits = httpx.Limits(
            max_connections=config.max_watches + config.max_concurrent_requests,
            max_keepalive_connections=config.max_concurrent_requests,
            keepalive_expiry=30.0,
        )
        #: Whether socket reads without a timeout skip a per-read cancel scope (our own transport,
        #: :mod:`kube_runtime.client.transport`; a transport passed in is used as it is).
        self.untimed_reads = transport is None
        #: Our own transport, whose idle connections are closed when the client certificate changes
        #: (``None`` for a transport passed in: its pool is not ours to manage).
        self._own_transport: KubeTransport | None = None
        if transport is None:
            transport = self._own_transport = KubeTransport(
                ssl_context=self._ssl, http2=config.http2, limits=limits, max_streams=config.max_watches
            )
        self._http = httpx.AsyncClient(
            base_url=config.server,
            verify=self._ssl if self._ssl is not None else True,
            http2=config.http2,
            limits=limits,
            timeout=self._request_timeouts,
            proxy=config.proxy_url,
            trust_env=config.proxy_url is None,
            headers={"User-Agent": config.user_agent},
            transport=transport,
        )
        self._extensions: dict[str, Any] = {}
        if config.tls_server_name:
            self._extensions["sni_hostname"] = config.tls_server_name
        self._stream_extensions = {**self._extensions, OWN_CONNECTION: True}
        source = config.credential_source()
        self.authenticator = Authenticator(source) if source is not None else None
        self._loaded_certificate: Credentials | None = None
        self._retry = retry_policy if retry_policy is not None else RetryPolicy()
        self._tracer = RequestTracer(self.host, tracer_provider)
        self._metrics = ClientMetrics(self.host, metrics_registry)

    # -- construction and lifetime ------------------------------------------------------------------

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None, **kwargs: Any) -> Client:
        """A client for a kubeconfig context (see :meth:`ClientConfig.from_kubeconfig`)."""
        return cls(ClientConfig.from_kubeconfig(path, context), **kwargs)

    @classmethod
    def infer(cls, **kwargs: Any) -> PendingClient:
        """A client for the inferred configuration (see :meth:`ClientConfig.infer`): explicit
        kubeconfig, ``$KUBECONFIG``, in-cluster, ``~/.kube/config``. The files are read in a worker
        thread, so the result is pending: use it as the other constructors are used,
        ``async with Client.infer() as client:``, or ``client = await Client.infer()``."""

        async def build() -> Client:
            return cls(await ClientConfig.infer(), **kwargs)

        return PendingClient(build)

    @property
    def default_namespace(self) -> str:
        return self.config.namespace

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every pooled connection. Idempotent."""
        with anyio.CancelScope(shield=True):
            await self._http.aclose()

    # -- requests -----------------------------------------------------------------------------------

    async def request(
        self,
        verb: str,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
        content_type: str | None = None,
        accept: str | None = None,
        request_timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send one request and return the decoded JSON object (``{}`` for an empty body).

        ``body`` is JSON-encoded unless it is already ``bytes``; ``content_type`` defaults to
        ``application/json`` when there is a body. ``request_timeout`` as for :meth:`send`.
        """
        response = await self.send(
            verb,
            method,
            path,
            params=params,
            body=body,
            content_type=content_type,
            accept=accept,
            request_timeout=request_timeout,
        )
        return self.decode(response, verb)

    async def send(
        self,
        verb: str,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
        content_type: str | None = None,
        accept: str | None = None,
        request_timeout: float | None = None,
    ) -> httpx.Response:
        """Like :meth:`request` but returns the read ``httpx.Response`` (headers included).

        The whole call is bounded by ``request_timeout`` seconds (``None``: the client's
        ``ClientConfig.request_timeout``; ``math.inf``: no bound for this call); past it,
        :class:`RequestTimeout` (see the module docstring)."""
        content, content_type = _encode_body(body, content_type)
        response, span = await self._open(
            verb,
            method,
            path,
            params=params,
            content=content,
            content_type=content_type,
            accept=accept,
            stream=None,
            within=self.config.request_timeout if request_timeout is None else request_timeout,
        )
        span.end()
        return response

    @asynccontextmanager
    async def stream(
        self,
        verb: str,
        path: str,
        *,
        params: Params | None = None,
        accept: str | None = None,
        idle_timeout: float | None = None,
    ) -> AsyncIterator[ResponseStream]:
        """Open a streaming GET (a watch). Entering raises :class:`ApiError` for a non-2xx answer
        and :class:`TransportError` without one; the body is a :class:`ResponseStream`. Leaving
        closes the connection. With ``idle_timeout``, the same bound applies from sending the
        request to its response headers (each retry of a 429/503 gets the bound anew; exceeding it
        raises :class:`WatchTimeout` with ``phase="headers"``), and a body that then sends no bytes
        for that long ends (``ResponseStream.idle_timed_out`` tells it apart from a normal end).
        Without it a stream waits for headers and bytes forever."""
        timeout = self._stream_timeout
        response, span = await self._open(
            verb,
            "GET",
            path,
            params=params,
            content=None,
            content_type=None,
            accept=accept,
            stream=timeout,
            headers_within=idle_timeout,
        )
        body = ResponseStream(response, span, verb, idle_timeout=idle_timeout)
        try:
            yield body
        finally:
            body.close()
            with anyio.CancelScope(shield=True):
                await response.aclose()
            logger.debug("%s GET %s stream closed", verb, path)
            span.end()

    @staticmethod
    def decode(response: httpx.Response, verb: str = "") -> dict[str, Any]:
        """The JSON object in a successful response's body (``{}`` when empty). A body that is not
        a JSON object raises :class:`ObjectDecodeError` (as every other undecodable object does);
        an encoded (gzip) body that decodes to nothing raises it too, not ``{}``."""
        content = response.content
        if not content:
            if response.num_bytes_downloaded and response.headers.get("content-encoding"):
                raise ObjectDecodeError(
                    f"{verb or 'request'}: a {response.headers['content-encoding']} body of "
                    f"{response.num_bytes_downloaded} bytes decodes to nothing",
                    b"",
                )
            return {}
        try:
            decoded = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise ObjectDecodeError(f"{verb or 'request'}: response is not JSON", content) from exc
        if not isinstance(decoded, dict):
            raise ObjectDecodeError(f"{verb or 'request'}: response is not a JSON object", content)
        return decoded

    # -- layers -------------------------------------------------------------------------------------

    async def _open(
        self,
        verb: str,
        method: str,
        path: str,
        *,
        params: Params | None,
        content: bytes | None,
        content_type: str | None,
        accept: str | None,
        stream: httpx.Timeout | None,
        headers_within: float | None = None,
        within: float | None = None,
    ) -> tuple[httpx.Response, RequestSpan]:
        """Send with retries under a span; return a 2xx response (read unless ``stream``) and its
        still-open span. Raises typed errors and ends the span on failure. ``headers_within``
        bounds each attempt from sending to the response headers (:class:`WatchTimeout`);
        ``within`` bounds the whole call, the body included (:class:`RequestTimeout`)."""
        span = self._tracer.start(verb, method, path)
        seconds = math.inf if within is None else within
        deadline = anyio.CancelScope(deadline=anyio.current_time() + seconds)
        state = _Attempts(deadline, span.trace_headers())
        query = _query(params)

        def on_retry(attempt: int, status: int, delay: float) -> None:
            span.retry(attempt, status, delay)
            self._metrics.retry(method, status)

        async def attempt() -> httpx.Response:
            return await self._authenticated(
                state, method, path, query, content, content_type, accept, stream, headers_within
            )

        response: httpx.Response | None = None
        try:
            with deadline:  # a stream's is infinite, and is over before its body is read
                response = await send_with_retries(
                    attempt,
                    self._retry,
                    method=method,
                    content_type=content_type,
                    on_retry=on_retry,
                    deadline=deadline.deadline,
                )
            if response is None:  # the deadline passed: its scope caught the cancellation
                raise _timed_out(verb, method, path, seconds, reading_body=state.reading_body)
        except _NoHeaders as exc:
            span.failure(exc)
            span.end()
            raise WatchTimeout(
                f"{verb}: {exc}", phase="headers", seconds=exc.seconds, verb=verb, url=path
            ) from exc
        except _UNREADABLE as exc:
            span.failure(exc)
            span.end()
            # redact(): h11 quotes an illegal header value, which may be the Authorization one.
            raise TransportError(redact(f"{type(exc).__name__}: {exc}"), verb=verb, url=path) from exc
        except BaseException as exc:
            span.failure(exc)
            span.end()
            raise
        span.response(response.status_code)
        if response.is_success:
            return response, span
        try:
            body = await response.aread()
        except _UNREADABLE:
            body = b""
        finally:
            await response.aclose()
            span.end()
        raise ApiError.from_response(
            response.status_code, body, retry_after=parse_retry_after(response.headers.get("retry-after"))
        )

    async def _authenticated(
        self,
        state: _Attempts,
        method: str,
        path: str,
        query: list[tuple[str, str | int | float | bool | None]] | None,
        content: bytes | None,
        content_type: str | None,
        accept: str | None,
        stream: httpx.Timeout | None,
        headers_within: float | None,
    ) -> httpx.Response:
        """One attempt with current credentials; after a 401, one re-authentication and resend."""
        if self.authenticator is not None:
            state.credentials = await self.authenticator.credentials()
            self._use_certificate(state.credentials)
        response = await self._attempt(
            state, method, path, query, content, content_type, accept, stream, headers_within
        )
        if response.status_code == 401 and self.authenticator is not None and not state.reauthenticated:
            state.reauthenticated = True
            await response.aclose()
            state.credentials = await self.authenticator.reauthenticate(state.credentials)
            if self._use_certificate(state.credentials) and self._own_transport is not None:
                # The resend must not go out on a connection made with the rejected certificate.
                await self._own_transport.close_idle_connections()
            response = await self._attempt(
                state, method, path, query, content, content_type, accept, stream, headers_within
            )
        return response

    def _use_certificate(self, credentials: Credentials) -> bool:
        """Install an exec plugin's (new) client certificate for new connections; whether it
        replaced another one (connections made before present that one)."""
        if credentials is self._loaded_certificate or credentials.client_cert_pem is None:
            return False
        if self._ssl is not None and credentials.client_key_pem is not None:
            # Synchronous on purpose: a few KB on a private tmpfs path, and changing an SSL context
            # from a worker thread could race with handshakes running on the loop thread.
            load_client_certificate(self._ssl, credentials.client_cert_pem, credentials.client_key_pem)
        previous, self._loaded_certificate = self._loaded_certificate, credentials
        return previous is not None and previous.client_cert_pem != credentials.client_cert_pem

    async def _attempt(
        self,
        state: _Attempts,
        method: str,
        path: str,
        query: list[tuple[str, str | int | float | bool | None]] | None,
        content: bytes | None,
        content_type: str | None,
        accept: str | None,
        stream: httpx.Timeout | None,
        headers_within: float | None,
    ) -> httpx.Response:
        """One HTTP attempt, its ``rest_client_*`` metrics recorded: the status once a non-streaming
        response is read whole (a stream's at its headers), ``<error>`` when there is no answer or
        its body cannot be read, the request's deadline included."""
        credentials = state.credentials
        headers = {**state.trace_headers, "Accept": accept or "application/json"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if credentials is not None and credentials.token:
            headers["Authorization"] = f"Bearer {credentials.token}"
        request = self._http.build_request(
            method,
            path,
            params=query,
            content=content,
            headers=headers,
            timeout=self._request_timeouts if stream is None else stream,
            extensions=self._extensions if stream is None else self._stream_extensions,
        )
        started = anyio.current_time()
        try:
            if headers_within is None:
                response = await self._http.send(request, stream=True)
            else:
                response = await self._send_within(request, headers_within)
            elapsed = anyio.current_time() - started
            if stream is None:
                # Cancelled here (the deadline), httpcore closes the connection: h11 is mid-body.
                state.reading_body = True
                try:
                    await response.aread()
                finally:
                    await response.aclose()
                state.reading_body = False
        except BaseException as exc:
            if isinstance(exc, _UNREADABLE) or state.deadline.cancel_called:
                self._metrics.observe(method, None, anyio.current_time() - started)
            raise
        self._metrics.observe(method, response.status_code, elapsed)
        return response

    async def _send_within(self, request: httpx.Request, seconds: float) -> httpx.Response:
        """Send and wait at most ``seconds`` for the response headers (pool wait, connect, TLS and the
        server's answer together; a connection unanswered within the connect timeout ends it sooner);
        cancelling the send closes its connection, so nothing is left waiting on the socket."""
        with anyio.move_on_after(seconds):
            try:
                return await self._http.send(request, stream=True)
            except httpx.ConnectTimeout as exc:  # silence before the request could even be sent
                raise _NoHeaders(request.extensions["timeout"]["connect"], request, "connection") from exc
        raise _NoHeaders(seconds, request)


def _timed_out(verb: str, method: str, path: str, seconds: float, *, reading_body: bool) -> RequestTimeout:
    where = "the response body was still arriving" if reading_body else "no response headers yet"
    return RequestTimeout(
        f"{verb} {method} {path}: no complete response within {seconds:g}s (request_timeout); {where}",
        phase="body" if reading_body else "headers",
        seconds=seconds,
        verb=verb,
        url=path,
    )


class _NoHeaders(httpx.ReadTimeout):
    """No response headers (or no connection) in time: ``_open`` raises a WatchTimeout for it."""

    def __init__(self, seconds: float, request: httpx.Request, awaited: str = "response headers") -> None:
        super().__init__(f"no {awaited} within {seconds:g}s of sending the request", request=request)
        self.seconds = seconds


def _encode_body(body: Any, content_type: str | None) -> tuple[bytes | None, str | None]:
    if body is None:
        return None, content_type
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body), content_type or "application/json"
    if content_type == "application/apply-patch+yaml":
        return dumps_for_yaml(body), content_type
    return orjson.dumps(body), content_type or "application/json"


def _query(params: Params | None) -> list[tuple[str, str | int | float | bool | None]] | None:
    if not params:
        return None
    query: list[tuple[str, str | int | float | bool | None]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            query.append((key, "true" if value else "false"))
        else:
            query.append((key, str(value)))
    return query


class PendingClient:
    """A client still being configured (:meth:`Client.infer`): ``async with pending as client``
    builds, enters and closes it like ``async with Client(...)``; ``await pending`` returns the
    client (close it with ``aclose()`` or ``async with client``). Use it once."""

    __slots__ = ("_build", "_client")

    def __init__(self, build: Callable[[], Awaitable[Client]]) -> None:
        self._build = build
        self._client: Client | None = None

    def __await__(self) -> Generator[Any, None, Client]:
        return self._build().__await__()

    async def __aenter__(self) -> Client:
        self._client = await self._build()
        return await self._client.__aenter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.__aexit__(exc_type, exc, tb)

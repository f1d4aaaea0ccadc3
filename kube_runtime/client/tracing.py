"""One OpenTelemetry client span per API request, named after the API verb (kube-rs's TraceLayer).

The span is named ``get``, ``list``, ``watch``, ``create``, ``patch``, ``patch_status``, ``delete``,
``replace``, ``list_metadata``, ``watch_metadata``... and carries ``http.request.method``,
``url.path``, ``server.address``, ``http.response.status_code`` and
``http.client.request.duration`` (seconds, on the loop clock). It covers every attempt of the
request: each retry is a span event (``retry``, with the attempt number, status and delay). A 4xx or
5xx answer or a transport failure sets the span status to ERROR (with ``error.type``). A watch span
lasts until the stream is closed.

Guarantees: the span is a child of the span current when the request starts, but is never made
current itself (so work done while a watch is open is not parented to the watch). Every attempt
carries the span's trace context to the server (``traceparent``, by the global propagator), so an
API server that traces requests makes its spans children of the request's. Only the method,
path (never the query string) and status reach spans and logs: headers, and so bearer tokens, are
never recorded; a transport error's text (which may quote a header value) is redacted.

:func:`record_failure` marks any span failed by an exception with that text redacted too (the
reconcile span, ``instrument``'s spans, webhook reviews use it).
"""

from __future__ import annotations

import logging
import traceback

import anyio
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider

from kube_runtime.client.redact import redact

__all__ = ["RequestSpan", "RequestTracer", "record_failure"]

logger = logging.getLogger("kube_runtime.client.http")


def record_failure(span: Span, error: BaseException, *, escaped: bool = False) -> None:
    """Mark ``span`` failed by ``error``: an ``exception`` event with OpenTelemetry's semantic
    attributes (type, message, stacktrace, escaped), the span attribute ``error.type`` (the
    exception's fully qualified class name, as the semantic conventions ask of a failed span) and
    an ERROR status, every text redacted (:func:`~kube_runtime.client.redact.redact`: an error may
    quote a bearer token).

    Why not ``Span.record_exception`` (or ``start_as_current_span``'s automatic recording): they
    copy the message and stack trace as they are, and spans leave the process."""
    kind = type(error)
    module = kind.__module__
    name = f"{module}.{kind.__qualname__}" if module and module != "builtins" else kind.__qualname__
    message = redact(str(error))
    stacktrace = redact("".join(traceback.format_exception(kind, error, error.__traceback__)))
    span.add_event(
        "exception",
        {
            "exception.type": name,
            "exception.message": message,
            "exception.stacktrace": stacktrace,
            "exception.escaped": str(escaped),
        },
    )
    span.set_attribute("error.type", name)
    span.set_status(Status(StatusCode.ERROR, f"{kind.__name__}: {message}" if message else kind.__name__))


class RequestSpan:
    """The span of one request in flight; call :meth:`end` exactly once."""

    __slots__ = ("_ended", "_span", "_started", "method", "path", "verb")

    def __init__(self, span: Span, verb: str, method: str, path: str) -> None:
        self._span = span
        self._started = anyio.current_time()
        self._ended = False
        self.verb = verb
        self.method = method
        self.path = path

    @property
    def span(self) -> Span:
        return self._span

    def response(self, code: int) -> None:
        """The final attempt got an answer with this status (retried ones are :meth:`retry`)."""
        self._span.set_attribute("http.response.status_code", code)
        if code >= 400:
            self._span.set_attribute("error.type", str(code))
            self._span.set_status(Status(StatusCode.ERROR, f"HTTP {code}"))
            logger.debug("%s %s %s failed with status %d", self.verb, self.method, self.path, code)

    def retry(self, attempt: int, code: int, delay: float) -> None:
        """A retry of ``attempt`` (1-based) after status ``code``, ``delay`` seconds from now."""
        self._span.add_event(
            "retry", {"retry.attempt": attempt, "http.response.status_code": code, "retry.delay_s": delay}
        )
        logger.debug(
            "%s %s %s: status %d, retry %d in %.3fs", self.verb, self.method, self.path, code, attempt, delay
        )

    def failure(self, error: BaseException) -> None:
        """The request got no HTTP answer (connection, timeout, TLS...)."""
        kind = type(error).__name__
        self._span.set_attribute("error.type", kind)
        self._span.set_status(Status(StatusCode.ERROR, redact(f"{kind}: {error}")))
        logger.debug("%s %s %s failed with error %s", self.verb, self.method, self.path, kind)

    def trace_headers(self) -> dict[str, str]:
        """The headers naming this span as the parent of the server's work: W3C ``traceparent``
        (and whatever else the global propagator carries, ``OTEL_PROPAGATORS``). Empty while the
        span has no valid ids (no tracer provider). The API server's own tracing then joins the
        request's trace, as client-go's traced transport makes it do."""
        if not self._span.get_span_context().is_valid:
            return {}
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(self._span))
        return carrier

    def end(self) -> None:
        if self._ended:
            return
        self._ended = True
        self._span.set_attribute("http.client.request.duration", anyio.current_time() - self._started)
        self._span.end()


class RequestTracer:
    """Starts :class:`RequestSpan` s; ``tracer_provider`` defaults to the global one."""

    __slots__ = ("_host", "_tracer")

    def __init__(self, host: str, tracer_provider: TracerProvider | None = None) -> None:
        self._tracer: Tracer = trace.get_tracer("kube_runtime.client", tracer_provider=tracer_provider)
        self._host = host

    def start(self, verb: str, method: str, path: str) -> RequestSpan:
        span = self._tracer.start_span(
            verb or "HTTP",
            kind=SpanKind.CLIENT,
            attributes={"http.request.method": method, "url.path": path, "server.address": self._host},
        )
        logger.debug("%s %s %s requesting", verb, method, path)
        return RequestSpan(span, verb, method, path)

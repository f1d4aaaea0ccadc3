"""The span a reconcile runs in while no tracer provider is installed: ids, nothing recorded.

Without a provider every OpenTelemetry span is a no-op with invalid (all-zero) ids, so log lines
could not carry a ``trace_id``. :class:`UnrecordedSpan` makes a ``NonRecordingSpan`` with fresh
random ids current for the duration of a ``with`` block: every line logged inside one reconcile
shares its ``trace_id``/``span_id`` and no two reconciles share them. Nothing is recorded or
exported, spans opened inside it (the client's, a user's) are no-ops that carry the same ids, and
the ids match no trace in any backend. Install a provider (``setup_tracing()``) for real traces.

Cost: two random numbers and a context attach/detach per reconcile (no generator-based context
manager, no SDK). The ids come from :mod:`random` (not a cryptographic source: they are
correlation ids, as OpenTelemetry's own ``RandomIdGenerator`` ids are).
"""

from __future__ import annotations

import random
from contextvars import Token
from types import TracebackType

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

__all__ = ["UnrecordedSpan"]

_bits = random.Random().getrandbits
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)


class UnrecordedSpan:
    """``with UnrecordedSpan() as span:`` makes a non-recording span with fresh ids current.

    One instance per ``with`` block (not reentrant)."""

    __slots__ = ("_token",)

    def __init__(self) -> None:
        self._token: Token[otel_context.Context] | None = None

    def __enter__(self) -> trace.Span:
        span_context = SpanContext(
            trace_id=_bits(128) or 1, span_id=_bits(64) or 1, is_remote=False, trace_flags=_NOT_SAMPLED
        )
        span = NonRecordingSpan(span_context)
        self._token = otel_context.attach(trace.set_span_in_context(span))
        return span

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        token, self._token = self._token, None
        if token is not None:
            otel_context.detach(token)

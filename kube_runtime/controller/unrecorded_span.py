"""The span a reconcile runs in while no tracer provider is installed: ids, nothing recorded.

Without a provider every OpenTelemetry span is a no-op with invalid (all-zero) ids, so log lines
could not carry a ``trace_id``. :func:`unrecorded_span` makes a ``NonRecordingSpan`` with fresh
random ids, which the reconcile makes current while it runs: every line logged inside one reconcile
shares its ``trace_id``/``span_id`` and no two reconciles share them. Nothing is recorded or
exported, spans opened inside it (the client's, a user's) are no-ops that carry the same ids, and
the ids match no trace in any backend. Install a provider (``setup_tracing()``) for real traces.

Cost: two random numbers and a context attach/detach per reconcile (no generator-based context
manager, no SDK). The ids come from :mod:`random` (not a cryptographic source: they are
correlation ids, as OpenTelemetry's own ``RandomIdGenerator`` ids are).
"""

from __future__ import annotations

import random

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

__all__ = ["unrecorded_span"]

_bits = random.Random().getrandbits
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)


def unrecorded_span() -> trace.Span:
    """A non-recording span with fresh random ids (see the module docs); the caller makes it
    current for the reconcile (``context.attach(trace.set_span_in_context(span))``)."""
    span_context = SpanContext(
        trace_id=_bits(128) or 1, span_id=_bits(64) or 1, is_remote=False, trace_flags=_NOT_SAMPLED
    )
    return NonRecordingSpan(span_context)

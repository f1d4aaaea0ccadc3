"""Trace ids for a reconcile's log lines while no tracer provider is installed: ids, nothing recorded.

Without a provider every OpenTelemetry span is a no-op with invalid (all-zero) ids, so log lines
could not carry a ``trace_id``. Each attempt then gets :func:`unrecorded_ids`, fresh random
``(trace_id, span_id)`` kept in its :class:`~kube_runtime.controller.context.ReconcileInfo`; the
logging layer stamps them on every line logged inside the reconcile while no valid span is current.
So one reconcile's lines share their ids and no two reconciles share them. Nothing is recorded or
exported, OpenTelemetry's context is not touched, and the ids match no trace in any backend.
Install a provider (``setup_tracing()``) for real traces.

Cost: two random numbers per reconcile. The ids come from :mod:`random` (not a cryptographic
source: they are correlation ids, as OpenTelemetry's own ``RandomIdGenerator`` ids are).
"""

from __future__ import annotations

import random

__all__ = ["unrecorded_ids"]

_bits = random.Random().getrandbits
_SPAN_MASK = (1 << 64) - 1


def unrecorded_ids() -> tuple[int, int]:
    """Fresh non-zero ``(trace_id, span_id)``: 128 and 64 random bits (one draw of 192)."""
    bits = _bits(192)
    return bits >> 64 or 1, bits & _SPAN_MASK or 1

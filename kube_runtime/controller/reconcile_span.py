"""The ``reconciling object`` span of one reconcile attempt: sampled once, and cheap when dropped.

:class:`ReconcileSpans` is resolved once per controller run (the tracer behind OpenTelemetry's
global provider, or ``None`` while no provider is installed: then no span is made at all, and the
attempt's log lines carry ids from :mod:`~kube_runtime.controller.unrecorded_span`). Each attempt
then calls :meth:`ReconcileSpans.start`. Guarantees:

* The sampling decision is made once per reconcile, by the provider's sampler through the public
  ``Sampler.should_sample``, with the same inputs the SDK would give it (the current context as
  parent, the span's name, kind and attributes). A parent span that is current when the reconcile
  starts (a sampled incoming context) keeps its decision under a parent-based sampler.
* A span the sampler drops is a :class:`DroppedSpan`: a non-recording span (every recording call
  is a no-op, as on OpenTelemetry's ``NonRecordingSpan``) with fresh ids from the provider's id
  generator (the parent's trace id when there is a parent). It records and exports nothing, but it
  is current while the reconcile runs, so log lines carry its ``trace_id`` and ``span_id`` and the
  spans started inside (HTTP requests) join its trace, unsampled too. Its ``SpanContext`` is built
  when first read: most dropped reconciles log nothing and start no span, and pay for neither.
  With the SDK's own ``RandomIdGenerator`` a root is decided on one draw of 64 bits, the low half
  of its trace id (the half ``TraceIdRatioBased`` reads); a dropped root draws its trace id's high
  half and its span id only when its context is first read, so a reconcile that never reads it
  costs one small draw (the ids are as random as the generator's: 128 and 64 uniform bits).
* A span the sampler keeps is the SDK's own span (``Tracer.start_span``): the decision already made
  is handed to the SDK's second sampler call through :class:`ReconcileSampler`, so it is not drawn
  twice. All of this holds only when the provider's sampler is a :class:`ReconcileSampler`
  (``setup_tracing`` installs one); with any other sampler or tracer implementation the span is
  started through ``Tracer.start_span`` and the SDK decides (correct, but a dropped span then costs
  the SDK's full ``start_span``).

Pitfalls: the tracer is resolved when the run starts, so a provider installed later (after
``Controller.run``) is used from the next run on (OpenTelemetry lets a process install its global
provider once, so the resolved tracer never goes stale). The trace id of a sampled root span is
the one the SDK draws for it, not the one the ratio decision was drawn on: a downstream service
that samples by trace id *without* honouring the parent's flag decides on its own.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from contextvars import ContextVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult, TraceIdRatioBased
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState
from opentelemetry.util.types import Attributes, AttributeValue

from kube_runtime.controller.action import ReconcileReason
from kube_runtime.store.object_ref import ObjectRef

__all__ = ["RECONCILE_SPAN_NAME", "DroppedSpan", "ParentBasedRatio", "ReconcileSampler", "ReconcileSpans"]

#: The span name kube-rs gives every reconcile (kept so trace queries carry over).
RECONCILE_SPAN_NAME = "reconciling object"
#: Instrumentation scope of the reconcile spans (tests replace it with a tracer of their own).
_tracer: trace.Tracer = trace.get_tracer("kube_runtime.controller")
#: The decision :meth:`ReconcileSpans.start` made, set only while it calls the SDK's ``start_span``.
_decided: ContextVar[SamplingResult | None] = ContextVar("kube_runtime_reconcile_sampling", default=None)
_UNSAMPLED = TraceFlags(TraceFlags.DEFAULT)
_DROP = Decision.DROP
_TRACE_ID_LIMIT = TraceIdRatioBased.TRACE_ID_LIMIT
#: Root ids drawn in place of the SDK's ``RandomIdGenerator`` (the same distribution): correlation
#: ids, not secrets, so not from a cryptographic source (as the SDK's own are not).
_bits = random.Random().getrandbits
_HALF = 64


class DroppedSpan(trace.Span):
    """A span the sampler dropped: valid ids, not sampled, nothing recorded.

    It behaves as OpenTelemetry's ``NonRecordingSpan`` (every recording call is a no-op,
    ``is_recording()`` is false), but is made from its ids: the ``SpanContext`` (not remote, not
    sampled, with ``trace_state`` when given) is built on the first ``get_span_context()`` and
    kept, so a span nobody reads costs one small object.
    """

    __slots__ = ("_context", "_span_id", "_trace_id", "_trace_state")

    def __init__(self, trace_id: int, span_id: int, trace_state: TraceState | None = None) -> None:
        self._trace_id = trace_id
        self._span_id = span_id
        self._trace_state = trace_state
        self._context: SpanContext | None = None

    def get_span_context(self) -> SpanContext:
        context = self._context
        if context is None:
            context = self._context = SpanContext(
                self._trace_id, self._span_id, False, _UNSAMPLED, self._trace_state
            )
        return context

    def is_recording(self) -> bool:
        return False

    def end(self, end_time: int | None = None) -> None:
        pass

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        pass

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        pass

    def add_event(self, name: str, attributes: Attributes = None, timestamp: int | None = None) -> None:
        pass

    def add_link(self, context: SpanContext, attributes: Attributes = None) -> None:
        pass

    def update_name(self, name: str) -> None:
        pass

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        pass

    def record_exception(
        self,
        exception: BaseException,
        attributes: Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        pass

    def __repr__(self) -> str:
        return f"DroppedSpan({self.get_span_context()!r})"


class _DroppedRandomRoot(DroppedSpan):
    """A root dropped on the low 64 bits of its trace id: the high half and the span id are drawn
    with the context, when it is first read (until then ``_trace_id`` holds the low half only)."""

    __slots__ = ()

    def __init__(self, low: int) -> None:
        self._trace_id = low
        self._span_id = 0
        self._trace_state = None
        self._context = None

    def get_span_context(self) -> SpanContext:
        if self._context is None:
            bits = _bits(2 * _HALF)
            self._trace_id = (bits >> _HALF << _HALF | self._trace_id) or 1
            self._span_id = bits & _TRACE_ID_LIMIT or 1  # the draw's low 64 bits
        return DroppedSpan.get_span_context(self)  # built there, once


class ParentBasedRatio(ParentBased):
    """The SDK's ``ParentBasedTraceIdRatio`` (same decisions, same description), deciding a root
    span without building a new result each time.

    A span with no valid parent in ``parent_context`` (a reconcile started outside any trace) is
    sampled when the low 64 bits of its trace id fall under ``TraceIdRatioBased(rate).bound``, as
    the SDK's sampler samples it; its result carries the span's attributes when sampled, none
    when dropped, and no trace state (a root has no parent's to keep). A dropped root's result is
    one shared immutable object. Spans with a parent are decided by ``ParentBased`` itself.
    """

    __slots__ = ("_bound", "_dropped")

    def __init__(self, rate: float) -> None:
        root = TraceIdRatioBased(rate)
        super().__init__(root)
        self._bound = root.bound
        self._dropped = SamplingResult(Decision.DROP)

    @property
    def root_bound(self) -> int:
        """A root span is sampled when the low 64 bits of its trace id are below this."""
        return self._bound

    def samples_root(self, trace_id: int) -> bool:
        """Whether a root span (no valid parent) with ``trace_id`` is sampled: the low 64 bits of
        the id fall under the ratio's bound, as ``TraceIdRatioBased`` decides."""
        return trace_id & _TRACE_ID_LIMIT < self._bound

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if trace.get_current_span(parent_context).get_span_context().is_valid:
            return super().should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
        if self.samples_root(trace_id):
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
        return self._dropped


class ReconcileSampler(Sampler):
    """A sampler that samples as ``delegate`` does, and lets the controller decide each reconcile
    span once: the SDK's call made while :meth:`ReconcileSpans.start` starts a span it already
    decided returns that decision instead of drawing again.

    Every other span (HTTP requests, user spans, webhook reviews) is decided by ``delegate``
    unchanged; the description is the delegate's, so exported sampler metadata does not change.
    """

    __slots__ = ("_delegate",)

    def __init__(self, delegate: Sampler) -> None:
        self._delegate = delegate

    @property
    def delegate(self) -> Sampler:
        """The sampler that makes every decision."""
        return self._delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        decided = _decided.get()
        if decided is not None:
            return decided
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return self._delegate.get_description()


class ReconcileSpans:
    """Starts the reconcile spans of one run with the tracer resolved when it was made.

    ``enabled`` is false while no tracer provider is installed (OpenTelemetry's proxy or no-op
    provider, or ``OTEL_SDK_DISABLED``): every span would be an invalid no-op, so none is made.
    """

    __slots__ = ("_ids", "_random_ids", "_root_bound", "_rootless", "_sampler", "_tracer", "enabled")

    def __init__(self) -> None:
        tracer: trace.Tracer | None = _tracer
        if isinstance(tracer, trace.ProxyTracer):
            provider = trace.get_tracer_provider()
            if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
                tracer = None
            else:
                tracer = provider.get_tracer("kube_runtime.controller")
        if isinstance(tracer, trace.NoOpTracer):
            tracer = None
        self._tracer = tracer
        self.enabled = tracer is not None
        self._sampler: Sampler | None = None
        self._ids: IdGenerator | None = None
        #: A ParentBasedRatio delegate's root bound (``None``: every decision is the sampler's).
        self._root_bound: int | None = None
        #: The provider's ids are the SDK's plain random ones: a root's pair is drawn at once.
        self._random_ids = False
        #: The last parent context found to hold no valid span. OpenTelemetry contexts are
        #: immutable, so the same object holds no span either (a worker outside any trace passes
        #: the process's one empty context every time): its lookup is skipped.
        self._rootless: Context | None = None
        if isinstance(tracer, SdkTracer) and isinstance(tracer.sampler, ReconcileSampler):
            self._sampler = tracer.sampler.delegate
            self._ids = tracer.id_generator
            self._random_ids = type(self._ids) is RandomIdGenerator
            if type(self._sampler) is ParentBasedRatio:  # a subclass may decide otherwise
                self._root_bound = self._sampler.root_bound

    def start(
        self, obj_ref: ObjectRef, reason: ReconcileReason, parent_context: Context | None = None
    ) -> trace.Span:
        """The span of one attempt, not yet current (the caller attaches it and ends it), as a
        child of the span in ``parent_context`` (default: the current context; a caller that also
        needs that context to attach the span passes it, saving a lookup).

        Pitfall: only for an enabled instance (``enabled``); a disabled one raises ``TypeError``.
        """
        tracer = self._tracer
        if tracer is None:
            raise TypeError("no tracer provider: reconcile spans are disabled")
        sampler = self._sampler
        ids = self._ids
        if sampler is None or ids is None:
            attributes = {"object.ref": str(obj_ref), "object.reason": str(reason)}
            return tracer.start_span(RECONCILE_SPAN_NAME, context=parent_context, attributes=attributes)
        parent: SpanContext | None = None
        if parent_context is None or parent_context is not self._rootless:
            parent = trace.get_current_span(parent_context).get_span_context()
            if not parent.is_valid:
                parent = None
            self._rootless = parent_context if parent is None else None
        if parent is None:
            root_bound = self._root_bound
            if self._random_ids:
                low = _bits(_HALF)
                if root_bound is not None and low >= root_bound:
                    # A root dropped by ParentBasedRatio's own rule: decided without its call (and
                    # without the attributes, which a dropped root's result does not carry).
                    return _DroppedRandomRoot(low)
                trace_id = (_bits(_HALF) << _HALF | low) or 1
            else:
                trace_id = ids.generate_trace_id()
                if root_bound is not None and trace_id & _TRACE_ID_LIMIT >= root_bound:
                    return DroppedSpan(trace_id, ids.generate_span_id())
        else:
            trace_id = parent.trace_id
        attributes = {"object.ref": str(obj_ref), "object.reason": str(reason)}
        decision = sampler.should_sample(
            parent_context, trace_id, RECONCILE_SPAN_NAME, SpanKind.INTERNAL, attributes
        )
        if decision.decision is not _DROP:
            token = _decided.set(decision)
            try:
                return tracer.start_span(RECONCILE_SPAN_NAME, context=parent_context, attributes=attributes)
            finally:
                _decided.reset(token)
        return DroppedSpan(trace_id, ids.generate_span_id(), decision.trace_state)

"""The OpenTelemetry SDK's tracer with a shorter path for the spans a controller makes per reconcile.

The SDK starts a span through three generator-based context managers, a sampler call that
allocates its result, and a ``Span`` constructor with a dozen keyword arguments: several times
the runtime's own work per reconcile. :class:`FastPathTracerProvider` is the SDK's
``TracerProvider`` whose tracers take a direct path for the common case, a span that is sampled
by the default sampler (``ParentBased(ALWAYS_ON)``) and has no links:

* ``start_as_current_span`` is a plain context manager (and decorator, for sync and async
  functions) with the semantics of the SDK's ``start_as_current_span`` + ``use_span``: the span
  starts on ``__enter__``, becomes current, is detached, then an ``Exception`` (not a
  ``BaseException`` such as cancellation) is recorded and sets status ERROR, then the span ends;
* ``start_span`` decides sampling inline exactly as the default sampler would (a root span or a
  child of a sampled parent is recorded and sampled, keeping the parent's trace state) and fills
  the SDK's own ``Span`` directly; anything else (links, another sampler, an unsampled parent, a
  disabled tracer) goes through the SDK unchanged.

Spans are the SDK's ``Span`` objects, so processors, exporters, limits and ``ReadableSpan``
snapshots behave as with the stock provider. Pitfall: the direct fill relies on the SDK's span
fields; the provider checks them against a span the SDK built itself on first use and falls back
to the stock path for good if they differ (a newer SDK), so an upgrade costs speed, never
correctness.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Sequence
from time import time_ns
from types import TracebackType
from typing import Any, TypeVar

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import sampling
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace.propagation import _SPAN_KEY
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util import types

__all__ = ["FastPathSpan", "FastPathTracer", "FastPathTracerProvider"]

F = TypeVar("F", bound=Callable[..., Any])

_SAMPLED = trace_api.TraceFlags(trace_api.TraceFlags.SAMPLED)
_SAMPLED_RANDOM = trace_api.TraceFlags(trace_api.TraceFlags.SAMPLED | trace_api.TraceFlags.RANDOM_TRACE_ID)
_UNSET = Status(StatusCode.UNSET)
_RECORD_AND_SAMPLE = sampling.Decision.RECORD_AND_SAMPLE
_INTERNAL = trace_api.SpanKind.INTERNAL

# Whether the direct fill produces the SDK's span fields: None until checked, once per process.
_fields_match: bool | None = None
_check_lock = threading.Lock()


class FastPathTracer(sdk_trace.Tracer):
    """The SDK's ``Tracer`` with the direct path (see the module docs). Made by
    :class:`FastPathTracerProvider`; not constructed directly."""

    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: trace_api.SpanKind = _INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace_api.Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> CurrentSpan:
        return CurrentSpan(
            self,
            (name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception),
            end_on_exit,
        )

    def start_span(
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: trace_api.SpanKind = _INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace_api.Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace_api.Span:
        parent = trace_api.get_current_span(context).get_span_context()
        valid = parent is not None and parent.is_valid
        if (
            links
            or self.sampler is not sampling.DEFAULT_ON
            or not self._tracer_config.is_enabled
            or not _fields_match
            or parent is None
            or (valid and not parent.trace_flags.sampled)
        ):
            return super().start_span(
                name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
            )
        ids = self.id_generator
        if valid:
            trace_id = parent.trace_id
            trace_state = parent.trace_state
            random_trace_id = parent.trace_flags.random_trace_id
            parent_context: trace_api.SpanContext | None = parent
        else:
            trace_id = ids.generate_trace_id()
            trace_state = None
            random_trace_id = ids.is_trace_id_random()
            parent_context = None
        span_context = trace_api.SpanContext(  # positional: (trace, span, is_remote, flags, state)
            trace_id,
            ids.generate_span_id(),
            False,
            _SAMPLED_RANDOM if random_trace_id else _SAMPLED,
            trace_state,
        )
        span = _fill_span(
            self,
            name,
            span_context,
            parent_context,
            kind,
            attributes,
            record_exception,
            set_status_on_exception,
            self._tracer_metrics.start_span(parent_context, _RECORD_AND_SAMPLE),
        )
        # Span.start without its lock and double-start check (the span is new and unshared).
        span._start_time = start_time if start_time is not None else time_ns()
        self.span_processor.on_start(span, parent_context=context)
        return span


class FastPathSpan(sdk_trace._Span):
    """The SDK's span, whose end snapshot (what processors queue and exporters read) drops the
    bookkeeping containers it does not need: the attributes' plain dict instead of its bounded
    wrapper, and shared empty tuples for no events or links, unless something was dropped (then
    the wrappers are kept for their dropped counts). Spans queued for a batch export are then a
    third of the objects for the garbage collector to walk; what exporters see is the same."""

    def _readable_span(self) -> sdk_trace.ReadableSpan:
        attributes: Any = self._attributes
        events: Any = self._events
        links: Any = self._links
        events_dq, links_dq = events._dq, links._dq  # read directly: BoundedList's own iteration locks
        return sdk_trace.ReadableSpan(
            name=self._name,
            context=self._context,
            parent=self._parent,
            resource=self._resource,
            attributes=attributes if attributes.dropped else attributes._dict,
            events=events if events.dropped else (tuple(events_dq) if events_dq else ()),
            links=links if links.dropped else (tuple(links_dq) if links_dq else ()),
            kind=self.kind,
            status=self._status,
            start_time=self._start_time,
            end_time=self._end_time,
            instrumentation_info=self._instrumentation_info,
            instrumentation_scope=self._instrumentation_scope,
        )


def _fill_span(
    tracer: sdk_trace.Tracer,
    name: str,
    span_context: trace_api.SpanContext,
    parent: trace_api.SpanContext | None,
    kind: trace_api.SpanKind,
    attributes: types.Attributes,
    record_exception: bool,
    set_status_on_exception: bool,
    record_end_metrics: Callable[[], None] | None,
) -> sdk_trace.Span:
    """An unstarted SDK span with the fields its constructor would set."""
    limits = tracer._span_limits
    span: Any = sdk_trace._Span.__new__(FastPathSpan)  # type: ignore[no-untyped-call]
    span._name = name
    span._context = span_context
    span._kind = kind
    span._instrumentation_info = tracer.instrumentation_info
    span._instrumentation_scope = tracer._instrumentation_scope
    span._parent = parent
    span._start_time = None
    span._end_time = None
    span._resource = tracer.resource
    span._status = _UNSET
    span._sampler = tracer.sampler
    span._trace_config = None
    span._record_exception = record_exception
    span._set_status_on_exception = set_status_on_exception
    span._span_processor = tracer.span_processor
    span._limits = limits
    span._lock = threading.Lock()
    span._attributes = _span_attributes(limits, attributes)
    span._events = BoundedList(limits.max_events)
    span._links = BoundedList(limits.max_links)
    span._record_end_metrics = record_end_metrics
    return span  # type: ignore[no-any-return]


def _span_attributes(limits: sdk_trace.SpanLimits, attributes: types.Attributes) -> BoundedAttributes:
    """The span's attribute map. Plain string attributes within the limits (the reconcile span's)
    need no cleaning, so they are copied in as they are; anything else is cleaned by the SDK."""
    maxlen, max_value_len = limits.max_span_attributes, limits.max_span_attribute_length
    bounded = BoundedAttributes(maxlen, None, immutable=False, max_value_len=max_value_len)
    if not attributes:
        return bounded
    if maxlen is not None and len(attributes) > maxlen:
        return BoundedAttributes(maxlen, attributes, immutable=False, max_value_len=max_value_len)
    for key, value in attributes.items():
        if not (type(key) is str and key and type(value) is str):
            return BoundedAttributes(maxlen, attributes, immutable=False, max_value_len=max_value_len)
        if max_value_len is not None and len(value) > max_value_len:
            return BoundedAttributes(maxlen, attributes, immutable=False, max_value_len=max_value_len)
    bounded._dict.update(attributes)
    return bounded


def _check_fields(tracer: sdk_trace.Tracer) -> bool:
    """Whether :func:`_fill_span` sets exactly the fields (and plain values) the SDK sets."""
    context = trace_api.SpanContext(1, 2, is_remote=False, trace_flags=_SAMPLED)
    attributes = {"k": "v"}
    stock = sdk_trace._Span(
        name="check",
        context=context,
        sampler=tracer.sampler,
        resource=tracer.resource,
        attributes=attributes,
        span_processor=tracer.span_processor,
        instrumentation_info=tracer.instrumentation_info,
        limits=tracer._span_limits,
        instrumentation_scope=tracer._instrumentation_scope,
    )
    filled = _fill_span(tracer, "check", context, None, _INTERNAL, attributes, True, True, None)
    if not hasattr(BoundedList(1), "_dq"):
        return False
    ours, theirs = vars(filled), vars(stock)
    if set(ours) != set(theirs) or vars(ours["_attributes"]).keys() != vars(theirs["_attributes"]).keys():
        return False
    comparable = ("_attributes", "_events", "_links", "_status", "_lock", "_record_end_metrics")
    same = all(ours[k] == theirs[k] for k in ours if k not in comparable)
    return (
        same
        and dict(ours["_attributes"]) == dict(theirs["_attributes"]) == attributes
        and ours["_attributes"].dropped == theirs["_attributes"].dropped == 0
        and list(ours["_events"]) == list(theirs["_events"]) == []
        and list(ours["_links"]) == list(theirs["_links"]) == []
        and ours["_status"].status_code is theirs["_status"].status_code
        and type(ours["_lock"]) is type(theirs["_lock"])
    )


class CurrentSpan:
    """What :meth:`FastPathTracer.start_as_current_span` returns: a context manager starting the
    span on entry and making it current, or a decorator doing that around every call."""

    __slots__ = ("_args", "_end_on_exit", "_span", "_token", "_tracer")

    def __init__(self, tracer: FastPathTracer, args: tuple[Any, ...], end_on_exit: bool) -> None:
        self._tracer = tracer
        self._args = args
        self._end_on_exit = end_on_exit
        self._span: trace_api.Span | None = None
        self._token: object = None

    def __enter__(self) -> trace_api.Span:
        span = self._span = self._tracer.start_span(*self._args)
        self._token = context_api.attach(context_api.set_value(_SPAN_KEY, span))
        return span

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        span = self._span
        assert span is not None
        try:
            context_api.detach(self._token)  # type: ignore[arg-type]
            # Like use_span: only Exception subclasses are errors (not cancellation, GeneratorExit).
            if isinstance(exc, Exception) and isinstance(span, trace_api.Span) and span.is_recording():
                if self._args[6]:  # record_exception
                    span.record_exception(exc)
                if self._args[7]:  # set_status_on_exception
                    span.set_status(Status(StatusCode.ERROR, description=f"{type(exc).__name__}: {exc}"))
        finally:
            if self._end_on_exit:
                span.end()

    def _again(self) -> CurrentSpan:
        return CurrentSpan(self._tracer, self._args, self._end_on_exit)

    def __call__(self, func: F) -> F:
        """Decorate ``func``: each call runs in a new span (an async function: until it returns)."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._again():
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._again():
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class FastPathTracerProvider(sdk_trace.TracerProvider):
    """The SDK's ``TracerProvider`` handing out :class:`FastPathTracer` s (see the module docs);
    constructed with the same arguments."""

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes = None,
    ) -> trace_api.Tracer:
        tracer = super().get_tracer(
            instrumenting_module_name, instrumenting_library_version, schema_url, attributes
        )
        if type(tracer) is sdk_trace.Tracer:  # not the no-op tracer of a disabled SDK
            global _fields_match
            with _check_lock:
                if _fields_match is None:
                    try:
                        _fields_match = _check_fields(tracer)
                    except Exception:  # an SDK whose internals moved: stay on its own path
                        _fields_match = False
            tracer.__class__ = FastPathTracer  # same layout: only methods differ
        return tracer

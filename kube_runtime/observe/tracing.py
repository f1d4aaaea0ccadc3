"""OpenTelemetry setup and a decorator for user spans.

The controller opens a ``reconciling object`` span (attributes ``object.ref`` and
``object.reason``) around every reconcile and the client opens one span per HTTP request; both
use only the OpenTelemetry API, so they cost next to nothing until a tracer provider is
installed. :func:`setup_tracing` installs one, and exports over OTLP only when the environment
asks for it: calling it unconditionally is safe (no exporter, no connection attempts, when
nothing is configured) and still gives every span a trace id, which the logs carry. It samples
parent-based by trace-id ratio, :data:`DEFAULT_SAMPLE_RATIO` of the traces that start here unless
told otherwise (a reconcile whose span is dropped costs little and still has ids for its log
lines; see :mod:`kube_runtime.controller.reconcile_span`). Without any provider, reconcile log
lines still carry ids: fresh random ids per reconcile
(:mod:`kube_runtime.controller.unrecorded_span`): they group one reconcile's lines, but match no
exported trace, and client requests inside get no span of their own.

Because OpenTelemetry keeps the current span in a context variable, anything started inside the
reconciler (HTTP calls, a ``with tracer.start_as_current_span(...)`` block, a function decorated
with :func:`instrument`) becomes a child of the reconcile span with no extra wiring.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

from kube_runtime.client.tracing import record_failure
from kube_runtime.controller.reconcile_span import RECONCILE_SPAN_NAME, ParentBasedRatio, ReconcileSampler

__all__ = [
    "DEFAULT_SAMPLE_RATIO",
    "OTLP_ENDPOINT_VARS",
    "RECONCILE_SPAN_NAME",
    "TRACER_NAME",
    "instrument",
    "setup_tracing",
]

#: The share of traces started here (reconciles, webhook reviews, requests outside a reconcile)
#: that :func:`setup_tracing` samples by default: one in twenty. Chosen by cost: a dropped
#: reconcile span costs about 3-4 us of CPU, a sampled one about 25 us (the SDK's span, its batch
#: export, the garbage it leaves), so tracing adds 3-4 us + ratio x 22 us per reconcile
#: (``benches/bench_observe.py``): with metrics (about 2 us), 6-8 us at one in twenty, keeping
#: the 10 us budget on a noisy machine (at a tenth the same runs measured 8.7-12 us). A controller
#: doing ten reconciles a second still exports a trace every two seconds.
DEFAULT_SAMPLE_RATIO = 0.05
#: Instrumentation scope name used by kube_runtime's own spans.
TRACER_NAME = "kube_runtime"

P = ParamSpec("P")
R = TypeVar("R")


def _env_truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


#: Any of these set (non-empty) means "export over OTLP" when OTEL_TRACES_EXPORTER is not set.
OTLP_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def _exporters_from_env() -> list[SpanExporter]:
    configured = os.environ.get("OTEL_TRACES_EXPORTER", "").strip()
    if not configured:
        if not any(os.environ.get(name, "").strip() for name in OTLP_ENDPOINT_VARS):
            return []  # nothing configured: no exporter (OpenTelemetry's SDK would pick OTLP)
        configured = "otlp"
    names = [n.strip().lower() for n in configured.split(",")]
    exporters: list[SpanExporter] = []
    for name in names:
        if name in ("", "none"):
            continue
        if name == "console":
            exporters.append(ConsoleSpanExporter())
        elif name == "otlp":
            protocol = os.environ.get(
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
            )
            if protocol.strip() == "grpc":
                try:  # optional package: opentelemetry-exporter-otlp-proto-grpc
                    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
                        OTLPSpanExporter as GrpcExporter,
                    )
                except ImportError as exc:
                    raise RuntimeError(
                        "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs opentelemetry-exporter-otlp-proto-grpc"
                    ) from exc
                exporters.append(GrpcExporter())
            else:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

                exporters.append(OTLPSpanExporter())
        else:
            raise ValueError(f"unsupported OTEL_TRACES_EXPORTER entry {name!r} (otlp, console, none)")
    return exporters


#: ``OTEL_TRACES_SAMPLER`` values and their samplers (``OTEL_TRACES_SAMPLER_ARG`` is the ratio).
_ENV_SAMPLERS: Mapping[str, Callable[[float], Sampler]] = {
    "always_on": lambda _ratio: ALWAYS_ON,
    "always_off": lambda _ratio: ALWAYS_OFF,
    "traceidratio": TraceIdRatioBased,
    "parentbased_always_on": lambda _ratio: ParentBased(ALWAYS_ON),
    "parentbased_always_off": lambda _ratio: ParentBased(ALWAYS_OFF),
    "parentbased_traceidratio": ParentBasedRatio,
}


def _env_ratio() -> float:
    """``OTEL_TRACES_SAMPLER_ARG`` as a ratio; 1.0 when unset or invalid (the SDK's rule)."""
    try:
        ratio = float(os.environ.get("OTEL_TRACES_SAMPLER_ARG", ""))
    except ValueError:
        return 1.0
    return ratio if 0.0 <= ratio <= 1.0 else 1.0


def _sampler(sample_ratio: float) -> Sampler | None:
    """The provider's sampler: from ``OTEL_TRACES_SAMPLER`` when set, else parent-based by
    ``sample_ratio``; ``None`` (the SDK resolves it) for a sampler name only the SDK knows."""
    name = os.environ.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if not name:
        return ReconcileSampler(ParentBasedRatio(sample_ratio))
    make = _ENV_SAMPLERS.get(name)
    return None if make is None else ReconcileSampler(make(_env_ratio()))


def setup_tracing(
    service_name: str | None = None,
    *,
    sample_ratio: float = DEFAULT_SAMPLE_RATIO,
    resource_attributes: Mapping[str, str] | None = None,
    exporter: SpanExporter | None = None,
    batch: bool = True,
    set_global: bool = True,
) -> TracerProvider:
    """Create an SDK tracer provider and (by default) install it globally; export spans only when
    configured.

    Exporter choice, first match wins: ``exporter`` (tests pass an in-memory one, usually with
    ``batch=False`` so spans are exported as they end); ``OTEL_TRACES_EXPORTER`` (``otlp``,
    ``console``, ``none``, comma-separated); ``otlp`` when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set; otherwise **no exporter**. That last case
    differs from the OpenTelemetry SDK's own default (OTLP to localhost:4318, retried and logged
    as failures when no collector listens), so calling this unconditionally is safe: spans are
    still created with trace and span ids (the logs' ``trace_id``/``span_id``), then dropped.

    Sampling: parent-based by trace-id ratio, ``sample_ratio`` (default
    :data:`DEFAULT_SAMPLE_RATIO`, one in twenty) of the traces that start in this process; a span whose
    parent was sampled (an incoming ``traceparent``, a user's span around a controller run) is
    sampled, one whose parent was not is dropped. ``OTEL_TRACES_SAMPLER`` (and
    ``OTEL_TRACES_SAMPLER_ARG``) win over ``sample_ratio`` when set: ``always_on``,
    ``always_off``, ``traceidratio``, ``parentbased_always_on``, ``parentbased_always_off``,
    ``parentbased_traceidratio`` are decided once per reconcile (:class:`ReconcileSampler`); any
    other name is left to the SDK (entry-point samplers work, at the SDK's full cost for a dropped
    reconcile span). A dropped reconcile still logs with a ``trace_id`` and ``span_id`` (unexported).
    Raises ``ValueError`` for a ``sample_ratio`` outside [0, 1].

    Other configuration follows the OpenTelemetry environment variables, which win over arguments
    so operators can override a built-in default: ``OTEL_SERVICE_NAME`` and
    ``OTEL_RESOURCE_ATTRIBUTES`` (over ``service_name``/``resource_attributes``),
    ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``/``HEADERS``/``TIMEOUT``/``PROTOCOL`` (http/protobuf by
    default), ``OTEL_TRACES_SAMPLER[_ARG]``, ``OTEL_BSP_*``; ``OTEL_SDK_DISABLED=true`` returns a
    provider with no exporter.

    Pitfalls: OpenTelemetry allows the global provider to be set once per process (later calls
    log a warning and are ignored), and spans still in the batch queue are lost unless
    ``provider.shutdown()`` runs at exit.
    """
    attributes: dict[str, str] = dict(resource_attributes or {})
    env_resource = os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    env_names_service = "service.name=" in env_resource.replace(" ", "")
    if service_name and not os.environ.get("OTEL_SERVICE_NAME") and not env_names_service:
        attributes[SERVICE_NAME] = service_name
    env_keys = {item.split("=", 1)[0].strip() for item in env_resource.split(",") if "=" in item}
    for key in env_keys & set(attributes):
        if key != SERVICE_NAME:
            del attributes[key]  # the environment wins over code defaults
    if not 0.0 <= sample_ratio <= 1.0:
        raise ValueError(f"sample_ratio must be within [0, 1], not {sample_ratio!r}")
    provider = TracerProvider(sampler=_sampler(sample_ratio), resource=Resource.create(attributes))
    if not _env_truthy("OTEL_SDK_DISABLED"):
        exporters = [exporter] if exporter is not None else _exporters_from_env()
        for exp in exporters:
            processor: SpanProcessor = BatchSpanProcessor(exp) if batch else SimpleSpanProcessor(exp)
            provider.add_span_processor(processor)
    if set_global:
        trace.set_tracer_provider(provider)
    return provider


def instrument(
    name: str | None = None, *, attributes: Mapping[str, Any] | None = None
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Decorate an async function so each call runs in its own span (tracing's ``#[instrument]``).

    The span is a child of whatever span is current at the call, so inside a reconciler it nests
    under ``reconciling object``. An exception is recorded on the span, marks it as an error and
    propagates unchanged. ``name`` defaults to the function's qualified name.
    """
    tracer = trace.get_tracer(TRACER_NAME)

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        span_name = name or fn.__qualname__

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with tracer.start_as_current_span(
                span_name,
                attributes=dict(attributes or {}),
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                try:
                    return await fn(*args, **kwargs)
                except Exception as exc:
                    record_failure(span, exc, escaped=True)  # redacted, unlike the SDK's recording
                    raise

        return wrapper

    return decorate

"""OpenTelemetry setup and a decorator for user spans.

The controller opens a ``reconciling object`` span (attributes ``object.ref`` and
``object.reason``) around every reconcile and the client opens one span per HTTP request; both
use only the OpenTelemetry API, so they cost next to nothing until a tracer provider is
installed. :func:`setup_tracing` installs one, and exports over OTLP only when the environment
asks for it: calling it unconditionally is safe (no exporter, no connection attempts, when
nothing is configured) and still gives every span a trace id, which the logs carry. Without any
provider, reconcile log lines still carry ids: fresh random ids per
reconcile (:mod:`kube_runtime.controller.unrecorded_span`): they group one reconcile's lines, but
match no exported trace, and client requests inside get no span of their own.

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

__all__ = ["OTLP_ENDPOINT_VARS", "RECONCILE_SPAN_NAME", "TRACER_NAME", "instrument", "setup_tracing"]

#: The span name kube-rs gives every reconcile (kept so trace queries carry over).
RECONCILE_SPAN_NAME = "reconciling object"
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


def setup_tracing(
    service_name: str | None = None,
    *,
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
    provider = TracerProvider(resource=Resource.create(attributes))
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
            with tracer.start_as_current_span(span_name, attributes=dict(attributes or {})):
                return await fn(*args, **kwargs)

        return wrapper

    return decorate

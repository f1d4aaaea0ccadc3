"""OTLP setup from the OTEL_* environment, and the @instrument decorator's nesting."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from kube_runtime.observe.tracing import instrument, setup_tracing


def processors(provider: TracerProvider) -> list[object]:
    return list(provider._active_span_processor._span_processors)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_TRACES_EXPORTER",
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)


def test_service_name_and_resource_attributes_from_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    provider = setup_tracing(
        "my-controller", resource_attributes={"k8s.cluster.name": "dev"}, set_global=False
    )
    attrs = provider.resource.attributes
    assert attrs["service.name"] == "my-controller"
    assert attrs["k8s.cluster.name"] == "dev"
    (processor,) = processors(provider)
    assert isinstance(processor, BatchSpanProcessor)
    assert isinstance(processor._batch_processor._exporter, OTLPSpanExporter)
    provider.shutdown()


def test_nothing_configured_means_no_exporter_but_real_trace_ids() -> None:
    """The SDK's own default is OTLP to localhost:4318 (retries and error logs when no collector
    listens), which made every example guard the call; now calling it is always safe."""
    provider = setup_tracing("my-controller", set_global=False)
    assert processors(provider) == []
    with provider.get_tracer("t").start_as_current_span("reconciling object") as span:
        context = span.get_span_context()
        assert context.is_valid  # the logs' trace_id/span_id exist even without export
        assert trace.get_current_span() is span
    provider.shutdown()


@pytest.mark.parametrize("variable", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"])
def test_an_endpoint_alone_selects_otlp(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "http://collector:4318")
    (processor,) = processors(setup_tracing("x", set_global=False))
    assert isinstance(processor, BatchSpanProcessor)
    assert isinstance(processor._batch_processor._exporter, OTLPSpanExporter)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")  # an explicit choice wins over the endpoint
    assert processors(setup_tracing("x", set_global=False)) == []


def test_environment_wins_over_code_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,k8s.cluster.name=env-cluster")
    provider = setup_tracing("from-code", resource_attributes={"k8s.cluster.name": "code"}, set_global=False)
    attrs = provider.resource.attributes
    assert attrs["service.name"] == "from-env"
    assert attrs["deployment.environment"] == "prod"
    assert attrs["k8s.cluster.name"] == "env-cluster"


def test_exporter_selection_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert processors(setup_tracing("x", set_global=False)) == []
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    (processor,) = processors(setup_tracing("x", set_global=False, batch=False))
    assert isinstance(processor, SimpleSpanProcessor)
    assert isinstance(processor.span_exporter, ConsoleSpanExporter)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin-please")
    with pytest.raises(ValueError, match="zipkin-please"):
        setup_tracing("x", set_global=False)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert processors(setup_tracing("x", set_global=False)) == []


def test_explicit_exporter_receives_spans() -> None:
    exporter = InMemorySpanExporter()
    provider = setup_tracing("svc", exporter=exporter, batch=False, set_global=False, sample_ratio=1.0)
    with provider.get_tracer("t").start_as_current_span("one"):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.name == "one"
    assert span.resource.attributes["service.name"] == "svc"


async def test_instrument_nests_under_the_current_span(spans: InMemorySpanExporter) -> None:
    @instrument(attributes={"step": "inner"})
    async def inner(x: int) -> int:
        return x * 2

    @instrument("custom name")
    async def failing() -> None:
        raise RuntimeError("nope")

    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("reconciling object") as parent:
        assert await inner(21) == 42
        with pytest.raises(RuntimeError):
            await failing()
    by_name = {s.name: s for s in spans.get_finished_spans()}
    child = by_name["test_instrument_nests_under_the_current_span.<locals>.inner"]
    assert child.parent is not None
    assert child.parent.span_id == parent.get_span_context().span_id
    assert child.attributes == {"step": "inner"}
    failed = by_name["custom name"]
    assert failed.parent is not None
    assert failed.parent.span_id == parent.get_span_context().span_id
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.events[0].name == "exception"

"""The fast-path tracer makes the spans the stock SDK tracer makes: same fields, nesting, errors,
sampling and limits; only ids and timestamps differ."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased

from kube_runtime.observe import span_fast_path
from kube_runtime.observe.span_fast_path import FastPathTracer, FastPathTracerProvider
from kube_runtime.observe.tracing import setup_tracing

Scenario = Callable[[trace.Tracer], None]


def run(provider_cls: type[TracerProvider], scenario: Scenario, **provider_args: Any) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = provider_cls(**provider_args)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    scenario(provider.get_tracer("kube_runtime.controller", "1.0"))
    provider.shutdown()
    return list(exporter.get_finished_spans())


def shape(spans: list[ReadableSpan]) -> list[dict[str, Any]]:
    """Everything but ids and timestamps, with parents named instead of identified."""
    names = {span.context.span_id: span.name for span in spans}
    traces = {span.context.trace_id for span in spans}
    out = []
    for span in spans:
        out.append(
            {
                "name": span.name,
                "kind": span.kind,
                "attributes": dict(span.attributes or {}),
                "dropped_attributes": span.dropped_attributes,
                "dropped_events": span.dropped_events,
                "dropped_links": span.dropped_links,
                "parent": None if span.parent is None else names.get(span.parent.span_id, "remote"),
                "parent_remote": None if span.parent is None else span.parent.is_remote,
                "flags": int(span.context.trace_flags),
                "trace_state": dict(span.context.trace_state or {}),
                "status": (span.status.status_code, span.status.description),
                "events": [(e.name, sorted((e.attributes or {}).keys())) for e in span.events],
                "links": len(span.links),
                "scope": span.instrumentation_scope,
                "resource": dict(span.resource.attributes),
                "ended": span.end_time is not None and span.start_time is not None,
                "traces": len(traces),
            }
        )
    return out


def same_spans(scenario: Scenario, **provider_args: Any) -> list[dict[str, Any]]:
    stock = shape(run(TracerProvider, scenario, **provider_args))
    fast = shape(run(FastPathTracerProvider, scenario, **provider_args))
    assert fast == stock
    assert stock  # a scenario that exports nothing proves nothing
    return fast


RECONCILE_ATTRIBUTES = {"object.ref": "ConfigMap.v1./a.default", "object.reason": "object updated"}


def test_the_reconcile_span_and_its_children() -> None:
    def scenario(tracer: trace.Tracer) -> None:
        assert isinstance(tracer, trace.Tracer)
        with tracer.start_as_current_span("reconciling object", attributes=RECONCILE_ATTRIBUTES) as outer:
            assert trace.get_current_span() is outer
            with tracer.start_as_current_span("GET configmap", kind=trace.SpanKind.CLIENT) as inner:
                inner.set_attribute("http.status_code", 200)
                inner.add_event("retry", {"attempt": 1})
            tracer.start_span("manual").end()
        assert trace.get_current_span() is trace.INVALID_SPAN

    spans = same_spans(scenario)
    assert [s["parent"] for s in spans] == ["reconciling object", "reconciling object", None]
    assert spans[-1]["attributes"] == RECONCILE_ATTRIBUTES


def test_the_fast_path_is_taken() -> None:
    provider = FastPathTracerProvider()
    tracer = provider.get_tracer("t")
    assert isinstance(tracer, FastPathTracer)
    assert span_fast_path._fields_match is True
    assert provider.get_tracer("t") is tracer


def test_an_error_is_recorded_and_a_cancellation_is_not() -> None:
    def scenario(tracer: trace.Tracer) -> None:
        with pytest.raises(ValueError, match="broken"), tracer.start_as_current_span("failing"):
            raise ValueError("broken")
        with pytest.raises(KeyboardInterrupt), tracer.start_as_current_span("interrupted"):
            raise KeyboardInterrupt
        with (
            pytest.raises(ValueError, match="not recorded"),
            tracer.start_as_current_span("quiet", record_exception=False, set_status_on_exception=False),
        ):
            raise ValueError("not recorded")
        assert trace.get_current_span() is trace.INVALID_SPAN

    spans = same_spans(scenario)
    assert spans[0]["status"] == (trace.StatusCode.ERROR, "ValueError: broken")
    assert spans[0]["events"] == [
        ("exception", ["exception.escaped", "exception.message", "exception.stacktrace", "exception.type"])
    ]
    assert spans[1]["status"][0] is trace.StatusCode.UNSET
    assert spans[2]["events"] == []


def test_decorator_form_makes_a_span_per_call_sync_and_async() -> None:
    def scenario(tracer: trace.Tracer) -> None:
        @tracer.start_as_current_span("sync step")
        def sync_step(x: int) -> int:
            return x + 1

        @tracer.start_as_current_span("async step")
        async def async_step() -> str:
            await anyio.lowlevel.checkpoint()
            return trace.get_current_span().name  # type: ignore[attr-defined,no-any-return]

        assert sync_step(1) == 2
        assert sync_step(2) == 3
        assert anyio.run(async_step) == "async step"

    spans = same_spans(scenario)
    assert [s["name"] for s in spans] == ["sync step", "sync step", "async step"]


def test_remote_unsampled_and_linked_parents_match_the_sdk() -> None:
    remote = trace.SpanContext(
        0x1234,
        0x5678,
        is_remote=True,
        trace_flags=trace.TraceFlags(1),
        trace_state=trace.TraceState([("k", "v")]),
    )
    unsampled = trace.SpanContext(0x1234, 0x9999, is_remote=False, trace_flags=trace.TraceFlags(0))

    def scenario(tracer: trace.Tracer) -> None:
        ctx = trace.set_span_in_context(trace.NonRecordingSpan(remote))
        with tracer.start_as_current_span("under remote", context=ctx):
            pass
        ctx = trace.set_span_in_context(trace.NonRecordingSpan(unsampled))
        with tracer.start_as_current_span("under unsampled", context=ctx) as span:
            assert not span.is_recording()
        with tracer.start_as_current_span("linked", links=[trace.Link(remote)]):
            pass

    spans = same_spans(scenario)
    assert spans[0]["parent"] == "remote"
    assert spans[0]["trace_state"] == {"k": "v"}
    assert [s["name"] for s in spans] == ["under remote", "linked"]


@pytest.mark.parametrize(
    "attributes",
    [
        {"n": 3, "ok": True, "ratio": 0.5, "tags": ["a", "b"]},
        {"": "empty key", "bad": object()},
        {"long": "x" * 50},
        {f"k{i}": "v" for i in range(5)},
    ],
)
def test_attributes_are_cleaned_and_limited_as_the_sdk_does(attributes: dict[str, Any]) -> None:
    def scenario(tracer: trace.Tracer) -> None:
        with tracer.start_as_current_span("s", attributes=attributes):
            pass

    same_spans(scenario, span_limits=SpanLimits(max_span_attributes=3, max_span_attribute_length=10))


def test_events_beyond_the_limit_are_counted_as_dropped() -> None:
    def scenario(tracer: trace.Tracer) -> None:
        with tracer.start_as_current_span("s", attributes=RECONCILE_ATTRIBUTES) as span:
            for i in range(3):
                span.add_event(f"e{i}", {"i": i})
            span.set_attribute("late", "added while running")

    (span,) = same_spans(scenario, span_limits=SpanLimits(max_events=2))
    assert span["dropped_events"] == 1
    assert span["attributes"]["late"] == "added while running"


@pytest.mark.parametrize("sampler", [ALWAYS_OFF, ParentBased(TraceIdRatioBased(1.0))])
def test_other_samplers_take_the_sdk_path(sampler: Any) -> None:
    def scenario(tracer: trace.Tracer) -> None:
        with tracer.start_as_current_span("s", attributes=RECONCILE_ATTRIBUTES):
            pass
        tracer.start_span("t").end()

    stock = shape(run(TracerProvider, scenario, sampler=sampler))
    assert shape(run(FastPathTracerProvider, scenario, sampler=sampler)) == stock


@pytest.fixture
def moved_internals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(span_fast_path, "_fields_match", False)


def test_an_sdk_whose_span_fields_moved_gets_the_stock_path(moved_internals: None) -> None:
    def scenario(tracer: trace.Tracer) -> None:
        with (
            tracer.start_as_current_span("reconciling object", attributes=RECONCILE_ATTRIBUTES),
            tracer.start_as_current_span("child"),
        ):
            pass

    same_spans(scenario)


def test_setup_tracing_uses_the_fast_path_and_a_token_survives_nesting() -> None:
    exporter = InMemorySpanExporter()
    provider = setup_tracing("svc", exporter=exporter, batch=False, set_global=False)
    tracer = provider.get_tracer("t")
    assert isinstance(tracer, FastPathTracer)
    before = context_api.get_current()
    with tracer.start_as_current_span("a"), tracer.start_as_current_span("b"):
        pass
    assert context_api.get_current() == before
    assert [s.name for s in exporter.get_finished_spans()] == ["b", "a"]
    assert exporter.get_finished_spans()[0].resource.attributes["service.name"] == "svc"

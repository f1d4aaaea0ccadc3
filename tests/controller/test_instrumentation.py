"""What the controller records itself: the reconcile span, the reconcile context, work-queue metrics."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from prometheus_client import CollectorRegistry

from kube_runtime.client import Api
from kube_runtime.controller import (
    Action,
    Controller,
    ReconcileInfo,
    current_reconcile,
    queue_metrics,
    reconcile_span,
)
from kube_runtime.observe.tracing import setup_tracing
from tests.controller.conftest import config_map, take_until

pytestmark = pytest.mark.anyio


async def test_each_reconcile_runs_in_a_span_that_nests_client_spans(
    config_maps: Api, spans: InMemorySpanExporter
) -> None:
    await config_maps.create(config_map("a"))
    parents: list[Any] = []

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        current = trace.get_current_span()
        parents.append(current.get_span_context())
        with reconcile_span._tracer.start_as_current_span("GET configmap"):  # like a client span
            pass
        return Action.await_change()

    async with Controller(config_maps).run(reconcile, None, None) as results:
        await take_until(results, lambda items: len(items) == 1)
    finished = {span.name: span for span in spans.get_finished_spans()}
    outer = finished["reconciling object"]
    assert dict(outer.attributes or {}) == {
        "object.ref": "ConfigMap.v1./a.default",
        "object.reason": "object updated",
    }
    assert parents[0].span_id == outer.context.span_id
    client = finished["GET configmap"]
    assert client.parent is not None
    assert client.parent.span_id == outer.context.span_id


async def test_a_failed_reconcile_marks_its_span(config_maps: Api, spans: InMemorySpanExporter) -> None:
    await config_maps.create(config_map("a"))

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        raise RuntimeError("broken")

    def policy(obj: dict[str, Any], error: Exception, ctx: Any) -> Action:
        return Action.await_change()

    async with Controller(config_maps).run(reconcile, policy, None) as results:
        await take_until(results, lambda items: len(items) == 1)
    [span] = spans.get_finished_spans()
    assert span.status.status_code == trace.StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]
    assert (span.attributes or {})["error.type"] == "RuntimeError"


async def test_an_unsampled_reconcile_span_still_parents_its_children(
    config_maps: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not sampled: nothing is exported, not even for a failure, but the span is current while
    the reconcile runs, so its children share its trace and are unsampled too."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    monkeypatch.setattr(reconcile_span, "_tracer", tracer)
    await config_maps.create(config_map("a"))
    seen: list[tuple[trace.SpanContext, trace.SpanContext]] = []
    before = otel_context.get_current()

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        outer = trace.get_current_span().get_span_context()
        with tracer.start_as_current_span("GET configmap") as child:
            seen.append((outer, child.get_span_context()))
        raise RuntimeError("broken")

    def policy(obj: dict[str, Any], error: Exception, ctx: Any) -> Action:
        return Action.await_change()

    async with Controller(config_maps).run(reconcile, policy, None) as results:
        await take_until(results, lambda items: len(items) == 1)
    [(outer, child)] = seen
    assert outer.is_valid
    assert not outer.trace_flags.sampled
    assert child.trace_id == outer.trace_id
    assert not child.trace_flags.sampled
    assert exporter.get_finished_spans() == ()
    assert otel_context.get_current() == before


async def test_current_reconcile_is_set_inside_and_only_inside(config_maps: Api) -> None:
    for name in ("a", "b"):
        await config_maps.create(config_map(name))
    seen: list[ReconcileInfo] = []

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        await anyio.sleep(1)  # both run at once: each must still see its own
        info = current_reconcile()
        assert info is not None
        assert info.obj_ref.name == obj["metadata"]["name"]
        seen.append(info)
        return Action.await_change()

    async with Controller(config_maps, name="cms").run(reconcile, None, None) as results:
        await take_until(results, lambda items: len(items) == 2)
    assert current_reconcile() is None
    assert {str(info.reason) for info in seen} == {"object updated"}
    assert {info.controller for info in seen} == {"cms"}
    assert len({info.reconcile_id for info in seen}) == 2


_user_field: ContextVar[str | None] = ContextVar("user_field", default=None)


async def test_reconciles_on_one_worker_see_only_their_own_context(config_maps: Api) -> None:
    """At concurrency 1 one worker runs every reconcile: each still sees its own
    ``current_reconcile()`` (never the previous run's) and none of the previous run's context
    variables (a reconciler binding log fields, say)."""
    for name in ("a", "b", "c"):
        await config_maps.create(config_map(name))
    seen: list[tuple[str, str | None, str | None]] = []

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        name = obj["metadata"]["name"]
        leftover = _user_field.get()
        _user_field.set(name)
        await anyio.sleep(0.01)
        info = current_reconcile()
        assert info is not None
        seen.append((name, info.obj_ref.name, leftover))
        return Action.await_change()

    controller = Controller(config_maps, name="one-worker").with_config(concurrency=1)
    async with controller.run(reconcile, None, None) as results:
        await take_until(results, lambda items: len(items) == 3)
    assert sorted(seen) == [("a", "a", None), ("b", "b", None), ("c", "c", None)]
    assert current_reconcile() is None
    assert _user_field.get() is None


@pytest.mark.parametrize("provider_kind", ["sdk", "setup_tracing", "setup_tracing, ratio 0"])
async def test_reconcile_spans_on_one_worker_are_each_a_root(
    config_maps: Api, monkeypatch: pytest.MonkeyPatch, provider_kind: str
) -> None:
    """The span an attempt makes current stays in the attempt's own context: the next attempt on
    the same worker starts a trace of its own, never a child of the previous span (recorded or
    dropped)."""
    exporter = InMemorySpanExporter()
    if provider_kind == "sdk":
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        ratio = 0.0 if provider_kind.endswith("ratio 0") else 1.0
        provider = setup_tracing("test", exporter=exporter, batch=False, set_global=False, sample_ratio=ratio)
    monkeypatch.setattr(reconcile_span, "_tracer", provider.get_tracer("test"))
    names = [f"cm-{i}" for i in range(5)]
    for name in names:
        await config_maps.create(config_map(name))
    before = otel_context.get_current()
    current: list[trace.SpanContext] = []

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        current.append(trace.get_current_span().get_span_context())
        await anyio.lowlevel.checkpoint()
        return Action.await_change()

    controller = Controller(config_maps, name="one-worker").with_config(concurrency=1)
    async with controller.run(reconcile, None, None) as results:
        await take_until(results, lambda items: len(items) == len(names))
    assert len(current) == len(names)
    assert all(c.is_valid for c in current)
    assert len({c.trace_id for c in current}) == len(names)  # a leaked span would be their parent
    finished = exporter.get_finished_spans()
    if provider_kind.endswith("ratio 0"):
        assert finished == ()
    else:
        assert all(span.parent is None for span in finished)
        assert [c.span_id for c in current] == [span.context.span_id for span in finished]
    assert otel_context.get_current() == before


def sample(registry: CollectorRegistry, metric: str, **labels: str) -> float | None:
    return registry.get_sample_value(metric, labels)


async def test_work_queue_metrics(config_maps: Api) -> None:
    for name in ("a", "b", "c"):
        await config_maps.create(config_map(name))
    registry = CollectorRegistry()
    release = anyio.Event()
    started = anyio.Event()
    runs: list[str] = []

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        runs.append(obj["metadata"]["name"])
        started.set()
        await release.wait()
        return Action.requeue(60) if len(runs) == 1 else Action.await_change()

    labels = {"name": "cms", "controller": "cms"}
    controller = Controller(config_maps, name="cms", registry=registry).with_config(concurrency=1)
    async with controller.run(reconcile, None, None) as results:
        await started.wait()
        await anyio.sleep(5)
        assert sample(registry, "controller_runtime_active_workers", controller="cms") == 1
        assert sample(registry, "controller_runtime_max_concurrent_reconciles", controller="cms") == 1
        # Two listed objects wait for the worker, at controller-runtime's low priority.
        assert sample(registry, "workqueue_depth", priority="-100", **labels) == 2
        assert sample(registry, "workqueue_depth", priority="0", **labels) == 0
        assert sample(registry, "workqueue_unfinished_work_seconds", **labels) == 5.0
        assert sample(registry, "workqueue_longest_running_processor_seconds", **labels) == 5.0
        release.set()
        await take_until(results, lambda items: len(items) == 4, within=120)
    assert sample(registry, "workqueue_adds_total", **labels) == 4  # three listed + one requeue
    assert sample(registry, "workqueue_retries_total", **labels) == 1
    assert sample(registry, "workqueue_work_duration_seconds_count", **labels) == 4
    assert sample(registry, "workqueue_queue_duration_seconds_count", **labels) == 4
    # The second object waited the 5 s the first one was blocked.
    assert sample(registry, "workqueue_queue_duration_seconds_bucket", le="1.0", **labels) == 2
    assert sample(registry, "workqueue_depth", priority="-100", **labels) == 0
    assert sample(registry, "controller_runtime_active_workers", controller="cms") == 0
    assert sample(registry, "workqueue_unfinished_work_seconds", **labels) is None  # run ended


def test_metric_registration_is_idempotent() -> None:
    registry = CollectorRegistry()
    first = queue_metrics("x", registry)
    second = queue_metrics("x", registry)
    queue_metrics("y", registry)
    first.on_added(2)
    second.on_added(1)
    assert registry.get_sample_value("workqueue_adds_total", {"name": "x", "controller": "x"}) == 3
    assert registry.get_sample_value("workqueue_adds_total", {"name": "y", "controller": "y"}) == 0


async def test_depth_is_cleared_when_a_run_is_stopped_forcefully(config_maps: Api) -> None:
    """Leaving the run's block early drops what was queued without a last pass of the runner's
    loop: the depth series must not keep reporting objects no worker will ever take."""
    for name in ("a", "b", "c"):
        await config_maps.create(config_map(name))
    registry = CollectorRegistry()
    started = anyio.Event()

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        started.set()
        await anyio.sleep_forever()
        return Action.await_change()

    labels = {"name": "cms", "controller": "cms"}
    controller = Controller(config_maps, name="cms", registry=registry).with_config(concurrency=1)
    async with controller.run(reconcile, None, None):
        await started.wait()
        await anyio.sleep(1)
        assert sample(registry, "workqueue_depth", priority="-100", **labels) == 2
    assert sample(registry, "workqueue_depth", priority="-100", **labels) == 0
    assert sample(registry, "workqueue_depth", priority="0", **labels) == 0
    assert sample(registry, "controller_runtime_active_workers", controller="cms") == 0

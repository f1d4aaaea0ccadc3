"""The span of a reconcile that did not complete: cancelled by a forceful shutdown, the graceful
shutdown's deadline, leadership lost or the run's block left early, it ends with status ERROR and
a description naming why (a trace backend must not show it as fine); one cut short by its timeout
records ``ReconcileTimedOut``. Unsampled, nothing is recorded. Virtual clock, embedded API server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

from kube_runtime.client import Api
from kube_runtime.controller import Action, Controller, ControllerRun, ReconcileTimedOut, reconcile_span
from tests.controller.conftest import config_map, take_until

pytestmark = pytest.mark.anyio


class Hung:
    """A reconcile that never finishes."""

    def __init__(self) -> None:
        self.started = anyio.Event()

    async def __call__(self, obj: dict[str, Any], _ctx: Any) -> Action:
        self.started.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover


def only_span(spans: InMemorySpanExporter) -> ReadableSpan:
    [span] = spans.get_finished_spans()
    assert span.name == "reconciling object"
    assert span.end_time is not None
    return span


def assert_cancelled(span: ReadableSpan, why: str) -> None:
    assert span.status.status_code == trace.StatusCode.ERROR
    assert span.status.description == f"cancelled: {why}"
    assert (span.attributes or {})["error.type"] == "cancelled"
    assert [event.name for event in span.events] == []  # no stack trace of the cancellation


async def stopped_while_hung(run: ControllerRun[None], reconcile: Hung, stop: Callable[[], None]) -> None:
    """Enter ``run`` and call ``stop`` once its reconcile hangs: the run must end forcefully, with
    no result."""
    with anyio.fail_after(60):
        async with run as results:
            await reconcile.started.wait()
            stop()
            assert [item async for item in results] == []
    assert run.forced_shutdown


async def test_a_forceful_shutdown_marks_the_span_of_the_reconcile_it_cancels(
    config_maps: Api, spans: InMemorySpanExporter
) -> None:
    await config_maps.create(config_map("a"))
    reconcile = Hung()
    run: ControllerRun[None] = Controller(config_maps).run(reconcile, None, None)
    await stopped_while_hung(run, reconcile, run.force_shutdown)
    assert_cancelled(only_span(spans), "forceful shutdown")
    assert trace.get_current_span() is trace.INVALID_SPAN


async def test_the_graceful_shutdown_deadline_marks_the_span_of_the_reconcile_it_cancels(
    config_maps: Api, spans: InMemorySpanExporter
) -> None:
    await config_maps.create(config_map("a"))
    reconcile = Hung()
    stop = anyio.Event()
    controller = Controller(config_maps).graceful_shutdown_on(stop).with_graceful_shutdown_timeout(10)
    run: ControllerRun[None] = controller.run(reconcile, None, None)
    await stopped_while_hung(run, reconcile, stop.set)
    assert_cancelled(only_span(spans), "graceful shutdown timed out")


async def test_leaving_the_run_early_marks_the_span_of_the_reconcile_it_cancels(
    config_maps: Api, spans: InMemorySpanExporter
) -> None:
    await config_maps.create(config_map("a"))
    reconcile = Hung()
    async with Controller(config_maps).run(reconcile, None, None):
        await reconcile.started.wait()
    assert_cancelled(only_span(spans), "run stopped")


async def test_a_cancellation_from_outside_the_run_marks_the_span(
    config_maps: Api, spans: InMemorySpanExporter
) -> None:
    """The task holding the run is cancelled (its caller's scope): the reconcile did not
    complete either."""
    await config_maps.create(config_map("a"))
    reconcile = Hung()
    with anyio.CancelScope() as outer:
        async with Controller(config_maps).run(reconcile, None, None):
            await reconcile.started.wait()
            outer.cancel()
            await anyio.sleep_forever()
    assert outer.cancelled_caught
    span = only_span(spans)
    assert span.status.status_code == trace.StatusCode.ERROR
    assert span.status.description == "cancelled"  # the run cannot tell why
    assert (span.attributes or {})["error.type"] == "cancelled"


async def test_a_reconcile_timeout_still_records_its_failure(
    config_maps: Api, spans: InMemorySpanExporter
) -> None:
    await config_maps.create(config_map("a"))
    reconcile = Hung()

    def policy(obj: dict[str, Any], error: Exception, ctx: Any) -> Action:
        return Action.await_change()

    controller = Controller(config_maps).with_reconcile_timeout(5)
    async with controller.run(reconcile, policy, None) as results:
        [item] = await take_until(results, lambda items: len(items) == 1)
    assert isinstance(item, ReconcileTimedOut)
    span = only_span(spans)
    assert span.status.status_code == trace.StatusCode.ERROR
    assert span.status.description == "TimeoutError: reconcile did not finish within 5 s"
    assert [event.name for event in span.events] == ["exception"]


async def test_an_unsampled_cancelled_reconcile_records_nothing(
    config_maps: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(reconcile_span, "_tracer", provider.get_tracer("test"))
    await config_maps.create(config_map("a"))
    reconcile = Hung()
    run: ControllerRun[None] = Controller(config_maps).run(reconcile, None, None)
    async with run:
        await reconcile.started.wait()
        run.force_shutdown()
    assert exporter.get_finished_spans() == ()

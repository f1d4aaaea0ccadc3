"""Cost of the built-in observability per reconcile: metrics and tracing on versus off.

Two levels:

* micro: the per-reconcile work in isolation (best of several rounds, ns per call):
  ``ResultRecorder.record`` (controller-runtime metrics, with and without hot-loop detection),
  the ``reconciling object`` span with no SDK installed (the OpenTelemetry API no-op) and with
  the SDK exporting through a ``BatchSpanProcessor`` to an exporter that drops spans, a JSON
  log line inside a reconcile (written to an in-memory buffer), and a filtered-out debug call;
* end to end: a real ``Controller`` reconciling objects from an in-memory trigger stream (no API
  server, so the runtime's own cost dominates), results consumed plainly ("off"), through
  ``observe_results`` ("metrics only"), and through ``observe_results`` with an SDK tracer
  provider installed ("on"). Reported as microseconds per reconcile and the difference.

OpenTelemetry allows installing the global provider once, so every "off" measurement runs before
the provider is installed. Usage: ``python benches/bench_observe.py [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import io
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry

from kube_runtime.client.resource import ApiResource
from kube_runtime.controller.action import Action, ReconcileReason
from kube_runtime.controller.controller import Controller
from kube_runtime.controller.result import Reconciled
from kube_runtime.observe.logging import configure_logging
from kube_runtime.observe.metrics import ResultRecorder, observe_results
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.store.store import store
from kube_runtime.watcher.event import Init, InitApply, InitDone

CM = ApiResource.builtin("ConfigMap")


class DroppingExporter(SpanExporter):
    """Accepts spans and throws them away: the SDK's cost without any network."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def per_call_ns(fn: Callable[[], object], n: int, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / n)
    return best


def micro(n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    configure_logging("error", stream=io.StringIO())  # the hot-loop warning this provokes stays quiet
    ref = ObjectRef("ConfigMap", "cm-1", "default")
    item = Reconciled(ref, Action.requeue(300), reason=ReconcileReason.OBJECT_UPDATED, duration=0.012)

    async def measure_recorders() -> None:
        plain = ResultRecorder("bench-plain", registry=CollectorRegistry(), hot_loops=False)
        out["metrics: record(result), no hot-loop detection"] = per_call_ns(lambda: plain.record(item), n)
        full = ResultRecorder("bench-full", registry=CollectorRegistry())
        out["metrics: record(result), hot-loop detection on"] = per_call_ns(lambda: full.record(item), n)

    anyio.run(measure_recorders)

    tracer = trace.get_tracer("bench")
    attrs = {"object.ref": str(ref), "object.reason": "object updated"}

    def span() -> None:
        with tracer.start_as_current_span("reconciling object", attributes=attrs):
            pass

    out["tracing: reconcile span, API only (no SDK)"] = per_call_ns(span, n)

    buffer = io.StringIO()
    configure_logging("info,bench.quiet=warning", stream=buffer)
    log = structlog.get_logger("bench.loud")
    quiet = structlog.get_logger("bench.quiet")

    def log_line() -> None:
        log.info("reconciling", generation=3)
        if buffer.tell() > 50_000_000:
            buffer.seek(0)
            buffer.truncate()

    out["logging: one JSON line"] = per_call_ns(log_line, max(1, n // 10))
    out["logging: filtered-out debug call"] = per_call_ns(lambda: quiet.debug("hidden", x=1), n)
    configure_logging("warning", stream=io.StringIO())
    return out


def micro_with_sdk(n: int) -> dict[str, float]:
    tracer = trace.get_tracer("bench")
    attrs = {"object.ref": "ConfigMap.v1./cm-1.default", "object.reason": "object updated"}

    def span() -> None:
        with tracer.start_as_current_span("reconciling object", attributes=attrs):
            pass

    return {"tracing: reconcile span, SDK + batch export": per_call_ns(span, n)}


async def controller_run(objects: int, observed: bool) -> float:
    """Microseconds per reconcile for ``objects`` reconciled once each (the scheduler would merge
    repeated triggers of a queued object, so each object is triggered once)."""
    reader, writer = store(CM, gc_policy=None)
    objs = [{"metadata": {"name": f"cm-{i}", "namespace": "default"}} for i in range(objects)]
    for event in (Init(), *(InitApply(o) for o in objs), InitDone()):
        writer.apply_watcher_event(event)  # type: ignore[arg-type]

    async def trigger() -> Any:
        for obj in objs:
            yield obj
        await anyio.sleep_forever()

    registry = CollectorRegistry()
    controller = Controller.for_stream(CM, trigger(), reader, name="bench", registry=registry)
    done = 0
    total = objects

    async def reconcile(_obj: dict[str, Any], _ctx: None) -> Action:
        await anyio.lowlevel.checkpoint()
        return Action.await_change()

    run = controller.run(reconcile, None, None)
    gc.collect()
    start = time.perf_counter()
    async with run as results:
        stream = observe_results(results, "bench", registry=registry) if observed else results
        async for _ in stream:
            done += 1
            if done == total:
                elapsed = time.perf_counter() - start
                run.shutdown()
    return elapsed / total * 1e6


def end_to_end(objects: int, repeats: int, observed: bool) -> float:
    samples = [anyio.run(controller_run, objects, observed) for _ in range(repeats)]
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    args = parser.parse_args()
    n = 2_000 if args.quick else 50_000
    objects, repeats = (500, 3) if args.quick else (5_000, 5)

    print("micro (ns per call, best of 5)")
    figures = micro(n)
    off_e2e = end_to_end(objects, repeats, observed=False)
    metrics_e2e = end_to_end(objects, repeats, observed=True)

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DroppingExporter()))
    trace.set_tracer_provider(provider)
    figures.update(micro_with_sdk(n))
    on_e2e = end_to_end(objects, repeats, observed=True)
    provider.shutdown()

    width = max(len(k) for k in figures)
    for name, ns in figures.items():
        print(f"  {name:<{width}}  {ns:>9.0f} ns")
    print(f"\nend to end: Controller, {objects} objects, median of {repeats} runs (us per reconcile)")
    print(f"  off (plain results, no tracer provider)     {off_e2e:8.1f} us")
    print(f"  metrics only (observe_results, no tracing)  {metrics_e2e:8.1f} us")
    print(f"  on  (observe_results + SDK tracing, batch)  {on_e2e:8.1f} us")
    overhead = on_e2e - off_e2e
    print(f"  overhead                                    {overhead:8.1f} us ({on_e2e / off_e2e - 1:+.0%})")


if __name__ == "__main__":
    main()

"""Cost of the built-in observability per reconcile: metrics and tracing on versus off.

Three measures:

* micro (``--mode micro``): the per-reconcile work in isolation, CPU ns per call, best of five
  rounds: ``ResultRecorder.record`` (controller-runtime metrics, with and without hot-loop
  detection), the ``reconciling object`` span with no SDK installed (the OpenTelemetry API no-op)
  and through ``setup_tracing`` with a batch processor and an exporter that drops spans (with
  ``start_as_current_span``, and with the public calls the controller makes: ``start_span``,
  ``set_span_in_context``, ``context.attach``/``detach``, ``end``), a JSON
  log line (written to an in-memory buffer), and a filtered-out debug call;
* end to end (``--mode e2e``): a real ``Controller`` reconciling objects from an in-memory trigger
  stream (no API server, so the runtime's own cost dominates), in four configs: ``off`` (results
  consumed plainly, no tracer provider), ``metrics`` (through ``observe_results``), ``tracing``
  (``setup_tracing`` with the dropping exporter, batched) and ``both``. CPU microseconds per
  reconcile (all threads of the process, so the exporter's worker counts), median and min of
  interleaved runs, and what each config adds to ``off``;
* instructions (``--mode instructions``, needs valgrind): instructions per reconcile of each config
  under cachegrind, the difference between a run of 2N and of N objects. Slow (minutes), but
  deterministic, so it shows differences the CPU time of a shared machine hides.

Tracing samples as ``setup_tracing`` does by default unless ``--sample-ratio R`` is given, which
sets ``OTEL_TRACES_SAMPLER=parentbased_traceidratio`` and ``OTEL_TRACES_SAMPLER_ARG=R`` (so an older
checkout, whose ``setup_tracing`` has no ratio of its own, samples the same way). The micro figures
with the SDK add the reconcile span as the controller starts it at ratio 0 (dropped) and 1 (kept).

OpenTelemetry allows installing the global provider once per process, so every run without it
goes first. Usage: ``python benches/bench_observe.py [--quick] [--mode ...] [--objects N]
[--repeats R] [--concurrency C] [--sample-ratio R]``; ``PYTHONPATH=<checkout>`` measures another
checkout with this script.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry

from kube_runtime.client.resource import ApiResource
from kube_runtime.controller.action import Action, ReconcileReason
from kube_runtime.controller.controller import DEFAULT_CONCURRENCY, Controller
from kube_runtime.controller.result import Reconciled
from kube_runtime.observe.logging import configure_logging
from kube_runtime.observe.metrics import ResultRecorder, observe_results
from kube_runtime.observe.tracing import setup_tracing
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.store.store import store
from kube_runtime.watcher.event import Init, InitApply, InitDone

CM = ApiResource.builtin("ConfigMap")
#: off: results consumed plainly, no tracer provider; metrics: through ``observe_results``;
#: tracing: ``setup_tracing`` with a batching exporter that drops spans; both.
CONFIGS = ("off", "metrics", "tracing", "both")


class DroppingExporter(SpanExporter):
    """Accepts spans and throws them away: the SDK's cost without any network."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def per_call_ns(fn: Callable[[], object], n: int, rounds: int = 5) -> float:
    """CPU ns per call (this process, every thread), best of ``rounds``."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time_ns()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time_ns() - start) / n)
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

    direct = trace.get_tracer_provider().get_tracer("bench")

    def controller_span() -> None:  # the calls the controller makes around each reconcile
        made = direct.start_span("reconciling object", attributes=attrs)
        token = otel_context.attach(trace.set_span_in_context(made))
        otel_context.detach(token)
        made.end()

    out = {
        "tracing: reconcile span, SDK + batch export": per_call_ns(span, n),
        "tracing: the same, start_span + context.attach": per_call_ns(controller_span, n),
    }
    out.update(reconcile_spans(n))
    return out


def reconcile_spans(n: int) -> dict[str, float]:
    """The reconcile span as the controller starts, attaches, detaches and ends it, with providers
    sampling nothing and everything (not installed globally: the controller's tracer is replaced)."""
    try:
        from kube_runtime.controller import reconcile_span
    except ImportError:  # a checkout from before the module: no figure
        return {}
    ref = ObjectRef("ConfigMap", "cm-1", "default")
    out: dict[str, float] = {}
    environment = {
        name: os.environ.pop(name, None) for name in ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG")
    }
    for label, ratio in (("dropped (ratio 0)", 0.0), ("kept (ratio 1)", 1.0)):
        provider = setup_tracing("bench", exporter=DroppingExporter(), sample_ratio=ratio, set_global=False)
        saved = reconcile_span._tracer
        reconcile_span._tracer = provider.get_tracer("bench")
        try:
            spans = reconcile_span.ReconcileSpans()

            def controller_span(spans: Any = spans) -> None:
                made = spans.start(ref, ReconcileReason.OBJECT_UPDATED)
                token = otel_context.attach(trace.set_span_in_context(made))
                otel_context.detach(token)
                made.end()

            out[f"tracing: controller's reconcile span, {label}"] = per_call_ns(controller_span, n)
        finally:
            reconcile_span._tracer = saved
            provider.shutdown()
    os.environ.update({name: value for name, value in environment.items() if value is not None})
    return out


async def controller_run(objects: int, config: str, concurrency: int) -> float:
    """CPU microseconds per reconcile (this process, every thread: the span exporter's worker
    too) for ``objects`` reconciled once each (the scheduler would merge repeated triggers of a
    queued object, so each object is triggered once). ``config``: ``off``/``tracing`` consume
    the results plainly, ``metrics``/``both`` through ``observe_results``; whether spans are made
    depends on whether a tracer provider is installed."""
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
    controller = controller.with_config(concurrency=concurrency)
    done = 0
    total = objects

    async def reconcile(_obj: dict[str, Any], _ctx: None) -> Action:
        await anyio.lowlevel.checkpoint()
        return Action.await_change()

    run = controller.run(reconcile, None, None)
    observed = config in ("metrics", "both")
    gc.collect()
    start = time.process_time()
    elapsed = 0.0
    async with run as results:
        stream = observe_results(results, "bench", registry=registry) if observed else results
        async for _ in stream:
            done += 1
            if done == total:
                elapsed = time.process_time() - start
                run.shutdown()
    return elapsed / total * 1e6


def end_to_end(
    objects: int, repeats: int, configs: Sequence[str], concurrency: int
) -> dict[str, tuple[float, float]]:
    """(median, min) CPU us per reconcile of each config; runs are interleaved (ABAB...) so drift
    in the machine's load hits every config alike (on a shared machine the min is the steadier)."""
    samples: dict[str, list[float]] = {c: [] for c in configs}
    anyio.run(controller_run, max(100, objects // 10), configs[0], concurrency)  # warm-up
    for _ in range(repeats):
        for config in configs:
            samples[config].append(anyio.run(controller_run, objects, config, concurrency))
    return {c: (statistics.median(v), min(v)) for c, v in samples.items()}


def single_run(config: str, objects: int, concurrency: int) -> None:
    """One warm-up and one measured run of ``config`` (what ``--mode instructions`` counts)."""
    if config in ("tracing", "both"):
        install_tracing()
    anyio.run(controller_run, 50, config, concurrency)
    anyio.run(controller_run, objects, config, concurrency)


def instructions(config: str, objects: int, concurrency: int) -> float:
    """Instructions per reconcile of ``config`` counted by valgrind (cachegrind, no cache model):
    the difference between runs of ``2 * objects`` and ``objects`` reconciles, so start-up and
    imports cancel out. Deterministic up to thread timing, unlike CPU time on a shared machine."""
    counts = []
    for n in (objects, 2 * objects):
        argv = [sys.executable, __file__, "--mode", "single", "--config", config, "--objects", str(n)]
        argv += ["--concurrency", str(concurrency)]
        done = subprocess.run(
            ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", *argv],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        match = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
        if match is None:
            raise RuntimeError(f"no instruction count in valgrind's output: {done.stderr[-500:]}")
        counts.append(int(match.group(1).replace(",", "")))
    return (counts[1] - counts[0]) / objects


def install_tracing() -> TracerProvider:
    """Tracing as a deployment turns it on: ``setup_tracing`` with a batching exporter (one that
    drops the spans, so no network cost is counted)."""
    return setup_tracing("bench", exporter=DroppingExporter(), batch=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument(
        "--mode",
        choices=("all", "micro", "e2e", "instructions", "single"),
        default="all",
        help="what to measure (default: all = micro + e2e); instructions: valgrind instruction counts "
        "per reconcile of each config (slow, deterministic); single: one run of --config",
    )
    parser.add_argument("--config", choices=CONFIGS, default="off", help="for --mode single")
    parser.add_argument(
        "--sample-ratio",
        type=float,
        help="trace sampling ratio (OTEL_TRACES_SAMPLER=parentbased_traceidratio); default: setup_tracing's",
    )
    parser.add_argument("--objects", type=int, help="objects per end-to-end run (default 5000, quick 1000)")
    parser.add_argument("--repeats", type=int, help="end-to-end runs per config (default 7, quick 3)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help="controller concurrency (default %(default)s)",
    )
    args = parser.parse_args()
    if args.sample_ratio is not None:  # before any provider is made; inherited by --mode instructions
        os.environ["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
        os.environ["OTEL_TRACES_SAMPLER_ARG"] = str(args.sample_ratio)
    if args.mode == "single":
        single_run(args.config, args.objects or 1_000, args.concurrency)
        return
    if args.mode == "instructions":
        objects = args.objects or 1_000
        print(f"instructions per reconcile (valgrind, concurrency {args.concurrency}, {objects} objects)")
        counted = {config: instructions(config, objects, args.concurrency) for config in CONFIGS}
        for config in CONFIGS:
            added = "" if config == "off" else f"  added {counted[config] - counted['off']:+9.0f}"
            print(f"  {config:<8} {counted[config]:9.0f}{added}")
        return
    n = 2_000 if args.quick else 50_000
    objects = args.objects or (1_000 if args.quick else 5_000)
    repeats = args.repeats or (3 if args.quick else 7)

    figures: dict[str, float] = {}
    e2e: dict[str, tuple[float, float]] = {}
    if args.mode in ("all", "micro"):
        figures.update(micro(n))
    if args.mode in ("all", "e2e"):
        e2e.update(end_to_end(objects, repeats, ("off", "metrics"), args.concurrency))
    # OpenTelemetry's global provider can be installed once: everything without it runs first.
    provider = install_tracing()
    if args.mode in ("all", "micro"):
        figures.update(micro_with_sdk(n))
    if args.mode in ("all", "e2e"):
        e2e.update(end_to_end(objects, repeats, ("tracing", "both"), args.concurrency))
    provider.shutdown()

    if figures:
        print("micro (ns per call, best of 5)")
        width = max(len(k) for k in figures)
        for name, ns in figures.items():
            print(f"  {name:<{width}}  {ns:>9.0f} ns")
    if e2e:
        print(
            f"\nend to end: Controller (concurrency {args.concurrency}), {objects} objects, "
            f"median of {repeats} interleaved runs (CPU us per reconcile)"
        )
        off_median, off_min = e2e["off"]
        labels = {
            "off": "off (plain results, no tracer provider)",
            "metrics": "metrics only (observe_results)",
            "tracing": "tracing only (setup_tracing, batch export)",
            "both": "both (observe_results + tracing)",
        }
        print(f"  {'':<44}{'median':>8}  {'added':>8}    {'min':>8}  {'added':>8}")
        for config, label in labels.items():
            median, least = e2e[config]
            if config == "off":
                print(f"  {label:<44}{median:8.1f}  {'':>8}    {least:8.1f}")
            else:
                added_median, added_min = median - off_median, least - off_min
                print(f"  {label:<44}{median:8.1f}  {added_median:+8.1f}    {least:8.1f}  {added_min:+8.1f}")


if __name__ == "__main__":
    main()

"""Acceptance: a real controller against the embedded API server, observed through the built-in
observability: /metrics scraped over HTTP and parsed with prometheus_client's parser, /readyz and
/livez probed over HTTP, spans captured by an in-memory exporter, JSON logs filtered with jq."""

from __future__ import annotations

import collections
import io
import json
import logging
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
import structlog
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from kube_runtime.client.api import Api
from kube_runtime.client.client import Client
from kube_runtime.client.resource import ApiResource
from kube_runtime.controller.action import Action
from kube_runtime.controller.controller import Controller, ControllerRun
from kube_runtime.observe import (
    EventLoopLagMonitor,
    HealthChecks,
    HotLoopDetector,
    ObservabilityServer,
    ReconcileProgress,
    ResultRecorder,
    ServerOptions,
    configure_logging,
    format_task_dump,
    instrument,
    observe_watch,
    pending_work_from_metrics,
    track_store,
)
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.store.store import Store, store
from kube_runtime.streams import WatchStream
from kube_runtime.testing.server import ApiServer
from kube_runtime.watcher.config import WatcherConfig
from kube_runtime.watcher.watcher import watcher

CM = ApiResource.builtin("ConfigMap")
NAME = "configmap"
LOCAL = ServerOptions(metrics_bind_address="127.0.0.1:0", health_probe_bind_address="127.0.0.1:0")
Reconcile = Callable[[dict[str, Any], None], Awaitable[Action]]


@dataclass
class Harness:
    registry: CollectorRegistry
    api: Api
    reader: Store
    controller: Controller
    checks: HealthChecks
    server: ObservabilityServer
    http: httpx.AsyncClient
    recorder: ResultRecorder
    results: list[object] = field(default_factory=list)
    changed: anyio.Event = field(default_factory=anyio.Event)

    async def scrape(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        r = await self.http.get(f"{self.server.metrics_url}/metrics")
        assert r.status_code == 200
        out = {}
        for family in text_string_to_metric_families(r.text):
            for s in family.samples:
                out[(s.name, frozenset(s.labels.items()))] = s.value
        return out

    async def probe(self, path: str) -> httpx.Response:
        return await self.http.get(f"{self.server.health_url}{path}")

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        with anyio.fail_after(30):
            while not condition():
                await self.changed.wait()

    async def consume(self, run: ControllerRun[None], progress: ReconcileProgress | None = None) -> None:
        async with run as results:
            self.recorder.progress = progress
            async for item in self.recorder.observe(results):
                self.results.append(item)
                self.changed.set()
                self.changed = anyio.Event()


def sample(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], metric: str, **labels: str) -> float:
    return scraped[(metric, frozenset(labels.items()))]


@asynccontextmanager
async def harness(
    api_server: ApiServer, names: list[str], hot_loops: HotLoopDetector | bool = True
) -> AsyncIterator[Harness]:
    registry = CollectorRegistry()
    async with Client.from_kubeconfig(str(api_server.kubeconfig_path), metrics_registry=registry) as client:
        api = Api(client, CM, "default")
        for name in names:
            await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
        reader, writer = store(CM)
        events = WatchStream(observe_watch(watcher(api, WatcherConfig()), "configmaps", registry=registry))
        trigger = events.default_backoff().reflect(writer).applied_objects()
        controller = Controller.for_stream(CM, trigger, reader, name=NAME, registry=registry)
        checks = HealthChecks()
        checks.add_store("configmaps", reader)
        track_store("configmaps", reader, registry=registry)
        recorder = ResultRecorder(NAME, registry=registry, hot_loops=hot_loops)
        async with (
            ObservabilityServer(LOCAL, checks=checks, registry=registry) as server,
            httpx.AsyncClient(timeout=10) as http,
        ):
            yield Harness(registry, api, reader, controller, checks, server, http, recorder)


async def test_metrics_match_reconciles_and_injected_failures(api_server: ApiServer) -> None:
    healthy = [f"cm-{i}" for i in range(8)]
    failing = ["fail-a", "fail-b", "fail-c"]
    failures_each = 2
    attempts: collections.Counter[str] = collections.Counter()

    async def reconcile(obj: dict[str, Any], _ctx: None) -> Action:
        name = obj["metadata"]["name"]
        attempts[name] += 1
        await api.get(name)
        if name in failing and attempts[name] <= failures_each:
            raise RuntimeError(f"injected failure {attempts[name]}")
        return Action.await_change()

    def error_policy(_obj: dict[str, Any], _error: Exception, _ctx: None) -> Action:
        return Action.requeue(0.01)

    async with harness(api_server, healthy + failing) as h:
        api = h.api
        before = await h.probe("/readyz")
        assert before.status_code == 503
        assert "[-]configmaps failed" in before.text
        scraped = await h.scrape()
        for result in ("success", "error", "requeue", "requeue_after"):  # present from the start
            assert sample(scraped, "controller_runtime_reconcile_total", controller=NAME, result=result) == 0

        run = h.controller.run(reconcile, error_policy, None)
        async with EventLoopLagMonitor(interval=0.05, registry=h.registry), anyio.create_task_group() as tg:
            tg.start_soon(h.consume, run)
            await h.wait_for(lambda: len(h.results) == len(healthy) + len(failing) * (1 + failures_each))
            ready = await h.probe("/readyz")
            scraped = await h.scrape()
            run.shutdown()

        assert (ready.status_code, ready.text) == (200, "ok")
        errors = len(failing) * failures_each
        total = len(healthy) + len(failing) + errors
        assert sum(attempts.values()) == total

        def crt(result: str) -> float:
            return sample(scraped, "controller_runtime_reconcile_total", controller=NAME, result=result)

        assert (crt("success"), crt("error"), crt("requeue"), crt("requeue_after")) == (
            len(healthy) + len(failing),
            errors,
            0,
            0,
        )
        assert sample(scraped, "controller_runtime_reconcile_errors_total", controller=NAME) == errors
        assert sample(scraped, "controller_runtime_reconcile_time_seconds_count", controller=NAME) == total
        assert sample(scraped, "workqueue_depth", name=NAME, controller=NAME, priority="0") == 0
        assert sample(scraped, "controller_runtime_active_workers", controller=NAME) == 0
        assert sample(scraped, "workqueue_retries_total", name=NAME, controller=NAME) == errors
        objects = len(healthy) + len(failing)
        assert sample(scraped, "kube_runtime_store_objects", store="configmaps") == objects
        assert sample(scraped, "kube_runtime_store_ready", store="configmaps") == 1
        assert (
            sample(scraped, "kube_runtime_watch_events_total", watch="configmaps", type="init_apply")
            == objects
        )
        assert sample(scraped, "kube_runtime_watch_last_event_timestamp_seconds", watch="configmaps") > 0
        assert sample(scraped, "kube_runtime_event_loop_lag_seconds_count") >= 1
        gets = sum(
            v for (n, labels), v in scraped.items()
            if n == "rest_client_requests_total" and ("method", "GET") in labels and ("code", "200") in labels
        )  # fmt: skip
        assert gets >= total  # every reconcile's GET, plus the list


async def test_livez_turns_503_when_the_loop_stalls_with_work_pending(api_server: ApiServer) -> None:
    release = anyio.Event()
    entered = anyio.Event()

    async def reconcile(obj: dict[str, Any], _ctx: None) -> Action:
        if obj["metadata"]["name"] == "stuck":
            entered.set()
            await release.wait()
        return Action.await_change()

    async with harness(api_server, ["fine", "stuck"]) as h:
        progress = ReconcileProgress(threshold=0.2, pending=pending_work_from_metrics(NAME, h.registry))
        h.checks.add_livez("reconcile-loop", progress.check)
        run = h.controller.run(reconcile, None, None)
        async with anyio.create_task_group() as tg:
            tg.start_soon(h.consume, run, progress)
            await h.wait_for(lambda: len(h.results) == 1)
            await entered.wait()
            dump = format_task_dump()
            with anyio.fail_after(30):  # the stall is only reported once the threshold has passed
                while (stalled := await h.probe("/livez")).status_code == 200:  # noqa: ASYNC110 (polls HTTP)
                    await anyio.sleep(0.05)
            release.set()
            await h.wait_for(lambda: len(h.results) == 2)
            recovered = await h.probe("/livez?verbose")
            run.shutdown()
    assert stalled.status_code == 503
    assert stalled.text.splitlines()[0].startswith("[-]reconcile-loop failed: no reconcile finished for")
    assert "1 item(s) pending" in stalled.text
    stuck_ref = ObjectRef.for_resource(CM, "stuck", "default")
    assert f"reconciling {stuck_ref} (object updated" in dump  # the task dump names the stuck object
    assert "await release.wait()" in dump
    assert recovered.status_code == 200  # idle: nothing pending, however long ago the last result was
    assert recovered.text.splitlines() == ["[+]reconcile-loop ok", "livez check passed"]


async def test_spans_nest_and_logs_carry_the_reconcile_context(
    api_server: ApiServer, spans: InMemorySpanExporter
) -> None:
    out = io.StringIO()
    configure_logging("warning,my_controller=info", stream=out)
    log = structlog.get_logger("my_controller")

    @instrument("compute desired state")
    async def desired_state(api: Api, name: str) -> None:
        await api.get(name)

    async def reconcile(obj: dict[str, Any], _ctx: None) -> Action:
        name = obj["metadata"]["name"]
        log.info("reconciling", generation=1)
        logging.getLogger("my_controller.stdlib").info("stdlib line for %s", name)
        await h.api.get(name)
        await desired_state(h.api, name)
        return Action.await_change()

    try:
        async with harness(api_server, ["alpha", "beta"]) as h:
            run = h.controller.run(reconcile, None, None)
            async with anyio.create_task_group() as tg:
                tg.start_soon(h.consume, run)
                await h.wait_for(lambda: len(h.results) == 2)
                run.shutdown()
    finally:
        configure_logging("warning", stream=io.StringIO())

    finished = spans.get_finished_spans()
    reconciles = {s.attributes["object.ref"]: s for s in finished if s.name == "reconciling object"}
    alpha_ref = str(ObjectRef.for_resource(CM, "alpha", "default"))
    assert set(reconciles) == {alpha_ref, str(ObjectRef.for_resource(CM, "beta", "default"))}
    for span in reconciles.values():
        assert span.attributes["object.reason"] == "object updated"
        assert span.parent is None  # each reconcile is a root span
        children = [s for s in finished if s.parent is not None and s.parent.span_id == span.context.span_id]
        assert sorted(s.name for s in children) == ["compute desired state", "get"]
        (http_span,) = [s for s in children if s.name == "get"]
        assert http_span.kind is SpanKind.CLIENT
        (user_span,) = [s for s in children if s.name == "compute desired state"]
        nested = [s for s in finished if s.parent and s.parent.span_id == user_span.context.span_id]
        assert [s.name for s in nested] == ["get"]
        assert all(s.context.trace_id == span.context.trace_id for s in [*children, *nested])

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    mine = [e for e in lines if e["logger"].startswith("my_controller")]
    assert len(mine) == 4
    alpha_span = reconciles[alpha_ref]
    for entry in mine:
        assert entry["object.reason"] == "object updated"
        assert entry["controller"] == NAME
        assert entry["reconcile_id"]
        assert entry["span"]["name"] == "reconciling object"
        if entry["object.ref"] == alpha_ref:
            assert entry["trace_id"] == format(alpha_span.context.trace_id, "032x")
            assert entry["span_id"] == format(alpha_span.context.span_id, "016x")
    assert len({e["reconcile_id"] for e in mine}) == 2

    jq = shutil.which("jq")
    if jq is None:
        pytest.fail("the jq binary is not installed", pytrace=False)
    recipe = 'select(.span."object.ref" | contains("alpha"))'
    result = await anyio.run_process([jq, "-c", recipe], input=out.getvalue().encode())
    selected = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [e["event"] for e in selected] == ["reconciling", "stdlib line for alpha"]
    assert {e["object.ref"] for e in selected} == {alpha_ref}


async def test_hot_loop_of_a_reconciler_rewriting_its_object_is_detected(api_server: ApiServer) -> None:
    """The troubleshooting guide's first symptom: a non-deterministic status/annotation write."""
    writes: collections.Counter[str] = collections.Counter()

    async def reconcile(obj: dict[str, Any], _ctx: None) -> Action:
        name = obj["metadata"]["name"]
        # "hot" stamps a new value every time; "calm" writes a deterministic one (a no-op after the first)
        value = str(writes[name]) if name == "hot" else "done"
        if (obj["metadata"].get("annotations") or {}).get("example.io/reconciled") != value:
            writes[name] += 1
            await h.api.patch(name, {"metadata": {"annotations": {"example.io/reconciled": value}}})
        return Action.await_change()

    out = io.StringIO()
    configure_logging("warning", stream=out)
    detector = HotLoopDetector(NAME, threshold=5, window=60)
    try:
        async with harness(api_server, ["hot", "calm"], hot_loops=detector) as h:
            run = h.controller.run(reconcile, None, None)
            async with anyio.create_task_group() as tg:
                tg.start_soon(h.consume, run)
                await h.wait_for(lambda: bool(detector.detections))
                scraped = await h.scrape()
                run.shutdown()
    finally:
        configure_logging("warning", stream=io.StringIO())
    hot_ref = str(ObjectRef.for_resource(CM, "hot", "default"))
    assert [str(r) for r, _ in detector.detections] == [hot_ref]
    assert writes["calm"] == 1
    assert sample(scraped, "kube_runtime_hot_loop_detections_total", controller=NAME) == 1
    warnings = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(w["level"], w["object.ref"]) for w in warnings if "hot loop" in w["event"]] == [
        ("warning", hot_ref)
    ]

"""A stand-in /metrics target exposing every documented kube-runtime metric family.

Until the configmapgen demo can run against the embedded API server, the Prometheus scrape test reads
this. Values are functions of the time since start (a steady controller: 10 reconciles/s of which one
in eleven fails, a shallow queue, fresh watches), so every rate, ratio and quantile a recording rule
computes is defined and finite.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from threading import Thread
from types import TracebackType
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["EXPECTED_ERROR_RATIO", "LoopbackExporter"]

CONTROLLER = "configmapgen"
WATCHES = ("configmapgenerators", "configmaps")
SUCCESS_PER_SECOND = 10.0
ERRORS_PER_SECOND = 1.0
EXPECTED_ERROR_RATIO = ERRORS_PER_SECOND / (SUCCESS_PER_SECOND + ERRORS_PER_SECOND)
# controller-runtime's reconcile buckets (first few) and the share of reconciles finishing within each.
RECONCILE_BUCKETS = (
    (0.005, 0.1),
    (0.01, 0.3),
    (0.025, 0.6),
    (0.05, 0.8),
    (0.1, 0.95),
    (0.25, 0.99),
    (0.5, 1.0),
)


def _histogram(
    name: str,
    doc: str,
    labels: dict[str, str],
    per_second: float,
    elapsed: float,
    shares: tuple[tuple[float, float], ...],
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=list(labels))
    count = per_second * elapsed
    buckets = [(str(bound), count * share) for bound, share in shares] + [("+Inf", count)]
    mean = sum(bound for bound, _ in shares) / len(shares)
    family.add_metric(list(labels.values()), buckets, sum_value=count * mean)
    return family


class _SteadyController(Collector):
    def __init__(self) -> None:
        self._started = time.time()

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        t = now - self._started + 1.0
        ctl = {"controller": CONTROLLER}
        queue = {"name": CONTROLLER, "controller": CONTROLLER}

        total = CounterMetricFamily(
            "controller_runtime_reconcile", "Reconciles", labels=["controller", "result"]
        )
        total.add_metric([CONTROLLER, "success"], SUCCESS_PER_SECOND * t)
        total.add_metric([CONTROLLER, "error"], ERRORS_PER_SECOND * t)
        total.add_metric([CONTROLLER, "requeue"], 0.0)
        total.add_metric([CONTROLLER, "requeue_after"], 0.0)
        yield total
        errors = CounterMetricFamily(
            "controller_runtime_reconcile_errors", "Reconcile errors", labels=["controller"]
        )
        errors.add_metric([CONTROLLER], ERRORS_PER_SECOND * t)
        yield errors
        for failures in (
            "controller_runtime_reconcile_timeouts",
            "controller_runtime_terminal_reconcile_errors",
            "controller_runtime_reconcile_panics",
        ):
            counter = CounterMetricFamily(failures, failures, labels=["controller"])
            counter.add_metric([CONTROLLER], 0.0)
            yield counter
        yield _histogram(
            "controller_runtime_reconcile_time_seconds",
            "Reconcile time",
            ctl,
            SUCCESS_PER_SECOND + ERRORS_PER_SECOND,
            t,
            RECONCILE_BUCKETS,
        )
        for name, value in (
            ("controller_runtime_active_workers", 1.0),
            ("controller_runtime_max_concurrent_reconciles", 4.0),
        ):
            gauge = GaugeMetricFamily(name, name, labels=["controller"])
            gauge.add_metric([CONTROLLER], value)
            yield gauge

        for name, value in (
            ("workqueue_depth", 3.0),
            ("workqueue_unfinished_work_seconds", 0.02),
            ("workqueue_longest_running_processor_seconds", 0.02),
        ):
            gauge = GaugeMetricFamily(name, name, labels=["name", "controller"])
            gauge.add_metric([CONTROLLER, CONTROLLER], value)
            yield gauge
        for name, per_second in (("workqueue_adds", 11.0), ("workqueue_retries", 1.0)):
            counter = CounterMetricFamily(name, name, labels=["name", "controller"])
            counter.add_metric([CONTROLLER, CONTROLLER], per_second * t)
            yield counter
        for name in ("workqueue_queue_duration_seconds", "workqueue_work_duration_seconds"):
            yield _histogram(name, name, queue, 11.0, t, ((1e-3, 0.5), (1e-2, 0.9), (1e-1, 1.0)))

        requests = CounterMetricFamily(
            "rest_client_requests", "API requests", labels=["code", "method", "host"]
        )
        requests.add_metric(["200", "GET", "127.0.0.1"], 20.0 * t)
        requests.add_metric(["200", "PATCH", "127.0.0.1"], 10.0 * t)
        # Three 429s at startup, none since: the series exists but the throttling alert stays quiet.
        requests.add_metric(["429", "PATCH", "127.0.0.1"], 3.0)
        yield requests
        retries = CounterMetricFamily(
            "rest_client_request_retries", "Retries", labels=["code", "verb", "host"]
        )
        retries.add_metric(["429", "PATCH", "127.0.0.1"], 3.0)
        yield retries
        yield _histogram(
            "rest_client_request_duration_seconds",
            "API latency",
            {"verb": "GET", "host": "127.0.0.1"},
            20.0,
            t,
            ((0.005, 0.5), (0.025, 0.9), (0.1, 1.0)),
        )

        leader = GaugeMetricFamily("leader_election_master_status", "Leader", labels=["name"])
        leader.add_metric([f"{CONTROLLER}-leader"], 1.0)
        yield leader

        events = CounterMetricFamily("kube_runtime_watch_events", "Watch events", labels=["watch", "type"])
        restarts = CounterMetricFamily("kube_runtime_watch_restarts", "Watch restarts", labels=["watch"])
        relists = CounterMetricFamily("kube_runtime_watch_relists", "Re-lists", labels=["watch"])
        watch_errors = CounterMetricFamily(
            "kube_runtime_watch_errors", "Watch errors", labels=["watch", "code"]
        )
        idle_timeouts = CounterMetricFamily(
            "kube_runtime_watch_idle_timeouts", "Watch timeouts", labels=["watch", "phase"]
        )
        last = GaugeMetricFamily(
            "kube_runtime_watch_last_event_timestamp_seconds", "Last event", labels=["watch"]
        )
        objects = GaugeMetricFamily("kube_runtime_store_objects", "Store objects", labels=["store"])
        ready = GaugeMetricFamily("kube_runtime_store_ready", "Store ready", labels=["store"])
        for watch in WATCHES:
            events.add_metric([watch, "MODIFIED"], 5.0 * t)
            events.add_metric([watch, "BOOKMARK"], t / 60.0)
            restarts.add_metric([watch], t / 290.0)
            relists.add_metric([watch], 1.0)
            watch_errors.add_metric([watch, "410"], 0.0)
            idle_timeouts.add_metric([watch, "idle"], t / 600.0)
            idle_timeouts.add_metric([watch, "headers"], 0.0)
            last.add_metric([watch], now)
            objects.add_metric([watch], 250.0)
            ready.add_metric([watch], 1.0)
        yield from (events, restarts, relists, watch_errors, idle_timeouts, last, objects, ready)

        yield _histogram(
            "kube_runtime_event_loop_lag_seconds",
            "Event-loop lag",
            {},
            10.0,
            t,
            ((0.001, 0.9), (0.01, 0.99), (0.1, 1.0)),
        )
        hot = CounterMetricFamily("kube_runtime_hot_loop_detections", "Hot loops", labels=["controller"])
        hot.add_metric([CONTROLLER], 0.0)
        yield hot

        # A validating webhook: 10 reviews/s, one in ten denied, none failing.
        webhook = "/validate"
        results = CounterMetricFamily(
            "kube_runtime_webhook_admission_results", "Webhook reviews", labels=["webhook", "result"]
        )
        results.add_metric([webhook, "allowed"], 9.0 * t)
        results.add_metric([webhook, "denied"], 1.0 * t)
        results.add_metric([webhook, "error"], 0.0)
        results.add_metric([webhook, "timeout"], 0.0)
        requests = CounterMetricFamily(
            "controller_runtime_webhook_requests", "Webhook requests", labels=["code", "webhook"]
        )
        requests.add_metric(["200", webhook], 10.0 * t)
        in_flight = GaugeMetricFamily(
            "controller_runtime_webhook_requests_in_flight", "In flight", labels=["webhook"]
        )
        in_flight.add_metric([webhook], 1.0)
        panics = CounterMetricFamily("controller_runtime_webhook_panics", "Webhook panics")
        panics.add_metric([], 0.0)
        conversion_panics = CounterMetricFamily(
            "controller_runtime_conversion_webhook_panics", "Conversion webhook panics"
        )
        conversion_panics.add_metric([], 0.0)
        reloads = CounterMetricFamily(
            "kube_runtime_webhook_certificate_reloads", "Certificate reloads", labels=["result"]
        )
        reloads.add_metric(["success"], 1.0)
        reloads.add_metric(["error"], 0.0)
        yield from (results, requests, in_flight, panics, conversion_panics, reloads)
        # A sharded ring of three members: 100 objects each, a move and a drain every 10 s.
        ring = "configmapgen"
        shard_objects = GaugeMetricFamily(
            "kube_runtime_shard_objects", "Objects per member", labels=["ring", "shard"]
        )
        member_status = GaugeMetricFamily(
            "kube_runtime_shard_member_status", "Member Lease held", labels=["ring", "shard"]
        )
        acknowledged = CounterMetricFamily(
            "kube_runtime_shard_drains_acknowledged", "Drains acknowledged", labels=["ring", "shard"]
        )
        for member in ("a", "b", "c"):
            shard_objects.add_metric([ring, member], 100.0)
            member_status.add_metric([ring, member], 1.0)
            acknowledged.add_metric([ring, member], 0.1 * t / 3)
        members = GaugeMetricFamily("kube_runtime_shard_members", "Live members", labels=["ring"])
        members.add_metric([ring], 3.0)
        moves = CounterMetricFamily("kube_runtime_shard_moves", "Objects moved", labels=["ring"])
        moves.add_metric([ring], 0.1 * t)
        drains = CounterMetricFamily("kube_runtime_shard_drains", "Drains set", labels=["ring"])
        drains.add_metric([ring], 0.1 * t)
        lag = GaugeMetricFamily("kube_runtime_shard_assigner_lag_seconds", "Assigner lag", labels=["ring"])
        lag.add_metric([ring], 0.0)
        yield from (shard_objects, member_status, acknowledged, members, moves, drains, lag)
        yield _histogram(
            "controller_runtime_webhook_latency_seconds",
            "Webhook latency",
            {"webhook": webhook},
            10.0,
            t,
            ((0.005, 0.5), (0.01, 0.9), (0.025, 1.0)),
        )


class LoopbackExporter:
    """``with LoopbackExporter() as exporter:`` serves /metrics on ``exporter.address`` (127.0.0.1:port)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_SteadyController())
        ProcessCollector(registry=self.registry)
        self._server: WSGIServer | None = None
        self._thread: Thread | None = None

    @property
    def address(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> LoopbackExporter:
        self._server, self._thread = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

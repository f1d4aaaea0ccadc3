"""Work-queue metrics the result stream cannot see, recorded by the controller itself.

Names, labels and buckets are controller-runtime's, so existing dashboards and alerts work:
``workqueue_depth`` (labels ``name``, ``controller`` and ``priority``), ``workqueue_adds_total``,
``workqueue_queue_duration_seconds``, ``workqueue_work_duration_seconds``,
``workqueue_unfinished_work_seconds``, ``workqueue_longest_running_processor_seconds``,
``workqueue_retries_total`` (labels ``name`` and ``controller``, both the controller's name),
``controller_runtime_active_workers`` and ``controller_runtime_max_concurrent_reconciles`` (label
``controller``).

``priority`` is controller-runtime's priority queue label: the priority as a decimal int (``0``
for live changes, ``-100`` for relisted objects; both series exist at zero from the start); past
25 distinct priorities the others are summed under ``exceeded_cardinality_limit``. With the
priority queue off it is ``""``, as controller-runtime labels its classic queue's depth.

How our queue maps onto client-go's: an *add* is a scheduled reconcile coming due (a request for
an object already queued is deduplicated and not counted, as in client-go); *depth* is the number
of due reconciles waiting for a worker or for their object's running reconcile; *queue duration*
is the time from coming due to starting; *retries* are requeues with a delay (from the reconciler
or the error policy). The two in-flight gauges are computed at scrape time from the running
reconciles, so the hot path only does counter/histogram updates.

Metric families are created once per ``CollectorRegistry`` (registration is idempotent); every
controller gets its own label values. Names must therefore be unique per registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Final, TypeAlias

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from kube_runtime.controller.action import DEFAULT_PRIORITY, LOW_PRIORITY
from kube_runtime.controller.runner import RunnerHooks
from kube_runtime.loop_metrics import (
    LoopGaugeChild,
    counter_family,
    gauge_family,
    histogram_family,
)
from kube_runtime.metric_families import PerRegistry

if TYPE_CHECKING:
    from prometheus_client import Gauge

__all__ = ["MAX_PRIORITY_LABELS", "WORKQUEUE_BUCKETS", "QueueMetrics", "queue_metrics"]

#: client-go's ``ExponentialBuckets(10e-9, 10, 12)``: 1e-8 s ... 1e3 s.
WORKQUEUE_BUCKETS: Final = tuple(10.0**e for e in range(-8, 4))
#: Distinct ``priority`` label values of ``workqueue_depth`` per controller (controller-runtime's).
MAX_PRIORITY_LABELS: Final = 25
_EXCEEDED: Final = "exceeded_cardinality_limit"
#: A gauge series: ours, or prometheus_client's under multiprocess mode.
_GaugeChild: TypeAlias = "LoopGaugeChild | Gauge"


class _Families:
    """The metric families of one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["name", "controller"]
        self.depth = gauge_family(
            "workqueue_depth",
            "Current depth of workqueue by workqueue and priority",
            [*labels, "priority"],
            registry=registry,
        )
        self.adds = counter_family(
            "workqueue_adds", "Total number of adds handled by workqueue", labels, registry=registry
        )
        self.queue_duration = histogram_family(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            labels,
            buckets=WORKQUEUE_BUCKETS,
            registry=registry,
        )
        self.work_duration = histogram_family(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            labels,
            buckets=WORKQUEUE_BUCKETS,
            registry=registry,
        )
        self.retries = counter_family(
            "workqueue_retries", "Total number of retries handled by workqueue", labels, registry=registry
        )
        self.active_workers = gauge_family(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            ["controller"],
            registry=registry,
        )
        self.max_concurrent = gauge_family(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            ["controller"],
            registry=registry,
        )
        self.inflight = _InflightCollector()
        registry.register(self.inflight)


#: Per controller: a function returning (unfinished work seconds, longest running seconds).
InflightProbe = Callable[[], tuple[float, float]]


class _InflightCollector(Collector):
    """``workqueue_unfinished_work_seconds`` and ``workqueue_longest_running_processor_seconds``,
    computed from the running reconciles when scraped."""

    def __init__(self) -> None:
        self.probes: dict[str, InflightProbe] = {}

    def describe(self) -> list[GaugeMetricFamily]:
        return list(self._families({}))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        return self._families(dict(self.probes))

    @staticmethod
    def _families(probes: dict[str, InflightProbe]) -> Iterator[GaugeMetricFamily]:
        unfinished = GaugeMetricFamily(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and hasn't been observed by "
            "work_duration. Large values indicate stuck threads.",
            labels=["name", "controller"],
        )
        longest = GaugeMetricFamily(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running.",
            labels=["name", "controller"],
        )
        for name, probe in sorted(probes.items()):
            total, oldest = probe()
            unfinished.add_metric([name, name], total)
            longest.add_metric([name, name], oldest)
        yield unfinished
        yield longest


_families: PerRegistry[_Families] = PerRegistry(_Families)


class QueueMetrics(RunnerHooks):
    """The work-queue metrics of one controller (series created at zero on construction)."""

    def __init__(
        self, controller: str, registry: CollectorRegistry | None = None, *, prioritized: bool = True
    ) -> None:
        self.controller = controller
        self.prioritized = prioritized
        fam = self._fam = _families(REGISTRY if registry is None else registry)
        #: Depth gauge children by priority, and the last value set on each.
        self._depths: dict[int, _GaugeChild] = {}
        self._depth_values: dict[_GaugeChild, float] = {}
        self._shared = not prioritized
        if prioritized:
            for priority in (DEFAULT_PRIORITY, LOW_PRIORITY):
                self._depth_child(priority).set(0)
        else:
            self._depth_child(DEFAULT_PRIORITY).set(0)
        self._adds = fam.adds.labels(controller, controller)
        self._queue_duration = fam.queue_duration.labels(controller, controller)
        self._work_duration = fam.work_duration.labels(controller, controller)
        self._retries = fam.retries.labels(controller, controller)
        self.active_workers = fam.active_workers.labels(controller)
        self._max_concurrent = fam.max_concurrent.labels(controller)

    # RunnerHooks

    def on_added(self, count: int) -> None:
        self._adds.inc(count)

    def on_started(self, queued_seconds: float) -> None:
        self._queue_duration.observe(queued_seconds)

    def on_finished(self, work_seconds: float) -> None:
        self._work_duration.observe(work_seconds)

    def on_depth(self, depths: Mapping[int, int]) -> None:
        # Called once per loop pass and per start: only changed values are written.
        children = self._depths
        values = self._depth_values
        if not self._shared:
            for priority, count in depths.items():
                child = children.get(priority) or self._depth_child(priority)
                if values.get(child) != count:
                    values[child] = count
                    child.set(count)
            if not self._shared:
                return
        totals: dict[_GaugeChild, float] = {}
        for priority, count in depths.items():
            child = children.get(priority) or self._depth_child(priority)
            totals[child] = totals.get(child, 0) + count
        for child, total in totals.items():
            if values.get(child) != total:
                values[child] = total
                child.set(total)

    def clear_depth(self) -> None:
        """Set every depth series to 0: the run ended (a forceful stop drops what was queued
        without a last pass of the runner's loop)."""
        for child in self._depths.values():
            if self._depth_values.get(child) != 0:
                self._depth_values[child] = 0
                child.set(0)

    def _depth_child(self, priority: int) -> _GaugeChild:
        """The depth series of ``priority`` (unprioritized: ``""``; past the cardinality limit,
        the shared one)."""
        if not self.prioritized:
            label = ""
        elif len(self._depths) < MAX_PRIORITY_LABELS:
            label = str(priority)
        else:
            label = _EXCEEDED
            self._shared = True  # several priorities share this series from now on: sum them
        child = self._fam.depth.labels(self.controller, self.controller, label)
        self._depths[priority] = child
        return child

    # Controller-side

    def on_retry(self) -> None:
        """A reconcile was requeued with a delay."""
        self._retries.inc()

    def set_max_concurrency(self, concurrency: int) -> None:
        """0 (unbounded) is published as 0, like an unset limit."""
        self._max_concurrent.set(concurrency)

    def attach_inflight(self, running: dict[object, float], clock: Callable[[], float]) -> None:
        """Publish the in-flight gauges from ``running`` (key -> start time on ``clock``)."""

        def probe() -> tuple[float, float]:
            now = clock()
            starts = list(running.values())  # a snapshot: the dict changes on the event loop
            if not starts:
                return 0.0, 0.0
            return sum(now - s for s in starts), now - min(starts)

        self._fam.inflight.probes[self.controller] = probe

    def detach_inflight(self) -> None:
        self._fam.inflight.probes.pop(self.controller, None)


def queue_metrics(
    controller: str, registry: CollectorRegistry | None = None, *, prioritized: bool = True
) -> QueueMetrics:
    """The work-queue metrics of ``controller`` in ``registry`` (default: the global registry)."""
    return QueueMetrics(controller, registry, prioritized=prioritized)

"""The controller's exposition has controller-runtime's metric names, types and label sets: every
``controller_runtime_*`` and ``workqueue_*`` family a controller exports, compared with the table
below, written from controller-runtime v0.24 (pkg/internal/controller/metrics/metrics.go and
pkg/internal/metrics/workqueue.go), parsed back from the text exposition."""

from __future__ import annotations

from typing import Final

import anyio
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kube_runtime.controller import Action, Reconciled, ReconcilerFailedTerminally, ReconcilerPanicked
from kube_runtime.controller.errors import ReconcilerFailed, ReconcileTimedOut
from kube_runtime.controller.metrics import QueueMetrics
from kube_runtime.observe.metrics import ResultRecorder

from .results import ref

pytestmark = pytest.mark.anyio

CONTROLLER_RUNTIME: Final[dict[str, tuple[str, frozenset[str]]]] = {
    "controller_runtime_reconcile_total": ("counter", frozenset({"controller", "result"})),
    "controller_runtime_reconcile_errors_total": ("counter", frozenset({"controller"})),
    "controller_runtime_terminal_reconcile_errors_total": ("counter", frozenset({"controller"})),
    "controller_runtime_reconcile_panics_total": ("counter", frozenset({"controller"})),
    "controller_runtime_reconcile_timeouts_total": ("counter", frozenset({"controller"})),
    "controller_runtime_reconcile_time_seconds": ("histogram", frozenset({"controller"})),
    "controller_runtime_max_concurrent_reconciles": ("gauge", frozenset({"controller"})),
    "controller_runtime_active_workers": ("gauge", frozenset({"controller"})),
    "workqueue_depth": ("gauge", frozenset({"name", "controller", "priority"})),
    "workqueue_adds_total": ("counter", frozenset({"name", "controller"})),
    "workqueue_queue_duration_seconds": ("histogram", frozenset({"name", "controller"})),
    "workqueue_work_duration_seconds": ("histogram", frozenset({"name", "controller"})),
    "workqueue_unfinished_work_seconds": ("gauge", frozenset({"name", "controller"})),
    "workqueue_longest_running_processor_seconds": ("gauge", frozenset({"name", "controller"})),
    "workqueue_retries_total": ("counter", frozenset({"name", "controller"})),
}


def exposition(registry: CollectorRegistry) -> dict[str, tuple[str, frozenset[str]]]:
    """Exposed name -> (type, label names) of the controller-runtime families in ``registry``."""
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        name = family.name + "_total" if family.type == "counter" else family.name
        if not name.startswith(("controller_runtime_", "workqueue_")) or name.endswith("_created"):
            continue  # ``*_created``: prometheus_client's creation timestamps, not a family of its own
        labels: set[str] = set()
        for sample in family.samples:
            if not sample.name.endswith("_created"):
                labels |= set(sample.labels) - {"le"}
        out[name] = (family.type, frozenset(labels))
    return out


async def test_names_types_and_label_sets_match_controller_runtime() -> None:
    registry = CollectorRegistry()
    queue = QueueMetrics("cms", registry)
    queue.attach_inflight({}, anyio.current_time)
    recorder = ResultRecorder("cms", registry=registry, log_errors=False)
    recorder.record(Reconciled(ref("a"), Action.await_change(), duration=0.1))
    recorder.record(ReconcilerFailed(RuntimeError("x"), ref("a")))
    assert exposition(registry) == CONTROLLER_RUNTIME


async def test_each_failure_kind_counts_where_controller_runtime_counts_it() -> None:
    registry = CollectorRegistry()
    recorder = ResultRecorder("cms", registry=registry, log_errors=False)
    for item in (
        ReconcilerFailedTerminally(RuntimeError("bad spec"), ref("a")),
        ReconcilerPanicked(KeyError("spec"), ref("a")),
        ReconcilerPanicked(KeyError("spec"), ref("b")),
        ReconcileTimedOut(ref("a"), 10),
        ReconcilerFailed(RuntimeError("x"), ref("a")),
    ):
        recorder.record(item)
    values = {
        (s.name, s.labels.get("result", "")): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
        if s.labels.get("controller") == "cms" and not s.name.endswith("_created")
    }
    assert values[("controller_runtime_terminal_reconcile_errors_total", "")] == 1
    assert values[("controller_runtime_reconcile_panics_total", "")] == 2
    assert values[("controller_runtime_reconcile_timeouts_total", "")] == 1
    # All of them are errors too (controller-runtime counts every non-nil error, terminal included).
    assert values[("controller_runtime_reconcile_errors_total", "")] == 5
    assert values[("controller_runtime_reconcile_total", "error")] == 5


def test_the_priority_label_values_are_controller_runtime_s() -> None:
    registry = CollectorRegistry()
    QueueMetrics("on", registry)
    QueueMetrics("off", registry, prioritized=False)
    depth = {
        (s.labels["controller"], s.labels["priority"])
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        if family.name == "workqueue_depth"
        for s in family.samples
    }
    assert depth == {("on", "0"), ("on", "-100"), ("off", "")}


def test_the_priority_label_is_capped_at_25_values() -> None:
    registry = CollectorRegistry()
    metrics = QueueMetrics("many", registry)
    metrics.on_depth({p: 1 for p in range(40)})
    values = {
        s.labels["priority"]: s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        if family.name == "workqueue_depth"
        for s in family.samples
    }
    assert len(values) == 26  # 25 distinct priorities, then one shared series
    assert sum(values.values()) == 40
    assert values["exceeded_cardinality_limit"] == 40 - 24  # -100 and 0..23 have a series of their own

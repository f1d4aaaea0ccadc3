"""Observability built in: structured logs, reconcile traces, Prometheus metrics under
controller-runtime's names, health probes, event-loop lag, hot-loop detection, per-object gauges
and asyncio task dumps."""

from kube_runtime.loop_metrics import LoopCounter, LoopHistogram
from kube_runtime.observe.auth import AuthDecision, ReviewClient, TokenReviewAuthorizer
from kube_runtime.observe.health import Check, CheckResult, HealthChecks, store_ready_check
from kube_runtime.observe.hotloop import HotLoopDetector
from kube_runtime.observe.logging import (
    DEFAULT_LOG_FILTER,
    LogFilter,
    LogFilterError,
    add_reconcile_context,
    add_trace_context,
    configure_logging,
    parse_log_filter,
)
from kube_runtime.observe.loop import EventLoopLagMonitor
from kube_runtime.observe.metrics import (
    RECONCILE_TIME_BUCKETS,
    ControllerMetrics,
    ResultRecorder,
    controller_metrics,
    observe_results,
    reconcile_result_label,
)
from kube_runtime.observe.object_metrics import ObjectGauge
from kube_runtime.observe.observability import (
    InstrumentableController,
    ItemCallback,
    Observability,
    ObservedController,
    RunnableController,
)
from kube_runtime.observe.progress import ReconcileProgress, pending_work_from_metrics
from kube_runtime.observe.server import ObservabilityServer, ServerOptions, parse_bind_address
from kube_runtime.observe.taskdump import TaskDumpOnSignal, format_task_dump
from kube_runtime.observe.tracing import (
    DEFAULT_SAMPLE_RATIO,
    OTLP_ENDPOINT_VARS,
    RECONCILE_SPAN_NAME,
    instrument,
    setup_tracing,
)
from kube_runtime.observe.watch_metrics import (
    ReadableStore,
    StoreCollector,
    WatchMetrics,
    observe_watch,
    store_collector,
    track_store,
    watch_metrics,
)

__all__ = [
    "DEFAULT_LOG_FILTER",
    "DEFAULT_SAMPLE_RATIO",
    "OTLP_ENDPOINT_VARS",
    "RECONCILE_SPAN_NAME",
    "RECONCILE_TIME_BUCKETS",
    "AuthDecision",
    "Check",
    "CheckResult",
    "ControllerMetrics",
    "EventLoopLagMonitor",
    "HealthChecks",
    "HotLoopDetector",
    "InstrumentableController",
    "ItemCallback",
    "LogFilter",
    "LogFilterError",
    "LoopCounter",
    "LoopHistogram",
    "ObjectGauge",
    "Observability",
    "ObservabilityServer",
    "ObservedController",
    "ReadableStore",
    "ReconcileProgress",
    "ResultRecorder",
    "ReviewClient",
    "RunnableController",
    "ServerOptions",
    "StoreCollector",
    "TaskDumpOnSignal",
    "TokenReviewAuthorizer",
    "WatchMetrics",
    "add_reconcile_context",
    "add_trace_context",
    "configure_logging",
    "controller_metrics",
    "format_task_dump",
    "instrument",
    "observe_results",
    "observe_watch",
    "parse_bind_address",
    "parse_log_filter",
    "pending_work_from_metrics",
    "reconcile_result_label",
    "setup_tracing",
    "store_collector",
    "store_ready_check",
    "track_store",
    "watch_metrics",
]

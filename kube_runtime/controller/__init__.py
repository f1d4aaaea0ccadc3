"""Scheduling, running and controlling reconciles (kube-rs's scheduler, runner and Controller)."""

from kube_runtime.controller.action import Action, ReconcileReason, ReconcileRequest
from kube_runtime.controller.backoff import ReconcileBackoff
from kube_runtime.controller.context import ReconcileInfo, current_reconcile
from kube_runtime.controller.controller import (
    DEFAULT_CONCURRENCY,
    Controller,
    ControllerConfig,
    ControllerRun,
    ErrorPolicy,
    Reconciler,
    WatchInstrument,
)
from kube_runtime.controller.errors import (
    ControllerError,
    ObjectDecodeFailed,
    ObjectNotFound,
    QueueError,
    ReconcilerFailed,
    RunnerError,
)
from kube_runtime.controller.metrics import QueueMetrics, queue_metrics
from kube_runtime.controller.options import DEFAULT_LEASE_NAMESPACE, ControllerOptions
from kube_runtime.controller.result import ControllerResult, Reconciled
from kube_runtime.controller.runner import Runner, RunnerHooks, runner
from kube_runtime.controller.scheduler import Due, Scheduler, ScheduleRequest, scheduler
from kube_runtime.controller.shutdown import DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT
from kube_runtime.controller.signals import SHUTDOWN_SIGNALS, shutdown_on_signals, shutdown_signal_count

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT",
    "DEFAULT_LEASE_NAMESPACE",
    "SHUTDOWN_SIGNALS",
    "Action",
    "Controller",
    "ControllerConfig",
    "ControllerError",
    "ControllerOptions",
    "ControllerResult",
    "ControllerRun",
    "Due",
    "ErrorPolicy",
    "ObjectDecodeFailed",
    "ObjectNotFound",
    "QueueError",
    "QueueMetrics",
    "ReconcileBackoff",
    "ReconcileInfo",
    "ReconcileReason",
    "ReconcileRequest",
    "Reconciled",
    "Reconciler",
    "ReconcilerFailed",
    "Runner",
    "RunnerError",
    "RunnerHooks",
    "ScheduleRequest",
    "Scheduler",
    "WatchInstrument",
    "current_reconcile",
    "queue_metrics",
    "runner",
    "scheduler",
    "shutdown_on_signals",
    "shutdown_signal_count",
]

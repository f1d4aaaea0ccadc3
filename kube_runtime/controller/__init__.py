"""Scheduling, running and controlling reconciles (kube-rs's ``controller`` module).

Bottom-up, each usable alone: :mod:`.scheduler` and :mod:`.runner` (a delay queue and the worker
pool over it), :mod:`.triggers` (``trigger_self``, ``trigger_owners``, ``trigger_others``,
``trigger_with``: streams of objects to streams of reconcile requests), :mod:`.reconcile` (one
attempt), :mod:`.applier` (``applier``: runs a frozen spec, triggers -> scheduler -> runner ->
result stream) and :mod:`.controller` (the ``Controller`` builder).
"""

from kube_runtime.controller.action import (
    DEFAULT_PRIORITY,
    LOW_PRIORITY,
    Action,
    ReconcileReason,
    ReconcileRequest,
)
from kube_runtime.controller.applier import (
    DEFAULT_CONCURRENCY,
    ApplierSpec,
    ControllerConfig,
    ControllerRun,
    Trigger,
    applier,
)
from kube_runtime.controller.backoff import ReconcileBackoff
from kube_runtime.controller.context import ReconcileInfo, current_reconcile
from kube_runtime.controller.controller import Controller, WatchInstrument
from kube_runtime.controller.errors import (
    ControllerError,
    ObjectDecodeFailed,
    QueueError,
    ReconcilerFailed,
    ReconcilerFailedTerminally,
    ReconcilerPanicked,
    ReconcileTimedOut,
    RunnerError,
)
from kube_runtime.controller.failures import PANIC_TYPES, StrayCancellation, TerminalError
from kube_runtime.controller.metrics import QueueMetrics, queue_metrics
from kube_runtime.controller.options import DEFAULT_LEASE_NAMESPACE, ControllerOptions
from kube_runtime.controller.reconcile import ErrorPolicy, Reconciler
from kube_runtime.controller.result import ControllerResult, ObjectNotFound, Reconciled
from kube_runtime.controller.runner import Runner, RunnerHooks, runner
from kube_runtime.controller.scheduler import Due, Scheduler, ScheduleRequest, scheduler
from kube_runtime.controller.shutdown import DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT
from kube_runtime.controller.signals import SHUTDOWN_SIGNALS, shutdown_on_signals, shutdown_signal_count
from kube_runtime.controller.triggers import trigger_others, trigger_owners, trigger_self, trigger_with

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT",
    "DEFAULT_LEASE_NAMESPACE",
    "DEFAULT_PRIORITY",
    "LOW_PRIORITY",
    "PANIC_TYPES",
    "SHUTDOWN_SIGNALS",
    "Action",
    "ApplierSpec",
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
    "ReconcileTimedOut",
    "Reconciled",
    "Reconciler",
    "ReconcilerFailed",
    "ReconcilerFailedTerminally",
    "ReconcilerPanicked",
    "Runner",
    "RunnerError",
    "RunnerHooks",
    "ScheduleRequest",
    "Scheduler",
    "StrayCancellation",
    "TerminalError",
    "Trigger",
    "WatchInstrument",
    "applier",
    "current_reconcile",
    "queue_metrics",
    "runner",
    "scheduler",
    "shutdown_on_signals",
    "shutdown_signal_count",
    "trigger_others",
    "trigger_owners",
    "trigger_self",
    "trigger_with",
]

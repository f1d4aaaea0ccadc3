"""Reconcile metrics collected by consuming a controller's result stream (kube-rs's pattern),
published under controller-runtime's names, labels and buckets so existing dashboards and alert
rules work unchanged.

``observe_results(controller.run(...), controller="x")`` passes every item through unchanged
and records:

* ``controller_runtime_reconcile_total{controller,result}``: ``result`` is ``error`` for a
  ``ReconcilerFailed``; otherwise from the returned ``Action`` as controller-runtime maps its
  ``Result``: ``requeue_after`` for a positive delay, ``requeue`` for a zero delay (or a backoff
  request), ``success`` for ``Action.await_change()``. All four series exist (at 0) as soon as
  the controller is registered, so ``rate()`` and ratio alerts work from the first scrape.
* ``controller_runtime_reconcile_errors_total{controller}`` for every ``ReconcilerFailed``.
* ``controller_runtime_reconcile_timeouts_total{controller}`` for every ``ReconcileTimedOut``,
  ``controller_runtime_terminal_reconcile_errors_total{controller}`` for every
  ``ReconcilerFailedTerminally`` and ``controller_runtime_reconcile_panics_total{controller}`` for
  every ``ReconcilerPanicked`` (see :mod:`kube_runtime.controller.failures`). Each is a
  ``ReconcilerFailed``, so also an error, as controller-runtime counts them.
* ``controller_runtime_reconcile_time_seconds{controller}`` from each item's ``.duration``.
* ``kube_runtime_controller_stream_errors_total{controller,error}`` for the other error items
  (``QueueError``, ``RunnerError``): they are not reconciles, so counting them as reconcile
  errors would skew the error ratio. ``ObjectNotFound`` (a deleted object) is no error and is
  not counted.

What the stream cannot see (queue depth, active workers, time in queue) the controller records
itself under the ``workqueue_*``/``controller_runtime_active_workers`` names.

Metric families are created once per ``CollectorRegistry`` (:func:`controller_metrics`), so
several controllers share them, distinguished by the ``controller`` label. They are lock-free
collectors (:mod:`kube_runtime.loop_metrics`: the exposition of prometheus_client's
``Counter``/``Histogram``, a fraction of the cost per reconcile), so a recorder must be fed from
one thread at a time: its controller's event loop. Under prometheus_client's multiprocess mode
they are its stock classes.
"""

from __future__ import annotations

from asyncio import get_running_loop
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, Final, Protocol, TypeVar, runtime_checkable

import structlog
from prometheus_client import CollectorRegistry

from kube_runtime.controller.action import Action
from kube_runtime.controller.errors import (
    ControllerError,
    QueueError,
    ReconcilerFailed,
    ReconcilerFailedTerminally,
    ReconcilerPanicked,
    ReconcileTimedOut,
    RunnerError,
)
from kube_runtime.controller.result import ObjectNotFound, Reconciled
from kube_runtime.loop_metrics import counter_family, histogram_family
from kube_runtime.metric_families import PerRegistry
from kube_runtime.observe.hotloop import HotLoopDetector
from kube_runtime.observe.progress import ReconcileProgress

__all__ = [
    "RECONCILE_RESULTS",
    "RECONCILE_TIME_BUCKETS",
    "ControllerMetrics",
    "DeletionSource",
    "ResultRecorder",
    "controller_metrics",
    "observe_results",
    "reconcile_result_label",
]

log = structlog.get_logger(__name__)

#: controller-runtime's ``controller_runtime_reconcile_time_seconds`` buckets.
RECONCILE_TIME_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
)  # fmt: skip
#: The ``result`` label values of ``controller_runtime_reconcile_total``.
RECONCILE_RESULTS: Final = ("success", "error", "requeue", "requeue_after")

T = TypeVar("T")


@runtime_checkable
class DeletionSource(Protocol):
    """What reports deleted objects to a recorder: a ``Controller``."""

    def on_object_deleted(self, listener: Any) -> object: ...


class ControllerMetrics:
    """The reconcile metric families of one registry. Get it with :func:`controller_metrics`.

    Update each controller's children from that controller's event loop only (see the module
    docs); scrapes may come from any thread."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.reconcile_total = counter_family(
            "controller_runtime_reconcile_total",
            "Total number of reconciliations per controller",
            ["controller", "result"],
            registry=registry,
        )
        self.reconcile_errors_total = counter_family(
            "controller_runtime_reconcile_errors_total",
            "Total number of reconciliation errors per controller",
            ["controller"],
            registry=registry,
        )
        self.terminal_reconcile_errors_total = counter_family(
            "controller_runtime_terminal_reconcile_errors_total",
            "Total number of terminal reconciliation errors per controller",
            ["controller"],
            registry=registry,
        )
        self.reconcile_panics_total = counter_family(
            "controller_runtime_reconcile_panics_total",
            "Total number of reconciliation panics per controller",
            ["controller"],
            registry=registry,
        )
        self.reconcile_timeouts_total = counter_family(
            "controller_runtime_reconcile_timeouts_total",
            "Total number of reconciliation timeouts per controller",
            ["controller"],
            registry=registry,
        )
        self.reconcile_time_seconds = histogram_family(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            ["controller"],
            buckets=RECONCILE_TIME_BUCKETS,
            registry=registry,
        )
        self.stream_errors_total = counter_family(
            "kube_runtime_controller_stream_errors_total",
            "Error items of a controller's result stream that are not reconcile failures",
            ["controller", "error"],
            registry=registry,
        )
        self.hot_loop_detections_total = counter_family(
            "kube_runtime_hot_loop_detections_total",
            "Objects found reconciled over and over because of changes right after their own reconcile",
            ["controller"],
            registry=registry,
        )

    def register_controller(self, controller: str) -> None:
        """Create every series of ``controller`` at zero (idempotent)."""
        for result in RECONCILE_RESULTS:
            self.reconcile_total.labels(controller, result)
        self.reconcile_errors_total.labels(controller)
        self.terminal_reconcile_errors_total.labels(controller)
        self.reconcile_panics_total.labels(controller)
        self.reconcile_timeouts_total.labels(controller)
        self.reconcile_time_seconds.labels(controller)
        self.hot_loop_detections_total.labels(controller)


_controller_metrics: PerRegistry[ControllerMetrics] = PerRegistry(ControllerMetrics)


def controller_metrics(registry: CollectorRegistry | None = None) -> ControllerMetrics:
    """The reconcile metric families registered in ``registry`` (default: prometheus_client's
    global ``REGISTRY``), created on first use."""
    return _controller_metrics(registry)


def reconcile_result_label(action: Any) -> str:
    """controller-runtime's ``result`` label for a successful reconcile's ``Action``."""
    if getattr(action, "backoff", False):
        return "requeue"
    delay = getattr(action, "requeue_after", None)
    if delay is None:
        return "success"
    return "requeue_after" if delay > 0 else "requeue"


class ResultRecorder:
    """Records one controller's result items: wrap the stream (``recorder.observe(results)``, or
    :func:`observe_results`) or call ``recorder.record(item)`` from your own consumer loop. The
    controller's series exist at zero from construction.

    ``hot_loops`` (default: a :class:`HotLoopDetector` with its defaults; ``False``/``None``
    disables it)
    is fed every reconcile. ``progress`` (optional) is marked on every item, which is what the
    ``/livez`` reconcile-loop check reads. ``log_errors`` logs error items: reconciler failures
    at ERROR with the exception the reconciler raised (``exc_info``: JSON logs carry it, its cause
    chain and its traceback without local variables, as the ``exception`` field), watch/queue
    errors at WARNING for 401/403 and DEBUG otherwise (the watcher retries
    them), runner errors at ERROR, missing objects at DEBUG.

    State kept per object (the hot-loop detector's) goes when the object goes: on an
    ``ObjectNotFound`` item, and on :meth:`forget`, which ``deletions`` (the ``Controller`` whose
    results these are; ``Observability`` passes it) calls for every delete it sees. Without it a
    deleted object's entry stays until the detector's window expires it, and never more than
    ``max_tracked`` of them are kept.
    """

    def __init__(
        self,
        controller: str,
        *,
        registry: CollectorRegistry | None = None,
        hot_loops: HotLoopDetector | bool | None = True,
        progress: ReconcileProgress | None = None,
        log_errors: bool = True,
        deletions: DeletionSource | None = None,
    ) -> None:
        self.controller = controller
        self.metrics = controller_metrics(registry)
        self.metrics.register_controller(controller)
        m, c = self.metrics, controller
        self._results = {r: m.reconcile_total.labels(c, r) for r in RECONCILE_RESULTS}
        self._success = self._results["success"]
        self._requeue = self._results["requeue"]
        self._requeue_after = self._results["requeue_after"]
        self._errors = m.reconcile_errors_total.labels(c)
        self._timeouts = m.reconcile_timeouts_total.labels(c)
        self._terminal = m.terminal_reconcile_errors_total.labels(c)
        self._panics = m.reconcile_panics_total.labels(c)
        self._time = m.reconcile_time_seconds.labels(c)
        if hot_loops is True:
            hot_loops = HotLoopDetector(controller)
        self.hot_loops = hot_loops if isinstance(hot_loops, HotLoopDetector) else None
        if self.hot_loops is not None:
            self.hot_loops.bind_counter(m.hot_loop_detections_total.labels(c))
        self.progress = progress
        self.log_errors = log_errors
        if deletions is not None:
            deletions.on_object_deleted(self.forget)

    def forget(self, obj_ref: object) -> None:
        """Drop the state kept for ``obj_ref``: it was deleted."""
        if self.hot_loops is not None:
            self.hot_loops.forget(obj_ref)

    def record(self, item: object) -> None:
        """Count one result item. Never raises for an unexpected item (it is ignored)."""
        self._record(item, get_running_loop().time())  # anyio's clock on asyncio, read directly

    def _record(self, item: object, now: float) -> None:
        if self.progress is not None:
            self.progress.mark(now)
        if item.__class__ is Reconciled:  # the common case, without the generic lookups below
            obj_ref, action = item
            duration = item.duration
            if action.__class__ is Action:
                if action.backoff:
                    self._requeue.inc()
                elif action.requeue_after is None:
                    self._success.inc()
                elif action.requeue_after > 0:
                    self._requeue_after.inc()
                else:
                    self._requeue.inc()
            else:
                self._results[reconcile_result_label(action)].inc()
            self._time.observe(duration)
            if self.hot_loops is not None:
                self.hot_loops.observe(obj_ref, item.reason, duration, now)
        elif isinstance(item, tuple) and len(item) == 2:
            obj_ref, action = item
            self._results[reconcile_result_label(action)].inc()
            maybe_duration = getattr(item, "duration", None)
            if maybe_duration is not None:
                self._time.observe(maybe_duration)
            if self.hot_loops is not None:
                self.hot_loops.observe(obj_ref, getattr(item, "reason", None), maybe_duration or 0.0, now)
        elif isinstance(item, ReconcilerFailed):
            self._results["error"].inc()
            self._errors.inc()
            if isinstance(item, ReconcileTimedOut):
                self._timeouts.inc()
            elif isinstance(item, ReconcilerFailedTerminally):
                self._terminal.inc()
            elif isinstance(item, ReconcilerPanicked):
                self._panics.inc()
            self._time.observe(item.duration)
            if self.hot_loops is not None:
                self.hot_loops.observe(item.obj_ref, item.reason, item.duration, now)
            if self.log_errors:
                fields: dict[str, Any] = {"object.ref": str(item.obj_ref), "object.reason": str(item.reason)}
                if isinstance(item, ReconcilerFailedTerminally):
                    fields["terminal"] = True
                log.error(
                    "reconcile failed",
                    controller=self.controller,
                    error=repr(item.error),
                    exc_info=item.error,
                    **fields,
                    **item.log_ids,  # the attempt's ids: this line joins its other lines and trace
                )
        elif isinstance(item, ObjectNotFound):
            self.forget(item.obj_ref)
            if self.log_errors:
                log.debug(
                    "object deleted before its reconcile",
                    controller=self.controller,
                    **{"object.ref": str(item.obj_ref)},
                )
        elif isinstance(item, ControllerError):
            self._record_stream_error(item)

    async def observe(self, results: AsyncIterable[T]) -> AsyncIterator[T]:
        """Pass ``results`` through unchanged, recording each item; closing this closes them."""
        iterator = aiter(results)
        clock = get_running_loop().time  # the loop's clock, looked up once for the whole stream
        record = self._record
        try:
            async for item in iterator:
                record(item, clock())
                yield item
        finally:
            await _close(iterator)

    def _record_stream_error(self, item: ControllerError) -> None:
        kind = type(item).__name__
        self.metrics.stream_errors_total.labels(self.controller, kind).inc()
        if not self.log_errors:
            return
        if isinstance(item, QueueError):
            code = _status_code(item.watcher_error)
            level = "warning" if code in (401, 403) else "debug"
            getattr(log, level)(
                "trigger stream error", controller=self.controller, code=code, error=str(item.watcher_error)
            )
        elif isinstance(item, RunnerError):
            log.error("controller runner failed", controller=self.controller, error=str(item.cause))
        else:
            log.warning("controller error", controller=self.controller, error=str(item))


def _status_code(error: BaseException | None) -> int | None:
    """The HTTP status behind a (possibly wrapped) error, if any."""
    seen = 0
    while error is not None and seen < 5:
        code = getattr(error, "code", None)
        if isinstance(code, int) and code:
            return code
        error = error.__cause__
        seen += 1
    return None


def observe_results(
    results: AsyncIterable[T],
    controller: str,
    *,
    registry: CollectorRegistry | None = None,
    hot_loops: HotLoopDetector | bool | None = True,
    progress: ReconcileProgress | None = None,
    log_errors: bool = True,
    deletions: DeletionSource | None = None,
) -> AsyncIterator[T]:
    """Pass ``results`` through unchanged, recording each item (see :class:`ResultRecorder`).

    The controller's series exist (at zero) as soon as this is called, before the first item.
    Pass ``deletions=controller`` so that per-object state goes with deleted objects.
    It starts no task. It owns ``results``: closing it (``contextlib.aclosing``, or the end of
    iteration) closes the wrapped stream too.
    """
    recorder = ResultRecorder(
        controller,
        registry=registry,
        hot_loops=hot_loops,
        progress=progress,
        log_errors=log_errors,
        deletions=deletions,
    )
    return recorder.observe(results)


async def _close(iterator: object) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()

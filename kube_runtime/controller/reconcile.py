"""One reconcile attempt: store read, decode, span, the user's reconcile, error policy, requeue.

:class:`ReconcileAttempts` is what the runner calls for each due request of a run
(:mod:`~kube_runtime.controller.applier`). Guarantees:

* The object is read from the store when the attempt starts (never from the trigger): a gone
  object yields ``ObjectNotFound``; a ``decode`` hook (typed resources) that raises yields
  ``ObjectDecodeFailed``. Both forget the object's failure backoff and do not requeue.
* The reconcile runs inside a "reconciling object" span, current while it runs, with
  :func:`~kube_runtime.controller.context.current_reconcile` set. The span is sampled once and
  started by :mod:`~kube_runtime.controller.reconcile_span` (a dropped one is a non-recording span
  with fresh ids), made current (``set_span_in_context``, ``context.attach``) and ended through
  OpenTelemetry's public API. It is not detached: the runner runs each attempt in a context of its
  own (:mod:`~kube_runtime.controller.isolation`), which is dropped with everything the attempt set
  in it, the span and ``current_reconcile()`` alike. A failure is recorded on it only when
  it records (an unsampled span costs no exception formatting). A cancelled reconcile's span still
  ends, with status ERROR and the description ``cancelled: <why>`` (``forceful shutdown``,
  ``graceful shutdown timed out``, ``leadership lost``, ``run stopped``; plain ``cancelled`` when
  the run cannot tell) and ``error.type`` ``cancelled``, so a trace backend shows it did not
  complete; no ``exception`` event (the cancellation's stack trace says nothing about the
  reconcile). Set only on a recording span.
  Without a tracer provider (resolved when the run starts) there is no span: the attempt's
  :class:`~kube_runtime.controller.context.ReconcileInfo` carries fresh ids for the log lines
  (:mod:`~kube_runtime.controller.unrecorded_span`), nothing is recorded, and nothing touches
  OpenTelemetry's context.
* A reconcile that raises (or returns something other than an ``Action``) yields
  ``ReconcilerFailed`` and is requeued as the error policy says: after the per-object exponential
  backoff when the policy returns ``Action.requeue_with_backoff()``, is ``None`` or itself fails.
  A bug (:mod:`~kube_runtime.controller.failures`: controller-runtime's panic) yields the subclass
  ``ReconcilerPanicked`` and is retried the same way. A ``TerminalError`` yields
  ``ReconcilerFailedTerminally``: no requeue, no error policy, the backoff is forgotten.
  Success yields ``Reconciled``, forgets the backoff and requeues as the ``Action`` says.
  A ``CancelledError`` the attempt was not cancelled with (it awaited a future cancelled
  elsewhere) is such a failure too (``StrayCancellation``): only a real cancellation ends it.
* Timeout: a reconcile running longer than its timeout (the request's, set by
  ``Action.with_timeout``, else the controller's; ``None``: none) is cancelled and yields
  ``ReconcileTimedOut`` once it has finished unwinding: the attempt (so the object's slot in the
  runner) lasts until then, so no reconcile of that object starts while the cancelled one
  cleans up. It is then retried like a failure. A reconcile that swallows the cancellation and
  returns is taken at its word.
* Requeues go straight into the runner's scheduler (capped at ``MAX_REQUEUE_SECONDS``) at the
  priority the ``Action`` names, else at the priority the attempt was started at
  (controller-runtime's ``Result.Priority``); once the runner is closed (shutting down) they are
  dropped.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final, Generic, TypeVar

import anyio
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from kube_runtime.client.json import KubeObject
from kube_runtime.client.tracing import record_failure
from kube_runtime.controller.action import MAX_REQUEUE_SECONDS, Action, ReconcileReason, ReconcileRequest
from kube_runtime.controller.backoff import ReconcileBackoff
from kube_runtime.controller.context import ReconcileInfo, _current, current_reconcile
from kube_runtime.controller.errors import (
    ObjectDecodeFailed,
    ReconcilerFailed,
    ReconcilerFailedTerminally,
    ReconcilerPanicked,
    ReconcileTimedOut,
)
from kube_runtime.controller.failures import StrayCancellation, is_panic, is_terminal
from kube_runtime.controller.metrics import QueueMetrics
from kube_runtime.controller.reconcile_span import ReconcileSpans
from kube_runtime.controller.result import ControllerResult, ObjectNotFound, Reconciled
from kube_runtime.controller.scheduler import Due
from kube_runtime.controller.unrecorded_span import unrecorded_ids
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.store.store import Store

__all__ = ["ErrorPolicy", "ReconcileAttempts", "Reconciler"]

_log = logging.getLogger("kube_runtime.controller")
#: Reconcile ids: a random per-process prefix and a counter in hex (unique, and far cheaper than
#: uuid4).
_ID_PREFIX: Final = uuid.uuid4().hex[:12]
_id_counter = itertools.count(1)

C = TypeVar("C")

#: ``reconcile(obj, ctx) -> Action``.
Reconciler = Callable[[KubeObject, C], Awaitable[Action]]
#: ``error_policy(obj, error, ctx) -> Action`` (sync or async).
ErrorPolicy = Callable[[KubeObject, Exception, C], Action | Awaitable[Action]]


class ReconcileAttempts(Generic[C]):
    """Performs attempts for one run: ``await attempts(request, due)`` -> one result.

    ``requeue(request, run_at, priority)`` schedules a retry (the runner's ``schedule``); ``clock``
    is the run's clock; ``metrics`` receives the active-worker count and retries; ``timeout`` is
    the controller's reconcile timeout in seconds (``None``: none).

    ``leading`` (leader-gated runs): asked before each attempt; when it says the term is over,
    ``term_over`` is called (it force-stops the run) and the attempt waits to be cancelled without
    running the reconciler. The elector's deadline passes before its watchdog task runs (a process
    resumed after a pause), and a due request must not start in between.

    ``cancelled_by``: asked, only when a recording span's reconcile is cancelled, why the run
    cancelled it (``None``: it cannot tell); the span's status description names it.

    Pitfall: await each attempt in a context of its own, as the runner does; the attempt sets the
    current reconcile and span in its context and leaves them there.
    """

    __slots__ = (
        "_backoff",
        "_cancelled_by",
        "_clock",
        "_context",
        "_decode",
        "_error_policy",
        "_leading",
        "_metrics",
        "_name",
        "_reconcile",
        "_requeue",
        "_spans",
        "_store",
        "_term_over",
        "_timeout",
    )

    def __init__(
        self,
        *,
        name: str,
        store: Store,
        reconcile: Reconciler[C],
        error_policy: ErrorPolicy[C] | None,
        context: C,
        error_backoff: ReconcileBackoff,
        decode: Callable[[KubeObject], Any] | None,
        metrics: QueueMetrics,
        clock: Callable[[], float],
        requeue: Callable[[ReconcileRequest, float, int], object],
        timeout: float | None = None,
        leading: Callable[[], bool] | None = None,
        term_over: Callable[[], object] | None = None,
        cancelled_by: Callable[[], str | None] | None = None,
    ) -> None:
        self._cancelled_by = cancelled_by
        self._timeout = timeout
        self._leading = leading
        self._term_over = term_over
        self._name = name
        self._store = store
        self._reconcile = reconcile
        self._error_policy = error_policy
        self._context = context
        self._backoff = error_backoff
        self._decode = decode
        self._metrics = metrics
        self._clock = clock
        self._requeue = requeue
        self._spans = ReconcileSpans()

    async def __call__(self, request: ReconcileRequest, due: Due[ReconcileRequest]) -> ControllerResult:
        leading = self._leading
        if leading is not None and not leading():
            if self._term_over is not None:
                self._term_over()
            await anyio.sleep_forever()  # cancelled by the forced stop, as a running attempt is
        obj_ref = request.obj_ref
        obj = self._store.get(obj_ref)
        backoff = self._backoff
        if obj is None:
            backoff.forget(obj_ref)
            return ObjectNotFound(obj_ref)
        decode = self._decode
        if decode is not None:
            try:
                obj = decode(obj)
            except Exception as error:
                backoff.forget(obj_ref)
                return ObjectDecodeFailed(error, obj_ref)
        reason = request.reason
        active = self._metrics.active_workers
        spans = self._spans
        span: trace.Span = trace.INVALID_SPAN
        reconcile_id = f"{_ID_PREFIX}-{next(_id_counter):x}"
        if not spans.enabled:
            _current.set(
                ReconcileInfo(
                    obj_ref, reason, reconcile_id, self._name, backoff.failures(obj_ref), unrecorded_ids()
                )
            )
        else:
            _current.set(ReconcileInfo(obj_ref, reason, reconcile_id, self._name, backoff.failures(obj_ref)))
            parent = otel_context.get_current()
            span = spans.start(obj_ref, reason, parent)
            # Not detached: the attempt's own context goes when it ends (see the module docs).
            otel_context.attach(trace.set_span_in_context(span, parent))
        try:
            clock = self._clock
            started = clock()
            timeout = self._timeout if request.timeout is None else request.timeout
            failure: Exception | None = None
            deadline: anyio.CancelScope | None = None
            action: Any = None
            active.inc()
            try:
                if timeout is None:
                    action = await self._reconcile(obj, self._context)
                else:
                    with anyio.move_on_after(timeout) as deadline:
                        action = await self._reconcile(obj, self._context)
            except Exception as exc:
                failure = exc
            except asyncio.CancelledError as exc:
                if _being_cancelled():
                    if span.is_recording():
                        _record_cancelled(span, self._cancelled_by)
                    raise
                failure = StrayCancellation(
                    "reconcile raised CancelledError without being cancelled (it awaited a "
                    "future or task cancelled elsewhere)"
                )
                failure.__cause__ = exc
            finally:
                duration = clock() - started
                active.dec()
            # The deadline fired: timed out even when the reconcile caught the cancellation and
            # returned (or raised) something else.
            if deadline is not None and deadline.cancel_called:
                assert timeout is not None
                expired = ReconcileTimedOut(obj_ref, timeout, reason=reason, duration=duration)
                return await self._failed(obj, expired, expired.error, due, span)
            if failure is None and not isinstance(action, Action):
                failure = TypeError(f"reconcile returned {action!r}, expected an Action")
            if failure is not None:
                failed: ReconcilerFailed
                if is_terminal(failure):
                    failed = ReconcilerFailedTerminally(failure, obj_ref, reason=reason, duration=duration)
                elif is_panic(failure):
                    failed = ReconcilerPanicked(failure, obj_ref, reason=reason, duration=duration)
                else:
                    failed = ReconcilerFailed(failure, obj_ref, reason=reason, duration=duration)
                return await self._failed(obj, failed, failure, due, span)
            backoff.forget(obj_ref)
            if action.requeue_after is not None:
                self._requeue_after(
                    obj_ref,
                    ReconcileReason.RECONCILER_REQUESTED_RETRY,
                    action.requeue_after,
                    due.priority if action.priority is None else action.priority,
                    action.timeout,
                )
            return Reconciled(obj_ref, action, reason=reason, duration=duration)
        finally:
            if spans.enabled:
                span.end()

    async def _failed(
        self,
        obj: KubeObject,
        failed: ReconcilerFailed,
        error: Exception,
        due: Due[ReconcileRequest],
        span: trace.Span,
    ) -> ReconcilerFailed:
        """Record ``failed`` on the span and requeue as its kind and the error policy say."""
        info = current_reconcile()
        if info is not None:
            failed.log_ids = _log_ids(info, span)
        if span.is_recording():
            record_failure(span, error)
        obj_ref = failed.obj_ref
        if isinstance(failed, ReconcilerFailedTerminally):
            self._backoff.forget(obj_ref)  # the next change starts afresh
            return failed
        delay, priority = await self._apply_error_policy(obj, error, self._backoff.next_delay(obj_ref))
        self._requeue_after(
            obj_ref,
            ReconcileReason.ERROR_POLICY_REQUESTED_RETRY,
            delay,
            due.priority if priority is None else priority,
        )
        return failed

    async def _apply_error_policy(
        self, obj: KubeObject, error: Exception, backoff_delay: float
    ) -> tuple[float | None, int | None]:
        """The retry delay (``None``: none) and priority (``None``: unchanged) the policy asks for."""
        policy = self._error_policy
        if policy is None:
            return backoff_delay, None
        try:
            action = policy(obj, error, self._context)
            if inspect.isawaitable(action):
                action = await action
            if not isinstance(action, Action):
                raise TypeError(f"error_policy returned {action!r}, expected an Action")
        except Exception:
            _log.exception("controller %s: error_policy failed; retrying with backoff", self._name)
            return backoff_delay, None
        return (backoff_delay if action.backoff else action.requeue_after), action.priority

    def _requeue_after(
        self,
        obj_ref: ObjectRef,
        reason: ReconcileReason,
        delay: float | None,
        priority: int,
        timeout: float | None = None,
    ) -> None:
        if delay is None:
            return
        self._metrics.on_retry()
        run_at = self._clock() + min(delay, MAX_REQUEUE_SECONDS)
        # Once shutting down (the runner is closed) the requeue is dropped.
        self._requeue(ReconcileRequest(obj_ref, reason, priority, timeout), run_at, priority)


def _being_cancelled() -> bool:
    """Whether the running task has a cancellation requested (shutdown, a timeout's scope)."""
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


def _record_cancelled(span: trace.Span, cancelled_by: Callable[[], str | None] | None) -> None:
    """Mark ``span`` as the span of a reconcile cancelled before it completed, for the reason
    ``cancelled_by`` gives: status ERROR, description ``cancelled: <why>``, ``error.type``
    ``cancelled`` (one value for every reason, so it groups as the semantic conventions intend)."""
    why = None if cancelled_by is None else cancelled_by()
    span.set_attribute("error.type", "cancelled")
    span.set_status(Status(StatusCode.ERROR, "cancelled" if why is None else f"cancelled: {why}"))


def _log_ids(info: ReconcileInfo, span: trace.Span) -> dict[str, str]:
    """The ``reconcile_id``, ``trace_id`` and ``span_id`` the attempt's log lines carry."""
    ids: dict[str, str] = {"reconcile_id": info.reconcile_id}
    ctx = span.get_span_context()
    pair = (ctx.trace_id, ctx.span_id) if ctx.is_valid else info.unrecorded_ids
    if pair is not None:
        ids["trace_id"] = format(pair[0], "032x")
        ids["span_id"] = format(pair[1], "016x")
    return ids

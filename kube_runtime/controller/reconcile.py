"""One reconcile attempt: store read, decode, span, the user's reconcile, error policy, requeue.

:class:`ReconcileAttempts` is what the runner calls for each due request of a run
(:mod:`~kube_runtime.controller.applier`). Guarantees:

* The object is read from the store when the attempt starts (never from the trigger): a gone
  object yields ``ObjectNotFound``; a ``decode`` hook (typed resources) that raises yields
  ``ObjectDecodeFailed``. Both forget the object's failure backoff and do not requeue.
* The reconcile runs inside a "reconciling object" span with
  :func:`~kube_runtime.controller.context.current_reconcile` set. Without a tracer provider it is
  an :class:`~kube_runtime.controller.unrecorded_span.UnrecordedSpan` instead: fresh ids for the
  log lines, nothing recorded (a real no-op span would cost most of an attempt's own time).
* A reconcile that raises (or returns something other than an ``Action``) yields
  ``ReconcilerFailed`` and is requeued as the error policy says: after the per-object exponential
  backoff when the policy returns ``Action.requeue_with_backoff()``, is ``None`` or itself fails.
  Success yields ``Reconciled``, forgets the backoff and requeues as the ``Action`` says.
* Requeues go straight into the runner's scheduler (capped at ``MAX_REQUEUE_SECONDS``); once the
  runner is closed (shutting down) they are dropped.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final, Generic, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from kube_runtime.client.json import KubeObject
from kube_runtime.controller.action import MAX_REQUEUE_SECONDS, Action, ReconcileReason, ReconcileRequest
from kube_runtime.controller.backoff import ReconcileBackoff
from kube_runtime.controller.context import ReconcileInfo, _current
from kube_runtime.controller.errors import ObjectDecodeFailed, ReconcilerFailed
from kube_runtime.controller.metrics import QueueMetrics
from kube_runtime.controller.result import ControllerResult, ObjectNotFound, Reconciled
from kube_runtime.controller.unrecorded_span import UnrecordedSpan
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.store.store import Store

__all__ = ["ErrorPolicy", "ReconcileAttempts", "Reconciler"]

_log = logging.getLogger("kube_runtime.controller")
#: Reconcile ids: a random per-process prefix and a counter (unique, and far cheaper than uuid4).
_ID_PREFIX: Final = uuid.uuid4().hex[:12]
_id_counter = itertools.count(1)
_tracer = trace.get_tracer("kube_runtime.controller")

C = TypeVar("C")

#: ``reconcile(obj, ctx) -> Action``.
Reconciler = Callable[[KubeObject, C], Awaitable[Action]]
#: ``error_policy(obj, error, ctx) -> Action`` (sync or async).
ErrorPolicy = Callable[[KubeObject, Exception, C], Action | Awaitable[Action]]


class ReconcileAttempts(Generic[C]):
    """Performs attempts for one run: ``await attempts(request, due_at)`` -> one result.

    ``requeue(request, run_at)`` schedules a retry (the runner's ``schedule``); ``clock`` is the
    run's clock; ``metrics`` receives the active-worker count and retries.
    """

    __slots__ = (
        "_backoff",
        "_clock",
        "_context",
        "_decode",
        "_error_policy",
        "_metrics",
        "_name",
        "_reconcile",
        "_requeue",
        "_store",
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
        requeue: Callable[[ReconcileRequest, float], object],
    ) -> None:
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

    async def __call__(self, request: ReconcileRequest, _due_at: float) -> ControllerResult:
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
        _current.set(
            ReconcileInfo(obj_ref, reason, _next_reconcile_id(), self._name, backoff.failures(obj_ref))
        )
        active = self._metrics.active_workers
        tracer = _reconcile_tracer()
        span_scope = (
            UnrecordedSpan()
            if tracer is None
            else tracer.start_as_current_span(
                "reconciling object", attributes={"object.ref": str(obj_ref), "object.reason": str(reason)}
            )
        )
        with span_scope as span:
            clock = self._clock
            started = clock()
            duration = 0.0
            active.inc()
            try:
                try:
                    action = await self._reconcile(obj, self._context)
                finally:
                    duration = clock() - started
                    active.dec()
                if not isinstance(action, Action):
                    raise TypeError(f"reconcile returned {action!r}, expected an Action")
            except Exception as error:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, str(error)))
                delay = await self._apply_error_policy(obj, error, backoff.next_delay(obj_ref))
                self._requeue_after(obj_ref, ReconcileReason.ERROR_POLICY_REQUESTED_RETRY, delay)
                return ReconcilerFailed(error, obj_ref, reason=reason, duration=duration)
            backoff.forget(obj_ref)
            self._requeue_after(obj_ref, ReconcileReason.RECONCILER_REQUESTED_RETRY, action.requeue_after)
            return Reconciled(obj_ref, action, reason=reason, duration=duration)

    async def _apply_error_policy(
        self, obj: KubeObject, error: Exception, backoff_delay: float
    ) -> float | None:
        policy = self._error_policy
        if policy is None:
            return backoff_delay
        try:
            action = policy(obj, error, self._context)
            if inspect.isawaitable(action):
                action = await action
            if not isinstance(action, Action):
                raise TypeError(f"error_policy returned {action!r}, expected an Action")
        except Exception:
            _log.exception("controller %s: error_policy failed; retrying with backoff", self._name)
            return backoff_delay
        return backoff_delay if action.backoff else action.requeue_after

    def _requeue_after(self, obj_ref: ObjectRef, reason: ReconcileReason, delay: float | None) -> None:
        if delay is None:
            return
        self._metrics.on_retry()
        run_at = self._clock() + min(delay, MAX_REQUEUE_SECONDS)
        # Once shutting down (the runner is closed) the requeue is dropped.
        self._requeue(ReconcileRequest(obj_ref, reason), run_at)


class _ResolvedTracer:
    """The real tracer behind OpenTelemetry's proxy, resolved once per installed provider."""

    __slots__ = ("provider", "tracer")

    def __init__(self) -> None:
        self.provider: object = None
        self.tracer: trace.Tracer | None = None


_resolved = _ResolvedTracer()


def _reconcile_tracer() -> trace.Tracer | None:
    """The tracer for reconcile spans, or None when no span can record (no provider installed).

    Checked per reconcile, so installing a provider later, or replacing ``_tracer``, takes effect.
    Going through the proxy tracer costs a generator-based context manager per span, so the real
    tracer is used directly once a provider is installed.
    """
    tracer = _tracer
    if not isinstance(tracer, trace.ProxyTracer):
        return tracer
    provider = trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None
    resolved = _resolved
    if resolved.provider is not provider or resolved.tracer is None:
        resolved.tracer = provider.get_tracer("kube_runtime.controller")
        resolved.provider = provider
    return resolved.tracer


def _next_reconcile_id() -> str:
    return f"{_ID_PREFIX}-{next(_id_counter):x}"

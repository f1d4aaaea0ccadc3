"""The errors a controller's result stream yields as values.

Every item of ``Controller.run()`` is a ``Reconciled``, an ``ObjectNotFound`` notice (not an
error: see :mod:`~kube_runtime.controller.result`) or one of these. None of them ends the stream
(only shutdown does), so a consumer should log/count them and keep iterating.

Each error keeps what caused it as ``__cause__`` with its traceback (``ReconcilerFailed.error`` is
the exception the reconciler raised, its own ``__cause__`` chain included), so logging the item
with ``exc_info=item`` shows where it was raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from kube_runtime.client.errors import KubeError
from kube_runtime.controller.action import ReconcileReason
from kube_runtime.store.object_ref import ObjectRef

__all__ = [
    "ControllerError",
    "ObjectDecodeFailed",
    "QueueError",
    "ReconcileTimedOut",
    "ReconcilerFailed",
    "ReconcilerFailedTerminally",
    "ReconcilerPanicked",
    "RunnerError",
]


class ControllerError(KubeError):
    """Base of every error item in a controller's result stream."""


class ObjectDecodeFailed(ControllerError):
    """The object due for a reconcile could not be decoded (``Controller.decode_objects``; for
    typed resources, it does not fit its model): ``error`` says why and names the fields.

    The reconciler and error policy did not run and nothing is requeued: the object is tried
    again when it changes. Other objects are unaffected.
    """

    def __init__(self, error: BaseException, obj_ref: ObjectRef) -> None:
        super().__init__(f"object {obj_ref} could not be decoded: {error}")
        self.error = error
        self.obj_ref = obj_ref
        self.__cause__ = error


class ReconcilerFailed(ControllerError):
    """The reconciler raised ``error`` for ``obj_ref``; the error policy decided the retry.

    ``reason`` is why that reconcile ran and ``duration`` how long it took in seconds.
    ``log_ids`` holds the ``reconcile_id``, ``trace_id`` and ``span_id`` the attempt's log lines
    carried (empty when not known), so a line about the failure, logged where the result is
    consumed, joins them and the exported trace.
    """

    log_ids: Mapping[str, str] = MappingProxyType({})

    def __init__(
        self,
        error: BaseException,
        obj_ref: ObjectRef,
        *,
        reason: ReconcileReason = ReconcileReason.UNKNOWN,
        duration: float = 0.0,
    ) -> None:
        super().__init__(f"reconciler for object {obj_ref} failed: {error!r}")
        self.error = error
        self.obj_ref = obj_ref
        self.reason = reason
        self.duration = duration
        self.__cause__ = error


class ReconcilerFailedTerminally(ReconcilerFailed):
    """The reconciler raised a :class:`~kube_runtime.controller.failures.TerminalError` (``error``,
    or an exception raised from one): the object is not requeued and is reconciled again only
    when it (or a related object) changes. The error policy was not consulted."""


class ReconcilerPanicked(ReconcilerFailed):
    """The reconciler failed by a bug (an exception of
    :data:`~kube_runtime.controller.failures.PANIC_TYPES`, or a return value that is not an
    ``Action``): controller-runtime's recovered panic. Retried through the error policy like any
    failure."""


class ReconcileTimedOut(ReconcilerFailed):
    """The reconcile of ``obj_ref`` ran longer than its ``timeout`` (seconds) and was cancelled
    (controller-runtime's ``ReconciliationTimeout``); ``error`` is a ``TimeoutError``.

    The item comes once the cancelled reconcile has finished unwinding (``duration`` includes its
    cleanup), and no reconcile of the object starts before. The object is retried as for any
    failure: the error policy decides, the per-object backoff by default.
    """

    def __init__(
        self,
        obj_ref: ObjectRef,
        timeout: float,
        *,
        reason: ReconcileReason = ReconcileReason.UNKNOWN,
        duration: float = 0.0,
    ) -> None:
        self.error: TimeoutError = TimeoutError(f"reconcile did not finish within {timeout:g} s")
        super().__init__(self.error, obj_ref, reason=reason, duration=duration)
        self.timeout = timeout


class QueueError(ControllerError):
    """A trigger stream (main watch, owns, watches or a custom stream) yielded an error.

    The stream that failed backs off and retries; the others keep going.
    """

    def __init__(self, watcher_error: BaseException) -> None:
        super().__init__(f"trigger stream error: {watcher_error}")
        self.watcher_error = watcher_error
        self.__cause__ = watcher_error


class RunnerError(ControllerError):
    """The runner could not operate: e.g. a store never became ready (its writer went away)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"runner failed: {cause}")
        self.cause = cause
        self.__cause__ = cause

"""The reconcile in progress, readable from anywhere inside it (logging, spans, task dumps).

``current_reconcile()`` returns the :class:`ReconcileInfo` of the reconcile whose task is running
(inside the reconciler, the error policy and anything they call), else ``None``. Each reconcile
runs in a context of its own (a fresh copy per run, also when a worker task runs one reconcile
after another), so no reconcile sees another's, concurrent or earlier.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import NamedTuple

from kube_runtime.controller.action import ReconcileReason
from kube_runtime.store.object_ref import ObjectRef

__all__ = ["ReconcileInfo", "current_reconcile"]


class ReconcileInfo(NamedTuple):
    """Which object is reconciled, why, by which controller; ``reconcile_id`` is unique per attempt
    (controller-runtime's ``reconcileID``); ``failures`` counts this object's consecutive failed
    reconciles before this attempt.

    Immutable, made once per attempt: a named tuple, which is made several times faster than a
    frozen dataclass (use ``_replace`` for a changed copy)."""

    obj_ref: ObjectRef
    reason: ReconcileReason
    reconcile_id: str
    controller: str
    failures: int = 0
    #: ``(trace_id, span_id)`` for log correlation while no tracer provider is installed (fresh
    #: random ids per attempt; see :mod:`~kube_runtime.controller.unrecorded_span`), else ``None``.
    unrecorded_ids: tuple[int, int] | None = None


_current: ContextVar[ReconcileInfo | None] = ContextVar("kube_runtime_reconcile", default=None)


def current_reconcile() -> ReconcileInfo | None:
    """The reconcile running in this task, or ``None`` outside of one."""
    return _current.get()

"""The success item of a controller's result stream."""

from __future__ import annotations

from typing import TypeAlias

from kube_runtime.controller.action import Action, ReconcileReason
from kube_runtime.controller.errors import ControllerError
from kube_runtime.store.object_ref import ObjectRef

__all__ = ["ControllerResult", "Reconciled"]


class Reconciled(tuple[ObjectRef, Action]):
    """A reconcile that returned ``action`` for ``obj_ref``.

    It is the pair ``(obj_ref, action)`` (kube-rs's tuple: ``ref, action = item`` works, and it
    compares equal to the plain tuple) and also carries ``reason`` (why that reconcile ran) and
    ``duration`` (seconds the reconciler took).
    """

    reason: ReconcileReason
    duration: float

    def __new__(
        cls,
        obj_ref: ObjectRef,
        action: Action,
        *,
        reason: ReconcileReason = ReconcileReason.UNKNOWN,
        duration: float = 0.0,
    ) -> Reconciled:
        self = super().__new__(cls, (obj_ref, action))
        self.reason = reason
        self.duration = duration
        return self

    @property
    def obj_ref(self) -> ObjectRef:
        return self[0]

    @property
    def action(self) -> Action:
        return self[1]

    def __repr__(self) -> str:
        return (
            f"Reconciled({self[0]}, {self[1]!r}, reason={str(self.reason)!r}, duration={self.duration:.6f})"
        )


#: One item of ``Controller.run()``.
ControllerResult: TypeAlias = Reconciled | ControllerError

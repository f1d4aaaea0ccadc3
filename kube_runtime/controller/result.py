"""The items of a controller's result stream that are not errors: ``Reconciled`` and ``ObjectNotFound``."""

from __future__ import annotations

from typing import TypeAlias

from kube_runtime.controller.action import Action, ReconcileReason
from kube_runtime.controller.errors import ControllerError
from kube_runtime.store.object_ref import ObjectRef

__all__ = ["ControllerResult", "ObjectNotFound", "Reconciled"]


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


class ObjectNotFound:
    """A reconcile was due but the object is no longer in the store: it was deleted.

    A notice, not an error (it is not an exception and not a ``ControllerError``): a delete still
    leaves requests naming the object (its children's deletes, its finalizer's removal, a queued
    requeue; kube-rs #1167), and nothing went wrong. kube-rs yields it as an error.
    """

    __slots__ = ("obj_ref",)

    def __init__(self, obj_ref: ObjectRef) -> None:
        self.obj_ref = obj_ref

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectNotFound) and other.obj_ref == self.obj_ref

    def __hash__(self) -> int:
        return hash(("ObjectNotFound", self.obj_ref))

    def __str__(self) -> str:
        return f"object not found in the store (deleted): {self.obj_ref}"

    def __repr__(self) -> str:
        return f"ObjectNotFound({self.obj_ref})"


#: One item of ``Controller.run()``.
ControllerResult: TypeAlias = Reconciled | ObjectNotFound | ControllerError

"""Result items for driving the metrics consumer without running a controller."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from kube_runtime.controller.action import Action, ReconcileReason
from kube_runtime.controller.result import Reconciled
from kube_runtime.store.object_ref import ObjectRef


def reconciled(
    obj_ref: ObjectRef,
    action: Action,
    *,
    reason: ReconcileReason = ReconcileReason.OBJECT_UPDATED,
    duration: float = 0.01,
) -> Reconciled:
    """A controller's success item, triggered by a change of the object unless told otherwise."""
    return Reconciled(obj_ref, action, reason=reason, duration=duration)


def ref(name: str, namespace: str | None = "default") -> ObjectRef:
    return ObjectRef("ConfigMap", name, namespace)


async def stream(items: Iterable[object]) -> AsyncIterator[object]:
    for item in items:
        yield item

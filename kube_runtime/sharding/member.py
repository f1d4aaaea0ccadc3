"""The member side of a ring: the gate in front of the user's reconciler.

Every reconcile of a sharded controller passes :class:`ShardGate` first. It reads the object the
controller handed over (the store's copy) and:

* skips an object that is not labelled for this member (the watch is scoped by the member's
  label selector, so this only happens for a store entry that is being replaced);
* acknowledges a drain: removes the shard and drain labels and does not call the reconciler. The
  runner never runs two reconciles of one object at once, so a reconcile that was running when
  the drain label arrived has finished before this happens; once the labels are gone the object
  leaves this member's watch, and the assigner labels it for its new member;
* skips everything while this replica does not hold its member Lease (the fence; the term's
  controller run is also cancelled the instant the Lease's renew deadline passes).

Pitfall: a reconciler that changes an object's labels must not remove the shard label.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry

from kube_runtime.client import Api, Client
from kube_runtime.client.errors import ApiError, TransportError
from kube_runtime.client.json import KubeObject
from kube_runtime.client.resource import ApiResource
from kube_runtime.controller.action import Action
from kube_runtime.controller.reconcile import Reconciler
from kube_runtime.sharding.labels import drain_label, shard_label
from kube_runtime.sharding.metrics import shard_metrics
from kube_runtime.sharding.placement import release_patch

__all__ = ["ShardGate"]

log = logging.getLogger(__name__)

C = TypeVar("C")


class ShardGate(Generic[C]):
    """``ShardGate(...)(obj, ctx)`` is the reconciler a sharded controller runs."""

    def __init__(
        self,
        reconcile: Reconciler[C],
        *,
        client: Client,
        resource: ApiResource,
        ring: str,
        member: str,
        holds_lease: Callable[[], bool],
        retry_period: float,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._reconcile = reconcile
        self._client = client
        self._resource = resource
        self._ring = ring
        self._member = member
        self._holds_lease = holds_lease
        self._retry_period = retry_period
        self._shard_label = shard_label(ring)
        self._drain_label = drain_label(ring)
        self._acknowledged = shard_metrics(registry).drains_acknowledged.labels(ring=ring, shard=member)

    async def __call__(self, obj: KubeObject, context: C) -> Action:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if labels.get(self._shard_label) != self._member or not self._holds_lease():
            return Action.await_change()
        if self._drain_label in labels:
            return await self._acknowledge_drain(obj)
        return await self._reconcile(obj, context)

    async def _acknowledge_drain(self, obj: KubeObject) -> Action:
        metadata = obj.get("metadata") or {}
        api = Api(self._client, self._resource, metadata.get("namespace"))
        try:
            await api.patch(str(metadata["name"]), release_patch(self._shard_label, self._drain_label))
        except ApiError as exc:
            if exc.code == 404:
                return Action.await_change()
            log.warning("ring %s: giving back %s failed: %s", self._ring, metadata.get("name"), exc)
            return Action.requeue(self._retry_period)
        except TransportError as exc:
            log.warning("ring %s: giving back %s failed: %s", self._ring, metadata.get("name"), exc)
            return Action.requeue(self._retry_period)
        self._acknowledged.inc()
        return Action.await_change()

"""The sharding metric families, one set per Prometheus registry.

* ``kube_runtime_shard_objects{ring,shard}``: objects the assigner sees labelled for each member
  (``shard=""`` counts the unassigned ones). Set by the replica running the assigner.
* ``kube_runtime_shard_members{ring}``: live members in the assigner's view of the ring.
* ``kube_runtime_shard_member_status{ring,shard}``: 1 while this replica holds its member Lease.
* ``kube_runtime_shard_moves_total{ring}``: objects the assigner labelled for a member other than the
  one it last saw them on (after a drain, or off a dead member).
* ``kube_runtime_shard_drains_total{ring}``: drain labels the assigner set.
* ``kube_runtime_shard_drains_acknowledged_total{ring,shard}``: drains this replica acknowledged.
* ``kube_runtime_shard_assigner_lag_seconds{ring}``: how long the oldest object still waiting for
  the assigner (unassigned, or on a dead member) has waited; 0 when none waits.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from kube_runtime.metric_families import PerRegistry

__all__ = ["ShardMetrics", "shard_metrics"]


@dataclass(frozen=True, slots=True)
class ShardMetrics:
    objects: Gauge
    members: Gauge
    member_status: Gauge
    moves: Counter
    drains: Counter
    drains_acknowledged: Counter
    assigner_lag: Gauge


def _build(registry: CollectorRegistry) -> ShardMetrics:
    return ShardMetrics(
        objects=Gauge(
            "kube_runtime_shard_objects",
            "Objects labelled for each member of the ring, as the assigner sees them.",
            ["ring", "shard"],
            registry=registry,
        ),
        members=Gauge(
            "kube_runtime_shard_members",
            "Live members of the ring, as the assigner sees them.",
            ["ring"],
            registry=registry,
        ),
        member_status=Gauge(
            "kube_runtime_shard_member_status",
            "1 while this replica holds its member Lease of the ring, else 0.",
            ["ring", "shard"],
            registry=registry,
        ),
        moves=Counter(
            "kube_runtime_shard_moves_total",
            "Objects the assigner moved to another member.",
            ["ring"],
            registry=registry,
        ),
        drains=Counter(
            "kube_runtime_shard_drains_total",
            "Drain labels the assigner set to move an object off a live member.",
            ["ring"],
            registry=registry,
        ),
        drains_acknowledged=Counter(
            "kube_runtime_shard_drains_acknowledged_total",
            "Drains this replica acknowledged by giving the object back.",
            ["ring", "shard"],
            registry=registry,
        ),
        assigner_lag=Gauge(
            "kube_runtime_shard_assigner_lag_seconds",
            "Age of the oldest object waiting for the assigner (0 when none waits).",
            ["ring"],
            registry=registry,
        ),
    )


shard_metrics: PerRegistry[ShardMetrics] = PerRegistry(_build)

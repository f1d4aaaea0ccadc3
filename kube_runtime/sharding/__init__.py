"""Horizontal scale-out: a controller's objects split between replicas, coordinated through the
Kubernetes API alone (Leases, labels and label-selected watches), following the protocol of
kubernetes-controller-sharding so replicas interoperate with its sharder.

``Controller(...).sharded(ring=..., lease_namespace=...)`` returns a :class:`ShardedController`;
see :mod:`kube_runtime.sharding.run` for the lifecycle, :mod:`~kube_runtime.sharding.assigner` for
placement and moves, :mod:`~kube_runtime.sharding.member` for the drain handshake and the fence,
and docs/sharding.md for when to shard and the failure modes.
"""

from kube_runtime.sharding.assigner import Assigner, ShardedKind
from kube_runtime.sharding.hashring import DEFAULT_TOKENS, HashRing, placement_key, ring_key
from kube_runtime.sharding.labels import RING_LABEL, drain_label, member_selector, ring_selector, shard_label
from kube_runtime.sharding.member import ShardGate
from kube_runtime.sharding.run import ShardedController, ShardedRun, default_instance_id

__all__ = [
    "DEFAULT_TOKENS",
    "RING_LABEL",
    "Assigner",
    "HashRing",
    "ShardGate",
    "ShardedController",
    "ShardedKind",
    "ShardedRun",
    "default_instance_id",
    "drain_label",
    "member_selector",
    "placement_key",
    "ring_key",
    "ring_selector",
    "shard_label",
]

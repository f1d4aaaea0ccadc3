"""The label names of the sharding protocol (kubernetes-controller-sharding's ``alpha`` API).

A ring is a name. Its members are the Leases labelled ``alpha.sharding.timebertt.dev/controllerring
=<ring>``, each named after the replica holding it (``holderIdentity`` equals the name). An object
belongs to the member named by ``shard.alpha.sharding.timebertt.dev/<ring>``; the assigner asks that
member to let go of it by adding ``drain.alpha.sharding.timebertt.dev/<ring>``. Using the same names
lets replicas of this runtime join a ring managed by that project's sharder, and the other way round.
"""

from __future__ import annotations

__all__ = [
    "RING_LABEL",
    "drain_label",
    "member_selector",
    "ring_selector",
    "shard_label",
]

#: Carried by every member Lease of a ring; its value is the ring's name.
RING_LABEL = "alpha.sharding.timebertt.dev/controllerring"

_SHARD_PREFIX = "shard.alpha.sharding.timebertt.dev/"
_DRAIN_PREFIX = "drain.alpha.sharding.timebertt.dev/"


def shard_label(ring: str) -> str:
    """The label naming the member an object of ``ring`` is assigned to."""
    return _SHARD_PREFIX + ring


def drain_label(ring: str) -> str:
    """The label asking an object's member to stop reconciling it and give it back."""
    return _DRAIN_PREFIX + ring


def ring_selector(ring: str) -> str:
    """The label selector of ``ring``'s member Leases."""
    return f"{RING_LABEL}={ring}"


def member_selector(ring: str, member: str) -> str:
    """The label selector of the objects assigned to ``member``: the scope of its watches."""
    return f"{shard_label(ring)}={member}"

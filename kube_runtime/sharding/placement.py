"""The assigner's decision for one object: the labels to write, if any.

Given the member the object is labelled for (``current``), whether the drain label is set, the
member the hash ring wants (``desired``) and what is known of ``current``:

* no live member at all: leave it;
* unassigned: label it for ``desired`` (first sight);
* on a live member other than ``desired``: set the drain label once, then wait: the member stops
  reconciling it, finishes any running reconcile and removes both labels, and only then is the
  object unassigned and labelled anew;
* on a member that is gone and can no longer be reconciling (its Lease is held by the assigner,
  or it never had one): label it for ``desired`` at once;
* on a member that is gone but may still be fencing itself: wait.
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = ["MemberState", "assign_patch", "decide", "drain_patch", "release_patch"]


class MemberState(enum.Enum):
    ALIVE = "alive"
    MOVABLE = "movable"  # dead, and certainly not reconciling any more
    FENCING = "fencing"  # dead, but its last term may not have ended yet


def assign_patch(shard_label: str, drain_label: str, member: str) -> dict[str, Any]:
    """A merge patch assigning an object to ``member`` (clears a stale drain label)."""
    return {"metadata": {"labels": {shard_label: member, drain_label: None}}}


def drain_patch(drain_label: str) -> dict[str, Any]:
    """A merge patch asking the object's member to give it back."""
    return {"metadata": {"labels": {drain_label: "true"}}}


def release_patch(shard_label: str, drain_label: str) -> dict[str, Any]:
    """A merge patch with which a member gives an object back (removes both labels)."""
    return {"metadata": {"labels": {shard_label: None, drain_label: None}}}


def decide(
    current: str | None, draining: bool, desired: str | None, state: MemberState | None
) -> tuple[str, str] | None:
    """``("assign", member)``, ``("drain", current)`` or None (nothing to write now).

    ``state`` is the state of ``current`` (ignored when ``current`` is None).
    """
    if desired is None:
        return None
    if current is None:
        return ("assign", desired)
    if state is MemberState.ALIVE:
        if current != desired and not draining:
            return ("drain", current)
        return None
    if state is MemberState.MOVABLE:
        return ("assign", desired)
    return None

"""The assigner's view of a ring's member Leases: who is alive, and whose objects may move.

A member is alive while its Lease names it as holder (``holderIdentity`` equals the Lease's name)
and the record has changed within ``leaseDurationSeconds`` *as measured on the assigner's own
clock since it first saw that record* (the leader elector's rule: no cross-machine clock
comparison). A record seen for the first time counts from the moment it was seen, so an assigner
that just took over waits a full lease duration before it declares anyone dead.

Fencing: a member stops reconciling at ``renew_deadline`` after it *started* its last successful
renew, and ``renew_deadline < lease_duration``. The record that renew wrote reaches the assigner
after it was written, so the assigner declares the member dead no earlier than ``lease_duration -
renew_deadline`` seconds (the safety margin) after the member stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["LeaseRecord", "Membership"]


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """One observed state of a member Lease."""

    name: str
    holder: str
    duration: float
    observed_at: float
    resource_version: str
    lease: Mapping[str, Any]

    def expires_at(self) -> float:
        return self.observed_at + self.duration

    def held_by(self, identity: str, now: float) -> bool:
        """True while ``identity`` holds this record and it has not expired."""
        return self.holder == identity and now < self.expires_at()


class Membership:
    """The Leases of one ring, fed by a Lease watch; queried with the caller's clock reading."""

    def __init__(self, default_duration: float) -> None:
        self._default_duration = default_duration
        self._records: dict[str, LeaseRecord] = {}
        self._deleted: dict[str, float] = {}

    def observe(self, lease: Mapping[str, Any], now: float) -> None:
        """Record a Lease as listed or watched; a changed record restarts its expiry."""
        metadata = lease.get("metadata") or {}
        spec = lease.get("spec") or {}
        name = str(metadata.get("name", ""))
        holder = str(spec.get("holderIdentity") or "")
        duration = float(spec.get("leaseDurationSeconds") or self._default_duration)
        version = str(metadata.get("resourceVersion", ""))
        previous = self._records.get(name)
        if previous is not None and previous.resource_version == version:
            return
        self._records[name] = LeaseRecord(name, holder, duration, now, version, lease)
        self._deleted.pop(name, None)

    def forget(self, name: str, now: float) -> None:
        """A Lease was deleted: its member is dead, but may still be fencing itself until the
        old record would have expired."""
        record = self._records.pop(name, None)
        if record is not None:
            self._deleted[name] = max(now + record.duration, record.expires_at())

    def reset(self, leases: list[Mapping[str, Any]], now: float) -> None:
        """Replace the view with a fresh list; records that did not change keep their age."""
        names = {str((lease.get("metadata") or {}).get("name", "")) for lease in leases}
        for name in list(self._records):
            if name not in names:
                self.forget(name, now)
        for lease in leases:
            self.observe(lease, now)

    def alive(self, now: float) -> frozenset[str]:
        """The live members: each Lease held by its namesake and not expired."""
        return frozenset(r.name for r in self._records.values() if r.held_by(r.name, now))

    def record(self, name: str) -> LeaseRecord | None:
        return self._records.get(name)

    def fenced_until(self, name: str) -> float | None:
        """For a deleted Lease: until when its former holder may still believe it holds it."""
        return self._deleted.get(name)

    def next_change(self, now: float) -> float | None:
        """The next instant the live set changes by expiry alone (None if no record will expire)."""
        times = [r.expires_at() for r in self._records.values() if r.expires_at() > now]
        times += [t for t in self._deleted.values() if t > now]
        return min(times, default=None)

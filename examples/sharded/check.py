"""Checks on the replicas' reconcile records: overlaps, moves, and which versions were reconciled.

A replica's records of one object pair up in order (the runner never runs two reconciles of one
object at once within a replica): each ``start`` is closed by the next ``end``. A ``start`` without
an ``end`` belongs to a replica that was killed mid-reconcile; its interval is taken to last until
the kill (``killed_at``), the latest moment it could have been running.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Interval", "Report", "analyse"]


@dataclass(frozen=True, slots=True)
class Interval:
    replica: str
    object: str
    version: str
    start: float
    end: float | None  # None: still open (the replica was killed, or is still running it)


@dataclass
class Report:
    intervals: dict[str, list[Interval]] = field(default_factory=dict)
    overlaps: list[tuple[Interval, Interval]] = field(default_factory=list)
    moves: int = 0

    def reconciled_versions(self, name: str) -> set[str]:
        return {i.version for i in self.intervals.get(name, ()) if i.end is not None}


def _pair(records: Iterable[Mapping[str, Any]]) -> dict[str, list[Interval]]:
    open_: dict[tuple[str, str], Mapping[str, Any]] = {}
    by_object: dict[str, list[Interval]] = {}
    for rec in records:
        key = (rec["replica"], rec["object"])
        if rec["event"] == "start":
            stale = open_.pop(key, None)
            if stale is not None:  # a start without its end: the replica was cut short before this one
                by_object.setdefault(key[1], []).append(
                    Interval(key[0], key[1], stale["version"], stale["time"], rec["time"])
                )
            open_[key] = rec
        else:
            began = open_.pop(key, None)
            start = began["time"] if began is not None else rec["time"]
            by_object.setdefault(key[1], []).append(
                Interval(key[0], key[1], rec["version"], start, rec["time"])
            )
    for (replica, name), rec in open_.items():
        by_object.setdefault(name, []).append(Interval(replica, name, rec["version"], rec["time"], None))
    return by_object


def analyse(
    records_by_replica: Mapping[str, Sequence[Mapping[str, Any]]], killed_at: Mapping[str, float]
) -> Report:
    """Pair each replica's records into intervals and check them across replicas.

    ``killed_at`` maps killed replicas to the wall-clock time of the kill; an open interval of a
    replica that was not killed counts as running until the end of time.
    """
    report = Report()
    for records in records_by_replica.values():
        ordered = sorted(records, key=lambda r: (r["time"], r["event"] != "end"))
        for name, intervals in _pair(ordered).items():
            report.intervals.setdefault(name, []).extend(intervals)
    for intervals in report.intervals.values():
        intervals.sort(key=lambda i: i.start)
        previous: str | None = None
        for interval in intervals:
            if previous is not None and interval.replica != previous:
                report.moves += 1
            previous = interval.replica
        for i, first in enumerate(intervals):
            first_end = first.end if first.end is not None else killed_at.get(first.replica, float("inf"))
            for second in intervals[i + 1 :]:
                if second.start >= first_end:
                    continue
                if second.replica != first.replica:
                    report.overlaps.append((first, second))
    return report

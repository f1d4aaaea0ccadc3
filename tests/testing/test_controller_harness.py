"""The harness's own checks can fail: overlapping reconciles and lagging versions are reported, and
schedules are reproducible data."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from kube_runtime.controller import Action
from kube_runtime.testing.clusters import merge_patch
from kube_runtime.testing.controller_harness import ReconcileTracker, ScheduleFailed
from kube_runtime.testing.schedules import Compact, Schedule, Update, random_schedule


def obj(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": rv}}


async def test_tracker_reports_two_reconciles_of_one_object_at_once() -> None:
    tracker = ReconcileTracker()
    release = anyio.Event()

    async def slow(_obj: dict[str, Any], _ctx: Any) -> Action:
        await release.wait()
        return Action.await_change()

    tracked = tracker.wrap(slow)

    async def reconcile(name: str, rv: str) -> None:
        await tracked(obj(name, rv), None)

    async with anyio.create_task_group() as tg:
        tg.start_soon(reconcile, "a", "1")
        tg.start_soon(reconcile, "b", "1")
        tg.start_soon(reconcile, "a", "2")
        await anyio.wait_all_tasks_blocked()
        assert tracker.in_flight == {"a": 2, "b": 1}
        release.set()
    assert tracker.overlaps == ["a reconciled at resourceVersion 2 while 1 ran"]
    assert tracker.in_flight == {}


async def test_tracker_lag_needs_the_latest_version_and_a_start_after_the_last_write() -> None:
    tracker = ReconcileTracker()

    async def ok(_obj: dict[str, Any], _ctx: Any) -> Action:
        return Action.await_change()

    async def failing(_obj: dict[str, Any], _ctx: Any) -> Action:
        raise RuntimeError("boom")

    assert tracker.lag("a", "5") == "a: resourceVersion 5 was never reconciled"
    await tracker.wrap(ok)(obj("a", "4"), None)
    assert tracker.lag("a", "5") == "a: latest resourceVersion 5 not reconciled (last reconciled: 4)"
    with pytest.raises(RuntimeError):
        await tracker.wrap(failing)(obj("a", "5"), None)
    assert tracker.lag("a", "5") is not None  # a failed reconcile does not count
    await tracker.wrap(ok)(obj("a", "5"), None)
    assert tracker.lag("a", "5") is None
    sent = tracker.writing()  # its child is changed: the write is sent...
    await tracker.wrap(ok)(obj("a", "5"), None)  # ...a reconcile starts before the response...
    tracker.wrote("a", sent)  # ...and counts as having seen it
    assert tracker.lag("a", "5") is None
    tracker.wrote("a", tracker.writing())  # a write sent after the last reconcile started
    assert tracker.lag("a", "5") == "a: not reconciled since its child was changed"
    await tracker.wrap(ok)(obj("a", "5"), None)
    assert tracker.lag("a", "5") is None


def test_random_schedules_are_reproducible_and_cover_the_shapes() -> None:
    assert random_schedule(7) == random_schedule(7)
    drawn = [random_schedule(seed) for seed in range(20)]
    assert {(s.list_mode, s.page_size) for s in drawn} == {
        ("paged", None),
        ("paged", 50),
        ("streaming", None),
        ("unpaged", None),
    }
    assert sum(s.initial_objects >= 2000 for s in drawn) == 4
    assert any(Compact() in s.steps for s in drawn)


def test_a_failure_shows_the_schedule() -> None:
    schedule = Schedule("paged", 50, 2, (Update(1, "b"), Compact()))
    text = str(ScheduleFailed(schedule, ["obj-1: lost"]))
    assert text.splitlines() == [
        "Schedule: paged (page size 50) lists, 2 initial objects, 2 steps",
        "    0. Update(index=1, content='b')",
        "    1. Compact()",
        "Problems:",
        "  - obj-1: lost",
    ]


def test_merge_patch() -> None:
    target = {"a": 1, "b": {"c": 2, "d": 3}}
    assert merge_patch(target, {"b": {"c": None, "e": 4}, "f": 5}) == {"a": 1, "b": {"d": 3, "e": 4}, "f": 5}
    assert target == {"a": 1, "b": {"c": 2, "d": 3}}

"""The scheduler's rules (kube-rs scheduler.rs): dedup, earliest wins, debounce, pending drop, clamp."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from kube_runtime.controller.action import MAX_REQUEUE_SECONDS, ReconcileReason, ReconcileRequest
from kube_runtime.controller.scheduler import Due, Scheduler, ScheduleRequest, scheduler
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.testing.clock import virtual_clock_backend

# Marked here (not only by tests/conftest.py) so anyio sees the fixture and does not also
# parametrize every test over trio.
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> Any:
    return virtual_clock_backend()


def req(name: str, reason: str = "") -> ReconcileRequest:
    return ReconcileRequest(ObjectRef("ConfigMap", name, "ns"), ReconcileReason.custom(reason or name))


def test_one_entry_per_message() -> None:
    s: Scheduler[ReconcileRequest] = Scheduler()
    assert s.schedule(req("a", "first"), 1.0, now=0.0)
    assert s.schedule(req("a", "second"), 1.0, now=0.0)
    assert len(s) == 1
    assert s.pop(0.5) is None
    due = s.pop(1.0)
    assert due is not None
    assert str(due.message.reason) == "second"  # a tie takes the newer request
    assert s.pop(10.0) is None
    assert len(s) == 0


def test_earlier_request_wins_and_keeps_its_reason() -> None:
    """kube-rs test scheduler_should_overwrite_message_with_soonest_version (#1114)."""
    s: Scheduler[ReconcileRequest] = Scheduler()
    s.schedule(req("a", "late"), 10.0, now=0.0)
    assert s.schedule(req("a", "early"), 5.0, now=0.0)
    assert not s.schedule(req("a", "later still"), 7.0, now=0.0)
    assert s.scheduled_at(req("a")) == 5.0
    assert s.pop(4.9) is None
    due = s.pop(5.0)
    assert due == Due(req("a"), 5.0)
    assert str(due.message.reason) == "early"


def test_pending_message_swallows_requests() -> None:
    s: Scheduler[ReconcileRequest] = Scheduler()
    s.schedule(req("a", "first"), 0.0, now=0.0)
    assert s.pop(0.0, lambda m: False) is None  # due but refused: now pending (parked)
    assert s.pending_count == 1
    assert not s.schedule(req("a", "dropped"), 0.0, now=0.0)
    assert s.pop(0.0, lambda m: True) is None  # parked until released
    s.unpark(req("a"))
    due = s.pop(0.0, lambda m: True)
    assert due is not None
    assert str(due.message.reason) == "first"
    assert s.pop(100.0) is None


def test_pending_messages_run_before_newly_expired_ones() -> None:
    s: Scheduler[ReconcileRequest] = Scheduler()
    s.schedule(req("a"), 0.0, now=0.0)
    s.schedule(req("b"), 1.0, now=0.0)
    assert s.pop(0.0, lambda m: False) is None
    s.unpark(req("a"))
    first = s.pop(2.0)
    second = s.pop(2.0)
    assert first is not None
    assert second is not None
    assert (first.message.obj_ref.name, second.message.obj_ref.name) == ("a", "b")


def test_hold_parks_expired_messages() -> None:
    s: Scheduler[ReconcileRequest] = Scheduler()
    s.schedule(req("a"), 0.0, now=0.0)
    s.schedule(req("b"), 5.0, now=0.0)
    s.hold(1.0)
    assert s.pending_count == 1
    assert s.became_due == 1
    assert s.next_deadline() == 5.0
    assert not s.schedule(req("a"), 0.0, now=1.0)


def test_debounce_is_a_trailing_delay() -> None:
    s: Scheduler[ReconcileRequest] = Scheduler(debounce=5.0)
    s.schedule(req("a"), 0.0, now=0.0)
    assert s.next_deadline() == 5.0
    s.schedule(req("a"), 3.0, now=3.0)  # within the debounce window: pushed out
    assert s.next_deadline() == 8.0
    assert s.pop(7.9) is None
    assert s.pop(8.0) is not None
    s.schedule(req("b"), 20.0, now=20.0)
    s.schedule(req("b"), 100.0, now=20.0)  # later than the stored run time: ignored
    assert s.next_deadline() == 25.0


def test_run_times_are_clamped_to_180_days() -> None:
    """kube-rs #1772: a requeue years away panicked the delay queue; it is clamped instead."""
    s: Scheduler[ReconcileRequest] = Scheduler()
    s.schedule(req("a"), 1e12, now=50.0)
    assert s.next_deadline() == 50.0 + MAX_REQUEUE_SECONDS


def test_superseded_entries_do_not_accumulate() -> None:
    s: Scheduler[ReconcileRequest] = Scheduler()
    for i in range(10_000):
        s.schedule(req("a"), 1_000_000.0 - i, now=0.0)
    assert len(s) == 1
    assert len(s._heap) <= 2 * len(s) + 65


def test_negative_debounce_is_rejected() -> None:
    with pytest.raises(ValueError, match="debounce"):
        Scheduler(debounce=-1)


# The rules with priorities and parking, against a model: tests/controller/test_priority_scheduler.py.


# ---------------------------------------------------------------------------------------------
# The stream form, on virtual time.


async def _requests(
    items: list[tuple[float, ReconcileRequest, float]],
) -> AsyncIterator[ScheduleRequest[ReconcileRequest]]:
    """Yield each request at virtual time ``at`` for ``run_at``; then keep the input open."""
    for at, message, run_at in items:
        await anyio.sleep(max(0.0, at - anyio.current_time()))
        yield ScheduleRequest(message, run_at)


async def test_stream_emits_at_run_times() -> None:
    async def source() -> AsyncIterator[ScheduleRequest[ReconcileRequest]]:
        async for r in _requests([(0, req("a"), 10.0), (0, req("b"), 3.0), (1, req("a"), 5.0)]):
            yield r
        await anyio.sleep(1000)

    seen: list[tuple[str, float]] = []
    async with scheduler(source()) as messages:
        async for message in messages:
            seen.append((message.obj_ref.name, anyio.current_time()))
            if len(seen) == 2:
                break
    assert seen == [("b", 3.0), ("a", 5.0)]


async def test_stream_debounces() -> None:
    async def source() -> AsyncIterator[ScheduleRequest[ReconcileRequest]]:
        for t in range(5):  # a burst: one request per second for 5 s
            await anyio.sleep(max(0.0, t - anyio.current_time()))
            yield ScheduleRequest(req("a"), anyio.current_time())
        await anyio.sleep(1000)

    seen: list[float] = []
    async with scheduler(source(), debounce=2.0) as messages:
        async for _ in messages:
            seen.append(anyio.current_time())
            break
    assert seen == [6.0]  # last request at 4 s plus 2 s


async def test_stream_ends_when_input_ends() -> None:
    async def source() -> AsyncIterator[ScheduleRequest[ReconcileRequest]]:
        yield ScheduleRequest(req("a"), 0.0)
        await anyio.sleep(1)
        yield ScheduleRequest(req("b"), 100.0)  # dropped: the input ends first

    seen: list[str] = []
    async with scheduler(source()) as messages:
        async for message in messages:
            seen.append(message.obj_ref.name)
    assert seen == ["a"]
    assert anyio.current_time() < 100.0

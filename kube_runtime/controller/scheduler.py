"""A delay queue that keeps one entry per message, with priorities: kube-rs's scheduler plus
controller-runtime's priority queue.

Guarantees (kube-rs ``scheduler.rs`` semantics, extended with priorities):

* One entry per message (messages are compared with ``==``/``hash``; for reconcile requests that
  is the object ref). Of two requests for the same message the one that runs **earlier** wins and
  its message (so its reason) is kept; on a tie the newer request's message replaces the old one.
* An entry's priority is the highest priority any request for it asked for: a request raises the
  priority of a scheduled, due or parked entry, and never lowers it.
* A message that is already due but cannot run yet (it is *pending*: its object is reconciling,
  or the runner is at its concurrency limit) swallows further requests for it (except that they
  may raise its priority). A request due when it is made (its run time not after ``now``, no
  debounce) is pending at once: counted in :attr:`Scheduler.depths` and ``became_due`` without
  waiting for a :meth:`Scheduler.hold` or :meth:`Scheduler.pop`.
* Of the due messages, the one with the highest priority runs first, and within a priority the
  one that became due earliest (ties in the order the entries were made). Priorities are ints,
  higher first: :data:`DEFAULT_PRIORITY` for live changes, :data:`LOW_PRIORITY` (-100, as
  controller-runtime's ``handler.LowPriority``) for what a (re)list or a bulk reconcile produced.
* Starvation bound (aging): a due message that has waited at least ``max_wait`` seconds is
  *aged*. While an aged message waits that is not the one priority order would pick, starts
  alternate between priority order and the earliest-due aged message. So once a message that
  can start has waited ``max_wait``, at most ``2k + 1`` other messages start before it, where
  ``k`` is the number of messages due before it that still wait, parked ones included (``k``
  only shrinks as long as no request asks for a run time in the past, which the runner never
  does), and higher-priority work still gets every other start meanwhile.
  controller-runtime's queue has no such bound: a steady stream of changes starves its
  low-priority items forever.
* O(log n) per request and per emitted message (plus O(p) for p distinct priorities waiting); a
  message blocked by its own running instance is parked until released, so it is not re-examined
  on every poll.
* ``debounce`` is a trailing delay: the stored run time is ``request + debounce``, but new requests
  are compared without it, so a burst of requests keeps pushing the run out until the burst stops.
  Pitfall: an object that changes more often than ``debounce`` is never reconciled.
* Run times are clamped to at most 180 days ahead (kube-rs #1772).
* :func:`scheduler` (the stream form) ends as soon as its input ends, dropping what is scheduled.

With ``prioritized=False`` every request counts as :data:`DEFAULT_PRIORITY` (kube-rs's queue:
earliest due first).

:class:`Scheduler` is the synchronous core (every operation takes ``now``; no task or timer per
entry), so it can be driven by a runner or tested without an event loop.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Container,
    Hashable,
    Mapping,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final, Generic, NamedTuple, TypeVar

import anyio

from kube_runtime.controller.action import DEFAULT_PRIORITY, LOW_PRIORITY, MAX_REQUEUE_SECONDS

__all__ = [
    "DEFAULT_MAX_WAIT",
    "DEFAULT_PRIORITY",
    "LOW_PRIORITY",
    "Due",
    "ScheduleRequest",
    "Scheduler",
    "scheduler",
]

T = TypeVar("T", bound=Hashable)

#: Seconds a due message waits before it is aged (see the starvation bound above).
DEFAULT_MAX_WAIT: Final = 60.0


@dataclass(frozen=True, slots=True)
class ScheduleRequest(Generic[T]):
    """Ask for ``message`` to be emitted at ``run_at`` (an ``anyio.current_time()`` value), at
    ``priority`` (higher runs first among due messages)."""

    message: T
    run_at: float
    priority: int = DEFAULT_PRIORITY


class Due(NamedTuple, Generic[T]):
    """A message whose time has come, with the time it became due (for queue-latency metrics)
    and the priority it was taken at."""

    message: T
    due_at: float
    priority: int = DEFAULT_PRIORITY


_SCHEDULED: Final = 0
_READY: Final = 1
_PARKED: Final = 2


class _Entry(Generic[T]):
    """One message's entry. Heap items of a superseded entry stay in their heap and are skipped
    (``alive``); a re-keyed entry is a new object."""

    __slots__ = ("alive", "message", "priority", "run_at", "seq", "state")

    def __init__(self, message: T, run_at: float, priority: int, seq: int) -> None:
        self.message = message
        self.run_at = run_at
        self.priority = priority
        self.seq = seq
        self.state = _SCHEDULED
        self.alive = True


_HeapItem = tuple[float, int, _Entry[T]]


class Scheduler(Generic[T]):
    """The scheduler's state: scheduled entries (a heap keyed by run time), due entries (a heap
    per priority keyed by due time) and parked ones.

    Not thread-safe; use it from one event loop. ``became_due`` counts entries that have left the
    delay queue (the work queue's "adds"); :attr:`depths` counts waiting due entries per priority.
    """

    def __init__(
        self, debounce: float = 0.0, *, prioritized: bool = True, max_wait: float = DEFAULT_MAX_WAIT
    ) -> None:
        if debounce < 0:
            raise ValueError(f"debounce must not be negative, got {debounce}")
        if not max_wait > 0:
            raise ValueError(f"max_wait must be positive, got {max_wait}")
        self.debounce = float(debounce)
        self.prioritized = prioritized
        self.max_wait = float(max_wait)
        self._entries: dict[T, _Entry[T]] = {}
        self._scheduled_count = 0
        self._heap: list[_HeapItem[T]] = []
        self._seq = itertools.count()
        #: Due entries: priority -> heap of (due time, seq, entry). Empty heaps are removed.
        self._ready: dict[int, list[_HeapItem[T]]] = {}
        #: Due messages waiting to be offered, parked ones excluded (read-only: :attr:`has_pending`
        #: as a count, read on the runner's hot path without a property call).
        self.ready_count = 0
        self._parked: dict[T, _Entry[T]] = {}
        self._depths: dict[int, int] = {}
        #: Whether the next start goes to the earliest-due aged message (the alternation).
        self._aged_turn = False
        self.became_due = 0

    def __len__(self) -> int:
        """Scheduled plus pending (including parked) messages."""
        return len(self._entries)

    def __contains__(self, message: object) -> bool:
        return message in self._entries

    @property
    def has_pending(self) -> bool:
        """Whether due messages wait to be offered (parked ones excluded)."""
        return self.ready_count > 0

    @property
    def pending_count(self) -> int:
        """Messages that are due but held back, parked ones included (the work queue's depth)."""
        return self.ready_count + len(self._parked)

    @property
    def depths(self) -> Mapping[int, int]:
        """:attr:`pending_count` per priority (a live view; priorities seen once stay, at 0)."""
        return self._depths

    def scheduled_at(self, message: T) -> float | None:
        """When ``message`` is due to run, or ``None`` if it is not scheduled (or only pending)."""
        entry = self._entries.get(message)
        return entry.run_at if entry is not None and entry.state == _SCHEDULED else None

    def priority_of(self, message: T) -> int | None:
        """The priority of ``message``'s entry, or ``None`` if it has none."""
        entry = self._entries.get(message)
        return entry.priority if entry is not None else None

    def schedule(self, message: T, run_at: float, now: float, priority: int = DEFAULT_PRIORITY) -> bool:
        """Apply one request. Returns whether it changed the schedule (``False``: dropped because
        the message is pending, or ignored because an earlier run is already scheduled, and the
        priority was not raised either)."""
        if not self.prioritized:
            priority = DEFAULT_PRIORITY
        existing = self._entries.get(message)
        if existing is not None:
            if existing.state != _SCHEDULED:  # due: the request is swallowed, its priority is not
                if priority <= existing.priority:
                    return False
                self._raise(existing, priority)
                return True
            if existing.run_at < run_at:
                if priority <= existing.priority:
                    return False
                existing.priority = priority  # not part of the delay heap's key
                return True
            existing.alive = False
            priority = max(priority, existing.priority)
            self._scheduled_count -= 1
        next_run = min(run_at + self.debounce, now + MAX_REQUEUE_SECONDS)
        entry = _Entry(message, next_run, priority, next(self._seq))
        self._entries[message] = entry
        if next_run <= now:  # due already (a change, most of the time): no pass through the delay heap
            self._make_ready((next_run, entry.seq, entry))
            return True
        self._scheduled_count += 1
        heapq.heappush(self._heap, (next_run, entry.seq, entry))
        if len(self._heap) > 2 * self._scheduled_count + 64:
            self._heap = [item for item in self._heap if item[2].alive]
            heapq.heapify(self._heap)
        return True

    def next_deadline(self) -> float | None:
        """The earliest run time still in the delay queue (pending messages are already due)."""
        heap = self._heap
        while heap and not heap[0][2].alive:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def is_due(self, now: float) -> bool:
        """Whether an entry of the delay queue has come due by ``now`` (not yet moved to pending)."""
        deadline = self.next_deadline()
        return deadline is not None and deadline <= now

    def pop(
        self,
        now: float,
        can_take: Callable[[T], bool] | None = None,
        *,
        blocked: Container[T] | None = None,
    ) -> Due[T] | None:
        """The next message to run now, or ``None`` (the order is the module's rules).

        A due message that ``can_take`` refuses, or that is in ``blocked`` (the messages running
        now, say), is *parked*: it stays pending (swallowing requests) but is not offered again
        until :meth:`unpark` is called for it, so a message blocked by its own running instance
        costs nothing per call (kube-rs re-checks every pending message on every poll).
        """
        delayed = self._heap
        if delayed and delayed[0][0] <= now:
            self.hold(now)
        ready = self._ready
        while ready:
            if len(ready) == 1:  # one priority waiting (the common case): its head, aged or not
                priority, heap = next(iter(ready.items()))
                item = heapq.heappop(heap)
                if not heap:
                    del ready[priority]
                entry = item[2]
                if not entry.alive:  # superseded by a raise
                    continue
                aged_pick, other_aged = item[0] <= now - self.max_wait, False
            else:
                selected = self._select(now)
                if selected is None:
                    return None
                entry, aged_pick, other_aged = selected
                heap = ready[entry.priority]
                heapq.heappop(heap)
                if not heap:
                    del ready[entry.priority]
            self.ready_count -= 1
            message = entry.message
            if (blocked is not None and message in blocked) or (
                can_take is not None and not can_take(message)
            ):
                entry.state = _PARKED
                self._parked[message] = entry
                continue
            self._aged_turn = False if aged_pick else other_aged
            del self._entries[message]
            self._depths[entry.priority] -= 1
            return Due(message, entry.run_at, entry.priority)
        return None

    def _select(self, now: float) -> tuple[_Entry[T], bool, bool] | None:
        """The entry to offer next: ``(entry, taken as the aged pick, another aged entry waits)``,
        or ``None`` if nothing is due. Cleans dead heap heads."""
        ready = self._ready
        limit = now - self.max_wait
        best: _HeapItem[T] | None = None
        oldest: _HeapItem[T] | None = None
        for priority in list(ready):
            heap = ready[priority]
            while heap and not heap[0][2].alive:
                heapq.heappop(heap)
            if not heap:
                del ready[priority]
                continue
            head = heap[0]
            if best is None or priority > best[2].priority:
                best = head
            if head[0] <= limit and (oldest is None or head[:2] < oldest[:2]):
                oldest = head
        if best is None:
            return None
        if oldest is None or oldest is best:
            return best[2], oldest is not None, False
        if self._aged_turn:
            return oldest[2], True, False
        return best[2], False, True

    def _raise(self, entry: _Entry[T], priority: int) -> None:
        """Move a due (ready or parked) entry to ``priority``."""
        old = entry.priority
        depths = self._depths
        depths[old] -= 1
        depths[priority] = depths.get(priority, 0) + 1
        if entry.state == _PARKED:
            entry.priority = priority
            return
        entry.alive = False  # its item in the old priority's heap
        raised = _Entry(entry.message, entry.run_at, priority, entry.seq)
        raised.state = _READY
        self._entries[entry.message] = raised
        heapq.heappush(self._ready.setdefault(priority, []), (raised.run_at, raised.seq, raised))

    def unpark(self, message: T) -> None:
        """Offer a parked message again (its blocker is gone); no-op if it is not parked."""
        parked = self._parked
        if not parked:  # the common case: nothing to look up
            return
        entry = parked.pop(message, None)
        if entry is not None:
            entry.state = _READY
            self.ready_count += 1
            heapq.heappush(self._ready.setdefault(entry.priority, []), (entry.run_at, entry.seq, entry))

    def hold(self, now: float) -> None:
        """Move every expired entry to pending without emitting anything."""
        heap = self._heap
        heappop = heapq.heappop
        while heap and heap[0][0] <= now:
            item = heappop(heap)
            if item[2].alive:
                self._scheduled_count -= 1
                self._make_ready(item)

    def _make_ready(self, item: _HeapItem[T]) -> None:
        """Make ``item``'s entry pending (due): counted as come due and waiting, in its priority's
        heap keyed by the time it became due."""
        entry = item[2]
        entry.state = _READY
        priority = entry.priority
        depths = self._depths
        depths[priority] = depths.get(priority, 0) + 1
        target = self._ready.get(priority)
        if target is None:
            self._ready[priority] = [item]
        else:
            heapq.heappush(target, item)
        self.became_due += 1
        self.ready_count += 1

    def clear(self) -> None:
        """Drop everything scheduled and pending."""
        self._entries.clear()
        self._heap.clear()
        self._scheduled_count = 0
        self._ready.clear()
        self.ready_count = 0
        self._parked.clear()
        for priority in self._depths:
            self._depths[priority] = 0


@asynccontextmanager
async def scheduler(
    requests: AsyncIterable[ScheduleRequest[T]], *, debounce: float = 0.0
) -> AsyncIterator[AsyncIterator[T]]:
    """Run ``requests`` through a :class:`Scheduler` and yield messages as they come due.

    ``async with scheduler(requests) as messages: async for msg in messages: ...``. The messages
    stream ends when ``requests`` ends (anything still scheduled is dropped). The input is read by
    a task this context manager owns.
    """
    state: Scheduler[T] = Scheduler(debounce)
    wake = anyio.Event()
    ended = False

    async def feed() -> None:
        nonlocal wake, ended
        try:
            async for request in requests:
                state.schedule(request.message, request.run_at, anyio.current_time(), request.priority)
                wake.set()
        finally:
            ended = True
            wake.set()

    async def messages() -> AsyncGenerator[T, None]:
        nonlocal wake
        while True:
            if ended:
                return
            due = state.pop(anyio.current_time())
            if due is not None:
                yield due.message
                continue
            wake = anyio.Event()
            deadline = state.next_deadline()
            if deadline is None:
                await wake.wait()
            else:
                with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
                    await wake.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(feed)
        stream = messages()
        try:
            yield stream
        finally:
            await stream.aclose()
            tg.cancel_scope.cancel()

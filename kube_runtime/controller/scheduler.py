"""A delay queue that keeps one entry per message: kube-rs's scheduler.

Guarantees (kube-rs ``scheduler.rs`` semantics):

* One entry per message (messages are compared with ``==``/``hash``; for reconcile requests that
  is the object ref). Of two requests for the same message the one that runs **earlier** wins and
  its message (so its reason) is kept; on a tie the newer request's message replaces the old one.
* A message that is already due but cannot run yet (it is *pending*: its object is reconciling,
  or the runner is at its concurrency limit) swallows further requests for it.
* O(log n) per request and per emitted message; a message blocked by its own running instance
  is parked until released, so it is not re-examined on every poll.
* ``debounce`` is a trailing delay: the stored run time is ``request + debounce``, but new requests
  are compared without it, so a burst of requests keeps pushing the run out until the burst stops.
  Pitfall: an object that changes more often than ``debounce`` is never reconciled.
* Run times are clamped to at most 180 days ahead (kube-rs #1772).
* :func:`scheduler` (the stream form) ends as soon as its input ends, dropping what is scheduled.

:class:`Scheduler` is the synchronous core (every operation takes ``now``; O(log n) per request,
no task or timer per entry), so it can be driven by a runner or tested without an event loop.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

import anyio

from kube_runtime.controller.action import MAX_REQUEUE_SECONDS

__all__ = ["Due", "ScheduleRequest", "Scheduler", "scheduler"]

T = TypeVar("T", bound=Hashable)


@dataclass(frozen=True, slots=True)
class ScheduleRequest(Generic[T]):
    """Ask for ``message`` to be emitted at ``run_at`` (an ``anyio.current_time()`` value)."""

    message: T
    run_at: float


class Due(NamedTuple, Generic[T]):
    """A message whose time has come, with the time it became due (for queue-latency metrics)."""

    message: T
    due_at: float


class _Entry(Generic[T]):
    """One scheduled message. Superseded heap items are left in the heap and skipped (``alive``)."""

    __slots__ = ("alive", "message", "run_at")

    def __init__(self, message: T, run_at: float) -> None:
        self.message = message
        self.run_at = run_at
        self.alive = True


class Scheduler(Generic[T]):
    """The scheduler's state: scheduled entries (a heap keyed by run time) and pending messages.

    Not thread-safe; use it from one event loop. ``became_due`` counts entries that have left the
    delay queue (the work queue's "adds").
    """

    def __init__(self, debounce: float = 0.0) -> None:
        if debounce < 0:
            raise ValueError(f"debounce must not be negative, got {debounce}")
        self.debounce = float(debounce)
        self._scheduled: dict[T, _Entry[T]] = {}
        self._heap: list[tuple[float, int, _Entry[T]]] = []
        self._seq = itertools.count()
        # OrderedDict: popping the oldest entry is O(1) (a plain dict rescans deleted slots).
        self._pending: OrderedDict[T, Due[T]] = OrderedDict()
        self._parked: dict[T, Due[T]] = {}
        self.became_due = 0

    def __len__(self) -> int:
        """Scheduled plus pending (including parked) messages."""
        return len(self._scheduled) + len(self._pending) + len(self._parked)

    def __contains__(self, message: object) -> bool:
        return message in self._scheduled or message in self._pending or message in self._parked

    @property
    def has_pending(self) -> bool:
        """Whether due messages wait to be offered (parked ones excluded)."""
        return bool(self._pending)

    @property
    def pending_count(self) -> int:
        """Messages that are due but held back, parked ones included (the work queue's depth)."""
        return len(self._pending) + len(self._parked)

    def scheduled_at(self, message: T) -> float | None:
        """When ``message`` is due to run, or ``None`` if it is not scheduled (or only pending)."""
        entry = self._scheduled.get(message)
        return entry.run_at if entry is not None else None

    def schedule(self, message: T, run_at: float, now: float) -> bool:
        """Apply one request. Returns whether it changed the schedule (``False``: dropped because
        the message is pending, or ignored because an earlier run is already scheduled)."""
        if message in self._pending or message in self._parked:
            return False
        next_run = min(run_at + self.debounce, now + MAX_REQUEUE_SECONDS)
        existing = self._scheduled.get(message)
        if existing is not None:
            if existing.run_at < run_at:
                return False
            existing.alive = False
            del self._scheduled[message]
        entry = _Entry(message, next_run)
        self._scheduled[message] = entry
        heapq.heappush(self._heap, (next_run, next(self._seq), entry))
        if len(self._heap) > 2 * len(self._scheduled) + 64:
            self._compact()
        return True

    def next_deadline(self) -> float | None:
        """The earliest run time still in the delay queue (pending messages are already due)."""
        heap = self._heap
        while heap and not heap[0][2].alive:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop(self, now: float, can_take: Callable[[T], bool] | None = None) -> Due[T] | None:
        """The next message to run now, or ``None``.

        Pending messages come first (in the order they became due), then expired entries in
        run-time order. A due message that ``can_take`` refuses is *parked*: it stays pending
        (swallowing requests) but is not offered again until :meth:`unpark` is called for it, so
        a message blocked by its own running instance costs nothing per call (kube-rs re-checks
        every pending message on every poll).
        """
        pending = self._pending
        while pending:
            message, due = pending.popitem(last=False)
            if can_take is None or can_take(message):
                return due
            self._parked[message] = due
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, entry = heapq.heappop(heap)
            if not entry.alive:
                continue
            message = entry.message
            del self._scheduled[message]
            self.became_due += 1
            due = Due(message, entry.run_at)
            if can_take is None or can_take(message):
                return due
            self._parked[message] = due
        return None

    def unpark(self, message: T) -> None:
        """Offer a parked message again (its blocker is gone); no-op if it is not parked."""
        due = self._parked.pop(message, None)
        if due is not None:
            self._pending[message] = due

    def hold(self, now: float) -> None:
        """Move every expired entry to pending without emitting anything."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, entry = heapq.heappop(heap)
            if entry.alive:
                del self._scheduled[entry.message]
                self.became_due += 1
                self._pending[entry.message] = Due(entry.message, entry.run_at)

    def clear(self) -> None:
        """Drop everything scheduled and pending."""
        self._scheduled.clear()
        self._heap.clear()
        self._pending.clear()
        self._parked.clear()

    def _compact(self) -> None:
        self._heap = [item for item in self._heap if item[2].alive]
        heapq.heapify(self._heap)


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
                state.schedule(request.message, request.run_at, anyio.current_time())
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

"""Runs scheduled messages with per-message exclusivity and a global concurrency limit.

Guarantees (kube-rs ``runner.rs`` semantics):

* At most one run per message at a time. A message that comes due while it is running waits in
  the scheduler's pending set and starts as soon as the current run ends; further requests for it
  are dropped meanwhile. So each message has at most one running and one queued run
  (``ABABAAAAA`` runs as ``ABAB``).
* At most ``concurrency`` runs at once (``0`` means unbounded).
* Of the due messages, the next to start is the scheduler's pick: highest priority first, then
  earliest due, with its starvation bound (:mod:`~kube_runtime.controller.scheduler`).
* Nothing starts before ``ready`` has resolved (the controller passes the stores' readiness). If
  it raises, a :class:`RunnerError` is emitted and the runner stops.
* Backpressure: outputs go to a bounded stream; while a finished run cannot hand its output over,
  no new run starts, so an unconsumed runner stops starting work.
* :meth:`Runner.close` (graceful): nothing new starts, scheduled and pending messages are dropped,
  running ones finish and deliver their outputs, then :meth:`Runner.run` returns. Cancelling the
  scope around :meth:`Runner.run` is the forceful stop.

* Each run sees a context of its own: context variables it sets (the current reconcile, the
  current span) are invisible to other runs, concurrent or later ones.

The loop does O(log n) work per request and per start and no timer per scheduled message. One
dispatch mechanism serves every limit: worker tasks run due messages one after another, each run in
a fresh copy of the worker's context (a task per run costs several times the runtime's own per-run
work). The loop hands a due message to an idle worker, or starts a new worker when none is idle; a
worker that finishes a run takes the next due message itself (no hand-off through the loop, which
only wakes for new requests, deadlines and idle workers), and wakes an idle worker when more is
due. A request due at once, made while the loop sleeps and a worker is idle, wakes that worker,
which takes the scheduler's pick when it runs (after the scheduling task yields, so the batch's
requests are deduplicated first): no pass of the loop and no hand-over between the request and the
run. Workers woken for the scheduler's pick are counted until they run, and a ready message wakes
(or keeps a finishing worker for) one only when there are more ready messages than workers on
their way: a burst of requests made in one step steps one worker per request, once. A worker woken
for a message another worker took goes idle again; a worker that finishes with nothing due (or
nothing the woken ones will not take) goes idle without yielding first. The loop wakes for a
later request only when it is due before the loop's own next wake-up. With a limit the pool holds
``concurrency`` workers, started at once, and idle ones wait for work. Unbounded, the pool grows
with the number of runs at once and a worker that finds nothing due returns (so a burst of
thousands does not leave thousands of parked tasks; one that finds due work held back, behind an
output waiting for the consumer, waits like a pool worker); a worker that takes a message while
more are due, and no other worker is finishing a run (each of those takes one next), wakes the
loop to start workers for them.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import types
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Generator, Hashable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from kube_runtime.controller.channel import ItemSink, ResultSender, ResultStream, result_channel
from kube_runtime.controller.errors import RunnerError
from kube_runtime.controller.isolation import in_context
from kube_runtime.controller.scheduler import (
    DEFAULT_MAX_WAIT,
    DEFAULT_PRIORITY,
    Due,
    Scheduler,
    ScheduleRequest,
)

__all__ = ["Runner", "RunnerHooks", "loop_clock", "runner"]

T = TypeVar("T", bound=Hashable)
R = TypeVar("R")


class RunnerHooks:
    """Observation points of a runner (the controller's workqueue metrics). All no-ops here.

    Called on the event loop; keep them O(1).
    """

    def on_added(self, count: int) -> None:
        """``count`` more messages left the delay queue (became due)."""

    def on_started(self, queued_seconds: float) -> None:
        """A run started ``queued_seconds`` after its message became due."""

    def on_finished(self, work_seconds: float) -> None:
        """A run finished after ``work_seconds``."""

    def on_depth(self, depths: Mapping[int, int]) -> None:
        """The number of due messages waiting to start, per priority (sampled once per loop pass
        and per start; it may repeat unchanged values). The mapping is the scheduler's live view:
        read it during the call, do not keep it."""


_NO_HOOKS = RunnerHooks()


class Runner(Generic[T, R]):
    """The run loop over a :class:`Scheduler`. Feed it with :meth:`schedule`, drive it with
    :meth:`run`, stop it with :meth:`close` (graceful) or by cancelling :meth:`run` (forceful).

    ``run_msg(message, due)`` performs one run and returns its output (``due`` is the
    :class:`~kube_runtime.controller.scheduler.Due` it was taken as: when it became due, at which
    priority). An exception from it propagates (it is a bug in ``run_msg``: catch expected
    failures there and return them). ``prioritized`` and ``max_wait`` configure the
    :class:`~kube_runtime.controller.scheduler.Scheduler`'s priorities.
    """

    def __init__(
        self,
        run_msg: Callable[[T, Due[T]], Awaitable[R]],
        *,
        concurrency: int = 0,
        debounce: float = 0.0,
        ready: Callable[[], Awaitable[Any]] | None = None,
        hooks: RunnerHooks | None = None,
        prioritized: bool = True,
        max_wait: float = DEFAULT_MAX_WAIT,
    ) -> None:
        if concurrency < 0:
            raise ValueError(f"concurrency must be >= 0 (0 = unbounded), got {concurrency}")
        self.concurrency = concurrency
        self.scheduler: Scheduler[T] = Scheduler(debounce, prioritized=prioritized, max_wait=max_wait)
        self._run_msg = run_msg
        self._ready_fn = ready
        self._ready = ready is None
        self._hooks = hooks or _NO_HOOKS
        #: Messages running now -> the loop time each started.
        self.running: dict[T, float] = {}
        self._blocked_outputs = 0
        self._closed = False
        self._wake = _Waker()
        self._pause: Callable[[], Awaitable[None]] = anyio.lowlevel.checkpoint
        self._sleeping = False
        #: When the sleeping loop wakes by itself (``inf``: only when woken).
        self._sleep_until = math.inf
        #: Due messages handed to the worker pool, and the idle workers' wakers.
        self._handoff: deque[Due[T]] = deque()
        self._idle: list[_Waker] = []
        #: Workers woken to take the scheduler's pick that have not run yet: a ready message needs
        #: a wake-up only when there are more ready messages than these.
        self._waking = 0
        self._dispatching = False
        self._tg: TaskGroup | None = None
        self._output: ItemSink[R | RunnerError] | None = None
        #: Workers between the end of a run and their next take (each takes one due message).
        self._finishing = 0
        self._reported_added = 0
        #: The clock every time here is read from (``anyio.current_time``'s source, read directly
        #: on asyncio once :meth:`run` started: it is called several times per reconcile).
        self.clock: Callable[[], float] = anyio.current_time

    @property
    def closed(self) -> bool:
        return self._closed

    def schedule(self, message: T, run_at: float | None = None, priority: int = DEFAULT_PRIORITY) -> bool:
        """Request a run of ``message`` at ``run_at`` (default: now) at ``priority``. Dropped after
        :meth:`close`."""
        if self._closed:
            return False
        now = self.clock()
        scheduler = self.scheduler
        changed = scheduler.schedule(message, now if run_at is None else run_at, now, priority)
        # With every worker busy the loop need not wake: the next worker to finish takes what is
        # due, and a worker that goes idle wakes the loop if this made its deadline earlier. What
        # came due is counted as waiting at once, though, as the loop's pass would count it
        # (workqueue_depth and workqueue_adds_total show a backlog behind stuck workers).
        if changed and self._sleeping and self.concurrency and len(self.running) >= self.concurrency:
            if scheduler.is_due(now):
                scheduler.hold(now)
            self._report_queue()
        elif changed and self._sleeping:
            if self._idle and (scheduler.ready_count > self._waking or scheduler.is_due(now)):
                # Due now with a worker idle: wake it. It takes the scheduler's pick when it runs,
                # after the caller yields (so a burst of requests is deduplicated first), without
                # a pass of the loop or a hand-over in between.
                self._wake_for_pick()
            elif self._idle and scheduler.ready_count:
                pass  # a worker woken already takes it
            else:
                # A later run (a requeue) wakes the loop only if the loop must wake earlier than
                # it will by itself; a change to a due message (a raised priority) always does.
                scheduled = scheduler.scheduled_at(message)
                if scheduled is None or scheduled < self._sleep_until:
                    self._wake.set()
        return changed

    def close(self) -> None:
        """Graceful stop: start nothing new, drop what is scheduled, let running work finish."""
        if not self._closed:
            self._closed = True
            self.scheduler.clear()
            self._wake.set()

    async def feed(self, requests: AsyncIterable[ScheduleRequest[T]]) -> None:
        """Schedule every request of ``requests``; close the runner when it ends (kube-rs: the
        scheduler ends with its input)."""
        try:
            async for request in requests:
                self.schedule(request.message, request.run_at, request.priority)
        finally:
            self.close()

    async def run(self, output: ItemSink[R | RunnerError]) -> None:
        """Drive the loop until :meth:`close` was called and every running message finished.

        Outputs are sent to ``output`` (not closed here: the caller owns it).
        """
        self.clock = loop_clock()
        self._pause = _pause_for_backend()
        self._dispatching = True
        async with anyio.create_task_group() as tg:
            self._tg = tg
            self._output = output
            readiness = anyio.CancelScope()
            if not self._ready:
                tg.start_soon(self._await_ready, output, readiness)
            for _ in range(self.concurrency):
                tg.start_soon(self._worker, output)
            try:
                await self._loop(tg, output)
            finally:
                # Workers finish what was handed to them, then return.
                self._dispatching = False
                for idle in self._idle:
                    idle.set()
                self._idle.clear()
            readiness.cancel()

    async def _await_ready(self, output: ItemSink[R | RunnerError], scope: anyio.CancelScope) -> None:
        assert self._ready_fn is not None
        with scope:
            try:
                await self._ready_fn()
            except Exception as exc:  # readiness failed: report it and stop (kube-rs Readiness error)
                await output.send(RunnerError(exc))
                self.close()
                return
            self._ready = True
            self._wake.set()

    async def _loop(self, tg: TaskGroup, output: ItemSink[R | RunnerError]) -> None:
        """Dispatch what is due, then sleep until woken or the next deadline."""
        scheduler = self.scheduler
        while not self._closed:
            now = self.clock()
            self._dispatch(now)
            if self._wake.is_set():
                self._wake = _Waker()
            deadline = scheduler.next_deadline()
            self._sleeping = True
            try:
                if deadline is None:
                    self._sleep_until = math.inf
                    await self._wake.wait()
                elif deadline > now:
                    self._sleep_until = deadline
                    with anyio.move_on_after(deadline - now):
                        await self._wake.wait()
                else:
                    await anyio.lowlevel.checkpoint()
            finally:
                self._sleeping = False
        self._hooks.on_depth(scheduler.depths)

    def _dispatch(self, now: float) -> None:
        """Hand due messages to idle workers (unbounded: to new ones) while the limit allows; with
        starts held, move what came due to pending. The loop's pass."""
        scheduler = self.scheduler
        running = self.running
        hooks = self._hooks
        limit = self.concurrency
        handoff = self._handoff
        idle = self._idle
        if self._ready and not self._blocked_outputs:
            while not limit or len(running) < limit:
                due = scheduler.pop(now, blocked=running)
                if due is None:
                    break
                running[due.message] = now
                hooks.on_started(now - due.due_at)
                handoff.append(due)
                if idle:
                    idle.pop().set()
                elif not limit:  # with a limit, at most ``limit`` are running: a worker is free
                    assert self._tg is not None  # set by run(), with the output
                    assert self._output is not None
                    self._tg.start_soon(self._worker, self._output)
        if (limit and len(running) >= limit) or not self._ready or self._blocked_outputs:
            scheduler.hold(now)
        self._report_queue()

    def _report_queue(self) -> None:
        """Report what came due since the last report (adds) and what waits now (depth)."""
        scheduler = self.scheduler
        hooks = self._hooks
        if scheduler.became_due != self._reported_added:
            hooks.on_added(scheduler.became_due - self._reported_added)
            self._reported_added = scheduler.became_due
        hooks.on_depth(scheduler.depths)

    async def _worker(self, output: ItemSink[R | RunnerError]) -> None:
        """Run messages one at a time (handed over by the loop, or taken from the scheduler when
        a run ends) until the loop has ended and nothing is left (unbounded: until nothing is due
        for this worker)."""
        handoff = self._handoff
        idle = self._idle
        base = contextvars.copy_context()
        pause = self._pause
        scheduler = self.scheduler
        nothing_due = False
        while True:
            if handoff:
                due: Due[T] | None = handoff.popleft()
            elif nothing_due:  # seen after the last run, with no await since: no take to try
                due, nothing_due = None, False
            else:
                due = self._take()
            if due is not None:
                # A hand-over that waited has yielded already; what is due now is the take's.
                if not await self._run_one(due, output, base.copy()):
                    if handoff or scheduler.ready_count > self._waking or scheduler.is_due(self.clock()):
                        # Let what is ready run first (watch events updating the store, the
                        # results' consumer) before taking the next message, as a pass through
                        # the loop would.
                        await pause()
                    else:  # nothing due (or woken workers take it): idle below, which yields too
                        nothing_due = True
                self._finishing -= 1
            elif self._dispatching and (self.concurrency or self.scheduler.ready_count):
                # Unbounded, a worker waits only while due work is held back (an output waiting
                # for the consumer); with nothing due it returns.
                deadline = self.scheduler.next_deadline()
                if deadline is not None and deadline < self._sleep_until and self._sleeping:
                    self._wake.set()  # scheduled while every worker was busy: the loop must time it
                waker = _Waker()
                idle.append(waker)
                await waker.wait()
                if waker.for_pick:
                    self._waking -= 1
            else:
                return

    def _take(self) -> Due[T] | None:
        """The next due message for a free worker, marked running (the loop's start rules)."""
        if self._closed or not self._ready or self._blocked_outputs or not self._dispatching:
            return None
        running = self.running
        if self.concurrency and len(running) >= self.concurrency:
            return None
        now = self.clock()
        scheduler = self.scheduler
        due = scheduler.pop(now, blocked=running)
        if due is None:
            return None
        running[due.message] = now
        if not self.concurrency and not self._finishing and scheduler.ready_count and self._sleeping:
            self._wake.set()  # unbounded, and no other finishing worker will take the rest
        self._hooks.on_started(now - due.due_at)
        self._report_queue()
        return due

    def _wake_for_pick(self) -> None:
        """Wake an idle worker to take the scheduler's next pick (counted until it runs)."""
        waker = self._idle.pop()
        waker.for_pick = True
        self._waking += 1
        waker.set()

    async def _run_one(
        self, due: Due[T], output: ItemSink[R | RunnerError], context: contextvars.Context
    ) -> bool:
        """One run inside ``context`` and the hand-over of its output. Returns whether the
        hand-over had to wait for the consumer."""
        message = due.message
        try:
            result = await in_context(self._run_msg(message, due), context)
        finally:
            started = self.running.pop(message)
            self._finishing += 1
            scheduler = self.scheduler
            scheduler.unpark(message)
            self._hooks.on_finished(self.clock() - started)
            # This worker takes one, woken and idle ones the rest.
            if self._idle and scheduler.ready_count > self._waking + 1:
                self._wake_for_pick()
        try:
            output.send_nowait(result)
            return False
        except anyio.WouldBlock:
            self._blocked_outputs += 1
            try:
                await output.send(result)
            finally:
                self._blocked_outputs -= 1
                # Starts were held meanwhile. This worker takes the next message itself once back
                # in its loop (and wakes the loop if more are due), so the loop is needed here only
                # to wake idle workers for what else came due.
                if self._idle and not self._blocked_outputs:
                    scheduler = self.scheduler
                    if scheduler.ready_count or scheduler.is_due(self.clock()):
                        self._wake.set()
        return True


class _Waker:
    """A one-shot wake-up for one waiting task: ``set()`` once, ``wait()`` until set.

    A future of the running loop, made when the task waits. ``anyio.Event`` (over
    ``asyncio.Event``) costs several times as much to make, set and wait on, and the runner makes
    one per pass of its loop and per idle worker. Cancelling the wait is safe: a later ``set()``
    finds the future done and only records that it was set.
    """

    __slots__ = ("_future", "_set", "for_pick")

    def __init__(self) -> None:
        self._set = False
        #: Set for a worker woken to take the scheduler's pick (not a hand-over, not the end).
        self.for_pick = False
        self._future: asyncio.Future[None] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)

    async def wait(self) -> None:
        if self._set:
            return
        future = self._future = asyncio.get_running_loop().create_future()
        await future


def _pause_for_backend() -> Callable[[], Awaitable[None]]:
    """A checkpoint (yield to the event loop once) without anyio's per-call backend lookup."""
    asyncio.get_running_loop()  # asyncio is the runtime's backend: fail early outside it
    return _asyncio_pause


@types.coroutine
def _asyncio_pause() -> Generator[None, None, None]:
    """What ``asyncio.sleep(0)`` does (a bare yield: the task is stepped again on the loop's next
    pass), without its call in between."""
    yield


def loop_clock() -> Callable[[], float]:
    """The running event loop's clock: what ``anyio.current_time()`` reads (so also a virtual
    clock in tests), without its per-call backend lookup. Usable from other threads (scrapes)."""
    return asyncio.get_running_loop().time


@asynccontextmanager
async def runner(
    requests: AsyncIterable[ScheduleRequest[T]],
    run_msg: Callable[[T], Awaitable[R]],
    *,
    concurrency: int = 0,
    debounce: float = 0.0,
    ready: Callable[[], Awaitable[Any]] | None = None,
    output_buffer: int = 0,
) -> AsyncIterator[AsyncIterator[R | RunnerError]]:
    """The stream form: ``async with runner(requests, run_msg) as outputs: async for out in outputs``.

    ``outputs`` ends once ``requests`` has ended and the running messages have finished. Leaving
    the block early cancels whatever is still running.
    """

    async def call(message: T, _due: Due[T]) -> R:
        return await run_msg(message)

    loop: Runner[T, R] = Runner(call, concurrency=concurrency, debounce=debounce, ready=ready)
    send: ResultSender[R | RunnerError]
    receive: ResultStream[R | RunnerError]
    send, receive = result_channel(output_buffer)

    async def drive() -> None:
        async with send:
            await loop.run(send)

    async with anyio.create_task_group() as tg, receive:
        tg.start_soon(loop.feed, requests)
        tg.start_soon(drive)
        try:
            yield receive
        finally:
            tg.cancel_scope.cancel()

"""The idle timeout of an open watch: one timer per stream ends a read that waits too long.

Every watch the watcher reads is an :class:`IdleTimedStream`: it enforces its own idle timeout and
says afterwards whether its iteration ended because of it. :class:`ResponseStream` (an HTTP body)
and :func:`idle_timed` (any async iterator: a test double, a custom event source) both enforce it
with the one mechanism here, :class:`IdleWatchdog`.

Guarantees: a read that waits ``timeout`` seconds for its item ends the iteration
(``StopAsyncIteration``) and sets ``timed_out``; the clock only runs while a read waits, so a slow
consumer is never cut off. A read that returns in time costs one clock read: there is one timer per
stream, re-armed only when it fires (for the due time of the read in progress), never armed and
cancelled per read.

How a read is ended: the timer cancels the waiting task, as ``asyncio.timeout`` does, and the read
turns exactly that cancellation into the end of the iteration; a cancellation from anywhere else,
pending at the same time, still propagates. An HTTP read cancelled this way makes httpx close the
connection, so nothing of the timed-out response is reused.

Pitfalls: asyncio only (the runtime's one backend). Each stream must be read by one task at a time
(the usual contract of an async iterator).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Generic, Protocol, TypeVar, runtime_checkable

__all__ = ["IdleTimedIterator", "IdleTimedStream", "IdleWatchdog", "idle_timed"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@runtime_checkable
class IdleTimedStream(Protocol[T_co]):
    """An open watch that enforces its own idle timeout (what the watcher reads).

    ``idle_timeout``: the current bound in seconds; ``idle_timed_out``: whether the iteration ended
    because of it (as opposed to the server closing the watch); ``set_idle_timeout`` changes the
    bound for the read in progress and the reads to come; ``url``: the request path, for errors.
    """

    @property
    def idle_timeout(self) -> float | None: ...

    @property
    def idle_timed_out(self) -> bool: ...

    @property
    def url(self) -> str: ...

    def set_idle_timeout(self, seconds: float) -> None: ...

    def __aiter__(self) -> IdleTimedStream[T_co]: ...

    async def __anext__(self) -> T_co: ...


class IdleWatchdog:
    """The timer behind one stream's idle timeout (see the module docs).

    A stream brackets each read with :meth:`begin` and :meth:`end`; when the read raises
    ``CancelledError`` it asks :meth:`expired`, which is true (and takes the cancellation back) only
    for the cancellation this watchdog caused. :meth:`close` when the stream closes.
    """

    __slots__ = ("_handle", "_loop", "_reading", "_started", "_task", "timed_out", "timeout")

    def __init__(self, timeout: float) -> None:
        self._loop = asyncio.get_running_loop()
        self.timeout = timeout
        #: True once a read waited longer than ``timeout``; the stream then stays ended.
        self.timed_out = False
        self._reading = False
        self._started = 0.0
        self._task: asyncio.Task[object] | None = None
        self._handle: asyncio.TimerHandle | None = None

    def begin(self) -> None:
        """A read starts waiting (in the current task)."""
        self._started = self._loop.time()
        self._reading = True
        self._task = asyncio.current_task()
        if self._handle is None:
            self._handle = self._loop.call_at(self._started + self.timeout, self._fire)

    def end(self) -> None:
        """The read returned or raised."""
        self._reading = False

    def expired(self) -> bool:
        """Whether a ``CancelledError`` the read just raised came from this watchdog alone: then it
        is taken back and the caller ends the iteration; otherwise the caller re-raises it."""
        if not self.timed_out or self._task is None:
            return False
        return self._task.uncancel() == 0

    def retime(self, seconds: float) -> None:
        """Bound the read in progress (from its start) and later reads by ``seconds``."""
        self.timeout = seconds
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._reading and not self.timed_out:
            self._handle = self._loop.call_at(self._started + seconds, self._fire)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        if not self._reading:
            return  # the next read arms the timer again
        due = self._started + self.timeout
        if self._loop.time() < due:
            self._handle = self._loop.call_at(due, self._fire)
            return
        self.timed_out = True
        if self._task is not None:
            self._task.cancel()


class IdleTimedIterator(Generic[T]):
    """An async iterator ended by an :class:`IdleWatchdog` when a read waits too long: the
    :class:`IdleTimedStream` made by :func:`idle_timed`."""

    __slots__ = ("_items", "_url", "_watchdog")

    def __init__(self, items: AsyncIterator[T], idle_timeout: float, url: str = "") -> None:
        self._items = items
        self._url = url
        self._watchdog = IdleWatchdog(idle_timeout)

    @property
    def idle_timeout(self) -> float:
        return self._watchdog.timeout

    @property
    def idle_timed_out(self) -> bool:
        return self._watchdog.timed_out

    @property
    def url(self) -> str:
        return self._url

    def set_idle_timeout(self, seconds: float) -> None:
        self._watchdog.retime(seconds)

    def __aiter__(self) -> IdleTimedIterator[T]:
        return self

    async def __anext__(self) -> T:
        watchdog = self._watchdog
        if watchdog.timed_out:
            raise StopAsyncIteration
        watchdog.begin()
        try:
            return await self._items.__anext__()
        except asyncio.CancelledError:
            if watchdog.expired():
                raise StopAsyncIteration from None
            raise
        finally:
            watchdog.end()

    async def aclose(self) -> None:
        """Stop the timer and close the wrapped iterator if it can be closed."""
        self._watchdog.close()
        close = getattr(self._items, "aclose", None)
        if close is not None:
            await close()


def idle_timed(items: AsyncIterator[T], idle_timeout: float, *, url: str = "") -> IdleTimedIterator[T]:
    """``items`` as an :class:`IdleTimedStream`: a read waiting ``idle_timeout`` seconds ends the
    iteration with ``idle_timed_out`` set. For watches that do not come from :class:`Api` (test
    doubles, custom sources); must be created inside the running event loop."""
    return IdleTimedIterator(items, idle_timeout, url)

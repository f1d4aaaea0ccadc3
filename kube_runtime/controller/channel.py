"""The stream a controller's results come out of: a bounded channel on asyncio futures.

:func:`result_channel` returns a sender (the runner's output) and a :class:`ResultStream` (what
``async with controller.run(...) as results`` gives). The stream is an
:class:`anyio.abc.ObjectReceiveStream`, so ``async for``, ``receive()``, ``aclose()`` and anyio's
end-of-stream exceptions work as with anyio's memory object streams.

Why not anyio's memory object stream: each of its ``send``/``receive`` calls looks the running
backend up and checkpoints, and a wait allocates an anyio event on top of an asyncio one. With a
result per reconcile that was a fifth of the runtime's own CPU between a stored event and the
user's coroutine. asyncio is the runtime's only backend, so this channel waits on plain futures.

Guarantees:

* FIFO, and at most ``max_buffer`` items held (``0``: a rendezvous, a send completes only when a
  receiver takes the item: the runner's backpressure relies on it).
* Nothing is lost to cancellation: a receiver cancelled after an item was handed to it puts the
  item back at the front; a sender cancelled before its item was taken withdraws it (one taken
  before the cancellation arrived has been delivered).
* When every sender is closed, receivers get the buffered items, then ``anyio.EndOfStream``
  (``async for`` ends). When the receiver is closed, senders get ``anyio.BrokenResourceError``.

Pitfall: unlike anyio's streams, ``receive()`` returns at once when an item is ready, without
yielding to the event loop first; a consumer loop that never awaits anything else still parks
whenever the channel is empty, which a rendezvous channel is after every item.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Generic, Protocol, TypeVar

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

__all__ = ["ItemSink", "ResultSender", "ResultStream", "result_channel"]

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)

_NOTHING = object()


class ItemSink(Protocol[T_contra]):
    """Where a runner hands its outputs: :class:`ResultSender`, or an anyio memory object send
    stream."""

    def send_nowait(self, item: T_contra) -> None:
        """Take ``item`` now or raise ``anyio.WouldBlock``."""

    async def send(self, item: T_contra) -> None:
        """Take ``item``, waiting as long as it takes."""


class _State(Generic[T]):
    __slots__ = ("buffer", "max_buffer", "receive_closed", "receivers", "send_closed", "senders")

    def __init__(self, max_buffer: int) -> None:
        self.max_buffer = max_buffer
        self.buffer: deque[T] = deque()
        #: Parked receivers, each waiting for one item.
        self.receivers: deque[asyncio.Future[T]] = deque()
        #: Parked senders and their items, each waiting for the item to be taken.
        self.senders: deque[tuple[T, asyncio.Future[None]]] = deque()
        self.send_closed = False
        self.receive_closed = False


class ResultSender(ObjectSendStream[T]):
    """The sending end of :func:`result_channel` (one per channel)."""

    __slots__ = ("_state",)

    def __init__(self, state: _State[T]) -> None:
        self._state = state

    def send_nowait(self, item: T) -> None:
        """Hand ``item`` to a waiting receiver or the buffer; ``anyio.WouldBlock`` if neither can
        take it now."""
        if not self._offer(item):
            raise anyio.WouldBlock

    async def send(self, item: T) -> None:
        """Send ``item``, waiting until a receiver or the buffer takes it."""
        if self._offer(item):
            return
        taken = asyncio.get_running_loop().create_future()
        entry = (item, taken)
        self._state.senders.append(entry)
        try:
            await taken
        except asyncio.CancelledError:
            if not taken.done() or taken.cancelled():
                with contextlib.suppress(ValueError):
                    self._state.senders.remove(entry)
            raise

    def _offer(self, item: T) -> bool:
        """Whether a waiting receiver or the buffer took ``item`` (no exception on the common path:
        raising costs about a microsecond)."""
        state = self._state
        if state.send_closed:
            raise anyio.ClosedResourceError
        if state.receive_closed:
            raise anyio.BrokenResourceError
        receivers = state.receivers
        while receivers:
            waiter = receivers.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return True
        if len(state.buffer) < state.max_buffer:
            state.buffer.append(item)
            return True
        return False

    def close(self) -> None:
        """No more items: receivers get what is buffered, then ``anyio.EndOfStream``."""
        state = self._state
        if state.send_closed:
            return
        state.send_closed = True
        while state.receivers:
            waiter = state.receivers.popleft()
            if not waiter.done():
                waiter.set_exception(anyio.EndOfStream())

    async def aclose(self) -> None:
        self.close()


class ResultStream(ObjectReceiveStream[T]):
    """The receiving end of :func:`result_channel`: ``async for item in stream``."""

    __slots__ = ("_state",)

    def __init__(self, state: _State[T]) -> None:
        self._state = state

    def receive_nowait(self) -> T:
        """The next item if one is ready; ``anyio.WouldBlock`` if not, ``anyio.EndOfStream`` once
        the sender closed and everything was taken."""
        item = self._take()
        if item is _NOTHING:
            raise anyio.WouldBlock
        return item  # type: ignore[return-value]

    async def receive(self) -> T:
        item = self._take()
        if item is _NOTHING:
            return await self._wait()
        return item  # type: ignore[return-value]

    async def __anext__(self) -> T:
        try:
            item = self._take()
            if item is _NOTHING:
                return await self._wait()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None
        return item  # type: ignore[return-value]

    def _take(self) -> T | object:
        """The next ready item, or ``_NOTHING``."""
        state = self._state
        if state.receive_closed:
            raise anyio.ClosedResourceError
        buffer = state.buffer
        senders = state.senders
        if buffer:
            item = buffer.popleft()
            while senders:  # a parked sender's item moves into the freed slot
                parked, taken = senders.popleft()
                if not taken.done():
                    taken.set_result(None)
                    buffer.append(parked)
                    break
            return item
        while senders:
            parked, taken = senders.popleft()
            if not taken.done():
                taken.set_result(None)
                return parked
        if state.send_closed:
            raise anyio.EndOfStream
        return _NOTHING

    async def _wait(self) -> T:
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._state.receivers.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._state.buffer.appendleft(waiter.result())  # handed over, not consumed: keep it
            else:
                with contextlib.suppress(ValueError):
                    self._state.receivers.remove(waiter)
            raise

    def close(self) -> None:
        """Stop receiving: parked and later senders get ``anyio.BrokenResourceError``."""
        state = self._state
        if state.receive_closed:
            return
        state.receive_closed = True
        state.buffer.clear()
        while state.senders:
            _item, taken = state.senders.popleft()
            if not taken.done():
                taken.set_exception(anyio.BrokenResourceError())

    async def aclose(self) -> None:
        self.close()


def result_channel(max_buffer: int = 0) -> tuple[ResultSender[T], ResultStream[T]]:
    """A channel holding at most ``max_buffer`` items (``0``: each send waits for a receiver)."""
    if max_buffer < 0:
        raise ValueError(f"max_buffer must be >= 0, got {max_buffer}")
    state: _State[T] = _State(max_buffer)
    return ResultSender(state), ResultStream(state)

"""One watch feeding several consumers (controllers), each through its own bounded buffer.

``SharedReflector`` drives one watcher stream into one store, in a task it owns (so the root
stream is always polled; kube-rs's ``reflect_shared`` deadlocks when nobody polls it), and hands
every change to each :class:`Subscription`.

Guarantees:

* A subscription yields the latest state of each changed object: the object for an apply, a
  :class:`~kube_runtime.streams.DeletedObject` for a delete. After every complete (re)list, once
  the store shows it, it yields every cached object (never the list's objects one by one before
  the swap), so a consumer catches up on whatever it missed (as
  :func:`~kube_runtime.streams.synced_objects` does): what it had buffered before the relist
  first, then the listing, read from a snapshot of the store taken at the swap, then the changes
  that follow.
* Buffers of changes are bounded and coalescing: a change to an object already waiting in a
  buffer replaces it in place and takes no extra slot. An object is its uid: the delete of an
  object stays in the buffer when one of the same name is created after it (both are yielded, the
  delete first). A full buffer makes the root wait (backpressure), so the store and the other
  consumers are at most one buffer ahead of the slowest consumer; they keep draining what they
  already have and nothing deadlocks as long as each subscription is iterated or closed. A
  listing takes no buffer space and never makes the root wait: the watch resumes at once after a
  relist however slowly a consumer reads it (the root waiting for a slow consumer to take a large
  listing let the list's resourceVersion fall out of a short server history, so every watch
  started with 410 Gone and relisted again, for ever).
* A subscription sees the changes made after it subscribed; with ``catch_up=True``, one made once
  the store is ready first yields every cached object (as after a relist), so a consumer that
  starts after the sync misses nothing (``Controller.for_shared`` subscribes so). When the root
  stream ends or the reflector exits, subscriptions drain their buffers and then end.

Pitfalls: a subscription that is neither iterated nor closed stalls everyone once its buffer is
full. Close the ones you stop using (``async with subscription`` or ``aclose()``). A consumer that
reads changes more slowly than they arrive holds the store and every other consumer back by as much
(backpressure): do per-object work elsewhere (a controller's workers), not in the read loop.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, Iterator
from types import TracebackType
from typing import Any

import anyio

from kube_runtime._stream_items import deleted_lazy
from kube_runtime._tasks import BackgroundTasks
from kube_runtime.client.errors import ObjectDecodeError
from kube_runtime.client.head import LazyObject
from kube_runtime.client.json import KubeObject
from kube_runtime.store.store import Store, Writer
from kube_runtime.streams import (
    DeletedLazyObject,
    DeletedObject,
    EventItem,
    ListedLazyObject,
    ListedObject,
    reflect,
)
from kube_runtime.watcher.event import Apply, Delete, InitDone

__all__ = ["DEFAULT_BUFFER_SIZE", "SharedReflector", "Subscription"]

_log = logging.getLogger("kube_runtime.store")

DEFAULT_BUFFER_SIZE = 256


class Subscription:
    """An async iterator of changed objects from a :class:`SharedReflector`: dicts (a
    :class:`~kube_runtime.streams.ListedObject` or :class:`~kube_runtime.streams.DeletedObject` for
    the markers of :func:`~kube_runtime.streams.synced_objects`), or with ``lazy`` the
    :class:`~kube_runtime.client.head.LazyObject` values the root shares between subscriptions
    (nothing decoded unless read). An object whose bytes do not decode is yielded as its
    :class:`~kube_runtime.client.errors.ObjectDecodeError` (a value; the subscription goes on)."""

    __slots__ = (
        "_before",
        "_capacity",
        "_closed",
        "_ended",
        "_lazy",
        "_not_empty",
        "_not_full",
        "_pending",
        "_reflector",
        "_replay",
        "_replayed",
    )

    def __init__(
        self,
        reflector: SharedReflector,
        capacity: int,
        *,
        lazy: bool = False,
        replay: Iterator[LazyObject] | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError("buffer size must be at least 1")
        self._reflector = reflector
        self._capacity = capacity
        self._lazy = lazy
        #: The cached objects to yield before the buffer (``catch_up``, or the last relist's
        #: listing), and how many were yielded.
        self._replay = replay
        self._replayed = 0
        #: What the buffer held when the last relist's listing was set: yielded before it.
        self._before: dict[tuple[str | None, str, str | None], LazyObject] = {}
        #: Keyed by (namespace, name, uid): an object re-created under its name (a new uid) takes
        #: a slot of its own, so the delete of the old one is not replaced by it.
        self._pending: dict[tuple[str | None, str, str | None], LazyObject] = {}
        self._closed = False
        self._ended = False
        self._not_empty: anyio.Event | None = None
        self._not_full: anyio.Event | None = None

    def __len__(self) -> int:
        """Changed objects waiting in the buffer (a listing still being read not counted)."""
        return len(self._pending) + len(self._before)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Any:
        while True:
            before = self._before
            if before:
                obj = before.pop(next(iter(before)))
                break
            replay = self._replay
            if replay is not None:
                listed = next(replay, None)
                if listed is not None:
                    self._replayed += 1
                    if self._replayed % _REPLAY_BATCH == 0:
                        await anyio.lowlevel.checkpoint()  # a large store must not hold the loop
                    obj = listed
                    break
                self._replay = None
            pending = self._pending
            if pending:
                obj = pending.pop(next(iter(pending)))
                self._wake_producer()
                break
            if self._ended or self._closed:
                raise StopAsyncIteration
            if self._not_empty is None:
                self._not_empty = anyio.Event()
            await self._not_empty.wait()
        return obj if self._lazy else _decoded(obj)

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        """Unsubscribe: the root no longer waits for this buffer; iteration ends."""
        self._closed = True
        self._replay = None
        self._pending.clear()
        self._before.clear()
        self._reflector._subscribers.discard(self)
        self._wake_producer()
        self._wake_consumer()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- producer side (the root task) -----------------------------------------------------------

    async def _offer(self, key: tuple[str | None, str, str | None], obj: LazyObject) -> None:
        while not self._closed:
            pending = self._pending
            if key in pending or len(pending) < self._capacity:
                pending[key] = obj
                self._wake_consumer()
                return
            if self._not_full is None:
                self._not_full = anyio.Event()
            await self._not_full.wait()

    def _relisted(self, listing: Iterator[LazyObject]) -> None:
        """A (re)list was swapped into the store: yield what is buffered, then ``listing``
        (replacing a listing not read to its end: this one is newer), then later changes."""
        if self._closed:
            return
        pending = self._pending
        if pending:
            if self._before:
                self._before.update(pending)  # a newer change keeps the older one's place
            else:
                self._before = pending
            self._pending = {}
            self._wake_producer()
        self._replay, self._replayed = listing, 0
        self._wake_consumer()

    def _end(self) -> None:
        self._ended = True
        self._wake_consumer()

    def _wake_consumer(self) -> None:
        if self._not_empty is not None:
            self._not_empty.set()
            self._not_empty = None

    def _wake_producer(self) -> None:
        if self._not_full is not None:
            self._not_full.set()
            self._not_full = None


class SharedReflector:
    """Runs ``stream`` into ``writer`` and fans changes out to subscriptions.

    ``async with SharedReflector(writer, watcher(api).default_backoff()) as shared:`` starts the
    root task (owned as in :mod:`kube_runtime._tasks`: an exception from the body comes out as
    itself); ``shared.subscribe()`` may be called before or after entering. ``shared.store`` is
    the cache's reader. Errors from the root stream are logged and counted in ``errors``; put a
    backoff on the stream so a failing watch does not spin.
    """

    def __init__(
        self, writer: Writer, stream: AsyncIterable[EventItem], *, buffer_size: int = DEFAULT_BUFFER_SIZE
    ) -> None:
        self._writer = writer
        self._stream = stream
        self._buffer_size = buffer_size
        self._subscribers: set[Subscription] = set()
        self._tasks: BackgroundTasks | None = None
        self._finished = False
        self.errors = 0

    @property
    def store(self) -> Store:
        return self._writer.as_reader()

    def subscribe(
        self, buffer_size: int | None = None, *, lazy: bool = False, catch_up: bool = False
    ) -> Subscription:
        """A new consumer handle (``buffer_size`` defaults to the reflector's; ``lazy``: yield
        :class:`~kube_runtime.client.head.LazyObject` values, see :class:`Subscription`).

        ``catch_up``: when the store is ready, the subscription first yields every object cached
        now (listed markers, as after a relist; a snapshot, so later changes follow from the
        buffer), then the changes. Before the first sync there is nothing to catch up on: the
        sync's own listing reaches every subscription."""
        store = self.store
        replay = store.lazy_objects(ListedLazyObject) if catch_up and store.is_ready() else None
        sub = Subscription(self, buffer_size or self._buffer_size, lazy=lazy, replay=replay)
        if self._finished:
            sub._end()
        else:
            self._subscribers.add(sub)
        return sub

    async def __aenter__(self) -> SharedReflector:
        tasks = BackgroundTasks()
        await tasks.__aenter__()
        tasks.start_soon(self._run, name="kube_runtime.shared_reflector")
        self._tasks = tasks
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        tasks, self._tasks = self._tasks, None
        assert tasks is not None
        try:
            return await tasks.__aexit__(exc_type, exc, tb)
        finally:
            self._finish()

    async def _run(self) -> None:
        writer = self._writer
        store = writer.as_reader()
        # What synced_objects(..., deletes=True, lazy=True) yields, except that a relist's listing
        # goes to each subscription as a snapshot to read at its own pace (see the module doc).
        stream = reflect(self._stream, writer)
        try:
            async for item in stream:
                if isinstance(item, Apply):
                    await self._dispatch(item.lazy or LazyObject.from_object(item.object))
                elif isinstance(item, Delete):
                    await self._dispatch(deleted_lazy(item))
                elif isinstance(item, InitDone):
                    for sub in tuple(self._subscribers):
                        sub._relisted(store.lazy_objects(ListedLazyObject))
                elif isinstance(item, Exception):
                    self.errors += 1
                    _log.debug("shared reflector: watch error: %s", item)
        finally:
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            self._finish()

    async def _dispatch(self, obj: LazyObject) -> None:
        try:
            meta = obj.meta.metadata
        except ObjectDecodeError as exc:
            self.errors += 1
            _log.debug("shared reflector: undecodable object: %s", exc)
            return
        if not meta.name:
            return
        key = (meta.namespace, meta.name, meta.uid)
        for sub in tuple(self._subscribers):
            await sub._offer(key, obj)

    def _finish(self) -> None:
        self._finished = True
        for sub in tuple(self._subscribers):
            sub._end()


#: How many caught-up objects a subscription yields between two passes through the event loop.
_REPLAY_BATCH = 500


def _decoded(obj: LazyObject) -> KubeObject | ObjectDecodeError:
    """What a dict subscription yields for ``obj``."""
    try:
        if isinstance(obj, ListedLazyObject):
            return ListedObject(obj.object)
        if isinstance(obj, DeletedLazyObject):
            return DeletedObject(obj.object)
        return obj.object
    except ObjectDecodeError as exc:
        return exc

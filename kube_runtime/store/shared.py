"""One watch feeding several consumers (controllers), each through its own bounded buffer.

``SharedReflector`` drives one watcher stream into one store, in a task it owns (so the root
stream is always polled; kube-rs's ``reflect_shared`` deadlocks when nobody polls it), and hands
every change to each :class:`Subscription`.

Guarantees:

* A subscription yields the latest state of each changed object: the object for an apply, a
  :class:`~kube_runtime.streams.DeletedObject` for a delete. After every complete (re)list, once
  the store shows it, it yields every cached object (never the list's objects one by one before
  the swap), so a consumer catches up on whatever it missed
  (:func:`~kube_runtime.streams.synced_objects`).
* Buffers are bounded and coalescing: a change to an object already waiting in a buffer replaces
  it in place and takes no extra slot. An object is its uid: the delete of an object stays in the
  buffer when one of the same name is created after it (both are yielded, the delete first).
  A full buffer makes the root wait (backpressure), so the store and the other consumers are at
  most one buffer ahead of the slowest consumer; they keep draining what they already have and
  nothing deadlocks as long as each subscription is iterated or closed.
* A subscription sees the changes made after it subscribed; with ``catch_up=True``, one made once
  the store is ready first yields every cached object (as after a relist), so a consumer that
  starts after the sync misses nothing (``Controller.for_shared`` subscribes so). When the root
  stream ends or the reflector exits, subscriptions drain their buffers and then end.

Pitfall: a subscription that is neither iterated nor closed stalls everyone once its buffer is
full. Close the ones you stop using (``async with subscription`` or ``aclose()``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, Iterator
from types import TracebackType
from typing import Any

import anyio

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
    synced_objects,
)

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
        #: The cached objects to yield before the buffer (``catch_up``), and how many were yielded.
        self._replay = replay
        self._replayed = 0
        #: Keyed by (namespace, name, uid): an object re-created under its name (a new uid) takes
        #: a slot of its own, so the delete of the old one is not replaced by it.
        self._pending: dict[tuple[str | None, str, str | None], LazyObject] = {}
        self._closed = False
        self._ended = False
        self._not_empty: anyio.Event | None = None
        self._not_full: anyio.Event | None = None

    def __len__(self) -> int:
        """Objects waiting in the buffer."""
        return len(self._pending)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Any:
        replay = self._replay
        if replay is not None:
            obj = next(replay, None)
            if obj is not None:
                self._replayed += 1
                if self._replayed % _REPLAY_BATCH == 0:
                    await anyio.lowlevel.checkpoint()  # a large store must not hold the loop
                return obj if self._lazy else _decoded(obj)
            self._replay = None
        while not self._pending:
            if self._ended or self._closed:
                raise StopAsyncIteration
            if self._not_empty is None:
                self._not_empty = anyio.Event()
            await self._not_empty.wait()
        key = next(iter(self._pending))
        obj = self._pending.pop(key)
        self._wake_producer()
        return obj if self._lazy else _decoded(obj)

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        """Unsubscribe: the root no longer waits for this buffer; iteration ends."""
        self._closed = True
        self._replay = None
        self._pending.clear()
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
        stream = synced_objects(reflect(self._stream, writer), writer.as_reader(), deletes=True, lazy=True)
        try:
            async for item in stream:
                if isinstance(item, Exception):
                    self.errors += 1
                    _log.debug("shared reflector: watch error: %s", item)
                else:
                    await self._dispatch(item)
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

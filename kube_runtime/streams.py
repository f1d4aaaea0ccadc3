"""Composable helpers over watcher streams, usable without the Controller.

Every helper takes an async iterable and returns a :class:`WatchStream`, which has the same helpers
as methods, so kube-rs style chains read left to right::

    stream = (
        watcher(api, WatcherConfig())
        .default_backoff()
        .modify(drop_managed_fields)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(predicates.generation)
    )
    async with stream:
        async for item in stream:
            if isinstance(item, Exception):
                ...  # errors are values; the stream goes on
            else:
                ...

After ``reflect(writer)``, ``applied_objects()`` yields each listed object as it arrives, while the
store still shows the previous list until ``InitDone``; to act on objects by reading the store (as
a reconcile does), use ``synced_objects(reader)`` instead, which yields a relist's objects once the
store shows them.

Errors (exception instances) pass through every helper unchanged. Closing a helper closes the
stream it reads, down to the watcher and its HTTP connection: ``async with stream`` (or
``aclose()``) when you stop early (an abandoned async generator is finalized only later).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Generic, Literal, Protocol, TypeVar, overload

import anyio
import anyio.lowlevel

from kube_runtime._stream_items import (
    DeletedLazyObject,
    DeletedObject,
    EventItem,
    LazyItem,
    ListedLazyObject,
    ListedObject,
    ModifyFailed,
    ObjectItem,
    SyncedItem,
    deleted_lazy,
)
from kube_runtime.client.head import LazyObject
from kube_runtime.client.json import KubeObject
from kube_runtime.predicates import DEFAULT_PREDICATE_TTL, Predicate, PredicateFailed, PredicateMemory
from kube_runtime.watcher.backoff import Backoff
from kube_runtime.watcher.backoff import default_backoff_policy as _default_policy
from kube_runtime.watcher.event import Apply, Delete, Init, InitApply, InitDone, WatcherEvent

__all__ = [
    "DEFAULT_PREDICATE_TTL",
    "DeletedLazyObject",
    "DeletedObject",
    "EventItem",
    "EventWriter",
    "LazyItem",
    "ListedLazyObject",
    "ListedObject",
    "ModifyFailed",
    "ObjectItem",
    "PredicateMemory",
    "SyncedItem",
    "WatchStream",
    "applied_objects",
    "backoff",
    "default_backoff",
    "drop_managed_fields",
    "modify",
    "predicate_filter",
    "reflect",
    "synced_objects",
    "touched_objects",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class EventWriter(Protocol):
    """What :func:`reflect` applies events to (a store's ``Writer``)."""

    def apply_watcher_event(self, event: WatcherEvent[KubeObject]) -> None: ...


async def _aclose(source: object) -> None:
    close = getattr(source, "aclose", None)
    if close is not None:
        await close()


def _upstream(stream: AsyncIterable[T]) -> AsyncIterator[T]:
    """The iterator a helper reads: a plain :class:`WatchStream` only forwards, so read what it wraps."""
    if type(stream) is WatchStream:  # type: ignore[comparison-overlap]
        return stream._source
    return aiter(stream)


class WatchStream(Generic[T_co]):
    """An async iterator with the stream helpers as chainable methods; an async context manager
    that closes the whole chain on exit.

    :func:`reflect` calls ``_reflected(apply)`` and :func:`backoff` ``_backed_off(policy)`` on the
    stream they are put on: a stage of its own by default, one fused stage doing both for a backoff
    then reflect pair (the same order and delays, one coroutine hop per event less).
    """

    __slots__ = ("_source",)

    def __init__(self, source: AsyncIterable[T_co]) -> None:
        self._source: AsyncIterator[T_co] = aiter(source)

    def __aiter__(self) -> WatchStream[T_co]:
        return self

    async def __anext__(self) -> T_co:
        return await anext(self._source)

    async def aclose(self) -> None:
        await _aclose(self._source)

    async def __aenter__(self) -> WatchStream[T_co]:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _reflected(self, apply: Callable[[Any], None]) -> WatchStream[Any]:
        """This stream with ``apply`` called on every item that is not an error, in order."""
        return _Reflected(self, apply)

    def _backed_off(self, policy: Backoff) -> WatchStream[T_co]:
        """This stream with a delay of ``policy`` after every error item."""
        return _BackedOff(self, policy)

    # Methods mirror the free functions below (kube-rs's WatchStreamExt).

    def backoff(self, policy: Backoff) -> WatchStream[T_co]:
        return backoff(self, policy)

    def default_backoff(self) -> WatchStream[T_co]:
        return default_backoff(self)

    def modify(
        self: WatchStream[EventItem], fn: Callable[[KubeObject], KubeObject | None]
    ) -> WatchStream[EventItem]:
        return modify(self, fn)

    def reflect(self: WatchStream[EventItem], writer: EventWriter) -> WatchStream[EventItem]:
        return reflect(self, writer)

    def applied_objects(self: WatchStream[EventItem]) -> WatchStream[ObjectItem]:
        return applied_objects(self)

    def touched_objects(self: WatchStream[EventItem]) -> WatchStream[ObjectItem]:
        return touched_objects(self)

    @overload
    def synced_objects(
        self: WatchStream[EventItem],
        store: Iterable[KubeObject],
        *,
        deletes: bool = ...,
        lazy: Literal[False] = ...,
    ) -> WatchStream[ObjectItem]: ...

    @overload
    def synced_objects(
        self: WatchStream[EventItem], store: Iterable[KubeObject], *, deletes: bool = ..., lazy: Literal[True]
    ) -> WatchStream[LazyItem]: ...

    @overload
    def synced_objects(
        self: WatchStream[EventItem], store: Iterable[KubeObject], *, deletes: bool = ..., lazy: bool
    ) -> WatchStream[SyncedItem]: ...

    def synced_objects(
        self: WatchStream[EventItem],
        store: Iterable[KubeObject],
        *,
        deletes: bool = False,
        lazy: bool = False,
    ) -> WatchStream[SyncedItem]:
        return synced_objects(self, store, deletes=deletes, lazy=lazy)

    def predicate_filter(
        self: WatchStream[T], predicate: Predicate, *, ttl: float = DEFAULT_PREDICATE_TTL
    ) -> WatchStream[T]:
        return predicate_filter(self, predicate, ttl=ttl)


# -- event -> object ------------------------------------------------------------------------------


def applied_objects(stream: AsyncIterable[EventItem]) -> WatchStream[ObjectItem]:
    """Objects of ``InitApply`` and ``Apply`` events; other events are dropped, errors pass."""
    return _Objects(stream, deletes=False)


def touched_objects(stream: AsyncIterable[EventItem]) -> WatchStream[ObjectItem]:
    """Like :func:`applied_objects`, plus the last state of deleted objects (as :class:`DeletedObject`)."""
    return _Objects(stream, deletes=True)


class _Objects(WatchStream[ObjectItem]):
    """:func:`applied_objects` / :func:`touched_objects` as one ``__anext__`` per item."""

    __slots__ = ("_deletes", "_events")

    def __init__(self, stream: AsyncIterable[EventItem], *, deletes: bool) -> None:
        events = _upstream(stream)
        super().__init__(events)  # type: ignore[arg-type]  # read through _events, typed right
        self._events = events
        self._deletes = deletes

    async def __anext__(self) -> ObjectItem:
        source = self._events
        try:
            while True:
                item = await source.__anext__()
                if isinstance(item, _APPLIED):
                    return item.object
                if isinstance(item, Delete):
                    if self._deletes:
                        return DeletedObject(item.object)
                elif isinstance(item, Exception):
                    return item
        except BaseException:
            await _aclose(source)
            raise


_APPLIED = (Apply, InitApply)


@overload
def synced_objects(
    stream: AsyncIterable[EventItem],
    store: Iterable[KubeObject],
    *,
    deletes: bool = ...,
    lazy: Literal[False] = ...,
) -> WatchStream[ObjectItem]: ...


@overload
def synced_objects(
    stream: AsyncIterable[EventItem], store: Iterable[KubeObject], *, deletes: bool = ..., lazy: Literal[True]
) -> WatchStream[LazyItem]: ...


@overload
def synced_objects(
    stream: AsyncIterable[EventItem], store: Iterable[KubeObject], *, deletes: bool = ..., lazy: bool
) -> WatchStream[SyncedItem]: ...


def synced_objects(
    stream: AsyncIterable[EventItem],
    store: Iterable[KubeObject],
    *,
    deletes: bool = False,
    lazy: bool = False,
) -> WatchStream[SyncedItem]:
    """Changed objects, each yielded only once ``store`` shows it: what should trigger reconciles.

    Put it directly after :func:`reflect` of ``store``'s writer. It yields the object of every
    ``Apply`` (already applied to the store), and at every ``InitDone`` (the store has just swapped
    in the new list) every object of the store, as a :class:`ListedObject`; ``InitApply`` objects
    are not yielded, since until the swap the store still shows the previous state. With
    ``deletes``, a ``Delete`` yields the last state as a :class:`DeletedObject`. Errors pass.

    Guarantee: after a (re)list, paged or streaming, every object of the new state is yielded once
    the store holds that state; objects deleted while the watch was away are not yielded (they
    vanish at the swap), and objects changed while the list was in progress arrive as ``Apply``
    after it. :func:`applied_objects` instead yields each ``InitApply`` while readers still see the
    old state: a consumer that then reads the store gets the old object, or none for an object
    created meanwhile, and nothing yields it again after the swap. kube-rs's ``Controller::new``
    has that hole (its trigger is ``applied_objects``; its shared reflector broadcasts the store at
    ``InitDone`` as here).

    Cost: at each ``InitDone`` the whole store is iterated (a compact store decodes one object at a
    time, not all at once), yielding to the event loop every 500 objects.

    ``lazy``: yield :class:`~kube_runtime.client.head.LazyObject` values instead of dicts (an
    ``Apply``'s own lazy object, :class:`ListedLazyObject` and :class:`DeletedLazyObject` for the
    markers), for consumers that read only heads (:func:`~kube_runtime.controller.triggers.trigger_self`
    does): nothing is decoded unless ``object`` is read. ``store`` must then be a
    :class:`~kube_runtime.store.Store` (it lists its stored bytes without decoding them). The
    return type follows ``lazy``: ``WatchStream[ObjectItem]`` without it, ``WatchStream[LazyItem]``
    (``LazyObject | Exception``) with ``lazy=True``, ``WatchStream[SyncedItem]`` (either) for a
    ``bool`` known only at run time.
    """
    return _Synced(stream, store, deletes=deletes, lazy=lazy)


class _Synced(WatchStream[SyncedItem]):
    """:func:`synced_objects` as one ``__anext__`` per item."""

    __slots__ = ("_deletes", "_events", "_lazy", "_listed", "_sent", "_store")

    def __init__(
        self, stream: AsyncIterable[EventItem], store: Iterable[KubeObject], *, deletes: bool, lazy: bool
    ) -> None:
        events = _upstream(stream)
        super().__init__(events)  # type: ignore[arg-type]  # read through _events, typed right
        self._events = events
        self._store = store
        self._deletes = deletes
        self._lazy = lazy
        #: The store's objects still to yield after an InitDone (marked), and how many were yielded.
        self._listed: Iterator[KubeObject | LazyObject] | None = None
        self._sent = 0

    async def __anext__(self) -> SyncedItem:
        source = self._events
        try:
            if self._listed is not None:
                listed = next(self._listed, None)
                if listed is not None:
                    self._sent += 1
                    if self._sent % _SYNC_BATCH == 0:
                        await anyio.lowlevel.checkpoint()  # a large store must not hold the loop
                    return listed
                self._listed = None
            while True:
                item = await source.__anext__()
                if isinstance(item, Apply):
                    if not self._lazy:
                        return item.object
                    return item.lazy or LazyObject.from_object(item.object)
                if isinstance(item, InitDone):
                    objects = self._listing()  # a snapshot: the swap has just happened upstream
                    first = next(objects, None)
                    if first is not None:
                        self._listed, self._sent = objects, 1
                        return first  # a marked object
                elif isinstance(item, Delete):
                    if self._deletes:
                        return self._deleted(item)
                elif isinstance(item, Exception):
                    return item
        except BaseException:
            await _aclose(source)
            raise

    def _listing(self) -> Iterator[KubeObject | LazyObject]:
        if not self._lazy:
            return map(ListedObject, self._store)
        return self._store.lazy_objects(ListedLazyObject)  # type: ignore[attr-defined, no-any-return]

    def _deleted(self, item: Delete[KubeObject]) -> KubeObject | LazyObject:
        if not self._lazy:
            return DeletedObject(item.object)
        return deleted_lazy(item)


#: How many objects of a synced store are yielded between two passes through the event loop.
_SYNC_BATCH = 500


# -- event -> event -------------------------------------------------------------------------------


def modify(
    stream: AsyncIterable[EventItem], fn: Callable[[KubeObject], KubeObject | None]
) -> WatchStream[EventItem]:
    """Apply ``fn`` to the object of every ``InitApply``/``Apply``/``Delete`` before it goes on.

    ``fn`` may change the object in place and return ``None``, or return a replacement object.
    Either way the event goes on carrying the decoded object (a store encodes it again), since the
    bytes it arrived as no longer match. If ``fn`` raises, the event goes on as it came, followed by
    a ``ModifyFailed`` error. Typical use: drop ``managedFields`` before the store keeps the object.
    """
    return WatchStream(_modify(stream, fn))


async def _modify(
    stream: AsyncIterable[EventItem], fn: Callable[[KubeObject], KubeObject | None]
) -> AsyncIterator[EventItem]:
    source = aiter(stream)
    try:
        async for item in source:
            if isinstance(item, Apply | InitApply | Delete):
                obj = item.object
                try:
                    replaced = fn(obj)
                except Exception as exc:  # a bug in fn: the event goes on as it came, then the error
                    yield item
                    yield ModifyFailed(exc)
                    continue
                if replaced is not None and replaced is not obj:
                    item = type(item)(replaced)
                elif item.lazy is not None:
                    # The bytes no longer match a dict changed in place: carry the dict itself.
                    item = type(item)(obj)
            yield item
    finally:
        await _aclose(source)


def drop_managed_fields(obj: KubeObject) -> None:
    """For :func:`modify`: remove ``metadata.managedFields`` (server-side apply bookkeeping)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)


def reflect(stream: AsyncIterable[EventItem], writer: EventWriter) -> WatchStream[EventItem]:
    """Apply every event to ``writer`` as it passes (the store only updates while this is iterated)."""
    if isinstance(stream, WatchStream):
        return stream._reflected(writer.apply_watcher_event)
    return _Reflected(stream, writer.apply_watcher_event)


class _Reflected(WatchStream[EventItem]):
    """:func:`reflect` as one ``__anext__`` per item (an async generator here cost two extra hops
    per event: the generator's own and its ``WatchStream`` wrapper's)."""

    __slots__ = ("_apply",)

    def __init__(self, stream: AsyncIterable[Any], apply: Callable[[Any], None]) -> None:
        super().__init__(_upstream(stream))
        self._apply = apply

    def _backed_off(self, policy: Backoff) -> WatchStream[EventItem]:
        return _BackedOff(self._source, policy, apply=self._apply)

    async def __anext__(self) -> EventItem:
        try:
            item = await self._source.__anext__()
            if not isinstance(item, Exception):
                self._apply(item)
        except BaseException:
            await _aclose(self._source)
            raise
        return item


# -- backoff --------------------------------------------------------------------------------------


def backoff(stream: AsyncIterable[T], policy: Backoff) -> WatchStream[T]:
    """After each error item, sleep ``policy.next()`` seconds before reading on (``None``: end).

    The policy is reset only by items that prove the watch healthy: ``InitDone``, ``Apply``,
    ``Delete`` and plain objects. ``Init`` and ``InitApply`` do not reset it: kube-rs resets on any
    ``Ok`` item, so a relist that keeps failing after its ``Init`` retried every ~1 s forever
    (bitdriftlabs/pulse#52). Put the backoff directly on the watcher, before ``applied_objects``,
    so it can tell list objects from watch events.
    """
    if isinstance(stream, WatchStream):
        return stream._backed_off(policy)
    return _BackedOff(stream, policy)


def default_backoff(stream: AsyncIterable[T]) -> WatchStream[T]:
    """:func:`backoff` with client-go's reflector policy (0.8 s doubling to 30 s, reset after 120 s)."""
    return backoff(stream, _default_policy())


class _BackedOff(WatchStream[T]):
    """:func:`backoff` as one ``__anext__`` per item.

    ``reset()`` is called on the first healthy item after the policy was last asked for a delay
    (and on the first healthy item of the stream), not on every item: further resets in between
    find the policy already reset, so the sequence of delays is the same.

    ``apply`` (given when a :func:`reflect` stage fuses with it, see :class:`WatchStream`) is
    called on every item that is not an error, right after it is read.
    """

    __slots__ = ("_apply", "_delay", "_ended", "_pending_reset", "_policy")

    def __init__(
        self, stream: AsyncIterable[T], policy: Backoff, *, apply: Callable[[Any], None] | None = None
    ) -> None:
        super().__init__(_upstream(stream))
        self._apply = apply
        self._policy = policy
        self._delay: float | None = None
        self._ended = False
        self._pending_reset = True

    def _reflected(self, apply: Callable[[Any], None]) -> WatchStream[Any]:
        if self._apply is not None:  # already reflecting into one writer: a stage of its own
            return _Reflected(self, apply)
        fused: _BackedOff[T] = _BackedOff(self._source, self._policy, apply=apply)
        fused._delay = self._delay
        fused._ended = self._ended
        fused._pending_reset = self._pending_reset
        return fused

    async def __anext__(self) -> T:
        source = self._source
        try:
            if self._ended:
                raise StopAsyncIteration
            if self._delay is not None:
                await anyio.sleep(self._delay)
                self._delay = None
            item = await source.__anext__()
            if self._apply is not None and not isinstance(item, Exception):
                self._apply(item)
        except BaseException:
            await _aclose(source)
            raise
        if isinstance(item, Exception):
            delay = self._policy.next()
            self._pending_reset = True
            if delay is None:
                self._ended = True  # this error is the last item; the next call closes the source
            else:
                self._delay = delay
        elif self._pending_reset and not isinstance(item, _NOT_HEALTHY):
            self._pending_reset = False
            self._policy.reset()
        return item


#: Items that do not prove a watch healthy: a relist that keeps failing after its Init must back off.
_NOT_HEALTHY = (Init, InitApply)


# -- predicate filter -----------------------------------------------------------------------------


def predicate_filter(
    stream: AsyncIterable[T], predicate: Predicate, *, ttl: float = DEFAULT_PREDICATE_TTL
) -> WatchStream[T]:
    """Drop objects whose ``predicate`` fingerprint did not change since they were last seen.

    Works on object streams (after :func:`applied_objects`/:func:`touched_objects`) and on event
    streams (filters ``Apply``). Guarantees:

    * On event streams, a list (``Init``, every ``InitApply``, ``InitDone``) passes whole, its
      fingerprints remembered: a :func:`reflect` after the filter swaps in what the list presents,
      so dropping unchanged objects would empty its store. (Before ``reflect``, the filter keeps
      filtered ``Apply`` changes from the store; put it after ``reflect`` to keep the store current.)
    * Deletes always pass (a ``Delete`` event or a :class:`DeletedObject`) and forget the object;
      kube-rs drops them because the fingerprint is unchanged (kube-rs #1768).
    * The memory key includes the uid, so a re-created object passes (kube-rs #1830).
    * An object not seen for ``ttl`` seconds is forgotten and passes again; forgotten entries are
      swept at most once per ``ttl``, so memory stays bounded (kube-rs #1837).
    * Objects whose fingerprint is ``None`` and errors always pass.
    * A predicate that raises does not end the stream: ``predicates.PredicateFailed`` is yielded
      in place of the object (an ``InitApply`` of a list still passes), and filtering goes on.

    Over watcher events, a predicate with a ``predicates.head_form`` (this package's predicates)
    reads the head the watch decoded, so filtered events are never decoded."""
    return WatchStream(_predicate_filter(stream, predicate, ttl))


def _subject(item: Any) -> Any:
    """What a predicate reads of a stream item: an event's lazy object (its head) when it has one."""
    if isinstance(item, Apply | InitApply | Delete):
        return item.object if item.lazy is None else item.lazy
    return item


async def _predicate_filter(stream: AsyncIterable[T], predicate: Predicate, ttl: float) -> AsyncIterator[T]:
    cache = PredicateMemory(predicate, ttl=ttl)
    source = aiter(stream)
    try:
        async for item in source:
            if isinstance(item, Exception | Init | InitDone):
                yield item
            elif isinstance(item, Delete | DeletedObject | DeletedLazyObject):
                cache.forget_any(_subject(item))
                yield item
            elif isinstance(item, InitApply):  # a list passes whole (see the docstring)
                with contextlib.suppress(Exception):  # it passes anyway; its next change reports
                    cache.passes(_subject(item))
                yield item
            elif isinstance(item, Apply | LazyObject | dict):
                subject = _subject(item)
                try:
                    passes = cache.passes(subject)
                except Exception as exc:  # a bug in the predicate: reported, the stream goes on
                    yield PredicateFailed(exc, subject)  # type: ignore[misc]
                    continue
                if passes:
                    yield item
            else:
                yield item
    finally:
        await _aclose(source)

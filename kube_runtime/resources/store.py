"""Typed reads of a reflector store, and a typed watcher stream.

:class:`TypedStore` is a view over a dict :class:`~kube_runtime.store.store.Store`: the cache
stays as it is (compact JSON bytes by default, so a model costs nothing while cached) and each
read builds a model instance. Building is the cost of typing: see ``benches/bench_typed.py``.
An object that does not fit raises :class:`~kube_runtime.resources.errors.InvalidObject` on
``get``; the bulk reads skip such objects (``state``) or raise (``state_strict``).

:func:`typed_events` maps a watcher stream's objects to models, turning a non-fitting object
into an ``InvalidObject`` error value (the stream goes on, like the watcher's own errors).
Pitfall: to keep a store, reflect the *dict* stream into it first
(``watcher(...).reflect(writer)``), then type the reads: a store of models would cost the memory
of decoded objects and cannot hold an object that does not fit.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from typing import Any, Generic, TypeAlias, TypeVar

from kube_runtime.resources.api import TypedApi
from kube_runtime.resources.errors import InvalidObject, decoder
from kube_runtime.resources.model import Resource
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.store.store import Store
from kube_runtime.watcher.config import WatcherConfig
from kube_runtime.watcher.event import Apply, Delete, InitApply, WatcherError, WatcherEvent
from kube_runtime.watcher.watcher import watcher

__all__ = ["TypedStore", "TypedWatcherItem", "typed_events", "typed_watcher"]

M = TypeVar("M", bound=Resource)


class TypedStore(Generic[M]):
    """Model instances from ``store`` (a read handle; cheap to create)."""

    __slots__ = ("decode", "model", "raw")

    def __init__(self, store: Store, model: type[M]) -> None:
        self.raw = store
        self.model = model
        self.decode: Callable[[dict[str, Any]], M] = decoder(model)

    def get(self, ref: ObjectRef) -> M | None:
        """The object ``ref`` names, decoded; ``None`` if absent; raises InvalidObject."""
        found = self.raw.get(ref)
        return None if found is None else self.decode(found)

    def get_by_key(self, name: str, namespace: str | None = None) -> M | None:
        found = self.raw.get_by_key(name, namespace)
        return None if found is None else self.decode(found)

    def state(self) -> list[M]:
        """Every object that fits the model (those that do not are left out: see
        :meth:`state_strict`)."""
        out = []
        for obj in self.raw:
            try:
                out.append(self.decode(obj))
            except InvalidObject:
                continue
        return out

    def state_strict(self) -> list[M]:
        """Every object; raises InvalidObject for the first that does not fit."""
        return [self.decode(obj) for obj in self.raw]

    def __iter__(self) -> Iterator[M]:
        return iter(self.state())

    def __len__(self) -> int:
        return len(self.raw)

    def is_ready(self) -> bool:
        return self.raw.is_ready()

    async def wait_until_ready(self) -> None:
        await self.raw.wait_until_ready()


#: What :func:`typed_events` yields.
TypedWatcherItem: TypeAlias = WatcherEvent[M] | WatcherError | InvalidObject


async def typed_events(
    stream: AsyncIterable[WatcherEvent[dict[str, Any]] | WatcherError], model: type[M]
) -> AsyncIterator[TypedWatcherItem[M]]:
    """``stream`` (watcher items) with ``InitApply``/``Apply``/``Delete`` objects decoded; an
    object that does not fit becomes an ``InvalidObject`` item in its place. ``Init``,
    ``InitDone`` and error values pass through."""
    decode = decoder(model)
    async for item in stream:
        if isinstance(item, (Apply, InitApply, Delete)):
            try:
                obj = decode(item.object)
            except InvalidObject as exc:
                yield exc
                continue
            if isinstance(item, Apply):
                yield Apply(obj)
            elif isinstance(item, InitApply):
                yield InitApply(obj)
            else:
                yield Delete(obj)
        else:
            yield item


def typed_watcher(
    api: TypedApi[M], config: WatcherConfig | None = None
) -> AsyncIterator[TypedWatcherItem[M]]:
    """:func:`~kube_runtime.watcher.watcher` on ``api``'s dict Api, its objects decoded
    (:func:`typed_events`): for consumers that want typed events and no store."""
    return typed_events(watcher(api.raw, config or WatcherConfig()), api.model)

"""The reflector's cache: one ``Writer`` applies watcher events, any number of ``Store`` readers.

Store completeness: readers only ever see a complete state. A (re)list fills a separate buffer
(``Init`` starts it, ``InitApply`` fills it) and ``InitDone`` swaps it in at once, so objects that
vanished while disconnected disappear at the swap and never before. Until the first swap the store
is empty and not ready. Peak memory during a relist is about twice the store.

Keys are ``"namespace/name"`` (``"name"`` for cluster-scoped objects); a store holds one kind.

Compact by default: each object is kept as its JSON bytes (the bytes it arrived in when the event
carries a :class:`~kube_runtime.client.head.LazyObject`, as the watcher's do, else its orjson
encoding) and decoded on every read, so every read hands out a private copy (two reads of one
object are equal, never the same object). This is controller-runtime's contract (its cache deep-
copies every object on Get and List unless told not to): a reader may mutate what it got, and no
reconcile can corrupt the cache or another reader. It costs a decode per read (a few microseconds
for a 1 KB object; ``state()``, ``find()`` and ``state_filter()`` decode every object they visit)
and buys about a quarter of the memory of the decoded dicts and nothing for Python's cyclic
collector to trace (no GC pauses however large the cache, so no GC policy is needed). Bytes the
watch accepted by their head but orjson rejects (a number beyond a double's range) make that
object's reads raise :class:`~kube_runtime.client.errors.ObjectDecodeError`.

``store(compact=False)`` keeps the decoded dicts themselves instead (no copies, no decode: a read
returns the object the watcher decoded, so treat it as read-only; mutating it corrupts the cache
for every reader). Such a cache is traced by the cyclic collector and gets the process-wide
:class:`~kube_runtime.store.gc_policy.FreezeAfterSync` policy by default.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import Any, TypeVar

import anyio
import orjson

from kube_runtime.client.errors import ObjectDecodeError
from kube_runtime.client.head import LazyObject
from kube_runtime.client.json import KubeObject
from kube_runtime.client.resource import ApiResource
from kube_runtime.store.gc_policy import GcPolicy, default_gc_policy
from kube_runtime.store.indexes import Index, IndexFn
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.watcher.event import Apply, Delete, Init, InitApply, InitDone, WatcherEvent

__all__ = ["Store", "Writer", "lazy_key", "object_key", "store"]

_UNSET: Any = object()
_L = TypeVar("_L", bound=LazyObject)


def object_key(obj: KubeObject) -> str | None:
    """The store key of an object, ``None`` if it has no name."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return None
    name = meta.get("name")
    if not name:
        return None
    namespace = meta.get("namespace")
    return f"{namespace}/{name}" if namespace else name


class _Cache:
    """State shared by a Writer and its Stores."""

    __slots__ = ("compact", "indexes", "objects", "ready", "ready_event", "resource")

    def __init__(self, resource: ApiResource | None, compact: bool) -> None:
        #: Stored values: the objects, or their orjson encoding when ``compact``.
        self.objects: dict[str, Any] = {}
        self.indexes: dict[str, Index] = {}
        self.ready = False
        self.ready_event: anyio.Event | None = None
        self.resource = resource
        self.compact = compact

    def decoded(self, stored: Any) -> KubeObject:
        return _decode(stored) if self.compact else stored

    def decoded_objects(self, stored: dict[str, Any]) -> dict[str, KubeObject]:
        if not self.compact:
            return stored
        return {key: _decode(value) for key, value in stored.items()}


class Store:
    """A read handle on the cache (cheap; share it freely). All methods are O(1) unless stated."""

    __slots__ = ("_cache",)

    def __init__(self, cache: _Cache) -> None:
        self._cache = cache

    def get(self, ref: ObjectRef) -> KubeObject | None:
        """The object ``ref`` names, or ``None``. On a miss a namespaced ref falls back to the
        cluster-scoped key (kube-rs), so a ref built without knowing the scope still finds a
        cluster-scoped object; a namespaced object is never found by a cluster-scoped ref.
        A compact store decodes a private copy per call."""
        found = self._lookup(ref)
        if found is None or not self._cache.compact:
            return found  # type: ignore[no-any-return]
        return _decode(found)

    def _lookup(self, ref: ObjectRef) -> Any:
        """The stored value ``ref`` names (not decoded), or ``None``."""
        cache = self._cache
        resource = cache.resource
        if resource is not None and ref.kind and ref.kind != resource.kind:
            return None
        objects = cache.objects
        found = None
        if ref.namespace:
            found = objects.get(f"{ref.namespace}/{ref.name}")
        if found is None:
            found = objects.get(ref.name)
        return found

    def get_by_key(self, name: str, namespace: str | None = None) -> KubeObject | None:
        found = self._cache.objects.get(f"{namespace}/{name}" if namespace else name)
        return found if found is None else self._cache.decoded(found)

    def state(self) -> list[KubeObject]:
        """A snapshot list of every object (O(n); compact stores decode every object)."""
        cache = self._cache
        if cache.compact:
            return [_decode(value) for value in cache.objects.values()]
        return list(cache.objects.values())

    def state_filter(self, predicate: Callable[[KubeObject], bool]) -> list[KubeObject]:
        """Every object ``predicate`` accepts (O(n)); prefer an index for repeated lookups."""
        return [obj for obj in self.state() if predicate(obj)]

    def find(self, predicate: Callable[[KubeObject], bool]) -> KubeObject | None:
        """The first object ``predicate`` accepts (O(n) worst case)."""
        cache = self._cache
        for value in list(cache.objects.values()):
            obj = cache.decoded(value)
            if predicate(obj):
                return obj
        return None

    def keys(self) -> list[str]:
        return list(self._cache.objects.keys())

    def __iter__(self) -> Iterator[KubeObject]:
        """Iterates a snapshot, so the store may change meanwhile. A compact store decodes each
        object as it is reached (not all up front, as :meth:`state` does)."""
        cache = self._cache
        snapshot = list(cache.objects.values())
        if not cache.compact:
            return iter(snapshot)
        return map(_decode, snapshot)

    def lazy_objects(self, cls: type[_L]) -> Iterator[_L]:
        """Every object as a ``cls`` (a :class:`~kube_runtime.client.head.LazyObject` class), over a
        snapshot: a compact store's bytes, decoded only when ``object`` is read (a private copy per
        lazy object); a dict store's objects themselves (shared: read-only)."""
        cache = self._cache
        snapshot = list(cache.objects.values())
        if cache.compact:
            return (cls(raw, None) for raw in snapshot)
        return (cls(None, None, obj) for obj in snapshot)

    def __len__(self) -> int:
        """The number of cached objects (for the ``kube_runtime_store_objects`` gauge)."""
        return len(self._cache.objects)

    def __contains__(self, ref: object) -> bool:
        """Whether ``ref`` names a cached object (same lookup as :meth:`get`, but never decodes:
        prefer ``ref in store`` to ``store.get(ref) is not None`` for existence checks)."""
        return isinstance(ref, ObjectRef) and self._lookup(ref) is not None

    def is_empty(self) -> bool:
        return not self._cache.objects

    def is_ready(self) -> bool:
        """Whether a first complete list has been applied (stays true across relists)."""
        return self._cache.ready

    async def wait_until_ready(self) -> None:
        """Returns once the first ``InitDone`` was applied (immediately if it was)."""
        cache = self._cache
        if cache.ready:
            return
        if cache.ready_event is None:
            cache.ready_event = anyio.Event()
        await cache.ready_event.wait()

    def index(self, name: str, value: Hashable) -> list[KubeObject]:
        """Objects whose index ``name`` contains ``value`` (O(matches)); ``KeyError`` if no such index."""
        cache = self._cache
        index = cache.indexes[name]
        objects = cache.objects
        return [cache.decoded(objects[key]) for key in index.keys_for(value) if key in objects]

    def index_values(self, name: str) -> list[Hashable]:
        return list(self._cache.indexes[name].values())

    @property
    def resource(self) -> ApiResource | None:
        return self._cache.resource

    def __repr__(self) -> str:
        kind = self._cache.resource.kind if self._cache.resource else "?"
        return f"<Store {kind} objects={len(self)} ready={self.is_ready()}>"


class Writer:
    """The single writer of a cache. Not shareable: one watcher stream feeds one Writer.

    ``compact`` (default) keeps encoded objects and hands out a decoded copy per read;
    ``compact=False`` keeps the decoded dicts themselves (see the module docs).
    ``gc_policy`` is told about syncs and writes: by default none for a compact store (it gives
    the collector nothing to trace) and the process-wide
    :class:`~kube_runtime.store.gc_policy.FreezeAfterSync` for a dict store; ``None`` leaves the
    collector alone.
    """

    __slots__ = ("_buffer", "_buffer_indexes", "_cache", "_encode", "_gc_policy")

    def __init__(
        self,
        resource: ApiResource | None = None,
        *,
        gc_policy: GcPolicy | None = _UNSET,
        compact: bool = True,
    ) -> None:
        self._cache = _Cache(resource, compact)
        self._buffer: dict[str, Any] | None = None
        #: The indexes of the relist in progress, filled as the buffer is (swapped in with it).
        self._buffer_indexes: dict[str, Index] = {}
        if gc_policy is _UNSET:
            gc_policy = None if compact else default_gc_policy()
        self._gc_policy: GcPolicy | None = gc_policy
        self._encode: Callable[[KubeObject], Any] = _encode_compact if compact else _identity

    def as_reader(self) -> Store:
        return Store(self._cache)

    @property
    def compact(self) -> bool:
        """Whether objects are kept encoded (see the module docs)."""
        return self._cache.compact

    def add_index(self, name: str, key_fn: IndexFn) -> None:
        """Maintain a secondary index from now on (built at once over the current objects, and
        over a relist in progress; a compact store decodes each of them once)."""
        cache = self._cache
        index = Index(name, key_fn)
        index.rebuild(cache.decoded_objects(cache.objects))
        cache.indexes[name] = index
        if self._buffer is not None:
            buffered = Index(name, key_fn)
            buffered.rebuild(cache.decoded_objects(self._buffer))
            self._buffer_indexes[name] = buffered

    def apply_watcher_event(self, event: WatcherEvent[KubeObject]) -> None:
        """Apply one event. Objects without a name are ignored (they cannot be keyed).

        An event carrying a :class:`~kube_runtime.client.head.LazyObject` (the watcher's) is keyed
        by its head and, in a compact store, kept as the bytes it arrived as: nothing is decoded
        unless the store has indexes (they are computed from the decoded object)."""
        cache = self._cache
        if isinstance(event, Apply):
            key, stored = self._prepare(event)
            if key is not None:
                cache.objects[key] = stored
                for index in cache.indexes.values():
                    index.put(key, event.object)
                if self._gc_policy is not None:
                    self._gc_policy.after_write(len(cache.objects))
        elif isinstance(event, Delete):
            lazy = event.lazy
            key = object_key(event.object) if lazy is None else lazy_key(lazy)
            if key is not None and cache.objects.pop(key, None) is not None:
                for index in cache.indexes.values():
                    index.remove(key)
        elif isinstance(event, InitApply):
            key, stored = self._prepare(event)
            if key is not None:
                buffer = self._buffer
                if buffer is None:  # InitApply without Init: start the buffer anyway
                    buffer = self._start_buffer()
                buffer[key] = stored
                for index in self._buffer_indexes.values():
                    index.put(key, event.object)
                if self._gc_policy is not None:
                    self._gc_policy.after_write(max(len(buffer), len(cache.objects)))
        elif isinstance(event, Init):
            self._start_buffer()
        elif isinstance(event, InitDone):
            self._swap()

    def _prepare(self, event: Apply[KubeObject] | InitApply[KubeObject]) -> tuple[str | None, Any]:
        """The key of an event's object and the value to store for it."""
        lazy = event.lazy
        if lazy is None:
            obj = event.object
            return object_key(obj), self._encode(obj)
        key = lazy_key(lazy)
        if key is None:
            return None, None
        return key, lazy.raw if self._cache.compact else lazy.object

    def _start_buffer(self) -> dict[str, Any]:
        self._buffer = {}
        indexes = self._cache.indexes
        self._buffer_indexes = {name: Index(name, index.key_fn) for name, index in indexes.items()}
        return self._buffer

    def _swap(self) -> None:
        cache = self._cache
        if self._buffer is None:  # InitDone without Init: an empty list
            self._start_buffer()
        assert self._buffer is not None
        cache.objects = self._buffer
        cache.indexes = self._buffer_indexes
        # Frees the previous state now, not at the next Init.
        self._buffer = None
        self._buffer_indexes = {}
        if not cache.ready:
            cache.ready = True
            if cache.ready_event is not None:
                cache.ready_event.set()
        if self._gc_policy is not None:
            self._gc_policy.after_sync(len(cache.objects))

    def __len__(self) -> int:
        return len(self._cache.objects)


def store(
    resource: ApiResource | None = None, *, gc_policy: GcPolicy | None = _UNSET, compact: bool = True
) -> tuple[Store, Writer]:
    """A new empty cache: its reader and its only writer.

    Compact by default (a decoded private copy per read, like controller-runtime's deep-copying
    cache; no GC policy needed); ``compact=False`` for a cache of the decoded dicts themselves
    (shared read-only objects, ``FreezeAfterSync`` by default). See the module docs."""
    writer = Writer(resource, gc_policy=gc_policy, compact=compact)
    return writer.as_reader(), writer


def lazy_key(lazy: LazyObject) -> str | None:
    """:func:`object_key` of a lazy object, from its head (from the decoded object if the head does
    not decode)."""
    try:
        meta = lazy.meta.metadata
    except ObjectDecodeError:
        return object_key(lazy.object)
    name = meta.name
    if not name:
        return None
    namespace = meta.namespace
    return f"{namespace}/{name}" if namespace else name


def _decode(stored: bytes) -> KubeObject:
    try:
        return orjson.loads(stored)  # type: ignore[no-any-return]
    except orjson.JSONDecodeError as exc:  # bytes kept as they arrived, which no decoder checked whole
        raise ObjectDecodeError(f"stored object is not decodable JSON ({exc})", stored) from None


def _identity(obj: KubeObject) -> KubeObject:
    return obj


def _encode_compact(obj: KubeObject) -> bytes:
    # orjson hands back its whole (over-allocated, 4 KiB and up) write buffer as the bytes object;
    # copying it out sizes the stored value to the JSON itself (a third of the memory for 1 KB).
    return memoryview(orjson.dumps(obj)).tobytes()

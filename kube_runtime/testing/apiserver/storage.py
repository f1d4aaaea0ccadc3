"""Object storage: one global resourceVersion counter, per-resource collections, bounded history.

Guarantees:

* Every write gets the next global resourceVersion (as etcd revisions do) and is encoded to JSON
  once; lists and watch streams are built from those bytes.
* A :class:`Record` is immutable once committed: readers may keep references (list snapshots,
  watch queues) without copying. Writers build a new dict and call :meth:`Storage.commit`.
* Each collection keeps a bounded history of events. A watch or an exact list can start at any
  resourceVersion at or after ``history_start_rv``; older ones are "expired" (410), as after an etcd
  compaction. :meth:`Storage.compact` drops the history on demand.
* All methods are synchronous and run on the server's event loop thread, so each commit is atomic
  with respect to every reader and watcher.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from kube_runtime.testing.apiserver.watch import Watcher

__all__ = ["ADDED", "DELETED", "MODIFIED", "Collection", "Expired", "Record", "Storage", "StoredEvent"]

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"

ObjectKey = tuple[str, str]  # (namespace or "", name)
StorageKey = tuple[str, str]  # (group, plural)


class Expired(Exception):
    """The requested resourceVersion is older than the retained history."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


class Record:
    """One committed version of an object: its JSON bytes and, on demand, the decoded dict.

    Never mutate either. The bytes are authoritative; the dict is decoded on first use and kept
    (:meth:`drop_decoded` lets a large, rarely-read collection give the memory and the cyclic
    collector's work back: the server's own GC pauses would otherwise show up as watch latency).
    """

    __slots__ = ("_meta_raw", "_obj", "key", "raw", "rv")

    def __init__(self, key: ObjectKey, obj: dict[str, Any] | None, raw: bytes, rv: int) -> None:
        self.key = key
        self._obj = obj
        self.raw = raw
        self.rv = rv
        self._meta_raw: bytes | None = None

    @property
    def obj(self) -> dict[str, Any]:
        obj = self._obj
        if obj is None:
            obj = self._obj = orjson.loads(self.raw)
        return obj

    def drop_decoded(self) -> None:
        """Forget the decoded dict (it is rebuilt from the bytes when next needed)."""
        self._obj = None

    @property
    def meta_raw(self) -> bytes:
        """The object as a ``PartialObjectMetadata`` (encoded on first use, then cached)."""
        if self._meta_raw is None:
            self._meta_raw = orjson.dumps(
                {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": self.obj.get("metadata") or {},
                }
            )
        return self._meta_raw

    def copy_obj(self) -> dict[str, Any]:
        """A deep, mutable copy of the object (decoding the bytes is the fastest deep copy)."""
        out: dict[str, Any] = orjson.loads(self.raw)
        return out


class StoredEvent:
    """A committed change: ``record`` is the new state (the final state for DELETED)."""

    __slots__ = ("_prev_at_rv", "prev", "record", "type")

    def __init__(self, type: str, record: Record, prev: Record | None) -> None:
        self.type = type
        self.record = record
        self.prev = prev
        self._prev_at_rv: Record | None = None

    @property
    def rv(self) -> int:
        return self.record.rv

    def prev_at_rv(self) -> Record:
        """The previous state stamped with this event's resourceVersion (built once, then shared).

        A filtered watch sends it as the DELETED object when this change makes an object stop matching
        its selector, as kube-apiserver does: the last state the watcher was allowed to see, at the
        resourceVersion of the change that hid it.
        """
        if self._prev_at_rv is None:
            prev = self.prev if self.prev is not None else self.record
            obj = dict(prev.obj)
            obj["metadata"] = {**(prev.obj.get("metadata") or {}), "resourceVersion": str(self.rv)}
            self._prev_at_rv = Record(prev.key, obj, orjson.dumps(obj), self.rv)
        return self._prev_at_rv


class Collection:
    """The objects of one resource (all namespaces), its history and its watchers."""

    def __init__(self, key: StorageKey, history_size: int, start_rv: int) -> None:
        self.key = key
        self.objects: dict[ObjectKey, Record] = {}
        self.history: deque[StoredEvent] = deque()
        self.history_size = history_size
        self.history_start_rv = start_rv
        self.watchers: set[Watcher] = set()
        self._sorted_keys: list[ObjectKey] | None = None
        self._snapshots: OrderedDict[int, list[Record]] = OrderedDict()

    # Reads -----------------------------------------------------------------------------------

    def get(self, namespace: str, name: str) -> Record | None:
        return self.objects.get((namespace, name))

    def sorted_keys(self) -> list[ObjectKey]:
        if self._sorted_keys is None:
            self._sorted_keys = sorted(self.objects)
        return self._sorted_keys

    def snapshot(self, rv: int, current_rv: int) -> list[Record]:
        """Every record as of ``rv``, sorted by (namespace, name); cached for paging.

        Raises :class:`Expired` when ``rv`` predates the retained history.
        """
        cached = self._snapshots.get(rv)
        if cached is not None:
            self._snapshots.move_to_end(rv)
            return cached
        if rv >= current_rv:
            objects = self.objects
            records = [objects[k] for k in self.sorted_keys()]
        else:
            state = self.state_at(rv)
            records = [state[k] for k in sorted(state)]
        self._snapshots[rv] = records
        while len(self._snapshots) > 8:
            self._snapshots.popitem(last=False)
        return records

    def state_at(self, rv: int) -> dict[ObjectKey, Record]:
        """The objects as they were right after ``rv`` (rolls back the retained history)."""
        if rv < self.history_start_rv:
            raise Expired(rv, self.history_start_rv)
        state = dict(self.objects)
        for ev in reversed(self.history):
            if ev.rv <= rv:
                break
            key = ev.record.key
            if ev.type == ADDED or ev.prev is None:
                state.pop(key, None)
            else:
                state[key] = ev.prev
        return state

    def events_after(self, rv: int) -> list[StoredEvent]:
        """The retained events with a resourceVersion above ``rv``, oldest first.

        Raises :class:`Expired` when events after ``rv`` may already have been dropped.
        """
        if rv < self.history_start_rv:
            raise Expired(rv, self.history_start_rv)
        history = self.history
        if not history or history[-1].rv <= rv:
            return []
        if history[0].rv > rv:
            return list(history)
        # Binary search over the deque through a list view of the rvs.
        idx = bisect.bisect_right(_RvView(history), rv)
        return [history[i] for i in range(idx, len(history))]

    @staticmethod
    def range_for_namespace(records: list[Record], namespace: str | None) -> tuple[int, int]:
        """The slice of a sorted snapshot that holds ``namespace`` (all of it for ``None``)."""
        if namespace is None:
            return 0, len(records)
        lo = bisect.bisect_left(records, (namespace, ""), key=lambda r: r.key)
        hi = bisect.bisect_left(records, (namespace + "\x00", ""), key=lambda r: r.key)
        return lo, hi

    # Writes (called by Storage) -------------------------------------------------------------

    def _apply(self, ev: StoredEvent) -> None:
        key = ev.record.key
        if ev.type == DELETED:
            del self.objects[key]
            self._sorted_keys = None
        else:
            if ev.type == ADDED:
                self._sorted_keys = None
            self.objects[key] = ev.record
        history = self.history
        history.append(ev)
        while len(history) > self.history_size:
            self.history_start_rv = history.popleft().rv


class _RvView:
    """A read-only sequence of the resourceVersions in a history deque, for ``bisect``."""

    __slots__ = ("_history",)

    def __init__(self, history: deque[StoredEvent]) -> None:
        self._history = history

    def __len__(self) -> int:
        return len(self._history)

    def __getitem__(self, i: int) -> int:
        return self._history[i].rv


CommitHook = Callable[[Collection, StoredEvent], None]


class Storage:
    """All collections plus the global resourceVersion counter and the uid index."""

    def __init__(self, *, history_size: int = 10_000) -> None:
        self.rv = 1
        self.history_size = history_size
        self.collections: dict[StorageKey, Collection] = {}
        self.uids: dict[str, tuple[StorageKey, ObjectKey]] = {}
        self.hooks: list[CommitHook] = []

    def collection(self, key: StorageKey) -> Collection:
        coll = self.collections.get(key)
        if coll is None:
            coll = Collection(key, self.history_size, 0)
            self.collections[key] = coll
        return coll

    def commit(self, coll: Collection, type: str, obj: dict[str, Any], prev: Record | None) -> Record:
        """Store a new version of ``obj`` (or its deletion) and notify watchers.

        Sets ``metadata.resourceVersion`` on ``obj`` (which becomes owned by storage) and returns
        the committed record.
        """
        self.rv += 1
        rv = self.rv
        meta = obj["metadata"]
        meta["resourceVersion"] = str(rv)
        key = (meta.get("namespace") or "", meta["name"])
        record = Record(key, obj, orjson.dumps(obj), rv)
        ev = StoredEvent(type, record, prev)
        coll._apply(ev)
        uid = meta.get("uid")
        if uid:
            if type == DELETED:
                self.uids.pop(uid, None)
            else:
                self.uids[uid] = (coll.key, key)
        for watcher in tuple(coll.watchers):
            watcher.offer(ev)
        for hook in self.hooks:
            hook(coll, ev)
        return record

    def commit_encoded(self, coll: Collection, prev: Record, encode: Callable[[str], bytes]) -> Record:
        """Store a MODIFIED version of ``prev`` given as bytes: ``encode(resourceVersion)``.

        For the load generator's churn, which changes only an annotation: the caller guarantees the
        new object differs from ``prev`` in ``metadata.annotations`` and the resourceVersion only,
        so the uid index is unchanged and the commit hooks (which track owners, finalizers and
        deletion) are not called. Watchers see an ordinary MODIFIED event.
        """
        self.rv += 1
        rv = self.rv
        record = Record(prev.key, None, encode(str(rv)), rv)
        ev = StoredEvent(MODIFIED, record, prev)
        coll._apply(ev)
        for watcher in tuple(coll.watchers):
            watcher.offer(ev)
        return record

    def rewrite_current(self, coll: Collection, transform: Callable[[dict[str, Any]], None]) -> int:
        """Pass a copy of each current object of ``coll`` to ``transform`` and keep what it makes of
        it, at the same resourceVersion and without an event; returns how many objects changed.

        What a new decoder does to reads (a CRD's changed schema defaults and prunes stored custom
        resources when they are read): records are replaced, never mutated, so snapshots and watch
        queues holding the old ones stay consistent; the history keeps the old states.
        """
        changed = 0
        for key, record in list(coll.objects.items()):
            obj = record.copy_obj()
            transform(obj)
            if obj != record.obj:
                coll.objects[key] = Record(key, obj, orjson.dumps(obj), record.rv)
                changed += 1
        if changed:
            coll._snapshots.clear()
        return changed

    def replace_current(self, coll: Collection, record: Record, obj: dict[str, Any]) -> bool:
        """Keep ``obj`` as the current state of ``record``'s object at the same resourceVersion and
        without an event (a change of representation, such as a conversion to another version);
        ``False`` when ``record`` is no longer current (the object changed meanwhile)."""
        if coll.objects.get(record.key) is not record:
            return False
        coll.objects[record.key] = Record(record.key, obj, orjson.dumps(obj), record.rv)
        coll._snapshots.clear()
        return True

    def compact(self) -> int:
        """Drop every collection's history: resuming from any older resourceVersion gets 410."""
        for coll in self.collections.values():
            coll.history.clear()
            coll.history_start_rv = self.rv
            coll._snapshots.clear()
        return self.rv

    def lookup_uid(self, uid: str) -> Record | None:
        loc = self.uids.get(uid)
        if loc is None:
            return None
        coll = self.collections.get(loc[0])
        return coll.objects.get(loc[1]) if coll is not None else None

    def records(self, key: StorageKey) -> Iterable[Record]:
        coll = self.collections.get(key)
        return () if coll is None else [coll.objects[k] for k in coll.sorted_keys()]

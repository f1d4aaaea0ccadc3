"""Background garbage collection and namespace termination, as kube-controller-manager does them.

* When an owner is gone, dependents whose every owner is gone are deleted (background
  propagation); dependents that still have a live owner lose only the dangling reference.
* The same holds for an object written with owner references to uids that do not exist (the
  owner was deleted before the dependent was created, or never existed): it is deleted when
  none of its owners exists, else the dangling references are removed. Objects already being
  deleted are left alone. This happens ``DANGLING_DELAY`` seconds after the write, not at once:
  kube-controller-manager learns of the object from a watch and reads each owner back before it
  acts, and a controller that writes such an object again on its deletion (from a stale cache)
  must not get a busy loop with the collector that keeps a virtual clock from ever advancing.
* An owner deleted with ``propagationPolicy=Orphan`` keeps its ``orphan`` finalizer until its
  dependents' references to it are removed; with ``Foreground`` it keeps ``foregroundDeletion``
  until its dependents are gone.
* A terminating namespace is emptied (each object deleted, finalizers honoured) and removed once
  nothing is left in it.

Work is triggered by storage commits and done by one task; nothing polls.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable

import anyio
import anyio.lowlevel

from kube_runtime.testing.apiserver.discovery import Registry
from kube_runtime.testing.apiserver.ops import NAMESPACES, ObjectOps
from kube_runtime.testing.apiserver.status import StatusError
from kube_runtime.testing.apiserver.storage import (
    DELETED,
    Collection,
    ObjectKey,
    Record,
    Storage,
    StorageKey,
    StoredEvent,
)

__all__ = ["DANGLING_DELAY", "GarbageCollector"]

#: Seconds between a write that leaves an object with absent owners and the collector acting on it.
DANGLING_DELAY = 0.1

_log = logging.getLogger(__name__)

Location = tuple[StorageKey, ObjectKey]


class GarbageCollector:
    """Owns the dependents index; :meth:`run` does the deletions in the background."""

    def __init__(self, storage: Storage, registry: Registry, ops: ObjectOps) -> None:
        self._storage = storage
        self._registry = registry
        self._ops = ops
        self._dependents: dict[str, set[Location]] = {}
        self._gone: deque[str] = deque()
        self._dangling: deque[Location] = deque()
        self._owners_deleting: dict[str, Location] = {}
        self._terminating: set[str] = set()
        self._wake = anyio.Event()
        self._dangling_wake = anyio.Event()
        storage.hooks.append(self._on_commit)

    def _on_commit(self, coll: Collection, ev: StoredEvent) -> None:
        meta = ev.record.obj.get("metadata") or {}
        uid = meta.get("uid")
        if ev.type == DELETED:
            if uid:
                self._gone.append(uid)
                self._owners_deleting.pop(uid, None)
            if coll.key == NAMESPACES:
                self._terminating.discard(ev.record.key[1])
            self._wake.set()
            return
        refs = meta.get("ownerReferences")
        if isinstance(refs, list):
            dangling = False
            for ref in refs:
                if isinstance(ref, dict) and isinstance(ref.get("uid"), str):
                    self._dependents.setdefault(ref["uid"], set()).add((coll.key, ev.record.key))
                    dangling = dangling or ref["uid"] not in self._storage.uids
            if dangling and not meta.get("deletionTimestamp"):
                self._dangling.append((coll.key, ev.record.key))
                self._dangling_wake.set()
        if meta.get("deletionTimestamp"):
            finalizers = meta.get("finalizers") or ()
            if uid and ("orphan" in finalizers or "foregroundDeletion" in finalizers):
                self._owners_deleting[uid] = (coll.key, ev.record.key)
                self._wake.set()
            if coll.key == NAMESPACES:
                self._terminating.add(ev.record.key[1])
                self._wake.set()

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._run_dangling)
            while True:
                await self._wake.wait()
                self._wake = anyio.Event()
                self._guarded(self.process)
                await anyio.lowlevel.checkpoint()

    async def _run_dangling(self) -> None:
        while True:
            await self._dangling_wake.wait()
            self._dangling_wake = anyio.Event()
            await anyio.sleep(DANGLING_DELAY)
            self._guarded(self.process_dangling)

    @staticmethod
    def _guarded(work: Callable[[], None]) -> None:
        try:
            work()
        except Exception:  # pragma: no cover - a GC bug must not stop serving
            _log.exception("garbage collector failed")

    # Work ------------------------------------------------------------------------------------

    def _record(self, loc: Location) -> Record | None:
        coll = self._storage.collections.get(loc[0])
        return coll.objects.get(loc[1]) if coll is not None else None

    def _delete(self, loc: Location, propagation: str = "Background") -> None:
        rtype = self._registry.by_storage_key(loc[0])
        if rtype is None:
            return
        with contextlib.suppress(StatusError):
            self._ops.delete(rtype, loc[1][0] or None, loc[1][1], propagation=propagation)

    def _rewrite_refs(self, loc: Location, record: Record, drop: set[str]) -> None:
        rtype = self._registry.by_storage_key(loc[0])
        if rtype is None:
            return
        obj = record.copy_obj()
        refs = [r for r in obj["metadata"].get("ownerReferences") or () if r.get("uid") not in drop]
        if refs:
            obj["metadata"]["ownerReferences"] = refs
        else:
            obj["metadata"].pop("ownerReferences", None)
        with contextlib.suppress(StatusError):
            self._ops.update(rtype, loc[1][0] or None, loc[1][1], obj, require_rv=False)

    def _remove_finalizer(self, loc: Location, finalizer: str) -> None:
        record = self._record(loc)
        if record is None:
            return
        obj = record.copy_obj()
        obj["metadata"]["finalizers"] = [f for f in obj["metadata"].get("finalizers") or () if f != finalizer]
        rtype = self._registry.by_storage_key(loc[0])
        if rtype is None:
            return
        with contextlib.suppress(StatusError):
            self._ops.update(rtype, loc[1][0] or None, loc[1][1], obj, require_rv=False)

    def _live_dependents(self, uid: str) -> list[tuple[Location, Record]]:
        out: list[tuple[Location, Record]] = []
        for loc in list(self._dependents.get(uid, ())):
            record = self._record(loc)
            refs = (record.obj.get("metadata") or {}).get("ownerReferences") if record is not None else None
            if record is None or not any(isinstance(r, dict) and r.get("uid") == uid for r in refs or ()):
                self._dependents.get(uid, set()).discard(loc)
                continue
            out.append((loc, record))
        if not self._dependents.get(uid):
            self._dependents.pop(uid, None)
        return out

    def _settle(self, loc: Location, record: Record) -> None:
        """Delete ``record`` if none of its owners exists, else drop its references to absent owners."""
        uids = self._storage.uids
        refs = [
            r for r in (record.obj.get("metadata") or {}).get("ownerReferences") or () if isinstance(r, dict)
        ]
        dead = {r["uid"] for r in refs if isinstance(r.get("uid"), str) and r["uid"] not in uids}
        if not dead:
            return
        if any(r.get("uid") in uids for r in refs):
            self._rewrite_refs(loc, record, dead)
        else:
            self._delete(loc)

    def process_dangling(self) -> None:
        """Settle the objects written with references to absent owners (see :meth:`_settle`)."""
        while self._dangling:
            loc = self._dangling.popleft()
            found = self._record(loc)
            if found is not None:
                self._settle(loc, found)

    def process(self) -> None:
        storage = self._storage
        while self._gone:
            uid = self._gone.popleft()
            for loc, record in self._live_dependents(uid):
                self._settle(loc, record)
        for uid, owner_loc in list(self._owners_deleting.items()):
            owner = self._record(owner_loc)
            if owner is None:
                self._owners_deleting.pop(uid, None)
                continue
            finalizers = owner.obj["metadata"].get("finalizers") or ()
            if "orphan" in finalizers:
                for loc, record in self._live_dependents(uid):
                    self._rewrite_refs(loc, record, {uid})
                self._remove_finalizer(owner_loc, "orphan")
            elif "foregroundDeletion" in finalizers:
                remaining = self._live_dependents(uid)
                for loc, record in remaining:
                    if not (record.obj.get("metadata") or {}).get("deletionTimestamp"):
                        self._delete(loc, "Foreground")
                if not self._live_dependents(uid):
                    self._remove_finalizer(owner_loc, "foregroundDeletion")
            else:
                self._owners_deleting.pop(uid, None)
        for namespace in list(self._terminating):
            left = 0
            for key, coll in list(storage.collections.items()):
                if key == NAMESPACES:
                    continue
                rtype = self._registry.by_storage_key(key)
                if rtype is None or not rtype.namespaced:
                    continue
                keys = [k for k in coll.sorted_keys() if k[0] == namespace]
                for k in keys:
                    found = coll.objects.get(k)
                    if found is None:
                        continue
                    if not (found.obj.get("metadata") or {}).get("deletionTimestamp"):
                        self._delete((key, k))
                    if coll.objects.get(k) is not None:
                        left += 1
            if left == 0:
                self._terminating.discard(namespace)
                self._ops.finish_namespace(namespace)

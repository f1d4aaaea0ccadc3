"""Watch fan-out: one bounded queue per watcher, drained in batches into one chunk per write.

A commit calls :meth:`Watcher.offer` synchronously for every watcher of the collection, which
filters (namespace, selectors, with ADDED/DELETED synthesized when an object starts or stops
matching, as the real server does: the synthesized DELETED carries the last matching state at the
resourceVersion of the update that hid it) and appends to the watcher's queue. The response task wakes
up, takes everything queued and writes it as one chunk. Nothing polls.

A watcher whose queue grows past ``max_queue`` (a client that does not read) is closed with an
``ERROR`` event carrying a 410 Status; the client then relists, as with a real server.

In Table form (``kubectl get -w``) each event's object is a one-row Table carrying the object's
resourceVersion; only the first event sent has ``columnDefinitions`` (later ones have null), as
kube-apiserver does. Pitfall: live events queued while the initial events still wait to be
rendered must not take the definitions; :meth:`Watcher.offer` sees to it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import orjson

from kube_runtime.testing.apiserver.resources import ResourceType
from kube_runtime.testing.apiserver.selectors import FieldSelector, LabelSelector
from kube_runtime.testing.apiserver.storage import ADDED, DELETED, MODIFIED, Collection, Record, StoredEvent
from kube_runtime.testing.apiserver.table import table_bytes

__all__ = ["BOOKMARK", "INITIAL_EVENTS_END", "Watcher", "status_line"]

BOOKMARK = "BOOKMARK"
INITIAL_EVENTS_END = "k8s.io/initial-events-end"

_PREFIX = {
    ADDED: b'{"type":"ADDED","object":',
    MODIFIED: b'{"type":"MODIFIED","object":',
    DELETED: b'{"type":"DELETED","object":',
    BOOKMARK: b'{"type":"BOOKMARK","object":',
}
_SUFFIX = b"}\n"
_MAX_CHUNK_ITEMS = 512


def status_line(status: dict[str, Any]) -> bytes:
    """An ``ERROR`` watch event line carrying ``status``."""
    return b'{"type":"ERROR","object":' + orjson.dumps(status) + _SUFFIX


class Watcher:
    """One open watch on a collection; owned by the HTTP response that streams it."""

    def __init__(
        self,
        coll: Collection,
        rtype: ResourceType,
        *,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        metadata_only: bool,
        bookmarks: bool,
        table: bool = False,
        max_queue: int,
    ) -> None:
        self.coll = coll
        self.rtype = rtype
        #: A silent watch stays open and delivers nothing (a half-open connection; see silence.py).
        self.silent = False
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self._name = fields.name_equals()
        self._filtered = not (labels.empty and fields.empty)
        self.metadata_only = metadata_only
        self.table = table
        self.bookmarks = bookmarks
        self.max_queue = max_queue
        self.initial: list[tuple[str, Record]] = []
        self.initial_tail: bytes | None = None
        self.queue: deque[bytes] = deque()
        self.closed = False
        self.error: bytes | None = None
        self._wake: anyio.Event | None = None
        self.last_rv = 0
        self._columns_pending = table  # a Table watch sends the column definitions once, first

    # Producer side (called synchronously by storage commits and the server) ----------------

    def matches(self, record: Record | None) -> bool:
        if record is None:
            return False
        if self.namespace is not None and record.key[0] != self.namespace:
            return False
        if self._name is not None and record.key[1] != self._name:
            return False
        if not self._filtered:
            return True
        obj = record.obj
        return self.labels.matches(obj) and self.fields.matches(obj)

    def visible(self, ev: StoredEvent) -> tuple[str, Record] | None:
        """The event type and object this watcher sees for ``ev`` (None: not visible to it).

        An update that makes an object start matching is ADDED; one that makes it stop matching is
        DELETED carrying the previous (last matching) state at the update's resourceVersion.
        """
        now = self.matches(ev.record)
        if ev.type == DELETED:
            return (DELETED, ev.record) if now else None
        if not self._filtered and self._name is None:
            return (ev.type, ev.record) if now else None
        before = ev.type == MODIFIED and self.matches(ev.prev)
        if now:
            return (MODIFIED if before else ADDED, ev.record)
        return (DELETED, ev.prev_at_rv()) if before else None

    def line(self, type: str, record: Record) -> bytes:
        """One event line; in Table form the first line rendered carries the column definitions."""
        if self.table:
            return self._table_line(type, record, columns=self._columns_pending)
        raw = record.meta_raw if self.metadata_only else record.raw
        return _PREFIX[type] + raw + _SUFFIX

    def _table_line(self, type: str, record: Record, *, columns: bool) -> bytes:
        if columns:
            self._columns_pending = False
        rv = (record.obj.get("metadata") or {}).get("resourceVersion")
        meta = {"resourceVersion": rv} if rv else {}
        return _PREFIX[type] + table_bytes([record], meta, self.rtype, columns=columns) + _SUFFIX

    def offer(self, ev: StoredEvent) -> None:
        if self.closed or self.silent:
            return
        seen = self.visible(ev)
        if seen is None:
            return
        if self.table and self.initial:
            # The initial events, rendered later by stream(), come first and carry the columns.
            self.queue.append(self._table_line(*seen, columns=False))
        else:
            self.queue.append(self.line(*seen))
        self.last_rv = ev.rv
        if len(self.queue) > self.max_queue:
            self.queue.clear()
            self.close(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": "watch queue overflow: the client is too slow; "
                    "resume from a newer resourceVersion",
                    "reason": "Expired",
                    "code": 410,
                }
            )
            return
        self._notify()

    def bookmark(self, rv: int, *, initial_events_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_events_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        obj = {"kind": self.rtype.kind, "apiVersion": self.rtype.api_version, "metadata": meta}
        if self.metadata_only:
            obj = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}
        return _PREFIX[BOOKMARK] + orjson.dumps(obj) + _SUFFIX

    def offer_bookmark(self, rv: int) -> None:
        """Queue a periodic BOOKMARK (only when the client asked for them and it is idle-safe)."""
        if self.closed or self.silent or not self.bookmarks:
            return
        self.queue.append(self.bookmark(rv))
        self._notify()

    def close(self, status: dict[str, Any] | None = None) -> None:
        """End the stream after what is queued, optionally with an ERROR event."""
        if self.closed:
            return
        self.closed = True
        if status is not None:
            self.error = status_line(status)
        self._notify()

    def _notify(self) -> None:
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.set()

    # Consumer side (the HTTP response task) --------------------------------------------------

    async def stream(self, send: Callable[[bytes], Awaitable[None]]) -> None:
        """Write queued events until the watch is closed; returns normally at the end."""
        initial = self.initial
        line = self.line
        pos = 0
        while pos < len(initial):
            items = initial[pos : pos + _MAX_CHUNK_ITEMS]
            pos += len(items)
            await send(b"".join([line(t, r) for t, r in items]))
        self.initial = []
        if self.initial_tail is not None:
            await send(self.initial_tail)
            self.initial_tail = None
        queue = self.queue
        while True:
            if queue:
                n = min(len(queue), _MAX_CHUNK_ITEMS)
                batch = [queue.popleft() for _ in range(n)]
                await send(b"".join(batch))
                continue
            if self.closed:
                if self.error is not None:
                    await send(self.error)
                return
            wake = anyio.Event()
            self._wake = wake
            await wake.wait()

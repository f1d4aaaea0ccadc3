"""Silent connections: watches that stay open but deliver nothing, as over a half-open TCP link.

:func:`silence_watches` turns every watch open right now into a silent one: from then on it drops
every event and bookmark offered to it, and its connection stays open. The client notices only
through its own idle timeout (the watcher's ``timeoutSeconds + 5 s``), or when the server's watch
timeout or :meth:`~kube_runtime.testing.apiserver.faults.Faults.close_watches` ends the stream (both
still work: a silent watch is closed like any other). Watches opened later are not affected.

Guarantee: the events a silent watch dropped are still in the server's history, so a client that
resumes from its last resourceVersion gets them (or a 410 if the history was compacted meanwhile),
exactly what a real kube-apiserver does after a dead connection.
"""

from __future__ import annotations

from kube_runtime.testing.apiserver.storage import Storage, StoredEvent
from kube_runtime.testing.apiserver.watch import Watcher

__all__ = ["SilentWatcher", "silence_watches"]


class SilentWatcher(Watcher):
    """A watcher that drops whatever it is offered (its class is swapped in by :func:`silence_watches`)."""

    def offer(self, ev: StoredEvent) -> None:
        return None

    def offer_bookmark(self, rv: int) -> None:
        return None


def silence_watches(storage: Storage) -> int:
    """Make every open watch of ``storage`` silent; returns how many were silenced."""
    silenced = 0
    for coll in storage.collections.values():
        for watcher in list(coll.watchers):
            if not watcher.closed and type(watcher) is Watcher:
                watcher.__class__ = SilentWatcher
                silenced += 1
    return silenced

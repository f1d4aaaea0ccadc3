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

from kube_runtime.testing.apiserver.storage import Storage

__all__ = ["silence_watches"]


def silence_watches(storage: Storage) -> int:
    """Make every open watch of ``storage`` silent (``Watcher.silent``); returns how many were
    silenced."""
    silenced = 0
    for coll in storage.collections.values():
        for watcher in list(coll.watchers):
            if not watcher.closed and not watcher.silent:
                watcher.silent = True
                silenced += 1
    return silenced

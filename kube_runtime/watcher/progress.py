"""WatchProgress: proof of life from a watcher, bookmarks included.

A quiet watch yields nothing: the API server only sends BOOKMARK events, and the watcher consumes
those itself (kube-rs semantics: bookmarks move the resume point, they are not events). A
``WatchProgress`` passed to :func:`~kube_runtime.watcher.watcher` is stamped whenever the server
shows the watch is alive, so "stale" can mean "no event *or bookmark* for a while" without putting
bookmarks into the event stream.

Guarantees: the stamp moves on every list page and on every event read from an open watch (object
events and BOOKMARKs); it does not move for an ``ERROR`` event (a 410 Gone, say) or a line that
does not decode as a watch event, so a watch that only gets errors still looks stale; nor when a
watch opens, ends or breaks, nor while the watcher is backing off. Stamping costs one clock call and two
attribute writes: nothing is allocated per event.

Pitfall: the stamp only moves while something iterates the watcher. A consumer that stops pulling
(a stuck downstream) makes the watch look stale, which is usually what an alert should say.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["WatchProgress"]


class WatchProgress:
    """When a watcher last heard from the API server (``last_seen``) and how often (``received``).

    ``clock`` defaults to ``time.time`` (Unix seconds), the unit of
    ``kube_runtime_watch_last_event_timestamp_seconds``; pass ``anyio.current_time`` to compare
    against the event loop's clock instead (virtual-clock tests, in-process staleness checks).
    ``last_seen`` is ``None`` until the first list page or watch event arrives. One progress object
    belongs to one watcher.
    """

    __slots__ = ("_clock", "last_seen", "received")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.last_seen: float | None = None
        self.received = 0

    def mark(self) -> None:
        """Record that the server just delivered something (called by the watcher)."""
        self.last_seen = self._clock()
        self.received += 1

    def age(self, now: float | None = None) -> float | None:
        """Seconds since the last delivery by this object's clock (``None`` before the first)."""
        last = self.last_seen
        if last is None:
            return None
        return (self._clock() if now is None else now) - last

    def __repr__(self) -> str:
        return f"WatchProgress(last_seen={self.last_seen!r}, received={self.received})"

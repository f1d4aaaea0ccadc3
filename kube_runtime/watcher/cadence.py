"""How long an open watch may stay silent: learned from the API server's bookmark cadence.

A watch with bookmarks on hears from the server at least once per bookmark interval (the real API
server sends one about every minute, whatever else happens), so a watch that has missed several
bookmarks in a row is dead even if its TCP connection looks open: a load balancer dropped it
(Azure's drops idle flows after 240 s; kube-rs PR #2069), or the server lost it. Without this the
only bound is the watch's ``timeoutSeconds`` + 5 s, 295 s by default.

:class:`IdleBudget` turns bookmark arrival times into the idle timeout of the next read:

* the cadence is the longest of the last four bookmark-to-bookmark gaps measured on one
  connection (never across a reconnect, never from the watch's start), leaving out the farewell
  bookmark: kube-apiserver also sends one 2 s before the watch's ``timeoutSeconds`` run out, which
  may follow a periodic one by a second (with a 60 s timeout each connection carries just those
  two), so a bookmark in the last :data:`FAREWELL_MARGIN` seconds of a connection (a quarter of
  its lifetime when shorter) restarts the idle clock but measures no gap;
* the timeout is ``missed_bookmarks`` (3) times the cadence, bounded below by
  :data:`MIN_IDLE_TIMEOUT` (5 s) and above by the ceiling (``timeoutSeconds`` + 5 s): until two
  bookmarks have been seen, or with bookmarks off and no configured interval, it is the ceiling;
* a configured interval (``WatcherConfig.bookmark_interval``) is the first estimate, which
  measured gaps then refine;
* every timeout (silence, or response headers that never came) widens the next bound: the bound
  that just expired counts as a gap, so a wrong estimate grows threefold per timeout up to the
  ceiling instead of reconnecting forever, and ages out after four real gaps. A connection that
  got no answer within the client's shorter ``connect_timeout`` (also a ``phase="headers"``
  timeout) widens nothing: that bound was not this one.

Pitfall: events do not teach the cadence (a busy watch's gaps between events say nothing about
bookmarks) but every event or bookmark restarts the idle clock, so a busy watch never times out.
The class is pure (times are passed in) and costs a few float operations per bookmark.
"""

from __future__ import annotations

from collections import deque

__all__ = ["DEFAULT_MISSED_BOOKMARKS", "FAREWELL_MARGIN", "MIN_IDLE_TIMEOUT", "IdleBudget"]

#: The lowest idle timeout a learned or configured cadence can give.
MIN_IDLE_TIMEOUT = 5.0
#: How many expected bookmarks a watch may miss before it is given up.
DEFAULT_MISSED_BOOKMARKS = 3
#: How many recent gaps the cadence is the maximum of (bookmark timers jitter).
_WINDOW = 4
#: A bookmark this close to a connection's end (its ``timeoutSeconds``) is taken for the server's
#: farewell, not its cadence.
FAREWELL_MARGIN = 5.0


class IdleBudget:
    """The idle timeout of one watcher's reads (``timeout``), learned from its bookmarks.

    ``ceiling`` is the bound without knowledge (``timeoutSeconds`` + 5 s); ``lifetime`` the
    watch's ``timeoutSeconds`` (``None``: no farewell bookmark is told apart); ``interval`` a
    configured bookmark interval; ``learn`` whether bookmark gaps are measured at all.
    """

    __slots__ = (
        "_farewell_from",
        "_gaps",
        "_last",
        "ceiling",
        "floor",
        "learn",
        "lifetime",
        "missed",
        "timeout",
    )

    def __init__(
        self,
        ceiling: float,
        *,
        lifetime: float | None = None,
        interval: float | None = None,
        missed: int = DEFAULT_MISSED_BOOKMARKS,
        learn: bool = True,
        floor: float = MIN_IDLE_TIMEOUT,
    ) -> None:
        self.ceiling = ceiling
        self.lifetime = lifetime
        #: From when a bookmark on the open connection is its farewell (``inf``: never).
        self._farewell_from = float("inf")
        self.floor = min(floor, ceiling)
        self.missed = missed
        self.learn = learn
        self._gaps: deque[float] = deque(maxlen=_WINDOW)
        if interval is not None:
            self._gaps.append(interval)
        self._last: float | None = None
        #: The idle timeout for the next read, in seconds.
        self.timeout = self._bound()

    def _bound(self) -> float:
        if not self._gaps:
            return self.ceiling
        return min(self.ceiling, max(self.floor, self.missed * max(self._gaps)))

    @property
    def cadence(self) -> float | None:
        """The estimated bookmark interval (``None`` before any gap or configured interval)."""
        return max(self._gaps) if self._gaps else None

    def opened(self, now: float | None = None) -> None:
        """A new watch connection, opened at ``now`` (``None``: its end is not tracked): its first
        bookmark starts a fresh gap."""
        self._last = None
        lifetime = self.lifetime
        if now is None or lifetime is None:
            self._farewell_from = float("inf")
        else:
            self._farewell_from = now + lifetime - min(FAREWELL_MARGIN, lifetime / 4)

    def bookmark(self, now: float) -> bool:
        """A bookmark arrived at ``now``; True when that changed ``timeout``."""
        if not self.learn:
            return False
        if now >= self._farewell_from:  # the farewell: the connection ends, no gap is measured
            self._last = None
            return False
        last, self._last = self._last, now
        if last is None:
            return False
        self._gaps.append(now - last)
        before, self.timeout = self.timeout, self._bound()
        return self.timeout != before

    def timed_out(self) -> None:
        """The watch was given up after ``timeout``: widen the next bound (see the module doc)."""
        self._last = None
        self._gaps.append(self.timeout)
        self.timeout = self._bound()

    def __repr__(self) -> str:
        return f"IdleBudget(timeout={self.timeout:g}, cadence={self.cadence!r}, ceiling={self.ceiling:g})"

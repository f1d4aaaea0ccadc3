"""WatcherConfig: what a watcher lists and watches, with kube-rs's defaults.

Defaults match kube-rs (and client-go's pager): paged list of 500, watch ``timeoutSeconds=290``,
bookmarks on, most-recent (quorum) list semantic, list-then-watch initial strategy.

The client-side idle timeout on an open watch is at most ``timeout + 5`` seconds (kube-rs's
bound); with bookmarks on, the watcher learns the server's bookmark cadence and gives a watch up
after ``missed_bookmarks`` (3) expected bookmarks did not come, bounded below by 5 s (see
:mod:`kube_runtime.watcher.cadence`). The same bound applies from sending a watch request to its
response headers. A watch given up either way is yielded as a
:class:`~kube_runtime.watcher.event.WatcherError` caused by a
:class:`~kube_runtime.client.errors.WatchTimeout` and resumed from the last resourceVersion.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any

from kube_runtime.watcher.cadence import DEFAULT_MISSED_BOOKMARKS, IdleBudget

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_WATCH_TIMEOUT",
    "InitialListStrategy",
    "ListSemantic",
    "WatcherConfig",
]

#: ``timeoutSeconds`` sent on every watch unless configured (kube-rs and client-go use 290 s).
DEFAULT_WATCH_TIMEOUT = 290
#: ``limit`` of each list page unless configured (client-go's pager default).
DEFAULT_PAGE_SIZE = 500
#: Slack added to the watch timeout for the client-side idle timeout.
IDLE_TIMEOUT_SLACK = 5.0
#: The API server rejects watch timeouts at or above this (kube-rs validates it too).
_MAX_WATCH_TIMEOUT = 295


class ListSemantic(enum.Enum):
    """How fresh the initial list must be."""

    #: A quorum read of the latest state (no ``resourceVersion`` sent).
    MOST_RECENT = "most_recent"
    #: Any state no older than ``resourceVersion=0``: may be served from the watch cache (cheaper,
    #: possibly stale). Pitfall (kube-core behaviour, kept): with a page size set, the ``0`` is not
    #: sent, because the watch cache would ignore the limit; set ``page_size=None`` to make it count.
    ANY = "any"


class InitialListStrategy(enum.Enum):
    """How the initial state is obtained."""

    #: Paged ``list`` calls, then a watch from the list's resourceVersion.
    LIST_WATCH = "list_watch"
    #: One watch with ``sendInitialEvents=true`` (Kubernetes >= 1.32 streaming lists): the server
    #: sends the current objects as ADDED events, then a bookmark annotated
    #: ``k8s.io/initial-events-end``. Needs bookmarks. Against a server that does not serve them
    #: (the ``WatchList`` gate off: 422; older servers: 422 on ``resourceVersionMatch``, or the
    #: parameter ignored and no end marker) the watcher falls back to ``LIST_WATCH`` for the rest
    #: of its life, logged once at WARNING (kube-rs retries forever, its store never ready); see
    #: :mod:`kube_runtime.watcher.state` for the signals. Pitfall: a streaming watch that ends
    #: before its end marker counts as such a signal, so a server restart at that moment also
    #: switches the watcher to paged lists.
    STREAMING_LIST = "streaming_list"


@dataclass(frozen=True, slots=True)
class WatcherConfig:
    """Immutable watcher settings; the builder methods return modified copies.

    ``timeout`` is the watch's ``timeoutSeconds`` (``None`` means 290); it must be below 295.
    ``page_size=None`` lists everything in one request; a paged list whose ``continue`` token
    expires part-way is listed again that way (see :meth:`list_params`). ``bookmark_interval`` is
    the expected seconds between bookmarks (``None``: learned from the stream); a watch that
    misses ``missed_bookmarks`` of them in a row is given up and resumed.
    """

    label_selector: str | None = None
    field_selector: str | None = None
    timeout: int | None = None
    list_semantic: ListSemantic = ListSemantic.MOST_RECENT
    initial_list_strategy: InitialListStrategy = InitialListStrategy.LIST_WATCH
    page_size: int | None = DEFAULT_PAGE_SIZE
    bookmarks: bool = True
    bookmark_interval: float | None = None
    missed_bookmarks: int = DEFAULT_MISSED_BOOKMARKS
    shard_selector: str | None = None

    def __post_init__(self) -> None:
        if self.timeout is not None and not 0 < self.timeout < _MAX_WATCH_TIMEOUT:
            raise ValueError(
                f"watch timeout must be in 1..{_MAX_WATCH_TIMEOUT - 1} seconds, got {self.timeout}"
            )
        if self.page_size is not None and self.page_size <= 0:
            raise ValueError(f"page_size must be positive or None, got {self.page_size}")
        if self.bookmark_interval is not None and not self.bookmark_interval > 0:
            raise ValueError(f"bookmark_interval must be positive or None, got {self.bookmark_interval}")
        if self.missed_bookmarks < 1:
            raise ValueError(f"missed_bookmarks must be at least 1, got {self.missed_bookmarks}")
        if self.initial_list_strategy is InitialListStrategy.STREAMING_LIST and not self.bookmarks:
            raise ValueError("bookmarks must be set when using send_initial_events (streaming lists)")

    # -- builders (kube-rs names) --------------------------------------------------------------

    def labels(self, selector: str) -> WatcherConfig:
        """Only objects matching this label selector (``app=x,tier!=db``)."""
        return replace(self, label_selector=selector)

    def shards(self, selector: str) -> WatcherConfig:
        """Only this server-side shard (KEP-5866 ``shardSelector``, see
        :mod:`~kube_runtime.watcher.shards`); a list the server answers without applying it fails
        with :class:`~kube_runtime.watcher.shards.ShardSelectorUnsupported`."""
        return replace(self, shard_selector=selector)

    def fields(self, selector: str) -> WatcherConfig:
        """Only objects matching this field selector (``metadata.name=x``)."""
        return replace(self, field_selector=selector)

    def with_timeout(self, seconds: int) -> WatcherConfig:
        """The watch's server-side ``timeoutSeconds`` (and so the idle timeout, plus 5 s)."""
        return replace(self, timeout=seconds)

    def any_semantic(self) -> WatcherConfig:
        return replace(self, list_semantic=ListSemantic.ANY)

    def most_recent_semantic(self) -> WatcherConfig:
        return replace(self, list_semantic=ListSemantic.MOST_RECENT)

    def streaming_lists(self) -> WatcherConfig:
        """The initial list as one ``sendInitialEvents`` watch (see
        :attr:`InitialListStrategy.STREAMING_LIST`), falling back to paged lists (``page_size``)
        against a server that does not serve it."""
        return replace(self, initial_list_strategy=InitialListStrategy.STREAMING_LIST)

    def with_page_size(self, size: int | None) -> WatcherConfig:
        return replace(self, page_size=size)

    def with_bookmark_interval(self, seconds: float | None, *, missed: int | None = None) -> WatcherConfig:
        """The server's bookmark interval, if known (else learned), and how many bookmarks a
        watch may miss before it is given up (default 3). The learned or configured bound is never
        below 5 s nor above the watch timeout + 5 s."""
        return replace(
            self,
            bookmark_interval=seconds,
            missed_bookmarks=self.missed_bookmarks if missed is None else missed,
        )

    def disable_bookmarks(self) -> WatcherConfig:
        """Pitfall: without bookmarks a quiet watch resumes from an old version and may hit 410s."""
        return replace(self, bookmarks=False)

    # -- derived request parameters ------------------------------------------------------------

    @property
    def watch_timeout(self) -> int:
        return self.timeout if self.timeout is not None else DEFAULT_WATCH_TIMEOUT

    @property
    def idle_timeout(self) -> float:
        """The longest an open watch may send nothing before it is given up (``timeout + 5``);
        a learned bookmark cadence shortens it (see :meth:`idle_budget`)."""
        return self.watch_timeout + IDLE_TIMEOUT_SLACK

    def idle_budget(self) -> IdleBudget:
        """A fresh :class:`~kube_runtime.watcher.cadence.IdleBudget` for one watcher's reads."""
        return IdleBudget(
            self.idle_timeout,
            lifetime=self.watch_timeout,
            interval=self.bookmark_interval,
            missed=self.missed_bookmarks,
            learn=self.bookmarks,
        )

    @property
    def is_streaming(self) -> bool:
        return self.initial_list_strategy is InitialListStrategy.STREAMING_LIST

    def list_params(self, continue_token: str | None, *, full: bool = False) -> dict[str, Any]:
        """Keyword arguments for ``Api.list`` for one page.

        ``full``: the fallback after a page's ``continue`` token expired, one list of everything:
        no ``limit`` and no ``continue``, every other parameter (selectors, resourceVersion
        semantics) as the first page's (client-go's pager does the same).
        """
        params: dict[str, Any] = {
            "label_selector": self.label_selector,
            "field_selector": self.field_selector,
            "limit": None if full else self.page_size,
            "continue_token": None if full else continue_token,
        }
        if self.list_semantic is ListSemantic.ANY and self.page_size is None:
            params["resource_version"] = "0"
            params["resource_version_match"] = "NotOlderThan"
        if self.shard_selector:
            params["shard_selector"] = self.shard_selector
        return params

    def watch_params(self, resource_version: str | None, *, initial: bool) -> dict[str, Any]:
        """Keyword arguments for ``Api.watch``: a resumed watch, or the initial streaming watch."""
        params: dict[str, Any] = {
            "label_selector": self.label_selector,
            "field_selector": self.field_selector,
            "timeout_seconds": self.watch_timeout,
            "allow_bookmarks": self.bookmarks,
            "resource_version": resource_version,
            "idle_timeout": self.idle_timeout,
        }
        if initial:
            params["send_initial_events"] = True
            params["resource_version_match"] = "NotOlderThan"
            params["resource_version"] = "0"
        if self.shard_selector:
            params["shard_selector"] = self.shard_selector
        return params

"""The tunables of one embedded API server."""

from __future__ import annotations

from typing import Final, Literal, TypeAlias, get_args

__all__ = ["WATCH_LIST_MODES", "ServerSettings", "WatchListMode"]

#: How the server treats a streaming-list watch (``sendInitialEvents``), i.e. kube-apiserver's
#: ``WatchList`` feature: ``"on"`` serves it (the initial objects, then the bookmark annotated
#: ``k8s.io/initial-events-end``); ``"off"`` refuses it as kube-apiserver >= 1.27 with the gate off
#: does (422 Invalid, cause ``sendInitialEvents``: "Forbidden: sendInitialEvents is forbidden for
#: watch unless the WatchList feature gate is enabled"); ``"ignored"`` drops ``sendInitialEvents``
#: and ``resourceVersionMatch`` on watches, as a server older than both parameters (or a proxy that
#: drops them) does: the request is then a plain watch from its resourceVersion (``0``: every current
#: object as ADDED, then the changes), with ordinary bookmarks and never the end marker.
WatchListMode: TypeAlias = Literal["on", "off", "ignored"]
WATCH_LIST_MODES: Final[tuple[WatchListMode, ...]] = get_args(WatchListMode)


class ServerSettings:
    """Tunables of one server (defaults follow kube-apiserver where it has one). Plain attributes:
    a test may change one while the server runs (it applies to requests that arrive afterwards)."""

    def __init__(
        self,
        *,
        bookmark_interval: float = 60.0,
        watch_queue_size: int = 100_000,
        default_watch_timeout: float = 1800.0,
        sharded_list_watch: bool = True,
        watch_list: WatchListMode = "on",
    ) -> None:
        if watch_list not in WATCH_LIST_MODES:
            raise ValueError(f"watch_list must be one of {', '.join(WATCH_LIST_MODES)}, got {watch_list!r}")
        self.bookmark_interval = bookmark_interval
        self.watch_queue_size = watch_queue_size
        self.default_watch_timeout = default_watch_timeout
        #: KEP-5866 ``shardSelector`` on list and watch (kube-apiserver's ShardedListAndWatch gate).
        self.sharded_list_watch = sharded_list_watch
        #: Streaming lists (kube-apiserver's ``WatchList`` gate): see :data:`WatchListMode`.
        self.watch_list: WatchListMode = watch_list

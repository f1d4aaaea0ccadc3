"""The tunables of one embedded API server."""

from __future__ import annotations

__all__ = ["ServerSettings"]


class ServerSettings:
    """Tunables of one server (defaults follow kube-apiserver where it has one)."""

    def __init__(
        self,
        *,
        bookmark_interval: float = 60.0,
        watch_queue_size: int = 100_000,
        default_watch_timeout: float = 1800.0,
        sharded_list_watch: bool = True,
    ) -> None:
        self.bookmark_interval = bookmark_interval
        self.watch_queue_size = watch_queue_size
        self.default_watch_timeout = default_watch_timeout
        #: KEP-5866 ``shardSelector`` on list and watch (kube-apiserver's ShardedListAndWatch gate).
        self.sharded_list_watch = sharded_list_watch
